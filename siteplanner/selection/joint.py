"""Choose the set of sites jointly with a location-allocation model.

``top`` (the default) takes candidates in score order with spacing
(:mod:`.spacing`). The other rules pick the best *set* of k sites with the
brand's existing branches kept open, over walk times from the demand points
(H3 cells weighted by foot traffic) to the candidates:

- ``coverage``: the most demand within ``coverage_minutes`` (MCLP);
- ``pmedian``: the least total demand-weighted walk time;
- ``capture``: the most demand captured against competitors (Huff rule, the
  study's λ and attractiveness).

Candidates within ``min_distance_to_own_m`` of an own branch are excluded,
as in ``top``; spacing between new sites is left to the objective, which
already gains nothing from two sites serving the same people.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from siteplanner._errors import InputError
from siteplanner.modes import TravelMode, TravelModes
from siteplanner.network import WalkGraph
from siteplanner.selection._status import status_codes
from siteplanner.selection.capture import MaxCapture
from siteplanner.selection.coverage import MaxCoverage
from siteplanner.selection.pmedian import PMedian

__all__ = ["RULES", "mark_chosen", "select_joint", "select_npv_set"]

Rule = Literal["top", "coverage", "pmedian", "capture"]
RULES: tuple[str, ...] = ("top", "coverage", "pmedian", "capture", "npv")
#: Above this many eligible (paying) candidates or interacting pairs, the NPV
#: MILP gives way to the heuristic under "auto" (benchmarks/bench_business.py).
NPV_EXACT_MAX = {"candidates": 300, "pairs": 5_000}

#: Above this many candidates the exact MILP gives way to the heuristic under "auto".
#: Coverage MILPs solve fast; p-median and capture MILPs on a city's cells
#: (~1,000 x 1,000) do not prove optimality within a minute here, while the
#: heuristic reaches 99 % of the optimum in a second (benchmarks/bench_selection.py).
EXACT_MAX_CANDIDATES = {"coverage": 2_000, "pmedian": 300, "capture": 300}
#: The same with a capacity: the capacitated MILPs are slower (a 200-candidate
#: MCLP took ~100 s), while the capacitated heuristic stays within 1 % of the
#: optimum where it is known (benchmarks/bench_capacity.py).
EXACT_MAX_CANDIDATES_CAPACITATED = {"coverage": 100, "pmedian": 100}


#: Minutes from demand rows to sites: sparse within the cut-off, or dense.
Matrix: TypeAlias = "sp.csr_matrix | np.ndarray"


def select_joint(rule: Rule, ranked: gpd.GeoDataFrame, demand: gpd.GeoDataFrame, *,
                 own: gpd.GeoDataFrame, competitors: gpd.GeoDataFrame, graph: WalkGraph | None,
                 k: int, min_distance_to_own_m: float, coverage_minutes: float,
                 cutoff_min: float, speed_kmh: float, lam: float,
                 attractiveness: tuple[float, float, float], solver: str = "auto",
                 time_limit_s: float = 60.0, seed: int = 0, capacity: float | None = None,
                 modes: TravelModes | None = None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Replace the top-K choice in ``ranked`` by the set a location model chooses.

    ``ranked`` is the output of :func:`~siteplanner.selection.select_top` (it
    carries ``nearest_own_m``); the returned copy has new ``rank`` and
    ``status`` columns. The dict holds the model, method, objective, gap,
    runtime and the objective with the existing branches alone.
    ``capacity`` (``coverage`` and ``pmedian``) is the demand weight each new
    site and each existing own branch can serve; demand is then split among
    the branches in reach. ``modes`` (:mod:`siteplanner.modes`) gives each
    mode's share of a cell its own mode's minutes (None: everyone walks).
    """
    mpm = speed_kmh * 1000 / 60
    if modes is None:
        modes = TravelModes((TravelMode("walk", graph, 1.0, mpm),))
    weights = modes.weights(demand["weight"].to_numpy(dtype=float))
    exclude = np.flatnonzero(ranked["nearest_own_m"].to_numpy() < min_distance_to_own_m)
    free = len(ranked) - len(exclude)
    if k > free:
        msg = (f"selection.top_k = {k} is more than the {free} candidates left after excluding "
               f"those within {min_distance_to_own_m:.0f} m of own branches; lower top_k or "
               "selection.min_distance_to_own_m")
        raise InputError(msg)
    cost = modes.minutes(demand, ranked, cutoff_min=cutoff_min)
    fixed = modes.minutes(demand, own, cutoff_min=cutoff_min) if len(own) else None
    if capacity is not None and rule not in ("coverage", "pmedian"):
        msg = f"selection.capacity applies to --select coverage or pmedian, not {rule!r}"
        raise InputError(msg)
    limits = EXACT_MAX_CANDIDATES if capacity is None else EXACT_MAX_CANDIDATES_CAPACITATED
    method = solver if solver != "auto" else (
        "exact" if len(ranked) <= limits.get(rule, 0) else "heuristic")
    caps: dict[str, Any] = {} if capacity is None else {
        "capacity": np.full(len(ranked), capacity),
        "fixed_capacity": np.full(len(own), capacity) if fixed is not None else None}
    comp_cost = None
    if rule == "capture":
        if len(competitors) == 0:
            msg = "--select capture needs competitors, and the competitors layer is empty"
            raise InputError(msg)
        comp_cost = modes.minutes(demand, competitors, cutoff_min=cutoff_min)
    model = _model(rule, cost, weights, k=k, fixed=fixed, exclude=exclude, caps=caps,
                   coverage_minutes=coverage_minutes, cutoff_min=cutoff_min, lam=lam,
                   attractiveness=attractiveness, comp_cost=comp_cost,
                   n_own=len(own), n_comp=len(competitors))
    model.solve(method, time_limit=time_limit_s, random_state=seed)  # type: ignore[arg-type]
    chosen = np.asarray(model.selected_, dtype=int)
    out = mark_chosen(ranked, chosen, rule, min_distance_to_own_m=min_distance_to_own_m)
    info = _solution_info(model, rule, method, coverage_minutes=coverage_minutes,
                          capacity=capacity, weights=weights)
    return out, info


