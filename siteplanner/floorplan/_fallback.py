"""The plan's fallbacks: checking the cheapest layouts, the exhaustive search and its proof."""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np
import shapely

from siteplanner._errors import InputError
from siteplanner.floorplan._backing import without_term
from siteplanner.floorplan.assemble import Assembled
from siteplanner.floorplan.fixtures import FIXTURE_OF
from siteplanner.floorplan.layout import LayoutProblem
from siteplanner.floorplan.search import search_pruned

__all__ = ["LayoutRefused", "check_ranked", "exhaustive", "proof", "proven", "quick", "refusal",
           "scope_text", "unless_unproven"]

T = TypeVar("T")

#: Cheapest layouts of one search whose full plans (fixtures, doors, route) are checked.
_CHECKED = 6
#: A search cost at or above this breaks a zone rule (one broken rule costs 10).
_HARD = 10.0
#: CPU seconds the exhaustive fallback's branch and bound (:func:`search_pruned`) may take;
#: past it, it stops and proves nothing (``metrics["exhaustive"]["complete"]`` is false).
#: Measured here (benchmark refusals, a shared 2-core machine): five zones 1-2 CPU s, six
#: 14-40, seven 28 when most sides break a rule early.
_EXHAUSTIVE_S = 45.0
#: On while :func:`unless_unproven` runs its cheap searches, which skip the fallback.
_QUICK: ContextVar[bool] = ContextVar("siteplanner_floorplan_quick", default=False)
#: CPU seconds for checking the full plan of every distinct layout that keeps the zone
#: rules (each check assembles fixtures, doors and route: 0.05-0.3 s).
_PROOF_S = 30.0


def exhaustive(problem: LayoutProblem, best: tuple[float, Assembled, Any], tried: set[Any],
               build: Any, failures: dict[str, int] | None = None,
               scope: dict[str, Any] | None = None
               ) -> tuple[tuple[float, Assembled, Any], bool]:
    """Every layout the decoder can express, by exact branch and bound, then their full plans.

    :func:`search_pruned` finds every distinct layout that keeps the zone rules
    (within ``_EXHAUSTIVE_S``); the full plan of each not tried before is checked,
    cheapest first, within ``_PROOF_S``. When none passes, the best plan's
    ``metrics["exhaustive"]`` says how many layouts were visited, pruned, costed
    and checked and, when the search was complete and every one was checked, is
    the proof naming the zones that do not fit. ``failures`` holds the failed
    checks of the layouts tried before (see :func:`check_ranked`), counted on.
    ``scope`` is the layout problem searched (see :func:`scope_text`), kept as
    ``metrics["exhaustive"]["problem"]``: a proof holds for that problem only.
    """
    failures = {} if failures is None else failures
    found = search_pruned(problem, cpu_s=_EXHAUSTIVE_S)
    kept = _distinct(problem, found.kept)
    done = {tuple(k for _, k in problem._leaves(g)) for g in tried}
    fresh = [(g, c) for g, c in kept if tuple(k for _, k in problem._leaves(g)) not in done]
    if fresh:
        best, ok = _check_all(fresh, tried, best, build, failures)
        if ok:
            return best, True
    unchecked = [g for g, _ in fresh if g not in tried]
    breaks = found.zone_breaks
    # the zones that do not fit: those the best layout tried breaks, else those breaking most
    broken, _ = problem._zone_terms(problem._leaves(best[2]))
    named = [problem.kinds[i] for i in np.flatnonzero(broken > 0)] or sorted(
        breaks, key=lambda k: -breaks[k])[:3]
    best[1].metrics["exhaustive"] = {
        "layouts": math.factorial(problem.n) * 2 ** (problem.n - 1), "visited": found.genomes,
        "pruned": found.pruned, "costed": found.costed, "complete": found.complete,
        "cpu_budget_s": _EXHAUSTIVE_S, "search_cpu_s": round(found.cpu_s, 2),
        "zone_rules_met": bool(kept),
        "zones_not_fitting": named,
        "zone_breaks": dict(sorted(breaks.items(), key=lambda kv: -kv[1])),
        "distinct_keeping_zone_rules": len(kept), "checked": len(kept) - len(unchecked),
        "all_checked": found.complete and not unchecked, "proof_cpu_budget_s": _PROOF_S,
        "failed_checks": dict(sorted(failures.items(), key=lambda kv: -kv[1])),
        "zones_failing_checks": _zones_named(failures, problem.kinds),
        "problem": scope or {"zones": dict(zip(problem.kinds, np.round(problem.targets, 1).tolist(),
                                               strict=True)), "surplus": "unknown"}}
    return best, False


