"""The most valuable set of new sites within a capex budget (``--select npv --budget``).

Maximise the total NPV of the chosen sites, where two sites chosen together
lose the NPV their catchments share (the Huff cannibalisation between them,
counted pairwise), subject to

- total capex <= budget, and at most ``k`` sites;
- no two chosen sites closer than the spacing (pairwise conflicts).

As a MILP, with the pairwise term ``sum_(i<j) c_ij x_i x_j`` linearised
compactly (Glover 1975: one variable ``w_i`` per site instead of one per
pair)::

    max  sum_i v_i x_i - sum_i w_i
    s.t. sum_i capex_i x_i <= B,  sum_i x_i <= k
         x_i + x_j <= 1                            for (i, j) closer than the spacing
         w_i >= sum_(j>i) c_ij x_j - U_i (1 - x_i)  for every site with partners
         x binary, w >= 0

with ``c_ij >= 0``, so ``w_i = x_i sum_(j>i) c_ij x_j`` at the optimum;
``U_i`` is the sum of site i's ``k - 1`` largest ``c_ij`` (no more partners
can be chosen with it), which keeps the relaxation tight. ``exact`` solves it
with HiGHS (``scipy.optimize.milp``); ``heuristic`` is a budgeted greedy
(best of value order and value-per-capex order, Khuller et al. 1999) followed
by add, drop and swap moves, with the LP relaxation's optimum as the bound.
Built like the other models: ``from_arrays`` / ``from_geodataframe``,
``solve()`` returns ``self``, results end in ``_``.
"""

from __future__ import annotations

import logging
import time
from typing import Literal, Self

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

from siteplanner._errors import InputError
from siteplanner.selection._npv_bounds import bounds, side_rows

__all__ = ["MaxNPV"]

log = logging.getLogger(__name__)