def _model(rule: str, cost: Matrix, weights: np.ndarray, *, k: int,
           fixed: Matrix | None, exclude: np.ndarray, caps: dict[str, Any],
           coverage_minutes: float, cutoff_min: float, lam: float,
           attractiveness: tuple[float, float, float], comp_cost: Matrix | None,
           n_own: int, n_comp: int) -> MaxCoverage | PMedian | MaxCapture:
    """The location model of ``rule`` on the demand-by-candidate minutes ``cost``."""
    n = cost.shape[1]
    if rule == "coverage":
        return MaxCoverage.from_cost_matrix(cost, weights, k=k, max_cost=coverage_minutes,
                                            fixed=fixed, exclude=exclude, **caps)
    if rule == "pmedian":
        return PMedian.from_cost_matrix(cost, weights, k=k, fixed=fixed, exclude=exclude,
                                        unreachable_cost=cutoff_min * 2, **caps)
    if rule == "capture":
        a_own, a_comp, a_new = attractiveness
        return MaxCapture.from_cost_matrix(
            cost, weights, k=k, competitor_cost=comp_cost, fixed=fixed, rule="huff", beta=lam,
            attractiveness=np.full(n, a_new),
            fixed_attractiveness=np.full(n_own, a_own) if n_own else None,
            competitor_attractiveness=np.full(n_comp, a_comp), exclude=exclude)
    msg = f"--select {rule!r}: use one of {', '.join(RULES)}"
    raise InputError(msg)


def _solution_info(model: MaxCoverage | PMedian | MaxCapture, rule: str, method: str, *,
                   coverage_minutes: float, capacity: float | None,
                   weights: np.ndarray) -> dict[str, Any]:
    """What ``run.json`` records of a solved location model."""
    info = {
        "rule": rule,
        "model": type(model).__name__,
        "method": method,
        "objective": round(float(model.objective_), 6),
        "existing_only_objective": round(float(model.baseline_), 6),
        "gap": None if not np.isfinite(model.gap_) else round(float(model.gap_), 6),
        "runtime_s": round(float(model.runtime_), 3),
        "status": model.status_,
        "units": {"coverage": "weighted demand within coverage_minutes",
                  "pmedian": "demand-weighted walk minutes",
                  "capture": "weighted demand captured by the brand"}[rule],
        "coverage_minutes": coverage_minutes if rule == "coverage" else None,
        "capacity": capacity,
    }
    if capacity is not None:
        served = np.asarray(model.allocation_.sum(axis=1)).ravel()  # type: ignore[union-attr]
        info["demand_total"] = round(float(weights.sum()), 6)
        info["demand_unserved"] = round(float(np.maximum(weights - served, 0.0).sum()), 6)
    return info


