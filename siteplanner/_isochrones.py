"""The geometry of walking catchments for :meth:`siteplanner.network.WalkGraph.isochrones`.

From the network metres to every node, the street segments walkable in the
time left (whole edges, and the pieces of the edges a walk enters but does not
finish), then per catchment the union of a buffer around them, around the
walk from the site to its street node, and around the site itself.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["catchment_polygons", "reached_segments", "substrings"]


def reached_segments(
    dist: np.ndarray, left: np.ndarray, *, edge_u: np.ndarray, edge_v: np.ndarray,
    edge_length: np.ndarray, edge_geometry: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Edge pieces walkable with ``left[i]`` metres from origin row ``i``.

    ``dist`` holds the metres from each origin row to every node. Returns the
    pieces (LineStrings) and the row each belongs to.
    """
    length = edge_length[None, :]
    a = left[:, None] - dist[:, edge_u]  # metres still to walk on arriving at u
    b = left[:, None] - dist[:, edge_v]
    full = (a >= length) | (b >= length) | ((a > 0) & (b > 0) & (a + b >= length))
    from_u = ~full & (a > 0)
    from_v = ~full & (b > 0)
    safe = np.where(length > 0, length, 1.0)
    r_full, e_full = np.nonzero(full)
    r_u, e_u = np.nonzero(from_u)
    r_v, e_v = np.nonzero(from_v)
    cut = substrings(
        edge_geometry[np.r_[e_u, e_v]],
        np.r_[np.zeros(len(e_u)), 1.0 - b[r_v, e_v] / safe[0, e_v]],
        np.r_[a[r_u, e_u] / safe[0, e_u], np.ones(len(e_v))],
    )
    geoms = np.concatenate([edge_geometry[e_full], cut])
    return geoms, np.r_[r_full, r_u, r_v]


def catchment_polygons(
    lines: np.ndarray, group: np.ndarray, *, origin_xy: np.ndarray, node_xy: np.ndarray,
    offset_m: np.ndarray, budgets_m: np.ndarray, buffer_m: float,
) -> np.ndarray:
    """One polygon per (origin, budget), in origin-major order.

    ``lines`` are the reached street pieces, ``group[i]`` their
    ``origin * len(budgets_m) + budget`` slot. The origin itself, and its
    walk of ``offset_m`` to its street node at ``node_xy``, belongs to every
    catchment whose budget covers that walk.
    """
    n_b = len(budgets_m)
    n_groups = len(origin_xy) * n_b
    origin_of = np.arange(n_groups) // n_b
    left_at_node = budgets_m[np.arange(n_groups) % n_b] - offset_m[origin_of]
    walk_in = (left_at_node >= 0) & (offset_m[origin_of] > 0)
    stub_xy = np.stack([origin_xy[origin_of], node_xy[origin_of]], axis=1)
    stubs = shapely.linestrings(
        stub_xy[walk_in].reshape(-1, 2), indices=np.repeat(np.arange(walk_in.sum()), 2)
    )
    return _buffered_union(
        np.concatenate([lines, stubs]),
        np.concatenate([group, np.flatnonzero(walk_in)]),
        shapely.points(origin_xy[origin_of]),
        buffer_m=buffer_m,
    )


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


def substrings(lines: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
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
