"""Chain contraction of a walking graph: Dijkstra on the junctions only.

Most street nodes only bend a street, so :class:`ChainContraction` folds every
chain of degree-2 nodes into one junction-to-junction edge, searches the
junctions with ``scipy.sparse.csgraph.dijkstra`` and reads a chain node's
distance off its two chain ends. Its results equal Dijkstra on the full graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

__all__ = ["ChainContraction", "TargetLayout", "induced", "min_duplicates", "ragged"]


@dataclass(frozen=True)
class TargetLayout:
    """Target nodes grouped for :meth:`ChainContraction.reach`.

    ``junction_cols`` are the targets that are junctions (``junction_j`` their
    junction index); the others are grouped by chain: chain ``i`` has end
    junctions ``chain_ends[i]`` and its targets are
    ``members[chain_start[i]:chain_start[i] + chain_count[i]]``.
    """

    nodes: np.ndarray
    junction_cols: np.ndarray
    junction_j: np.ndarray
    chains: np.ndarray
    chain_ends: np.ndarray
    chain_start: np.ndarray
    chain_count: np.ndarray
    members: np.ndarray
    junction_order: np.ndarray
    junction_sorted: np.ndarray
    end_order: np.ndarray
    end_sorted: np.ndarray


def ragged(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unroll groups ``[start, start + count)``: each item's group and its position."""
    group = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return group, np.arange(len(group)) - first[group] + np.asarray(starts)[group]

