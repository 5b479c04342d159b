"""Location-allocation: choose the best *set* of k sites jointly.

Three models, shaped like spopt's (``from_cost_matrix`` / ``from_geodataframe``
build, ``solve()`` returns ``self``, results are attributes ending in ``_``):

* :class:`MaxCoverage` (MCLP): the most weighted demand within ``max_cost``.
* :class:`PMedian`: the least total weighted cost (walk time or distance).
* :class:`MaxCapture`: the most demand captured against competitors, under the
  nearest-facility rule or the Huff (gravity) rule.

Costs are demand points x candidates, dense (``np.inf`` = unreachable) or
scipy.sparse (a missing entry = beyond the cutoff). The brand's existing
branches enter every model as always-open facilities through ``fixed``
(demand x existing costs). ``solve(method="exact")`` uses a MILP through
``scipy.optimize.milp`` (HiGHS, no external binary); ``method="heuristic"``
uses greedy plus swap improvement and scales to tens of thousands of sites.
``MaxCoverage`` and ``PMedian`` take an optional capacity per site (demand is
then split among sites in reach; the heuristic is in :mod:`._capacitated`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Literal, Self

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from siteplanner._errors import CRSError, InputError
from siteplanner.selection import _capacitated as capacitated
from siteplanner.selection import _heuristic as heur
from siteplanner.selection import _milp
from siteplanner.selection._lagrange import lagrangian_min_cost

__all__ = ["MaxCapture", "MaxCoverage", "PMedian"]

logger = logging.getLogger(__name__)

Method = Literal["exact", "heuristic"]


# --------------------------------------------------------------------------- validation


def _as_costs(cost: Any, name: str, n_rows: int | None = None) -> sp.csr_array:
    """Reachable pairs as CSR (explicit zero costs kept); checks shape and values."""
    if sp.issparse(cost):
        csr = sp.csr_array(cost, dtype=np.float64, copy=True)
        csr.sum_duplicates()
        data = csr.data
    else:
        try:
            dense = np.asarray(cost, dtype=np.float64)
        except (TypeError, ValueError) as err:
            msg = f"{name}: cannot read it as a numeric matrix ({err}); pass a 2-D array"
            raise InputError(msg) from err
        if dense.ndim != 2:
            msg = (f"{name}: expected a 2-D matrix (demand points x sites), got "
                   f"{dense.ndim} dimension(s) with shape {dense.shape}")
            raise InputError(msg)
        data = dense
    shape = csr.shape if sp.issparse(cost) else data.shape
    if 0 in shape:
        msg = f"{name}: the matrix is empty (shape {shape}); it needs at least one row and column"
        raise InputError(msg)
    bad_nan = np.isnan(data)
    if bad_nan.any():
        where = _first_bad(cost, bad_nan)
        msg = (f"{name}: {int(bad_nan.sum())} cost(s) are NaN (first at {where}); use np.inf "
               "(dense) or leave the entry out (sparse) for unreachable pairs")
        raise InputError(msg)
    bad_neg = data < 0
    if bad_neg.any():
        where = _first_bad(cost, bad_neg)
        msg = (f"{name}: {int(bad_neg.sum())} cost(s) are negative (first at {where}); "
               "costs are walk times or distances and must be >= 0")
        raise InputError(msg)
    if not sp.issparse(cost):
        r, c = np.nonzero(np.isfinite(dense))
        csr = sp.csr_array((dense[r, c], (r, c)), shape=dense.shape)
    else:
        finite = np.isfinite(csr.data)
        if not finite.all():
            coo = csr.tocoo()
            csr = sp.csr_array(
                (coo.data[finite], (coo.row[finite], coo.col[finite])), shape=csr.shape
            )
    csr.sort_indices()
    if n_rows is not None and csr.shape[0] != n_rows:
        msg = (f"{name}: has {csr.shape[0]} rows but there are {n_rows} demand points; "
               "rows must be demand points, columns sites")
        raise InputError(msg)
    return csr


def _first_bad(cost: Any, mask: np.ndarray) -> str:
    if sp.issparse(cost):
        coo = sp.coo_array(cost)
        i = int(np.flatnonzero(mask)[0])
        return f"row {int(coo.row[i])}, column {int(coo.col[i])}"
    r, c = np.argwhere(mask)[0]
    return f"row {int(r)}, column {int(c)}"


def _as_vector(values: ArrayLike, name: str, n: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        msg = f"{name}: cannot read it as numbers ({err})"
        raise InputError(msg) from err
    if arr.ndim != 1 or arr.size != n:
        msg = f"{name}: expected a 1-D array with one value per {what} ({n}), got shape {arr.shape}"
        raise InputError(msg)
    if np.isnan(arr).any():
        msg = f"{name}: {int(np.isnan(arr).sum())} value(s) are NaN; give every {what} a value"
        raise InputError(msg)
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        msg = f"{name}: value {arr[i]} at position {i} is negative; values must be >= 0"
        raise InputError(msg)
    return arr


def _weights(weights: ArrayLike, n: int) -> np.ndarray:
    w = _as_vector(weights, "weights", n, "demand point")
    if not np.isfinite(w).all():
        msg = "weights: contains inf; demand weights must be finite"
        raise InputError(msg)
    if w.sum() <= 0:
        msg = ("weights: all demand weights are zero, so every choice of sites is equally "
               "good; check the weights column (foot traffic, population)")
        raise InputError(msg)
    return w


def _allowed(exclude: ArrayLike | None, n: int, k: Any) -> np.ndarray:
    allowed = np.ones(n, dtype=bool)
    if exclude is not None:
        ex = np.asarray(exclude)
        if ex.dtype == bool:
            if ex.shape != (n,):
                msg = f"exclude: a boolean mask needs one value per candidate ({n}), got {ex.shape}"
                raise InputError(msg)
            allowed &= ~ex
        else:
            idx = ex.astype(np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                msg = f"exclude: candidate indices must be in 0..{n - 1}, got {idx.min()}..{idx.max()}"
                raise InputError(msg)
            allowed[idx] = False
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        msg = f"k: expected a positive whole number of sites to open, got {k!r}"
        raise InputError(msg)
    left = int(allowed.sum())
    if k > left:
        msg = (f"k={k} is larger than the {left} candidate site(s) left after excluding "
               f"{n - left} of {n}; lower k or exclude fewer sites")
        raise InputError(msg)
    return allowed


def _fixed_min(fixed: Any, n_rows: int) -> tuple[np.ndarray, sp.csr_array | None]:
    """Cost from each demand point to its nearest existing branch (inf if none)."""
    if fixed is None:
        return np.full(n_rows, np.inf), None
    f = _as_costs(fixed, "fixed", n_rows)
    best = np.full(n_rows, np.inf)
    rows = np.repeat(np.arange(n_rows), np.diff(f.indptr))
    np.minimum.at(best, rows, f.data)
    return best, f


def _capacity(capacity: ArrayLike | None, n: int, name: str, what: str) -> np.ndarray | None:
    if capacity is None:
        return None
    cap = _as_vector(capacity, name, n, what)
    return cap


def _common(
    cost: Any, weights: ArrayLike, k: Any, exclude: ArrayLike | None, fixed: Any
) -> tuple[sp.csr_array, np.ndarray, np.ndarray, np.ndarray, sp.csr_array | None]:
    """Costs, weights, allowed mask, nearest-existing cost and existing costs."""
    c = _as_costs(cost, "cost")
    w = _weights(weights, c.shape[0])
    allowed = _allowed(exclude, c.shape[1], k)
    fixed_best, fixed_csr = _fixed_min(fixed, c.shape[0])
    return c, w, allowed, fixed_best, fixed_csr


def _capacities(
    capacity: ArrayLike | None, fixed_capacity: ArrayLike | None, n: int,
    fixed: sp.csr_array | None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    cap = _capacity(capacity, n, "capacity", "candidate")
    n_fixed = 0 if fixed is None else fixed.shape[1]
    return cap, _capacity(fixed_capacity, n_fixed, "fixed_capacity", "existing branch")


def _positive(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        msg = f"{name}: expected a number, got {value!r}"
        raise InputError(msg) from err
    if not np.isfinite(v) or v < 0:
        msg = f"{name}: expected a finite number >= 0, got {value!r}"
        raise InputError(msg)
    return v


def _keep_below(cost: sp.csr_array, limit: np.ndarray, strict: bool) -> sp.csr_array:
    """Entries with cost below (or, not strict, at most) the row's limit."""
    rows = np.repeat(np.arange(cost.shape[0]), np.diff(cost.indptr))
    keep = cost.data < limit[rows] if strict else cost.data <= limit[rows]
    out = sp.csr_array(
        (cost.data[keep], (rows[keep], cost.indices[keep])), shape=cost.shape
    )
    out.sort_indices()
    return out


