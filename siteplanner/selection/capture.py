"""Maximum capture: the most demand the brand wins against its competitors.

Under the nearest-facility rule (ReVelle 1986) or the Huff gravity rule
(Huff 1964). Built like spopt's models (``from_cost_matrix`` /
``from_geodataframe``, ``solve()`` returns ``self``, results end in ``_``),
with the brand's existing branches as always-open sites.
"""

from __future__ import annotations

from typing import Any, Literal

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from siteplanner._errors import InputError
from siteplanner.selection import _heuristic as heur
from siteplanner.selection import _milp
from siteplanner.selection._base import _AllocationModel, _min_cost_search, _proven
from siteplanner.selection._inputs import (
    _as_costs,
    _as_vector,
    _column,
    _common,
    _geo_inputs,
    _keep_below,
    _optional_column,
    _positive,
)

__all__ = ["MaxCapture"]


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
        comp = _as_costs(competitor_cost, "competitor_cost", c.shape[0])
        if rule == "nearest":
            problem = _nearest_problem(c, w, allowed, int(k), fixed_best, comp)
            return cls(w, k=int(k), allowed=allowed, rule=rule, coverage=problem, huff=None)
        if rule != "huff":
            msg = f"rule: expected 'nearest' or 'huff', got {rule!r}"
            raise InputError(msg)
        b = _positive(beta, "beta")
        floor = _positive(cost_floor, "cost_floor")
        if floor <= 0:
            msg = "cost_floor: must be > 0 for the Huff rule"
            raise InputError(msg)
        u = _utility(c, attractiveness, "attractiveness", beta=b, floor=floor)
        base = np.zeros(c.shape[0])
        if fixed_csr is not None:
            base = _utility_sum(fixed_csr, fixed_attractiveness, "fixed_attractiveness",
                                beta=b, floor=floor)
        rival = _utility_sum(comp, competitor_attractiveness, "competitor_attractiveness",
                             beta=b, floor=floor)
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


def _nearest_problem(
    cost: sp.csr_array, weights: np.ndarray, allowed: np.ndarray, k: int,
    fixed_best: np.ndarray, competitor: sp.csr_array,
) -> heur.MinCostProblem:
    """The nearest-facility rule as a min-cost (coverage) problem."""
    n_rows = cost.shape[0]
    comp_best = np.full(n_rows, np.inf)
    np.minimum.at(comp_best, np.repeat(np.arange(n_rows), np.diff(competitor.indptr)),
                  competitor.data)
    # Two half-weight rows per point: "a strictly nearer brand site is
    # open" and "a site at least as near is open"; a tie then earns half.
    strict = fixed_best < comp_best
    tie = fixed_best <= comp_best
    rows_a = _keep_below(cost, comp_best, strict=True)
    rows_b = _keep_below(cost, comp_best, strict=False)
    cover = sp.csr_array(sp.vstack([rows_a, rows_b], format="csr"))
    cover.data = np.zeros_like(cover.data)
    done = np.r_[strict, tie]
    cover = _keep_below(cover, np.where(done, -1.0, np.inf), strict=False)
    return heur.MinCostProblem(cover, np.where(done, 0.0, 1.0), np.r_[weights, weights] / 2,
                               allowed, k)


def _utility(
    cost: sp.csr_array, attract: ArrayLike | None, name: str, *, beta: float, floor: float
) -> sp.csr_array:
    """Huff utility of each stored pair: ``attractiveness * max(cost, floor) ** -beta``."""
    a = np.ones(cost.shape[1]) if attract is None else _as_vector(
        attract, name, cost.shape[1], "site")
    out = cost.copy()
    out.data = a[cost.indices] * np.maximum(cost.data, floor) ** -beta
    return out


def _utility_sum(
    cost: sp.csr_array, attract: ArrayLike | None, name: str, *, beta: float, floor: float
) -> np.ndarray:
    """Each demand point's total Huff utility over these sites."""
    return np.asarray(_utility(cost, attract, name, beta=beta, floor=floor).sum(axis=1)).ravel()
