"""How far candidates are from things: along the streets when a walking graph
exists, in a straight line otherwise.

A proximity object is built once per candidate set and answers, for any point
layer, the (candidate, point, metres) pairs within a radius. The network
version searches from the layer's few points to the many candidates
(:meth:`siteplanner.network.WalkGraph.reach`), keeps each search for the next
layer, and adds the straight-line snap walks at both ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import geopandas as gpd
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from siteplanner._chains import ragged
from siteplanner.network import WalkGraph

__all__ = ["NetworkWalk", "Proximity", "StraightLine", "pairs_by_chunk", "walk_minutes", "xy"]

_CHUNK = 20_000
#: Bytes of street searches :class:`NetworkWalk` keeps for reuse by later layers; past
#: it the oldest are freed (and rerun when asked for again), so a dense country's
#: features stage stays within its memory budget. The same bound as one search chunk
#: of :mod:`siteplanner.network`.
SEARCH_CACHE_BYTES = 64 * 2**20
#: Points per call of :func:`pairs_by_chunk`: a country's stops at a 15-minute walk
#: make pair arrays of gigabytes when asked for at once.
POINT_CHUNK = 5_000


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
    #: Pairs at a radius are not taken as a filter of those at a larger one: a KD-tree's
    #: pairs come in an order that depends on the radius (see :mod:`siteplanner.pairsums`).
    nested_radii = False

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

    def nearest(self, points: gpd.GeoDataFrame, radius_m: float) -> np.ndarray:
        """Metres from each candidate to its nearest point, ``inf`` when none is within ``radius_m``."""
        if len(points) == 0:
            return np.full(len(self._xy), np.inf)
        d, _ = cKDTree(xy(points)).query(self._xy, distance_upper_bound=radius_m)
        return np.where(d < radius_m, d, np.inf)


class NetworkWalk:
    """Walking distances along the street graph, within ``cutoff_m``.

    The candidates are snapped to their street nodes once. Each layer is then
    aggregated from the few to the many: one bounded search from the layer's
    street nodes (:meth:`siteplanner.network.WalkGraph.reach`) to the
    candidates' nodes, as the walk is the same both ways. Searches are kept
    per street node and reused by every later layer at that node within the
    searched reach (stops serve transit and foot traffic; shops serve
    commercial and foot traffic), so layers share one search.

    A pair's distance is the candidate's snap walk, plus the network walk
    between the two nodes, plus the point's snap walk; pairs whose candidate
    snap walk plus network walk exceeds ``cutoff_m`` are left out.
    """

    kind = "network"
    #: The pairs within a radius are those within a larger one with ``d < radius``, same
    #: metres, same order: a bounded search finds the same shortest walks whatever its bound.
    nested_radii = True

    def __init__(self, graph: WalkGraph, candidates: gpd.GeoDataFrame, *, cutoff_m: float) -> None:
        self.graph = graph
        self.cutoff_m = float(cutoff_m)
        pos, snap_m = graph.snap(candidates) if len(candidates) else (np.zeros(0, int), np.zeros(0))
        self._snap_m: np.ndarray = snap_m
        self._pos: np.ndarray = pos
        # Candidates grouped by street node: the targets of every search.
        self._targets, slot = np.unique(pos, return_inverse=True)
        self._by_target = np.argsort(slot, kind="stable")
        self._count = np.bincount(slot, minlength=len(self._targets))
        self._start = np.cumsum(self._count) - self._count
        self._min_snap = float(self._snap_m.min()) if len(self._snap_m) else 0.0
        # Search results kept per source node: block, row in it, and reach.
        self._blocks: list[sp.csr_matrix | None] = []
        self._live: list[int] = []  # rows of each block still the search of their node
        self._kept_bytes = 0  # the bytes of the blocks kept
        self._block_of = np.full(graph.n_nodes, -1, dtype=np.int64)
        self._row_of = np.zeros(graph.n_nodes, dtype=np.int64)
        self._searched_m = np.full(graph.n_nodes, -np.inf)

    def pairs(self, points: gpd.GeoDataFrame,
              radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        empty = np.array([], int), np.array([], int), np.array([], float)
        if len(points) == 0 or len(self._snap_m) == 0:
            return empty
        p_pos, p_snap = self.graph.snap(points)
        limit = min(self.cutoff_m - self._min_snap, radius_m - float(p_snap.min()))
        if limit < 0:
            return empty
        p_order = np.argsort(p_pos, kind="stable")
        nodes, p_start, p_count = np.unique(p_pos[p_order], return_index=True, return_counts=True)
        src, target, net = self._search(nodes, limit)
        # Network pairs -> candidates at each target node.
        g, flat = ragged(self._start[target], self._count[target])
        cand = self._by_target[flat]
        walk = net[g] + self._snap_m[cand]
        keep = walk <= self.cutoff_m + 1e-9
        src, cand, walk = src[g[keep]], cand[keep], walk[keep]
        # ... -> points at each source node.
        g, flat = ragged(p_start[src], p_count[src])
        point = p_order[flat]
        d = walk[g] + p_snap[point]
        keep = d < radius_m
        return cand[g[keep]].astype(np.int64), point[keep].astype(np.int64), d[keep]

    def nearest(self, points: gpd.GeoDataFrame, radius_m: float) -> np.ndarray:
        """Metres from each candidate to its nearest point, ``inf`` when none is within ``radius_m``.

        One search from all the points at once (a virtual source wired to each
        point's street node by its snap walk), so the work is one pass over
        the streets, not one search per point. The same distances as the
        nearest of :meth:`pairs` when ``radius_m <= cutoff_m`` (then no pair
        within the radius has a candidate walk past the cutoff).
        """
        n = self.graph.n_nodes
        out = np.full(len(self._snap_m), np.inf)
        if len(points) == 0 or len(out) == 0:
            return out
        p_pos, p_snap = self.graph.snap(points)
        wire = np.full(n, np.inf)
        np.minimum.at(wire, p_pos, p_snap)
        at = np.flatnonzero(np.isfinite(wire))
        g = self.graph.csgraph.tocsr()
        rows = sp.csr_matrix((wire[at], (np.zeros(len(at), dtype=np.int64), at)), shape=(1, n + 1))
        full = sp.vstack([sp.hstack([g, sp.csr_matrix((n, 1))]), rows], format="csr")
        limit = min(radius_m, self.cutoff_m + float(p_snap.max())) - self._min_snap
        dist = dijkstra(full, directed=True, indices=n, limit=max(limit, 0.0))[:n]
        d = dist[self._pos] + self._snap_m
        return np.where(d < radius_m, d, np.inf)

    def _search(self, nodes: np.ndarray, limit_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(index into ``nodes``, target slot, network metres) of every pair within ``limit_m``."""
        new = nodes[self._searched_m[nodes] < limit_m]
        if len(new):
            self._supersede(new)
            block = self.graph.reach(new, limit_m=limit_m, targets=self._targets)
            self._blocks.append(block)
            self._live.append(len(new))
            self._kept_bytes += block.data.nbytes + block.indices.nbytes + block.indptr.nbytes
            self._block_of[new] = len(self._blocks) - 1
            self._row_of[new] = np.arange(len(new))
            self._searched_m[new] = limit_m
        parts = []
        block_of = self._block_of[nodes]
        for b in np.unique(block_of):
            at = np.flatnonzero(block_of == b)
            sub = self._blocks[b][self._row_of[nodes[at]]].tocoo()  # type: ignore[index]
            keep = sub.data <= limit_m * (1 + 1e-12)
            parts.append((at[sub.row[keep]], sub.col[keep], sub.data[keep]))
        src, target, net = (np.concatenate(x) for x in zip(*parts, strict=True))
        if len(parts) > 1:
            # Pairs in source order whichever search they were kept from, so a sum over them
            # adds in one order (floats are not associative): the same bits however the
            # layers before this one were searched.
            order = np.argsort(src, kind="stable")
            src, target, net = src[order], target[order], net[order]
        self._evict()
        return src, target, net

    def _supersede(self, nodes: np.ndarray) -> None:
        """Forget the older, shorter searches of ``nodes``; a block none of whose rows is
        still wanted is freed."""
        old = self._block_of[nodes]
        old = old[old >= 0]
        for b, n in zip(*np.unique(old, return_counts=True), strict=True):
            self._live[b] -= int(n)
            if self._live[b] == 0:
                self._free(b)
        self._block_of[nodes] = -1
        self._searched_m[nodes] = -np.inf

    def _evict(self) -> None:
        """Free the oldest searches while the kept ones pass :data:`SEARCH_CACHE_BYTES`.

        Sharing searches between layers saves work only where their points sit at the
        same street nodes; in a dense country the kept pairs of every shop would
        otherwise take hundreds of MB. A freed search is simply run again if needed.
        """
        b = 0
        while self._kept_bytes > SEARCH_CACHE_BYTES and b < len(self._blocks) - 1:
            if self._blocks[b] is not None:
                gone = np.flatnonzero(self._block_of == b)
                self._block_of[gone] = -1
                self._searched_m[gone] = -np.inf
                self._free(b)
            b += 1

    def _free(self, b: int) -> None:
        m = self._blocks[b]
        if m is not None:
            self._kept_bytes -= m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        self._blocks[b], self._live[b] = None, 0


def pairs_by_chunk(proximity: Proximity, points: gpd.GeoDataFrame, radius_m: float, *,
                   chunk: int = POINT_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:meth:`Proximity.pairs` of ``points`` in chunks of nearby points, so memory stays bounded.

    Points are taken in x order (nearby points share street nodes and search
    boxes); each chunk's point indices are into the whole of ``points``.
    """
    if len(points) <= chunk:
        yield proximity.pairs(points, radius_m)
        return
    order = np.argsort(xy(points)[:, 0], kind="stable")
    for start in range(0, len(order), chunk):
        take = np.sort(order[start:start + chunk])
        i, j, d = proximity.pairs(points.iloc[take], radius_m)
        yield i, take[j], d


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
