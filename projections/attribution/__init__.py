"""Multi-touch attribution: won revenue credited to a lead's touches by a named, versioned
model (DESIGN.md section 1, issue 4). Pure: no I/O, no clock; time comes in as ``as_of``.

Usage, for one lead's events in any order::

    config = load_attribution()                  # events/attribution.yaml
    results = attribute_lead(events, funnel, config.model("W"), as_of=when)
    rows = rollup(all_results_of_one_model, by="campaign")

or step by step: ``touches_and_deals`` -> ``attribute`` per deal. The same events, in any
arrival order, give equal results, so a replay reproduces them to the cent.

The rules, each documented in full where it is implemented:

- Which touches count, and milestones (``milestones``): touches at or before the
  conversion (the close; ``as_of`` for an open deal). First touch; lead creation = last touch
  at or before the lead reached the lead stage; opportunity creation = last touch at or before
  ``deal.created``; closing = the last counted touch, labelled ``closed_won``, ``pending``
  (open deal) or ``closed_lost``. Times compare inclusively.
- Coinciding and missing milestones (``weights``): a touch holding several milestones gets
  the sum of their weights; ``rest`` goes equally to the touches holding none of the model's
  weighted milestones; weight that finds no touch is redistributed in proportion to the
  weights that did (the per-touch weights are normalized).
- Rounding (``money``): largest remainder in the currency's minor unit, ties to the earlier
  touch (time, then event id); credit sums to exactly the deal amount.
- Pending (``attribute``): an open deal's credit is included in its ``Attribution`` and marked
  (``status="open"``, ``Credit.is_pending``, ``Attribution.pending``); ``rollup`` reports it
  as pipeline, separate from won revenue.
- No touches: no credits, and ``unattributed`` is the whole amount; ``rollup`` shows it under
  ``key=None``.
"""

from __future__ import annotations

from projections.attribution.attribute import Attribution, Credit, attribute, attribute_lead
from projections.attribution.facts import DealFacts, DealStatus, Touch, touches_and_deals
from projections.attribution.milestones import Position
from projections.attribution.rollup import Dimension, Rollup, rollup

__all__ = [
    "Attribution",
    "Credit",
    "DealFacts",
    "DealStatus",
    "Dimension",
    "Position",
    "Rollup",
    "Touch",
    "attribute",
    "attribute_lead",
    "rollup",
    "touches_and_deals",
]
