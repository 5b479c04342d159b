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
tree, level by level.

A radius at which each node reaches many others is measured from a spatially
even sample of sources, scaled by ``n / k`` (Brandes & Pich 2007), so that
each node still sees about :data:`SAMPLE_SOURCES` sampled sources within the
radius; closeness below :data:`NEAR_M` stays exact. ``sample_sources=None``
measures every radius exactly. ``benchmarks/bench_demand.py`` compares both
with cityseer and networkx on the same graph.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from siteplanner._boxes import BoxIndex
from siteplanner._chains import induced
from siteplanner._errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from siteplanner.network import WalkGraph

__all__ = [
    "DEFAULT_RADII",
    "SAMPLE_SOURCES",
    "at_every_node",
    "centrality_arrays",
    "centrality_frame",
    "junction_inputs",
    "network_centrality",
    "sample_fraction",
    "stratified_sample",
    "walk_centrality",
    "work_mib",
]

log = logging.getLogger(__name__)

#: Pedestrian radii in metres: 400 m is a five-minute walk, 800 m ten minutes,
#: the two catchments of urban design (e.g. the "pedestrian shed", Calthorpe 1993).
DEFAULT_RADII: tuple[float, ...] = (400.0, 800.0)

#: Sampled sources each node should see within a radius before that radius is
#: estimated from a sample of sources: the error at a node falls as
#: 1/sqrt(sources), so 100 gives about 10 % (see :func:`sample_fraction`).
SAMPLE_SOURCES = 100

#: Below this distance (metres) closeness is always summed exactly, from every
#: source: the nearest nodes carry the largest ``1/d`` terms, so sampling them
#: would dominate the estimate's error. 100 m is about one block.
NEAR_M = 100.0

#: Most distance-matrix entries one Dijkstra batch may hold (memory bound: with its
#: predecessors and the pairs drawn from it, about 60 bytes an entry).
_BATCH_ENTRIES = 2_000_000

#: A centrality run's own memory (MiB) beside its inputs, for one Dijkstra batch of
#: :data:`_BATCH_ENTRIES`: the dense distances (8 bytes an entry), predecessors (4) and pair
#: index (4), and the reached pairs' arrays, a few bytes an entry on the average (most of a
#: tile's box lies beyond the radius). See :func:`work_mib`.
_BATCH_MIB = _BATCH_ENTRIES * 20 / 2**20


def work_mib(n_nodes: int, radii: Sequence[float] = DEFAULT_RADII) -> float:
    """The memory (MiB) :func:`network_centrality` takes of its own beside its inputs: a
    Dijkstra batch's arrays and three float columns per radius."""
    return _BATCH_MIB + n_nodes * 8 * 3 * len(radii) / 2**20


#: Grid cell (metres) of the node index the tiles' boxes are read from: well under a radius.
_BOX_CELL_M = 100.0