class MaxNPV:
    """Budgeted NPV maximisation with spacing conflicts and pairwise cannibalisation.

    ``objective_`` is the model's total NPV of ``selected_``; ``bound_`` an
    upper bound on the optimum (HiGHS's dual bound, or the LP relaxation's
    value for the heuristic); ``gap_ = (bound_ - objective_) / |objective_|``.
    """

    def __init__(self, value: np.ndarray, capex: np.ndarray, *, budget: float, k: int,
                 allowed: np.ndarray, conflicts: np.ndarray, pairs: np.ndarray,
                 loss: np.ndarray,
                 market: tuple[sp.csr_array, np.ndarray] | None = None) -> None:
        self.value, self.capex, self.budget, self.k = value, capex, budget, k
        self.market = market
        # no more sites fit the budget than its cheapest allowed ones: a tighter k for the bounds
        cheap = np.cumsum(np.sort(capex[allowed]))
        self.k_fit = min(k, int(np.searchsorted(cheap, budget * (1 + 1e-9), side="right")))
        self.allowed, self.conflicts, self.pairs, self.loss = allowed, conflicts, pairs, loss
        n = len(value)
        self._inter = sp.csr_array((np.r_[loss, loss], (np.r_[pairs[:, 0], pairs[:, 1]],
                                                        np.r_[pairs[:, 1], pairs[:, 0]])),
                                   shape=(n, n))
        self._conf = sp.csr_array((np.ones(2 * len(conflicts), dtype=bool),
                                   (np.r_[conflicts[:, 0], conflicts[:, 1]],
                                    np.r_[conflicts[:, 1], conflicts[:, 0]])), shape=(n, n))

    @classmethod
    def from_arrays(cls, value: ArrayLike, capex: ArrayLike, *, budget: float, k: int,
                    conflicts: ArrayLike | None = None, pairs: ArrayLike | None = None,
                    loss: ArrayLike | None = None, exclude: ArrayLike | None = None,
                    market: tuple[ArrayLike, ArrayLike] | None = None) -> MaxNPV:
        """Build from per-candidate NPV and capex, conflicting pairs, and pairwise NPV losses.

        Parameters
        ----------
        value, capex
            Standalone NPV and capex per candidate (money).
        budget
            Total capex allowed (money, > 0).
        k
            Most sites to open.
        conflicts
            (m, 2) candidate positions that may not both be chosen.
        pairs, loss
            (p, 2) candidate positions and the NPV (>= 0) they lose together.
        exclude
            Candidate positions (or a boolean mask) that may not be chosen.
        market
            Optional ``(gain, cap)`` from
            :func:`~siteplanner.selection._npv_pairs.huff_market`, in money:
            each site's NPV gain per demand point (demand points x candidates)
            and the most any set can gain there. Given, the tighter Huff cover
            bound applies (:mod:`~siteplanner.selection._npv_bounds`); the
            losses must then come from the same market.
        """
        v, c = np.asarray(value, dtype=float), np.asarray(capex, dtype=float)
        if v.ndim != 1 or c.shape != v.shape or not np.isfinite(v).all() or not np.isfinite(c).all():
            msg = "value and capex: need two finite 1-D arrays of the same length"
            raise InputError(msg)
        if (c < 0).any():
            msg = f"capex: {int((c < 0).sum())} candidates have a negative capex; capex must be >= 0"
            raise InputError(msg)
        b = _budget(budget)
        if isinstance(k, bool) or int(k) != k or k < 1:
            msg = f"k = {k!r}; use a whole number of sites >= 1"
            raise InputError(msg)
        conf = _pairs(conflicts, len(v), "conflicts")
        pr = _pairs(pairs, len(v), "pairs")
        lo = np.zeros(len(pr)) if loss is None else np.asarray(loss, dtype=float)
        if lo.shape != (len(pr),) or not np.isfinite(lo).all() or (lo < 0).any():
            msg = "loss: need one finite value >= 0 per pair"
            raise InputError(msg)
        allowed = np.ones(len(v), dtype=bool)
        if exclude is not None:
            ex = np.asarray(exclude)
            allowed[ex if ex.dtype != bool else np.flatnonzero(ex)] = False
        # a site with no positive NPV of its own, or dearer than the budget, never helps
        allowed &= (v > 0) & (c <= b)
        mk = None
        if market is not None:
            gain, cap = sp.csr_array(market[0], dtype=float), np.asarray(market[1], dtype=float)
            if gain.shape[1] != len(v) or cap.shape != (gain.shape[0],):
                msg = (f"market: gain must be (demand points x {len(v)} candidates) and cap one "
                       "value per demand point")
                raise InputError(msg)
            mk = (gain, cap)
        return cls(v, c, budget=b, k=int(k), allowed=allowed, conflicts=conf, pairs=pr, loss=lo,
                   market=mk)

    @classmethod
    def from_geodataframe(cls, gdf: gpd.GeoDataFrame, *, value_col: str, capex_col: str,
                          budget: float, k: int, min_spacing: float = 0.0,
                          pairs: ArrayLike | None = None, loss: ArrayLike | None = None,
                          exclude: ArrayLike | None = None) -> MaxNPV:
        """Build from candidate points; pairs closer than ``min_spacing`` (CRS units) conflict."""
        for col in (value_col, capex_col):
            if col not in gdf:
                msg = f"candidates: no column {col!r}; give per-site NPV and capex columns"
                raise InputError(msg)
        xy = np.column_stack([gdf.geometry.x, gdf.geometry.y])
        conf = (cKDTree(xy).query_pairs(min_spacing * (1 - 1e-12), output_type="ndarray")
                if min_spacing > 0 and len(gdf) > 1 else np.empty((0, 2), dtype=int))
        return cls.from_arrays(gdf[value_col].to_numpy(), gdf[capex_col].to_numpy(),
                               budget=budget, k=k, conflicts=conf, pairs=pairs, loss=loss,
                               exclude=exclude)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, selected: ArrayLike) -> float:
        """The model's total NPV of a set of candidate positions."""
        sel = np.unique(np.asarray(selected, dtype=np.int64))
        if sel.size == 0:
            return 0.0
        sub = self._inter[sel][:, sel]
        return float(self.value[sel].sum() - sub.sum() / 2)

    def feasible(self, selected: ArrayLike) -> bool:
        """Within the budget and k, allowed, and free of conflicts."""
        sel = np.unique(np.asarray(selected, dtype=np.int64))
        return bool(sel.size <= self.k and self.capex[sel].sum() <= self.budget * (1 + 1e-9)
                    and self.allowed[sel].all() and self._conf[sel][:, sel].nnz == 0)

    # ------------------------------------------------------------------ solve

    def solve(self, method: Literal["exact", "heuristic"] = "exact", *,
              time_limit: float | None = None, random_state: int = 0,
              rel_gap: float = 1e-6) -> Self:
        """Choose the sites; sets ``selected_``, ``objective_``, ``bound_``, ``gap_``,
        ``bound_method_``, ``bounds_``, ``bounds_skipped_``, ``runtime_`` (seconds; of which
        ``search_s_`` finding the set and ``bound_s_`` the bounds), ``status_`` and ``method_``.

        ``bound_`` is the smallest of the valid bounds in ``bounds_`` (see
        :mod:`~siteplanner.selection._npv_bounds`), named by ``bound_method_``;
        ``random_state`` is accepted for the common model interface (the
        search is deterministic).
        """
        if method not in ("exact", "heuristic"):
            msg = f"method: expected 'exact' or 'heuristic', got {method!r}"
            raise InputError(msg)
        start = time.perf_counter()
        deadline = None if time_limit is None else start + float(time_limit)
        found: dict[str, float]
        self.bounds_skipped_: dict[str, str] = {}
        searched = start
        if not self.allowed.any():
            sel, status, found = np.array([], dtype=np.int64), "optimal", {"no_eligible_site": 0.0}
        elif method == "exact":
            sel, status, dual = self._exact(deadline, rel_gap)
            searched = time.perf_counter()
            if status == "optimal":
                found = {"milp_optimal": dual}
            else:
                found, self.bounds_skipped_ = bounds(self, self.evaluate(sel))
            if status != "optimal" and np.isfinite(dual):
                found["milp_dual"] = dual
        else:
            sel, status = self._heuristic(deadline), "heuristic"
            searched = time.perf_counter()
            found, self.bounds_skipped_ = bounds(self, self.evaluate(sel))
        self.selected_ = np.sort(sel)
        self.objective_ = self.evaluate(sel)
        self.bound_method_ = min(found, key=lambda name: found[name])
        self.bounds_ = {name: round(v, 2) for name, v in found.items()}
        self.bound_ = max(float(found[self.bound_method_]), self.objective_)
        self.gap_ = ((self.bound_ - self.objective_) / max(abs(self.objective_), 1e-12)
                     if self.objective_ != 0 or self.bound_ != 0 else 0.0)
        self.runtime_ = time.perf_counter() - start
        self.search_s_, self.bound_s_ = searched - start, self.runtime_ - (searched - start)
        self.status_, self.method_ = status, method
        log.info("MaxNPV: %s, %d sites, NPV %.6g, bound %.6g (%s), gap %.3g, %.2fs", method,
                 len(sel), self.objective_, self.bound_, self.bound_method_, self.gap_,
                 self.runtime_)
        return self

    # ------------------------------------------------------------------ exact

    def _exact(self, deadline: float | None, rel_gap: float) -> tuple[np.ndarray, str, float]:
        """HiGHS on the compact MILP (module docstring).

        The Huff cover rows of :mod:`~siteplanner.selection._npv_bounds` are
        not added: at 1k candidates they slowed HiGHS's search more than they
        tightened it (dual bound 17.7 M against 16.1 M without them after
        60 s); the cover LP is reported as a bound of its own.
        """
        idx = np.flatnonzero(self.allowed)
        n = len(idx)
        local = np.full(len(self.value), -1)
        local[idx] = np.arange(n)
        lp = local[self.pairs] if len(self.pairs) else np.empty((0, 2), dtype=int)
        keep = (lp >= 0).all(axis=1) if len(lp) else np.zeros(0, dtype=bool)
        inter, c = lp[keep], self.loss[keep]
        owners = np.unique(inter[:, 0]) if len(inter) else np.empty(0, dtype=int)
        m = len(owners)
        width = n + m
        side, hi = side_rows(self, idx, m)
        blocks, lo = [side], [np.full(len(hi), -np.inf)]
        his = [hi]
        if m:
            row_of = np.full(n, -1)
            row_of[owners] = np.arange(m)
            big = _top_sums(inter[:, 0], c, n, self.k_fit - 1)[owners]
            # sum_j c_ij x_j + U_i x_i - w_i <= U_i
            blocks.append(sp.csr_array(
                (np.r_[c, big, -np.ones(m)],
                 (np.r_[row_of[inter[:, 0]], np.arange(m), np.arange(m)],
                  np.r_[inter[:, 1], owners, n + np.arange(m)])), shape=(m, width)))
            lo.append(np.full(m, -np.inf))
            his.append(big)
        a = sp.csr_array(sp.vstack(blocks))
        ub = np.r_[np.ones(n), np.full(m, np.inf)]
        options: dict[str, float | bool] = {"mip_rel_gap": rel_gap, "disp": False}
        if deadline is not None:
            options["time_limit"] = max(deadline - time.perf_counter(), 0.1)
        res = milp(-np.r_[self.value[idx], -np.ones(m)],
                   constraints=LinearConstraint(a, np.concatenate(lo), np.concatenate(his)),
                   integrality=np.r_[np.ones(n), np.zeros(m)],
                   bounds=Bounds(0, ub), options=options)
        dual = getattr(res, "mip_dual_bound", None)
        bound = -float(dual) if dual is not None and np.isfinite(dual) else np.inf
        chosen = (idx[np.flatnonzero(res.x[:n] > 0.5)] if res.x is not None
                  else np.array([], dtype=np.int64))
        if res.status == 0 and res.x is not None:
            return chosen, "optimal", bound if np.isfinite(bound) else -float(res.fun)
        incumbent = self._heuristic(None)  # stopped early: keep the better of the two sets
        if res.x is None or self.evaluate(incumbent) > self.evaluate(chosen):
            chosen = incumbent
        return chosen, "time_limit", bound

    # ------------------------------------------------------------------ heuristic

    def _heuristic(self, deadline: float | None) -> np.ndarray:
        best = max((self._greedy(ratio) for ratio in (False, True)), key=self.evaluate)
        return self._improve(best, deadline)

    def _state(self, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate: the NPV it loses to ``sel``, and how many of ``sel`` conflict with it."""
        ind = np.zeros(len(self.value))
        ind[sel] = 1.0
        return self._inter @ ind, self._conf.astype(float) @ ind

    def _greedy(self, ratio: bool) -> np.ndarray:
        """Add the best marginal NPV (or NPV per capex) that fits, until none gains."""
        sel: list[int] = []
        lost, blocked = self._state(np.array([], dtype=np.int64))
        spent = 0.0
        while len(sel) < self.k:
            ok = self.allowed & (self.capex <= self.budget - spent + 1e-9) & (blocked == 0)
            ok[sel] = False
            gain = np.where(ok, self.value - lost, -np.inf)
            score = np.where(gain > 0, gain / np.maximum(self.capex, 1e-9), -np.inf) if ratio else gain
            i = int(np.argmax(score))
            if not np.isfinite(score[i]) or gain[i] <= 0:
                break
            sel.append(i)
            spent += self.capex[i]
            _add_row(lost, self._inter, i, 1.0)
            _add_row(blocked, self._conf, i, 1.0)
        return np.array(sel, dtype=np.int64)

    def _improve(self, sel: np.ndarray, deadline: float | None) -> np.ndarray:
        """Best-improvement add / drop / swap moves until none gains or the deadline passes.

        Each move is priced from two per-candidate vectors kept up to date
        (NPV lost to the chosen set, conflicts with it), so a pass costs
        O(k n) however many pairs interact.
        """
        chosen = list(map(int, sel))
        lost, blocked = self._state(sel)
        spent = float(self.capex[sel].sum())
        tol = 1e-9 * max(abs(self.evaluate(sel)), 1.0)
        while deadline is None or time.perf_counter() < deadline:
            free = self.allowed.copy()
            free[chosen] = False
            best, move = tol, (-1, -1)
            if len(chosen) < self.k:
                ok = free & (blocked == 0) & (self.capex <= self.budget - spent + 1e-9)
                d = np.where(ok, self.value - lost, -np.inf)
                j = int(np.argmax(d))
                best, move = (d[j], (-1, j)) if d[j] > best else (best, move)
            for s in chosen:
                own = self.value[s] - lost[s]
                best, move = (-own, (s, -1)) if -own > best else (best, move)
                lst, blk = lost.copy(), blocked.copy()
                _add_row(lst, self._inter, s, -1.0)
                _add_row(blk, self._conf, s, -1.0)
                ok = free & (blk == 0) & (self.capex <= self.budget - spent + self.capex[s] + 1e-9)
                d = np.where(ok, self.value - lst, -np.inf) - own
                j = int(np.argmax(d))
                best, move = (d[j], (s, j)) if d[j] > best else (best, move)
            if move == (-1, -1):
                break
            out, into = move
            if out >= 0:
                chosen.remove(out)
                spent -= self.capex[out]
                _add_row(lost, self._inter, out, -1.0)
                _add_row(blocked, self._conf, out, -1.0)
            if into >= 0:
                chosen.append(into)
                spent += self.capex[into]
                _add_row(lost, self._inter, into, 1.0)
                _add_row(blocked, self._conf, into, 1.0)
        return np.array(sorted(chosen), dtype=np.int64)


def _add_row(vec: np.ndarray, mat: sp.csr_array, i: int, sign: float) -> None:
    """``vec += sign * mat[i]`` for a CSR matrix, in place."""
    lo, hi = mat.indptr[i], mat.indptr[i + 1]
    vec[mat.indices[lo:hi]] += sign * mat.data[lo:hi]


def _top_sums(owner: np.ndarray, c: np.ndarray, n: int, top: int) -> np.ndarray:
    """Per site, the sum of its ``top`` largest values of ``c`` (grouped by ``owner``)."""
    out = np.zeros(n)
    if top <= 0 or len(c) == 0:
        return out
    order = np.lexsort((-c, owner))
    o, v = owner[order], c[order]
    start = np.r_[0, np.flatnonzero(np.diff(o)) + 1]
    pos = np.arange(len(o)) - np.repeat(start, np.diff(np.r_[start, len(o)]))
    keep = pos < top
    np.add.at(out, o[keep], v[keep])
    return out


def _budget(b: object) -> float:
    if isinstance(b, bool) or not isinstance(b, int | float) or not np.isfinite(b) or b <= 0:
        msg = f"budget = {b!r}; give the total capex allowed as a number > 0"
        raise InputError(msg)
    return float(b)


def _pairs(p: ArrayLike | None, n: int, name: str) -> np.ndarray:
    if p is None:
        return np.empty((0, 2), dtype=np.int64)
    arr = np.asarray(p, dtype=np.int64).reshape(-1, 2)
    if len(arr) and (arr.min() < 0 or arr.max() >= n or (arr[:, 0] == arr[:, 1]).any()):
        msg = f"{name}: pairs must be two different candidate positions in 0..{n - 1}"
        raise InputError(msg)
    return arr
