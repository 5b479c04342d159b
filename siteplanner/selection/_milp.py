"""Exact formulations solved with ``scipy.optimize.milp`` (HiGHS).

All models are built as sparse matrices. What "exact" means per model:

* coverage (and nearest-facility capture): the textbook MCLP after removing
  rows that are already covered or cannot be covered, and merging rows with the
  same set of covering candidates (their weights add up). Same optimum.
* p-median: the radius formulation (Elloumi 2010) truncated to each demand
  point's ``L_i`` nearest distinct cost levels. The truncated model is a
  relaxation; whenever its solution serves every row within its levels, that
  solution is optimal for the full problem. Otherwise the offending rows get
  more levels and the model is solved again.
* capacitated models: a splittable assignment over the stored (reachable)
  pairs only.
* Huff capture: outer approximation of the concave share function by tangent
  cuts, refined at each solution until the bound and the true value meet.

Each solver returns the best selection, its objective, and a proven bound on
the optimum (from HiGHS's dual bound) so that a gap can be reported even when
the time limit stops the search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from siteplanner.selection._capacitated import CapacitatedProblem
from siteplanner.selection._heuristic import (
    HuffProblem,
    MinCostProblem,
    evaluate_huff,
    evaluate_min_cost,
)

__all__ = [
    "ExactResult",
    "InfeasibleModel",
    "solve_capacitated",
    "solve_coverage",
    "solve_huff",
    "solve_pmedian",
]

_STATUS_OPTIMAL = 0
_STATUS_INFEASIBLE = 2
# HiGHS's presolve ignored a 60 s time limit for ~10 minutes on a 2.4M-pair
# MCLP, and without it the models here solved 2-3x faster (1000 x 2000 MCLP:
# 21 s against 49 s; 200 x 1000 p-median: 24 s against 67 s).
_PRESOLVE = False


class InfeasibleModel(Exception):
    """HiGHS proved the model infeasible; the caller turns it into an InputError."""


@dataclass(frozen=True)
class ExactResult:
    selected: np.ndarray
    objective: float
    bound: float
    optimal: bool


@dataclass(frozen=True)
class _Milp:
    x: np.ndarray | None
    objective: float
    bound: float
    optimal: bool


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.perf_counter(), 0.0)


def _run(
    c: np.ndarray,
    integrality: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    a: sp.csr_array,
    a_lo: np.ndarray,
    a_hi: np.ndarray,
    *,
    deadline: float | None,
    rel_gap: float,
) -> _Milp:
    """Minimise ``c @ x``; returns the incumbent (if any) and HiGHS's dual bound."""
    options: dict[str, object] = {"disp": False, "mip_rel_gap": rel_gap, "presolve": _PRESOLVE}
    left = _remaining(deadline)
    if left is not None:
        options["time_limit"] = max(left, 0.5)
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        constraints=LinearConstraint(sp.csr_matrix(a), a_lo, a_hi),
        options=options,
    )
    if res.status == _STATUS_INFEASIBLE:
        raise InfeasibleModel
    bound = res.get("mip_dual_bound")
    if bound is None or not np.isfinite(bound):
        bound = -np.inf
    if res.x is None:
        return _Milp(None, np.inf, float(bound), False)
    return _Milp(np.asarray(res.x), float(res.fun), float(bound), res.status == _STATUS_OPTIMAL)