def network_centrality(csgraph: sp.spmatrix | sp.sparray, xy: np.ndarray, *,
                       radii: Sequence[float] = DEFAULT_RADII,
                       tile_m: float | None = None,
                       sample_sources: int | None = SAMPLE_SOURCES,
                       seed: int = 0) -> pd.DataFrame:
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
        Side of the source tiles; default half the radius of each pass.
    sample_sources
        Sources each node should see within a radius before that radius is
        estimated from a sample (see :func:`sample_fraction`); None measures
        every radius from every source (exact).
    seed
        Seed of the pilot and of the sample's random start.

    Returns
    -------
    DataFrame
        One row per node (position order), columns ``harmonic_<r>``,
        ``reach_<r>``, ``betweenness_<r>`` for each radius (``r`` in whole metres).
        ``DataFrame.attrs["sample_fraction"]`` gives the fraction of sources
        used at each radius (1.0 = exact).
    """
    return centrality_frame(*centrality_arrays(csgraph, xy, radii=radii, tile_m=tile_m,
                                               sample_sources=sample_sources, seed=seed))


def centrality_arrays(csgraph: sp.spmatrix | sp.sparray, xy: np.ndarray, *,
                      radii: Sequence[float] = DEFAULT_RADII,
                      tile_m: float | None = None,
                      sample_sources: int | None = SAMPLE_SOURCES,
                      seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """:func:`network_centrality`'s columns as arrays, and the source fraction of each
    radius: numpy and scipy only, so a second process measuring it need not load pandas
    (80 MiB of its own, more than the work takes)."""
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
    out = {f"{k}_{r:g}": np.zeros(n) for r in rs for k in ("harmonic", "reach", "betweenness")}
    frac = {r: 1.0 for r in rs}
    if n and sample_sources is not None:
        # a radius within the exact near band gains nothing from sampling
        frac = {r: 1.0 if r <= NEAR_M else sample_fraction(g, r, sample_sources=sample_sources,
                                                            seed=seed) for r in rs}
    if n:
        _passes(g, pts, frac, out, tile_m=tile_m, seed=seed)
    sampled = [r for r in rs if frac[r] < 1.0]
    if sampled and n:
        near = _near_harmonic(g, pts, NEAR_M)
        for r in sampled:
            out[f"harmonic_{r:g}"] += near
    log.info("centrality: %d nodes, radii %s, source fractions %s", n, rs, frac)
    return out, {f"{r:g}": round(frac[r], 4) for r in rs}


def centrality_frame(columns: dict[str, np.ndarray], fractions: dict[str, float]) -> pd.DataFrame:
    """The table of :func:`centrality_arrays`' answer, as :func:`network_centrality` gives it."""
    import pandas as pd

    df = pd.DataFrame(columns)
    df.attrs["sample_fraction"] = fractions
    return df


def _passes(g: sp.csr_matrix, pts: np.ndarray, frac: dict[float, float],
            out: dict[str, np.ndarray], *, tile_m: float | None, seed: int) -> None:
    """Add every radius's measures to ``out``, at its source fraction ``frac``.

    Radii measured from every source share one search (at the largest of
    them); each sampled radius runs its own search from its own sample.
    """
    n = g.shape[0]
    exact = [r for r in sorted(frac) if frac[r] == 1.0]
    passes = [(exact, 1.0)] + [([r], frac[r]) for r in sorted(frac) if frac[r] < 1.0]
    for group, p in passes:
        if not group:
            continue
        sources = (np.arange(n) if p == 1.0
                   else stratified_sample(pts, p, rng=np.random.default_rng(seed)))
        _pass(g, pts, sources, group, out, weight=n / len(sources),
              tile=float(tile_m) if tile_m else group[-1] / (2.0 if p == 1.0 else 1.0),
              near_m=NEAR_M if p < 1.0 else 0.0)


