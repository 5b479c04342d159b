"""Foot traffic calibrated to measured pedestrian counts.

:class:`FootTrafficCalibrator` (scikit-learn contract) maps OSM features at
counter points (:func:`osm_features`) to measured daily counts with a Poisson
model (a GLM by default; a Poisson gradient-boosted model on request) and
predicts foot traffic in count units at every candidate.
:func:`calibrate_foot_traffic` runs it end to end, with cross-validated
Spearman and R² (spatial blocks, :mod:`siteplanner._spatial_cv`) beside the
proxy-only baseline (the OSM proxy rescaled to counts by a straight line
fitted on the same training folds).

With the study's walking graph the features are the street network's own
(:func:`siteplanner.footfall.centrality_features`: betweenness, closeness and
reach at 400 and 800 m, POIs and transit within 150 m) and the baseline is the
network proxy (:func:`siteplanner.footfall.foot_traffic_proxy`); pedestrian
flow follows the street configuration (Hillier et al. 1993), which counts of
shops miss. Without a graph they are the kernel sums of :func:`osm_features`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, PoissonRegressor
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from siteplanner import features as feat
from siteplanner._errors import InputError
from siteplanner._spatial_cv import _folds, _matrix, _oof, _spearman, _target, _threads_for
from siteplanner.footfall import centrality_features, foot_traffic_points, foot_traffic_proxy
from siteplanner.layers import PROXY, Layers
from siteplanner.network import WalkGraph

__all__ = [
    "MIN_COUNTERS",
    "FootTrafficCalibration",
    "FootTrafficCalibrator",
    "calibrate_foot_traffic",
    "calibration_features",
    "osm_features",
]

#: Fewest counters a calibration accepts: below this, a cross-validated R² rests
#: on too few held-out counters to tell the model from the proxy.
MIN_COUNTERS = 8


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


def calibration_features(points: gpd.GeoDataFrame, layers: Layers, *, graph: WalkGraph | None,
                         proxy_radius_m: float = 250.0) -> tuple[pd.DataFrame, pd.Series]:
    """The calibrator's features at points (study CRS) and the proxy its baseline rescales.

    With a walking graph: :func:`siteplanner.footfall.centrality_features` and
    the network proxy. Without: :func:`osm_features` and its ``proxy`` kernel
    sum.
    """
    if graph is None:
        X = osm_features(points, layers, proxy_radius_m=proxy_radius_m)
        return X, X["proxy"]
    X = centrality_features(points, layers, graph=graph)
    return X, foot_traffic_proxy(points, layers, graph=graph).rename("proxy")


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


def calibrate_foot_traffic(counts: gpd.GeoDataFrame | None, candidates: gpd.GeoDataFrame,
                           layers: Layers, *, method: Literal["glm", "gbm"] = "glm",
                           cv: Literal["auto", "block", "loo"] = "auto", n_splits: int = 5,
                           block_size_m: float = 250.0, proxy_radius_m: float = 250.0,
                           random_state: int | None = 0,
                           graph: WalkGraph | None = None) -> FootTrafficCalibration:
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
    graph
        The study's walking graph: the features become the street network's
        centrality and doorstep attractors (see the module notes).

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
                          random_state=random_state, graph=graph)


def _calibrate(counts: gpd.GeoDataFrame, candidates: gpd.GeoDataFrame, layers: Layers, *,
               method: Literal["glm", "gbm"], cv: str, n_splits: int, block_size_m: float,
               proxy_radius_m: float, random_state: int | None,
               graph: WalkGraph | None) -> FootTrafficCalibration:
    pts = counts.to_crs(layers.crs)
    y = _target(pts["count"], "foot-traffic counts", need=MIN_COUNTERS, unit="counter")
    X, proxy = calibration_features(pts, layers, graph=graph, proxy_radius_m=proxy_radius_m)
    model = FootTrafficCalibrator(method, random_state=random_state).fit(X, y)
    Xc, _ = calibration_features(candidates, layers, graph=graph, proxy_radius_m=proxy_radius_m)
    predicted = pd.Series(model.predict(Xc), index=candidates.index, name="foot_traffic")

    folds, scheme = _folds(pts.geometry, cv, n_splits=n_splits, block_size_m=block_size_m,
                           random_state=random_state)
    oof = _oof(model, X.to_numpy(), y, folds)
    base = _oof(LinearRegression(), proxy.to_numpy()[:, None], y, folds)
    report = {
        "foot_traffic": "calibrated", "calibrated": True, "method": method,
        "features": ("street centrality at 400/800 m and POIs/transit within 150 m"
                     if graph is not None else "OSM kernel sums (no street network)"),
        "n_counters": len(y), "cv": scheme,
        "model": {"spearman": round(_spearman(oof, y), 4), "r2": round(float(r2_score(y, oof)), 4)},
        "proxy_baseline": {"spearman": round(_spearman(base, y), 4),
                           "r2": round(float(r2_score(y, base)), 4)},
        "coefficients": {k: round(v, 4) for k, v in model.coefficients_.items()},
    }
    return FootTrafficCalibration(predicted, report, model, X)
