"""Spatial cross-validation for the learned models, and the checks on their training data.

:class:`SpatialBlockKFold` is the splitter the foot-traffic calibrator
(:mod:`siteplanner.calibration`) and the site model
(:mod:`siteplanner.learned`) both use: the map is cut into square blocks (or
H3 parent cells) and whole blocks go to a fold, so no block is ever in both
the training and the test set. Nearby sites share their neighbourhood, so a
random split would leak the answer and flatter the model.
:func:`_folds` picks blocks or leave-one-out, :func:`_oof` makes the
out-of-fold predictions the reported scores rest on, and :func:`_target` /
:func:`_matrix` check a target and a feature table before any fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.model_selection import BaseCrossValidator, LeaveOneOut
from threadpoolctl import threadpool_limits

from siteplanner._errors import InputError

__all__ = [
    "SpatialBlockKFold",
    "_folds",
    "_matrix",
    "_oof",
    "_spearman",
    "_target",
    "_threads_for",
]


# --------------------------------------------------------------------------- splitter


class SpatialBlockKFold(BaseCrossValidator):
    """K-fold over spatial blocks: every block lies wholly in one test fold.

    Parameters
    ----------
    n_splits
        Number of folds (at least 2, at most the number of occupied blocks).
    block_size_m
        Side of the square grid cells, in the points' metric CRS. Choose about
        the largest criterion radius, so a test site's neighbourhood is mostly
        outside the training blocks.
    h3_resolution
        Use H3 parent cells of this resolution as blocks instead of a grid
        (resolution 8 cells are about 0.74 km² ; 9 about 0.1 km²).
    random_state
        Seed for the order in which equal-sized blocks are dealt to folds.

    Notes
    -----
    Blocks are dealt largest first to the fold with the fewest samples so far,
    so folds are about equal in size. ``split`` takes the points as a
    GeoDataFrame or GeoSeries (or an ``(n, 2)`` array of metric x, y).
    """

    def __init__(self, n_splits: int = 5, *, block_size_m: float = 500.0,
                 h3_resolution: int | None = None, random_state: int | None = None) -> None:
        self.n_splits = n_splits
        self.block_size_m = block_size_m
        self.h3_resolution = h3_resolution
        self.random_state = random_state

    def blocks(self, X: Any) -> np.ndarray:
        """The block id of every point (strings)."""
        if self.h3_resolution is not None:
            geom = _geometry(X, need_crs=True)
            ll = geom.to_crs(4326)
            # h3 has no array API; one call per training point, not per candidate pair.
            return np.array([h3.latlng_to_cell(y, x, self.h3_resolution)
                             for x, y in zip(ll.x, ll.y, strict=True)], dtype=object)
        if not self.block_size_m > 0:
            msg = f"block_size_m = {self.block_size_m!r}; use a block side > 0 metres"
            raise InputError(msg)
        xy = _xy(X)
        ij = np.floor(xy / float(self.block_size_m)).astype(np.int64)
        return np.char.add(np.char.add(ij[:, 0].astype(str), ":"), ij[:, 1].astype(str)).astype(object)

    def fold_of_block(self, blocks: np.ndarray) -> dict[Any, int]:
        """Which fold each block is dealt to."""
        ids, counts = np.unique(blocks, return_counts=True)
        if len(ids) < self.n_splits or self.n_splits < 2:
            msg = (f"spatial cross-validation needs samples in at least {max(self.n_splits, 2)} blocks "
                   f"for {self.n_splits} folds, but they fall in {len(ids)}; use smaller blocks "
                   "(block_size_m) or fewer folds")
            raise InputError(msg)
        rng = np.random.default_rng(self.random_state)
        tiebreak = rng.permutation(len(ids))
        order = np.lexsort((tiebreak, -counts))
        load = np.zeros(self.n_splits, dtype=np.int64)
        fold: dict[Any, int] = {}
        for b in order:  # one step per block: a few dozen
            f = int(np.argmin(load))
            fold[ids[b]] = f
            load[f] += counts[b]
        return fold

    def _iter_test_indices(self, X: Any = None, y: Any = None,
                           groups: Any = None) -> Iterator[np.ndarray]:
        blocks = self.blocks(X)
        fold = self.fold_of_block(blocks)
        of = np.array([fold[b] for b in blocks])
        for f in range(self.n_splits):
            yield np.flatnonzero(of == f)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds."""
        return int(self.n_splits)


