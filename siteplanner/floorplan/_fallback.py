"""The plan's fallbacks: checking the cheapest layouts, the exhaustive search and its proof."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from siteplanner.floorplan.assemble import Assembled
from siteplanner.floorplan.layout import LayoutProblem
from siteplanner.floorplan.search import search_all

__all__ = ["check_ranked", "exhaustive", "proof"]

#: Cheapest layouts of one search whose full plans (fixtures, doors, route) are checked.
_CHECKED = 6
#: A search cost at or above this breaks a zone rule (one broken rule costs 10).
_HARD = 10.0
#: Layouts the exhaustive fallback costs before checking the cheapest new ones that keep
#: the zone rules: a plan found early ends it (nearest the seeded searches' best first).
_CHUNK = 240
#: CPU seconds the exhaustive fallback may take; past it, it stops and proves nothing
#: (``metrics["exhaustive"]["complete"]`` is false). About 2,000 layouts of five zones
#: cost 5-10 CPU s here, so the budget holds a complete search with room to spare.
_EXHAUSTIVE_S = 20.0


def exhaustive(problem: LayoutProblem, best: tuple[float, Assembled, Any], tried: set[Any],
                build: Any) -> tuple[tuple[float, Assembled, Any], bool]:
    """Every layout, nearest the best so far first, ``_CHUNK`` at a time, within ``_EXHAUSTIVE_S``.

    After each chunk the cheapest untried layouts that keep the zone rules are
    checked, so a plan is usually found long before the end. When none passes,
    the best plan's ``metrics["exhaustive"]`` says how many layouts were costed
    and, when all were, is the proof naming the zones that do not fit.
    """
    order, flips = best[2]
    every = sorted(search_all(problem.n), key=lambda g: (
        sum(a != b for a, b in zip(g[0], order, strict=True))
        + sum(a != b for a, b in zip(g[1], flips, strict=True))))
    start = time.process_time()
    costed: list[tuple[Any, float]] = []
    for at in range(0, len(every), _CHUNK):
        costed += [(g, problem.cost(g)) for g in every[at:at + _CHUNK]]
        costed.sort(key=lambda gc: gc[1])
        fresh = [(g, c) for g, c in costed if c < _HARD]
        best, ok = check_ranked(fresh, tried, best, build)
        if ok:
            return best, True
        if time.process_time() - start > _EXHAUSTIVE_S:
            break
    genome, cost = costed[0]
    broken, _ = problem._zone_terms(problem._leaves(genome))
    best[1].metrics["exhaustive"] = {
        "layouts": len(every), "costed": len(costed), "complete": len(costed) == len(every),
        "cpu_budget_s": _EXHAUSTIVE_S, "zone_rules_met": bool(cost < _HARD),
        "zones_not_fitting": [problem.kinds[i] for i in np.flatnonzero(broken > 0)]}
    return best, False


def check_ranked(ranked: list[tuple[Any, float]], tried: set[Any],
                  best: tuple[float, Assembled, Any] | None,
                  build: Any) -> tuple[tuple[float, Assembled, Any], bool]:
    """Assemble the ``_CHECKED`` cheapest untried layouts; the first that passes, or the best."""
    for genome, cost in [(g, c) for g, c in ranked if g not in tried][:_CHECKED]:
        if best is not None and cost >= _HARD and best[0] < math.inf:
            break  # the rest break a zone rule: no better than the plan in hand
        tried.add(genome)
        done = build(genome)
        broken = sum(not c["pass"] for c in done.metrics["constraints"].values())
        if not broken:
            return (0.0, done, genome), True
        if best is None or broken + cost / _HARD < best[0]:
            best = (broken + cost / _HARD, done, genome)
    assert best is not None
    return best, False


def proof(exhaustive: dict[str, Any] | None) -> str:
    """The exhaustive search's verdict for a refusal, or nothing when it did not run."""
    if not exhaustive:
        return ""
    if not exhaustive["complete"]:
        return (f": an exhaustive search stopped at its {exhaustive['cpu_budget_s']:g} CPU s "
                f"budget after {exhaustive['costed']} of {exhaustive['layouts']} layouts, "
                "none passing")
    if not exhaustive["zone_rules_met"]:
        zones = ", ".join(exhaustive["zones_not_fitting"]) or "the zones' walls and doors"
        return (f": an exhaustive search of all {exhaustive['layouts']} layouts the planner can "
                f"express finds none that keeps every zone rule; zones that do not fit: {zones}")
    return (f": an exhaustive search of all {exhaustive['layouts']} layouts found some that keep "
            f"the zone rules, but the {_CHECKED} cheapest fail the full plan checks")
