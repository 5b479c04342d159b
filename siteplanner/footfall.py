"""Foot traffic: the user's measured counts, or a proxy from the street network and what draws people.

The proxy follows two findings of pedestrian research:

* **Configuration.** Flow follows the street network: streets that many short
  walking paths pass through, and streets close to many others, carry more
  people (Hillier et al. 1993, "Natural movement"; Sevtsuk 2010 and cityseer
  use the same radius-bounded measures). Centrality comes from
  :func:`siteplanner.centrality.walk_centrality` at 400 and 800 m.
* **Attractors.** Destinations and stations at the doorstep: POIs within
  150 m and transit stops within 150 m weighted by mode
  (:data:`siteplanner.features.MODE_WEIGHTS`), the scale of a block face.

The proxy is the equal-weight mean of the percentile ranks, among the points
measured, of the five features of :data:`PROXY_FEATURES` (no counts exist to
weight them; the count calibration fits its own weights on
:func:`centrality_features`). It lies in [0, 1] and has no unit: it ranks
streets, it does not count people. Without a street network it falls back to
the attractors alone, with a warning.
"""

from __future__ import annotations

import warnings
import weakref

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from siteplanner._aside import Pending, can_fork
from siteplanner.centrality import (
    DEFAULT_RADII,
    at_every_node,
    centrality_arrays,
    centrality_frame,
    junction_inputs,
    walk_centrality,
    work_mib,
)
from siteplanner.features import MODE_WEIGHTS, sum_series
from siteplanner.layers import Layers
from siteplanner.network import WalkGraph
from siteplanner.pairsums import PairSum
from siteplanner.proximity import Proximity, xy

__all__ = [
    "ATTRACTOR_RADIUS_M",
    "PROXY_FEATURES",
    "attractor_sums",
    "centrality_aside",
    "centrality_aside_stats",
    "centrality_features",
    "drop_centrality_aside",
    "foot_traffic_points",
    "foot_traffic_proxy",
]

#: Radius in metres of the doorstep attractors (POIs, stops).
ATTRACTOR_RADIUS_M = 150.0

#: The features the proxy averages (percentile ranks, equal weights).
PROXY_FEATURES = ("betweenness_400", "betweenness_800", "harmonic_800", "pois_150", "transit_150")

_CENTRALITY: weakref.WeakKeyDictionary[WalkGraph, pd.DataFrame] = weakref.WeakKeyDictionary()
#: Centrality being measured in a second process (:func:`centrality_aside`), by graph.
_PENDING: Pending[WalkGraph, tuple[dict[str, np.ndarray], dict[str, float]]] = Pending(weak=True)


def foot_traffic_points(layers: Layers) -> tuple[gpd.GeoDataFrame, bool]:
    """The points behind the foot-traffic criterion and whether they are measured.

    Measured counts when the study has them; otherwise the attractors (POIs of
    weight 1 and stops of their mode weight), as used without a street network.
    """
    if layers.foot_traffic_measured:
        return layers.foot_traffic, True
    pois = layers.pois[["geometry"]].assign(count=1.0, source="poi")
    stops = layers.transit[["geometry"]].assign(
        count=layers.transit["mode"].map(MODE_WEIGHTS).fillna(1.0).to_numpy(), source="transit")
    proxy = pd.concat([pois, stops], ignore_index=True)
    return gpd.GeoDataFrame(proxy, geometry="geometry", crs=layers.crs), False


def _centrality(graph: WalkGraph) -> pd.DataFrame:
    """Centrality of the graph's nodes, computed once per graph (or collected from the
    second process :func:`centrality_aside` started)."""
    if graph not in _CENTRALITY:
        found, value = _PENDING.take(graph)
        _CENTRALITY[graph] = (at_every_node(graph, centrality_frame(*value))
                              if found and value is not None
                              else walk_centrality(graph, radii=DEFAULT_RADII))
    return _CENTRALITY[graph]


def centrality_aside_stats(graph: WalkGraph) -> dict[str, float | None] | None:
    """The second process's seconds and own memory, when it measured this graph's
    centrality (:attr:`siteplanner._aside.Aside.stats`), once; None when none did."""
    return _PENDING.stats(graph)


