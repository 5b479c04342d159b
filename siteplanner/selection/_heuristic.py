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


class _SwapState:
    """Nearest / second-nearest open site per row, and the swap-value tables.

    ``gain[j]``: saving from opening ``j``; ``loss[r]``: extra cost from
    closing the site at position ``r``; ``extra[r, j]``: correction for rows
    that lose ``r`` and gain ``j`` (Resende & Werneck 2003). A swap only
    changes the rows in the columns of the two sites involved, so the tables
    are updated for those rows alone.
    """

    def __init__(self, p: MinCostProblem, selected: np.ndarray) -> None:
        self.p = p
        self.csc = p.cost.tocsc()
        self.n = p.cost.shape[1]
        self.sel = np.asarray(selected, dtype=np.int64).copy()
        self.pos_of = np.full(self.n, -1, dtype=np.int64)
        self.pos_of[self.sel] = np.arange(self.sel.size)
        n_rows = p.cost.shape[0]
        self.d1 = p.base.astype(np.float64).copy()
        self.d2 = p.base.astype(np.float64).copy()
        self.f1 = np.full(n_rows, -1, dtype=np.int64)
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute everything from scratch (also clears rounding drift)."""
        self.gain = np.zeros(self.n)
        self.loss = np.zeros(self.sel.size)
        self.extra = np.zeros(self.sel.size * self.n)
        everything = np.arange(self.p.cost.shape[0])
        self._nearest(everything)
        self._apply(everything, 1.0)

    def _nearest(self, rows: np.ndarray) -> None:
        p = self.p
        ri, ci, vi = row_entries(p.cost, rows)
        pos = self.pos_of[ci]
        open_ = pos >= 0
        ri, pos, vi = ri[open_], pos[open_], vi[open_]
        order = np.lexsort((vi, ri))
        ri, pos, vi = ri[order], pos[order], vi[order]
        self.d1[rows] = p.base[rows]
        self.d2[rows] = p.base[rows]
        self.f1[rows] = -1
        if ri.size == 0:
            return
        first = np.r_[True, ri[1:] != ri[:-1]]
        # entries are all cheaper than base, so the nearest open site serves the row
        self.d1[ri[first]] = vi[first]
        self.f1[ri[first]] = pos[first]
        nxt = np.flatnonzero(first) + 1
        nxt = nxt[nxt < ri.size]
        nxt = nxt[ri[nxt] == ri[nxt - 1]]
        self.d2[ri[nxt]] = vi[nxt]

    def _apply(self, rows: np.ndarray, sign: float) -> None:
        p, w, d1, d2, f1 = self.p, self.p.weights, self.d1, self.d2, self.f1
        ri, ci, vi = row_entries(p.cost, rows)
        self.gain += sign * np.bincount(ci, weights=w[ri] * np.maximum(d1[ri] - vi, 0.0),
                                        minlength=self.n)
        served = rows[f1[rows] >= 0]
        self.loss += sign * np.bincount(f1[served], weights=w[served] * (d2[served] - d1[served]),
                                        minlength=self.sel.size)
        fr = f1[ri]
        hit = (fr >= 0) & (vi < d2[ri])
        hr = ri[hit]
        self.extra += sign * np.bincount(
            fr[hit] * self.n + ci[hit],
            weights=w[hr] * (d2[hr] - np.maximum(vi[hit], d1[hr])),
            minlength=self.extra.size,
        )

    def best_swap(self) -> tuple[int, int, float]:
        profit = self.gain[None, :] - self.loss[:, None] + self.extra.reshape(self.sel.size, -1)
        blocked = ~self.p.allowed.copy()
        blocked[self.sel] = True
        profit[:, blocked] = -np.inf
        flat = int(np.argmax(profit))
        r, j = divmod(flat, self.n)
        return r, j, float(profit[r, j])

    def swap(self, r: int, j: int) -> None:
        old = self.sel[r]
        csc = self.csc
        rows = np.union1d(csc.indices[csc.indptr[old] : csc.indptr[old + 1]],
                          csc.indices[csc.indptr[j] : csc.indptr[j + 1]])
        self._apply(rows, -1.0)
        self.sel[r] = j
        self.pos_of[old] = -1
        self.pos_of[j] = r
        self._nearest(rows)
        self._apply(rows, 1.0)

    def objective(self) -> float:
        return float(self.p.weights @ self.d1)


def swap_min_cost(
    p: MinCostProblem,
    selected: np.ndarray,
    *,
    deadline: float | None,
    tol: float = 1e-9,
) -> tuple[np.ndarray, float]:
    """Best-improvement swaps until none improves; returns (selected, lower bound).

    The bound is the submodular one at the final set: its cost minus the k
    largest single-site savings.
    """
    if len(selected) == 0:
        return np.asarray(selected, dtype=np.int64), -np.inf
    state = _SwapState(p, selected)
    verified = False
    while not _deadline_passed(deadline):
        r, j, profit = state.best_swap()
        if profit <= tol * max(abs(state.objective()), 1.0):
            if verified:
                break
            # Incremental tables drift by rounding: confirm on fresh ones.
            state.rebuild()
            verified = True
            continue
        state.swap(r, j)
        verified = False
    gain = state.gain.copy()
    gain[~p.allowed] = 0.0
    gain[state.sel] = 0.0
    return np.sort(state.sel), state.objective() - _top_sum(gain, p.k)


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