def mark_chosen(ranked: gpd.GeoDataFrame, chosen: np.ndarray, rule: str, *,
                min_distance_to_own_m: float) -> gpd.GeoDataFrame:
    """``ranked`` with ``rank`` (score order among ``chosen``) and ``status`` for a joint set."""
    out = ranked.copy()
    order = chosen[np.lexsort((out.index.to_numpy()[chosen].astype(str),
                               -out["score"].to_numpy()[chosen]))]
    rank = np.zeros(len(out), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)
    near_own = out["nearest_own_m"].to_numpy() < min_distance_to_own_m
    status = np.where(near_own, out["status"].astype(str).to_numpy(), "not_in_set").astype(object)
    detail = np.where(near_own, out["status_detail"].to_numpy(), f"not in the {rule} set")
    detail = detail.astype(object)
    status[order] = "selected"
    detail[order] = [f"selected #{r} ({rule} set)" for r in range(1, len(order) + 1)]
    out["rank"] = pd.array(np.where(rank > 0, rank, np.nan), dtype="Int64")
    out["status"] = status_codes(status)
    out["status_detail"] = detail
    return out


def select_npv_set(ranked: gpd.GeoDataFrame, inputs: Any, *, budget: float | None, k: int,
                   min_spacing_m: float, min_distance_to_own_m: float, min_npv: float,
                   currency: str, solver: str = "auto", time_limit_s: float = 60.0,
                   seed: int = 0) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """``--select npv``: the set with the most total NPV within the capex budget.

    ``inputs`` is an :class:`siteplanner.economics.NPVInputs` over ``ranked``'s
    rows. Candidates near own branches, below the NPV hurdle ``min_npv`` or
    dearer than the budget are not eligible; spacing conflicts and the
    pairwise cannibalisation between chosen sites are in the model.
    """
    from scipy.spatial import cKDTree

    from siteplanner.economics import money
    from siteplanner.selection.npv import MaxNPV

    table = inputs.table
    value, capex = table["npv"].to_numpy(dtype=float), table["capex"].to_numpy(dtype=float)
    near_own = ranked["nearest_own_m"].to_numpy() < min_distance_to_own_m
    pays = (value >= min_npv) & (value > 0) & ~near_own
    if not pays.any():
        best = float(np.max(np.where(near_own, -np.inf, value))) if (~near_own).any() else np.nan
        msg = (f"--select npv: no candidate pays at the study's economics (best NPV "
               f"{money(best, currency)}, hurdle {money(min_npv, currency)}); check [economics] "
               "or lower --min-npv")
        raise InputError(msg)
    cap = float(capex[pays].sum()) + 1.0 if budget is None else budget
    if not (pays & (capex <= cap)).any():
        msg = (f"--budget {money(cap, currency)} fits no site: the cheapest site that pays costs "
               f"{money(float(capex[pays].min()), currency)} in capex; raise the budget")
        raise InputError(msg)
    xy = np.column_stack([ranked.geometry.x, ranked.geometry.y])
    idx = np.flatnonzero(pays)
    conf = (idx[cKDTree(xy[idx]).query_pairs(min_spacing_m * (1 - 1e-12), output_type="ndarray")]
            if min_spacing_m > 0 and len(idx) > 1 else np.empty((0, 2), dtype=int))
    model = MaxNPV.from_arrays(value, capex, budget=cap, k=k, conflicts=conf, pairs=inputs.pairs,
                               loss=inputs.loss, exclude=~pays, market=inputs.market)
    n_pairs = int(np.isin(inputs.pairs, idx).all(axis=1).sum()) if len(inputs.pairs) else 0
    method = solver if solver != "auto" else (
        "exact" if len(idx) <= NPV_EXACT_MAX["candidates"] and n_pairs <= NPV_EXACT_MAX["pairs"]
        else "heuristic")
    model.solve(method, time_limit=time_limit_s, random_state=seed)  # type: ignore[arg-type]
    out = mark_chosen(ranked, np.asarray(model.selected_, dtype=int), "npv",
                      min_distance_to_own_m=min_distance_to_own_m)
    info = {
        "rule": "npv", "model": "MaxNPV", "method": method,
        "objective": round(model.objective_, 2), "bound": round(model.bound_, 2),
        "bound_method": model.bound_method_, "bounds": model.bounds_,
        "bounds_skipped": model.bounds_skipped_, "gap": round(float(model.gap_), 6),
        "runtime_s": round(model.runtime_, 3),
        "status": model.status_, "units": f"total NPV ({currency}), pairwise cannibalisation",
        "budget": budget, "capex_used": round(float(capex[model.selected_].sum()), 2),
        "eligible_candidates": int(len(idx)), "interacting_pairs": n_pairs,
        "spacing_conflicts": int(len(conf)), "min_npv": min_npv,
    }
    return out, info
