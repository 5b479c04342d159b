"""Input checks and conversions shared by the location-allocation models.

Cost matrices (dense with ``np.inf`` for unreachable pairs, or scipy.sparse
with a missing entry for a pair beyond the cutoff) become CSR arrays of the
reachable pairs; weights, capacities and exclusions are checked against them;
GeoDataFrames become straight-line cost matrices in their projected CRS. Each
check raises :class:`~siteplanner._errors.InputError` (or ``CRSError``) with a
message naming the argument and the fix.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from siteplanner._errors import CRSError, InputError

__all__ = [
    "_allowed",
    "_as_costs",
    "_as_vector",
    "_capacities",
    "_column",
    "_common",
    "_geo_inputs",
    "_keep_below",
    "_optional_column",
    "_points",
    "_positive",
    "_weights",
]


# --------------------------------------------------------------------------- cost matrices and vectors


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
