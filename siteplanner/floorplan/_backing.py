"""A soft search term: the service zone backed onto the back of house.

A counter line's cashiers must reach the cash room on staff floor
(:func:`siteplanner.floorplan.access.cut_off_pockets`). When the service zone shares
no door-wide wall with a staff room staff walk through or with the cash room, no
placement of its counters or staff strips can join them: only the layout can. That
rule is reported, not enforced (a hard search term refused outlines the planner
cannot prove, see docs/floorplan.md), so here it is a *soft* term of the search's
cost: the share of a door's width the service zone's longest wall to such a room
falls short by, times :data:`WEIGHT`. It is far below one broken hard rule (10), so
it never trades a rule for it, and it orders layouts that keep every rule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from siteplanner.floorplan.access import AccessMasks

__all__ = ["WEIGHT", "backing_term"]

#: Cost of a service zone with no wall at all to the back of house; one broken hard rule
#: costs 10, and the adjacency term lies in [0, 1].
WEIGHT = 0.5


def backing_term(m: AccessMasks, counters: int, door_m: float,
                 weight: float = WEIGHT) -> Callable[[np.ndarray], float]:
    """The term, as a function of a layout's shared-wall matrix (``walls[i, j]``, metres).

    Zero when there is no counter line or no room behind it to reach (no cash room, or
    neither cash room nor staff room); ``weight * (1 - w / door_m)`` for a longest
    shared wall ``w`` shorter than ``door_m``.
    """
    n = len(m.access)
    rooms = m.secure | (m.passable & m.staff)
    if m.service >= 0:
        rooms = rooms & (np.arange(n) != m.service)
    if m.service < 0 or counters <= 0 or not m.secure.any() or not rooms.any():
        return lambda walls: 0.0
    svc, idx = m.service, np.flatnonzero(rooms)

    def term(walls: np.ndarray) -> float:
        short = 1.0 - float(walls[svc, idx].max()) / door_m
        return weight * short if short > 0 else 0.0
    return term
