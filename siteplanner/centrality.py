"""Street-network centrality at pedestrian radii: where short walking paths run.

Pedestrian flow follows the street grid's configuration: streets that many
short trips pass through, and streets close to many others, carry more people
(Hillier et al. 1993, "Natural movement", *Environment and Planning B* 20;
space syntax's local "choice" and "integration"). This module measures, for
every node of a walking graph and each radius ``r`` (metres along the
streets):

* ``harmonic_<r>``: harmonic closeness, the sum of ``1 / d`` over the nodes
  within ``r`` (Boldi & Vigna 2014; robust on disconnected graphs);
* ``reach_<r>``: the nodes within ``r`` (a measure of street density);
* ``betweenness_<r>``: the ordered pairs of nodes within ``r`` of each other
  whose shortest path passes through the node (Brandes 2001, restricted to
  pairs closer than ``r``, as cityseer and space syntax's radius-``r`` choice do;
  with one shortest path per pair, ties broken by Dijkstra's order).

It is plain ``scipy.sparse.csgraph``: the graph is cut into square tiles, and
the sources of one tile run one bounded Dijkstra on the subgraph within
``max(radii)`` of the tile (a path shorter than ``r`` never leaves the disc of
radius ``r`` around its source, so the subgraph holds every path that counts).
Betweenness sums the descendants of each node in every source's shortest-path
tree, level by level. ``benchmarks/bench_demand.py`` compares it with
cityseer and networkx on the same graph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from siteplanner._errors import InputError

if TYPE_CHECKING:
    from siteplanner.network import WalkGraph

__all__ = ["DEFAULT_RADII", "network_centrality", "walk_centrality"]

log = logging.getLogger(__name__)

#: Pedestrian radii in metres: 400 m is a five-minute walk, 800 m ten minutes,
#: the two catchments of urban design (e.g. the "pedestrian shed", Calthorpe 1993).
DEFAULT_RADII: tuple[float, ...] = (400.0, 800.0)

#: Most distance-matrix entries one Dijkstra batch may hold (memory bound).
_BATCH_ENTRIES = 6_000_000


def network_centrality(csgraph: sp.spmatrix | sp.sparray, xy: np.ndarray, *,
                       radii: Sequence[float] = DEFAULT_RADII,
                       tile_m: float | None = None) -> pd.DataFrame:
    """Harmonic closeness, reach and betweenness of every node at each radius.

    Parameters
    ----------
    csgraph
        Symmetric sparse matrix of edge lengths in metres (as
        :attr:`siteplanner.network.WalkGraph.csgraph`).
    xy
        Node coordinates in metres, shape (n, 2), in the same order.
    radii
        Radii in metres along the network.
    tile_m
        Side of the source tiles; default half the largest radius.

    Returns
    -------
    DataFrame
        One row per node (position order), columns ``harmonic_<r>``,
        ``reach_<r>``, ``betweenness_<r>`` for each radius (``r`` in whole metres).
    """
    g = sp.csr_matrix(csgraph, dtype=np.float64)
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = g.shape[0]
    rs = sorted({float(r) for r in radii})
    if not rs or rs[0] <= 0 or not np.isfinite(rs[-1]):
        msg = f"radii={list(radii)}: give positive radii in metres, e.g. (400, 800)"
        raise InputError(msg)
    if pts.shape[0] != n:
        msg = f"xy: {pts.shape[0]} coordinates for a graph of {n} nodes"
        raise InputError(msg)
    r_max = rs[-1]
    tile = float(tile_m) if tile_m else r_max / 2
    out = {f"{k}_{r:g}": np.zeros(n) for r in rs for k in ("harmonic", "reach", "betweenness")}
    if n == 0:
        return pd.DataFrame(out)
    cell = np.floor((pts - pts.min(axis=0)) / tile).astype(np.int64)
    key = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for sources in np.split(order, bounds):
        _tile(g, pts, sources, rs, out)
    log.info("centrality: %d nodes, radii %s, %d tiles", n, rs, len(bounds) + 1)
    return pd.DataFrame(out)


def walk_centrality(graph: WalkGraph, *, radii: Sequence[float] = DEFAULT_RADII) -> pd.DataFrame:
    """:func:`network_centrality` of a walking graph, measured at its street junctions.

    Most street nodes only bend a street. Centrality is measured on the
    junctions (nodes of degree other than 2) with each chain of bends folded
    into one edge of the same length (the graph's own chain contraction), so
    the shortest paths are the same and the work is a fraction; every bend
    node then takes the values of the nearer end of its chain.

    Returns
    -------
    DataFrame
        One row per graph node (position order, as :attr:`WalkGraph.node_ids`).
    """
    chains = graph._chains
    junction = network_centrality(chains.csgraph, graph.xy[chains.junctions], radii=radii)
    n = graph.n_nodes
    take = chains.junction_index.copy()
    bend = take < 0
    nearer = np.argmin(chains.end_offset[bend], axis=1)
    take[bend] = chains.ends[bend][np.arange(int(bend.sum())), nearer]
    out = junction.iloc[take].reset_index(drop=True)
    out.index = pd.RangeIndex(n)
    return out


def _tile(g: sp.csr_matrix, pts: np.ndarray, sources: np.ndarray, rs: list[float],
          out: dict[str, np.ndarray]) -> None:
    """Centrality contributions of the paths that start at ``sources``."""
    r_max = rs[-1]
    lo, hi = pts[sources].min(axis=0) - r_max, pts[sources].max(axis=0) + r_max
    inside = np.flatnonzero(((pts >= lo) & (pts <= hi)).all(axis=1))
    sub = g[inside][:, inside]
    local = np.searchsorted(inside, sources)
    step = max(1, _BATCH_ENTRIES // max(len(inside), 1))
    for start in range(0, len(local), step):
        batch = local[start:start + step]
        # the graph is symmetric: directed=True finds the same paths without
        # scipy building the transpose on every call
        dist, pred = dijkstra(sub, directed=True, indices=batch, limit=r_max,
                              return_predecessors=True)
        reached = dist > 0
        reached &= np.isfinite(dist)
        row, col = np.nonzero(reached)
        _accumulate(out, rs, inside[batch][row], inside[col], dist[row, col], row, col,
                    pred[row, col], dist.shape)


def _accumulate(out: dict[str, np.ndarray], rs: list[float], src: np.ndarray, dst: np.ndarray,
                d: np.ndarray, row: np.ndarray, col: np.ndarray, parent: np.ndarray,
                shape: tuple[int, int]) -> None:
    """Add one batch's closeness and betweenness at every radius.

    ``src``/``dst`` are the global nodes of each reached (source, target) pair,
    ``row``/``col``/``parent`` its place in the batch's Dijkstra arrays.
    """
    n_out = len(out[f"reach_{rs[0]:g}"])
    inv = 1.0 / d
    within = [d <= r for r in rs]
    for r, w in zip(rs, within, strict=True):
        out[f"harmonic_{r:g}"] += np.bincount(src[w], weights=inv[w], minlength=n_out)
        out[f"reach_{r:g}"] += np.bincount(src[w], minlength=n_out)
    m = len(d)
    if m == 0:
        return
    # the pair (row, parent) as an index into the pair arrays; -1 where the parent is the source
    where = np.full(shape, -1, dtype=np.int32)
    where[row, col] = np.arange(m, dtype=np.int32)
    up = where[row, parent]
    del where
    # hop depth by pointer jumping: log2 of the deepest path in passes
    depth = np.ones(m, dtype=np.int32)
    anc = up.copy()
    live = np.flatnonzero(anc >= 0)
    while len(live):
        a = anc[live]
        depth[live] += depth[a]
        anc[live] = anc[a]
        live = live[anc[live] >= 0]
    # descendants in each source's tree, deepest level first; a child beyond r
    # does not count at r, and its own subtree lies beyond r too
    desc = np.zeros((len(rs), m))
    weight = np.vstack(within).astype(np.float64)
    # radix sort on small integers: O(m)
    key = (depth.max() - depth).astype(np.int16 if depth.max() < 2**15 else np.int32)
    by_depth = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(depth[by_depth])) + 1
    for level in np.split(by_depth, cuts):
        lv = level[up[level] >= 0]
        if len(lv):
            parents = up[lv]
            for k in range(len(rs)):
                np.add.at(desc[k], parents, (desc[k, lv] + 1.0) * weight[k, lv])
    for k, r in enumerate(rs):
        out[f"betweenness_{r:g}"] += np.bincount(dst, weights=desc[k], minlength=n_out)
