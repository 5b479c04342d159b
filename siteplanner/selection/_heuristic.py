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
    "SortedEntries",
    "deadline_passed",
    "evaluate_huff",
    "evaluate_min_cost",
    "greedy_huff",
    "greedy_min_cost",
    "iterated_swaps",
    "row_entries",
    "swap_huff",
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


def deadline_passed(deadline: float | None) -> bool:
    """Whether a ``time.perf_counter()`` deadline (``None``: none) has passed."""
    return deadline is not None and time.perf_counter() > deadline


# --------------------------------------------------------------------------- min-cost


def evaluate_min_cost(p: MinCostProblem, selected: np.ndarray) -> np.ndarray:
    """Per-row cost of serving each row from ``selected`` (or ``base``)."""
    d1, _, _ = _best_two(p, p.cost.tocsc(), np.asarray(selected, dtype=np.int64))
    return d1


def greedy_min_cost(
    p: MinCostProblem, rng: np.random.Generator, choices: int = 1
) -> tuple[np.ndarray, float]:
    """Greedy with exact incremental gain updates; returns (selected, lower bound).

    ``choices > 1`` makes it a randomised greedy (GRASP): each step opens one
    of the ``choices`` sites of largest gain, at random.
    """
    cost, w = p.cost, p.weights
    csc = cost.tocsc()
    n = cost.shape[1]
    d = p.base.astype(np.float64).copy()
    rows = _row_ids(cost)
    gains = np.bincount(
        cost.indices, weights=w[rows] * np.maximum(d[rows] - cost.data, 0.0), minlength=n
    ).astype(np.float64)  # bincount of no pairs is an integer array, which cannot hold -inf
    gains[~p.allowed] = -np.inf
    priority = rng.permutation(n)
    current = float(w @ d)
    lower = -np.inf
    chosen: list[int] = []
    for _ in range(p.k):
        lower = max(lower, current - _top_sum(gains, p.k))
        open_to = int(np.isfinite(gains).sum())
        if choices > 1 and open_to > 1:
            m = min(choices, open_to)
            top = np.argpartition(-gains, m - 1)[:m]
            j = int(rng.choice(top))
        else:
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