def _pick_sites(x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    return np.sort(columns[x > 0.5])


# --------------------------------------------------------------------------- coverage


def _merge_rows(a: sp.csr_array, weights: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
    """Merge rows covered by the same candidate set, adding their weights."""
    rng = np.random.default_rng(12345)
    n_cols = a.shape[1]
    # Two independent 64-bit random sums identify a set; a collision has
    # probability ~ n^2 / 2^128, far below any solver tolerance.
    keys = rng.integers(0, 2**62, size=(2, n_cols), dtype=np.int64).astype(np.uint64)
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    h = np.zeros((a.shape[0], 3), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for t in range(2):
            np.add.at(h[:, t], rows, keys[t][a.indices])
    h[:, 2] = np.diff(a.indptr).astype(np.uint64)
    _, first, inverse = np.unique(h, axis=0, return_index=True, return_inverse=True)
    merged_w = np.bincount(inverse.ravel(), weights=weights, minlength=first.size)
    return sp.csr_array(a[first]), merged_w


def solve_coverage(
    p: MinCostProblem, *, deadline: float | None, rel_gap: float
) -> ExactResult:
    """Maximise covered weight; ``p`` is coverage in min-cost form (cost 0, base 1).

    Returns the objective as *uncovered* weight so that it is comparable with
    :func:`evaluate_min_cost`.
    """
    w = p.weights
    keep_rows = (p.base > 0) & (np.diff(p.cost.indptr) > 0) & (w > 0)
    a = sp.csr_array(p.cost[np.flatnonzero(keep_rows)])
    a = sp.csr_array(a[:, np.flatnonzero(p.allowed)])
    cols = np.flatnonzero(p.allowed)
    used = np.flatnonzero(np.bincount(a.indices, minlength=a.shape[1]) > 0)
    a = sp.csr_array(a[:, used])
    cols = cols[used]
    a.data = np.ones_like(a.data)
    a, wr = _merge_rows(a, w[keep_rows])
    no_sites = float(w @ p.base)  # uncovered weight before any new site opens
    n_x, n_y = a.shape[1], a.shape[0]
    if n_x == 0 or n_y == 0:
        return ExactResult(np.array([], dtype=np.int64), no_sites, no_sites, True)
    # y_i - sum_j a_ij x_j <= 0 ; sum x <= k
    link = sp.hstack([-a, sp.eye_array(n_y)], format="csr")
    budget = sp.csr_array(np.r_[np.ones(n_x), np.zeros(n_y)][None, :])
    mat = sp.vstack([link, budget], format="csr")
    lo = np.r_[np.full(n_y, -np.inf), -np.inf]
    hi = np.r_[np.zeros(n_y), min(p.k, n_x)]
    c = np.r_[np.zeros(n_x), -wr]
    res = _run(
        c, np.r_[np.ones(n_x), np.zeros(n_y)], np.zeros(n_x + n_y), np.ones(n_x + n_y),
        mat, lo, hi, deadline=deadline, rel_gap=rel_gap,
    )
    if res.x is None:
        return ExactResult(np.array([], dtype=np.int64), np.inf, no_sites + res.bound, False)
    selected = _pick_sites(res.x[:n_x], cols)
    uncovered = float(w @ evaluate_min_cost(p, selected))
    return ExactResult(selected, uncovered, no_sites + res.bound, res.optimal)


# --------------------------------------------------------------------------- p-median


@dataclass(frozen=True)
class _Levels:
    """Entries sorted by (row, cost) with their distinct-level number per row."""

    rows: np.ndarray
    cols: np.ndarray
    cost: np.ndarray
    level: np.ndarray  # 0-based distinct level within the row
    n_levels: np.ndarray  # per row


def _levels(p: MinCostProblem) -> _Levels:
    cost = p.cost
    allowed_entry = p.allowed[cost.indices]
    rows = np.repeat(np.arange(cost.shape[0]), np.diff(cost.indptr))[allowed_entry]
    cols = cost.indices[allowed_entry]
    vals = cost.data[allowed_entry]
    order = np.lexsort((vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    new_row = np.r_[True, rows[1:] != rows[:-1]] if rows.size else np.zeros(0, bool)
    new_level = new_row | np.r_[True, vals[1:] != vals[:-1]] if rows.size else new_row
    step = np.cumsum(new_level)
    row_start = np.maximum.accumulate(np.where(new_row, step, 0)) if rows.size else step
    level = step - row_start
    n_levels = np.zeros(cost.shape[0], dtype=np.int64)
    if rows.size:
        np.maximum.at(n_levels, rows, level + 1)
    return _Levels(rows, cols, vals, level, n_levels)


def _pmedian_model(
    p: MinCostProblem,
    lv: _Levels,
    depth: np.ndarray,
    required: np.ndarray,
    *,
    deadline: float | None,
    rel_gap: float,
) -> tuple[_Milp, float, np.ndarray]:
    """Truncated radius formulation; returns (result, constant, truncated next-level cost)."""
    w = p.weights
    n = p.cost.shape[1]
    keep = lv.level < depth[lv.rows]
    rows, cols, cost, level = lv.rows[keep], lv.cols[keep], lv.cost[keep], lv.level[keep]
    if rows.size == 0 and not required.any():
        constant = float(w @ p.base)
        return _Milp(np.zeros(n), constant, constant, True), constant, p.base.astype(float)
    first_of_level = np.r_[True, (rows[1:] != rows[:-1]) | (level[1:] != level[:-1])]
    lrow, llev, lcost = rows[first_of_level], level[first_of_level], cost[first_of_level]
    n_z = lrow.size
    nxt, first_cost, next_cost = _level_costs(p, lv, depth, lrow, llev, lcost)
    constant = float(w @ first_cost)
    # z_(i,h) - z_(i,h-1) + sum_{j at level h} x_j >= 0, with z_(i,-1) := 1
    z_id = np.arange(n_z)
    con_of_entry = np.searchsorted(
        lrow * (int(lv.n_levels.max(initial=0)) + 1) + llev,
        rows * (int(lv.n_levels.max(initial=0)) + 1) + level,
    )
    must = required[lv.rows]
    req_rows, req_cols = lv.rows[must], lv.cols[must]
    used_cols = np.unique(np.r_[cols, req_cols])
    n_x = used_cols.size
    x_part = sp.coo_array(
        (np.ones(cols.size), (con_of_entry, np.searchsorted(used_cols, cols))), shape=(n_z, n_x)
    )
    req_part = _required_rows(req_rows, req_cols, used_cols, n_z)
    n_req = req_part.shape[0]
    prev = np.flatnonzero(llev > 0)
    z_part = sp.coo_array(
        (np.r_[np.ones(n_z), -np.ones(prev.size)], (np.r_[z_id, prev], np.r_[z_id, prev - 1])),
        shape=(n_z, n_z),
    )
    link = sp.hstack([x_part, z_part], format="csr")
    budget = sp.csr_array(np.r_[np.ones(n_x), np.zeros(n_z)][None, :])
    mat = sp.vstack([link, req_part, budget], format="csr")
    lo = np.r_[np.where(llev == 0, 1.0, 0.0), np.ones(n_req), -np.inf]
    hi = np.r_[np.full(n_z, np.inf), np.full(n_req, np.inf), min(p.k, n_x)]
    c = np.r_[np.zeros(n_x), w[lrow] * (nxt - lcost)]
    res = _run(
        c, np.r_[np.ones(n_x), np.zeros(n_z)], np.zeros(n_x + n_z), np.ones(n_x + n_z),
        mat, lo, hi, deadline=deadline, rel_gap=rel_gap,
    )
    if res.x is None:
        return _Milp(None, np.inf, constant + res.bound, False), constant, next_cost
    x = np.zeros(n)
    x[used_cols] = res.x[:n_x]
    return (
        _Milp(x, constant + res.objective, constant + res.bound, res.optimal),
        constant,
        next_cost,
    )


def _level_costs(
    p: MinCostProblem, lv: _Levels, depth: np.ndarray, lrow: np.ndarray, llev: np.ndarray,
    lcost: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per kept level, the cost of the level after it; per row, its first and next-unkept cost.

    The level after a kept level is the next kept one, or for the deepest kept
    level the first dropped level (or the row's base when none is dropped).
    """
    nxt = np.empty(lrow.size)
    same_row_next = np.r_[lrow[1:] == lrow[:-1], False]
    nxt[same_row_next] = lcost[1:][same_row_next[:-1]]
    last = ~same_row_next
    dropped_first = np.full(p.cost.shape[0], np.nan)
    dropped = lv.level == depth[lv.rows]
    dropped_first[lv.rows[dropped]] = lv.cost[dropped]
    tail = p.base[lrow[last]].astype(np.float64)
    extra = dropped_first[lrow[last]]
    tail = np.where(np.isnan(extra), tail, extra)
    nxt[last] = tail
    next_cost = np.array(p.base, dtype=np.float64)
    first_cost = np.array(p.base, dtype=np.float64)
    first_cost[lrow[llev == 0]] = lcost[llev == 0]
    next_cost[lrow[last]] = tail
    return nxt, first_cost, next_cost


def _required_rows(req_rows: np.ndarray, req_cols: np.ndarray, used_cols: np.ndarray,
                   n_z: int) -> sp.coo_array:
    """Every required row has an open site within reach: ``sum_j x_j >= 1``, one row each."""
    _, req_con = np.unique(req_rows, return_inverse=True)
    n_req = int(req_con.max(initial=-1)) + 1
    return sp.coo_array(
        (np.ones(req_rows.size), (req_con.ravel(), np.searchsorted(used_cols, req_cols))),
        shape=(n_req, used_cols.size + n_z),
    )


def solve_pmedian(
    p: MinCostProblem,
    *,
    deadline: float | None,
    rel_gap: float,
    incumbent: np.ndarray,
    required: np.ndarray | None = None,
    start_depth: int = 4,
    full_below: int = 2_000_000,
) -> ExactResult:
    """Exact p-median by the iteratively deepened radius formulation.

    ``required`` marks rows that must have an open candidate within reach.
    Up to ``full_below`` stored pairs the full (untruncated) model is built at
    once: deepening round by round costs more than it saves there.
    """
    need = np.zeros(p.cost.shape[0], dtype=bool) if required is None else required
    lv = _levels(p)
    w = p.weights
    # Start deep enough to hold the incumbent's assignment: the optimum is
    # usually close to it, so most rows never need deepening.
    inc_cost = evaluate_min_cost(p, incumbent)
    level_start = np.r_[True, (lv.rows[1:] != lv.rows[:-1]) | (lv.level[1:] != lv.level[:-1])]
    served = inc_cost < p.base
    reached = level_start & (lv.cost <= inc_cost[lv.rows]) & served[lv.rows]
    inc_level = np.bincount(lv.rows[reached], minlength=p.cost.shape[0])
    if lv.rows.size <= full_below:
        depth = lv.n_levels.copy()
    else:
        depth = np.minimum(lv.n_levels, np.maximum(start_depth, inc_level + 1))
    best_sel, best_obj = np.sort(incumbent), float(w @ inc_cost)
    bound = -np.inf
    while True:
        res, _, next_cost = _pmedian_model(p, lv, depth, need, deadline=deadline,
                                           rel_gap=rel_gap)
        bound = max(bound, res.bound)
        if res.x is None:
            return ExactResult(best_sel, best_obj, bound, False)
        sel = np.flatnonzero(res.x > 0.5)
        true_cost = evaluate_min_cost(p, sel)
        obj = float(w @ true_cost)
        if obj < best_obj:
            best_sel, best_obj = sel, obj
        short = (true_cost > next_cost + 1e-9 * np.maximum(1.0, np.abs(next_cost))) & (
            depth < lv.n_levels
        )
        if not short.any():
            # The truncated model's optimum is feasible and priced exactly, so
            # its dual bound holds for the full problem.
            return ExactResult(best_sel, best_obj, max(bound, res.bound), res.optimal)
        if _remaining(deadline) == 0.0:
            return ExactResult(best_sel, best_obj, bound, False)
        depth = np.where(short, np.minimum(lv.n_levels, 2 * depth + 1), depth)


# --------------------------------------------------------------------------- capacity


def solve_capacitated(
    p: CapacitatedProblem, *, deadline: float | None, rel_gap: float
) -> ExactResult:
    """Splittable capacitated assignment over the stored pairs of ``p``.

    Minimises assignment cost plus ``p.penalty`` per unit of weight left
    unassigned (for coverage: cost 0 and penalty 1, i.e. the uncovered
    weight); rows in ``p.required`` must be fully assigned.
    Raises :class:`InfeasibleModel` when the required rows cannot be served.
    """
    n_rows, n_cols = p.cost.shape
    n_candidates = p.n_candidates
    pairs = p.cost.tocoo()
    ok = (p.weights[pairs.row] > 0) & (
        (pairs.col >= n_candidates) | p.allowed[np.minimum(pairs.col, n_candidates - 1)])
    rows, cols, cost = pairs.row[ok].astype(np.int64), pairs.col[ok].astype(np.int64), pairs.data[ok]
    n_z = rows.size
    cand_cols = np.flatnonzero(p.allowed)
    x_of = np.full(n_candidates, -1)
    x_of[cand_cols] = np.arange(cand_cols.size)
    n_x = cand_cols.size
    z = np.arange(n_z)
    wz = p.weights[rows]
    constant = float(p.weights @ p.penalty)
    # (1) per row: sum_z <= 1, and == 1 for required rows
    row_con = sp.coo_array((np.ones(n_z), (rows, n_x + z)), shape=(n_rows, n_x + n_z))
    row_lo = np.where(p.required, 1.0, -np.inf)
    # (2) per site: sum w z <= cap (existing) or cap x (candidates)
    capacity = p.capacity
    cap_cols = np.flatnonzero(np.isfinite(capacity))
    cap_row_of = np.full(n_cols, -1)
    cap_row_of[cap_cols] = np.arange(cap_cols.size)
    zc = cap_row_of[cols] >= 0
    cap_entries = [(wz[zc], cap_row_of[cols[zc]], n_x + z[zc])]
    cand_cap = cap_cols[cap_cols < n_candidates]
    cand_cap = cand_cap[p.allowed[cand_cap]]
    cap_entries.append((-capacity[cand_cap], cap_row_of[cand_cap], x_of[cand_cap]))
    cv, cr, cc = (np.concatenate(t) for t in zip(*cap_entries, strict=True))
    cap_con = sp.coo_array((cv, (cr, cc)), shape=(cap_cols.size, n_x + n_z))
    cap_hi = np.where(cap_cols < n_candidates, 0.0, capacity[cap_cols])
    # (3) z <= x for candidate pairs: keeps the LP relaxation tight
    cz = np.flatnonzero(cols < n_candidates)
    link = sp.coo_array(
        (np.r_[np.ones(cz.size), -np.ones(cz.size)],
         (np.r_[np.arange(cz.size), np.arange(cz.size)], np.r_[n_x + cz, x_of[cols[cz]]])),
        shape=(cz.size, n_x + n_z),
    )
    budget = sp.csr_array(np.r_[np.ones(n_x), np.zeros(n_z)][None, :])
    mat = sp.vstack([row_con, cap_con, link, budget], format="csr")
    lo = np.r_[row_lo, np.full(cap_cols.size, -np.inf), np.full(cz.size, -np.inf), -np.inf]
    hi = np.r_[np.ones(n_rows), cap_hi, np.zeros(cz.size), min(p.k, n_x)]
    c = np.r_[np.zeros(n_x), wz * (cost - p.penalty[rows])]
    res = _run(c, np.r_[np.ones(n_x), np.zeros(n_z)], np.zeros(n_x + n_z), np.ones(n_x + n_z),
               mat, lo, hi, deadline=deadline, rel_gap=rel_gap)
    if res.x is None:
        return ExactResult(np.array([], dtype=np.int64), np.inf, constant + res.bound, False)
    return ExactResult(_pick_sites(res.x[:n_x], cand_cols), constant + res.objective,
                       constant + res.bound, res.optimal)


# --------------------------------------------------------------------------- Huff


def _tangents(
    s0: np.ndarray, comp: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Value and slope of s / (s + comp) at s0 (comp > 0)."""
    total = s0 + comp
    return s0 / total, comp / total**2


def solve_huff(
    p: HuffProblem,
    *,
    deadline: float | None,
    rel_gap: float,
    incumbent: np.ndarray,
    max_rounds: int = 50,
) -> ExactResult:
    """Maximise captured Huff share by outer approximation with tangent cuts."""
    u, w, comp, base = p.utility, p.weights, p.competition, p.base
    n_rows = u.shape[0]
    cols = np.flatnonzero(p.allowed)
    ua = sp.csr_array(u[:, cols])
    reach = np.diff(ua.indptr) > 0
    # rows with no competitor: captured entirely by any brand site that reaches them
    step_rows = np.flatnonzero((comp <= 0) & (base <= 0) & reach & (w > 0))
    smooth_rows = np.flatnonzero((comp > 0) & reach & (w > 0))
    n_x = cols.size
    var_rows = np.r_[step_rows, smooth_rows]
    n_s = var_rows.size
    fixed_rows = np.ones(n_rows, dtype=bool)
    fixed_rows[var_rows] = False
    constant = float(w[fixed_rows] @ evaluate_huff(p, np.array([], dtype=np.int64))[fixed_rows])

    step = sp.csr_array(ua[step_rows])
    step.data = -np.ones_like(step.data)
    # s_i <= sum_j x_j over the sites reaching a step row (its whole weight, or none)
    step_con = sp.hstack([step, sp.eye_array(step_rows.size, n_s)], format="csr")

    smooth_u = sp.csr_array(ua[smooth_rows])
    cuts_rows, cuts_points = _first_cuts(smooth_u, base[smooth_rows])

    best_sel = np.sort(incumbent)
    best_obj = float(w @ evaluate_huff(p, best_sel))
    bound = np.inf
    optimal = False
    for _ in range(max_rounds):
        mat, hi = _huff_constraints(p, smooth_u, smooth_rows, step_con,
                                    np.concatenate(cuts_rows), np.concatenate(cuts_points))
        lo = np.full(mat.shape[0], -np.inf)
        c = np.r_[np.zeros(n_x), -w[var_rows]]
        res = _run(
            c, np.r_[np.ones(n_x), np.zeros(n_s)], np.zeros(n_x + n_s), np.ones(n_x + n_s),
            mat, lo, hi, deadline=deadline, rel_gap=rel_gap,
        )
        bound = min(bound, constant - res.bound)
        if res.x is None:
            break
        sel = _pick_sites(res.x[:n_x], cols)
        share = evaluate_huff(p, sel)
        obj = float(w @ share)
        if obj > best_obj:
            best_sel, best_obj = sel, obj
        if bound - best_obj <= rel_gap * max(abs(best_obj), 1e-12):
            optimal = res.optimal
            break
        s_model = res.x[n_x + step_rows.size :]
        loose = np.flatnonzero(s_model > share[smooth_rows] + 1e-9)
        if loose.size == 0 or _remaining(deadline) == 0.0:
            optimal = res.optimal and loose.size == 0
            break
        s_true = base[smooth_rows[loose]] + np.asarray(
            sp.csr_array(smooth_u[loose])[:, np.searchsorted(cols, sel)].sum(axis=1)
        ).ravel()
        cuts_rows.append(loose)
        cuts_points.append(s_true)
    return ExactResult(best_sel, best_obj, max(bound, best_obj), optimal)


def _huff_constraints(p: HuffProblem, smooth_u: sp.csr_array, smooth_rows: np.ndarray,
                      step_con: sp.csr_array, cr: np.ndarray,
                      cp: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
    """The master problem's rows and upper limits: step rows, tangent cuts, the budget.

    A cut at share point ``cp`` of smooth row ``cr`` reads
    ``s_i - slope * sum_j u_ij x_j <= val + slope * (base_i - s0)``.
    """
    n_x = smooth_u.shape[1]
    n_step = step_con.shape[0]
    n_s = step_con.shape[1] - n_x
    gr = smooth_rows[cr]
    val, slope = _tangents(cp, p.competition[gr])
    cut_u = sp.csr_array(sp.csr_array(smooth_u[cr]).multiply(-slope[:, None]))
    cut_s = sp.coo_array((np.ones(cr.size), (np.arange(cr.size), n_step + cr)),
                         shape=(cr.size, n_s))
    cut_con = sp.hstack([cut_u, cut_s], format="csr")
    budget = sp.csr_array(np.r_[np.ones(n_x), np.zeros(n_s)][None, :])
    mat = sp.vstack([step_con, cut_con, budget], format="csr")
    hi = np.r_[np.zeros(n_step), val + slope * (p.base[gr] - cp), min(p.k, n_x)]
    return mat, hi


def _first_cuts(smooth_u: sp.csr_array, base: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first tangent cuts of each smooth row: at no new site, at the best single
    site, and at every reachable site open."""
    row_max = (np.asarray(smooth_u.max(axis=1).toarray()).ravel() if smooth_u.shape[0]
               else np.zeros(0))
    row_sum = np.asarray(smooth_u.sum(axis=1)).ravel()
    return [np.arange(base.size)] * 3, [base, base + row_max, base + row_sum]
