"""How far candidates are from things: along the streets when a walking graph
exists, in a straight line otherwise.

A proximity object is built once per candidate set and answers, for any point
layer, the (candidate, point, metres) pairs within a radius. The network
version runs one bounded many-source Dijkstra from all candidates
(:meth:`siteplanner.network.WalkGraph.walk_minutes`) and reuses it for every
layer: a point's distance is the walk to its snapped street node plus the
straight-line step from that node to the point.
"""

from __future__ import annotations

from typing import Protocol

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from siteplanner.network import WalkGraph

__all__ = ["NetworkWalk", "Proximity", "StraightLine", "walk_minutes", "xy"]

_CHUNK = 20_000


def xy(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> np.ndarray:
    """Point coordinates as an (n, 2) array."""
    geom = gdf.geometry if isinstance(gdf, gpd.GeoDataFrame) else gdf
    return np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()])


class Proximity(Protocol):
    """Distances from a fixed set of candidates to any point layer."""

    kind: str

    def pairs(self, points: gpd.GeoDataFrame,
              radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate index, point index and metres for every pair within ``radius_m``."""
        ...


class StraightLine:
    """Straight-line distances through a KD-tree (the fallback without streets)."""

    kind = "straight-line"

    def __init__(self, candidates: gpd.GeoDataFrame) -> None:
        self._xy = xy(candidates)

    def pairs(self, points: gpd.GeoDataFrame,
              radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tree = cKDTree(xy(points))
        parts = []
        for start in range(0, len(self._xy), _CHUNK):
            block = cKDTree(self._xy[start:start + _CHUNK])
            p = block.sparse_distance_matrix(tree, radius_m, output_type="ndarray")
            parts.append((p["i"].astype(np.int64) + start, p["j"].astype(np.int64), p["v"]))
        if not parts:
            return np.array([], int), np.array([], int), np.array([], float)
        i, j, d = (np.concatenate(x) for x in zip(*parts, strict=True))
        return i, j, d


class NetworkWalk:
    """Walking distances along the street graph, within ``cutoff_m``.

    Attributes
    ----------
    minutes
        Candidates × street nodes walk minutes (CSC), including each
        candidate's snap walk; a missing entry is beyond the cutoff.
    """

    kind = "network"

    def __init__(self, graph: WalkGraph, candidates: gpd.GeoDataFrame, *, cutoff_m: float) -> None:
        self.graph = graph
        self.cutoff_m = cutoff_m
        self.minutes = graph.walk_minutes(candidates, cutoff_min=cutoff_m / graph.metres_per_minute
                                          ).tocsc()

    def pairs(self, points: gpd.GeoDataFrame,
              radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(points) == 0:
            return np.array([], int), np.array([], int), np.array([], float)
        pos, snap_m = self.graph.snap(points)
        sub = sp.coo_matrix(self.minutes[:, pos])
        d = sub.data * self.graph.metres_per_minute + snap_m[sub.col]
        keep = d < radius_m
        return sub.row[keep].astype(np.int64), sub.col[keep].astype(np.int64), d[keep]


def walk_minutes(graph: WalkGraph | None, origins: gpd.GeoDataFrame, targets: gpd.GeoDataFrame, *,
                 cutoff_min: float, metres_per_minute: float) -> sp.csr_matrix | np.ndarray:
    """Origins × targets walk minutes within ``cutoff_min``.

    Along the streets (sparse; a missing entry is beyond the cutoff) when
    there is a graph, else straight lines (dense; ``inf`` beyond the cutoff).
    """
    if graph is not None:
        return graph.walk_minutes(origins, targets=targets, cutoff_min=cutoff_min)
    d = np.hypot(*(xy(origins)[:, None, :] - xy(targets)[None, :, :]).transpose(2, 0, 1))
    m = d / metres_per_minute
    return np.where(m <= cutoff_min, m, np.inf)
