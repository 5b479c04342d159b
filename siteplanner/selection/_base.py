"""The solve driver shared by the location-allocation models.

:class:`_AllocationModel` holds ``solve()`` (checks the options, runs the
subclass's heuristic or exact solver, records ``selected_``, ``objective_``,
``bound_``, ``gap_``, ``runtime_`` and ``status_``). :class:`_MinCostModel`
is the base of the models whose objective maps to the min-cost form of
:mod:`._heuristic` (coverage and p-median), with the capacitated search and
MILP of :mod:`._capacitated` and :mod:`._milp`. :func:`_min_cost_search` is
the heuristic they share: greedy, a Lagrangian bound, then chains of
iterated swaps.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from siteplanner._errors import InputError
from siteplanner.selection import _capacitated as capacitated
from siteplanner.selection import _heuristic as heur
from siteplanner.selection import _milp
from siteplanner.selection._capacitated_bound import lagrangian_bound
from siteplanner.selection._inputs import _keep_below
from siteplanner.selection._lagrange import lagrangian_min_cost

__all__ = ["Method", "_AllocationModel", "_MinCostModel", "_min_cost_search", "_proven"]

logger = logging.getLogger(__name__)

Method = Literal["exact", "heuristic"]


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
        _check_options(method, time_limit)
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


def _check_options(method: str, time_limit: float | None) -> None:
    if method not in ("exact", "heuristic"):
        msg = f"method: expected 'exact' or 'heuristic', got {method!r}"
        raise InputError(msg)
    if time_limit is not None and not time_limit > 0:
        msg = f"time_limit: expected a positive number of seconds, got {time_limit!r}"
        raise InputError(msg)


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
                    lagrangian_bound(p, best.row_price, target=value,
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