# --------------------------------------------------------------------------- geometry


def _points(gdf: Any, name: str) -> np.ndarray:
    if not isinstance(gdf, gpd.GeoDataFrame | gpd.GeoSeries):
        msg = f"{name}: expected a GeoDataFrame, got {type(gdf).__name__}"
        raise InputError(msg)
    if gdf.crs is None:
        msg = f"{name}: has no CRS; set one with .set_crs(...) and project it (e.g. to UTM)"
        raise CRSError(msg)
    if not gdf.crs.is_projected:
        msg = (f"{name}: CRS {gdf.crs.to_string()} is geographic; project it with "
               ".to_crs(gdf.estimate_utm_crs()) so distances are in metres")
        raise CRSError(msg)
    geom = gdf.geometry
    if geom.isna().any() or geom.is_empty.any():
        msg = f"{name}: {int((geom.isna() | geom.is_empty).sum())} row(s) have no geometry"
        raise InputError(msg)
    # Polygons (tracts, blocks) stand for the demand at their centroid, as in spopt.
    pts = geom if (geom.geom_type == "Point").all() else geom.centroid
    return np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])


def _same_crs(base: Any, other: Any, name: str) -> None:
    if other is not None and other.crs != base.crs:
        msg = f"{name}: CRS {other.crs} differs from the demand layer's {base.crs}; reproject it"
        raise CRSError(msg)


def _straight_line(a: np.ndarray, b: np.ndarray, cutoff: float | None) -> Any:
    """Euclidean distances; sparse within ``cutoff`` when one is given."""
    if cutoff is None:
        diff = a[:, None, :] - b[None, :, :]
        return np.sqrt((diff**2).sum(axis=2))
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), cutoff, output_type="ndarray")
    return sp.csr_array((pairs["v"], (pairs["i"], pairs["j"])), shape=(len(a), len(b)))


def _column(gdf: Any, col: str | None, name: str) -> np.ndarray | None:
    if col is None or gdf is None:
        return None
    if col not in gdf.columns:
        msg = f"{name}: column {col!r} not found; available: {', '.join(map(str, gdf.columns))}"
        raise InputError(msg)
    try:
        return gdf[col].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        msg = f"{name}: column {col!r} is not numeric ({err})"
        raise InputError(msg) from err


def _optional_column(gdf: Any, col: str | None, name: str) -> np.ndarray | None:
    """A column that the existing/competitor layers may lack (then: no limit / default)."""
    if gdf is None or col is None or col not in gdf.columns:
        return None
    return _column(gdf, col, name)


