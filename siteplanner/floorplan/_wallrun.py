"""Counter and wall modules along a zone's walls: which to take without overlaps."""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["EPS", "overlaps", "take"]

EPS = 1e-6  # metres of slack in containment tests: walls are snapped to a micrometre grid


def take(key: np.ndarray, n: int, box: np.ndarray, modules: np.ndarray, turned: np.ndarray
         ) -> list[int]:
    """The first ``n`` modules in ``key`` order that overlap none taken before them."""
    taken: list[int] = []
    for i in key:
        if taken and overlaps(box, int(i), taken, modules, turned):
            continue
        taken.append(int(i))
        if len(taken) == n:
            break
    return taken


def overlaps(box: np.ndarray, i: int, taken: list[int],
             modules: np.ndarray | None = None, turned: np.ndarray | None = None) -> bool:
    """Whether module ``i`` overlaps any ``taken`` module by more than ``EPS``.

    ``box`` holds the modules' bounds. Modules on axis-parallel walls are boxes in
    the layout frame, so comparing bounds is the exact test of their shrunken
    interiors meeting, without building the union of the taken ones; a module
    turned with a slanted wall (``turned``) is tested on its polygon where the
    bounds meet.
    """
    t = box[taken]
    b = box[i]
    hit = ((t[:, 0] < b[2] - EPS) & (b[0] < t[:, 2] - EPS)
           & (t[:, 1] < b[3] - EPS) & (b[1] < t[:, 3] - EPS))
    if modules is None or turned is None or not hit.any():
        return bool(hit.any())
    idx = np.asarray(taken)[hit]
    if not turned[i] and not turned[idx].any():
        return True
    return bool(shapely.intersects(shapely.buffer(modules[i], -EPS, join_style="mitre"),
                                   modules[idx]).any())
