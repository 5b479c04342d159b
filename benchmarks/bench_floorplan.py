"""Benchmark the floor-zone planner on seeded outlines; prints JSON.

Outlines: rectangle, L, T, U and irregular (chamfered, skewed), 150-600 m², turned
by a random angle, with 5-7 zones (the standard has seven zone kinds) and a
demand whose programme fills 60-95 % of the floor. The baseline is an
exhaustive search over every layout the method can express (all zone orders and
cut orientations) on the instances with at most 6 zones, in the same run.

plan_floor refuses (InputError) rather than return a plan that breaks a hard
constraint, so refusals are reported apart from violations, with the rules the
best try broke; for the first ``--check-refused`` refused instances of 5 zones an
exhaustive search decides whether any layout the method can express is valid,
and names the zones its best layout cannot fit. Also reported: the zone /
programme area ratio of every programme zone (at most 1.5 by the standard, the
rest labelled flex or circulation) and, on ``--exhaustive`` 5-zone instances,
the search's cost and adjacency satisfaction against the exhaustive optimum.
Times are wall-clock and CPU seconds per plan (the CPU time is the fairer
figure on a shared machine). ``refused_proven`` counts refusals plan_floor
proves (the message names the zone: too narrow, public floor beyond the door's
egress reach, too small, or no layout of up to seven zones keeping the zone
rules, or passing the full checks, in plan_floor's own exhaustive search of every
layout problem it tried: ``LayoutRefused.proven``); each
refusal lists its exhaustive fallbacks (one per layout problem tried: zones,
layouts ``visited`` and ``pruned`` of all ``layouts``, ``complete``, distinct
layouts keeping the zone rules and ``checked``); ``reserve_plans`` the plans whose
surplus beyond the egress reach is a staff reserve; ``plans_with_counter_pockets_cut_off``
the plans with a counter station whose staff side has no staff-only way to the cash
room (reported, not yet enforced).

    .venv/bin/python benchmarks/bench_floorplan.py [--n 200] [--exhaustive 4] [--check-refused 2]
        [--instances 11,18,20]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Point, Polygon

import siteplanner.floorplan.plan as _plan_module
from siteplanner._errors import InputError
from siteplanner.floorplan import Demand, default_standard, plan_floor
from siteplanner.floorplan._check import check_layout
from siteplanner.floorplan._fallback import LayoutRefused
from siteplanner.floorplan.layout import GRID, LayoutProblem
from siteplanner.floorplan.plan import _frame, allot
from siteplanner.floorplan.search import search_exhaustive
from siteplanner.floorplan.sizing import programme_area, size_programme
from siteplanner.floorplan.standard import Standard

OPTIONAL = ("advisory", "back_office", "vault", "restroom")
CONSTRAINTS = ("inside_outline", "no_overlap", "covers_outline", "area_within_tolerance",
               "self_service_at_entrance", "x_pairs_no_shared_wall", "turning_circle",
               "min_width", "connected", "fixtures_match_programme", "fixtures_inside_zone",
               "fixtures_no_overlap", "secure_no_public_wall", "staff_reach_secure",
               "counter_only_interface", "route_reaches_public_zones",
               "clear_width_past_fixtures", "egress_distance", "zone_size_honest")


#: Phrases of plan_floor's refusals that are proofs (no layout can meet the standard).
PROOFS = ("no layout meets the egress rule", "no layout can meet the minimum widths",
          "too small: it has", "finds none that keeps every zone rule",
          "and every one fails the full plan checks")


def _shape(kind: str, rng: np.random.Generator) -> Polygon:
    w, h = rng.uniform(1.0, 1.8), 1.0
    if kind == "rectangle":
        return shapely.box(0, 0, w, h)
    a, b = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
    if kind == "L":
        return Polygon([(0, 0), (w, 0), (w, b * h), (a * w, b * h), (a * w, h), (0, h)])
    if kind == "T":
        s0, s1 = (0.5 - a / 3) * w, (0.5 + a / 3) * w
        return Polygon([(s0, 0), (s1, 0), (s1, b * h), (w, b * h), (w, h), (0, h), (0, b * h),
                        (s0, b * h)])
    if kind == "U":
        arm = rng.uniform(0.28, 0.34) * w
        return Polygon([(0, 0), (w, 0), (w, h), (w - arm, h), (w - arm, b * h), (arm, b * h),
                        (arm, h), (0, h)])
    c1, c2 = rng.uniform(0.1, 0.3, 2)
    skew = rng.uniform(-0.15, 0.15)
    return Polygon([(0, 0), (w - c1, 0), (w, c1), (w + skew, h - c2), (w + skew - c2, h),
                    (skew, h)])


def _instance(k: int, rng: np.random.Generator, std: Standard,
              fill_range: tuple[float, float] = (0.6, 0.95)) -> dict[str, object]:
    kind = ("rectangle", "L", "T", "U", "irregular")[k % 5]
    area = rng.uniform(150, 600)
    poly = _shape(kind, rng)
    poly = affinity.scale(poly, math.sqrt(area / poly.area), math.sqrt(area / poly.area),
                          origin=(0, 0))
    poly = affinity.rotate(poly, rng.uniform(0, 180), origin=(0, 0))
    n_opt = int(rng.integers(2, 5))
    zones = [str(z) for z in rng.choice(OPTIONAL, size=n_opt, replace=False)]
    sub = std.with_zones(zones)
    fill = rng.uniform(*fill_range)
    lo, hi = 5.0, 600.0
    for _ in range(40):  # bisection on arrivals for the wanted programme share
        mid = (lo + hi) / 2
        try:
            too_big = programme_area(size_programme(Demand(mid), sub)) > fill * area
        except Exception:  # demand beyond a max_servers cap counts as too big
            too_big = True
        lo, hi = (lo, mid) if too_big else (mid, hi)
    ring = poly.exterior
    edges = np.diff(shapely.get_coordinates(ring), axis=0)
    lengths = np.hypot(*edges.T)
    e = int(rng.choice(len(lengths), p=lengths / lengths.sum()))
    at = float(lengths[:e].sum() + rng.uniform(0.25, 0.75) * lengths[e])
    return {"kind": kind, "outline": poly, "entrance": ring.interpolate(at), "standard": sub,
            "arrivals": lo, "seed": k}


def _problem(inst: dict[str, object]) -> LayoutProblem:
    """The same search problem plan_floor builds, for the exhaustive baseline."""
    std = inst["standard"]
    poly = inst["outline"]
    assert isinstance(std, Standard) and isinstance(poly, Polygon)
    sizing = size_programme(Demand(float(inst["arrivals"])), std)  # type: ignore[arg-type]
    target = allot(sizing["programme_m2"], poly.area, std).targets
    fwd, _ = _frame(poly)
    local = shapely.set_precision(affinity.affine_transform(poly, fwd), GRID)
    door = affinity.affine_transform(poly.exterior.interpolate(
        poly.exterior.project(inst["entrance"])), fwd)  # type: ignore[arg-type]
    return LayoutProblem(local, tuple(str(k) for k in sizing.index), target.to_numpy(dtype=float),
                         (Point(door.coords[0]),), std)


#: What each exhaustive fallback of the current plan reported (its ``metrics["exhaustive"]``).
_FALLBACKS: list[dict[str, object]] = []
_KEEP = ("layouts", "visited", "pruned", "costed", "complete", "search_cpu_s",
         "zone_rules_met", "distinct_keeping_zone_rules", "checked", "all_checked",
         "zones_not_fitting")


def _recording(fallback: Any) -> Any:
    """plan_floor's exhaustive fallback, recording each run's figures (the refusal's are lost)."""
    def run(problem: LayoutProblem, best: Any, *args: Any, **kwargs: Any) -> Any:
        out = fallback(problem, best, *args, **kwargs)
        ex = out[0][1].metrics.get("exhaustive") if not out[1] else None
        _FALLBACKS.append({"zones": problem.n, "planned": bool(out[1]),
                           **({k: ex[k] for k in _KEEP if k in ex} if ex else {})})
        return out
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--exhaustive", type=int, default=4, help="instances with an exhaustive "
                    "baseline (5-zone instances: 1,920 layouts each)")
    ap.add_argument("--check-refused", type=int, default=2, help="refused instances of 5 zones "
                    "searched exhaustively for any valid layout")
    ap.add_argument("--budget", type=int, default=None, help="plan_floor's search budget "
                    "(its default when not given)")
    ap.add_argument("--instances", default=None, help="comma-separated outline numbers to "
                    "plan, of the first --n (the others are drawn but not planned)")
    ap.add_argument("--fill", default="0.6,0.95", help="range of the programme's share of "
                    "the outline, drawn per outline (premises far larger than the branch: "
                    "0.3,0.5)")
    args = ap.parse_args()
    fill_range = tuple(float(v) for v in args.fill.split(","))
    _plan_module.exhaustive = _recording(_plan_module.exhaustive)  # type: ignore[assignment]
    rng = np.random.default_rng(20240603)
    std = default_standard()
    runtimes, cpu, err_mean, err_max, sat, violated = [], [], [], [], [], []
    refused: list[dict[str, object]] = []
    checked = 0
    reserves = 0
    cut_off = 0
    rooms_cut_off = 0
    via_fallback = 0
    extra = {} if args.budget is None else {"budget": args.budget}
    failed: dict[str, int] = {}
    by_kind: dict[str, list[float]] = {}
    gaps: list[dict[str, float]] = []
    ratios: list[float] = []
    only = None if args.instances is None else {int(v) for v in args.instances.split(",")}
    for k in range(args.n):
        inst = _instance(k, rng, std, fill_range)  # drawn in order: the generator's stream is the same
        if only is not None and k not in only:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        _FALLBACKS.clear()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan = plan_floor(inst["outline"], [inst["entrance"]],  # type: ignore[arg-type]
                                  float(inst["arrivals"]),  # type: ignore[arg-type]
                                  standard=inst["standard"], seed=int(inst["seed"]),  # type: ignore
                                  **extra)
        except InputError as exc:
            # no layout met every hard constraint: a clear refusal, counted apart from plans
            runtimes.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            why = [c for c in CONSTRAINTS if c in str(exc)]
            entry: dict[str, object] = {"instance": k, "kind": inst["kind"], "broken": why}
            # refusals plan_floor proves before searching (too narrow, public floor beyond
            # the egress reach of the door, too small) name the zones and need no search; a
            # search's refusal is proven only when every layout problem it tried is (its
            # message may hold the proof of one problem and not of the next)
            proven = (exc.proven if isinstance(exc, LayoutRefused)
                      else any(p in str(exc) for p in PROOFS))
            if proven:
                entry["proof"] = str(exc)
            # the exhaustive fallback of each layout problem tried (the last is the refusal's)
            entry["exhaustive"] = list(_FALLBACKS)
            entry["search_complete"] = bool(_FALLBACKS) and all(f.get("complete")
                                                                for f in _FALLBACKS)
            entry["cpu_s"] = round(cpu[-1], 2)
            n_zones = len(inst["standard"].zones)  # type: ignore[attr-defined]
            if n_zones <= 5 and checked < args.check_refused:
                # does any layout the method can express pass? exhaustive, so it decides
                checked += 1
                problem = _problem(inst)
                genome, best = search_exhaustive(problem)
                entry["expressible_valid_layout"] = check_layout(
                    problem.decode(genome), problem.kinds, problem.targets, problem.outline,
                    problem.entrances, problem.standard)["all_constraints_pass"]
                # the zones the best expressible layout cannot fit (width, circle, one piece)
                broken, _ = problem._zone_terms(problem._leaves(genome))
                entry["zones_not_fitting"] = [problem.kinds[i] for i in np.flatnonzero(broken > 0)]
                entry["exhaustive_best_cost"] = best
            refused.append(entry)
            print(f"{k} {inst['kind']} refused {cpu[-1]:.2f} CPU s: {why}", file=sys.stderr,
                  flush=True)
            continue
        runtimes.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        m = plan.metrics
        via_fallback += any(f["planned"] for f in _FALLBACKS)
        cut_here = len(plan.metrics.get("counter_pockets_cut_off") or [])
        rooms_here = plan.metrics.get("staff_rooms_cut_off") or []
        print(f"{k} {inst['kind']} planned {cpu[-1]:.2f} CPU s"
              + (f", {cut_here} counter pocket(s) cut off" if cut_here else "")
              + (f", {rooms_here} cut off" if rooms_here else ""),
              file=sys.stderr, flush=True)
        reserves += m.get("reserve_m2", 0.0) > 0
        cut_off += bool(m.get("counter_pockets_cut_off"))
        rooms_cut_off += bool(m.get("staff_rooms_cut_off"))
        err_mean.append(m["area_error_mean"])
        err_max.append(m["area_error_max"])
        sat.append(m["adjacency_satisfaction"])
        violated.append(not m["all_constraints_pass"])
        by_kind.setdefault(str(inst["kind"]), []).append(float(not m["all_constraints_pass"]))
        for name, c in m["constraints"].items():
            failed[name] = failed.get(name, 0) + (not c["pass"])
        ratios += [r for k, r in m["zone_programme_ratio"].items()]
        n_zones = len(m["genome"]["order"])  # the zones searched (flex is cut off after)
        if len(gaps) < args.exhaustive and len(m["genome"]["order"]) == 5:
            problem = _problem(inst)
            order = tuple(problem.kinds.index(z) for z in m["genome"]["order"])
            ours = problem.cost((order, tuple(m["genome"]["flips"])))
            t1 = time.perf_counter()
            genome, best = search_exhaustive(problem)
            seconds = time.perf_counter() - t1
            opt = check_layout(problem.decode(genome), problem.kinds, problem.targets,
                               problem.outline, problem.entrances, problem.standard)
            gaps.append({"zones": n_zones, "ours": ours, "optimum": best, "seconds": seconds,
                         "sat_ours": m["adjacency_satisfaction"],
                         "sat_opt": opt["adjacency_satisfaction"],
                         "feasible_ours": m["all_constraints_pass"],
                         "feasible_opt": opt["all_constraints_pass"]})
    rt = np.array(runtimes)
    cost_ours = np.array([g["ours"] for g in gaps])
    cost_best = np.array([g["optimum"] for g in gaps])
    sat_ours = np.array([g["sat_ours"] for g in gaps])
    sat_best = np.array([g["sat_opt"] for g in gaps])
    out = {
        "instances": args.n,
        "fill": list(fill_range),
        "runtime_s": {"median": float(np.median(rt)), "p95": float(np.quantile(rt, 0.95)),
                      "cpu_median": float(np.median(cpu)),
                      "cpu_p95": float(np.quantile(cpu, 0.95))},
        "plans": len(violated),
        "refused": len(refused),
        "refused_proven": sum("proof" in r for r in refused),
        "reserve_plans": reserves,
        # plans whose counter line leaves a station's staff pocket with no staff-only way
        # to the cash room (reported by plan_floor, not yet a hard constraint)
        "plans_with_counter_pockets_cut_off": cut_off,
        # plans with a back office or reserve whose only way to the cash room crosses the
        # customers' floor (reported, not a hard constraint)
        "plans_with_staff_rooms_cut_off": rooms_cut_off,
        "plans_found_by_exhaustive_fallback": via_fallback,
        "refused_complete_search": sum(bool(r["search_complete"]) for r in refused),
        "refused_cpu_s": {"median": float(np.median([r["cpu_s"] for r in refused])),
                          "max": float(np.max([r["cpu_s"] for r in refused]))} if refused else None,
        "refusals": refused,
        # (none when every outline planned was refused: an --instances subset of refusals)
        "area_error": {"mean": float(np.mean(err_mean)), "max": float(np.max(err_max))}
        if err_max else None,
        "adjacency_satisfaction": {"mean": float(np.mean(sat)), "min": float(np.min(sat))}
        if sat else None,
        "hard_violation_rate": float(np.mean(violated)) if violated else None,
        "refusal_rate": len(refused) / args.n,
        "violations": int(np.sum(violated)),
        "violation_rate_by_shape": {k: float(np.mean(v)) for k, v in by_kind.items()},
        "refused_by_shape": {k: sum(r["kind"] == k for r in refused)
                             for k in ("rectangle", "L", "T", "U", "irregular")},
        "refused_for": {c: sum(c in r["broken"] for r in refused)  # type: ignore[operator]
                        for c in CONSTRAINTS if any(c in r["broken"] for r in refused)},  # type: ignore[operator]
        "zone_programme_ratio": {
            "zones": len(ratios),
            "quantiles": {q: float(np.quantile(ratios, float(q))) for q in
                          ("0.05", "0.25", "0.5", "0.75", "0.95", "1.0")} if ratios else None,
            "over_max_zone_ratio": int(np.sum(np.array(ratios) > std.max_zone_ratio + 1e-6)),
        },
        "failed_constraints": failed,
        "exhaustive_baseline": {
            "instances": len(gaps),
            "zones": [g["zones"] for g in gaps],
            "found_optimum_rate": float(np.mean(cost_ours <= cost_best + 1e-9)) if gaps else None,
            "mean_cost_gap": float(np.mean(cost_ours - cost_best)) if gaps else None,
            "satisfaction_ratio_to_optimum": float(np.mean(sat_ours) / np.mean(sat_best))
            if gaps else None,
            "feasible_ours_vs_optimum": [int(sum(g["feasible_ours"] for g in gaps)),
                                         int(sum(g["feasible_opt"] for g in gaps))],
            "exhaustive_median_s": float(np.median([g["seconds"] for g in gaps]))
            if gaps else None,
        },
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