def _geometry(X: Any, *, need_crs: bool = False) -> gpd.GeoSeries:
    if isinstance(X, gpd.GeoDataFrame):
        geom = X.geometry
    elif isinstance(X, gpd.GeoSeries):
        geom = X
    else:
        msg = "spatial blocks need the points as a GeoDataFrame or GeoSeries (with a CRS)"
        raise InputError(msg)
    if need_crs and geom.crs is None:
        msg = "spatial blocks: the points have no CRS; set one before cross-validating"
        raise InputError(msg)
    return geom


def _xy(X: Any) -> np.ndarray:
    if isinstance(X, gpd.GeoDataFrame | gpd.GeoSeries):
        geom = _geometry(X)
        if geom.crs is not None and not geom.crs.is_projected:
            msg = "spatial blocks in metres need projected points; convert to a metric CRS (e.g. UTM) first"
            raise InputError(msg)
        return np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()])
    xy = np.asarray(X, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        msg = f"spatial blocks need points or an (n, 2) array of x, y; got shape {xy.shape}"
        raise InputError(msg)
    return xy


# --------------------------------------------------------------------------- validation


def _threads_for(n_samples: int) -> AbstractContextManager[Any]:
    """One thread for small fits: OpenMP/BLAS start-up costs more than it saves below
    ~10k rows, and on a busy machine two threads on tiny data ran 100x slower."""
    return threadpool_limits(limits=1) if n_samples < 10_000 else nullcontext()


def _plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "sh", "ch", "x")) else "s")


def _target(y: Any, what: str, *, need: int, unit: str) -> np.ndarray:
    s = pd.Series(np.asarray(y, dtype=object)).reset_index(drop=True)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() | ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (f"{what} must be a number for every {unit}; row {pos + 1} holds {s.iloc[pos]!r}; "
               "fix it or leave that row out")
        raise InputError(msg)
    arr = num.to_numpy(dtype=float)
    if len(arr) < need:
        msg = (f"{what}: the model needs at least {need} {_plural(unit)}, got {len(arr)}; "
               f"add {_plural(unit)} or score with the study's weights (--model weighted)")
        raise InputError(msg)
    if np.ptp(arr) == 0:
        msg = (f"{what} is {arr[0]:g} for all {len(arr)} {_plural(unit)}, so there is nothing to learn; "
               "check the column holds the right figures")
        raise InputError(msg)
    return arr


def _matrix(X: Any, what: str) -> tuple[np.ndarray, list[str] | None]:
    names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        msg = f"{what}: features must be a 2-D table, got shape {arr.shape}"
        raise InputError(msg)
    if not np.isfinite(arr).all():
        i, j = np.argwhere(~np.isfinite(arr))[0]
        col = names[j] if names else str(j)
        msg = f"{what}: feature {col!r} is not finite at row {i + 1}; fill or drop it"
        raise InputError(msg)
    return arr, names


# --------------------------------------------------------------------------- folds


def _oof(model: Any, X: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
         predict: Callable[[Any, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Out-of-fold predictions; NaN for a fold whose training part holds one class only."""
    out = np.full(len(y), np.nan)
    for train, test in folds:
        m = clone(model)
        if "min_samples" in m.get_params():
            # The minimum guards the whole data set; a training fold is smaller by design.
            m.set_params(min_samples=1)
        if getattr(m, "kind", None) == "presence" and len(np.unique(y[train])) < 2:
            continue
        m.fit(X[train], y[train])
        out[test] = predict(m, X[test]) if predict else m.predict(X[test])
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def _folds(geometry: gpd.GeoSeries, cv: str, *, n_splits: int, block_size_m: float,
           random_state: int | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    n = len(geometry)
    splitter = SpatialBlockKFold(n_splits, block_size_m=block_size_m, random_state=random_state)
    n_blocks = len(np.unique(splitter.blocks(geometry)))
    if cv == "block" or (cv == "auto" and n_blocks >= n_splits):
        if n_blocks < 2:
            msg = (f"spatial cross-validation: all {n} samples lie in one {block_size_m:g} m block; "
                   "use smaller blocks or cv='loo'")
            raise InputError(msg)
        splitter.n_splits = min(n_splits, n_blocks)
        folds = list(splitter.split(geometry))
        return folds, {"scheme": "spatial blocks", "n_splits": splitter.n_splits,
                       "block_size_m": block_size_m, "n_blocks": n_blocks}
    if cv not in ("auto", "loo"):
        msg = f"cv = {cv!r}; use 'auto', 'block' or 'loo'"
        raise InputError(msg)
    folds = list(LeaveOneOut().split(np.zeros(n)))
    return folds, {"scheme": "leave-one-out", "n_splits": n,
                   "note": f"counters fall in {n_blocks} blocks of {block_size_m:g} m, too few for "
                           f"{n_splits}-fold spatial CV; leave-one-out flatters where counters are close"}
