"""Opportunity zones and service territories (density clustering on the candidates).

**Opportunity zones** answer "where do good sites bunch together?". The
candidates scoring in the top ``1 - quantile`` share (10 % by default) are
clustered with DBSCAN (or HDBSCAN) on their coordinates. DBSCAN's reach ``eps_m`` defaults to 1.5
candidate spacings (median nearest-neighbour distance), so adjacent cells join
and a gap of one cell splits a zone. Each zone becomes the union of its cells
with its size, best site and mean score. Zones are numbered by best score.

**Territories** split the study area into contiguous service areas of about
equal demand, one around each seed (the brand's branches and the chosen
sites; without seeds, Ward agglomerative clustering under the same
connectivity graph proposes ``n_territories`` compact regions and their most
central cells become the seeds). The connectivity graph links each candidate
to its neighbours within 1.5 spacings: on H3 candidates that is exactly its
six H3 neighbours. Cells are assigned to the seed with the least *walking
distance on that graph plus an offset*; the offsets are tuned so territories
carry about equal demand (a heavy territory's offset rises and it cedes its
border cells), to within ``tolerance`` or as near as whole cells allow (a
territory cannot be balanced more finely than its busiest cell). This
"additively weighted graph Voronoi" keeps every territory contiguous: a cell's
shortest path back to its seed runs only through cells that prefer the same
seed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree

from siteplanner._errors import InputError

__all__ = ["MAX_BALANCED_CELLS", "Territories", "Zones", "connectivity_graph", "opportunity_zones",
           "territories"]

#: Territories are balanced on at most this many cells. Each balancing round
#: is one Dijkstra over them and up to ``max_iter`` rounds run, so the bound
#: keeps a country to seconds; a bank's territory spans hundreds of cells, so
#: blocks of a few dozen neighbouring cells leave its shape to the cells.
MAX_BALANCED_CELLS = 20_000


@dataclass
class Zones:
    """Opportunity zones: ``polygons`` (one row per zone), ``labels`` (zone id per
    candidate, 0 outside every zone) and ``report`` for run.json."""

    polygons: gpd.GeoDataFrame
    labels: pd.Series
    report: dict[str, Any]


@dataclass
class Territories:
    """Service territories: ``polygons`` (one row per territory), ``labels``
    (territory id per candidate) and ``report`` (balance figures for run.json)."""

    polygons: gpd.GeoDataFrame
    labels: pd.Series
    report: dict[str, Any]


def _xy(gdf: gpd.GeoDataFrame) -> np.ndarray:
    if gdf.crs is None or not gdf.crs.is_projected:
        msg = "clustering needs candidates in a projected, metric CRS (the study CRS)"
        raise InputError(msg)
    return np.column_stack([gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()])


def _spacing(xy: np.ndarray) -> float:
    if len(xy) < 2:
        return 1.0
    d = cKDTree(xy).query(xy, k=2, workers=-1)[0][:, 1]
    return float(np.median(d[d > 0])) if (d > 0).any() else 1.0


def _shapes(candidates: gpd.GeoDataFrame, spacing: float) -> np.ndarray:
    """Each candidate's area: its H3 cell, or a disc of half a spacing around a point."""
    if "cell" in candidates.columns:
        return np.asarray(gpd.GeoSeries(candidates["cell"]).values)
    return np.asarray(shapely.buffer(candidates.geometry.values, spacing / 2))


def _dissolve(shapes: np.ndarray, labels: np.ndarray, ids: np.ndarray, crs: Any) -> gpd.GeoSeries:
    """One union per id of the shapes carrying it.

    H3 cells tile the plane edge to edge, so their coverage union is exact and
    an order of magnitude faster than a general union; overlapping shapes
    (discs around user premises) show as a union smaller than the parts and
    take the general union instead.
    """
    order = np.argsort(labels, kind="stable")
    lo = np.searchsorted(labels[order], ids, side="left")
    hi = np.searchsorted(labels[order], ids, side="right")
    geoms = []
    for a, b in zip(lo, hi, strict=True):  # one union per zone or territory
        parts = shapes[order[a:b]]
        merged = shapely.coverage_union_all(parts)
        if not np.isclose(shapely.area(merged), shapely.area(parts).sum(), rtol=1e-9, atol=1e-6):
            merged = shapely.union_all(parts)
        geoms.append(merged)
    return gpd.GeoSeries(geoms, crs=crs)


