"""Learning from data a bank already has: measured foot traffic and existing branches.

Three estimators, all following the scikit-learn contract:

* :class:`FootTrafficCalibrator` maps OSM features at counter points
  (:func:`osm_features`) to measured daily counts with a Poisson model (a GLM
  by default; a Poisson gradient-boosted model on request) and predicts foot
  traffic in count units at every candidate. :func:`calibrate_foot_traffic`
  runs it end to end, with cross-validated Spearman and R² beside the
  proxy-only baseline (the OSM proxy rescaled to counts by a straight line
  fitted on the same training folds).
* :class:`SiteModel` learns what makes a good site. With branches that carry
  a performance figure it regresses performance on the site criteria; with
  only locations it fits a *presence* model: candidate cells holding a bank
  of any brand against the other (background) cells.
* :class:`SpatialBlockKFold` is the cross-validation splitter both use: the
  map is cut into square blocks (or H3 parent cells) and whole blocks go to
  a fold, so no block is ever in both the training and the test set. Nearby
  sites share their neighbourhood, so a random split would leak the answer
  and flatter the model.

Explanations are exact and additive. The default ``method="linear"`` fits a
ridge (performance) or logistic (presence) model on standardised criteria; a
site's contribution from criterion ``j`` is ``coef_j * (x_j - mean_j) / sd_j``,
which is also the criterion's exact SHAP value for a linear model. The
contributions add up to the site's value minus the average training site's
value (``expected_value_``); for presence the value is the log-odds. The
option ``method="additive_gbm"`` fits gradient-boosted trees in which every
tree uses one criterion only (``interaction_cst``), so the model is
a sum of one-criterion curves (a GAM); each curve's value at the site,
centred on its training mean, is the contribution, again exact. Linear is the
default because a planner reads one number per criterion ("a standard
deviation more transit adds 12 % to deposits"), and because the few dozen
branches a bank has in one city do not support more.

The presence model leaves ``competition`` and ``cannibalization`` out by
default: they are kernels over the very banks being modelled, so every bank
cell would carry its own bank in them and the model would find banks by
looking at banks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor, Ridge
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score
from sklearn.model_selection import BaseCrossValidator, LeaveOneOut
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from siteplanner import features as feat
from siteplanner._errors import InputError
from siteplanner.config import Criterion
from siteplanner.layers import PROXY, Layers
from siteplanner.model import score as weighted_score

__all__ = [
    "MIN_BRANCHES",
    "MIN_COUNTERS",
    "MIN_PRESENCE",
    "PRESENCE_FEATURES",
    "FootTrafficCalibration",
    "FootTrafficCalibrator",
    "LearnedScores",
    "SiteModel",
    "SpatialBlockKFold",
    "calibrate_foot_traffic",
    "global_importance",
    "learned_scores",
    "osm_features",
    "presence_labels",
]

#: Fewest counters a calibration accepts: below this, a cross-validated R² rests
#: on too few held-out counters to tell the model from the proxy.
MIN_COUNTERS = 8
#: Fewest branches with a performance figure a performance model accepts
#: (two per criterion).
MIN_BRANCHES = 10
#: Fewest bank cells a presence model accepts.
MIN_PRESENCE = 5
#: The criteria a presence model uses by default (see the module docstring).
PRESENCE_FEATURES = ("foot_traffic", "transit", "commercial")

Kind = Literal["performance", "presence"]


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


# --------------------------------------------------------------------------- foot traffic


def osm_features(points: gpd.GeoDataFrame, layers: Layers, *,
                 proxy_radius_m: float = 250.0) -> pd.DataFrame:
    """OSM features that explain pedestrian counts, at any points in the study CRS.

    Kernel sums (see :mod:`siteplanner.features`): the foot-traffic proxy at
    ``proxy_radius_m``; all POIs at 100 and 250 m; shops, food and
    offices at 250 m; transit stops weighted by mode at 400 m; metro and rail
    entrances at 400 m; street nodes (junctions, a walkability measure) at
    100 m. (A 500 m POI kernel would add little to the proxy and cost as much
    as all the others together in a dense centre.)
    """
    from siteplanner.footfall import foot_traffic_points

    proxy_layers = replace(layers, sources={**layers.sources, "foot_traffic": PROXY})
    proxy_pts, _ = foot_traffic_points(proxy_layers)
    pois = layers.pois
    cat = pois["category"] if "category" in pois else pd.Series("shop", index=pois.index)
    stops = layers.transit
    mode = stops["mode"] if "mode" in stops else pd.Series("bus", index=stops.index)

    def k(pts: gpd.GeoDataFrame, r: float, name: str, w: np.ndarray | None = None) -> pd.Series:
        return feat.kernel_sum(points, pts, radius_m=r, weights=w, name=name)

    cols = [
        k(proxy_pts, proxy_radius_m, "proxy", proxy_pts["count"].to_numpy()),
        k(pois, 100.0, "pois_100"),
        k(pois, 250.0, "pois_250"),
        k(pois[cat == "shop"], 250.0, "shops_250"),
        k(pois[cat == "food"], 250.0, "food_250"),
        k(pois[cat == "office"], 250.0, "offices_250"),
        k(stops, 400.0, "transit_400", mode.map(feat.MODE_WEIGHTS).fillna(1.0).to_numpy()),
        k(stops[mode.isin(["metro", "rail"])], 400.0, "rail_metro_400"),
        k(layers.street_nodes, 100.0, "street_nodes_100"),
    ]
    return pd.concat(cols, axis=1)


class FootTrafficCalibrator(RegressorMixin, BaseEstimator):
    """Poisson regression of measured counts on OSM features.

    Features enter as ``log1p`` then standardised, so a GLM coefficient is
    the change in log foot traffic per standard deviation of log feature.
    Counts are divided by their mean before fitting (and the predictions
    multiplied back), so ``alpha`` means the same whatever the count unit.

    Parameters
    ----------
    method
        ``"glm"`` (:class:`~sklearn.linear_model.PoissonRegressor`) or
        ``"gbm"`` (:class:`~sklearn.ensemble.HistGradientBoostingRegressor`
        with Poisson loss), for many counters and non-linear effects.
    alpha
        L2 penalty of the GLM.
    min_samples
        Fewest counters to fit on; :data:`MIN_COUNTERS` when None.
    random_state
        Seed of the GBM.
    """

    def __init__(self, method: Literal["glm", "gbm"] = "glm", *, alpha: float = 0.01,
                 min_samples: int | None = None, random_state: int | None = None) -> None:
        self.method = method
        self.alpha = alpha
        self.min_samples = min_samples
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FootTrafficCalibrator:
        """Fit to counts ``y`` (>= 0) at points with features ``X``."""
        arr, names = _matrix(X, "foot-traffic calibration")
        need = MIN_COUNTERS if self.min_samples is None else self.min_samples
        target = _target(y, "foot-traffic counts", need=need, unit="counter")
        if len(target) != len(arr):
            msg = f"foot-traffic calibration: {len(arr)} feature rows but {len(target)} counts"
            raise InputError(msg)
        if (target < 0).any():
            msg = "foot-traffic counts must be >= 0; a negative count cannot be a number of people"
            raise InputError(msg)
        if self.method == "glm":
            reg: Any = PoissonRegressor(alpha=self.alpha, solver="newton-cholesky", max_iter=300)
        elif self.method == "gbm":
            reg = HistGradientBoostingRegressor(
                loss="poisson", learning_rate=0.05, max_iter=300, max_leaf_nodes=8,
                min_samples_leaf=max(3, len(arr) // 20), random_state=self.random_state)
        else:
            msg = f"method = {self.method!r}; use 'glm' or 'gbm'"
            raise InputError(msg)
        self.scale_ = float(target.mean())
        self.pipeline_ = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), reg)
        with _threads_for(len(arr)):
            self.pipeline_.fit(arr, target / self.scale_)
        self.n_features_in_ = arr.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted counts, in the unit of the training counts."""
        arr, _ = _matrix(X, "foot-traffic prediction")
        return np.asarray(self.pipeline_.predict(arr)) * self.scale_

    @property
    def coefficients_(self) -> dict[str, float]:
        """GLM coefficients per feature (log count per SD of log feature); empty for the GBM."""
        reg = self.pipeline_[-1]
        if not isinstance(reg, PoissonRegressor):
            return {}
        names = getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        return {str(n): float(c) for n, c in zip(names, reg.coef_, strict=True)}


