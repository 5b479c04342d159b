"""Heuristic for the capacitated models: transportation LPs inside a swap search.

A set of open sites is worth the optimum of a splittable transportation
problem: each demand row's weight is sent to open sites within reach, at most
each site's capacity, and what is left unsent pays the row's ``base`` per unit
(the p-median penalty; 1 for coverage, where every stored cost is 0, so the
value is the uncovered weight). :func:`allocate` solves it with
``scipy.optimize.linprog`` (HiGHS) and keeps the duals: a price per site (what
one more unit of capacity saves) and per row (what one more unit of its demand
would cost).

Prices make swaps cheap to rank. For row prices ``d``, what a closed candidate
would win is the fractional knapsack of ``(d_i - c_ij) w_i`` over its reach
within its capacity (its Lagrangian value, :class:`_Candidates`; the same
knapsacks give the lower bound of :mod:`._capacitated_bound`). A swap
(close r, open j) is ranked by the loss of closing r, from a local LP over the
rows r reaches with every other flow held, minus j's value at the prices that
LP leaves. The best-ranked swaps are checked by a local LP over the rows
either site reaches and those of the open sites reaching these. Held flows
keep the result feasible, so an accepted swap is a real improvement; swaps
that touch different rows and sites are accepted in the same round. When a round
finds nothing, the whole LP is solved again and the search goes on only if
that freed room.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from siteplanner.selection._heuristic import deadline_passed, row_entries

__all__ = ["Allocation", "CapacitatedProblem", "allocate", "greedy", "improve", "search"]

#: Swaps checked by a local LP per round, and candidates near each open site
#: considered for its place (besides the best ones overall). On Helsinki
#: instances fewer checks missed the optimum; more found nothing better.
_CHECKS = 30
_NEARBY = 20


@dataclass(frozen=True)
class CapacitatedProblem:
    """Demand rows x sites (candidates, then existing branches) with per-unit costs.

    A stored entry means the site may serve the row at that cost per unit of
    weight; only entries cheaper than the row's ``base`` are stored. ``base``
    is what an unserved unit costs in the search (a large number for rows that
    must be served); ``penalty`` is what it costs in the reported objective.
    """

    cost: sp.csc_array
    base: np.ndarray
    penalty: np.ndarray
    weights: np.ndarray
    capacity: np.ndarray  # per column; inf = no limit
    allowed: np.ndarray  # per candidate column
    k: int
    required: np.ndarray

    @property
    def n_candidates(self) -> int:
        return int(self.allowed.size)

    @property
    def fixed_columns(self) -> np.ndarray:
        return np.arange(self.n_candidates, self.cost.shape[1])


@dataclass(frozen=True)
class Allocation:
    """The optimal transportation of one set of open sites."""

    selected: np.ndarray  # candidate columns, sorted
    rows: np.ndarray  # entries of the open columns
    cols: np.ndarray
    cost: np.ndarray
    flow: np.ndarray  # weight sent along each entry
    price: np.ndarray  # capacity dual per column (0 for closed or unlimited sites)
    row_price: np.ndarray  # cost of one more unit of each row's demand (at most base)
    value: float  # search objective: sum cost * flow + base * unserved

    def served(self, n_rows: int) -> np.ndarray:
        return np.bincount(self.rows, weights=self.flow, minlength=n_rows)

    def objective(self, p: CapacitatedProblem) -> float:
        """Reported objective: assignment cost plus ``penalty`` per unserved unit."""
        unserved = np.maximum(p.weights - self.served(p.weights.size), 0.0)
        return float(self.cost @ self.flow + p.penalty @ unserved)

    def matrix(self, shape: tuple[int, int]) -> sp.csr_array:
        """Served weight as a rows x sites matrix."""
        keep = self.flow > 0
        return sp.csr_array((self.flow[keep], (self.rows[keep], self.cols[keep])), shape=shape)


def _column_entries(
    csc: sp.csc_array, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row ids, column ids and costs of all stored entries of ``cols``."""
    col_ids, rows, cost = row_entries(csc, cols)  # a CSC's "rows" are its columns
    return rows.astype(np.int64), col_ids, cost


# --------------------------------------------------------------------------- LP