class SortedEntries:
    """A cost matrix's entries sorted by (row, cost), for "entries of row i cheaper than t".

    One float key per entry, ``row * scale + cost``, where the row number
    dominates: the entries of a row cheaper than a limit are then a prefix of
    that row's range, found by one binary search.
    """

    def __init__(self, cost: sp.csr_array) -> None:
        rows = _row_ids(cost)
        self.scale = 2.0 * float(cost.data.max(initial=0.0)) + 1.0
        key = rows * self.scale + cost.data
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.cols = cost.indices[order]
        self.vals = cost.data[order]
        self.indptr = cost.indptr

    def entries(
        self, rows: np.ndarray, limit: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row ids, columns and costs of ``rows``' entries (cheaper than ``limit`` per row)."""
        starts = self.indptr[rows]
        if limit is None:
            ends = self.indptr[rows + 1]
        else:
            ends = np.searchsorted(self.key, rows * self.scale + limit, side="left")
            ends = np.clip(ends, starts, self.indptr[rows + 1])
        lens = ends - starts
        idx = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
        return np.repeat(rows, lens), self.cols[idx], self.vals[idx]


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
    that lose ``r`` and gain ``j`` (Resende & Werneck 2003). A swap changes
    only the rows served by the closed site (first or second) and the rows the
    opened site improves, so the tables are updated for those rows alone, and
    only from each row's entries cheaper than its second-nearest open site.
    """

    def __init__(
        self, p: MinCostProblem, selected: np.ndarray, entries: SortedEntries | None = None
    ) -> None:
        self.p = p
        cost = p.cost
        self.csc = cost.tocsc()
        self.n = cost.shape[1]
        self.sorted = SortedEntries(cost) if entries is None else entries
        self.sel = np.asarray(selected, dtype=np.int64).copy()
        self.pos_of = np.full(self.n, -1, dtype=np.int64)
        self.pos_of[self.sel] = np.arange(self.sel.size)
        n_rows = cost.shape[0]
        self.d1 = p.base.astype(np.float64).copy()
        self.d2 = p.base.astype(np.float64).copy()
        self.f1 = np.full(n_rows, -1, dtype=np.int64)
        self.f2 = np.full(n_rows, -1, dtype=np.int64)
        self.swaps = 0
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute everything from scratch (also clears rounding drift)."""
        self.gain = np.zeros(self.n)
        self.loss = np.zeros(self.sel.size)
        self.extra = np.zeros(self.sel.size * self.n)
        sub = self.csc[:, self.sel]
        rows = sub.indices
        pos = np.repeat(np.arange(self.sel.size), np.diff(sub.indptr))
        everything = np.arange(self.p.cost.shape[0])
        self._nearest(everything, rows, pos, sub.data)
        self._apply(everything, 1.0)

    def _nearest(
        self, rows: np.ndarray, ri: np.ndarray, pos: np.ndarray, vi: np.ndarray
    ) -> None:
        """Set d1/f1/d2/f2 of ``rows`` from their open entries (ri, pos, vi)."""
        base = self.p.base
        self.d1[rows] = base[rows]
        self.d2[rows] = base[rows]
        self.f1[rows] = -1
        self.f2[rows] = -1
        if ri.size == 0:
            return
        order = np.lexsort((vi, ri))
        ri, pos, vi = ri[order], pos[order], vi[order]
        first = np.r_[True, ri[1:] != ri[:-1]]
        # entries are all cheaper than base, so the nearest open site serves the row
        self.d1[ri[first]] = vi[first]
        self.f1[ri[first]] = pos[first]
        nxt = np.flatnonzero(first) + 1
        nxt = nxt[nxt < ri.size]
        nxt = nxt[ri[nxt] == ri[nxt - 1]]
        self.d2[ri[nxt]] = vi[nxt]
        self.f2[ri[nxt]] = pos[nxt]

    def _apply(self, rows: np.ndarray, sign: float) -> None:
        w, d1, d2, f1 = self.p.weights, self.d1, self.d2, self.f1
        ri, ci, vi = self.sorted.entries(rows, d2[rows])
        self.gain += sign * np.bincount(ci, weights=w[ri] * np.maximum(d1[ri] - vi, 0.0),
                                        minlength=self.n)
        served = rows[f1[rows] >= 0]
        self.loss += sign * np.bincount(f1[served], weights=w[served] * (d2[served] - d1[served]),
                                        minlength=self.sel.size)
        fr = f1[ri]
        hit = fr >= 0
        hr = ri[hit]
        # k x n table, touched in a few places: add in place, not a dense bincount
        np.add.at(self.extra, fr[hit] * self.n + ci[hit],
                  sign * w[hr] * (d2[hr] - np.maximum(vi[hit], d1[hr])))

    def best_swap(self) -> tuple[int, int, float]:
        profit = self.gain[None, :] - self.loss[:, None] + self.extra.reshape(self.sel.size, -1)
        blocked = ~self.p.allowed.copy()
        blocked[self.sel] = True
        profit[:, blocked] = -np.inf
        flat = int(np.argmax(profit))
        r, j = divmod(flat, self.n)
        return r, j, float(profit[r, j])

    def swap(self, r: int, j: int) -> None:
        csc = self.csc
        old = self.sel[r]
        lost = np.flatnonzero((self.f1 == r) | (self.f2 == r))
        col_rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        col_cost = csc.data[csc.indptr[j] : csc.indptr[j + 1]]
        better = col_cost < self.d2[col_rows]
        gained = np.setdiff1d(col_rows[better], lost, assume_unique=True)
        gained_cost = col_cost[better][np.isin(col_rows[better], gained, assume_unique=True)]
        rows = np.union1d(lost, gained)
        self._apply(rows, -1.0)
        self.sel[r] = j
        self.pos_of[old] = -1
        self.pos_of[j] = r
        # rows that lost a top-two site: rescan their open entries
        ri, ci, vi = self.sorted.entries(lost, None)
        pos = self.pos_of[ci]
        keep = pos >= 0
        self._nearest(lost, ri[keep], pos[keep], vi[keep])
        # rows the new site improves: it slots in first or second
        first = gained_cost < self.d1[gained]
        g1, g2 = gained[first], gained[~first]
        self.d2[g1], self.f2[g1] = self.d1[g1], self.f1[g1]
        self.d1[g1], self.f1[g1] = gained_cost[first], r
        self.d2[g2], self.f2[g2] = gained_cost[~first], r
        self._apply(rows, 1.0)
        self.swaps += 1
        if self.swaps % 200 == 0:
            self.rebuild()  # clears the tables' rounding drift

    def objective(self) -> float:
        return float(self.p.weights @ self.d1)


_MAX_SHAKE = 8


def _improve(state: _SwapState, deadline: float | None, tol: float) -> None:
    """Best-improvement swaps until none improves."""
    scale = max(abs(state.objective()), 1.0)
    while not deadline_passed(deadline):
        r, j, profit = state.best_swap()
        # Rounding drift in the tables is ~1e-16 relative per update, far below tol.
        if profit <= tol * scale:
            break
        state.swap(r, j)


def _submodular_lower(state: _SwapState) -> float:
    """The set's cost minus the k largest single-site savings from it."""
    gain = state.gain.copy()
    gain[~state.p.allowed] = 0.0
    gain[state.sel] = 0.0
    return state.objective() - _top_sum(gain, state.p.k)


def iterated_swaps(
    p: MinCostProblem,
    selected: np.ndarray,
    rng: np.random.Generator,
    *,
    rounds: int,
    lower: float,
    deadline: float | None,
    tol: float = 1e-9,
    entries: SortedEntries | None = None,
    stop_gap: float = 1e-9,
) -> tuple[np.ndarray, float, float]:
    """Iterated local search: swaps, then ``rounds`` of shake-and-swap.

    Each round replaces a third of the current set's sites (at most
    ``_MAX_SHAKE``) by random free ones and improves the result by swaps; the new local optimum is kept when
    it is no worse (so the search can drift along plateaus), otherwise the
    round's swaps are undone. All on one swap state, so a round costs the rows
    its swaps touch, not a rebuild. Stops early when the value is within
    ``stop_gap`` (relative) of ``lower``, a proven bound. Returns (best set, its
    cost, the submodular lower bound at the first local optimum).
    ``entries``: ``p.cost`` as :class:`SortedEntries`, when the caller has it.
    """
    if len(selected) == 0:
        return np.asarray(selected, dtype=np.int64), float(p.weights @ p.base), -np.inf
    state = _SwapState(p, selected, entries)
    _improve(state, deadline, tol)
    submodular = _submodular_lower(state)
    current = state.objective()
    best, best_value = state.sel.copy(), current
    pool = np.flatnonzero(p.allowed)
    shake = max(1, min(p.k // 3, _MAX_SHAKE))
    for _ in range(rounds if pool.size > p.k else 0):
        if best_value - lower <= stop_gap * max(abs(best_value), 1.0) or deadline_passed(deadline):
            break
        saved = state.sel.copy()
        free = pool[state.pos_of[pool] < 0]
        size = min(shake, free.size)
        for r, j in zip(rng.choice(p.k, size=size, replace=False),
                        rng.choice(free, size=size, replace=False), strict=True):
            state.swap(int(r), int(j))
        _improve(state, deadline, tol)
        value = state.objective()
        if value <= current + tol * max(abs(current), 1.0):
            current = value
            if value < best_value - tol * max(abs(best_value), 1.0):
                best, best_value = state.sel.copy(), value
            continue
        # Undo by swapping the set difference back (positions may differ).
        opened = np.setdiff1d(state.sel, saved)
        for site, back in zip(opened, np.setdiff1d(saved, state.sel), strict=True):
            state.swap(int(state.pos_of[site]), int(back))
        current = state.objective()
    return np.sort(best), best_value, submodular


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
    while not deadline_passed(deadline):
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