@dataclass
class FootTrafficCalibration:
    """A calibration's outputs: foot traffic at every candidate and the figures behind it.

    ``predicted`` is None when there were no counts and the proxy stays.
    """

    predicted: pd.Series | None
    report: dict[str, Any]
    model: FootTrafficCalibrator | None = None
    features: pd.DataFrame | None = None


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


def calibrate_foot_traffic(counts: gpd.GeoDataFrame | None, candidates: gpd.GeoDataFrame,
                           layers: Layers, *, method: Literal["glm", "gbm"] = "glm",
                           cv: Literal["auto", "block", "loo"] = "auto", n_splits: int = 5,
                           block_size_m: float = 250.0, proxy_radius_m: float = 250.0,
                           random_state: int | None = 0) -> FootTrafficCalibration:
    """Fit foot traffic to measured counts and predict it at every candidate.

    Parameters
    ----------
    counts
        Counter points with a ``count`` column (any CRS; see
        :mod:`siteplanner.counts`). None or empty keeps the proxy.
    candidates
        The candidate points in the study CRS.
    layers
        The study's layers (POIs, transit, street nodes).
    method
        ``"glm"`` or ``"gbm"`` (see :class:`FootTrafficCalibrator`).
    cv
        ``"block"`` (spatial blocks), ``"loo"`` (leave one counter out) or
        ``"auto"``: blocks when the counters fill ``n_splits`` blocks, else
        leave-one-out.
    block_size_m, n_splits
        The spatial blocks.

    Returns
    -------
    FootTrafficCalibration
        ``predicted`` (named ``foot_traffic``, in count units, on the
        candidates' index) and ``report`` for run.json: the cross-validated
        Spearman and R² of the model and of the proxy-only baseline.
    """
    if counts is None or len(counts) == 0:
        return FootTrafficCalibration(None, {
            "foot_traffic": "proxy", "calibrated": False,
            "reason": "no measured counts, so foot traffic is the OSM proxy (uncalibrated)"})
    if "count" not in counts.columns:
        msg = "foot-traffic counts have no 'count' column; read them with siteplanner.counts"
        raise InputError(msg)
    if counts.crs is None:
        msg = "foot-traffic counts have no CRS; set it (EPSG:4326 for lon/lat)"
        raise InputError(msg)
    # Many tiny fits: BLAS/OpenMP threads cost more than they give (100x on a loaded 2-core box).
    with threadpool_limits(limits=1):
        return _calibrate(counts, candidates, layers, method=method, cv=cv, n_splits=n_splits,
                          block_size_m=block_size_m, proxy_radius_m=proxy_radius_m,
                          random_state=random_state)


