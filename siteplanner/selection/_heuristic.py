"""Greedy plus swap (Teitz–Bart) heuristics for the location-allocation models.

Two objective families cover every model:

* min-cost: ``sum_i w_i * min(base_i, min_{j in S} c_ij)``. p-median is this
  directly; max coverage is this with ``c_ij = 0`` where ``j`` covers ``i`` and
  ``base_i = 1`` for rows not already covered (so the objective is the
  uncovered demand); nearest-facility capture is coverage with per-row radii.
* Huff share: ``sum_i w_i * g_i(base_i + sum_{j in S} u_ij)`` with
  ``g_i(s) = s / (s + comp_i)``, concave in ``s``.

Both are submodular in ``S`` (as savings / gains), which gives the cheap bound
``f(S*) <= f(S) + sum of the k largest marginal gains at S`` (Nemhauser,
Wolsey & Fisher 1978) at every greedy step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "HuffProblem",
    "MinCostProblem",
    "evaluate_huff",
    "evaluate_min_cost",
    "greedy_huff",
    "greedy_min_cost",
    "row_entries",
    "swap_huff",
    "swap_min_cost",
]


@dataclass(frozen=True)
class MinCostProblem:
    """Rows x candidates costs; only entries cheaper than ``base`` are stored."""

    cost: sp.csr_array
    base: np.ndarray
    weights: np.ndarray
    allowed: np.ndarray
    k: int


@dataclass(frozen=True)
class HuffProblem:
    """Rows x candidates utilities (attractiveness x distance decay)."""

    utility: sp.csr_array
    base: np.ndarray
    competition: np.ndarray
    weights: np.ndarray
    allowed: np.ndarray
    k: int


def row_entries(
    csr: sp.csr_array, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row ids, column ids and values of all stored entries of ``rows``."""
    starts = csr.indptr[rows]
    lens = csr.indptr[rows + 1] - starts
    offsets = np.repeat(starts - np.cumsum(lens) + lens, lens)
    idx = offsets + np.arange(int(lens.sum()))
    return np.repeat(rows, lens), csr.indices[idx], csr.data[idx]


def _row_ids(csr: sp.csr_array) -> np.ndarray:
    return np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))


def _top_sum(values: np.ndarray, k: int) -> float:
    pos = values[values > 0]
    if pos.size <= k:
        return float(pos.sum())
    return float(np.partition(pos, pos.size - k)[pos.size - k :].sum())


def _pick(gains: np.ndarray, priority: np.ndarray) -> int:
    # The seeded priority order breaks ties between equal gains reproducibly.
    return int(priority[np.argmax(gains[priority])])


