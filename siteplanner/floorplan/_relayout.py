"""Another layout for a passing plan whose cashiers are cut off from the cash room.

Inside one layout the counters can only stand on the service zone's walls: when the
zone touches no staff room, or its walls to the back of house are shorter than the
counter line, some stations stand in staff pockets that customers' floor cuts off
from the cash room, however the line is placed (``assemble``, ``_rejoin``). The search's
soft term for that (``_backing.unbacked_service``) is a twentieth of one broken rule, so
the search keeps a layout it could trade for a little closeness.

So a plan that passes with cashiers cut off is searched again, once, from its own
layout, with a service zone sharing no door-wide wall with the back of house counted as
a broken rule and the share of the line those walls cannot hold weighted above the
closeness term (:func:`siteplanner.floorplan._backing.as_hard_rule`). Its cheapest
distinct layouts keeping every rule are assembled, and the plan that passes every check
with the fewest pockets and staff rooms cut off is kept; the plan found first is kept when
none has fewer. No outline is refused for it, the station count never changes, and a plan that
passed still passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from siteplanner.floorplan import _backing
from siteplanner.floorplan.assemble import Assembled
from siteplanner.floorplan.layout import LayoutProblem
from siteplanner.floorplan.search import search_ranked

__all__ = ["CHECKED", "backed"]

#: Cheapest distinct layouts of the backed search whose full plans are assembled and checked
#: (each 0.05-0.3 s). On the 34 benchmark plans still cut off with 3, 6 joined 7 more and 12
#: joined 11 more; 40 joined the same as 12 (few searches keep more than a dozen).
CHECKED = 12
#: The backed search's budget, in the plan's search budgets: its rule cuts off most of the
#: plan's own layout's neighbours, so it walks further before it meets a layout keeping
#: every rule (on the benchmark's outlines #79 and #109, 120 layouts found none and 480 did).
BUDGETS = 4
#: Offset of the backed search's seed from the plan's (any fixed number: the same inputs and
#: seed give the same plan).
_SEED = 104_729
_FEASIBLE = 10.0


def _cut(done: Assembled) -> int:
    """Pockets of the counters' staff side, and staff rooms, with no staff-only way to the
    cash room."""
    return len(done.metrics["counter_pockets_cut_off"]) + len(done.metrics["staff_rooms_cut_off"])


def backed(problem: LayoutProblem, done: Assembled, genome: Any, assemble: Callable[[Any], Assembled],
           tried: set[Any], *, seed: int, budget: int) -> tuple[Assembled, Any]:
    """``done`` (laid out as ``genome``), or a plan of another layout whose service zone backs
    onto the back of house and which passes every check with fewer cashiers cut off.

    ``assemble(genome)`` builds a layout's full plan; ``tried`` are the layouts whose plans
    were assembled already (their pockets are no better, or they failed a check).
    """
    if not (_cut(done) and done.metrics["all_constraints_pass"]):
        return done, genome
    with _backing.as_hard_rule():
        ranked = search_ranked(problem, seed=seed + _SEED, budget=BUDGETS * budget,
                               start=genome)
    best = (done, genome)
    seen = {problem.layout_key(genome)}
    for g, cost in ranked:
        if cost >= _FEASIBLE or len(seen) > CHECKED:
            break  # the rest break a rule, or cannot back the line either
        key = problem.layout_key(g)
        if g in tried or key in seen:
            continue  # another genome of a layout assembled already
        seen.add(key)
        tried.add(g)
        other = assemble(g)
        if other.metrics["all_constraints_pass"] and _cut(other) < _cut(best[0]):
            best = (other, g)
            if not _cut(other):
                break
    return best
