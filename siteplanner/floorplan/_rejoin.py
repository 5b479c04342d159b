"""Another counter line for a plan whose cashiers are cut off from the cash room.

A counter line longer than the service zone's wall to the back of house takes that wall
first and sends the stations it cannot hold to the best other walls by the placement's
own score: the longest staff or outer wall. That is often the wall opposite the back
office, whose run no staff strip can join to the back of house without closing the
customers' way or walling off a corner of their floor
(:func:`siteplanner.floorplan._pockets.link_pockets`); a wall turning the corner from the
back office's, or another wall whose run a strip can reach, often could be joined.

So a plan that passes every check with cashiers cut off is assembled again with the
line's overflow sent to one other wall first (:func:`wall_lines`), for at most
:data:`MAX_TRIES` such lines, and the first new plan that passes every check with fewer
pockets cut off is kept (:func:`retry`). The line still holds every planned station.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan._wallrun import EPS
from siteplanner.floorplan.access import access_masks, counter_pockets
from siteplanner.floorplan.fixtures import Fixture, _edges, place_fixtures
from siteplanner.floorplan.standard import Standard

__all__ = ["MAX_TRIES", "retry", "service_walls", "wall_lines"]

#: Other counter lines assembled per plan at most, each one more placement and full check
#: of the plan (a tenth to a fifth of a second). On the first 40 benchmark outlines every
#: line that joined pockets was one of the first two tried; trying every line (up to 13 a
#: plan) joined no more and cost a CPU second or two on each plan cut off.
MAX_TRIES = 2


def _key(line: Sequence[Fixture]) -> tuple[tuple[float, ...], ...]:
    """A line by its stations' staff sides, to tell lines apart."""
    return tuple(sorted(tuple(np.round(x.staff_side.bounds, 4).tolist()) for x in line
                        if x.staff_side is not None))


def wall_lines(service: BaseGeometry, n: int, std: Standard, back: BaseGeometry,
               near: BaseGeometry | None, plain: Sequence[Sequence[Fixture]]
               ) -> list[list[Fixture]]:
    """Lines of ``n`` stations along the walls, the overflow beyond the walls to ``back``
    sent to one other wall first (each whole wall of the zone once, the corners cleared as
    the placement clears them, either way), best first: fewest pockets of staff side, then
    a wall meeting a wall to ``back`` at a corner, then the longest.

    Lines equal to one of ``plain`` (the placements the plan already tried) are left out;
    a zone with no door-wide wall to ``back`` has none (no line can back onto it).
    """
    if service.geom_type != "Polygon" or back.is_empty:
        return []
    # whole walls: the zone's ring has a vertex wherever a neighbour's wall starts
    edges = _edges(shapely.simplify(service, EPS))
    lines = shapely.linestrings(edges.reshape(-1, 2, 2))
    backed = shapely.length(shapely.intersection(
        lines, shapely.buffer(back, 1e-4, cap_style="flat"))) >= std.internal_door_m
    if not backed.any():
        return []
    ends = shapely.multipoints(edges[backed].reshape(-1, 2))
    seen = {_key(line) for line in plain}
    found = []
    for k in np.flatnonzero(~backed).tolist():
        for turns in (False, True):
            line = place_fixtures(service, "service", n, std, prefer=lines[k], near=near,
                                  back=back, turns=turns)
            if _key(line) in seen or sum(x.kind == "counter" for x in line) < n:
                continue
            seen.add(_key(line))
            turn = bool(shapely.dwithin(lines[k], ends, 1e-6))
            pockets = len(counter_pockets(shapely.union_all([x.staff_side for x in line])))
            found.append(((pockets, not turn, -float(shapely.length(lines[k]))), line))
    return [line for _, line in sorted(found, key=lambda x: x[0])]


def service_walls(local: Sequence[BaseGeometry], kinds: Sequence[str], outline: BaseGeometry,
                  std: Standard) -> tuple[BaseGeometry, BaseGeometry | None, BaseGeometry]:
    """What a counter line is placed against: the walls it prefers (the staff and secure
    zones' and the outer walls), the cash room's walls it keeps near, and the walls of the
    staff rooms the cashiers walk through to the cash room, which it backs onto first
    (empty when there is none)."""
    m = access_masks(kinds, std)
    staff = shapely.union_all([local[i] for i in np.flatnonzero(~m.public).tolist()]) \
        if (~m.public).any() else shapely.Polygon()
    prefer = shapely.union_all([shapely.boundary(staff), shapely.boundary(outline)])
    secure = [shapely.boundary(local[i]) for i in np.flatnonzero(m.secure).tolist()]
    rooms = [shapely.boundary(local[i]) for i in np.flatnonzero(m.passable & m.staff).tolist()]
    return (prefer, shapely.union_all(secure) if secure else None,
            shapely.union_all(rooms) if rooms else shapely.Polygon())


def retry(done: Any, local: Sequence[BaseGeometry], kinds: Sequence[str],
          units: Sequence[int], std: Standard, outline: BaseGeometry,
          fit: Callable[[list[Fixture]], Any]) -> Any:
    """``done`` (a passing plan with counter pockets cut off), or the plan with another
    counter line (:func:`wall_lines`) when that passes every check with fewer pockets
    cut off.

    ``local`` and ``outline`` are in the layout frame; ``fit(line)`` assembles the same
    layout with ``line`` as the service zone's counters
    (:func:`siteplanner.floorplan.assemble._fitted`).
    """
    cut = done.metrics["counter_pockets_cut_off"]
    m = access_masks(kinds, std)
    if not cut or m.service < 0:
        return done
    prefer, near, back = service_walls(local, kinds, outline, std)
    if back.is_empty:
        return done
    service, n = local[m.service], int(units[m.service])
    # the plan's own two lines (every wall's ends cleared, or only the corners turned)
    plain = [place_fixtures(service, "service", n, std, prefer=prefer, near=near, back=back,
                            turns=t) for t in (False, True)]
    for line in wall_lines(service, n, std, back, near, plain)[:MAX_TRIES]:
        other = fit(line)
        if other.metrics["all_constraints_pass"] and \
                len(other.metrics["counter_pockets_cut_off"]) < len(cut):
            return other
    return done