class ChainContraction:
    """The graph with its degree-2 nodes folded into junction-to-junction edges.

    Most street nodes only bend a street (56% in Helsinki's walking network), so
    Dijkstra runs on the junctions and a chain node's distance is read off its
    two chain ends: d(t) = min(d(end0) + off0, d(end1) + off1), plus the direct
    walk along the chain when the origin sits on the same chain. The results
    equal Dijkstra on the full graph.
    """

    def __init__(self, graph: sp.csr_matrix) -> None:
        n = graph.shape[0]
        degree = np.diff(graph.indptr)
        chain = degree == 2
        walks = _walk_chains(graph, chain)
        # Rings of degree-2 nodes touch no junction: make them junctions.
        stranded = chain & (np.bincount(walks[1], minlength=n) == 0)
        if stranded.any():
            chain &= ~stranded
            walks = _walk_chains(graph, chain)
        walker, node, offset, start, end_of, total = walks
        self.junctions = np.flatnonzero(~chain)
        self.n_junctions = len(self.junctions)
        self.junction_index = np.full(n, -1, dtype=np.int64)
        self.junction_index[self.junctions] = np.arange(self.n_junctions)
        # Each chain node is passed by exactly two walkers, one from each end.
        order = np.lexsort((walker, node))
        walker, node, offset, start = walker[order], node[order], offset[order], start[order]
        first, second = slice(0, None, 2), slice(1, None, 2)
        self.chain_nodes = node[first]
        # A chain is named by its lower walker id; position along it is the
        # offset seen by that walker.
        self.chain_id = np.full(n, -1, dtype=np.int64)
        self.chain_id[self.chain_nodes] = walker[first]
        self.along = np.zeros(n)
        self.along[self.chain_nodes] = offset[first]
        self.ends = np.full((n, 2), -1, dtype=np.int64)
        self.ends[self.chain_nodes] = self.junction_index[np.c_[start[first], start[second]]]
        self.end_offset = np.zeros((n, 2))
        self.end_offset[self.chain_nodes] = np.c_[offset[first], offset[second]]
        # Junction-to-junction streets stay; each chain becomes one edge.
        coo = graph.tocoo()
        direct = ~chain[coo.row] & ~chain[coo.col]
        rows = np.r_[coo.row[direct], end_of[:, 0]]
        cols = np.r_[coo.col[direct], end_of[:, 1]]
        lens = np.r_[coo.data[direct], total]
        keep = rows != cols
        self.csgraph = min_duplicates(
            sp.coo_matrix(
                (lens[keep], (self.junction_index[rows[keep]], self.junction_index[cols[keep]])),
                shape=(self.n_junctions, self.n_junctions),
            )
        )

    def junction_distances(
        self, sources: np.ndarray, *, limit: float, within: np.ndarray | None = None
    ) -> np.ndarray:
        """Metres from each source node to each junction (inf beyond ``limit``).

        ``within`` restricts the search to those junctions (columns in that
        order); it must hold every junction a walk of ``limit`` from the
        sources can pass.
        """
        sub = np.arange(self.n_junctions) if within is None else within
        n_j = len(sub)
        local = _Local(sub)
        j_all = self.junction_index[sources]
        on_chain = np.flatnonzero(j_all < 0)
        k = len(on_chain)
        # A source inside a chain becomes a virtual node wired to its two ends.
        ends, offsets = self.ends[sources[on_chain]], self.end_offset[sources[on_chain]]
        # On a loop both wires reach one junction: keep the shorter wire only.
        loop = ends[:, 0] == ends[:, 1]
        offsets[loop, 0] = offsets[loop].min(axis=1)
        ends = local(ends)
        wired = np.c_[np.ones(k, dtype=bool), ~loop] & (ends >= 0)
        # The CSR arrays straight away, the junction rows then one row per
        # virtual node: scipy's sparse constructors cost more than the search
        # on a town-sized box, and a country runs hundreds of boxes.
        indptr, indices, data = self._rows(sub, local, whole=within is None)
        indptr = np.r_[indptr, indptr[-1] + np.cumsum(wired.sum(axis=1))]
        graph = sp.csr_matrix((np.r_[data, offsets[wired]], np.r_[indices, ends[wired]], indptr),
                              shape=(n_j + k, n_j + k))
        src = local(np.maximum(j_all, 0))
        src[on_chain] = n_j + np.arange(k)
        return np.atleast_2d(dijkstra(graph, directed=True, indices=src, limit=limit))[:, :n_j]

    def _rows(self, sub: np.ndarray, local: _Local, *,
              whole: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays of the junction graph among the sorted junctions ``sub``.

        The work follows the edges of ``sub``, not the whole graph.
        """
        g = self.csgraph
        if whole:
            return g.indptr, g.indices, g.data
        return induced(g, sub, local)

    def distances(self, sources: np.ndarray, targets: np.ndarray, *, limit: float) -> np.ndarray:
        """Metres from each source node to each target node (inf beyond ``limit``)."""
        d_j = self.junction_distances(sources, limit=limit)
        j_tgt = self.junction_index[targets]
        out = np.empty((len(sources), len(targets)))
        at_junction = j_tgt >= 0
        out[:, at_junction] = d_j[:, j_tgt[at_junction]]
        t_chain = targets[~at_junction]
        via_0 = d_j[:, self.ends[t_chain, 0]]
        via_0 += self.end_offset[t_chain, 0]
        via_1 = d_j[:, self.ends[t_chain, 1]]
        via_1 += self.end_offset[t_chain, 1]
        out[:, ~at_junction] = np.minimum(via_0, via_1, out=via_0)
        self._same_chain(out, sources, targets)
        return out

    def _same_chain(self, out: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> None:
        """Lower to the direct walk along a chain between a source and target on it."""
        s_chain = self.chain_id[sources]
        t_chain = self.chain_id[targets]
        t_cols = np.flatnonzero(t_chain >= 0)
        if not len(t_cols) or not (s_chain >= 0).any():
            return
        order = t_cols[np.argsort(t_chain[t_cols], kind="stable")]
        sorted_ids = t_chain[order]
        s_rows = np.flatnonzero(s_chain >= 0)
        lo = np.searchsorted(sorted_ids, s_chain[s_rows], side="left")
        hi = np.searchsorted(sorted_ids, s_chain[s_rows], side="right")
        count = hi - lo
        rows = np.repeat(s_rows, count)
        cols = order[np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())]
        direct = np.abs(self.along[sources[rows]] - self.along[targets[cols]])
        out[rows, cols] = np.minimum(out[rows, cols], direct)

    def layout(self, targets: np.ndarray) -> TargetLayout:
        """Group target nodes by junction and by chain, for :meth:`reach`."""
        j = self.junction_index[targets]
        at_junction = np.flatnonzero(j >= 0)
        on_chain = np.flatnonzero(j < 0)
        order = on_chain[np.argsort(self.chain_id[targets[on_chain]], kind="stable")]
        chains, start, count = np.unique(
            self.chain_id[targets[order]], return_index=True, return_counts=True
        )
        first = targets[order[start]]
        j_order = np.argsort(j[at_junction], kind="stable")
        chain_ends = self.ends[first]
        e_order = np.argsort(chain_ends.ravel(), kind="stable")
        return TargetLayout(
            nodes=targets,
            junction_cols=at_junction,
            junction_j=j[at_junction],
            chains=chains,
            chain_ends=chain_ends,
            chain_start=start,
            chain_count=count,
            members=order,
            junction_order=j_order,
            junction_sorted=j[at_junction][j_order],
            end_order=e_order,
            end_sorted=chain_ends.ravel()[e_order],
        )

    def reach(
        self, sources: np.ndarray, layout: TargetLayout, *, limit: float,
        within: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Source row, target column and metres of every pair within ``limit``.

        Only the junctions (of ``within``, see :meth:`junction_distances`) are
        searched densely; a chain target is expanded only when one of its
        chain's ends, or the source's own chain, is within reach, so the work
        follows the pairs found and not sources x targets.
        """
        d_sub = self.junction_distances(sources, limit=limit, within=within)
        m = d_sub.shape[1]
        d_j = np.hstack([d_sub, np.full((len(sources), 1), np.inf)])  # column m: outside
        sub = np.arange(self.n_junctions) if within is None else within
        local = _Local(sub, missing=m)
        # the targets and chains at the searched junctions, looked up from them
        jt = np.sort(_at(layout.junction_order, layout.junction_sorted, sub))
        jd = d_j[:, local(layout.junction_j[jt])]
        r1, c1 = np.nonzero(jd <= limit)
        parts = [(r1, layout.junction_cols[jt[c1]], jd[r1, c1])]
        ends = np.full((len(layout.chains), 2), m, dtype=np.int64)
        touch = np.unique(_at(layout.end_order // 2, layout.end_sorted, sub))
        ends[touch] = local(layout.chain_ends[touch])
        # A source's own chain is walked directly even when neither end is in reach.
        s_chain = self.chain_id[sources]
        slot = np.minimum(np.searchsorted(layout.chains, s_chain), max(len(layout.chains) - 1, 0))
        own = np.zeros(len(sources), dtype=bool)
        if len(layout.chains):
            own = (s_chain >= 0) & (layout.chains[slot] == s_chain)
        near = np.union1d(touch, slot[own])
        v0 = d_j[:, ends[near, 0]]
        v1 = d_j[:, ends[near, 1]]
        hit = (v0 <= limit) | (v1 <= limit)
        hit[np.flatnonzero(own), np.searchsorted(near, slot[own])] = True
        r2, c2 = np.nonzero(hit)
        chain = near[c2]
        group, flat = ragged(layout.chain_start[chain], layout.chain_count[chain])
        col = layout.members[flat]
        row, at = r2[group], c2[group]
        node = layout.nodes[col]
        d = np.minimum(
            v0[row, at] + self.end_offset[node, 0], v1[row, at] + self.end_offset[node, 1]
        )
        same = np.flatnonzero(s_chain[row] == self.chain_id[node])
        direct = np.abs(self.along[sources[row[same]]] - self.along[node[same]])
        d[same] = np.minimum(d[same], direct)
        keep = d <= limit
        parts.append((row[keep], col[keep], d[keep]))
        rows, cols, metres = (np.concatenate(x) for x in zip(*parts, strict=True))
        return rows, cols, metres

class _Local:
    """Position of junctions in the sorted array ``sub`` (``missing`` when not in it)."""

    def __init__(self, sub: np.ndarray, *, missing: int = -1) -> None:
        self.sub, self.missing = sub, missing

    def __call__(self, j: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.sub, j), max(len(self.sub) - 1, 0))
        hit = (self.sub[pos] == j) if len(self.sub) else np.zeros(np.shape(j), dtype=bool)
        return np.where(hit, pos, self.missing)


def induced(g: sp.csr_matrix, nodes: np.ndarray,
            local: _Local | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (indptr, indices, data) of ``g`` among the sorted ``nodes``, in their order.

    The same matrix as ``g[nodes][:, nodes]`` (sorted indices when ``g``'s
    are), without scipy's fancy-indexing set-up, which costs more than a
    bounded Dijkstra on a town-sized subgraph; the work follows the edges of
    ``nodes``.
    """
    local = _Local(nodes) if local is None else local
    group, flat = ragged(g.indptr[nodes], g.indptr[nodes + 1] - g.indptr[nodes])
    col = local(g.indices[flat])
    keep = col >= 0
    indptr = np.r_[0, np.cumsum(np.bincount(group[keep], minlength=len(nodes)))]
    return indptr, col[keep], g.data[flat[keep]]


def _at(order: np.ndarray, keys: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """``order[i]`` for every ``i`` with ``keys[i]`` in ``sub`` (``keys`` sorted)."""
    lo = np.searchsorted(keys, sub, side="left")
    hi = np.searchsorted(keys, sub, side="right")
    _, flat = ragged(lo, hi - lo)
    return order[flat]


def _walk_chains(
    graph: sp.csr_matrix, chain: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Walk every chain from each junction end, all walkers in step.

    Returns per visit (walker, node, offset from the walker's start, start) and
    per walker the (start, end) junctions and total chain length.
    """
    coo = graph.tocoo()
    begin = ~chain[coo.row] & chain[coo.col]
    start, cur, dist = coo.row[begin], coo.col[begin], coo.data[begin].astype(np.float64)
    prev = start.copy()
    walker = np.arange(len(start))
    n_walkers = len(start)
    end = np.full(n_walkers, -1, dtype=np.int64)
    total = np.zeros(n_walkers)
    visits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    first_nb = graph.indptr[:-1]
    while len(walker):
        visits.append((walker, cur, dist.copy()))
        at = first_nb[cur]
        nb0, nb1 = graph.indices[at], graph.indices[at + 1]
        back = nb0 == prev
        nxt = np.where(back, nb1, nb0)
        dist = dist + np.where(back, graph.data[at + 1], graph.data[at])
        prev, cur = cur, nxt
        done = ~chain[cur]
        end[walker[done]] = cur[done]
        total[walker[done]] = dist[done]
        walker, cur, prev, dist = walker[~done], cur[~done], prev[~done], dist[~done]
    if visits:
        w, node, off = (np.concatenate(parts) for parts in zip(*visits, strict=True))
    else:
        w = node = np.empty(0, dtype=np.int64)
        off = np.empty(0)
    starts = np.asarray(coo.row[begin])
    return w, node, off, starts[w], np.stack([starts, end], axis=1), total


def min_duplicates(graph: sp.coo_matrix) -> sp.csr_matrix:
    """CSR keeping the smallest of duplicate (row, col) entries."""
    order = np.lexsort((graph.data, graph.col, graph.row))
    row, col, data = graph.row[order], graph.col[order], graph.data[order]
    first = np.r_[True, (row[1:] != row[:-1]) | (col[1:] != col[:-1])]
    return sp.csr_matrix((data[first], (row[first], col[first])), shape=graph.shape)
