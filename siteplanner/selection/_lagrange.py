"""Lagrangian lower bound for the min-cost form, and the sets it suggests.

The min-cost form (see ``_heuristic``) as an integer programme: every row is
served by one open site (``x_ij <= y_j``, cost ``w_i c_ij``) or by its base
(cost ``w_i base_i``), and ``sum_j y_j = k``. Relaxing "served exactly once"
with a multiplier ``lambda_i = w_i v_i`` per row, ``0 <= v_i <= base_i``,
leaves a problem that splits by site:

    L(v) = sum_i w_i v_i + sum of the k smallest rho_j(v) over allowed sites,
    rho_j(v) = sum_i w_i * min(0, c_ij - v_i).

Every ``L(v)`` is a lower bound on the optimum (Cornuejols, Fisher &
Nemhauser 1977 for p-median; Galvao & ReVelle 1996 for max coverage, where
``c_ij = 0`` and ``base_i = 1``). Its maximum equals the LP relaxation's
value, which for these models is usually within a fraction of a percent of
the optimum: a far tighter bound than the submodular one, for a few passes
over the matrix. It is maximised by subgradient steps (Polyak's rule with the
best known solution as target, Held, Wolfe & Crowder 1974). The k sites
``Y(v)`` that attain ``L(v)`` near the maximum are good starting sets for
swaps (the Lagrangian heuristic, Beasley 1993).

Only entries with ``c_ij < v_i`` contribute to ``rho``; with the entries
sorted by (row, cost) they are a prefix of each row, so one pass costs the
number of such entries, which for p-median near the optimum is a few per row
rather than the whole matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from siteplanner.selection._heuristic import MinCostProblem, SortedEntries, deadline_passed

__all__ = ["LagrangianResult", "lagrangian_min_cost"]


@dataclass
class LagrangianResult:
    """Best lower bound found, and the relaxed site sets met near it."""

    lower: float
    iterations: int
    multipliers: np.ndarray
    sets: list[np.ndarray] = field(default_factory=list)


def lagrangian_min_cost(
    p: MinCostProblem,
    upper: float,
    *,
    deadline: float | None,
    max_iter: int = 300,
    patience: int = 15,
    rel_tol: float = 1e-6,
    keep: int = 3,
    start: np.ndarray | None = None,
    entries: SortedEntries | None = None,
    work: float = np.inf,
) -> LagrangianResult:
    """Subgradient ascent on ``L(v)``.

    Parameters
    ----------
    p
        The problem in min-cost form.
    upper
        Cost of the best known solution: the target of the Polyak step, and
        the stopping test (stop once the bound is within ``rel_tol`` of it).
    deadline
        ``time.perf_counter()`` value after which to stop.
    max_iter, patience
        Iteration cap; the step scale halves after ``patience`` iterations
        without a better bound, and the ascent stops when it falls below 1e-3.
    keep
        How many distinct relaxed site sets to return, best bound first.
    start
        Multipliers ``v`` (per unit weight, one per row) to start from, e.g.
        a previous result's ``multipliers``; default ``base``.
    entries
        ``p.cost`` as :class:`SortedEntries`, when the caller has it.
    work
        Stop once this many matrix entries have been touched in all: a cap
        that, unlike time, gives the same bound on any machine.
    """
    base = p.base.astype(np.float64)
    rel = _Relaxation(p, SortedEntries(p.cost) if entries is None else entries)
    v = rel.br.copy() if start is None else np.clip(start[rel.rows], 0.0, rel.br)  # per row of ``rows``
    best, best_v, theta, stall = -np.inf, v, 2.0, 0
    found: dict[bytes, tuple[float, np.ndarray]] = {}
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        bound, chosen, ci, local = rel.evaluate(v)
        work -= ci.size + rel.rows.size
        if not bound <= best + 1e-12 * abs(bound):
            best, best_v, stall = bound, v, 0
        else:
            stall += 1
            if stall >= patience:
                theta, stall = theta / 2.0, 0
        key = np.sort(chosen).tobytes()
        if key not in found or found[key][0] < bound:
            found[key] = (bound, np.sort(chosen))
        if upper - best <= rel_tol * max(abs(upper), 1.0) or theta < 1e-3:
            break
        if work <= 0 or deadline_passed(deadline):
            break
        moved = rel.step(v, chosen, ci, local, theta * max(upper - bound, 0.0))
        if moved is None:
            break
        v = moved
    ranked = sorted(found.values(), key=lambda t: -t[0])[:keep]
    multipliers = base.copy()
    multipliers[rel.rows] = best_v
    return LagrangianResult(best, it, multipliers, [s for _, s in ranked])


class _Relaxation:
    """``L(v)`` of one problem: the rows that can be served, and their fixed arrays."""

    def __init__(self, p: MinCostProblem, entries: SortedEntries) -> None:
        w = p.weights
        base = p.base.astype(np.float64)
        self.n_rows, self.n = p.cost.shape
        self.entries, self.k, self.blocked = entries, p.k, ~p.allowed
        has_entries = np.diff(p.cost.indptr) > 0
        self.rows = np.flatnonzero(has_entries & (w > 0))
        # Rows without entries (or weight) pay their base whatever is open.
        self.constant = float(w[~has_entries] @ base[~has_entries])
        self.wr, self.br = w[self.rows], base[self.rows]
        self.position = np.full(self.n_rows, -1, dtype=np.int64)
        self.position[self.rows] = np.arange(self.rows.size)

    def evaluate(self, v: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """``L(v)``, the ``k`` sites it opens, and the entries (column, local row) it read."""
        ri, ci, vi = self.entries.entries(self.rows, v)
        local = self.position[ri]
        rho = np.bincount(ci, weights=self.wr[local] * (vi - v[local]),
                          minlength=self.n).astype(float)
        rho[self.blocked] = np.inf
        k, n = self.k, self.n
        chosen = np.argpartition(rho, k - 1)[:k] if k < n else np.arange(n)
        bound = self.constant + float(self.wr @ v) + float(rho[chosen].sum())
        return bound, chosen, ci, local

    def step(self, v: np.ndarray, chosen: np.ndarray, ci: np.ndarray, local: np.ndarray,
             scale: float) -> np.ndarray | None:
        """The multipliers after a Polyak step of ``scale / |g|²``, or ``None`` at a maximum."""
        opened = np.zeros(self.n, dtype=bool)
        opened[chosen] = True
        served = np.bincount(local[opened[ci]], minlength=self.rows.size)
        g = 1.0 - served
        g[(v >= self.br) & (g > 0)] = 0.0  # v_i is capped at base_i
        norm = float(g @ g)
        if norm == 0.0:
            return None  # a zero subgradient: v maximises L
        step = scale / norm
        if step == 0.0:
            return None
        return np.clip(v + step * g / self.wr, 0.0, self.br)
