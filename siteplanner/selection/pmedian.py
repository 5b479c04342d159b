"""p-median: the least total weighted cost from demand to its nearest open site.

Built like spopt's ``PMedian`` (``from_cost_matrix`` / ``from_geodataframe``,
``solve()`` returns ``self``, results end in ``_``), with the brand's
existing branches as always-open sites, an optional cutoff and service
standard (``max_cost``, ``cover_all``) and an optional capacity per site.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from siteplanner._errors import InputError
from siteplanner.selection import _capacitated as capacitated
from siteplanner.selection import _heuristic as heur
from siteplanner.selection import _milp
from siteplanner.selection._base import _MinCostModel, _proven
from siteplanner.selection._inputs import (
    _capacities,
    _column,
    _common,
    _geo_inputs,
    _keep_below,
    _optional_column,
    _positive,
)

__all__ = ["PMedian"]


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
