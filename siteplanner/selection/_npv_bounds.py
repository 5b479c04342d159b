"""Upper bounds on the best total NPV of :class:`~siteplanner.selection.npv.MaxNPV`.

Every bound here is valid for the pairwise model (standalone NPV minus the
pairwise cannibalisation losses, all ``>= 0``); ``MaxNPV`` reports the
smallest one and its name.

``knapsack_lp``
    The LP relaxation of budget, ``k`` and the spacing conflicts with the
    standalone NPVs: losses only lower a set's NPV, so dropping them bounds it
    (a fractional knapsack with side constraints).
``huff_cover_lp``
    When the Huff market behind the losses is known (each site's gain in
    brand demand per demand point, and the rivals' share there, which no set
    can exceed), the LP

        max  sum_p z_p - sum_i cost_i x_i
        s.t. z_p <= cap_p,  z_p <= sum_i gain_pi x_i,  budget, k, conflicts,
             0 <= x <= 1,

    with ``cost_i = sum_p gain_pi - NPV_i`` (capex and discounted opex). It
    bounds the pairwise model because the pairwise (second-order
    inclusion-exclusion) estimate of a set's gain never exceeds the joint
    Huff gain: the gain ``h(U) = R U / (T (T + U))`` at a point has
    ``h''' >= 0``, so ``D(a, u) = h(a) + h(u) - h(a + u)`` is subadditive in
    ``a`` and, adding sites one at a time, the pairwise losses are at least
    the true ones (the Bonferroni inequalities for such functions). The joint
    gain in turn is at most ``min(sum_i gain_pi, cap_p)`` at every point.
    This is what makes the bound tight where sites crowd one market.
``huff_cover_lagrangian``
    Where the cover LP is too large: its Lagrangian dual over the cover rows,
    by subgradient steps (:func:`huff_cover_lagrangian`).
``milp_dual``
    HiGHS's dual bound when the exact MILP stops at its time limit.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

__all__ = ["COVER_LP_MAX_NNZ", "bounds", "huff_cover_lagrangian", "huff_cover_lp", "knapsack_lp",
           "side_rows"]

log = logging.getLogger(__name__)

#: Above this many (demand point, candidate) gains the cover LP is skipped:
#: HiGHS needs tens of seconds per million nonzeros on the shared 2-core machine.
COVER_LP_MAX_NNZ = 3_000_000


class MaxNPV(Protocol):
    """What the bounds read of :class:`siteplanner.selection.npv.MaxNPV`."""

    value: np.ndarray
    capex: np.ndarray
    budget: float
    k: int
    k_fit: int
    allowed: np.ndarray
    conflicts: np.ndarray
    market: tuple[sp.csr_array, np.ndarray] | None


def side_rows(m: MaxNPV, idx: np.ndarray, extra: int) -> tuple[sp.csr_array, np.ndarray]:
    """Budget, k and conflict rows over the candidates ``idx`` (plus ``extra`` zero columns).

    The count row uses ``m.k_fit``: ``k``, or fewer when fewer of the cheapest
    sites fit the budget (a valid cut that tightens the relaxations).
    """
    n = len(idx)
    local = np.full(len(m.value), -1)
    local[idx] = np.arange(n)
    conf = local[m.conflicts] if len(m.conflicts) else np.empty((0, 2), dtype=int)
    conf = conf[(conf >= 0).all(axis=1)] if len(conf) else conf
    r = np.repeat(np.arange(len(conf)), 2)
    a = sp.vstack([sp.csr_array(np.r_[m.capex[idx], np.zeros(extra)][None, :]),
                   sp.csr_array(np.r_[np.ones(n), np.zeros(extra)][None, :]),
                   sp.csr_array((np.ones(2 * len(conf)), (r, conf.ravel())),
                                shape=(len(conf), n + extra))])
    hi = np.r_[m.budget, float(m.k_fit), np.ones(len(conf))]
    return sp.csr_array(a), hi


def knapsack_lp(m: MaxNPV) -> float:
    """The LP relaxation with the standalone NPVs (cannibalisation dropped)."""
    idx = np.flatnonzero(m.allowed)
    a, hi = side_rows(m, idx, 0)
    res = linprog(-m.value[idx], A_ub=a, b_ub=hi, bounds=(0, 1), method="highs")
    return float(-res.fun) if res.status == 0 else float(m.value[idx].clip(0).sum())


def _allowed_market(m: MaxNPV, gain: sp.csr_array, cap: np.ndarray
                    ) -> tuple[np.ndarray, sp.csr_array, np.ndarray, np.ndarray]:
    """Allowed candidates; their gains and caps at the demand points they reach; their costs."""
    idx = np.flatnonzero(m.allowed)
    g = sp.csr_array(sp.csc_array(gain)[:, idx])
    rows = np.flatnonzero(np.diff(g.indptr) > 0)
    g = sp.csr_array(g[rows])
    return idx, g, cap[rows], np.asarray(g.sum(axis=0)).ravel() - m.value[idx]


def huff_cover_lp(m: MaxNPV) -> float | str | None:
    """The Huff cover LP (module docstring); ``None`` without a market, why when skipped."""
    if m.market is None:
        return None
    idx, g, cap, cost = _allowed_market(m, *m.market)
    if g.nnz > COVER_LP_MAX_NNZ:
        log.info("huff_cover_lp skipped: %d gains > %d", g.nnz, COVER_LP_MAX_NNZ)
        return f"{g.nnz} (demand point, site) gains > {COVER_LP_MAX_NNZ}: too large an LP"
    n, p = len(idx), g.shape[0]
    side, side_hi = side_rows(m, idx, p)
    # z_p - sum_i gain_pi x_i <= 0
    cover = sp.hstack([-g, sp.eye_array(p, format="csr")])
    res = linprog(np.r_[cost, -np.ones(p)], A_ub=sp.vstack([side, cover]).tocsr(),
                  b_ub=np.r_[side_hi, np.zeros(p)],
                  bounds=np.c_[np.zeros(n + p), np.r_[np.ones(n), cap]], method="highs")
    return float(-res.fun) if res.status == 0 else f"HiGHS status {res.status}: {res.message}"


def huff_cover_lagrangian(m: MaxNPV, incumbent: float, *, iterations: int = 60) -> float | None:
    """The cover LP's Lagrangian dual, by subgradient steps; ``None`` without a market.

    Pricing the rows ``z_p <= sum_i gain_pi x_i`` at ``theta_p`` in [0, 1]
    (and dropping the spacing conflicts) leaves, for every ``theta``, the
    valid bound

        sum_p (1 - theta_p) cap_p + max { sum_i v_i(theta) x_i : budget, k, 0 <= x <= 1 }

    with ``v_i(theta) = sum_p theta_p gain_pi - cost_i`` (``theta = 1`` is the
    knapsack bound without conflicts). Polyak steps towards ``incumbent``
    (Polyak 1969); the smallest value met is returned. Each step is one sparse
    product and a two-row LP, so it runs where the cover LP is too large.
    """
    if m.market is None:
        return None
    idx, g, cp, cost = _allowed_market(m, *m.market)
    gt = sp.csr_array(g.T)
    capex = m.capex[idx]
    theta = np.ones(g.shape[0])
    best, scale = np.inf, 1.0
    for _ in range(iterations):
        value, x = _knapsack_dual(gt @ theta - cost, capex, m.budget, m.k_fit)
        value += float((1 - theta) @ cp)
        if value < best:
            best = value
        else:
            scale *= 0.8
        sub = g @ x - cp  # d L / d theta_p at the inner optimum
        sub[((theta <= 0) & (sub > 0)) | ((theta >= 1) & (sub < 0))] = 0.0
        norm = float(sub @ sub)
        if norm <= 0 or value - incumbent <= 1e-6 * max(abs(incumbent), 1.0):
            break
        theta = np.clip(theta - scale * (value - incumbent) / norm * sub, 0.0, 1.0)
    return best


def _knapsack_dual(v: np.ndarray, capex: np.ndarray, budget: float, k: int
                   ) -> tuple[float, np.ndarray]:
    """An upper bound on ``max v x : capex x <= budget, sum x <= k, 0 <= x <= 1``, and its x.

    The LP dual ``min mu B + nu k + sum_i max(0, v_i - mu capex_i - nu)``:
    for a fixed ``mu`` the best ``nu`` is the k-th largest reduced value, and
    the rest is convex in ``mu`` (golden-section search). Any ``(mu, nu)``
    gives a valid bound, so the search need not be exact.
    """
    def at(mu: float) -> tuple[float, np.ndarray]:
        r = v - mu * capex
        nu = max(float(np.partition(r, len(r) - k)[len(r) - k]), 0.0) if 0 < k < len(r) else 0.0
        if k >= len(r):
            nu = 0.0
        return mu * budget + nu * k + float(np.maximum(r - nu, 0.0).sum()), r > nu

    lo, hi = 0.0, float(max(np.max(v / np.maximum(capex, 1e-12)), 0.0))
    phi = (np.sqrt(5.0) - 1) / 2
    best = min((at(lo), at(hi)), key=lambda vx: vx[0])
    for _ in range(60):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        fa, fb = at(a), at(b)
        best = min((best, fa, fb), key=lambda vx: vx[0])
        lo, hi = (lo, b) if fa[0] <= fb[0] else (a, hi)
    return best[0], best[1].astype(float)


def bounds(m: MaxNPV, incumbent: float) -> tuple[dict[str, float], dict[str, str]]:
    """Every bound that applies, by name; and the bounds skipped, with why.

    ``incumbent`` is the best NPV found (the target of the Lagrangian steps).
    """
    out, skipped = {"knapsack_lp": knapsack_lp(m)}, {}
    cover = huff_cover_lp(m)
    if isinstance(cover, str):
        skipped["huff_cover_lp"] = cover
        dual = huff_cover_lagrangian(m, incumbent)
        if dual is not None:
            out["huff_cover_lagrangian"] = dual
    elif cover is not None:
        out["huff_cover_lp"] = cover
    return out, skipped