def opportunity_zones(candidates: gpd.GeoDataFrame, *, score_column: str = "score",
                      quantile: float = 0.9, method: Literal["dbscan", "hdbscan"] = "dbscan",
                      eps_m: float | None = None, min_samples: int = 4) -> Zones:
    """Clusters of high-scoring candidates as polygons.

    Parameters
    ----------
    candidates
        Scored candidates in the study CRS (with ``cell`` polygons when H3).
    score_column
        The score to threshold.
    quantile
        Candidates scoring at or above this quantile take part (0.9 = the top 10 %).
    method
        ``"dbscan"`` (fixed reach ``eps_m``) or ``"hdbscan"`` (adapts to
        density; ``min_samples`` is then the smallest zone).
    eps_m
        DBSCAN reach; 1.5 candidate spacings when None.
    min_samples
        Sites a zone needs around a core site (DBSCAN), or its smallest size.

    Returns
    -------
    Zones
        ``polygons``: ``zone_id`` (1 = the zone with the best site),
        ``n_sites``, ``area_m2``, ``best_site``, ``best_score``,
        ``mean_score``, ``geometry``.
    """
    if score_column not in candidates.columns:
        msg = f"opportunity zones: no {score_column!r} column; score the candidates first"
        raise InputError(msg)
    if not 0 <= quantile < 1:
        msg = f"quantile = {quantile!r}; use a share in [0, 1), e.g. 0.8 for the top 20 %"
        raise InputError(msg)
    xy = _xy(candidates)
    spacing = _spacing(xy)
    scores = candidates[score_column].to_numpy(dtype=float)
    high = np.flatnonzero(scores >= np.quantile(scores, quantile))
    # DBSCAN gives a border point to the first cluster that reaches it: fix the order by site id
    high = high[np.argsort(candidates.index.astype(str).to_numpy()[high], kind="stable")]
    reach = float(eps_m) if eps_m is not None else 1.5 * spacing
    raw = np.full(len(candidates), -1)
    raw[high] = _cluster(xy[high], method=method, reach=reach, min_samples=min_samples)
    labels, best = _number_by_best(raw, scores, candidates.index.astype(str).to_numpy())
    zone_ids = np.arange(1, len(best) + 1)
    s = pd.Series(scores)
    grp = s.groupby(labels)
    polys = _dissolve(_shapes(candidates, spacing), labels, zone_ids, candidates.crs)
    table = gpd.GeoDataFrame({
        "zone_id": zone_ids,
        "n_sites": grp.size().reindex(zone_ids).to_numpy(dtype=int),
        "area_m2": polys.area.round(1).to_numpy(),
        "best_site": candidates.index.to_numpy()[best],
        "best_score": scores[best],
        "mean_score": grp.mean().reindex(zone_ids).to_numpy(),
    }, geometry=polys.to_numpy(), crs=candidates.crs)
    report = {"method": method, "quantile": quantile, "score_threshold": float(np.quantile(scores, quantile)),
              "eps_m": round(reach, 1) if method == "dbscan" else None, "min_samples": min_samples,
              "n_zones": len(zone_ids), "sites_in_zones": int((labels > 0).sum())}
    return Zones(table, pd.Series(labels, index=candidates.index, name="zone"), report)


def _cluster(xy: np.ndarray, *, method: str, reach: float, min_samples: int) -> np.ndarray:
    """Cluster labels of the points ``xy`` (-1 for noise; all noise when too few to cluster)."""
    if method not in ("dbscan", "hdbscan"):
        msg = f"method = {method!r}; use 'dbscan' or 'hdbscan'"
        raise InputError(msg)
    if len(xy) < max(min_samples, 2):
        return np.full(len(xy), -1)
    if method == "dbscan":
        return _dbscan(xy, reach=reach, min_samples=min_samples)
    from sklearn.cluster import HDBSCAN  # scikit-learn loads only for HDBSCAN

    return np.asarray(HDBSCAN(min_cluster_size=max(min_samples, 2), copy=True).fit_predict(xy))


