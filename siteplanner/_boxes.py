"""The points inside an axis-aligned box, found from a grid of columns: no Python lists.

Local searches (:meth:`siteplanner.network.WalkGraph.reach`, the centrality's
tiles) ask thousands of times for the street nodes inside a box. A KD-tree's
ball query returns a Python list per box, and turning those lists (over 100M
entries on a 100k-candidate place) into arrays cost more than the searches.
Here the points are sorted by grid column, then by grid row, so the cells of
one column inside the box are one contiguous run: a box is a handful of
``searchsorted`` calls, a gather and an exact test, and its cost follows the
points it holds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BoxIndex"]


class BoxIndex:
    """Points sorted by grid cell (column, then row), for exact box queries.

    Parameters
    ----------
    xy
        Point coordinates in metres, shape (n, 2).
    cell_m
        Side of the grid's cells in metres; a box scans at most one cell's
        width of points beyond its own sides, so a cell well under the usual
        box (a few hundred metres against boxes of kilometres) keeps the scan
        close to the box.
    """

    def __init__(self, xy: np.ndarray, *, cell_m: float) -> None:
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.cell = float(cell_m)
        n = len(self.xy)
        self.origin = self.xy.min(axis=0) if n else np.zeros(2)
        q = self._cells(self.xy) if n else np.zeros((0, 2), dtype=np.int64)
        self.shape = (q.max(axis=0) + 1) if n else np.ones(2, dtype=np.int64)
        key = q[:, 0] * int(self.shape[1]) + q[:, 1]
        self.order = np.argsort(key, kind="stable")
        self.key = key[self.order]
        self.sorted_xy = self.xy[self.order]

    def _cells(self, pts: np.ndarray) -> np.ndarray:
        # (x - origin) / cell is monotone in x, so a point >= lo lies in lo's cell or later
        return np.floor((pts - self.origin) / self.cell).astype(np.int64)

    def within(self, lo: np.ndarray, hi: np.ndarray, *, sort: bool = True) -> np.ndarray:
        """Positions of the points with ``lo <= xy <= hi`` (sorted unless ``sort=False``)."""
        if len(self.xy) == 0:
            return np.zeros(0, dtype=np.int64)
        c0 = np.clip(self._cells(np.asarray(lo, dtype=np.float64)), 0, self.shape - 1)
        c1 = np.clip(self._cells(np.asarray(hi, dtype=np.float64)), 0, self.shape - 1)
        if (np.asarray(hi) < self.origin).any() or (c1 < c0).any():
            return np.zeros(0, dtype=np.int64)
        cols = np.arange(c0[0], c1[0] + 1) * int(self.shape[1])
        a = np.searchsorted(self.key, cols + c0[1], side="left")
        b = np.searchsorted(self.key, cols + c1[1], side="right")
        counts = b - a
        total = int(counts.sum())
        # a ragged gather of the columns' runs
        flat = np.arange(total) + np.repeat(a - (np.cumsum(counts) - counts), counts)
        p = self.sorted_xy[flat]
        inside = (p[:, 0] >= lo[0]) & (p[:, 0] <= hi[0]) & (p[:, 1] >= lo[1]) & (p[:, 1] <= hi[1])
        out = self.order[flat[inside]]
        return np.sort(out) if sort else out

    def count(self, lo: np.ndarray, hi: np.ndarray) -> int:
        """How many points lie in the box (as ``len(within(lo, hi))``)."""
        return len(self.within(lo, hi, sort=False))
