"""Huff market shares over walk times: probabilities, shares, impact of new sites, λ calibration.

A demand point ``i`` chooses branch ``j`` with probability

    P_ij = A_j * t_ij^-λ / Σ_k A_k * t_ik^-λ

over the branches it can reach (Huff 1963, 1964), where ``A_j`` is the
attractiveness and ``t_ij`` the walk time in minutes. Walk times come as a
dense array (``inf``/``nan`` = unreachable) or as the sparse matrix of
:meth:`siteplanner.network.WalkGraph.walk_minutes` (a stored entry, even an
explicit zero, is reachable; a missing entry is not). A demand point that
reaches no branch within the cutoff gets a row of zeros: it is *unserved* and
counts toward nobody's demand.

Examples
--------
>>> import numpy as np
>>> p = huff_probabilities(np.array([[2.0, 4.0]]), np.array([1.0, 1.0]), lam=2.0)
>>> p.round(2).tolist()
[[0.8, 0.2]]
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize_scalar

from siteplanner._errors import InputError

__all__ = [
    "DEFAULT_LAMBDA",
    "DEFAULT_MIN_MINUTES",
    "LAMBDA_MAX",
    "MarketImpact",
    "ROLES",
    "calibrate_lambda",
    "candidate_impact",
    "facility_demand",
    "huff_probabilities",
    "huff_shares",
    "market_impact",
]

log = logging.getLogger(__name__)

#: Distance-decay exponent for convenience trips on foot. Huff (1963) fitted
#: 2.72 (clothing) and 3.19 (furniture) on travel time; everyday services sit
#: lower, in the 1.5-2.5 range. 2 is the classic gravity exponent. Calibrate
#: it with :func:`calibrate_lambda` when branch volumes are known.
DEFAULT_LAMBDA = 2.0

#: Largest accepted λ: beyond 5 everyone goes to the nearest branch and the
#: model says nothing that a nearest-branch rule would not.
LAMBDA_MAX = 5.0

#: Walk times below this are raised to it, so a demand point on a branch's
#: doorstep does not get an infinite utility (t^-λ at t = 0).
DEFAULT_MIN_MINUTES = 1.0

#: Roles of facilities in :func:`market_impact` and :func:`candidate_impact`.
ROLES = ("own", "competitor", "new")

Minutes: TypeAlias = np.ndarray | sp.spmatrix | sp.sparray
Matrix: TypeAlias = np.ndarray | sp.csr_matrix


def huff_probabilities(
    minutes: Minutes,
    attractiveness: npt.ArrayLike,
    *,
    lam: float = DEFAULT_LAMBDA,
    min_minutes: float = DEFAULT_MIN_MINUTES,
) -> Matrix:
    """Probability that each demand point patronises each facility.

    Parameters
    ----------
    minutes
        Walk minutes, shape (n_demand, n_facilities), dense or sparse (see the
        module notes for what counts as unreachable).
    attractiveness
        Positive attractiveness per facility (floor area, tellers, services; raise
        it to a power first for Huff's α).
    lam
        Distance-decay exponent λ in (0, 5].
    min_minutes
        Floor on walk times.

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix
        Same kind as ``minutes``. Each row sums to 1 if the point reaches a
        facility, else it is all zeros.
    """
    utility = _utility(minutes, attractiveness, lam=lam, min_minutes=min_minutes)
    return _row_normalise(utility)


def facility_demand(probabilities: Matrix, demand_weights: npt.ArrayLike) -> np.ndarray:
    """Expected demand each facility captures: ``demand_weights @ probabilities``."""
    weights = _check_weights(demand_weights, probabilities.shape[0])
    return np.asarray(probabilities.T @ weights).ravel()


def huff_shares(
    probabilities: Matrix,
    demand_weights: npt.ArrayLike,
    owner_labels: Sequence[Any] | npt.ArrayLike,
) -> pd.DataFrame:
    """Captured demand and market share per owner (brand).

    Returns
    -------
    DataFrame
        Indexed by owner, sorted by ``demand`` descending: ``demand`` (expected
        weighted demand) and ``share`` of all captured demand (sums to 1).
        ``attrs["unserved_demand"]`` holds the demand that reaches no facility.
    """
    owners = np.asarray(owner_labels, dtype=object).ravel()
    if len(owners) != probabilities.shape[1]:
        msg = f"owner_labels: {len(owners)} labels for {probabilities.shape[1]} facilities"
        raise InputError(msg)
    weights = _check_weights(demand_weights, probabilities.shape[0])
    per_facility = facility_demand(probabilities, weights)
    demand = pd.Series(per_facility).groupby(owners, sort=True).sum()
    demand = demand.sort_values(ascending=False, kind="stable")
    captured = float(demand.sum())
    out = pd.DataFrame({"demand": demand, "share": demand / captured if captured else 0.0})
    out.index.name = "owner"
    out.attrs["unserved_demand"] = float(weights.sum() - captured)
    return out


@dataclass(frozen=True)
class MarketImpact:
    """What opening the new sites together does to the market.

    Attributes
    ----------
    sites
        Per new site: ``expected_demand`` it captures; where that demand was
        before: ``from_competitors``, ``cannibalized`` (from the brand's own
        branches) and ``from_unserved`` (reached no branch before);
        ``net_new_demand`` = expected_demand - cannibalized, the brand's gain.
    branches
        Per own branch: ``demand_before``, ``demand_after``, ``change``.
    own_demand_before
        The brand's captured demand before (own branches).
    own_demand_after
        The brand's captured demand after (own branches and new sites).
    """

    sites: pd.DataFrame
    branches: pd.DataFrame
    own_demand_before: float
    own_demand_after: float


def market_impact(
    minutes: Minutes,
    attractiveness: npt.ArrayLike,
    demand_weights: npt.ArrayLike,
    roles: Sequence[str] | npt.ArrayLike,
    *,
    lam: float = DEFAULT_LAMBDA,
    min_minutes: float = DEFAULT_MIN_MINUTES,
    facility_ids: Sequence[Any] | pd.Index | None = None,
) -> MarketImpact:
    """Open all ``"new"`` facilities together and split their demand by where it came from.

    Parameters
    ----------
    minutes
        Walk minutes from demand points to *all* facilities (own, competitor, new).
    attractiveness
        Per facility.
    demand_weights
        Demand per point (residents, footfall, accounts).
    roles
        Per facility: ``"own"``, ``"competitor"`` or ``"new"``.
    lam, min_minutes
        As in :func:`huff_probabilities`.
    facility_ids
        Labels for the output index; default 0..n_facilities-1.

    Notes
    -----
    Huff shares are proportional to utility, so a new site takes from each
    existing branch at a demand point in proportion to that branch's share
    there. The parts therefore add up exactly: ``expected_demand =
    from_competitors + cannibalized + from_unserved``, and the sum of
    ``net_new_demand`` equals ``own_demand_after - own_demand_before``.
    """
    split = _split(minutes, attractiveness, demand_weights, roles, lam, min_minutes, facility_ids)
    utility, weights, role, ids = split
    total_before, own_before, comp_before = _existing_sums(utility, role)
    new_util = utility[:, np.flatnonzero(role == "new")]
    total_after = total_before + np.asarray(new_util.sum(axis=1)).ravel()
    sites = _decompose(new_util, weights, total_before, own_before, comp_before, total_after)
    sites.index = pd.Index(ids[role == "new"], name="facility")

    own = np.flatnonzero(role == "own")
    own_util = utility[:, own]
    before = facility_demand(_scale_rows(own_util, _safe_inverse(total_before)), weights)
    after = facility_demand(_scale_rows(own_util, _safe_inverse(total_after)), weights)
    branches = pd.DataFrame(
        {"demand_before": before, "demand_after": after, "change": after - before},
        index=pd.Index(ids[own], name="facility"),
    )
    return MarketImpact(
        sites=sites,
        branches=branches,
        own_demand_before=float(before.sum()),
        own_demand_after=float(after.sum() + sites["expected_demand"].sum()),
    )


def candidate_impact(
    minutes: Minutes,
    attractiveness: npt.ArrayLike,
    demand_weights: npt.ArrayLike,
    roles: Sequence[str] | npt.ArrayLike,
    *,
    lam: float = DEFAULT_LAMBDA,
    min_minutes: float = DEFAULT_MIN_MINUTES,
    facility_ids: Sequence[Any] | pd.Index | None = None,
) -> pd.DataFrame:
    """Like :func:`market_impact`, but each ``"new"`` facility is opened *alone*.

    Use it to rank alternative candidates: every row answers "what if we open
    only this one", with the same columns as ``MarketImpact.sites``.
    """
    split = _split(minutes, attractiveness, demand_weights, roles, lam, min_minutes, facility_ids)
    utility, weights, role, ids = split
    total_before, own_before, comp_before = _existing_sums(utility, role)
    new_util = utility[:, np.flatnonzero(role == "new")]
    if isinstance(new_util, np.ndarray):
        alone: Matrix = total_before[:, None] + new_util
    else:
        alone = sp.csr_matrix(new_util, copy=True)
        alone.data = total_before[_entry_rows(alone)] + alone.data
    out = _decompose(new_util, weights, total_before, own_before, comp_before, alone)
    out.index = pd.Index(ids[role == "new"], name="facility")
    return out


def calibrate_lambda(
    minutes: Minutes,
    attractiveness: npt.ArrayLike,
    *,
    observed_shares: npt.ArrayLike | None = None,
    observed_visits: npt.ArrayLike | None = None,
    demand_weights: npt.ArrayLike | None = None,
    min_minutes: float = DEFAULT_MIN_MINUTES,
    bounds: tuple[float, float] = (0.1, LAMBDA_MAX),
) -> float:
    """Fit λ to observed market shares or visits.

    Parameters
    ----------
    minutes, attractiveness
        As in :func:`huff_probabilities`, for the facilities observed.
    observed_shares
        Share of captured demand per facility, summing to 1 (±0.001).
        Fitted by least squares on the predicted shares.
    observed_visits
        Visits per facility (1-D, normalised to shares and fitted as above), or
        visits from each demand point to each facility (2-D, e.g. customers by
        home zone), fitted by maximum multinomial likelihood.
    demand_weights
        Demand per point for the share fit; default 1 each.
    bounds
        Search interval for λ, inside (0, 5].

    Returns
    -------
    float
        The fitted λ. A fit on a bound warns: the data want a λ outside it.
    """
    lo, hi = (float(b) for b in bounds)
    if not (0 < lo < hi <= LAMBDA_MAX):
        msg = f"bounds={bounds}: need 0 < low < high <= {LAMBDA_MAX}"
        raise InputError(msg)
    if (observed_shares is None) == (observed_visits is None):
        msg = "calibrate_lambda: give exactly one of observed_shares or observed_visits"
        raise InputError(msg)
    n_demand, n_fac = minutes.shape
    weights = _check_weights(
        np.ones(n_demand) if demand_weights is None else demand_weights, n_demand
    )
    target, objective = _observed_target(observed_shares, observed_visits, n_demand, n_fac)

    def loss(lam: float) -> float:
        p = huff_probabilities(minutes, attractiveness, lam=lam, min_minutes=min_minutes)
        return objective(p, weights, target)

    # A coarse scan first: the share error can be flat or have a shoulder, and a
    # bounded Brent search from a poor bracket may settle on the wrong side.
    grid = np.linspace(lo, hi, 25)
    losses = np.array([loss(g) for g in grid])
    best = int(np.argmin(losses))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = minimize_scalar(loss, bounds=(a, b), method="bounded", options={"xatol": 1e-4})
    lam = float(result.x)
    if lam - lo < 1e-3 or hi - lam < 1e-3:
        warnings.warn(
            f"calibrated λ={lam:.3f} sits on the search bound {bounds}; the observations "
            "fit a decay outside it, check them before trusting the model",
            stacklevel=2,
        )
    log.info("calibrated λ = %.3f (loss %.3g)", lam, float(result.fun))
    return lam


def _observed_target(
    observed_shares: npt.ArrayLike | None, observed_visits: npt.ArrayLike | None,
    n_demand: int, n_fac: int,
) -> tuple[np.ndarray, Callable[[Matrix, np.ndarray, np.ndarray], float]]:
    """What :func:`calibrate_lambda` fits, checked: the target and its loss function."""
    if observed_shares is not None:
        target = _check_observed(observed_shares, n_fac, "observed_shares")
        total = target.sum()
        if abs(total - 1.0) > 1e-3:
            msg = (
                f"observed_shares sum to {total:.4f}, not 1; divide them by their total "
                "or pass them as observed_visits"
            )
            raise InputError(msg)
        return target, _share_objective
    visits = np.asarray(observed_visits, dtype=np.float64)
    if visits.ndim == 2:
        return _check_observed(visits, n_fac, "observed_visits", n_rows=n_demand), _visit_objective
    target = _check_observed(visits, n_fac, "observed_visits")
    return target / target.sum(), _share_objective


# ------------------------------------------------------------------ internals
def _share_objective(p: Matrix, weights: np.ndarray, target: np.ndarray) -> float:
    captured = facility_demand(p, weights)
    total = captured.sum()
    predicted = captured / total if total > 0 else captured
    return float(((predicted - target) ** 2).sum())


def _visit_objective(p: Matrix, weights: np.ndarray, target: np.ndarray) -> float:
    dense = p if isinstance(p, np.ndarray) else p.toarray()
    seen = target > 0
    # A visit the model calls impossible is a data/cutoff problem, not a reason
    # to return -inf; clip so the optimiser can still move.
    return float(-(target[seen] * np.log(np.maximum(dense[seen], 1e-300))).sum())


def _utility(
    minutes: Minutes, attractiveness: npt.ArrayLike, *, lam: float, min_minutes: float
) -> Matrix:
    lam = float(lam)
    if not (math.isfinite(lam) and 0 < lam <= LAMBDA_MAX):
        msg = f"lam={lam!r}: the distance-decay exponent must be in (0, {LAMBDA_MAX}]; 1.5-2.5 is usual"
        raise InputError(msg)
    floor = float(min_minutes)
    if not (math.isfinite(floor) and floor > 0):
        msg = f"min_minutes={min_minutes!r}: must be a positive number of minutes, e.g. 1"
        raise InputError(msg)
    if getattr(minutes, "ndim", 0) != 2:
        msg = "minutes: expected a 2-D (demand points x facilities) array or sparse matrix"
        raise InputError(msg)
    attract = np.asarray(attractiveness, dtype=np.float64).ravel()
    if len(attract) != minutes.shape[1]:
        msg = f"attractiveness: {len(attract)} values for {minutes.shape[1]} facilities"
        raise InputError(msg)
    if not (np.isfinite(attract) & (attract > 0)).all():
        msg = "attractiveness: every value must be positive and finite (use 1.0 when unknown)"
        raise InputError(msg)
    if sp.issparse(minutes):
        out = sp.csr_matrix(minutes, dtype=np.float64, copy=True)
        values = out.data
        cols = out.indices
    else:
        values = np.array(minutes, dtype=np.float64)
        cols = None
    reach = np.isfinite(values)
    if (values[reach] < 0).any():
        msg = "minutes: walk times must be >= 0 (use inf or a missing entry for unreachable)"
        raise InputError(msg)
    decay = np.where(reach, np.maximum(values, floor), 1.0) ** -lam
    if cols is not None:
        out.data = np.where(reach, attract[cols] * decay, 0.0)
        return out
    return np.where(reach, attract[None, :] * decay, 0.0)


def _row_normalise(utility: Matrix) -> Matrix:
    total = np.asarray(utility.sum(axis=1)).ravel()
    return _scale_rows(utility, _safe_inverse(total))


def _scale_rows(matrix: Matrix, factor: np.ndarray) -> Matrix:
    if sp.issparse(matrix):
        return sp.csr_matrix(sp.diags(factor) @ matrix)
    return matrix * factor[:, None]


def _safe_inverse(values: np.ndarray) -> np.ndarray:
    out = np.zeros_like(values, dtype=np.float64)
    np.divide(1.0, values, out=out, where=values > 0)
    return out


def _existing_sums(
    utility: Matrix, role: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def row_sum(mask: np.ndarray) -> np.ndarray:
        return np.asarray(utility[:, np.flatnonzero(mask)].sum(axis=1)).ravel()

    own, comp = row_sum(role == "own"), row_sum(role == "competitor")
    return own + comp, own, comp


def _decompose(
    new_util: Matrix,
    weights: np.ndarray,
    total_before: np.ndarray,
    own_before: np.ndarray,
    comp_before: np.ndarray,
    denominator: np.ndarray | Matrix,
) -> pd.DataFrame:
    """Split each new site's demand by the share the existing branches held per point."""
    share: Matrix
    if isinstance(new_util, np.ndarray):
        denom = denominator if np.ndim(denominator) == 2 else np.asarray(denominator)[:, None]
        share = np.divide(new_util, denom, out=np.zeros_like(new_util), where=denom > 0)
    else:
        share = sp.csr_matrix(new_util, copy=True)
        if isinstance(denominator, np.ndarray):
            denom = denominator[_entry_rows(share)]
        else:  # same sparsity pattern as new_util
            denom = denominator.data
        share.data = np.divide(share.data, denom, out=np.zeros_like(share.data), where=denom > 0)
    inv_before = _safe_inverse(total_before)
    expected = facility_demand(share, weights)
    cannibalized = facility_demand(share, weights * own_before * inv_before)
    from_comp = facility_demand(share, weights * comp_before * inv_before)
    from_unserved = facility_demand(share, weights * (total_before <= 0))
    return pd.DataFrame(
        {
            "expected_demand": expected,
            "from_competitors": from_comp,
            "cannibalized": cannibalized,
            "from_unserved": from_unserved,
            "net_new_demand": expected - cannibalized,
        }
    )


def _entry_rows(matrix: sp.csr_matrix) -> np.ndarray:
    """Row index of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _split(
    minutes: Minutes,
    attractiveness: npt.ArrayLike,
    demand_weights: npt.ArrayLike,
    roles: Sequence[str] | npt.ArrayLike,
    lam: float,
    min_minutes: float,
    facility_ids: Sequence[Any] | pd.Index | None,
) -> tuple[Matrix, np.ndarray, np.ndarray, np.ndarray]:
    utility = _utility(minutes, attractiveness, lam=lam, min_minutes=min_minutes)
    n_fac = utility.shape[1]
    role = np.asarray(roles, dtype=object).ravel()
    if len(role) != n_fac:
        msg = f"roles: {len(role)} roles for {n_fac} facilities"
        raise InputError(msg)
    unknown = sorted({str(r) for r in role} - set(ROLES))
    if unknown:
        msg = f"roles: unknown value(s) {unknown}; use one of {list(ROLES)}"
        raise InputError(msg)
    if not (role == "new").any():
        msg = "roles: no facility is 'new'; mark the sites to evaluate as 'new'"
        raise InputError(msg)
    ids = np.arange(n_fac) if facility_ids is None else np.asarray(facility_ids, dtype=object)
    if len(ids) != n_fac:
        msg = f"facility_ids: {len(ids)} ids for {n_fac} facilities"
        raise InputError(msg)
    weights = _check_weights(demand_weights, utility.shape[0])
    if sp.issparse(utility):
        utility = sp.csr_matrix(utility)
    return utility, weights, role, ids


def _check_weights(weights: npt.ArrayLike, n: int) -> np.ndarray:
    arr = np.asarray(weights, dtype=np.float64).ravel()
    if len(arr) != n:
        msg = f"demand_weights: {len(arr)} weights for {n} demand points"
        raise InputError(msg)
    if not (np.isfinite(arr) & (arr >= 0)).all():
        msg = "demand_weights: every weight must be finite and >= 0"
        raise InputError(msg)
    return arr


def _check_observed(
    values: npt.ArrayLike, n_fac: int, name: str, *, n_rows: int | None = None
) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    shape = (n_fac,) if n_rows is None else (n_rows, n_fac)
    if arr.shape != shape:
        msg = f"{name}: shape {arr.shape}, expected {shape} (one per facility)"
        raise InputError(msg)
    if not (np.isfinite(arr) & (arr >= 0)).all() or arr.sum() <= 0:
        msg = f"{name}: values must be finite, >= 0 and not all zero"
        raise InputError(msg)
    return arr