def _dbscan(xy: np.ndarray, *, reach: float, min_samples: int) -> np.ndarray:
    """DBSCAN (Ester et al. 1996) labels of ``xy``, numbered as scikit-learn's ``DBSCAN`` does.

    A core point has at least ``min_samples`` points (itself included) within
    ``reach`` (boundary included); a cluster is a connected set of core points
    within ``reach`` of each other, numbered in the order of its first core
    point; a border point joins the first numbered cluster with a core point in
    reach; the rest are noise (-1). Here from one KD-tree's pairs and
    ``connected_components``, so a run needs no scikit-learn import (1 s).
    """
    n = len(xy)
    pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray").reshape(-1, 2)
    core = 1 + np.bincount(pairs.ravel(), minlength=n) >= min_samples
    linked = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
    graph = sparse.coo_matrix((np.ones(len(linked)), (linked[:, 0], linked[:, 1])), shape=(n, n))
    comp = connected_components(graph, directed=False)[1]
    core_at = np.flatnonzero(core)
    comps, first = np.unique(comp[core_at], return_index=True)  # first: its lowest core point
    number = np.empty(len(comps), dtype=np.intp)
    number[np.argsort(first, kind="stable")] = np.arange(len(comps))
    labels = np.full(n, -1, dtype=np.intp)
    labels[core_at] = number[np.searchsorted(comps, comp[core_at])]
    edge = pairs[core[pairs[:, 0]] != core[pairs[:, 1]]]
    border = np.where(core[edge[:, 0]], edge[:, 1], edge[:, 0])
    of_core = labels[np.where(core[edge[:, 0]], edge[:, 0], edge[:, 1])]
    best = np.full(n, n, dtype=np.intp)
    np.minimum.at(best, border, of_core)
    reached = best < n
    labels[reached] = best[reached]
    return labels


