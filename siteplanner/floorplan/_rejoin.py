"""Another counter line for a plan whose cashiers are cut off from the cash room.

A counter line longer than the service zone's wall to the back of house takes that wall
first and sends the stations it cannot hold to the best other walls by the placement's
own score: the longest staff or outer wall. That is often the wall opposite the back
office, whose run no staff strip can join to the back of house without closing the
customers' way or walling off a corner of their floor
(:func:`siteplanner.floorplan._pockets.link_pockets`); a wall turning the corner from the
back office's, or another wall whose run a strip can reach, often could be joined.

A line may also start in a corner whose other wall is a staff room's and run along the
wall that is not (:func:`end_lines`): its staff side then ends on the staff room's wall
and opens into the room through that end, the way a teller line runs along the shop
front with the back office's door behind its last station. A zone whose one wall to the
back office is its short end holds the whole line in one run that way, where the backed
line put a station on the end wall and stranded the rest beyond that station's customer
side.

Or the line may run straight on along the same wall past the staff room's stretch of it
(:func:`straight_lines`): a wall that is the back office's for half its length and a
public neighbour's for the rest holds the whole line in one run, its staff side in one
piece with a door into the room, where the backed line sent the stations beyond the
room's stretch to another wall across the customers' floor.

So a plan that passes every check with cashiers cut off is assembled again with a
straight line, then with a line from a corner, then with the line's overflow sent to one
other wall first (:func:`wall_lines`), for at most :data:`MAX_TRIES` lines of each kind,
and the first new plan that passes every check with fewer pockets cut off is kept
(:func:`retry`). With no staff room staff walk through, the cash room's walls stand in for
its walls (the cash room then opens onto the counters' staff side). The line still holds
every planned station.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan._wallrun import EPS, take
from siteplanner.floorplan.access import access_masks, counter_pockets
from siteplanner.floorplan.fixtures import (
    Fixture,
    _edges,
    _frame,
    _slanted,
    _wall_modules,
    place_fixtures,
)
from siteplanner.floorplan.standard import Standard

__all__ = ["MAX_TRIES", "end_lines", "retry", "service_walls", "straight_lines", "wall_lines"]

#: Other counter lines assembled per plan at most, each one more placement and full check
#: of the plan (a tenth to a fifth of a second). On the first 40 benchmark outlines every
#: line that joined pockets was one of the first two tried; trying every line (up to 13 a
#: plan) joined no more and cost a CPU second or two on each plan cut off.
MAX_TRIES = 2
#: The step of the starts a straight line is tried at along its wall, metres.
_SLIDE_M = 0.05


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


def end_lines(service: BaseGeometry, n: int, std: Standard, back: BaseGeometry,
              prefer: BaseGeometry, plain: Sequence[Sequence[Fixture]]) -> list[list[Fixture]]:
    """Lines of ``n`` stations that start in a corner of the zone whose other wall is
    ``back``'s (a staff room's), along a wall that is not: the first station's staff side
    ends on the staff room's wall, a door's width of it, so the run behind it opens into
    the room through its end. Stations the wall cannot hold go to the walls nearest that
    corner (the staff room's own wall beyond the first station's clear space, whose staff
    side backs onto the room). Each such corner is tried alone, and every one at once (a
    run from each end of the back wall). Best first: fewest pockets of staff side with no
    door-wide wall to ``back``, then fewest pockets, then the most of the line's walls on
    ``prefer`` (outer and staff walls: a wall to a public neighbour is the customers' way
    in); lines equal to one of ``plain`` are left out.
    """
    if service.geom_type != "Polygon" or back.is_empty:
        return []
    f = std.fixtures
    depth = f.counter_staff_side_m + f.counter_depth_m + f.counter_customer_side_m
    edges = _edges(shapely.simplify(service, EPS))
    zone = shapely.simplify(service, EPS)
    edge, start, modules = _wall_modules(zone, f.counter_module_m, depth, None)
    if not modules.size:
        return []
    near_back = shapely.buffer(back, 1e-4, cap_style="flat")
    lines = shapely.linestrings(edges.reshape(-1, 2, 2))
    backed = shapely.length(shapely.intersection(lines, near_back)) >= std.internal_door_m
    length = shapely.length(lines)
    preferred = shapely.length(shapely.intersection(
        lines, shapely.buffer(prefer, 1e-4, cap_style="flat")))
    starts, edge, start, modules = _corner_starts(zone, edges, lines, length, backed, near_back,
                                                  std, edge, start, modules)
    box = shapely.bounds(modules)
    turned = _slanted(edges[edge])
    # each corner alone, and every corner at once (runs from both ends of the back wall)
    groups = [[x] for x in starts] + ([starts] if len(starts) > 1 else [])
    seen = {_key(line) for line in plain}
    found = []
    for group in groups:
        walls = np.array([k for k, _, _ in group])
        along = np.full(len(modules), np.inf)
        for k, s0, _ in group:
            along = np.where(edge == k, np.minimum(along, np.abs(start - s0)), along)
        corners = shapely.multipoints([c for _, _, c in group])
        far = np.round(shapely.distance(modules, corners), 6)
        on = np.isin(edge, walls)
        taken = take(np.lexsort((far, along, ~on)), n, box, modules, turned)
        if len(taken) < n or not on[taken].any():
            continue
        e, st = edges[edge[taken]], start[taken]
        line = [Fixture("counter", "service", b, c, x) for b, c, x in zip(
            _frame(e, st, f.counter_module_m, f.counter_staff_side_m,
                   f.counter_staff_side_m + f.counter_depth_m),
            _frame(e, st, f.counter_module_m, f.counter_staff_side_m + f.counter_depth_m, depth),
            _frame(e, st, f.counter_module_m, 0.0, f.counter_staff_side_m), strict=True)]
        if _key(line) in seen:
            continue
        seen.add(_key(line))
        pockets = counter_pockets(shapely.union_all([x.staff_side for x in line]))
        # pockets with no door-wide wall to the staff room, then the most outer or staff wall
        alone = int((shapely.length(shapely.intersection(
            shapely.boundary(pockets), near_back)) < std.internal_door_m).sum())
        found.append(((alone, len(pockets), -float(preferred[walls].sum())), line))
    return [line for _, line in sorted(found, key=lambda x: x[0])]


def straight_lines(service: BaseGeometry, n: int, std: Standard, back: BaseGeometry,
                   plain: Sequence[Sequence[Fixture]]) -> list[list[Fixture]]:
    """Lines of ``n`` stations side by side in one straight run along a whole wall of the zone
    that ``back`` (a staff room) covers for a door's width or more, placed to cover as much
    of that stretch as they can from either of its ends: the staff side is one piece and
    opens into the room, and the stations beyond the room's wall stand on the same wall's
    stretch to a neighbour (a public zone's wall is a wall: the line is still the only
    opening between staff and customers). Best first: the most staff side on ``back``;
    lines equal to one of ``plain`` are left out.
    """
    if service.geom_type != "Polygon" or back.is_empty:
        return []
    f = std.fixtures
    depth = f.counter_staff_side_m + f.counter_depth_m + f.counter_customer_side_m
    zone = shapely.simplify(service, EPS)
    edges = _edges(zone, slanted=True)
    lines = shapely.linestrings(edges.reshape(-1, 2, 2))
    near_back = shapely.buffer(back, 1e-4, cap_style="flat")
    run = n * f.counter_module_m
    room = shapely.buffer(zone, EPS, join_style="mitre")
    seen = {_key(line) for line in plain}
    found = []
    for k in range(len(edges)):
        length = float(shapely.length(lines[k]))
        shared = shapely.intersection(lines[k], near_back)
        if length + EPS < run or shapely.length(shared) < std.internal_door_m:
            continue
        along = shapely.line_locate_point(lines[k], shapely.points(shapely.get_coordinates(shared)))
        lo, hi = float(along.min()), float(along.max())
        # every start on a 5 cm grid whose whole run stands in the zone (a chamfered corner
        # pushes it along), then those covering the most of the stretch, nearest either end
        grid = np.arange(0.0, length - run + EPS, _SLIDE_M)
        at = (grid[:, None] + f.counter_module_m * np.arange(n)[None, :]).ravel()
        fits = shapely.covers(room, _frame(edges[k], at, f.counter_module_m, 0.0, depth)
                              ).reshape(len(grid), n).all(axis=1)
        if not fits.any():
            continue
        cover = np.minimum(grid + run, hi) - np.maximum(grid, lo)
        best = grid[fits & (cover >= cover[fits].max() - EPS)]
        for s0 in sorted({float(best.min()), float(best.max())}):
            at = s0 + f.counter_module_m * np.arange(n)
            line = [Fixture("counter", "service", b, c, x) for b, c, x in zip(
                _frame(edges[k], at, f.counter_module_m, f.counter_staff_side_m,
                       f.counter_staff_side_m + f.counter_depth_m),
                _frame(edges[k], at, f.counter_module_m, f.counter_staff_side_m + f.counter_depth_m,
                       depth),
                _frame(edges[k], at, f.counter_module_m, 0.0, f.counter_staff_side_m), strict=True)]
            if _key(line) in seen:
                continue
            seen.add(_key(line))
            held = float(shapely.length(shapely.intersection(
                shapely.union_all([x.staff_side for x in line]).boundary, near_back)))
            found.append((-held, line))
    return [line for _, line in sorted(found, key=lambda x: x[0])]


def _corner_starts(zone: BaseGeometry, edges: np.ndarray, lines: np.ndarray, length: np.ndarray,
                   backed: np.ndarray, near_back: BaseGeometry, std: Standard, edge: np.ndarray,
                   start: np.ndarray, modules: np.ndarray
                   ) -> tuple[list[tuple[int, float, shapely.Point]], np.ndarray, np.ndarray,
                              np.ndarray]:
    """The stations of :func:`end_lines` that stand in a corner whose other wall is the staff
    room's (wall, start along it, corner), and the wall modules with each such wall's
    stations side by side from its corner added (``edge``, ``start``, ``modules``)."""
    f = std.fixtures
    depth = f.counter_staff_side_m + f.counter_depth_m + f.counter_customer_side_m
    starts = []  # (wall, start along it, corner) of each station standing in such a corner
    for k in np.flatnonzero(~backed & (length + EPS >= f.counter_module_m)).tolist():
        for end in (0, 1):
            s0 = 0.0 if end == 0 else float(length[k]) - f.counter_module_m
            staff = _frame(edges[k], np.array([s0]), f.counter_module_m, 0.0,
                           f.counter_staff_side_m)[0]
            # the staff side's end at the corner: on the staff room's wall for a door's width
            tip = shapely.difference(shapely.boundary(staff),
                                     shapely.buffer(lines[k], 1e-4, cap_style="flat"))
            if shapely.length(shapely.intersection(tip, near_back)) >= std.internal_door_m:
                starts.append((k, s0, shapely.Point(edges[k, 2 * end:2 * end + 2])))
                # the wall's stations side by side from the corner (the modules' grid
                # steps a third of a module from the wall's start, and leaves gaps)
                step = np.arange(0.0, float(length[k]) + EPS, f.counter_module_m)
                at = step if end == 0 else s0 - step
                at = at[(at >= -EPS) & (at + f.counter_module_m <= length[k] + EPS)]
                run = _frame(edges[k], at, f.counter_module_m, 0.0, depth)
                ok = shapely.covers(shapely.buffer(zone, EPS, join_style="mitre"), run)
                edge = np.append(edge, np.full(int(ok.sum()), k))
                start = np.append(start, at[ok])
                modules = np.append(modules, run[ok])
    return starts, edge, start, modules


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
    counter line (:func:`end_lines`, then :func:`wall_lines`) when that passes every check
    with fewer pockets cut off.

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
        if near is None:
            return done
        # no staff room staff walk through: the cash room opens onto the counters' staff
        # side itself (the only way staff reach it), so the line backs onto its walls
        back = near
    service, n = local[m.service], int(units[m.service])
    # the plan's own two lines (every wall's ends cleared, or only the corners turned)
    plain = [place_fixtures(service, "service", n, std, prefer=prefer, near=near, back=back,
                            turns=t) for t in (False, True)]
    for line in [*straight_lines(service, n, std, back, plain)[:MAX_TRIES],
                 *end_lines(service, n, std, back, prefer, plain)[:MAX_TRIES],
                 *wall_lines(service, n, std, back, near, plain)[:MAX_TRIES]]:
        other = fit(line)
        if other.metrics["all_constraints_pass"] and \
                len(other.metrics["counter_pockets_cut_off"]) < len(cut):
            return other
    return done
