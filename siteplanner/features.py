"""Criteria as pure, vectorised feature functions.

Each function takes the candidates and one layer (both in the study's metric
CRS) and returns a ``pd.Series`` named after the criterion, aligned to the
candidates' index. Nearness is measured with the quartic (biweight) kernel

    K(d) = (1 - (d / r)^2)^2  for d < r, else 0,

so a place at the candidate counts 1, one at half the radius 0.56, one at the
radius 0. The kernel is smooth and has compact support, so the sum is found
from a KD-tree's sparse distance matrix without a loop over candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from siteplanner.pairsums import PairSum, SharedPairs, pair_sums
from siteplanner.proximity import Proximity, StraightLine, pairs_by_chunk, xy

__all__ = [
    "MODE_WEIGHTS",
    "cannibalization",
    "commercial",
    "competition",
    "compute_criteria",
    "criteria_sums",
    "foot_traffic",
    "kernel_sum",
    "sum_series",
    "transit",
    "transit_access",
    "transit_access_sums",
    "transit_sum",
]

#: Relative weight of a stop by mode, as a proxy for the riders it serves: a
#: metro or rail station moves several times the people of a bus stop.
MODE_WEIGHTS = {"rail": 4.0, "metro": 4.0, "tram": 1.5, "bus": 1.0}


class _Criterion(Protocol):
    @property
    def radius_m(self) -> float: ...

    @property
    def spec(self) -> Any: ...  # a CriterionSpec: its ``feature`` and ``sums``


class _Study(Protocol):
    @property
    def criteria(self) -> Mapping[str, _Criterion]: ...


def compute_criteria(points: gpd.GeoDataFrame, layers: Any, study: _Study, *,
                     proximity: Proximity | None = None,
                     names: Sequence[str] | None = None) -> pd.DataFrame:
    """Every criterion of the study, measured at ``points``.

    Parameters
    ----------
    points
        Where to measure (candidates, or any points), in the layers' CRS.
    layers
        The study's :class:`~siteplanner.layers.Layers`.
    study
        A :class:`~siteplanner.config.Study`; each of its criteria is measured
        with its radius by the feature function the registry
        (:data:`siteplanner.criteria.CRITERIA`) gives it.
    proximity
        Walking distances along the streets
        (:class:`~siteplanner.proximity.NetworkWalk`); straight lines when ``None``.
    names
        The criteria to measure (of the study's); all of them when ``None``.

    Returns
    -------
    pandas.DataFrame
        One column per criterion measured, in the study's order, on ``points``' index.
    """
    if not isinstance(proximity, SharedPairs):  # the criteria share each layer's searches
        proximity = SharedPairs(proximity if proximity is not None else StraightLine(points),
                                len(points), criteria_sums(layers, study))
    cols = [c.spec.feature(points, layers, radius_m=c.radius_m, proximity=proximity).rename(name)
            for name, c in study.criteria.items() if names is None or name in names]
    return pd.concat(cols, axis=1) if cols else pd.DataFrame(index=points.index)


def kernel_sum(candidates: gpd.GeoDataFrame, points: gpd.GeoDataFrame, *, radius_m: float,
               weights: np.ndarray | None = None, name: str,
               proximity: Proximity | None = None) -> pd.Series:
    """Sum of ``weights * K(d)`` over the points within ``radius_m`` of each candidate.

    ``d`` is the walking distance along the streets when ``proximity`` is a
    :class:`~siteplanner.proximity.NetworkWalk`, else the straight-line one.
    """
    return sum_series(candidates, PairSum(points, radius_m, weights=weights), name=name,
                      proximity=proximity)


def sum_series(candidates: gpd.GeoDataFrame, ask: PairSum, *, name: str,
               proximity: Proximity | None = None) -> pd.Series:
    """One :class:`~siteplanner.pairsums.PairSum` at each candidate, as a named series
    (taken from a :class:`~siteplanner.pairsums.SharedPairs`' shared passes when given one)."""
    out = np.zeros(len(candidates)) if ask.kernel else np.zeros(len(candidates), dtype=np.int64)
    if len(ask.points) and len(candidates):
        prox = proximity if proximity is not None else StraightLine(candidates)
        out = pair_sums(prox, len(candidates), [ask])[0]
    return pd.Series(out, index=candidates.index, name=name)


def criteria_sums(layers: Any, study: _Study) -> list[PairSum]:
    """Every pair sum :func:`compute_criteria` asks for on ``study``'s criteria (each
    registry entry's ``sums``), so one :class:`~siteplanner.pairsums.SharedPairs` can
    search each layer once for all of them."""
    return [a for c in study.criteria.values() for a in c.spec.sums(layers, c.radius_m)]


def transit_sum(stops: gpd.GeoDataFrame, radius_m: float) -> PairSum:
    """The ``transit`` criterion's kernel sum: stops weighted by mode (:data:`MODE_WEIGHTS`)."""
    w = stops["mode"].map(MODE_WEIGHTS).fillna(1.0).to_numpy() if len(stops) else None
    return PairSum(stops, radius_m, weights=w)


def transit(candidates: gpd.GeoDataFrame, stops: gpd.GeoDataFrame, *,
            radius_m: float, proximity: Proximity | None = None) -> pd.Series:
    """Transit access: stops near the candidate, weighted by mode (:data:`MODE_WEIGHTS`)."""
    return sum_series(candidates, transit_sum(stops, radius_m), name="transit", proximity=proximity)


def commercial(candidates: gpd.GeoDataFrame, pois: gpd.GeoDataFrame, *,
               radius_m: float, proximity: Proximity | None = None) -> pd.Series:
    """Commercial atmosphere: shops, food, offices and services near the candidate."""
    return kernel_sum(candidates, pois, radius_m=radius_m, name="commercial",
                      proximity=proximity)


def competition(candidates: gpd.GeoDataFrame, competitors: gpd.GeoDataFrame, *,
                radius_m: float, proximity: Proximity | None = None) -> pd.Series:
    """Competitor pressure: competitor branches near the candidate (a cost)."""
    return kernel_sum(candidates, competitors, radius_m=radius_m, name="competition",
                      proximity=proximity)


def cannibalization(candidates: gpd.GeoDataFrame, own: gpd.GeoDataFrame, *,
                    radius_m: float, proximity: Proximity | None = None) -> pd.Series:
    """Overlap with the brand's own branches near the candidate (a cost)."""
    return kernel_sum(candidates, own, radius_m=radius_m, name="cannibalization",
                      proximity=proximity)


def foot_traffic(candidates: gpd.GeoDataFrame, points: gpd.GeoDataFrame, *, radius_m: float,
                 measured: bool, proximity: Proximity | None = None) -> pd.Series:
    """Foot traffic at each candidate.

    With measured counts, the value is the inverse-distance-weighted mean
    (power 2) of the four nearest counters, in the counters' own unit, with
    distances floored at 1 m so a candidate on a counter takes its count.
    With the OSM proxy points (see :mod:`siteplanner.footfall`), it is the
    kernel sum of their weights within ``radius_m``.
    """
    if not measured:
        return kernel_sum(candidates, points, radius_m=radius_m,
                          weights=points["count"].to_numpy(), name="foot_traffic",
                          proximity=proximity)
    k = min(4, len(points))
    d, j = cKDTree(xy(points)).query(xy(candidates), k=k)
    d, j = d.reshape(len(candidates), k), j.reshape(len(candidates), k)
    w = 1.0 / np.maximum(d, 1.0) ** 2
    counts = points["count"].to_numpy()[j]
    return pd.Series((w * counts).sum(axis=1) / w.sum(axis=1), index=candidates.index,
                     name="foot_traffic")


def transit_access(candidates: gpd.GeoDataFrame, stops: gpd.GeoDataFrame, *,
                   proximity: Proximity, reach_m: float, metres_per_minute: float,
                   within_min: float) -> pd.DataFrame:
    """Walk minutes to the nearest stop of each mode, and the stops within ``within_min``.

    Columns ``walk_min_<mode>`` (missing when no stop of that mode lies within
    ``reach_m``) and ``stops_within_<N>min``; same index as the candidates.
    """
    n = len(candidates)
    within_col = f"stops_within_{within_min:g}min"
    out = pd.DataFrame(index=candidates.index)
    if len(stops) == 0:
        out[within_col] = 0
        return out
    modes = stops["mode"].astype(str).to_numpy()
    nearest = getattr(proximity, "nearest", None)
    for mode in sorted(set(modes)):
        if nearest is not None:  # one search per mode instead of every stop's pairs
            best = nearest(stops[modes == mode], reach_m) / metres_per_minute
        else:
            best = np.full(n, np.inf)
            for i, j, d in pairs_by_chunk(proximity, stops, reach_m):
                sel = modes[j] == mode
                np.minimum.at(best, i[sel], d[sel] / metres_per_minute)
        out[f"walk_min_{mode}"] = np.where(np.isfinite(best), np.round(best, 2), np.nan)
    within = pair_sums(proximity, n, transit_access_sums(
        stops, reach_m=reach_m, metres_per_minute=metres_per_minute, within_min=within_min))[0]
    out[within_col] = within
    return out


def transit_access_sums(stops: gpd.GeoDataFrame, *, reach_m: float, metres_per_minute: float,
                        within_min: float) -> list[PairSum]:
    """The pair sum :func:`transit_access` asks for: the stops within ``within_min`` minutes."""
    # a hair over the walk, then the exact test in minutes, as the pairs at reach_m had it
    radius = min(within_min * metres_per_minute * (1 + 1e-9), reach_m)
    return [PairSum(stops, radius, kernel=False, within_min=within_min,
                    metres_per_minute=metres_per_minute)]