def _distinct(problem: LayoutProblem, ranked: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """The layouts of ``ranked`` that decode to distinct zone polygons (the first of each)."""
    seen: set[tuple[bytes, ...]] = set()
    out = []
    for g, c in ranked:
        zones = shapely.set_precision(np.asarray(problem.decode(g), dtype=object), 1e-3)
        key = tuple(shapely.to_wkb(shapely.normalize(zones)).tolist())
        if key not in seen:
            seen.add(key)
            out.append((g, c))
    return out


def _check_all(kept: list[tuple[Any, float]], tried: set[Any],
               best: tuple[float, Assembled, Any], build: Any, failures: dict[str, int]
               ) -> tuple[tuple[float, Assembled, Any], bool]:
    """Check the full plan of every untried layout of ``kept``, cheapest first, within ``_PROOF_S``."""
    start = time.process_time()
    for genome, cost in kept:
        if genome in tried:
            continue
        if time.process_time() - start > _PROOF_S:
            break
        best, ok = check_ranked([(genome, cost)], tried, best, build, failures=failures)
        if ok:
            return best, True
    return best, False


def _zones_named(failures: dict[str, int], kinds: tuple[str, ...]) -> dict[str, int]:
    """How many failed full checks name each zone (by kind, or by its fixtures falling short)."""
    fixture_zone = {v: k for k, v in FIXTURE_OF.items()}
    out: dict[str, int] = {}
    for text, n in failures.items():
        named = {k for k in kinds if re.search(rf"\b{k}\b", text)}
        counts = re.search(r"placed (\{[^}]*\}), planned (\{[^}]*\})", text)
        if counts:
            placed, planned = (ast.literal_eval(c) for c in counts.groups())
            named |= {fixture_zone[f] for f, m in planned.items()
                      if placed.get(f, 0) < m and f in fixture_zone}
        for k in named:
            out[k] = out.get(k, 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def check_ranked(ranked: list[tuple[Any, float]], tried: set[Any],
                  best: tuple[float, Assembled, Any] | None, build: Any, *,
                  failures: dict[str, int] | None = None
                  ) -> tuple[tuple[float, Assembled, Any], bool]:
    """Assemble the ``_CHECKED`` cheapest untried layouts; the first that passes, or the best.

    ``failures`` counts the failed checks by name and detail (for the proof).
    """
    for genome, cost in [(g, c) for g, c in ranked if g not in tried][:_CHECKED]:
        if best is not None and cost >= _HARD and best[0] < math.inf:
            break  # the rest break a zone rule: no better than the plan in hand
        tried.add(genome)
        done = build(genome)
        bad = {k: v["detail"] for k, v in done.metrics["constraints"].items() if not v["pass"]}
        if not bad:
            return (0.0, done, genome), True
        if failures is not None:
            for k, v in bad.items():
                key = f"{k}: {v}"
                failures[key] = failures.get(key, 0) + 1
        if best is None or len(bad) + cost / _HARD < best[0]:
            best = (len(bad) + cost / _HARD, done, genome)
    assert best is not None
    return best, False


class LayoutRefused(InputError):
    """No layout passes; ``proven`` when a complete search (:func:`proven`) says none can."""

    def __init__(self, msg: str, *, proven: bool) -> None:
        super().__init__(msg)
        self.proven = proven


def proven(exhaustive: dict[str, Any] | None) -> bool:
    """Whether the exhaustive search proves that no layout passes: it ran to the end and
    either no layout keeps the zone rules or every one that does failed its full check."""
    return bool(exhaustive and exhaustive["complete"]
                and (not exhaustive["zone_rules_met"] or exhaustive.get("all_checked")))


def unless_unproven(search: Callable[[], T]) -> T:
    """``search()`` without its exhaustive fallback, with the backed-line term and then
    without it (:func:`without_term`); when both refuse, ``search()`` with the fallback, run
    again without the term when it refuses without a proof. A complete search's verdict
    holds whatever the layouts cost.

    The exhaustive fallback is the costly part (up to :data:`_EXHAUSTIVE_S` of branch and
    bound, then :data:`_PROOF_S` of checks, per layout problem). An outline whose searches
    with the term find no passing plan may have one the search without the term finds at
    once (the benchmark's #88: two fallbacks of 55 CPU s each with the term, then a plan
    in 4 s without it), so the cheap searches go first and the fallback, with its proof,
    last."""
    token = _QUICK.set(True)
    try:
        for term in (True, False):
            try:
                if term:
                    return search()
                with without_term():
                    return search()
            except LayoutRefused as refused:
                if refused.proven:  # a proof holds whatever the searches cost
                    raise
    finally:
        _QUICK.reset(token)
    try:
        return search()
    except LayoutRefused as refused:
        if refused.proven:
            raise
        with without_term():
            return search()


def quick() -> bool:
    """Whether the searches now run without the exhaustive fallback (see :func:`unless_unproven`)."""
    return _QUICK.get()


def scope_text(scope: dict[str, Any]) -> str:
    """The layout problem a search covered, in words: its zones at their allotted m² and the surplus.

    ``scope`` is what the plan records of it (``zones``: kind to m² as searched, the flex
    floor counted in its host; ``surplus``: ``reserve``, ``flex``, ``shared`` or
    ``none``; ``grown``: the zones grown past their share for their fixtures).
    """
    zones = scope["zones"]
    sizes = ", ".join(f"{k} {v:.1f}" for k, v in zones.items())
    surplus = {
        "reserve": f"the surplus a staff reserve of {scope.get('reserve_m2', 0.0):.1f} m²",
        "flex": (f"the surplus a flex zone of {scope.get('flex_m2', 0.0):.1f} m², laid out in "
                 f"{scope.get('host', 'its host')}"),
        "shared": "the surplus shared by the zones the standard gives it to (surplus_to)",
        "none": "no surplus",
    }.get(str(scope.get("surplus")), "the surplus as allotted")
    grown = scope.get("grown") or []
    if grown:
        surplus += f"; {', '.join(grown)} grown for the fixtures that fell short"
    return f"these {len(zones)} zones at their allotted sizes ({sizes} m²; {surplus})"


def proof(exhaustive: dict[str, Any] | None) -> str:
    """The exhaustive search's verdict for a refusal, or nothing when it did not run.

    The verdict names the layout problem searched (:func:`scope_text`): it holds for
    that problem, not for every allotment of the floor."""
    if not exhaustive:
        return ""
    n = exhaustive["layouts"]
    of = f"{n:,} layouts of {scope_text(exhaustive['problem'])}" if "problem" in exhaustive \
        else f"{n:,} layouts the planner can express"
    if not exhaustive["complete"]:
        return (f": an exhaustive search stopped at its {exhaustive['cpu_budget_s']:g} CPU s "
                f"budget after {exhaustive['visited']:,} of {of}, none passing")
    if not exhaustive["zone_rules_met"]:
        breaks = exhaustive["zone_breaks"]
        zones = ", ".join(f"{k} (its own rules break in at least {breaks.get(k, 0) / n:.0%} of them)"
                          for k in exhaustive["zones_not_fitting"]) or "the zones' walls and doors"
        return (f": an exhaustive search of all {of} finds none that keeps every zone rule; "
                f"zones that do not fit: {zones}")
    if exhaustive.get("all_checked"):
        zones = exhaustive["zones_failing_checks"]
        worst = ", ".join(f"{k} (named by {n} failed checks)"
                          for k, n in list(zones.items())[:3]) or "none named"
        rules = sorted({k.split(":")[0] for k in exhaustive["failed_checks"]})
        return (f": an exhaustive search of all {of} finds "
                f"{exhaustive['distinct_keeping_zone_rules']} distinct ones that keep "
                "the zone rules, and every one fails the full plan checks "
                f"({', '.join(rules)}); zones that do not fit: {worst}")
    return (f": an exhaustive search of all {of} found "
            f"{exhaustive['distinct_keeping_zone_rules']} distinct ones that keep the zone rules; "
            f"the {exhaustive['checked']} checked within {exhaustive['proof_cpu_budget_s']:g} CPU s "
            "fail the full plan checks")


def refusal(searched: list[tuple[dict[str, Any], dict[str, Any] | None]],
            inapplicable: list[str]) -> tuple[str, bool]:
    """The verdict of a refusal over every layout problem searched, and whether it is proven.

    ``searched`` holds each problem's scope (:func:`scope_text`) and its exhaustive
    search's figures (None when none ran: the cheap searches, or too many layouts);
    ``inapplicable`` says why each retry the planner has was not a problem to search
    here (no surplus for a reserve, no fixtures short, ...). Proven only when every
    problem searched is proven (:func:`proven`): a proof of the first problem says
    nothing of the reserve or the grown zones the planner tries after it. Nothing is
    said when no exhaustive search ran (too many zones, or the cheap searches).
    """
    if not any(ex for _, ex in searched):
        return "", False
    parts = [proof(ex)[2:] if ex else f"the searches of {scope_text(scope)} found none passing "
             "(no exhaustive search)" for scope, ex in searched]
    text = ": " + "; and ".join(parts)
    if inapplicable:
        text += "; no other layout problem applies (" + "; ".join(dict.fromkeys(inapplicable)) + ")"
    return text, all(proven(ex) for _, ex in searched)