def sample_fraction(g: sp.csr_matrix, radius: float, *, sample_sources: int,
                    seed: int = 0, pilot: int = 128) -> float:
    """Fraction of sources that gives each node about ``sample_sources`` sampled sources within ``radius``.

    The mean reach at ``radius`` comes from a pilot of bounded searches from
    ``pilot`` random nodes. The fraction is ``sample_sources / mean reach``;
    a fraction above one half saves less than half the work for the noise it
    adds, so it becomes 1 (exact). Betweenness and closeness from sampled
    sources, scaled by ``n / k``, are unbiased (Brandes & Pich 2007,
    "Centrality estimation in large networks", *Int. J. Bifurcation and
    Chaos* 17); the error at a node falls as one over the square root of the
    sampled sources that reach it, so 100 (the default) gives about 10 %.
    """
    n = g.shape[0]
    if n <= pilot:
        return 1.0
    picks = np.random.default_rng(seed).choice(n, pilot, replace=False)
    # a few sources per call: each row is dense over the whole graph (a country's
    # 400k junctions x 128 pilots would be 400 MB at once)
    step = max(1, _BATCH_ENTRIES // n)
    reached = sum(int(np.isfinite(dijkstra(g, directed=True, indices=picks[i:i + step],
                                           limit=radius)).sum()) for i in range(0, pilot, step))
    mean_reach = reached / pilot - 1.0
    p = sample_sources / max(mean_reach, 1.0)
    return 1.0 if p > 0.5 else p


def stratified_sample(xy: np.ndarray, fraction: float, *, rng: np.random.Generator) -> np.ndarray:
    """Sources spread evenly in space: every ``1/fraction``-th node along a Z-order curve.

    Systematic sampling along a space-filling curve with a random start keeps
    the sample's density even at every scale, so every neighbourhood gets its
    share of sources (a plain random sample leaves holes at local radii).
    """
    q = np.floor(xy - xy.min(axis=0)).astype(np.int64)
    code = np.zeros(len(xy), dtype=np.int64)
    for bit in range(26):  # 26 bits of metres: 67,000 km, any study area
        code |= ((q[:, 0] >> bit) & 1) << (2 * bit)
        code |= ((q[:, 1] >> bit) & 1) << (2 * bit + 1)
    order = np.argsort(code, kind="stable")
    i = np.arange(len(xy)) * fraction + rng.random()
    take = np.floor(i + fraction) > np.floor(i)
    return np.sort(order[take])


def walk_centrality(graph: WalkGraph, *, radii: Sequence[float] = DEFAULT_RADII,
                    sample_sources: int | None = SAMPLE_SOURCES) -> pd.DataFrame:
    """:func:`network_centrality` of a walking graph, measured at its street junctions.

    Most street nodes only bend a street. Centrality is measured on the
    junctions (nodes of degree other than 2) with each chain of bends folded
    into one edge of the same length (the graph's own chain contraction), so
    the shortest paths are the same and the work is a fraction; every bend
    node then takes the values of the nearer end of its chain
    (:func:`junction_inputs`, :func:`at_every_node`: the two halves, for a
    second process given the junctions only).

    Returns
    -------
    DataFrame
        One row per graph node (position order, as :attr:`WalkGraph.node_ids`).
    """
    csgraph, xy = junction_inputs(graph)
    return at_every_node(graph, network_centrality(csgraph, xy, radii=radii,
                                                   sample_sources=sample_sources))


def junction_inputs(graph: WalkGraph) -> tuple[sp.csr_matrix, np.ndarray]:
    """The junctions' graph (chains of bends folded into edges, metres) and coordinates."""
    chains = graph._chains
    return sp.csr_matrix(chains.csgraph), graph.xy[chains.junctions]


def at_every_node(graph: WalkGraph, junction: pd.DataFrame) -> pd.DataFrame:
    """The junctions' centrality (:func:`network_centrality` of :func:`junction_inputs`)
    given to every node of the graph: a bend takes the values of its chain's nearer end."""
    import pandas as pd

    chains = graph._chains
    n = graph.n_nodes
    take = chains.junction_index.copy()
    bend = take < 0
    nearer = np.argmin(chains.end_offset[bend], axis=1)
    take[bend] = chains.ends[bend][np.arange(int(bend.sum())), nearer]
    out = junction.iloc[take].reset_index(drop=True)
    out.index = pd.RangeIndex(n)
    out.attrs = dict(junction.attrs)
    return out


def _near_harmonic(g: sp.csr_matrix, pts: np.ndarray, near_m: float) -> np.ndarray:
    """Exact harmonic closeness of every node over the nodes closer than ``near_m`` (from all sources)."""
    n = g.shape[0]
    h = np.zeros(n)
    cell = np.floor((pts - pts.min(axis=0)) / (4 * near_m)).astype(np.int64)
    key = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
    order = np.argsort(key, kind="stable")
    boxes = BoxIndex(pts, cell_m=near_m)
    for block in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        inside = boxes.within(pts[block].min(axis=0) - near_m, pts[block].max(axis=0) + near_m)
        d = dijkstra(_subgraph(g, inside), directed=True, indices=np.searchsorted(inside, block),
                     limit=near_m)
        d[~((d > 0) & (d < near_m))] = np.inf
        h[block] += (1.0 / d).sum(axis=1)
    return h


def _pass(g: sp.csr_matrix, pts: np.ndarray, sources: np.ndarray, rs: list[float],
          out: dict[str, np.ndarray], *, weight: float, tile: float, near_m: float) -> None:
    """Add the contributions of the paths from ``sources``, each counted ``weight`` times.

    Closeness counts only the pairs at ``near_m`` or more (the rest is exact, from
    :func:`_near_harmonic`).
    """
    cell = np.floor((pts[sources] - pts[sources].min(axis=0)) / tile).astype(np.int64)
    key = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    boxes = BoxIndex(pts, cell_m=_BOX_CELL_M)
    for block in np.split(sources[order], bounds):
        _tile(g, boxes, block, rs, out, weight, near_m)


def _subgraph(g: sp.csr_matrix, nodes: np.ndarray) -> sp.csr_matrix:
    """``g[nodes][:, nodes]`` for sorted ``nodes``, without scipy's fancy-indexing set-up."""
    indptr, indices, data = induced(g, nodes)
    return sp.csr_matrix((data, indices, indptr), shape=(len(nodes), len(nodes)))


def _tile(g: sp.csr_matrix, boxes: BoxIndex, sources: np.ndarray, rs: list[float],
          out: dict[str, np.ndarray], weight: float, near_m: float) -> None:
    """Centrality contributions of the paths that start at ``sources``."""
    r_max = rs[-1]
    pts = boxes.xy
    inside = boxes.within(pts[sources].min(axis=0) - r_max, pts[sources].max(axis=0) + r_max)
    sub = _subgraph(g, inside)
    local = np.searchsorted(inside, sources)
    step = max(1, _BATCH_ENTRIES // max(len(inside), 1))
    for start in range(0, len(local), step):
        batch = local[start:start + step]
        # the graph is symmetric: directed=True finds the same paths without
        # scipy building the transpose on every call
        dist, pred = dijkstra(sub, directed=True, indices=batch, limit=r_max,
                              return_predecessors=True)
        # pairs by flat position in the dense (source, node) arrays: one index, not two
        n_in = dist.shape[1]
        flat = np.flatnonzero((dist > 0) & (dist < np.inf))
        row_at = flat - flat % n_in
        _accumulate(out, rs, inside, dist.ravel()[flat], flat, row_at, pred.ravel()[flat],
                    dist.size, weight, near_m)


def _accumulate(out: dict[str, np.ndarray], rs: list[float], inside: np.ndarray, d: np.ndarray,
                flat: np.ndarray, row_at: np.ndarray, parent: np.ndarray, size: int,
                weight: float, near_m: float) -> None:
    """Add one batch's closeness and betweenness at every radius, each path ``weight`` times.

    ``inside`` are the global nodes of the batch's columns (sorted); ``flat`` is
    the place of each reached (source, target) pair in the batch's dense
    Dijkstra arrays (of ``size`` entries), ``row_at`` where its source's row
    starts there and ``parent`` the target's predecessor (a column). On a
    symmetric graph a target's closeness is the sum over the sources that reach it, so closeness and reach are
    credited to the target: that is what a sample of sources can estimate for
    every node. Sums are taken over the batch's own nodes and then added to
    theirs in ``out`` (the same sums, in the same order, as over every node,
    but the work follows the batch, not the whole graph once per tile).
    """
    n_in = len(inside)
    col = flat - row_at
    inv = np.where(d >= near_m, weight / d, 0.0)
    within = [d <= r for r in rs]
    for r, w in zip(rs, within, strict=True):
        out[f"harmonic_{r:g}"][inside] += np.bincount(col[w], weights=inv[w], minlength=n_in)
        out[f"reach_{r:g}"][inside] += weight * np.bincount(col[w], minlength=n_in)
    m = len(d)
    if m == 0:
        return
    # the pair (row, parent) as an index into the pair arrays; -1 where the parent is the source
    where = np.full(size, -1, dtype=np.int32)
    where[flat] = np.arange(m, dtype=np.int32)
    up = where[row_at + parent]
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
    inr = np.vstack(within).astype(np.float64)
    # the pairs with a parent pair, deepest first (a radix sort on small integers: O(m))
    child = np.flatnonzero(up >= 0)
    key = (depth.max() - depth[child]).astype(np.int16 if depth.max() < 2**15 else np.int32)
    by_depth = child[np.argsort(key, kind="stable")]
    cuts = np.flatnonzero(np.diff(depth[by_depth])) + 1
    for lv in np.split(by_depth, cuts):
        parents = up[lv]
        for k in range(len(rs)):
            np.add.at(desc[k], parents, (desc[k, lv] + 1.0) * inr[k, lv])
    for k, r in enumerate(rs):
        out[f"betweenness_{r:g}"][inside] += weight * np.bincount(col, weights=desc[k],
                                                                  minlength=n_in)
