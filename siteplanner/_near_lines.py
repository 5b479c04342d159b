"""Which of many points lie within a distance of a set of lines: a grid of the lines'
vertices rules most points out, and GEOS tests only the rest.

A country's H3 cells are several times more than its candidates: most lie in fields,
forest or mountain, far from any street (Andorra x3: 678k cells, 108k by a street).
Testing every centre against an STRtree of the streets (GEOS ``dwithin``) was a third of
a second there and the largest part of making the candidates. The grid is exact, not an
approximation: with points added along every piece longer than ``d`` (as
:func:`shapely.segmentize` adds them), every point of a line lies within ``d / 2`` of one
of its vertices, so a point within ``d`` of the line
lies within ``1.5 d`` of a vertex, and with grid squares of that side the vertex lies in
the point's square or one of its eight neighbours. A point whose 3 x 3 squares hold no
vertex is therefore farther than ``d`` from every line; every other point gets GEOS's own
test, so the answer is :meth:`shapely.STRtree.query`'s ``dwithin``, point for point.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["GRID_POINTS_PER_LINE", "MAX_GRID_SQUARES", "near_lines"]

#: The grid is drawn only for at least this many points per line: it costs about as much
#: per line (a street network's pieces: Andorra x3's 315k for 678k cells) as GEOS's own
#: test per point, so with fewer points (a large city's 900k pieces and 166k cells,
#: Helsinki x156) GEOS tests them all.
GRID_POINTS_PER_LINE = 1.5

#: Most squares the grid may have (one byte each); a larger extent takes larger squares,
#: which rule out fewer points but stay exact.
MAX_GRID_SQUARES = 32_000_000


def near_lines(x: np.ndarray, y: np.ndarray, lines: np.ndarray, distance: float) -> np.ndarray:
    """True where the point ``(x, y)`` lies within ``distance`` of one of ``lines`` (the same
    test as ``shapely.STRtree(lines).query(points, predicate="dwithin", distance=distance)``)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    near = np.zeros(len(x), dtype=bool)
    lines = np.asarray(lines, dtype=object)
    if not len(x) or not len(lines):
        return near
    test = np.ones(len(x), dtype=bool)
    if distance > 0 and len(x) >= GRID_POINTS_PER_LINE * len(lines):
        v = _vertices(lines, distance)
        if not len(v):
            return near
        if np.isfinite(v).all() and np.isfinite(x).all() and np.isfinite(y).all():
            # a point within d of a line lies within 1.5 d of a vertex (pieces of at most d),
            # so in its own square of that side or one of the eight around it
            test = _squares_hit(x, y, v, 1.5 * distance * (1.0 + 1e-9) + 1e-6)
    idx = np.flatnonzero(test)
    if len(idx):
        hit = shapely.STRtree(lines).query(shapely.points(x[idx], y[idx]), predicate="dwithin",
                                           distance=distance)[0]
        near[idx[hit]] = True
    return near


def _squares_hit(x: np.ndarray, y: np.ndarray, v: np.ndarray, side: float) -> np.ndarray:
    """Whether a vertex ``v`` lies in the point's square of a grid of ``side`` metres or in
    one of the eight around it. A grid that would pass :data:`MAX_GRID_SQUARES` takes
    larger squares (fewer points ruled out, none wrongly)."""
    lo = np.minimum(v.min(axis=0), [x.min(), y.min()])
    hi = np.maximum(v.max(axis=0), [x.max(), y.max()])
    span = np.maximum(hi - lo, 1.0)
    side = max(side, float(np.sqrt(span.prod() / MAX_GRID_SQUARES)) * 1.01)
    # a square's margin on every side: the neighbours of the outermost squares exist
    x0, y0 = float(lo[0]) - side, float(lo[1]) - side
    nx, ny = int(span[0] // side) + 4, int(span[1] // side) + 4
    held = np.zeros((nx, ny), dtype=bool)
    held[((v[:, 0] - x0) // side).astype(np.int64), ((v[:, 1] - y0) // side).astype(np.int64)] = True
    # the squares with a vertex in them or in one of their eight neighbours (a dilation)
    rows = held.copy()
    rows[1:] |= held[:-1]
    rows[:-1] |= held[1:]
    grid = rows.copy()
    grid[:, 1:] |= rows[:, :-1]
    grid[:, :-1] |= rows[:, 1:]
    return grid[((x - x0) // side).astype(np.int64), ((y - y0) // side).astype(np.int64)]


def _vertices(lines: np.ndarray, step: float) -> np.ndarray:
    """The lines' vertices, with points added along every piece longer than ``step`` so
    that no two consecutive points are farther apart (:func:`shapely.segmentize`'s points,
    without building the geometries: the pieces of a street network are mostly short)."""
    xy, line = shapely.get_coordinates(lines, return_index=True)
    if len(xy) < 2:
        return xy
    # consecutive coordinates of one geometry (a multi-line's parts are joined end to start:
    # a few points more, never fewer)
    same = line[1:] == line[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    pieces = np.ceil(np.hypot(*(b - a).T) / step).astype(np.int64)
    long = np.flatnonzero(pieces > 1)
    if not len(long):
        return xy
    k = pieces[long]
    start = np.repeat(a[long], k - 1, axis=0)
    delta = np.repeat((b[long] - a[long]) / k[:, None], k - 1, axis=0)
    # the j-th of the k - 1 inner points of each long piece: j = 1 .. k - 1
    j = np.arange(int((k - 1).sum())) - np.repeat(np.cumsum(k - 1) - (k - 1), k - 1) + 1
    return np.vstack([xy, start + delta * j[:, None]])
