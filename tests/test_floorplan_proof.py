"""The exhaustive fallback's branch and bound is exact: it keeps what brute force keeps.

The outlines are instances of ``benchmarks/bench_floorplan.py`` (its exact
coordinates): #24 (an irregular floor for 16 counters whose five-zone layouts
mostly break a zone rule), #19 (a chamfered floor whose restroom fits no
five-zone layout) and #34 (a small chamfered floor for all seven zones).
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from siteplanner._errors import InputError
from siteplanner.floorplan import _fallback, default_standard, plan_floor
from siteplanner.floorplan import plan as plan_module
from siteplanner.floorplan._fallback import LayoutRefused, proof, refusal, scope_text
from siteplanner.floorplan.fixtures import FIXTURE_OF
from siteplanner.floorplan.layout import GRID, LayoutProblem
from siteplanner.floorplan.plan import _frame, allot
from siteplanner.floorplan.search import search_all, search_pruned
from siteplanner.floorplan.sizing import Demand, size_programme

#: The search cost at or above which a layout breaks a hard rule (each broken rule costs 10).
HARD = 10.0

OUTLINE_24 = [(0.0, 0.0), (-2.8007653291707757, 15.010433862915798),
              (-8.868783095770793, 19.170091210410913), (-18.698013624682126, 19.252890434203838),
              (-21.23461639000048, 15.552549429907549), (-18.06153997076622, -1.4532501052484903)]
OUTLINE_19 = [(0.0, 0.0), (-12.433739248561302, 5.267608044099582),
              (-15.220578797254255, 4.139396867767446), (-17.15118008443926, -2.0541173447049283),
              (-16.38260635201242, -3.9526020597536373), (-3.324870964676351, -9.484568798722695)]
OUTLINE_34 = [(0.0, 0.0), (-9.294161524354116, 8.879555775732088),
              (-11.301152372327177, 8.833769328784467), (-15.720800309653782, 2.220359407009254),
              (-15.674227080497992, 0.17888095852517516), (-6.397702747503472, -8.683824408055488)]


def _problem(coords: list[tuple[float, float]], door: tuple[float, float], arrivals: float,
             zones: list[str]) -> LayoutProblem:
    """The search problem plan_floor builds for this outline and demand (no reserve)."""
    outline = Polygon(coords)
    std = default_standard().with_zones(zones)
    sizing = size_programme(Demand(arrivals), std)
    allotment = allot(sizing["programme_m2"], outline.area, std)
    fwd, _ = _frame(outline)
    local = shapely.set_precision(shapely.affinity.affine_transform(outline, fwd), GRID)
    at = outline.exterior.interpolate(outline.exterior.project(Point(door)))
    kinds = tuple(str(k) for k in allotment.targets.index)
    units = tuple(int(sizing["units"].get(k, 0)) for k in kinds)
    return LayoutProblem(local, kinds, allotment.targets.to_numpy(dtype=float),
                         (Point(shapely.affinity.affine_transform(at, fwd).coords[0]),), std,
                         units=units)


def _layout(problem: LayoutProblem, genome: tuple[tuple[int, ...], tuple[int, ...]]
            ) -> tuple[bytes, ...]:
    return tuple(key for _, key in problem._leaves(genome))


CASES = {
    "24-five-zones": (OUTLINE_24, (-19.351542735696906, 5.460396312855213), 370.9090909087581,
                      ["advisory", "restroom"]),
    "19-five-zones": (OUTLINE_19, (-10.40759479816531, -6.483941851866039), 170.77744520929627,
                      ["vault", "restroom"]),
    "24-four-zones": (OUTLINE_24, (-19.351542735696906, 5.460396312855213), 200.0, ["advisory"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pruned_search_keeps_exactly_the_layouts_brute_force_keeps(case: str) -> None:
    brute_problem = _problem(*CASES[case])
    brute = {g: brute_problem.cost(g) for g in search_all(brute_problem.n)}
    keeping = {g: c for g, c in brute.items() if c < HARD}
    layouts = {_layout(brute_problem, g): c for g, c in keeping.items()}

    problem = _problem(*CASES[case])  # fresh caches: nothing carried over from brute force
    found = search_pruned(problem)
    assert found.complete and found.genomes == len(brute)
    mine = {_layout(problem, g): c for g, c in found.kept}
    assert mine.keys() == layouts.keys()  # the same distinct layouts, none lost, none extra
    assert all(c == pytest.approx(layouts[k]) for k, c in mine.items())
    assert found.kept_genomes == len(keeping)  # and every genome of them
    # what was pruned breaks a rule: pruned plus the costed genomes cover the space
    assert found.pruned <= len(brute) - len(keeping)
    assert [c for _, c in found.kept] == sorted(c for _, c in found.kept)


def test_the_five_zone_restroom_proof_names_the_restroom() -> None:
    problem = _problem(*CASES["19-five-zones"])
    found = search_pruned(problem)
    assert found.complete and not found.kept
    assert found.pruned + found.costed <= found.genomes == 1920
    # the restroom's own rules break in a share of the layouts; the planner names it
    assert found.zone_breaks["restroom"] > 0
    std = default_standard().with_zones(["vault", "restroom"])
    with pytest.raises(InputError, match=r"finds none that keeps every zone rule; zones that do "
                       r"not fit: restroom"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan_floor(Polygon(OUTLINE_19), [Point(-10.40759479816531, -6.483941851866039)],
                   170.77744520929627, standard=std, seed=19)


def test_seven_zones_are_searched_completely_and_agree_with_sampled_genomes() -> None:
    # all 322,560 seven-zone layouts of #34 decided by the branch and bound; random
    # genomes decoded and costed in full must agree with its verdict
    problem = _problem(OUTLINE_34, (-3.0743909288388016, -4.172977714254186), 59.70086582688509,
                       ["advisory", "back_office", "vault", "restroom"])
    assert problem.n == 7
    found = search_pruned(problem)
    assert found.complete and found.genomes == 322_560
    kept = {_layout(problem, g) for g, _ in found.kept}
    rng = np.random.default_rng(34)
    for _ in range(150):
        g = (tuple(int(v) for v in rng.permutation(7)), tuple(int(v) for v in rng.integers(0, 2, 6)))
        assert (problem.cost(g) < HARD) == (_layout(problem, g) in kept)
    for g, c in found.kept:
        assert problem.cost(g) == pytest.approx(c)


def test_a_refusal_proof_names_the_zones_and_counts_the_layouts() -> None:
    ex = {"layouts": 23040, "visited": 23040, "pruned": 23000, "costed": 40, "complete": True,
          "cpu_budget_s": 45.0, "zone_rules_met": False, "zones_not_fitting": ["vault"],
          "zone_breaks": {"vault": 23040}}
    text = proof(ex)
    assert "all 23,040 layouts" in text and "vault" in text and "100%" in text
    stopped = proof({**ex, "complete": False, "visited": 9000})
    assert "stopped" in stopped and "9,000 of 23,040" in stopped


def test_genomes_decoding_alike_are_one_layout() -> None:
    # bits of a node of four or fewer zones often pick the same cuts: the search costs
    # each distinct layout once, however many genomes decode to it
    problem = _problem(*CASES["24-four-zones"])
    found = search_pruned(problem)
    every = search_all(problem.n)
    distinct = {_layout(problem, g) for g in every}
    assert found.costed <= len(distinct) < len(every)


#: The figures of a complete exhaustive search in which no layout keeps the zone rules.
PROVEN = {"layouts": 1920, "visited": 1920, "pruned": 1900, "costed": 20, "complete": True,
          "cpu_budget_s": 45.0, "zone_rules_met": False, "zones_not_fitting": ["restroom"],
          "zone_breaks": {"restroom": 400}}
RESERVE_SCOPE = {"zones": {"self_service": 17.9, "waiting": 12.9, "service": 67.6,
                           "advisory": 58.5, "back_office": 88.4, "reserve": 137.5},
                 "surplus": "reserve", "reserve_m2": 137.5, "flex_m2": 0.0,
                 "host": "waiting", "grown": []}


def test_a_proof_names_the_layout_problem_it_searched() -> None:
    # the zones at the m² the search gave them and what the surplus was: a proof holds for
    # that problem, not for every way of sharing out the floor
    text = proof({**PROVEN, "layouts": 23040, "problem": RESERVE_SCOPE})
    assert "all 23,040 layouts of these 6 zones at their allotted sizes (self_service 17.9, " \
           "waiting 12.9, service 67.6, advisory 58.5, back_office 88.4, reserve 137.5 m²" in text
    assert "the surplus a staff reserve of 137.5 m²" in text
    flex = {**RESERVE_SCOPE, "surplus": "flex", "flex_m2": 40.0, "reserve_m2": 0.0,
            "grown": ["self_service"]}
    assert "a flex zone of 40.0 m², laid out in waiting; self_service grown" in scope_text(flex)


def test_a_refusal_is_proven_only_when_every_layout_problem_searched_is() -> None:
    first = {**RESERVE_SCOPE, "surplus": "flex", "reserve_m2": 0.0, "flex_m2": 137.5}
    proven_both, ok = refusal([(first, {**PROVEN, "problem": first}),
                               (RESERVE_SCOPE, {**PROVEN, "problem": RESERVE_SCOPE})], [])
    assert ok and proven_both.count("finds none that keeps every zone rule") == 2
    # the retry searched without an exhaustive search (or one stopped at its budget)
    for second in (None, {**PROVEN, "complete": False, "problem": RESERVE_SCOPE}):
        text, ok = refusal([(first, {**PROVEN, "problem": first}), (RESERVE_SCOPE, second)], [])
        assert not ok
        assert "staff reserve of 137.5 m²" in text  # the unproven problem is named too
    assert refusal([(first, None), (RESERVE_SCOPE, None)], []) == ("", False)  # nothing claimed
    text, ok = refusal([(first, {**PROVEN, "problem": first})],
                       ["no plan broke the egress rule, which a staff reserve is for"])
    assert ok and "no other layout problem applies (no plan broke the egress rule" in text


def _refused_with(monkeypatch: pytest.MonkeyPatch, broke: set[str], short: set[str],
                  prove_retries: bool) -> tuple[LayoutRefused, list[Any]]:
    """plan_floor on a 14 x 12 m hall whose every layout problem is refused, as set up here.

    Each problem's best plan fails the minimum width; its other plans broke ``broke``
    and fell short of ``short``'s fixtures; the first problem's exhaustive search is
    a proof, a retry's only when ``prove_retries``. Returns the refusal and the
    allotments laid out by the full search (the cheap ones before it skip the fallback).
    """
    laid: list[Any] = []

    def attempts(problem: Any, allotment: Any, sizing: Any, *args: Any) -> tuple[Any, Any]:
        *_, seen_broke, seen_short = args
        seen_broke.update({"min_width"} | broke)
        seen_short.update(short)
        metrics: dict[str, Any] = {
            "constraints": {"min_width": {"pass": False, "detail": "narrow"}},
            "fixtures": {f: 99 for f in FIXTURE_OF.values()}}
        if not _fallback.quick():
            laid.append(allotment)
            retry = bool(allotment.reserve_m2 or allotment.grown)
            if prove_retries or not retry:
                metrics["exhaustive"] = {**PROVEN, "problem": allotment.scope(
                    sizing["programme_m2"])}
        return SimpleNamespace(metrics=metrics), ((), ())

    monkeypatch.setattr(plan_module, "_attempts", attempts)
    # the hall is 1.5 x the programme: no unit of it is cut (the premises' own problems here)
    monkeypatch.setattr(plan_module, "_UNIT_SHARES", ())
    std = default_standard().with_zones(["advisory"])
    with pytest.raises(LayoutRefused) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan_floor(box(0, 0, 14, 12), [Point(7, 0)], 100.0, standard=std, seed=1)
    return err.value, laid


def test_a_retry_some_plan_calls_for_is_searched_before_a_refusal_is_proven(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first problem's proof is no proof of the floor while a retry is left: a plan
    other than the least broken broke the egress rule (a staff reserve's purpose) or fell
    short of its fixtures (the zone is grown), so that problem is searched too, and the
    refusal is proven only when its search is."""
    refused, laid = _refused_with(monkeypatch, {"egress_distance"}, set(), prove_retries=False)
    assert [a.reserve_m2 > 0 for a in laid[:2]] == [False, True]
    assert not refused.proven
    assert "staff reserve of" in str(refused) and "no exhaustive search" in str(refused)
    refused, laid = _refused_with(monkeypatch, {"egress_distance"}, set(), prove_retries=True)
    assert refused.proven
    assert str(refused).count("finds none that keeps every zone rule") == 2
    # the desks fell short in some plan: the advisory zone grown is a problem of its own
    refused, laid = _refused_with(monkeypatch, {"fixtures_match_programme"}, {"advisory"},
                                  prove_retries=False)
    assert [a.grown for a in laid[:2]] == [(), ("advisory",)]
    assert not refused.proven
    assert "advisory grown for the fixtures that fell short" in str(refused)


def test_a_refusal_with_no_retry_left_is_proven_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    refused, laid = _refused_with(monkeypatch, set(), set(), prove_retries=False)
    assert len(laid) == 1 and refused.proven
    text = str(refused)
    assert "of these 4 zones at their allotted sizes" in text
    assert "no plan broke the egress rule, which a staff reserve is for" in text
    assert "no plan placed fewer fixtures than planned" in text