def _number_by_best(raw: np.ndarray, scores: np.ndarray,
                    site_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zones numbered 1.. by their best site (score, then site id), so ids do not depend on
    input order: each candidate's zone (0 outside any), and each zone's best candidate."""
    ids = np.unique(raw[raw >= 0])
    member = np.flatnonzero(raw >= 0)
    by_score = member[np.lexsort((-scores[member], raw[member]))]
    best_pos = by_score[np.searchsorted(raw[by_score], ids)].astype(int)
    order = np.lexsort((site_ids[best_pos], -scores[best_pos])) if len(ids) else np.array([], dtype=int)
    new_id = np.zeros(int(ids.max()) + 2 if len(ids) else 1, dtype=int)
    new_id[ids[order] + 1] = np.arange(1, len(ids) + 1)
    return new_id[raw + 1], best_pos[order]


def connectivity_graph(candidates: gpd.GeoDataFrame, *, n_neighbors: int = 6,
                       reach: float = 1.5) -> sparse.csr_matrix:
    """Symmetric sparse graph of neighbouring candidates, weighted by distance in metres.

    Each candidate links to its ``n_neighbors`` nearest within ``reach``
    spacings. Separate pieces (islands of candidates) are then bridged at
    their closest pair, so every territory can reach every cell.
    """
    xy = _xy(candidates)
    return _connectivity(xy, _spacing(xy), n_neighbors=n_neighbors, reach=reach)


def _connectivity(xy: np.ndarray, spacing: float, *, n_neighbors: int,
                  reach: float) -> sparse.csr_matrix:
    n = len(xy)
    k = min(n_neighbors + 1, n)
    d, j = cKDTree(xy).query(xy, k=k, workers=-1)
    d, j = d.reshape(n, k)[:, 1:], j.reshape(n, k)[:, 1:]
    keep = d <= reach * spacing
    rows = np.repeat(np.arange(n), k - 1)[keep.ravel()]
    g = sparse.coo_matrix((np.maximum(d[keep], 1e-6), (rows, j[keep])), shape=(n, n)).tocsr()
    g = g.maximum(g.T).tocsr()
    return _bridge(g, xy)


def _bridge(g: sparse.csr_matrix, xy: np.ndarray) -> sparse.csr_matrix:
    """Join separate pieces of ``g`` by the shortest links that connect them all.

    The Euclidean minimum spanning tree lies within the Delaunay triangulation,
    so the triangulation's edges between pieces, reduced to a spanning tree
    over the pieces, are the shortest bridges.
    """
    n_comp, comp = connected_components(g, directed=False)
    if n_comp == 1:
        return g
    if len(xy) < 4:
        a, b = np.triu_indices(len(xy), 1)
    else:
        tri = Delaunay(xy, qhull_options="QJ")  # joggle: grids are degenerate for qhull
        s = tri.simplices
        pairs = np.sort(np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]]), axis=1)
        a, b = np.unique(pairs, axis=0).T
    across = comp[a] != comp[b]
    a, b = a[across], b[across]
    length = np.maximum(np.hypot(*(xy[a] - xy[b]).T), 1e-6)
    order = np.argsort(length, kind="stable")
    a, b, length = a[order], b[order], length[order]
    ca, cb = np.minimum(comp[a], comp[b]), np.maximum(comp[a], comp[b])
    _, first = np.unique(ca * n_comp + cb, return_index=True)  # shortest link per pair of pieces
    a, b, length, ca, cb = a[first], b[first], length[first], ca[first], cb[first]
    tree = minimum_spanning_tree(sparse.coo_matrix((length, (ca, cb)), shape=(n_comp, n_comp))).tocoo()
    picked = np.minimum(tree.row, tree.col) * n_comp + np.maximum(tree.row, tree.col)
    keep = np.isin(ca * n_comp + cb, picked)
    n = g.shape[0]
    links = sparse.coo_matrix((length[keep], (a[keep], b[keep])), shape=(n, n)).tocsr()
    return (g + links + links.T).tocsr()


def _seed_nodes(candidates: gpd.GeoDataFrame, seeds: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    xy = _xy(candidates)
    if seeds.crs is not None and candidates.crs is not None and seeds.crs != candidates.crs:
        seeds = seeds.to_crs(candidates.crs)
    sxy = np.column_stack([seeds.geometry.x.to_numpy(), seeds.geometry.y.to_numpy()])
    node = cKDTree(xy).query(sxy)[1]
    label_col = next((c for c in ("label", "site_id", "name") if c in seeds.columns), None)
    names = (seeds[label_col].astype(str).to_numpy() if label_col
             else np.array([f"seed {i + 1}" for i in range(len(seeds))], dtype=object))
    _, first = np.unique(node, return_index=True)
    if len(first) < len(node):
        warnings.warn(f"{len(node) - len(first)} territory seed(s) share a candidate cell with another "
                      "seed and are merged into it", UserWarning, stacklevel=3)
    first = np.sort(first)
    return node[first], names[first]


def territories(candidates: gpd.GeoDataFrame, *, demand: str | pd.Series = "foot_traffic",
                seeds: gpd.GeoDataFrame | None = None, n_territories: int | None = None,
                n_neighbors: int = 6, max_iter: int = 300, tolerance: float = 0.05,
                max_cells: int | None = MAX_BALANCED_CELLS) -> Territories:
    """Contiguous, demand-balanced service territories over the candidate cells.

    Parameters
    ----------
    candidates
        Candidates in the study CRS (with ``cell`` polygons when H3).
    demand
        A column of ``candidates`` or a Series on their index; values >= 0
        (foot traffic by default).
    seeds
        Points each territory is built around, e.g. the own branches plus the
        selected sites; a ``label``, ``site_id`` or ``name`` column names them.
    n_territories
        Without seeds: how many territories to draw (agglomerative seeds).
    n_neighbors
        Neighbours per cell in the connectivity graph.
    max_iter, tolerance
        Balancing stops when every territory's demand is within ``tolerance``
        of the mean, or after ``max_iter`` rounds (the best round is kept).
    max_cells
        With more candidates than this, neighbouring cells are grouped into
        connected blocks first and the blocks are balanced (each seed keeps a
        block of its own cell); ``report["coarsened"]`` says how. None never
        groups.

    Returns
    -------
    Territories
        ``polygons``: ``territory_id``, ``seed``, ``seed_site``, ``n_cells``,
        ``demand``, ``demand_share``, ``area_m2``, ``geometry``.
    """
    n = len(candidates)
    weights = _demand_weights(candidates, demand)
    xy = _xy(candidates)
    spacing = _spacing(xy)
    graph = _connectivity(xy, spacing, n_neighbors=n_neighbors, reach=1.5)
    nodes = np.zeros(0, dtype=int)
    if seeds is not None and len(seeds):
        nodes, names = _seed_nodes(candidates, seeds)
    elif n_territories is None or not 1 <= n_territories <= n:
        msg = (f"territories: n_territories = {n_territories!r}; give seeds (branches and sites) "
               f"or a number of territories from 1 to {n}")
        raise InputError(msg)
    # Balancing is scale-free: work in shares of the busiest cell so sums never overflow.
    scaled = weights / weights.max()
    blocks = _Blocks.build(graph, xy, nodes, spacing=spacing, max_cells=max_cells)
    if not len(nodes) and n_territories is not None:
        nodes = blocks.representative(_agglomerative_seeds(blocks.xy, blocks.graph,
                                                           blocks.total(scaled), n_territories))
        names = candidates.index.to_numpy()[nodes].astype(str)
    block_labels, offsets, plain = _balance(
        blocks.graph, blocks.total(scaled), blocks.group[nodes], max_iter=max_iter,
        tolerance=tolerance, step=blocks.spacing)
    labels = block_labels[blocks.group]
    out = _territory_table(candidates, labels, weights, nodes, names, offsets, spacing)
    out.report["unbalanced_max_over_mean"] = round(plain, 4)
    out.report["largest_cell_over_mean"] = round(float(scaled.max() / (scaled.sum() / len(nodes))), 4)
    out.report["coarsened"] = blocks.report
    return out


def _demand_weights(candidates: gpd.GeoDataFrame, demand: str | pd.Series) -> np.ndarray:
    """Demand per candidate, checked finite, >= 0 and summable (ones when all zero)."""
    w = candidates[demand] if isinstance(demand, str) and demand in candidates.columns else demand
    if isinstance(w, str):
        msg = f"territories: no demand column {w!r}; give a column of candidates or a Series"
        raise InputError(msg)
    weights = pd.Series(w).reindex(candidates.index).to_numpy(dtype=float)
    if not np.isfinite(weights).all() or (weights < 0).any():
        msg = "territories: demand must be a finite number >= 0 for every candidate"
        raise InputError(msg)
    with np.errstate(over="ignore"):
        total = weights.sum()
    if not np.isfinite(total):
        msg = (f"territories: the demand sums past the largest number a float holds (the largest "
               f"cell has {weights.max():.3g}); give demand in people or visits per day")
        raise InputError(msg)
    return weights if total > 0 else np.ones(len(weights))


@dataclass
class _Blocks:
    """Cells grouped into connected blocks for balancing (one block per cell when small).

    ``group`` maps each cell to its block; ``graph`` links blocks that hold
    neighbouring cells, weighted by the distance between block centres, so a
    block territory is contiguous and so is its union of cells.
    """

    group: np.ndarray
    graph: sparse.csr_matrix
    xy: np.ndarray
    spacing: float
    report: dict[str, Any] | None
    cell_xy: np.ndarray

    @classmethod
    def build(cls, graph: sparse.csr_matrix, xy: np.ndarray, seeds: np.ndarray, *,
              spacing: float, max_cells: int | None) -> _Blocks:
        n = len(xy)
        if max_cells is None or n <= max_cells:
            return cls(np.arange(n), graph, xy, spacing, None, xy)
        size = spacing * np.sqrt(n / max_cells)
        coo = graph.tocoo()
        while True:  # square bins, split into their connected pieces; widen until few enough
            ij = np.floor((xy - xy.min(axis=0)) / size).astype(np.int64)
            bins = ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1]
            bins[seeds] = -1 - np.arange(len(seeds))  # each seed's cell is a block of its own
            inside = bins[coo.row] == bins[coo.col]
            pieces = sparse.coo_matrix((np.ones(int(inside.sum())), (coo.row[inside], coo.col[inside])),
                                       shape=(n, n))
            m, group = connected_components(pieces, directed=False)
            if m <= max_cells:
                break
            size *= 1.25
        count = np.bincount(group, minlength=m)
        centre = np.column_stack([np.bincount(group, weights=xy[:, k], minlength=m)
                                  for k in (0, 1)]) / count[:, None]
        across = group[coo.row] != group[coo.col]
        links = sparse.coo_matrix((np.ones(int(across.sum())), (group[coo.row][across],
                                   group[coo.col][across])), shape=(m, m)).tocsr()
        rows = np.repeat(np.arange(m), np.diff(links.indptr))
        links.data = np.maximum(np.hypot(*(centre[rows] - centre[links.indices]).T), 1e-6)
        report = {"cells": n, "blocks": int(m), "block_size_m": round(float(size), 1),
                  "reason": f"more than {max_cells} candidates: territories are balanced on "
                            "blocks of neighbouring cells, then every cell takes its block's territory"}
        return cls(group, links, centre, _spacing(centre), report, xy)

    def total(self, weights: np.ndarray) -> np.ndarray:
        """Sum of a per-cell quantity per block."""
        return np.bincount(self.group, weights=weights, minlength=self.graph.shape[0])

    def representative(self, blocks: np.ndarray) -> np.ndarray:
        """For each block, the cell nearest its centre."""
        d = np.hypot(*(self.cell_xy - self.xy[self.group]).T)
        order = np.lexsort((d, self.group))
        first = order[np.searchsorted(self.group[order], blocks)]
        return np.sort(first)

def _agglomerative_seeds(xy: np.ndarray, graph: sparse.csr_matrix, weights: np.ndarray,
                         k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering  # scikit-learn loads only without seeds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lab = AgglomerativeClustering(n_clusters=k, connectivity=graph, linkage="ward").fit_predict(xy)
    seeds = []
    for c in range(k):  # one medoid per territory
        idx = np.flatnonzero(lab == c)
        w = weights[idx] + 1e-12
        centre = (xy[idx] * w[:, None]).sum(axis=0) / w.sum()
        seeds.append(idx[np.argmin(((xy[idx] - centre) ** 2).sum(axis=1))])
    return np.sort(np.asarray(seeds, dtype=int))


#: The most (seed, cell) distances :class:`_SeedSearch` keeps (8 bytes each: 16 MB).
_SEED_TABLE_MAX = 2_000_000


class _SeedSearch:
    """For every cell, the seed minimising graph distance + offset (index into ``nodes``).

    The reference is one Dijkstra from a virtual source joined to each seed by an edge
    of its offset (memory O(cells) however many seeds; no edge leads back to it); the
    graph with the source is built once, a round only rewrites the source's edges.
    When the (seed, cell) distances fit in :data:`_SEED_TABLE_MAX`, they are found once
    (one Dijkstra per seed, same graph) and a round is their argmin plus the offsets: the
    Dijkstra's labels whenever every cell's best seed beats the second by more than the
    rounding both sums can carry (:meth:`_from_table`); a closer round runs the Dijkstra.
    """

    def __init__(self, graph: sparse.csr_matrix, nodes: np.ndarray) -> None:
        n, s = graph.shape[0], len(nodes)
        # Edge weights must be > 0 for csgraph to see an edge.
        extra = sparse.csr_matrix((np.full(s, 1e-6), (np.full(s, n), nodes)), shape=(n + 1, n + 1))
        self.big = sparse.bmat([[graph, None], [None, sparse.csr_matrix((1, 1))]]).tocsr() + extra
        start = self.big.indptr[n]
        self.source_edges = start + np.searchsorted(self.big.indices[start:self.big.indptr[n + 1]],
                                                    nodes)
        self.nodes = nodes
        self.table: np.ndarray | None = None
        if 1 < s and s * n <= _SEED_TABLE_MAX:
            table = dijkstra(self.big, directed=True, indices=nodes)[:, :n]
            self.table = table if np.isfinite(table).all() else None
        self.table_rounds = 0

    def __call__(self, offsets: np.ndarray) -> np.ndarray:
        labels = None if self.table is None else self._from_table(offsets)
        self.table_rounds += labels is not None
        return self._search(offsets) if labels is None else labels

    def _from_table(self, offsets: np.ndarray) -> np.ndarray | None:
        """The labels from the table, or None if a cell's best two seeds are within rounding.

        A float sum of ``k`` positive terms is within ``k`` roundoff units (relative) of
        the exact one and a simple path has at most ``cells`` edges: a margin over
        ``4 (cells + 2) eps`` times the two totals ranks the seeds as the Dijkstra does."""
        assert self.table is not None
        n, s = self.table.shape[1], len(self.nodes)
        total = self.table + (offsets + 1e-6)[:, None]
        best = total.min(axis=0)
        hit = total == best  # whole-row operations: a reduction along the seeds is strided
        second = np.where(hit, np.inf, total).min(axis=0)
        close = (hit.sum(axis=0) > 1) | ((second - best) <= 4.0 * (n + 2) * np.finfo(float).eps
                                         * (best + second))
        close[self.nodes] = False  # a seed's own cell is its own, whatever the distances
        if close.any():
            return None
        labels = (hit * np.arange(s)[:, None]).sum(axis=0)  # the one seed at the minimum
        labels[self.nodes] = np.arange(s)
        return labels

    def _search(self, offsets: np.ndarray) -> np.ndarray:
        n, s, nodes = self.big.shape[0] - 1, len(self.nodes), self.nodes
        self.big.data[self.source_edges] = offsets + 1e-6
        _, pred = dijkstra(self.big, directed=True, indices=n, return_predecessors=True)
        pred = pred[:n]
        root = np.where(pred == n, np.arange(n), pred)
        while True:  # pointer jumping: halves every path per pass, about log2(depth) passes
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        which = np.full(n, -1)
        which[nodes] = np.arange(s)
        labels = which[root]
        labels[nodes] = np.arange(s)
        return labels


def _balance(graph: sparse.csr_matrix, weights: np.ndarray, nodes: np.ndarray, *, max_iter: int,
             tolerance: float, step: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Assign cells to argmin(distance + offset), raising the offsets of heavy territories.

    Returns the best labels and offsets, and the max/mean demand with no offsets
    (the plain graph Voronoi) for comparison.
    """
    s = len(nodes)
    target = weights.sum() / s
    offsets = np.zeros(s)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    plain = 1.0
    nearest_seed = _SeedSearch(graph, nodes)
    for it in range(max_iter):  # each round is one Dijkstra over the cells
        labels = nearest_seed(offsets)
        load = np.bincount(labels, weights=weights, minlength=s)
        dev = float(np.max(np.abs(load / target - 1.0)))
        if it == 0:
            plain = float(load.max() / target)
        if best is None or dev < best[0]:
            best = (dev, labels.copy(), offsets.copy())
        if dev <= tolerance:
            break
        # Steps shrink over the rounds so the offsets settle instead of oscillating.
        offsets += 4.0 * step * (load / target - 1.0) / np.sqrt(it + 1.0)
        offsets -= offsets.min()
    assert best is not None
    return best[1], best[2], plain


def _territory_table(candidates: gpd.GeoDataFrame, labels: np.ndarray, weights: np.ndarray,
                     nodes: np.ndarray, names: np.ndarray, offsets: np.ndarray,
                     spacing: float) -> Territories:
    s = len(nodes)
    ids = np.arange(1, s + 1)
    lab = labels + 1
    polys = _dissolve(_shapes(candidates, spacing), lab, ids, candidates.crs)
    load = np.bincount(labels, weights=weights, minlength=s)
    table = gpd.GeoDataFrame({
        "territory_id": ids,
        "seed": names,
        "seed_site": candidates.index.to_numpy()[nodes],
        "n_cells": np.bincount(labels, minlength=s),
        "demand": load,
        "demand_share": load / load.sum(),
        "area_m2": polys.area.round(1).to_numpy(),
    }, geometry=polys.to_numpy(), crs=candidates.crs)
    ratio = load / load.mean()  # in ratios, so a vast demand cannot overflow the spread
    report = {
        "n_territories": s,
        "demand_max_over_mean": round(float(ratio.max()), 4),
        "demand_min_over_mean": round(float(ratio.min()), 4),
        "demand_cv": round(float(ratio.std()), 4),
        "offsets_m": [round(float(o), 1) for o in offsets],
    }
    return Territories(table, pd.Series(lab, index=candidates.index, name="territory"), report)
