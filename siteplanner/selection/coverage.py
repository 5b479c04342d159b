"""Maximal covering location (MCLP): the most weighted demand within ``max_cost``.

Built like spopt's ``MCLP`` (``from_cost_matrix`` / ``from_geodataframe``,
``solve()`` returns ``self``, results end in ``_``), with the brand's
existing branches as always-open sites and an optional capacity per site.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

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

__all__ = ["MaxCoverage"]


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