def _geo_inputs(
    demand: Any, candidates: Any, others: dict[str, Any], weights_col: str, cutoff: float | None
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    d_xy = _points(demand, "demand_gdf")
    c_xy = _points(candidates, "candidates_gdf")
    _same_crs(demand, candidates, "candidates_gdf")
    weights = _column(demand, weights_col, "demand_gdf")
    assert weights is not None
    cost = _straight_line(d_xy, c_xy, cutoff)
    out: dict[str, Any] = {}
    for key, gdf in others.items():
        if gdf is None:
            out[key] = None
            continue
        xy = _points(gdf, key)
        _same_crs(demand, gdf, key)
        out[key] = _straight_line(d_xy, xy, cutoff)
    return cost, weights, out


# --------------------------------------------------------------------------- base


class _AllocationModel:
    """Shared ``solve`` driver; subclasses supply the heuristic and exact solvers."""

    _maximize: ClassVar[bool]

    selected_: np.ndarray
    objective_: float
    bound_: float
    gap_: float
    runtime_: float
    status_: str
    method_: str
    baseline_: float

    def __init__(self, *, k: int, allowed: np.ndarray, weights: np.ndarray) -> None:
        self.k = k
        self.allowed = allowed
        self.weights = weights

    def solve(
        self,
        method: Method = "exact",
        *,
        time_limit: float | None = None,
        random_state: int = 0,
        rel_gap: float = 1e-6,
    ) -> Self:
        """Choose the sites.

        Parameters
        ----------
        method
            ``"exact"``: MILP through HiGHS, proven optimal unless the time
            limit stops it (then ``gap_`` says how far from proven).
            ``"heuristic"``: greedy plus swap improvement, for large instances.
        time_limit
            Seconds for the whole solve (``None``: no limit).
        random_state
            Seed for breaking ties between equally good sites.
        rel_gap
            Relative optimality gap at which HiGHS stops.

        Returns
        -------
        self, with ``selected_`` (candidate indices), ``objective_``,
        ``bound_`` (best proven bound on the optimum), ``gap_``, ``runtime_``,
        ``status_`` and ``baseline_`` (the objective with existing branches only);
        with capacity also ``allocation_`` (served weight, demand points x
        candidates then existing branches).
        """
        if method not in ("exact", "heuristic"):
            msg = f"method: expected 'exact' or 'heuristic', got {method!r}"
            raise InputError(msg)
        if time_limit is not None and not time_limit > 0:
            msg = f"time_limit: expected a positive number of seconds, got {time_limit!r}"
            raise InputError(msg)
        start = time.perf_counter()
        deadline = None if time_limit is None else start + float(time_limit)
        rng = np.random.default_rng(random_state)
        if method == "heuristic":
            selected, objective, bound = self._heuristic(rng, deadline)
            status = "heuristic"
        else:
            selected, objective, bound, optimal = self._exact(rng, deadline, rel_gap)
            status = "optimal" if optimal else "time_limit"
        self.selected_ = self._pad(selected)
        self.objective_ = float(objective)
        self.bound_ = float(bound)
        scale = max(abs(self.objective_), 1e-12)
        diff = (self.bound_ - self.objective_) if self._maximize else (
            self.objective_ - self.bound_)
        self.gap_ = float(max(diff, 0.0) / scale) if np.isfinite(diff) else float("nan")
        self.runtime_ = time.perf_counter() - start
        self.status_ = status
        self.method_ = method
        logger.info(
            "%s: %s solve, k=%d, objective %.6g, gap %.3g, %.2fs",
            type(self).__name__, method, self.k, self.objective_, self.gap_, self.runtime_,
        )
        return self

    def _pad(self, selected: np.ndarray) -> np.ndarray:
        # Opening a site never hurts these objectives, so a solution with fewer
        # than k sites leaves the rest at zero gain: fill with the first free ones.
        sel = np.unique(np.asarray(selected, dtype=np.int64))
        missing = self.k - sel.size
        if missing > 0:
            free = np.flatnonzero(self.allowed)
            free = free[~np.isin(free, sel)]
            sel = np.sort(np.r_[sel, free[:missing]])
        return sel

    def _heuristic(
        self, rng: np.random.Generator, deadline: float | None
    ) -> tuple[np.ndarray, float, float]:
        raise NotImplementedError

    def _exact(
        self, rng: np.random.Generator, deadline: float | None, rel_gap: float
    ) -> tuple[np.ndarray, float, float, bool]:
        raise NotImplementedError


_ROUNDS = 10  # shake-and-swap rounds per local-search chain
_CHAINS = 10  # chains at most: the first from the greedy / Lagrangian start, the rest
_GRASP = 5  # ... from randomised greedy sets: each step opens one of the 5 best sites
_SEARCH_BUDGET = 50_000_000  # rounds x stored pairs: fewer chains on large instances
_STOP_GAP = 1e-4  # the search stops within 0.01 % of its proven bound
_LAGRANGE_WORK = 100_000_000  # matrix entries the subgradient steps may touch (<= 300 steps)


def _min_cost_search(
    p: heur.MinCostProblem, rng: np.random.Generator, deadline: float | None
) -> tuple[np.ndarray, float, float]:
    """Greedy, a Lagrangian bound, then chains of iterated swaps.

    1. Greedy, then swaps to a first local optimum.
    2. The Lagrangian relaxation (``_lagrange``) from there: a lower bound
       and a second candidate start.
    3. Chains of iterated local search, the first from the better start, the
       others from randomised greedy sets (on plateau-rich instances the
       optimum can share few sites with the greedy basin). The search stops as soon as
       its value is within 0.01 % of the bound.
    4. If the search improved on the first local optimum, the Lagrangian
       ascent resumes with that better target, for a tighter bound.

    The work done depends only on the instance and the seed (unless the
    deadline cuts it short), so results are reproducible.
    Returns (selected, min-cost value, min-cost lower bound).
    """
    greedy, lower = heur.greedy_min_cost(p, rng)
    entries = heur.SortedEntries(p.cost)  # sorted once, shared by every step below
    # The first local optimum is a close target for the Lagrangian step sizes.
    start, value, submodular = heur.iterated_swaps(p, greedy, rng, rounds=0, lower=lower,
                                                   deadline=deadline, entries=entries)
    lag_target = value
    # Each row's cost at that optimum is a good first multiplier, and keeps the
    # active entries (those cheaper than it) few from the first step.
    lag = lagrangian_min_cost(p, value, deadline=deadline, work=_LAGRANGE_WORK,
                              start=heur.evaluate_min_cost(p, start), entries=entries)
    lower = max(lower, submodular, lag.lower)
    for candidate in lag.sets[:1]:
        v = float(p.weights @ heur.evaluate_min_cost(p, candidate))
        if v < value:
            start, value = candidate, v
    chains = int(np.clip(_SEARCH_BUDGET // (_ROUNDS * max(p.cost.nnz, 1)), 1, _CHAINS))
    pool = np.flatnonzero(p.allowed)
    best = start
    for chain in range(chains):
        if _proven(value, lower, _STOP_GAP) or (chain and pool.size <= p.k):
            break
        if chain and heur.deadline_passed(deadline):
            break
        first = start if chain == 0 else heur.greedy_min_cost(p, rng, choices=_GRASP)[0]
        sel, v, _ = heur.iterated_swaps(p, first, rng, rounds=_ROUNDS, lower=lower,
                                        deadline=deadline, entries=entries, stop_gap=_STOP_GAP)
        if v < value:
            best, value = sel, v
    if not _proven(value, lower, 1e-9) and value < lag_target:
        # A better target lets the ascent, resumed where it stopped, go further.
        again = lagrangian_min_cost(p, value, deadline=deadline, start=lag.multipliers,
                                    work=_LAGRANGE_WORK / 2, entries=entries)
        lower = max(lower, again.lower)
    return best, value, lower


def _proven(value: float, lower: float, rel_gap: float) -> bool:
    """Whether a min-cost ``value`` is within ``rel_gap`` of the ``lower`` bound."""
    return value - lower <= rel_gap * max(abs(value), 1.0)


class _MinCostModel(_AllocationModel):
    """Models whose objective maps to the min-cost form (see ``_heuristic``)."""

    _problem: heur.MinCostProblem
    _cost: sp.csr_array
    _fixed: sp.csr_array | None
    capacity: np.ndarray | None
    fixed_capacity: np.ndarray | None
    max_cost: float | None
    #: With capacity: served weight, demand points x (candidates, then existing branches).
    allocation_: sp.csr_array | None = None

    def _to_objective(self, min_cost: float) -> float:
        return min_cost

    def _min_cost_heuristic(
        self, rng: np.random.Generator, deadline: float | None
    ) -> tuple[np.ndarray, float, float]:
        return _min_cost_search(self._problem, rng, deadline)

    def _heuristic(
        self, rng: np.random.Generator, deadline: float | None
    ) -> tuple[np.ndarray, float, float]:
        if self._capacitated:
            return self._capacitated_heuristic(rng, deadline)
        selected, value, lower = self._min_cost_heuristic(rng, deadline)
        self._check_covered(selected)
        return selected, self._to_objective(value), self._to_objective(lower)

    def _check_covered(self, selected: np.ndarray) -> None:
        """Models with a hard service standard raise when ``selected`` misses it."""

    @property
    def _capacitated(self) -> bool:
        return self.capacity is not None or self.fixed_capacity is not None

    def _pairs(self) -> tuple[sp.csr_array, np.ndarray]:
        return _pairs_with_existing(
            self._cost, self._fixed, self.capacity, self.fixed_capacity, self.max_cost
        )

    # ----------------------------------------------------------------- capacity

    #: Stored pairs x subgradient rounds for the heuristic's Lagrangian bound.
    _BOUND_BUDGET = 300_000_000

    def _capacity_problem(self) -> capacitated.CapacitatedProblem:
        raise NotImplementedError

    def _uncapacitated_bound_holds(self) -> bool:
        """Whether every set costs at least as much with capacity as without."""
        return True

    def _capacitated_heuristic(
        self, rng: np.random.Generator, deadline: float | None
    ) -> tuple[np.ndarray, float, float]:
        p = self._capacity_problem()
        best, lower = self._capacitated_search(p, rng, deadline)
        self._keep_allocation(p, best, exact=False)
        value = best.objective(p)
        # Capacity only removes options, so the uncapacitated bound holds; the
        # Lagrangian one from the LP prices is usually much tighter.
        rounds = int(np.clip(self._BOUND_BUDGET // max(p.cost.nnz, 1), 10, 100))
        bound = max(lower if self._uncapacitated_bound_holds() else -np.inf,
                    capacitated.lagrangian_bound(p, best.row_price, target=value,
                                                  rounds=rounds, deadline=deadline))
        return best.selected, self._to_objective(value), self._to_objective(bound)

    def _capacitated_search(
        self, p: capacitated.CapacitatedProblem, rng: np.random.Generator,
        deadline: float | None,
    ) -> tuple[capacitated.Allocation, float]:
        """Swap search from the uncapacitated heuristic's set or the capacity-aware greedy."""
        start, _, lower = self._min_cost_heuristic(rng, deadline)
        return capacitated.search(p, start, rng, deadline=deadline), lower

    def _capacitated_exact(
        self, rng: np.random.Generator, deadline: float | None, rel_gap: float
    ) -> tuple[np.ndarray, float, float, bool]:
        p = self._capacity_problem()
        res = self._capacitated_milp(p, deadline, rel_gap)
        # The MILP's flows carry its tolerances; the LP for its sites is exact.
        best = capacitated.allocate(p, res.selected) if res.selected.size else None
        if best is None or not res.optimal:
            heuristic, _ = self._capacitated_search(p, rng, deadline)
            if best is None or heuristic.value < best.value:
                best = heuristic
        self._keep_allocation(p, best, exact=True)
        return best.selected, self._to_objective(best.objective(p)), self._to_objective(
            res.bound), res.optimal

    def _capacitated_milp(
        self, p: capacitated.CapacitatedProblem, deadline: float | None, rel_gap: float
    ) -> _milp.ExactResult:
        try:
            return _milp.solve_capacitated(p, deadline=deadline, rel_gap=rel_gap)
        except _milp.InfeasibleModel:
            msg = (f"cover_all: no {self.k} sites can serve all demand within "
                   f"max_cost={self.max_cost:g} under these capacities; raise capacity, k "
                   "or max_cost, or drop cover_all")
            raise InputError(msg) from None

    def _keep_allocation(
        self, p: capacitated.CapacitatedProblem, best: capacitated.Allocation, *, exact: bool
    ) -> None:
        served = best.served(p.weights.size)
        short = np.flatnonzero(p.required & (served < p.weights * (1 - 1e-6)))
        if short.size:
            hint = "" if exact else ", or try solve(method='exact')"
            msg = (f"cover_all: no {self.k} sites found that serve all demand within "
                   f"max_cost={self.max_cost:g} under these capacities ({short.size} demand "
                   f"point(s) short, first row {short[0]}); raise capacity, k or max_cost{hint}")
            raise InputError(msg)
        self.allocation_ = best.matrix(p.cost.shape)

    def _baseline(self) -> float:
        if self._capacitated:
            cap = self._capacity_problem()
            return self._to_objective(capacitated.allocate(cap, np.array([], np.int64))
                                      .objective(cap))
        p = self._problem
        return self._to_objective(float(p.weights @ p.base))


# --------------------------------------------------------------------------- MaxCoverage


class MaxCoverage(_MinCostModel):
    """Maximal covering location problem (MCLP) with existing branches.

    ``objective_`` is the weighted demand within ``max_cost`` of an open site
    (existing branches included); ``baseline_`` is what the existing branches
    cover alone. A demand point counts as covered when its cost is <= max_cost.
    """

    _maximize = True

    def __init__(
        self,
        cost: sp.csr_array,
        weights: np.ndarray,
        *,
        k: int,
        max_cost: float,
        allowed: np.ndarray,
        fixed: sp.csr_array | None,
        fixed_best: np.ndarray,
        capacity: np.ndarray | None,
        fixed_capacity: np.ndarray | None,
    ) -> None:
        super().__init__(k=k, allowed=allowed, weights=weights)
        self.max_cost = max_cost
        self.capacity = capacity
        self.fixed_capacity = fixed_capacity
        self._cost = cost
        self._fixed = fixed
        self._total = float(weights.sum())
        covered = fixed_best <= max_cost
        within = _keep_below(cost, np.full(cost.shape[0], max_cost), strict=False)
        within = _keep_below(within, np.where(covered, -1.0, np.inf), strict=False)
        within.data = np.zeros_like(within.data)
        self._problem = heur.MinCostProblem(
            within, np.where(covered, 0.0, 1.0), weights, allowed, k
        )
        self.baseline_ = self._baseline()

    def _to_objective(self, min_cost: float) -> float:
        return self._total - min_cost

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: ArrayLike,
        *,
        k: int,
        max_cost: float,
        fixed: Any = None,
        capacity: ArrayLike | None = None,
        fixed_capacity: ArrayLike | None = None,
        exclude: ArrayLike | None = None,
    ) -> MaxCoverage:
        """Build from a demand x candidates cost matrix.

        Parameters
        ----------
        cost
            Demand points x candidates, dense (``np.inf`` = unreachable) or
            scipy.sparse (missing = unreachable).
        weights
            Demand per point (people, foot traffic).
        k
            Number of new sites to open.
        max_cost
            Coverage standard: covered when cost <= max_cost (minutes or metres).
        fixed
            Demand points x existing branches costs; those branches are open.
        capacity, fixed_capacity
            Optional demand each candidate / existing branch can serve; a
            covered demand point's weight is split among sites in reach, each
            covering at most its capacity. ``allocation_`` holds the split.
        exclude
            Candidate indices (or a boolean mask) that may not be chosen.
        """
        c, w, allowed, fixed_best, fixed_csr = _common(cost, weights, k, exclude, fixed)
        limit = _positive(max_cost, "max_cost")
        cap, fcap = _capacities(capacity, fixed_capacity, c.shape[1], fixed_csr)
        return cls(c, w, k=int(k), max_cost=limit, allowed=allowed, fixed=fixed_csr,
                   fixed_best=fixed_best, capacity=cap, fixed_capacity=fcap)

    @classmethod
    def from_geodataframe(
        cls,
        demand_gdf: gpd.GeoDataFrame,
        candidates_gdf: gpd.GeoDataFrame,
        *,
        weights_col: str,
        k: int,
        max_cost: float,
        existing: gpd.GeoDataFrame | None = None,
        capacity_col: str | None = None,
        exclude: ArrayLike | None = None,
    ) -> MaxCoverage:
        """Build from GeoDataFrames with straight-line distance (CRS units) as cost."""
        limit = _positive(max_cost, "max_cost")
        cost, w, other = _geo_inputs(demand_gdf, candidates_gdf, {"existing": existing},
                                     weights_col, limit)
        return cls.from_cost_matrix(
            cost, w, k=k, max_cost=limit, fixed=other["existing"],
            capacity=_column(candidates_gdf, capacity_col, "candidates_gdf"),
            fixed_capacity=_optional_column(existing, capacity_col, "existing"), exclude=exclude,
        )

    def _capacity_problem(self) -> capacitated.CapacitatedProblem:
        # Coverage as min-cost: a covered unit costs 0, an uncovered one 1.
        pairs, caps = self._pairs()
        pairs.data = np.zeros_like(pairs.data)
        ones = np.ones(pairs.shape[0])
        return capacitated.CapacitatedProblem(
            sp.csc_array(pairs), ones, ones, self.weights, caps, self.allowed, self.k,
            np.zeros(pairs.shape[0], dtype=bool))

    def _exact(
        self, rng: np.random.Generator, deadline: float | None, rel_gap: float
    ) -> tuple[np.ndarray, float, float, bool]:
        if self._capacitated:
            return self._capacitated_exact(rng, deadline, rel_gap)
        inc, inc_value, inc_lower = self._min_cost_heuristic(rng, deadline)
        if _proven(inc_value, inc_lower, rel_gap):
            return inc, self._to_objective(inc_value), self._to_objective(inc_lower), True
        res = _milp.solve_coverage(self._problem, deadline=deadline, rel_gap=rel_gap)
        best, value = (res.selected, res.objective) if res.objective <= inc_value else (
            inc, inc_value)
        lower = max(res.bound, inc_lower)  # the heuristic's bound can be the better one
        optimal = (res.optimal and value <= res.objective) or _proven(value, lower, rel_gap)
        return best, self._to_objective(value), self._to_objective(lower), optimal


def _pairs_with_existing(
    cost: sp.csr_array,
    fixed: sp.csr_array | None,
    capacity: np.ndarray | None,
    fixed_capacity: np.ndarray | None,
    max_cost: float | None,
) -> tuple[sp.csr_array, np.ndarray]:
    """Candidates and existing branches side by side, with one capacity per column."""
    n_c = cost.shape[1]
    n_f = 0 if fixed is None else fixed.shape[1]
    blocks = [cost] if fixed is None else [cost, fixed]
    pairs = sp.csr_array(sp.hstack(blocks, format="csr"))
    if max_cost is not None:
        pairs = _keep_below(pairs, np.full(pairs.shape[0], max_cost), strict=False)
    caps = np.r_[
        capacity if capacity is not None else np.full(n_c, np.inf),
        fixed_capacity if fixed_capacity is not None else np.full(n_f, np.inf),
    ]
    return pairs, caps


# --------------------------------------------------------------------------- PMedian


class PMedian(_MinCostModel):
    """p-median: the least total weighted cost from demand to its nearest open site.

    ``objective_`` is sum_i w_i * cost to the nearest open site (existing
    branches included). A demand point that no open site reaches (missing
    entries in a sparse matrix, or beyond ``max_cost``) costs
    ``unreachable_cost``; ``unserved_`` is the weight of such points.
    """

    _maximize = False

    def __init__(
        self,
        cost: sp.csr_array,
        weights: np.ndarray,
        *,
        k: int,
        allowed: np.ndarray,
        fixed: sp.csr_array | None,
        fixed_best: np.ndarray,
        unreachable_cost: float,
        max_cost: float | None,
        cover_all: bool,
        capacity: np.ndarray | None,
        fixed_capacity: np.ndarray | None,
    ) -> None:
        super().__init__(k=k, allowed=allowed, weights=weights)
        self.unreachable_cost = unreachable_cost
        self.max_cost = max_cost
        self.cover_all = cover_all
        self.capacity = capacity
        self.fixed_capacity = fixed_capacity
        self._cost = cost
        self._fixed = fixed
        base = np.minimum(fixed_best, unreachable_cost)
        if max_cost is not None:
            base = np.where(fixed_best <= max_cost, fixed_best, unreachable_cost)
            cost = _keep_below(cost, np.full(cost.shape[0], max_cost), strict=False)
        self.baseline_ = float(weights @ base)
        self._required = np.zeros(cost.shape[0], dtype=bool)
        if cover_all and max_cost is not None:
            self._required = (weights > 0) & (fixed_best > max_cost)
            self._check_reach(cost)
            # A large penalty makes the heuristic cover these rows first; the
            # MILP has explicit constraints for them, so the value is inert there.
            base = np.where(self._required, 1e6 * max(unreachable_cost, 1.0), base)
        self._problem = heur.MinCostProblem(
            _keep_below(cost, base, strict=True), base, weights, allowed, k
        )
        if self._capacitated:
            self.baseline_ = self._baseline()

    def _check_reach(self, within: sp.csr_array) -> None:
        rows = np.repeat(np.arange(within.shape[0]), np.diff(within.indptr))
        reach = np.bincount(rows[self.allowed[within.indices]], minlength=within.shape[0]) > 0
        lost = np.flatnonzero(self._required & ~reach)
        if lost.size:
            msg = (f"cover_all: {lost.size} demand point(s) (first: row {lost[0]}) have no "
                   f"candidate or existing branch within max_cost={self.max_cost:g}; raise "
                   "max_cost or set cover_all=False")
            raise InputError(msg)

    def _check_covered(self, selected: np.ndarray) -> None:
        if not self._required.any():
            return
        d = heur.evaluate_min_cost(self._problem, selected)
        lost = np.flatnonzero(self._required & (d >= self._problem.base))
        if lost.size:
            msg = (f"cover_all: no {self.k} sites found that put every demand point within "
                   f"max_cost={self.max_cost:g} ({lost.size} left out, first row {lost[0]}); "
                   "raise k or max_cost, or try solve(method='exact')")
            raise InputError(msg)

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: ArrayLike,
        *,
        k: int,
        fixed: Any = None,
        max_cost: float | None = None,
        cover_all: bool = False,
        unreachable_cost: float | None = None,
        capacity: ArrayLike | None = None,
        fixed_capacity: ArrayLike | None = None,
        exclude: ArrayLike | None = None,
    ) -> PMedian:
        """Build from a demand x candidates cost matrix.

        Parameters
        ----------
        cost, weights, k, fixed, exclude
            As in :meth:`MaxCoverage.from_cost_matrix`.
        max_cost
            Optional cutoff: a site farther than this does not serve a point
            (Esri's impedance cutoff).
        cover_all
            With ``max_cost``: a service standard; every demand point with
            weight must have an open site within ``max_cost``.
        unreachable_cost
            Cost charged for a demand point no open site reaches; default the
            largest reachable cost in ``cost`` and ``fixed`` (the cutoff, for a
            matrix built with one), or ``max_cost`` when given.
        capacity, fixed_capacity
            Optional demand each candidate / existing branch can serve. Each
            point's weight is then split among open sites within reach, each
            serving at most its capacity; a unit no open site takes pays
            ``unreachable_cost`` (with infinite capacities this is the model
            without capacity). With ``cover_all`` every point with weight
            must be served in full. ``allocation_`` holds the split.
        """
        c, w, allowed, fixed_best, fixed_csr = _common(cost, weights, k, exclude, fixed)
        limit = None if max_cost is None else _positive(max_cost, "max_cost")
        if cover_all and limit is None:
            msg = "cover_all: needs max_cost, the service standard every point must meet"
            raise InputError(msg)
        if unreachable_cost is None:
            reach = [c.data] if fixed_csr is None else [c.data, fixed_csr.data]
            top = float(max((r.max(initial=0.0) for r in reach), default=0.0))
            penalty = limit if limit is not None else top
        else:
            penalty = _positive(unreachable_cost, "unreachable_cost")
        cap, fcap = _capacities(capacity, fixed_capacity, c.shape[1], fixed_csr)
        model = cls(c, w, k=int(k), allowed=allowed, fixed=fixed_csr, fixed_best=fixed_best,
                    unreachable_cost=penalty, max_cost=limit, cover_all=cover_all, capacity=cap,
                    fixed_capacity=fcap)
        if cap is not None or fcap is not None:
            model._check_capacity()
        return model

    @classmethod
    def from_geodataframe(
        cls,
        demand_gdf: gpd.GeoDataFrame,
        candidates_gdf: gpd.GeoDataFrame,
        *,
        weights_col: str,
        k: int,
        existing: gpd.GeoDataFrame | None = None,
        max_cost: float | None = None,
        capacity_col: str | None = None,
        exclude: ArrayLike | None = None,
    ) -> PMedian:
        """Build from GeoDataFrames with straight-line distance (CRS units) as cost.

        Without ``max_cost`` the full dense distance matrix is built; give
        ``max_cost`` for large layers so only pairs within it are stored.
        """
        limit = None if max_cost is None else _positive(max_cost, "max_cost")
        cost, w, other = _geo_inputs(demand_gdf, candidates_gdf, {"existing": existing},
                                     weights_col, limit)
        return cls.from_cost_matrix(
            cost, w, k=k, fixed=other["existing"], max_cost=limit,
            capacity=_column(candidates_gdf, capacity_col, "candidates_gdf"),
            fixed_capacity=_optional_column(existing, capacity_col, "existing"), exclude=exclude,
        )

    @property
    def unserved_(self) -> float:
        """Weight of demand that no open site serves (none in reach, or, with
        capacity, those in reach full)."""
        if self.allocation_ is not None:
            return float(np.maximum(self.weights - self.allocation_.sum(axis=1), 0.0).sum())
        d = heur.evaluate_min_cost(self._problem, self.selected_)
        reached = d < self._problem.base
        return float(self.weights[(~reached) & (self._problem.base >= self.unreachable_cost)]
                     .sum())

    def _must_serve(self) -> np.ndarray:
        """Rows a capacitated ``cover_all`` model must serve in full: every weighted row
        (one near an existing branch too, as that branch may be full)."""
        if not self.cover_all:
            return np.zeros(self.weights.size, dtype=bool)
        return self.weights > 0

    def _capacity_problem(self) -> capacitated.CapacitatedProblem:
        pairs, caps = self._pairs()
        required = self._must_serve()
        penalty = np.full(pairs.shape[0], self.unreachable_cost)
        # Serving at or above the penalty never pays, except where service is required.
        base = np.where(required, 1e6 * max(self.unreachable_cost, 1.0), penalty)
        return capacitated.CapacitatedProblem(
            sp.csc_array(_keep_below(pairs, base, strict=True)), base, penalty, self.weights,
            caps, self.allowed, self.k, required)

    def _uncapacitated_bound_holds(self) -> bool:
        # Without capacity a point an existing branch reaches pays that branch's
        # cost even above unreachable_cost; with capacity it pays at most the penalty.
        return bool((self._problem.base[~self._required] <= self.unreachable_cost).all())

    def _check_capacity(self) -> None:
        need = float(self.weights[self._must_serve()].sum())
        if need == 0:
            return
        n_c = self._cost.shape[1]
        _, caps = self._pairs()
        have = float(np.sort(caps[:n_c][self.allowed])[::-1][: self.k].sum() + caps[n_c:].sum())
        if have < need:
            msg = (f"capacity: cover_all=True needs all {need:g} demand served, but the "
                   f"{self.k} largest candidate capacities plus the existing branches' give "
                   f"{have:g}; raise capacity or k, or drop cover_all")
            raise InputError(msg)

    def _exact(
        self, rng: np.random.Generator, deadline: float | None, rel_gap: float
    ) -> tuple[np.ndarray, float, float, bool]:
        if self._capacitated:
            return self._capacitated_exact(rng, deadline, rel_gap)
        inc, inc_value, inc_lower = self._min_cost_heuristic(rng, deadline)
        if _proven(inc_value, inc_lower, rel_gap):
            self._check_covered(inc)
            return inc, inc_value, inc_lower, True
        try:
            res = _milp.solve_pmedian(self._problem, deadline=deadline, rel_gap=rel_gap,
                                      incumbent=inc, required=self._required)
        except _milp.InfeasibleModel:
            msg = (f"cover_all: no {self.k} sites put every demand point within "
                   f"max_cost={self.max_cost:g}; raise k or max_cost")
            raise InputError(msg) from None
        best, value = (res.selected, res.objective) if res.objective <= inc_value else (
            inc, inc_value)
        self._check_covered(best)
        lower = max(res.bound, inc_lower)  # the heuristic's bound can be the better one
        return best, value, lower, res.optimal or _proven(value, lower, rel_gap)


# --------------------------------------------------------------------------- MaxCapture


class MaxCapture(_AllocationModel):
    """Maximum capture against competitors (ReVelle 1986; Huff 1964).

    ``rule="nearest"``: each demand point goes to its nearest site; a tie
    between the brand (new or existing) and the nearest competitor splits it
    half and half. ``rule="huff"``: each point splits among all sites in
    proportion to ``attractiveness * max(cost, cost_floor) ** -beta``.
    ``objective_`` is the weighted demand the brand captures (existing
    branches included); ``baseline_`` is what the existing branches capture.
    """

    _maximize = True

    def __init__(
        self,
        weights: np.ndarray,
        *,
        k: int,
        allowed: np.ndarray,
        rule: str,
        coverage: heur.MinCostProblem | None,
        huff: heur.HuffProblem | None,
    ) -> None:
        super().__init__(k=k, allowed=allowed, weights=weights)
        self.rule = rule
        self._coverage = coverage
        self._huff = huff
        self._total = float(weights.sum())
        if coverage is not None:
            self.baseline_ = self._total - float(coverage.weights @ coverage.base)
        else:
            assert huff is not None
            share = heur.evaluate_huff(huff, np.array([], dtype=np.int64))
            self.baseline_ = float(weights @ share)

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: ArrayLike,
        *,
        k: int,
        competitor_cost: Any,
        fixed: Any = None,
        rule: Literal["nearest", "huff"] = "nearest",
        beta: float = 2.0,
        cost_floor: float = 1.0,
        attractiveness: ArrayLike | None = None,
        fixed_attractiveness: ArrayLike | None = None,
        competitor_attractiveness: ArrayLike | None = None,
        exclude: ArrayLike | None = None,
    ) -> MaxCapture:
        """Build from demand x candidates and demand x competitors cost matrices.

        Parameters
        ----------
        cost, weights, k, fixed, exclude
            As in :meth:`MaxCoverage.from_cost_matrix`.
        competitor_cost
            Demand points x competitor sites costs.
        rule
            ``"nearest"`` or ``"huff"``.
        beta
            Huff distance-decay exponent.
        cost_floor
            Huff: costs below this count as this (a site at cost 0 would
            otherwise take everything).
        attractiveness, fixed_attractiveness, competitor_attractiveness
            Huff: per-site attractiveness (e.g. floor area); default 1.
        """
        c, w, allowed, fixed_best, fixed_csr = _common(cost, weights, k, exclude, fixed)
        n_rows = c.shape[0]
        comp = _as_costs(competitor_cost, "competitor_cost", n_rows)
        if rule == "nearest":
            comp_best = np.full(n_rows, np.inf)
            np.minimum.at(comp_best, np.repeat(np.arange(n_rows), np.diff(comp.indptr)),
                          comp.data)
            # Two half-weight rows per point: "a strictly nearer brand site is
            # open" and "a site at least as near is open"; a tie then earns half.
            strict = fixed_best < comp_best
            tie = fixed_best <= comp_best
            rows_a = _keep_below(c, comp_best, strict=True)
            rows_b = _keep_below(c, comp_best, strict=False)
            cover = sp.csr_array(sp.vstack([rows_a, rows_b], format="csr"))
            cover.data = np.zeros_like(cover.data)
            done = np.r_[strict, tie]
            cover = _keep_below(cover, np.where(done, -1.0, np.inf), strict=False)
            problem = heur.MinCostProblem(cover, np.where(done, 0.0, 1.0), np.r_[w, w] / 2,
                                          allowed, int(k))
            return cls(w, k=int(k), allowed=allowed, rule=rule, coverage=problem, huff=None)
        if rule != "huff":
            msg = f"rule: expected 'nearest' or 'huff', got {rule!r}"
            raise InputError(msg)
        b = _positive(beta, "beta")
        floor = _positive(cost_floor, "cost_floor")
        if floor <= 0:
            msg = "cost_floor: must be > 0 for the Huff rule"
            raise InputError(msg)

        def utility(m: sp.csr_array, attract: ArrayLike | None, name: str) -> sp.csr_array:
            a = np.ones(m.shape[1]) if attract is None else _as_vector(
                attract, name, m.shape[1], "site")
            out = m.copy()
            out.data = a[m.indices] * np.maximum(m.data, floor) ** -b
            return out

        u = utility(c, attractiveness, "attractiveness")
        base = np.zeros(n_rows)
        if fixed_csr is not None:
            base = np.asarray(utility(fixed_csr, fixed_attractiveness, "fixed_attractiveness")
                              .sum(axis=1)).ravel()
        rival = np.asarray(utility(comp, competitor_attractiveness, "competitor_attractiveness")
                           .sum(axis=1)).ravel()
        problem_h = heur.HuffProblem(u, base, rival, w, allowed, int(k))
        return cls(w, k=int(k), allowed=allowed, rule=rule, coverage=None, huff=problem_h)

    @classmethod
    def from_geodataframe(
        cls,
        demand_gdf: gpd.GeoDataFrame,
        candidates_gdf: gpd.GeoDataFrame,
        *,
        weights_col: str,
        k: int,
        competitors: gpd.GeoDataFrame,
        existing: gpd.GeoDataFrame | None = None,
        rule: Literal["nearest", "huff"] = "nearest",
        beta: float = 2.0,
        cost_floor: float = 1.0,
        attractiveness_col: str | None = None,
        max_cost: float | None = None,
        exclude: ArrayLike | None = None,
    ) -> MaxCapture:
        """Build from GeoDataFrames with straight-line distance (CRS units) as cost.

        ``max_cost`` (optional) keeps only pairs within it, for large layers.
        """
        if competitors is None:
            msg = "competitors: MaxCapture needs a GeoDataFrame of competitor sites"
            raise InputError(msg)
        limit = None if max_cost is None else _positive(max_cost, "max_cost")
        cost, w, other = _geo_inputs(
            demand_gdf, candidates_gdf, {"existing": existing, "competitors": competitors},
            weights_col, limit,
        )
        return cls.from_cost_matrix(
            cost, w, k=k, competitor_cost=other["competitors"], fixed=other["existing"],
            rule=rule, beta=beta, cost_floor=cost_floor,
            attractiveness=_column(candidates_gdf, attractiveness_col, "candidates_gdf"),
            fixed_attractiveness=_optional_column(existing, attractiveness_col, "existing"),
            competitor_attractiveness=_optional_column(competitors, attractiveness_col, "competitors"),
            exclude=exclude,
        )

    def _heuristic(
        self, rng: np.random.Generator, deadline: float | None
    ) -> tuple[np.ndarray, float, float]:
        if self._coverage is not None:
            sel, value, lower = _min_cost_search(self._coverage, rng, deadline)
            return sel, self._total - value, self._total - lower
        assert self._huff is not None
        h = self._huff
        greedy, upper = heur.greedy_huff(h, rng)
        sel = heur.swap_huff(h, greedy, deadline=deadline)
        return sel, float(h.weights @ heur.evaluate_huff(h, sel)), upper

    def _exact(
        self, rng: np.random.Generator, deadline: float | None, rel_gap: float
    ) -> tuple[np.ndarray, float, float, bool]:
        inc, inc_value, inc_bound = self._heuristic(rng, deadline)
        if self._coverage is not None:
            if _proven(inc_bound, inc_value, rel_gap):
                return inc, inc_value, inc_bound, True
            res = _milp.solve_coverage(self._coverage, deadline=deadline, rel_gap=rel_gap)
            value = self._total - res.objective
            bound = min(self._total - res.bound, inc_bound)  # the better of the two bounds
            if value >= inc_value:
                return res.selected, value, bound, res.optimal or _proven(bound, value, rel_gap)
            return inc, inc_value, bound, _proven(bound, inc_value, rel_gap)
        assert self._huff is not None
        res = _milp.solve_huff(self._huff, deadline=deadline, rel_gap=rel_gap, incumbent=inc)
        return res.selected, res.objective, res.bound, res.optimal