def _transport(
    rows: np.ndarray, cols: np.ndarray, cost: np.ndarray, base: np.ndarray,
    weights: np.ndarray, capacity: np.ndarray,
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Most saving ``sum (base - cost) * flow`` with row and column limits.

    ``rows`` and ``cols`` are local ids (0..len(weights)-1, 0..len(capacity)-1).
    Returns the flow per entry, the saving, the capacity dual per column and
    the price per row (what one more unit of its demand would cost).
    """
    n = rows.size
    mu = np.zeros(capacity.size)
    if n == 0:
        return np.zeros(0), 0.0, mu, base.astype(np.float64).copy()
    finite = np.isfinite(capacity)
    cap_row = np.cumsum(finite) - 1
    limited = finite[cols]
    n_rows = weights.size
    a = sp.csr_array(
        (np.ones(n + int(limited.sum())),
         (np.r_[rows, n_rows + cap_row[cols[limited]]], np.r_[np.arange(n), np.flatnonzero(limited)])),
        shape=(n_rows + int(finite.sum()), n),
    )
    # The interior-point method (with crossover, so a vertex and its duals come
    # back) was ~1.5x faster than the simplex above ~20,000 flows here.
    res = linprog(cost - base[rows], A_ub=a, b_ub=np.r_[weights, capacity[finite]],
                  bounds=(0, None), method="highs-ipm" if n > 20_000 else "highs")
    if res.status != 0:  # cannot happen for this bounded, feasible (flow 0) LP
        msg = f"transportation LP failed: {res.message}"
        raise RuntimeError(msg)
    mu[finite] = np.maximum(-res.ineqlin.marginals[n_rows:], 0.0)
    price = base - np.maximum(-res.ineqlin.marginals[:n_rows], 0.0)
    return np.maximum(res.x, 0.0), -float(res.fun), mu, price


def _local_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.ravel()


def allocate(p: CapacitatedProblem, selected: np.ndarray) -> Allocation:
    """Solve the transportation LP for the candidates ``selected`` plus existing branches."""
    sel = np.unique(np.asarray(selected, dtype=np.int64))
    open_cols = np.r_[sel, p.fixed_columns]
    rows, cols, cost = _column_entries(p.cost, open_cols)
    keep = p.weights[rows] > 0
    rows, cols, cost = rows[keep], cols[keep], cost[keep]
    urows, lr = _local_ids(rows)
    ucols, lc = _local_ids(cols)
    flow, saving, mu, row_price = _transport(lr, lc, cost, p.base[urows], p.weights[urows],
                                             p.capacity[ucols])
    price = np.zeros(p.cost.shape[1])
    price[ucols] = mu
    prices = p.base.astype(np.float64).copy()
    prices[urows] = row_price
    value = float(p.weights @ p.base) - saving
    return Allocation(sel, rows, cols, cost, flow, price, prices, value)


# --------------------------------------------------------------------------- greedy


def _knapsack(
    cols: np.ndarray, profit: np.ndarray, amount: np.ndarray, capacity: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional knapsack per column: best ``profit * take`` with ``take <= amount``.

    Returns the value per column, the price at which the column fills (the
    profit of its marginal entry; 0 when it never fills) and the take per entry.
    """
    take = np.zeros(cols.size)
    use = np.flatnonzero((profit > 0) & (amount > 0))
    order = use[np.lexsort((-profit[use], cols[use]))]
    c, pr, am = cols[order], profit[order], amount[order]
    cum = np.cumsum(am)
    start = np.r_[True, c[1:] != c[:-1]] if c.size else np.zeros(0, bool)
    before = cum - am - (np.maximum.accumulate(np.where(start, cum - am, 0.0)) if c.size else cum)
    cap = capacity[c]
    took = np.clip(cap - before, 0.0, am)
    take[order] = took
    price = np.zeros(n)
    fills = (before < cap) & (before + am >= cap)
    price[c[fills]] = pr[fills]
    return np.bincount(c, weights=took * pr, minlength=n), price, take


def greedy(p: CapacitatedProblem, rng: np.random.Generator, *, pick: int = 1) -> np.ndarray:
    """Capacity-aware lazy greedy.

    A candidate's gain is the fractional knapsack of the demand still unserved
    in its reach (value ``base - cost`` per unit, at most its capacity). Gains
    only shrink as sites open, so stale gains are upper bounds (lazy greedy).
    The opened site takes its knapsack; the existing branches' share comes
    from the LP with no new site. With ``pick`` > 1 each step opens one of
    the ``pick`` best at random (a randomised greedy, for diverse starts).
    """
    csc = p.cost
    n = p.n_candidates
    left = np.maximum(p.weights - allocate(p, np.array([], np.int64)).served(p.weights.size), 0.0)

    def gain(j: int) -> tuple[float, np.ndarray, np.ndarray]:
        r = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        profit = p.base[r] - csc.data[csc.indptr[j] : csc.indptr[j + 1]]
        order = np.argsort(-profit, kind="stable")
        r, profit = r[order], profit[order]
        amount = left[r]
        take = np.clip(p.capacity[j] - (np.cumsum(amount) - amount), 0.0, amount)
        return float(take @ profit), r, take

    # Upper bounds to start: no capacity limit, all the candidate's reach.
    rows_all = csc.indices[csc.indptr[0] : csc.indptr[n]]
    cols_all = np.repeat(np.arange(n), np.diff(csc.indptr[: n + 1]))
    bound = np.bincount(cols_all, weights=left[rows_all] * np.maximum(
        p.base[rows_all] - csc.data[: csc.indptr[n]], 0.0), minlength=n)
    priority = np.empty(n, dtype=np.int64)
    priority[rng.permutation(n)] = np.arange(n)
    heap = [(-bound[j], int(priority[j]), int(j), -1) for j in np.flatnonzero(p.allowed)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while len(chosen) < p.k and heap:
        # An entry whose gain is current when it reaches the top is the best left.
        best: list[tuple[float, int, int, int]] = []
        while heap and len(best) < pick:
            item = heapq.heappop(heap)
            if item[3] == len(chosen):
                best.append(item)
            else:
                heapq.heappush(heap, (-gain(item[2])[0], item[1], item[2], len(chosen)))
        if not best:
            break
        at = int(rng.integers(len(best))) if len(best) > 1 else 0
        for i, item in enumerate(best):
            if i != at:
                heapq.heappush(heap, item)
        j = best[at][2]
        chosen.append(j)
        _, r, take = gain(j)
        left[r] -= take
    return np.sort(np.array(chosen, dtype=np.int64))


# --------------------------------------------------------------------------- knapsacks


class _Candidates:
    """What each candidate would win at given row prices (its Lagrangian value).

    For row prices ``d`` a candidate's value is the fractional knapsack of
    ``(d_i - c_ij) * w_i`` over its reach within its capacity. That sorts the
    candidate's entries, so it is computed only for the candidates whose cheap
    upper bound (no capacity limit, or capacity times the best unit profit)
    could put them at the top.
    """

    def __init__(self, p: CapacitatedProblem) -> None:
        self.p = p
        n_c = p.n_candidates
        end = p.cost.indptr[n_c]
        self.rows = p.cost.indices[:end]
        self.cols = np.repeat(np.arange(n_c, dtype=np.int32), np.diff(p.cost.indptr[: n_c + 1]))
        self.cost = p.cost.data[:end]
        self.nonempty = np.diff(p.cost.indptr[: n_c + 1]) > 0
        self.starts = p.cost.indptr[:n_c][self.nonempty]

    def bounds(self, d: np.ndarray) -> np.ndarray:
        p, w = self.p, self.p.weights
        profit = np.maximum(d[self.rows] - self.cost, 0.0)
        uncapped = np.bincount(self.cols, weights=w[self.rows] * profit, minlength=p.n_candidates)
        best = np.zeros(p.n_candidates)
        if self.starts.size:
            best[self.nonempty] = np.maximum.reduceat(profit, self.starts)
        cap = p.capacity[: p.n_candidates]
        return np.minimum(uncapped, np.where(best > 0, cap * best, 0.0))

    def values(
        self, cols: np.ndarray, d: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Knapsack value per column of ``cols``; the take and row of each of their entries."""
        p = self.p
        rows, ecols, cost = _column_entries(p.cost, cols)
        value, _, take = _knapsack(ecols, d[rows] - cost, p.weights[rows], p.capacity,
                                   p.cost.shape[1])
        return value[cols], take, rows

    def best(self, d: np.ndarray, count: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` candidates in ``mask`` with the largest values, and those values."""
        bound = self.bounds(d)
        order = np.flatnonzero(mask & (bound > 0))
        order = order[np.argsort(-bound[order], kind="stable")]
        chunk = max(2 * count, 20)
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for start in range(0, order.size, chunk):
            cols.append(order[start : start + chunk])
            vals.append(self.values(cols[-1], d)[0])
            found = np.concatenate(vals)
            kth = np.partition(found, found.size - count)[found.size - count] if (
                found.size >= count) else -np.inf
            if start + chunk >= order.size or bound[order[start + chunk]] <= kth:
                break
        if not cols:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        every, values = np.concatenate(cols), np.concatenate(vals)
        top = np.argsort(-values, kind="stable")[:count]
        return every[top], values[top]


# --------------------------------------------------------------------------- swaps


@dataclass(frozen=True)
class _Local:
    """A re-solved region: its change in value, new flows and row prices."""

    delta: float
    region: np.ndarray  # rows re-solved (sorted)
    rows: np.ndarray
    cols: np.ndarray
    cost: np.ndarray
    flow: np.ndarray
    price: np.ndarray  # per region row
    sites: np.ndarray  # open sites whose flows it touched


class _Search:
    """Open sites with their flows and row prices, changed swap by swap.

    Closing a site is priced by a local LP over the rows it reaches (cached
    until a swap touches those rows or their sites). Its row prices then tell
    what a candidate would win in that site's place: the fractional knapsack
    of ``price - cost`` over its reach, at most its capacity, which is the
    Lagrangian value of opening it. The best-looking swaps are checked by a
    local LP and accepted when they improve.
    """

    def __init__(self, p: CapacitatedProblem, start: Allocation, *, checks: int,
                 shortlist: int, nearby: int) -> None:
        self.p = p
        self.checks, self.shortlist, self.nearby = checks, shortlist, nearby
        self.candidates = _Candidates(p)
        self.by_row = sp.csr_array(p.cost[:, : p.n_candidates])
        self.load(start)

    def load(self, a: Allocation) -> None:
        self.sel = a.selected.copy()
        self.rows, self.cols, self.cost, self.flow = a.rows, a.cols, a.cost, a.flow
        self.price = a.row_price.copy()
        self.value = a.value
        self.version = 1
        self.row_stamp = np.ones(self.p.weights.size, dtype=np.int64)
        self.site_stamp = np.ones(self.p.cost.shape[1], dtype=np.int64)
        self.drops: dict[int, tuple[int, _Local]] = {}

    def allocation(self) -> Allocation:
        return Allocation(self.sel, self.rows, self.cols, self.cost, self.flow,
                          np.zeros(self.p.cost.shape[1]), self.price, self.value)

    # ------------------------------------------------------------ local LPs

    def _region(self, out: int, into: int | None = None) -> np.ndarray:
        """Rows a drop or swap may re-route: those the two sites reach and, for a
        swap, also those of every open site reaching these (with full sites, a
        move only pays once a neighbour hands rows on)."""
        csc = self.p.cost
        inside = np.zeros(self.p.weights.size, dtype=bool)
        inside[csc.indices[csc.indptr[out] : csc.indptr[out + 1]]] = True
        if into is not None:
            inside[csc.indices[csc.indptr[into] : csc.indptr[into + 1]]] = True
            near = np.unique(self.cols[inside[self.rows]])
            inside[_column_entries(csc, near[near != out])[0]] = True
        return inside & (self.p.weights > 0)

    def local(self, inside: np.ndarray, out: int, into: int | None) -> _Local:
        """Close ``out`` (and open ``into``), re-solving the rows ``inside`` only.

        Other rows keep their flows and the sites serving them keep the
        capacity those flows leave, so the result is feasible and a negative
        delta a real improvement.
        """
        p, w = self.p, self.p.weights
        region = np.flatnonzero(inside)
        here = inside[self.rows]
        total = float(w[region] @ p.base[region])
        old = total - float((p.base[self.rows[here]] - self.cost[here]) @ self.flow[here])
        keep = here & (self.cols != out)
        rows, cols, cost = self.rows[keep], self.cols[keep], self.cost[keep]
        if into is not None:
            new_r, new_c, new_cost = _column_entries(p.cost, np.array([into]))
            fresh = inside[new_r]
            rows, cols, cost = np.r_[rows, new_r[fresh]], np.r_[cols, new_c[fresh]], np.r_[
                cost, new_cost[fresh]]
        sites, lc = _local_ids(cols)
        inner = np.bincount(lc[: int(keep.sum())], weights=self.flow[keep], minlength=sites.size)
        site_load = np.bincount(self.cols, weights=self.flow, minlength=p.cost.shape[1])
        cap = np.maximum(p.capacity[sites] - (site_load[sites] - inner), 0.0)
        flow, saving, _, price = _transport(np.searchsorted(region, rows), lc, cost,
                                            p.base[region], w[region], cap)
        return _Local(total - saving - old, region, rows, cols, cost, flow, price,
                      np.r_[sites, out])

    def drop(self, r: int) -> _Local:
        cached = self.drops.get(r)
        if cached is not None:
            when, loc = cached
            if (self.row_stamp[loc.region].max(initial=0) <= when
                    and self.site_stamp[loc.sites].max(initial=0) <= when):
                return loc
        loc = self.local(self._region(r), r, None)
        self.drops[r] = (self.version, loc)
        return loc

    def apply(self, out: int, into: int, loc: _Local) -> None:
        outside = ~np.isin(self.rows, loc.region, assume_unique=False)
        self.rows = np.r_[self.rows[outside], loc.rows]
        self.cols = np.r_[self.cols[outside], loc.cols]
        self.cost = np.r_[self.cost[outside], loc.cost]
        self.flow = np.r_[self.flow[outside], loc.flow]
        self.price[loc.region] = loc.price
        self.value += loc.delta
        self.sel = np.sort(np.r_[self.sel[self.sel != out], into])
        self.version += 1
        self.row_stamp[loc.region] = self.version
        self.site_stamp[np.r_[loc.sites, into]] = self.version
        self.drops.pop(out, None)

    # ------------------------------------------------------------ proposals

    def proposals(self, deadline: float | None) -> list[tuple[int, int]]:
        """Swaps (out, in), the most promising first (those priced before the deadline)."""
        p, d = self.p, self.price
        closed = p.allowed.copy()
        closed[self.sel] = False
        shortlist, values = self.candidates.best(d, self.shortlist, closed)
        gain = np.zeros(p.n_candidates)
        gain[shortlist] = values
        bound = self.candidates.bounds(d)
        scored: list[tuple[float, int, int]] = []
        for r in self.sel.tolist():
            if deadline_passed(deadline):
                break
            loc = self.drop(r)
            rise = loc.price - d[loc.region]
            changed = loc.region[rise > 1e-12 * np.maximum(np.abs(d[loc.region]), 1.0)]
            after = d.copy()
            after[loc.region] = loc.price
            touched = self._touched(changed, d, after, bound, closed)
            near = touched[: self.nearby]
            redo = np.union1d(near, np.intersect1d(shortlist, touched))
            values = self.candidates.values(redo, after)[0] if redo.size else np.zeros(0)
            scored += [(float(v) - loc.delta, r, int(j)) for j, v in zip(redo, values, strict=True)]
            rest = np.setdiff1d(shortlist, touched)
            scored += [(float(gain[j]) - loc.delta, r, int(j)) for j in rest]
        scored.sort(key=lambda t: (-t[0], t[1], t[2]))
        return [(r, j) for v, r, j in scored if v > 0]

    def _touched(self, changed: np.ndarray, before: np.ndarray, after: np.ndarray,
                 bound: np.ndarray, closed: np.ndarray) -> np.ndarray:
        """Closed candidates reaching rows whose price rose, by their raised gain bound."""
        if changed.size == 0:
            return np.zeros(0, dtype=np.int64)
        rows, cols, cost = row_entries(self.by_row, changed)
        rise = self.p.weights[rows] * (np.maximum(after[rows] - cost, 0.0)
                                       - np.maximum(before[rows] - cost, 0.0))
        extra = np.bincount(cols, weights=rise, minlength=self.p.n_candidates)
        cand = np.flatnonzero((extra > 0) & closed)
        return cand[np.argsort(-(bound[cand] + extra[cand]), kind="stable")]

    def round(self, deadline: float | None, tol: float) -> bool:
        """Check the best proposals; apply those that improve and do not overlap."""
        busy_rows = np.zeros(self.p.weights.size, dtype=bool)
        busy_sites = np.zeros(self.p.cost.shape[1], dtype=bool)
        threshold = tol * max(abs(self.value), 1.0)
        improved, checked = False, 0
        for out, into in self.proposals(deadline):
            if checked >= self.checks or deadline_passed(deadline):
                break
            if busy_sites[out] or busy_sites[into]:
                continue
            inside = self._region(out, into)
            if (busy_rows & inside).any() or busy_sites[self.cols[inside[self.rows]]].any():
                continue
            loc = self.local(inside, out, into)
            checked += 1
            if loc.delta < -threshold:
                self.apply(out, into, loc)
                busy_rows |= inside
                busy_sites[loc.sites] = True
                busy_sites[into] = True
                improved = True
        return improved


#: Stored pairs x restarts: extra starts only where they are cheap.
_RESTART_BUDGET = 80_000
#: Randomised greedy restarts at most.
_RESTARTS = 12
#: Above this many stored pairs the greedy start (and its LP) is skipped: on the
#: 20,000 x 20,000 p-median (16.6M pairs) it took 16 s and started 6 % worse.
_GREEDY_MAX_PAIRS = 5_000_000


def search(
    p: CapacitatedProblem, start: np.ndarray, rng: np.random.Generator, *,
    deadline: float | None,
) -> Allocation:
    """Swap search from ``start``, from the capacity-aware greedy set and, on small
    instances, from up to twelve randomised greedy sets; the best wins.

    The starts end in different local optima often enough (up to 3 % apart on
    Helsinki instances; some optima were three swaps away from any improving
    swap) that each is improved, the better first (the deadline may leave no
    time for the rest). The randomised greedy opens one of the three best
    candidates at each step. The number of starts depends only on the
    instance size, so results are reproducible.
    """
    sets = [np.unique(start)]
    other = greedy(p, rng) if p.cost.nnz <= _GREEDY_MAX_PAIRS else sets[0]
    if not np.array_equal(other, sets[0]):
        sets.append(other)
    starts = sorted((allocate(p, s) for s in sets), key=lambda a: a.value)
    best = starts[0]
    # Few candidates per site leave little to explore (and every LP is the whole
    # problem there): no restarts.
    restarts = int(min(_RESTARTS, _RESTART_BUDGET // max(p.cost.nnz, 1)))
    if p.allowed.sum() < 5 * p.k:
        restarts = 0
    for i in range(len(starts) + restarts):
        if deadline_passed(deadline):
            break
        if i < len(starts):
            begin = starts[i]
        else:
            begin = allocate(p, greedy(p, rng, pick=3))
        found = improve(p, begin, deadline=deadline)
        if found.value < best.value:
            best = found
    return best


def improve(
    p: CapacitatedProblem, start: Allocation, *, deadline: float | None, tol: float = 1e-7,
) -> Allocation:
    """Swaps from ``start`` until no checked swap improves (or the deadline)."""
    if start.selected.size == 0:
        return start
    k = start.selected.size
    state = _Search(p, start, checks=_CHECKS, shortlist=2 * k + 20, nearby=_NEARBY)
    while not deadline_passed(deadline):
        if state.round(deadline, tol) or deadline_passed(deadline):
            continue
        # Nothing found on the patched flows: re-solve them all, and stop
        # unless that frees room for more.
        full = allocate(p, state.sel)
        if full.value >= state.value - tol * max(abs(state.value), 1.0):
            return full
        state.load(full)
    # Out of time: the patched flows are feasible, so they stand as the answer.
    return state.allocation()