def _deadline_passed(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() > deadline


# --------------------------------------------------------------------------- min-cost


def evaluate_min_cost(p: MinCostProblem, selected: np.ndarray) -> np.ndarray:
    """Per-row cost of serving each row from ``selected`` (or ``base``)."""
    d1, _, _ = _best_two(p, p.cost.tocsc(), np.asarray(selected, dtype=np.int64))
    return d1


def greedy_min_cost(
    p: MinCostProblem, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Greedy with exact incremental gain updates; returns (selected, lower bound)."""
    cost, w = p.cost, p.weights
    csc = cost.tocsc()
    n = cost.shape[1]
    d = p.base.astype(np.float64).copy()
    rows = _row_ids(cost)
    gains = np.bincount(
        cost.indices, weights=w[rows] * np.maximum(d[rows] - cost.data, 0.0), minlength=n
    )
    gains[~p.allowed] = -np.inf
    priority = rng.permutation(n)
    current = float(w @ d)
    lower = -np.inf
    chosen: list[int] = []
    for _ in range(p.k):
        lower = max(lower, current - _top_sum(gains, p.k))
        j = _pick(gains, priority)
        chosen.append(j)
        col_rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        col_cost = csc.data[csc.indptr[j] : csc.indptr[j + 1]]
        better = col_cost < d[col_rows]
        col_rows, col_cost = col_rows[better], col_cost[better]
        if col_rows.size:
            ri, ci, vi = row_entries(cost, col_rows)
            old = w[ri] * np.maximum(d[ri] - vi, 0.0)
            current -= float(w[col_rows] @ (d[col_rows] - col_cost))
            d[col_rows] = col_cost
            new = w[ri] * np.maximum(d[ri] - vi, 0.0)
            gains -= np.bincount(ci, weights=old - new, minlength=n)
        gains[j] = -np.inf
    lower = max(lower, current - _top_sum(gains, p.k))
    return np.array(chosen, dtype=np.int64), lower


def _best_two(
    p: MinCostProblem, csc: sp.csc_array, selected: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest cost, position in ``selected`` of that site (-1: base), second cost."""
    n_rows = p.cost.shape[0]
    sub = csc[:, selected]
    rows = sub.indices
    pos = np.repeat(np.arange(selected.size), np.diff(sub.indptr))
    vals = sub.data
    order = np.lexsort((vals, rows))
    rows, pos, vals = rows[order], pos[order], vals[order]
    m1 = np.full(n_rows, np.inf)
    m2 = np.full(n_rows, np.inf)
    f1 = np.full(n_rows, -1, dtype=np.int64)
    if rows.size:
        first = np.r_[True, rows[1:] != rows[:-1]]
        m1[rows[first]] = vals[first]
        f1[rows[first]] = pos[first]
        nxt = np.flatnonzero(first) + 1
        nxt = nxt[nxt < rows.size]
        nxt = nxt[rows[nxt] == rows[nxt - 1]]
        m2[rows[nxt]] = vals[nxt]
    served = m1 < p.base
    d1 = np.where(served, m1, p.base)
    f1 = np.where(served, f1, -1)
    d2 = np.minimum(m2, p.base)
    return d1, f1, d2


def swap_min_cost(
    p: MinCostProblem,
    selected: np.ndarray,
    *,
    deadline: float | None,
    tol: float = 1e-9,
) -> np.ndarray:
    """Best-improvement swaps, all k x n swap values at once (Resende & Werneck 2003)."""
    cost, w = p.cost, p.weights
    csc = cost.tocsc()
    n = cost.shape[1]
    rows = _row_ids(cost)
    sel = np.asarray(selected, dtype=np.int64).copy()
    if sel.size == 0:
        return sel
    while not _deadline_passed(deadline):
        d1, f1, d2 = _best_two(p, csc, sel)
        objective = float(w @ d1)
        served = f1 >= 0
        loss = np.bincount(f1[served], weights=w[served] * (d2[served] - d1[served]),
                           minlength=sel.size)
        gain = np.bincount(
            cost.indices, weights=w[rows] * np.maximum(d1[rows] - cost.data, 0.0), minlength=n
        )
        fr = f1[rows]
        hit = (fr >= 0) & (cost.data < d2[rows])
        hr = rows[hit]
        extra = sp.coo_array(
            (w[hr] * (d2[hr] - np.maximum(cost.data[hit], d1[hr])), (fr[hit], cost.indices[hit])),
            shape=(sel.size, n),
        ).toarray()
        profit = gain[None, :] - loss[:, None] + extra
        blocked = ~p.allowed.copy()
        blocked[sel] = True
        profit[:, blocked] = -np.inf
        flat = int(np.argmax(profit))
        r, j = divmod(flat, n)
        if profit[r, j] <= tol * max(abs(objective), 1.0):
            break
        sel[r] = j
    return np.sort(sel)


# --------------------------------------------------------------------------- Huff


def _share(s: np.ndarray, comp: np.ndarray) -> np.ndarray:
    total = s + comp
    out = np.zeros_like(total)
    np.divide(s, total, out=out, where=total > 0)
    return out


def evaluate_huff(p: HuffProblem, selected: np.ndarray) -> np.ndarray:
    """Per-row share captured by the brand with ``selected`` open."""
    sel = np.asarray(selected, dtype=np.int64)
    s = p.base + np.asarray(p.utility.tocsc()[:, sel].sum(axis=1)).ravel()
    return _share(s, p.competition)


def greedy_huff(p: HuffProblem, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Greedy with exact incremental gain updates; returns (selected, upper bound)."""
    u, w, comp = p.utility, p.weights, p.competition
    csc = u.tocsc()
    n = u.shape[1]
    s = p.base.astype(np.float64).copy()
    rows = _row_ids(u)

    def contrib(ri: np.ndarray, vi: np.ndarray) -> np.ndarray:
        return w[ri] * (_share(s[ri] + vi, comp[ri]) - _share(s[ri], comp[ri]))

    gains = np.bincount(u.indices, weights=contrib(rows, u.data), minlength=n)
    gains[~p.allowed] = -np.inf
    priority = rng.permutation(n)
    current = float(w @ _share(s, comp))
    upper = np.inf
    chosen: list[int] = []
    for _ in range(p.k):
        upper = min(upper, current + _top_sum(gains, p.k))
        j = _pick(gains, priority)
        chosen.append(j)
        col_rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        col_u = csc.data[csc.indptr[j] : csc.indptr[j + 1]]
        if col_rows.size:
            ri, ci, vi = row_entries(u, col_rows)
            old = contrib(ri, vi)
            before = float(w[col_rows] @ _share(s[col_rows], comp[col_rows]))
            s[col_rows] += col_u
            current += float(w[col_rows] @ _share(s[col_rows], comp[col_rows])) - before
            gains -= np.bincount(ci, weights=old - contrib(ri, vi), minlength=n)
        gains[j] = -np.inf
    upper = min(upper, current + _top_sum(gains, p.k))
    return np.array(chosen, dtype=np.int64), upper


def swap_huff(
    p: HuffProblem,
    selected: np.ndarray,
    *,
    deadline: float | None,
    tol: float = 1e-9,
) -> np.ndarray:
    """Best-improvement swaps; the swap values are exact (one pass per open site)."""
    u, w, comp = p.utility, p.weights, p.competition
    csc = u.tocsc()
    n = u.shape[1]
    rows = _row_ids(u)
    sel = np.asarray(selected, dtype=np.int64).copy()
    if sel.size == 0:
        return sel
    while not _deadline_passed(deadline):
        s = p.base + np.asarray(csc[:, sel].sum(axis=1)).ravel()
        share = _share(s, comp)
        objective = float(w @ share)
        gain = np.bincount(
            u.indices,
            weights=w[rows] * (_share(s[rows] + u.data, comp[rows]) - share[rows]),
            minlength=n,
        )
        blocked = ~p.allowed.copy()
        blocked[sel] = True
        best, best_r, best_j = -np.inf, -1, -1
        for r, site in enumerate(sel):
            col_rows = csc.indices[csc.indptr[site] : csc.indptr[site + 1]]
            col_u = csc.data[csc.indptr[site] : csc.indptr[site + 1]]
            s_wo = s.copy()
            s_wo[col_rows] = np.maximum(s_wo[col_rows] - col_u, 0.0)
            loss = float(w[col_rows] @ (share[col_rows] - _share(s_wo[col_rows], comp[col_rows])))
            ri, ci, vi = row_entries(u, col_rows)
            after = _share(s_wo[ri] + vi, comp[ri]) - _share(s_wo[ri], comp[ri])
            before = _share(s[ri] + vi, comp[ri]) - share[ri]
            profit = gain + np.bincount(ci, weights=w[ri] * (after - before), minlength=n) - loss
            profit[blocked] = -np.inf
            j = int(np.argmax(profit))
            if profit[j] > best:
                best, best_r, best_j = float(profit[j]), r, j
        if best <= tol * max(abs(objective), 1.0):
            break
        sel[best_r] = best_j
    return np.sort(sel)
