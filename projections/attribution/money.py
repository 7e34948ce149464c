"""Exact splitting of money (and of shares) by largest remainder.

The rounding rule: an amount is counted in integer *units*, the currency's minor unit (cents
for EUR, yen for JPY, 1/1000 for BHD), or the amount's own smallest digit when that is finer
(JPY 100.50 is split in hundredths rather than silently rounded). Each touch first gets the
floor of its exact share of the units; the units left over (fewer than the number of touches)
go one each to the touches with the largest remainders, and equal remainders go to the
earlier touch in touch order (time, then event id). The parts are therefore never negative,
each is less than one unit from its exact share, and they sum to exactly the amount. A touch
with a zero share never receives a unit, because it has no remainder.

Shares are reported the same way, in units of 10^-12 of the whole, so a deal's shares sum to
exactly 1. Amounts are split from the exact shares, not from the reported rounded ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Context, Decimal
from fractions import Fraction
from math import lcm
from typing import Final

#: ISO 4217 currencies whose minor unit is not 1/100.
MINOR_DIGITS: Final[dict[str, int]] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
DEFAULT_MINOR_DIGITS: Final = 2
#: Reported shares are multiples of 10^-SHARE_DIGITS.
SHARE_DIGITS: Final = 12
#: Big enough for any amount the catalog allows (18 digits) at any scale used here.
_EXACT: Final = Context(prec=60)


def exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    """The sum of ``amounts`` at 60 digits, whatever the caller's decimal context."""
    total = Decimal(0)
    for amount in amounts:
        total = _EXACT.add(total, amount)
    return total


def exact_difference(minuend: Decimal, subtrahend: Decimal) -> Decimal:
    """``minuend - subtrahend`` at 60 digits, whatever the caller's decimal context."""
    return _EXACT.subtract(minuend, subtrahend)


def digits_for(amount: Decimal, currency: str) -> int:
    """Decimal places the parts of ``amount`` are counted in (see module docstring)."""
    exponent = amount.as_tuple().exponent
    own = -exponent if isinstance(exponent, int) else 0
    return max(MINOR_DIGITS.get(currency, DEFAULT_MINOR_DIGITS), own)


def largest_remainder(units: int, weights: Sequence[Fraction]) -> tuple[int, ...]:
    """Split ``units`` (>= 0) in proportion to ``weights`` (>= 0, positive total), ties to
    the earlier index."""
    # Integers over a common denominator: exact like Fractions, and far cheaper.
    common = lcm(*(weight.denominator for weight in weights))
    scaled = [weight.numerator * (common // weight.denominator) for weight in weights]
    total = sum(scaled)
    parts = [units * weight // total for weight in scaled]
    remainders = [units * weight % total for weight in scaled]
    left = units - sum(parts)
    for index in sorted(range(len(parts)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return tuple(parts)


def split_amount(
    amount: Decimal, currency: str, weights: Sequence[Fraction]
) -> tuple[Decimal, ...]:
    """``amount`` split in proportion to ``weights``: parts at ``digits_for`` places that sum
    to exactly ``amount``."""
    digits = digits_for(amount, currency)
    units = int(_EXACT.scaleb(amount, digits))
    parts = largest_remainder(units, weights)
    return tuple(_EXACT.scaleb(Decimal(part), -digits) for part in parts)


def round_shares(weights: Sequence[Fraction]) -> tuple[Decimal, ...]:
    """The shares of ``weights`` as decimals at ``SHARE_DIGITS`` places summing to exactly 1."""
    parts = largest_remainder(10**SHARE_DIGITS, weights)
    return tuple(_EXACT.scaleb(Decimal(part), -SHARE_DIGITS) for part in parts)