def centrality_aside(graph: WalkGraph) -> None:
    """Start measuring the graph's centrality in a second process (:mod:`siteplanner._aside`),
    so the caller's next work overlaps it; the first :func:`centrality_features` of the
    graph collects it. The process is a fork when one fits the memory budget (it starts at
    once: a fresh interpreter takes about 0.4 s to start, more than a town's whole
    centrality), else a fresh interpreter given the junctions' graph only
    (:func:`~siteplanner.centrality.junction_inputs`, about 50 bytes a junction): a fork
    beside a large city's tables would come to hold every page the run writes meanwhile
    (measured on Helsinki x156: 434 MiB of its own, against a peak of 131 MiB PSS for a
    fresh one, which loads numpy and scipy only). Where the run cannot fork, or
    the budget has no room, this does nothing, and centrality is measured when first asked,
    as before; the answer is the same either way."""
    if graph in _CENTRALITY or graph in _PENDING:
        return
    what = "measuring street centrality"
    if can_fork(what, quiet=True):  # a fork starts at once, with the graph already in it
        _PENDING.start(graph, what, _junction_centrality, graph)
        return
    csgraph, junctions = junction_inputs(graph)
    _PENDING.start_fresh(graph, what, work_mib(len(junctions)), centrality_arrays, csgraph,
                         junctions, radii=DEFAULT_RADII)


def _junction_centrality(graph: WalkGraph) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """:func:`~siteplanner.centrality.centrality_arrays` of the graph's junctions (a fork's
    work: the same call a fresh interpreter is given)."""
    return centrality_arrays(*junction_inputs(graph), radii=DEFAULT_RADII)


def drop_centrality_aside() -> None:
    """Stop every centrality still being measured aside (a run that failed before reading it)."""
    _PENDING.cancel()


def centrality_features(points: gpd.GeoDataFrame, layers: Layers, *, graph: WalkGraph | None,
                        proximity: Proximity | None = None) -> pd.DataFrame:
    """Network centrality and doorstep attractors at each point (study CRS).

    Columns: ``betweenness_<r>``, ``harmonic_<r>``, ``reach_<r>`` of the
    nearest street node for r in 400, 800 m (``log1p`` of the counts, as
    counts of paths span orders of magnitude), ``pois_150`` and
    ``transit_150`` (kernel sums, see :mod:`siteplanner.features`). Without a
    graph the centrality columns are left out.
    """
    pois, stops = attractor_sums(layers)
    cols = [sum_series(points, pois, name="pois_150", proximity=proximity),
            sum_series(points, stops, name="transit_150", proximity=proximity)]
    if graph is not None and len(points):
        cent = _centrality(graph)
        _, node = cKDTree(graph.xy).query(xy(points))
        at = cent.iloc[node].set_axis(points.index)
        big = [c for c in at.columns if not c.startswith("harmonic")]
        at[big] = np.log1p(at[big])
        cols.insert(0, at)
    return pd.concat(cols, axis=1)


def attractor_sums(layers: Layers) -> list[PairSum]:
    """The doorstep attractors' kernel sums: POIs, and stops weighted by mode, within
    :data:`ATTRACTOR_RADIUS_M`."""
    stops = layers.transit
    w = stops["mode"].map(MODE_WEIGHTS).fillna(1.0).to_numpy() if len(stops) else None
    return [PairSum(layers.pois, ATTRACTOR_RADIUS_M),
            PairSum(stops, ATTRACTOR_RADIUS_M, weights=w)]


def foot_traffic_proxy(points: gpd.GeoDataFrame, layers: Layers, *,
                       proximity: Proximity | None = None,
                       graph: WalkGraph | None = None) -> pd.Series:
    """The documented foot-traffic proxy in [0, 1] at each point (see the module notes).

    The graph is taken from ``proximity`` when it walks the network.
    """
    if graph is None:  # a NetworkWalk's, or the one a SharedPairs wraps; None for straight lines
        graph = getattr(proximity, "graph", None)
    feats = centrality_features(points, layers, graph=graph, proximity=proximity)
    use = [c for c in PROXY_FEATURES if c in feats]
    if graph is None:
        warnings.warn("no street network: the foot-traffic proxy uses POIs and transit stops "
                      "within 150 m only, without street centrality", UserWarning, stacklevel=2)
    ranks = feats[use].rank(pct=True) if len(points) > 1 else feats[use] * 0 + 1.0
    return ranks.mean(axis=1).rename("foot_traffic")