def _calibrate(counts: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, layers: Layers, *,
               method: Literal["glm", "gbm"], cv: str, n_splits: int, block_size_m: float,
               proxy_radius_m: float, random_state: int | None) -> FootTrafficCalibration:
    pts = counts.to_crs(layers.crs)
    y = _target(pts["count"], "foot-traffic counts", need=MIN_COUNTERS, unit="counter")
    X = osm_features(pts, layers, proxy_radius_m=proxy_radius_m)
    model = FootTrafficCalibrator(method, random_state=random_state).fit(X, y)
    Xc = osm_features(candidates, layers, proxy_radius_m=proxy_radius_m)
    predicted = pd.Series(model.predict(Xc), index=candidates.index, name="foot_traffic")

    folds, scheme = _folds(pts.geometry, cv, n_splits=n_splits, block_size_m=block_size_m,
                           random_state=random_state)
    arr = X.to_numpy()
    oof = _oof(model, arr, y, folds)
    proxy = X[["proxy"]].to_numpy()
    base = _oof(LinearRegression(), proxy, y, folds)
    report = {
        "foot_traffic": "calibrated", "calibrated": True, "method": method,
        "n_counters": len(y), "cv": scheme,
        "model": {"spearman": round(_spearman(oof, y), 4), "r2": round(float(r2_score(y, oof)), 4)},
        "proxy_baseline": {"spearman": round(_spearman(base, y), 4),
                           "r2": round(float(r2_score(y, base)), 4)},
        "coefficients": {k: round(v, 4) for k, v in model.coefficients_.items()},
    }
    return FootTrafficCalibration(predicted, report, model, X)


