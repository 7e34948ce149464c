"""Largest-remainder splitting: exact sums, minor units per currency, deterministic ties."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

from projections.attribution.money import (
    digits_for,
    exact_sum,
    largest_remainder,
    round_shares,
    split_amount,
)

THIRD = Fraction(1, 3)


def test_left_over_units_go_to_the_largest_remainders() -> None:
    # 10 * (0.55, 0.26, 0.19) = 5.5, 2.6, 1.9: floors 5, 2, 1 and two units left over.
    shares = [Fraction(55, 100), Fraction(26, 100), Fraction(19, 100)]
    assert largest_remainder(10, shares) == (5, 3, 2)


def test_equal_remainders_go_to_the_earlier_touch() -> None:
    assert largest_remainder(100, [THIRD] * 3) == (34, 33, 33)
    assert largest_remainder(2, [THIRD] * 3) == (1, 1, 0)


def test_a_zero_share_never_receives_a_unit() -> None:
    assert largest_remainder(1, [Fraction(0), Fraction(1, 2), Fraction(1, 2)]) == (0, 1, 0)


def test_amounts_are_split_in_the_currencys_minor_unit() -> None:
    assert split_amount(Decimal("1000.00"), "EUR", [THIRD] * 3) == tuple(
        map(Decimal, ("333.34", "333.33", "333.33"))
    )
    assert [str(p) for p in split_amount(Decimal("1000"), "JPY", [THIRD] * 3)] == [
        "334",
        "333",
        "333",
    ]
    assert [str(p) for p in split_amount(Decimal("1.000"), "BHD", [THIRD] * 3)] == [
        "0.334",
        "0.333",
        "0.333",
    ]
    # A whole-number EUR amount is still split in cents.
    assert [str(p) for p in split_amount(Decimal("1E+3"), "EUR", [THIRD] * 3)] == [
        "333.34",
        "333.33",
        "333.33",
    ]


def test_an_amount_finer_than_its_currency_is_split_at_its_own_precision() -> None:
    assert digits_for(Decimal("100.50"), "JPY") == 2
    assert sum(split_amount(Decimal("100.50"), "JPY", [THIRD] * 3)) == Decimal("100.50")


def test_rounded_shares_sum_to_exactly_one() -> None:
    shares = round_shares([THIRD] * 3)
    assert [str(s) for s in shares] == ["0.333333333334", "0.333333333333", "0.333333333333"]
    assert sum(shares) == 1


def test_the_callers_decimal_context_cannot_change_the_result() -> None:
    amount = Decimal("987654321.99")
    expected = split_amount(amount, "EUR", [THIRD] * 3)
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        assert split_amount(amount, "EUR", [THIRD] * 3) == expected
        assert exact_sum(expected) == amount
