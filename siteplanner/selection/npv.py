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
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.spatial import cKDTree

from siteplanner._errors import InputError

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
                 loss: np.ndarray) -> None:
        self.value, self.capex, self.budget, self.k = value, capex, budget, k
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
                    loss: ArrayLike | None = None, exclude: ArrayLike | None = None) -> MaxNPV:
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
        return cls(v, c, budget=b, k=int(k), allowed=allowed, conflicts=conf, pairs=pr, loss=lo)

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
        ``runtime_``, ``status_`` and ``method_``."""
        if method not in ("exact", "heuristic"):
            msg = f"method: expected 'exact' or 'heuristic', got {method!r}"
            raise InputError(msg)
        start = time.perf_counter()
        deadline = None if time_limit is None else start + float(time_limit)
        if not self.allowed.any():
            sel, bound, status = np.array([], dtype=np.int64), 0.0, "optimal"
        elif method == "exact":
            sel, bound, status = self._exact(deadline, rel_gap)
        else:
            sel = self._heuristic(deadline)
            bound, status = self._lp_bound(), "heuristic"
        self.selected_ = np.sort(sel)
        self.objective_ = self.evaluate(sel)
        self.bound_ = max(float(bound), self.objective_)
        self.gap_ = ((self.bound_ - self.objective_) / max(abs(self.objective_), 1e-12)
                     if self.objective_ != 0 or self.bound_ != 0 else 0.0)
        self.runtime_ = time.perf_counter() - start
        self.status_, self.method_ = status, method
        log.info("MaxNPV: %s, %d sites, NPV %.6g, bound %.6g, gap %.3g, %.2fs", method,
                 len(sel), self.objective_, self.bound_, self.gap_, self.runtime_)
        return self

    def _free(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Allowed candidates, and the conflict and interaction pairs among them (local indices)."""
        idx = np.flatnonzero(self.allowed)
        local = np.full(len(self.value), -1)
        local[idx] = np.arange(len(idx))

        def among(p: np.ndarray) -> np.ndarray:
            lp = local[p] if len(p) else np.empty((0, 2), dtype=int)
            return lp[(lp >= 0).all(axis=1)] if len(lp) else lp

        keep = (local[self.pairs] >= 0).all(axis=1) if len(self.pairs) else np.zeros(0, dtype=bool)
        self._loss_free = self.loss[keep]
        return idx, among(self.conflicts), among(self.pairs)

    def _rows(self, n: int, conf: np.ndarray, inter: np.ndarray,
              with_w: bool) -> tuple[sp.csr_array, np.ndarray, np.ndarray, int]:
        """Constraint rows (budget, k, conflicts, Glover's rows) over [x, w]; also the w count."""
        idx = np.flatnonzero(self.allowed)
        owners = np.unique(inter[:, 0]) if with_w and len(inter) else np.empty(0, dtype=int)
        m = len(owners)
        blocks = [sp.csr_array(np.r_[self.capex[idx], np.zeros(m)][None, :]),
                  sp.csr_array(np.r_[np.ones(n), np.zeros(m)][None, :])]
        lo, hi = [-np.inf, -np.inf], [self.budget, float(self.k)]
        if len(conf):
            r = np.repeat(np.arange(len(conf)), 2)
            blocks.append(sp.csr_array((np.ones(2 * len(conf)), (r, conf.ravel())),
                                       shape=(len(conf), n + m)))
            lo += [-np.inf] * len(conf)
            hi += [1.0] * len(conf)
        if m:
            row_of = np.full(n, -1)
            row_of[owners] = np.arange(m)
            c = self._loss_free
            big = _top_sums(inter[:, 0], c, n, self.k - 1)[owners]
            # sum_j c_ij x_j + U_i x_i - w_i <= U_i
            rows = np.r_[row_of[inter[:, 0]], np.arange(m), np.arange(m)]
            cols = np.r_[inter[:, 1], owners, n + np.arange(m)]
            data = np.r_[c, big, -np.ones(m)]
            blocks.append(sp.csr_array((data, (rows, cols)), shape=(m, n + m)))
            lo += [-np.inf] * m
            hi += list(big)
        return sp.csr_array(sp.vstack(blocks)), np.array(lo), np.array(hi), m

    def _exact(self, deadline: float | None, rel_gap: float) -> tuple[np.ndarray, float, str]:
        idx, conf, inter = self._free()
        n = len(idx)
        a, lo, hi, m = self._rows(n, conf, inter, with_w=True)
        c = -np.r_[self.value[idx], -np.ones(m)]
        options: dict[str, float | bool] = {"mip_rel_gap": rel_gap, "disp": False}
        if deadline is not None:
            options["time_limit"] = max(deadline - time.perf_counter(), 0.1)
        res = milp(c, constraints=LinearConstraint(a, lo, hi),
                   integrality=np.r_[np.ones(n), np.zeros(m)],
                   bounds=Bounds(0, np.r_[np.ones(n), np.full(m, np.inf)]), options=options)
        if res.x is None:  # no feasible point within the time: the heuristic's set
            return self._heuristic(None), self._lp_bound(), "time_limit"
        chosen = idx[np.flatnonzero(res.x[:n] > 0.5)]
        dual = getattr(res, "mip_dual_bound", None)
        bound = -float(dual if dual is not None and np.isfinite(dual) else res.fun)
        if res.status == 0:
            return chosen, bound, "optimal"
        incumbent = self._heuristic(None)  # stopped early: keep the better of the two sets
        if self.evaluate(incumbent) > self.evaluate(chosen):
            chosen = incumbent
        return chosen, min(bound, self._lp_bound()), "time_limit"

    def _lp_bound(self) -> float:
        """The LP relaxation's optimum (budget, k, conflicts; interactions relaxed away)."""
        idx, conf, inter = self._free()
        a, lo, hi, _ = self._rows(len(idx), conf, inter, with_w=False)
        res = linprog(-self.value[idx], A_ub=a, b_ub=hi, bounds=(0, 1), method="highs")
        return float(-res.fun) if res.status == 0 else float(self.value[idx].clip(0).sum())

    def _heuristic(self, deadline: float | None) -> np.ndarray:
        best = max((self._greedy(ratio) for ratio in (False, True)), key=self.evaluate)
        return self._improve(best, deadline)

    def _gain(self, sel: np.ndarray) -> np.ndarray:
        """Each candidate's NPV gain if added to ``sel``."""
        lost = (np.asarray(self._inter[:, sel].sum(axis=1)).ravel() if sel.size
                else np.zeros(len(self.value)))
        return self.value - lost

    def _addable(self, sel: np.ndarray, spent: float) -> np.ndarray:
        ok = self.allowed & (self.capex <= self.budget - spent + 1e-9)
        ok[sel] = False
        if sel.size:
            ok &= np.asarray(self._conf[:, sel].sum(axis=1)).ravel() == 0
        return ok

    def _greedy(self, ratio: bool) -> np.ndarray:
        sel = np.array([], dtype=np.int64)
        while sel.size < self.k:
            ok = self._addable(sel, float(self.capex[sel].sum()))
            gain = np.where(ok, self._gain(sel), -np.inf)
            score = np.where(gain > 0, gain / np.maximum(self.capex, 1e-9), -np.inf) if ratio else gain
            i = int(np.argmax(score))
            if not np.isfinite(score[i]) or gain[i] <= 0:
                break
            sel = np.r_[sel, i]
        return sel

    def _improve(self, sel: np.ndarray, deadline: float | None) -> np.ndarray:
        """Best-improvement add / drop / swap moves until none gains or the deadline passes."""
        value = self.evaluate(sel)
        while deadline is None or time.perf_counter() < deadline:
            gain = np.where(self._addable(sel, float(self.capex[sel].sum())), self._gain(sel),
                            -np.inf)
            moves = [np.r_[sel, int(np.argmax(gain))]] if gain.max() > 0 else []
            moves += [np.delete(sel, t) for t in range(sel.size)]
            moves += self._swaps(sel)
            cand = [(self.evaluate(m), m) for m in moves if self.feasible(m)]
            if not cand:
                break
            v, m = max(cand, key=lambda vm: vm[0])
            if v <= value + 1e-9 * max(abs(value), 1.0):
                break
            sel, value = np.sort(m), v
        return sel

    def _swaps(self, sel: np.ndarray) -> list[np.ndarray]:
        """For each chosen site, the swap with the best free candidate that fits without it."""
        out = []
        for t in range(sel.size):
            rest = np.delete(sel, t)
            ok = self._addable(rest, float(self.capex[rest].sum()))
            ok[sel[t]] = False
            if ok.any():
                gain = np.where(ok, self._gain(rest), -np.inf)
                out.append(np.r_[rest, int(np.argmax(gain))])
        return out


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