# --------------------------------------------------------------------------- site model


class SiteModel(BaseEstimator):
    """An explainable model of branch performance or of bank presence.

    Parameters
    ----------
    kind
        ``"performance"`` (regression of a performance figure) or
        ``"presence"`` (bank cell = 1 against background cells = 0).
    method
        ``"linear"`` (ridge / logistic on standardised criteria) or
        ``"additive_gbm"`` (boosted trees without interactions: a GAM).
    alpha
        Ridge penalty (performance) or inverse of the logistic ``C``
        (presence), on standardised criteria.
    min_samples
        Fewest branches (performance) or bank cells (presence) to fit on;
        :data:`MIN_BRANCHES` or :data:`MIN_PRESENCE` when None.
    random_state
        Seed of the boosted trees.

    Attributes
    ----------
    expected_value_
        The model's value (performance, or presence log-odds) at the average
        training site: ``decision_function(X) = expected_value_ +
        contributions(X).sum(axis=1)`` exactly.
    """

    def __init__(self, kind: Kind = "performance", *, method: Literal["linear", "additive_gbm"] = "linear",
                 alpha: float = 1.0, min_samples: int | None = None,
                 random_state: int | None = None) -> None:
        self.kind = kind
        self.method = method
        self.alpha = alpha
        self.min_samples = min_samples
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> SiteModel:
        """Fit to site criteria ``X`` and performance or 0/1 presence ``y``."""
        arr, names = _matrix(X, f"{self.kind} model")
        if self.kind == "performance":
            need = MIN_BRANCHES if self.min_samples is None else self.min_samples
            target = _target(y, "performance", need=need, unit="branch")
        elif self.kind == "presence":
            target = pd.to_numeric(pd.Series(np.asarray(y, dtype=object)), errors="coerce").to_numpy(float)
            if not np.isin(target, (0.0, 1.0)).all():
                msg = "presence must be 0 (background cell) or 1 (cell holding a bank) for every cell"
                raise InputError(msg)
            need = MIN_PRESENCE if self.min_samples is None else self.min_samples
            if target.sum() < need or target.sum() == len(target):
                msg = (f"presence model: needs at least {need} cells holding a bank and one "
                       f"without, got {int(target.sum())} of {len(target)}; widen the study area "
                       "or give branch performance")
                raise InputError(msg)
        else:
            msg = f"kind = {self.kind!r}; use 'performance' or 'presence'"
            raise InputError(msg)
        if len(target) != len(arr):
            msg = f"{self.kind} model: {len(arr)} feature rows but {len(target)} targets"
            raise InputError(msg)
        est: Any
        if self.method == "linear":
            est = (Ridge(alpha=self.alpha) if self.kind == "performance"
                   else LogisticRegression(C=1.0 / self.alpha, max_iter=1000))
        elif self.method == "additive_gbm":
            kw = {"interaction_cst": [[j] for j in range(arr.shape[1])], "learning_rate": 0.05,
                  "max_iter": 200, "max_leaf_nodes": 4, "min_samples_leaf": max(2, len(arr) // 20),
                  "early_stopping": False, "random_state": self.random_state}
            est = (HistGradientBoostingRegressor(**kw) if self.kind == "performance"
                   else HistGradientBoostingClassifier(**kw))
        else:
            msg = f"method = {self.method!r}; use 'linear' or 'additive_gbm'"
            raise InputError(msg)
        self.pipeline_ = Pipeline([("scale", StandardScaler()), ("model", est)])
        with _threads_for(len(arr)):
            self.pipeline_.fit(arr, target)
        self.n_features_in_ = arr.shape[1]
        self.feature_names_ = names or [f"x{i}" for i in range(arr.shape[1])]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        parts = self._parts(arr)
        self.part_means_ = parts.mean(axis=0)
        self.expected_value_ = float(np.mean(self._raw(arr)))
        return self

    def _raw(self, arr: np.ndarray) -> np.ndarray:
        if self.kind == "presence":
            return np.asarray(self.pipeline_.decision_function(arr), dtype=float)
        return np.asarray(self.pipeline_.predict(arr), dtype=float)

    def _parts(self, arr: np.ndarray) -> np.ndarray:
        est = self.pipeline_["model"]
        z = self.pipeline_["scale"].transform(arr)
        if self.method == "linear":
            return np.asarray(z * np.ravel(est.coef_)[None, :])
        # An additive model is f(x) = c + sum_j g_j(x_j), so g_j(x_j) - g_j(ref_j) is f at
        # the reference with only column j set to the site's value, minus f at the reference.
        ref = self.pipeline_["scale"].mean_
        n, p = arr.shape
        probe = np.repeat(ref[None, None, :], n, axis=0).repeat(p, axis=1)
        probe[:, np.arange(p), np.arange(p)] = arr
        f = self._raw(probe.reshape(n * p, p)).reshape(n, p)
        return np.asarray(f - self._raw(ref[None, :])[0])

    def decision_function(self, X: Any) -> np.ndarray:
        """The model's value: performance, or the log-odds of presence."""
        arr, _ = _matrix(X, f"{self.kind} model")
        return self._raw(arr)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted performance, or the probability that a cell holds a bank."""
        raw = self.decision_function(X)
        return raw if self.kind == "performance" else 1.0 / (1.0 + np.exp(-raw))

    def contributions(self, X: Any) -> pd.DataFrame:
        """Each criterion's additive part of ``decision_function(X) - expected_value_``."""
        arr, names = _matrix(X, f"{self.kind} model")
        parts = self._parts(arr) - self.part_means_
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(parts, columns=self.feature_names_, index=index)


def global_importance(model: SiteModel, X: pd.DataFrame, y: np.ndarray, *, n_repeats: int = 10,
                      random_state: int | None = 0) -> dict[str, dict[str, float]]:
    """Global importance per criterion, for run.json.

    ``mean_abs_contribution`` is each criterion's share of the mean absolute
    contribution over the sites in ``X``; ``permutation`` is scikit-learn's
    permutation importance (the drop in R², or in ROC AUC for presence, when
    the criterion's column is shuffled), mean over ``n_repeats`` shuffles.
    """
    contrib = model.contributions(X).abs().mean()
    share = contrib / contrib.sum() if contrib.sum() > 0 else contrib

    def scorer(est: SiteModel, Xs: Any, ys: Any) -> float:
        if est.kind == "presence":
            return float(roc_auc_score(ys, est.decision_function(Xs)))
        return float(r2_score(ys, est.predict(Xs)))

    perm = permutation_importance(model, X, y, scoring=scorer, n_repeats=n_repeats,
                                  random_state=random_state)
    return {name: {"mean_abs_contribution": round(float(share[name]), 4),
                   "permutation": round(float(perm.importances_mean[j]), 4)}
            for j, name in enumerate(X.columns)}


def presence_labels(candidates: gpd.GeoDataFrame, banks: gpd.GeoDataFrame) -> pd.Series:
    """1 for the candidate each bank falls nearest to, else 0.

    H3 cells are the Voronoi cells of their centres, so for H3 candidates this
    marks the cells that hold a bank. A bank farther than 1.5 candidate
    spacings (median nearest-neighbour distance) from every candidate lies
    outside the study's candidates and marks nothing.
    """
    xy = np.column_stack([candidates.geometry.x, candidates.geometry.y])
    out = np.zeros(len(candidates), dtype=int)
    if len(banks) and len(candidates) > 1:
        tree = cKDTree(xy)
        spacing = float(np.median(tree.query(xy, k=2)[0][:, 1]))
        bxy = np.column_stack([banks.geometry.x, banks.geometry.y])
        d, j = tree.query(bxy)
        out[j[d <= 1.5 * spacing]] = 1
    return pd.Series(out, index=candidates.index, name="bank_present")


@dataclass
class LearnedScores:
    """A learned model's scores at every candidate, and what it was fitted on.

    ``table`` is aligned to the candidates: ``score`` (the model's value
    relative to the average training site: performance units, or presence
    log-odds), ``predicted`` (performance, or the probability a cell holds a
    bank) and one ``NAME_contribution`` per criterion, which add up to
    ``score`` exactly. ``report`` holds the figures for run.json.
    """

    table: pd.DataFrame
    model: SiteModel
    report: dict[str, Any]
    X_train: pd.DataFrame
    y_train: np.ndarray
    train_geometry: gpd.GeoSeries
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def learned_scores(candidates: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers, *,
                   featurize: Callable[[gpd.GeoDataFrame], pd.DataFrame] | None = None,
                   target: Literal["auto", "performance", "presence"] = "auto",
                   performance_column: str = "performance", features: Sequence[str] | None = None,
                   method: Literal["linear", "additive_gbm"] = "linear", alpha: float = 1.0,
                   n_splits: int = 5, block_size_m: float = 500.0,
                   criteria: dict[str, Criterion] | None = None,
                   random_state: int | None = 0) -> LearnedScores:
    """Score candidates with a model learned from the branches that exist.

    Parameters
    ----------
    candidates
        The candidate points (study CRS), indexed by site id.
    raw
        The raw criteria at the candidates (one column per criterion).
    layers
        The study's layers: ``own_branches`` (with the performance column when
        there is one) and ``competitors``.
    featurize
        Computes the raw criteria at any points, e.g.
        ``lambda pts: pipeline._features(pts, layers, study)``; needed for a
        performance model. A branch's own kernel weight (1 at distance 0) is
        taken off its ``cannibalization``, so a branch is described as the
        candidate it once was.
    target
        ``"performance"``, ``"presence"``, or ``"auto"``: performance when
        the own branches carry ``performance_column``, else presence.
    features
        The criteria the model uses: every column of ``raw`` for performance,
        :data:`PRESENCE_FEATURES` for presence.
    method, alpha
        See :class:`SiteModel`.
    n_splits, block_size_m
        Spatial-block cross-validation.
    criteria
        The study's criteria; when given, the weighted score is cross-checked
        against the same target as a baseline.
    """
    own = layers.own_branches
    kind: Kind
    if target == "auto":
        kind = "performance" if performance_column in own.columns else "presence"
    elif target in ("performance", "presence"):
        kind = target
    else:
        msg = f"target = {target!r}; use 'auto', 'performance' or 'presence'"
        raise InputError(msg)
    default = list(raw.columns) if kind == "performance" else [c for c in PRESENCE_FEATURES if c in raw]
    cols = list(features) if features is not None else default
    unknown = [c for c in cols if c not in raw.columns]
    if unknown:
        msg = f"learned model: unknown criterion {unknown[0]!r}; the criteria are {', '.join(raw.columns)}"
        raise InputError(msg)

    baseline_values: np.ndarray | None = None
    if kind == "performance":
        if performance_column not in own.columns:
            have = ", ".join(c for c in own.columns if c != "geometry")
            msg = (f"own_branches: no {performance_column!r} column (columns: {have}); add each "
                   "branch's performance (e.g. deposits or transactions) or use the presence model")
            raise InputError(msg)
        y = _target(own[performance_column], f"own_branches column {performance_column!r}",
                    need=MIN_BRANCHES, unit="branch")
        if featurize is None:
            msg = "learned_scores: a performance model needs featurize= to compute criteria at branches"
            raise InputError(msg)
        full = featurize(own)
        if "cannibalization" in full:
            full = full.assign(cannibalization=np.maximum(full["cannibalization"] - 1.0, 0.0))
        X = full[cols]
        geometry = own.geometry
        if criteria is not None:
            both = pd.concat([raw, full[raw.columns]], ignore_index=True)
            baseline_values = weighted_score(both, criteria)["score"].to_numpy()[len(raw):]
    else:
        banks = pd.concat([own.geometry, layers.competitors.geometry], ignore_index=True)
        labels = presence_labels(candidates, gpd.GeoDataFrame(geometry=banks, crs=layers.crs))
        y = labels.to_numpy(dtype=float)
        X = raw[cols]
        geometry = candidates.geometry
        if criteria is not None:
            baseline_values = weighted_score(raw, criteria)["score"].to_numpy()

    with threadpool_limits(limits=1):
        return _learn(kind, X, y, geometry, raw, cols, baseline_values, method=method, alpha=alpha,
                      n_splits=n_splits, block_size_m=block_size_m, random_state=random_state)


def _learn(kind: Kind, X: pd.DataFrame, y: np.ndarray, geometry: gpd.GeoSeries, raw: pd.DataFrame,
           cols: list[str], baseline_values: np.ndarray | None, *, method: Literal["linear", "additive_gbm"],
           alpha: float, n_splits: int, block_size_m: float, random_state: int | None) -> LearnedScores:
    model = SiteModel(kind, method=method, alpha=alpha, random_state=random_state).fit(X, y)
    folds, scheme = _folds(geometry, "block", n_splits=n_splits, block_size_m=block_size_m,
                           random_state=random_state)
    arr = X.to_numpy(dtype=float)
    if kind == "performance":
        oof = _oof(model, arr, y, folds)
        metrics: dict[str, Any] = {"r2": round(float(r2_score(y, oof)), 4),
                                   "spearman": round(_spearman(oof, y), 4)}
        base = {"r2_mean_only": 0.0}
        if baseline_values is not None:
            base["spearman_weighted_score"] = round(_spearman(baseline_values, y), 4)
    else:
        oof = _oof(model, arr, y, folds, predict=lambda m, a: m.decision_function(a))
        ok = np.isfinite(oof)
        if len(np.unique(y[ok])) < 2:
            metrics = {"roc_auc": None, "average_precision": None, "cells_tested": int(ok.sum()),
                       "note": "the bank cells fill too few blocks to test on held-out banks; "
                               "use smaller blocks (block_size_m)"}
        else:
            metrics = {"roc_auc": round(float(roc_auc_score(y[ok], oof[ok])), 4),
                       "average_precision": round(float(average_precision_score(y[ok], oof[ok])), 4),
                       "cells_tested": int(ok.sum())}
        base = {"roc_auc_random": 0.5, "average_precision_random": round(float(y.mean()), 4)}
        if baseline_values is not None:
            base["roc_auc_weighted_score"] = round(float(roc_auc_score(y, baseline_values)), 4)

    parts = model.contributions(raw[cols])
    table = pd.DataFrame(index=raw.index)
    table["score"] = parts.sum(axis=1)
    table["predicted"] = model.predict(raw[cols])
    for name in raw.columns:
        table[f"{name}_contribution"] = parts[name] if name in parts else 0.0
    report = {
        "kind": kind, "method": method, "features": cols, "n_train": len(y),
        **({"n_bank_cells": int(y.sum())} if kind == "presence" else {}),
        "expected_value": round(model.expected_value_, 6),
        "value": "performance" if kind == "performance" else "log-odds that a cell holds a bank",
        "cv": {**scheme, "model": metrics, "baseline": base},
        "importance": global_importance(model, X, y, random_state=random_state),
    }
    if method == "linear":
        coef = np.ravel(model.pipeline_["model"].coef_)
        report["coefficients_per_sd"] = {c: round(float(v), 6) for c, v in zip(cols, coef, strict=True)}
    return LearnedScores(table, model, report, X, y, geometry, folds)
