"""Modules along a zone's walls: which overlap, which to take, how far along the walls.

Helpers of :mod:`siteplanner.floorplan.fixtures` for rows of modules (counter
stations, ATMs, safes) standing against walls.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["along_walls", "overlaps", "take_modules"]

_EPS = 1e-6  # metres of slack, as in fixtures: walls are snapped to a micrometre grid


def take_modules(order: np.ndarray, n: int, box: np.ndarray, modules: np.ndarray,
          turned: np.ndarray) -> list[int]:
    """Up to ``n`` modules in ``order``, each overlapping none taken before it."""
    taken: list[int] = []
    for i in order:
        if taken and overlaps(box, i, taken, modules, turned):
            continue
        taken.append(int(i))
        if len(taken) == n:
            break
    return taken


def along_walls(zone: BaseGeometry, edge: np.ndarray, at: np.ndarray,
           anchor: BaseGeometry | None) -> np.ndarray:
    """Metres along the zone's walls, either way round, from the points ``at`` metres along
    each ``edge`` to the nearest stretch of wall touching ``anchor`` (0 without one)."""
    ring = shapely.get_exterior_ring(zone)
    touch = None if anchor is None else shapely.intersection(
        ring, shapely.buffer(anchor, 1e-4, cap_style="flat"))
    if touch is None or touch.length <= _EPS:
        return np.zeros(len(edge))
    x0, y0, x1, y1 = np.asarray(edge, dtype=float).T
    t = at / np.hypot(x1 - x0, y1 - y0)
    pos = shapely.line_locate_point(ring, shapely.points(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    ends = shapely.line_locate_point(ring, shapely.points(shapely.get_coordinates(touch)))
    gap = np.abs(pos[:, None] - ends[None, :])
    return np.round(np.minimum(gap, ring.length - gap).min(axis=1), 3)


def overlaps(box: np.ndarray, i: int, taken: list[int],
              modules: np.ndarray | None = None, turned: np.ndarray | None = None) -> bool:
    """Whether module ``i`` overlaps any ``taken`` module by more than ``_EPS``.

    ``box`` holds the modules' bounds. Modules on axis-parallel walls are boxes in
    the layout frame, so comparing bounds is the exact test of their shrunken
    interiors meeting, without building the union of the taken ones; a module
    turned with a slanted wall (``turned``) is tested on its polygon where the
    bounds meet.
    """
    t = box[taken]
    b = box[i]
    hit = ((t[:, 0] < b[2] - _EPS) & (b[0] < t[:, 2] - _EPS)
           & (t[:, 1] < b[3] - _EPS) & (b[1] < t[:, 3] - _EPS))
    if modules is None or turned is None or not hit.any():
        return bool(hit.any())
    idx = np.asarray(taken)[hit]
    if not turned[i] and not turned[idx].any():
        return True
    return bool(shapely.intersects(shapely.buffer(modules[i], -_EPS, join_style="mitre"),
                                   modules[idx]).any())
