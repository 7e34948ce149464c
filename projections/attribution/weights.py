"""Each model's exact weight per counted touch; a touch's share is its weight over the total.

Positional models (first, last, U, W, full path, J, inverse J):

1. Each milestone the model weights and the deal has gives its weight to the touch holding
   it; a touch holding several milestones gets the sum of their weights (a lone touch under
   W-shaped holds first, lead creation and opportunity creation: 90% before step 3).
2. ``rest`` is split equally over the touches holding none of the model's weighted
   milestones. Which touches those are depends on the model: under U-shaped the closing
   touch is part of the rest, under full path it is not.
3. The weights that found no touch (a missing milestone, or ``rest`` with no rest touches)
   are redistributed over the positions that did, in proportion to their weights: that is,
   each touch's share is its weight divided by the total weight (exactly, when ``money``
   splits the amount). Under U-shaped, a first touch and a lead-creation touch with nothing
   between them get 50/50; under J-shaped, a first and a closing touch get 25/75.
4. If no weighted position found a touch at all (only possible for a custom model that
   weights nothing but missing milestones), every counted touch gets an equal share.

Linear: equal shares. Time decay: each touch weighs ``2^(-dt/half_life)``, ``dt`` its time
before the conversion, and the weights are normalized. Normalizing makes the shares the same
whichever reference time ``dt`` is measured to, so it is measured to the latest counted touch:
the weights then stay in range for an open deal evaluated long after its last touch. A touch
1,000 or more half-lives before the latest one weighs 0 (2^-1000 is below 1e-301). Whole
half-lives are exact powers of two; the fractional part is computed with correctly rounded
decimal ``exp`` and ``ln`` at 40 digits in a private context, so every platform gets the same
digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Context, Decimal
from fractions import Fraction
from math import floor
from typing import Final

from events.attribution_config import (
    LinearModel,
    ModelConfig,
    PositionalModel,
    TimeDecayModel,
    WeightKey,
)
from projections.attribution.facts import Touch
from projections.attribution.milestones import Milestones

#: Touches this many half-lives before the latest one get weight 0 (see module docstring).
MAX_HALF_LIVES: Final = 1000
#: A private context, so a caller's ``decimal.getcontext()`` can never change the digits.
_DECAY_CONTEXT: Final = Context(prec=40)
_MICROSECOND: Final = timedelta(microseconds=1)
_LN2: Final = _DECAY_CONTEXT.ln(Decimal(2))


def weights(
    model: ModelConfig, counted: Sequence[Touch], marks: Milestones
) -> tuple[Fraction, ...]:
    """Exact weights per counted touch (in touch order), each >= 0 with a positive total;
    empty when there are no counted touches. Shares are the weights over their total."""
    if not counted:
        return ()
    if isinstance(model, PositionalModel):
        raw = _positional(model, len(counted), marks)
    elif isinstance(model, TimeDecayModel):
        raw = _time_decay(model.half_life, counted)
    else:
        assert isinstance(model, LinearModel)
        raw = [Fraction(1)] * len(counted)
    if not any(raw):
        return (Fraction(1),) * len(counted)
    return tuple(raw)


def _positional(model: PositionalModel, count: int, marks: Milestones) -> list[Fraction]:
    holders: dict[WeightKey, int | None] = {
        "first": marks.first,
        "lead_creation": marks.lead_creation,
        "opportunity_creation": marks.opportunity_creation,
        # The closing weight follows the closing touch whatever its label (won, pending, lost).
        "closed_won": marks.closing,
    }
    raw = [Fraction(0)] * count
    weighted: set[int] = set()
    for key, holder in holders.items():
        weight = Fraction(model.weight(key))
        if weight > 0 and holder is not None:
            raw[holder] += weight
            weighted.add(holder)
    rest = [index for index in range(count) if index not in weighted]
    if rest:
        each = Fraction(model.weight("rest")) / len(rest)
        for index in rest:
            raw[index] += each
    return raw


def _time_decay(half_life: timedelta, counted: Sequence[Touch]) -> list[Fraction]:
    latest = counted[-1].at
    half = half_life // _MICROSECOND
    return [_two_to_minus(Fraction((latest - t.at) // _MICROSECOND, half)) for t in counted]


def _two_to_minus(exponent: Fraction) -> Fraction:
    """``2^-exponent`` for ``exponent >= 0``: exact for whole numbers, else 40 digits."""
    if exponent >= MAX_HALF_LIVES:
        return Fraction(0)
    whole = floor(exponent)
    part = exponent - whole
    weight = Fraction(1, 2**whole)
    if part:
        ctx = _DECAY_CONTEXT
        x = ctx.divide(Decimal(part.numerator), Decimal(part.denominator))
        weight *= Fraction(ctx.exp(ctx.minus(ctx.multiply(x, _LN2))))
    return weight
