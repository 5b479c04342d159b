"""Joining a split counter line's staff side to the back of house.

A counter line too long for one wall runs along several, and its staff side can
fall into separate pockets with customers' floor between them. A cashier in a
pocket with no door towards the cash room would carry the cash across that floor,
which the security rule forbids (:func:`siteplanner.floorplan.access.cut_off_pockets`).
Here each such pocket is joined, by a strip of staff floor along the service zone's
walls, to the nearest stretch of staff floor that does reach the cash room: another
pocket that does, or a door-wide stretch of wall to a cash room or to a staff room
staff walk through. The strip is as deep as the counters' staff side
(``counter_staff_side_m``) and walled off from the customers, like the strips behind a
cash room (:func:`siteplanner.floorplan.assemble._staff_strips`); it keeps clear of
every fixture and its clear space and of the doors, and of the floor the public route
needs: the shortest strip is taken that leaves the route reaching every public zone and
every customer fixture it reached without it (:func:`siteplanner.floorplan.route.unreached`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from siteplanner.floorplan.access import access_masks, counter_pockets
from siteplanner.floorplan.fixtures import Fixture
from siteplanner.floorplan.standard import Standard

__all__ = ["link_pockets"]

#: Free floor (m²) smaller than this is a sliver, not a piece of the customers' floor.
_MIN_PIECE_M2 = 0.05

Strip = Callable[[BaseGeometry, BaseGeometry, BaseGeometry, float], "BaseGeometry | None"]
Keeps = Callable[[list[Fixture]], bool]


def _intervals(ring: LineString, geom: BaseGeometry, tol: float = 1e-3) -> list[tuple[float, float]]:
    """Where ``geom`` lies along ``ring``: (start, end) distances of each stretch touching it."""
    out = []
    touch = shapely.intersection(ring, shapely.buffer(geom, tol, join_style="mitre"))
    for part in shapely.get_parts(shapely.line_merge(touch) if touch.length else touch):
        if part.geom_type != "LineString" or part.length <= tol:
            continue
        a, b = (ring.project(shapely.Point(c)) for c in (part.coords[0], part.coords[-1]))
        # a stretch across the ring's start runs from its larger end on past the start
        out.append((a, b) if abs((b - a) - part.length) < 1e-6 else (max(a, b), min(a, b)))
    return out


def _arc(ring: LineString, a: float, b: float) -> BaseGeometry:
    """The stretch of ``ring`` from ``a`` forward to ``b`` (across its start when b < a)."""
    if a <= b:
        return substring(ring, a, b)
    return shapely.line_merge(shapely.union(substring(ring, a, ring.length), substring(ring, 0.0, b)))


def _gap(a: float, b: float, length: float) -> float:
    return (b - a) % length


def _keeps_floor_whole(service: BaseGeometry, taken: BaseGeometry, grown: BaseGeometry) -> bool:
    """Whether the zone's free floor stays in as many pieces with ``grown`` taken too: a
    strip that walls off a corner of the customers' floor joins nothing worth it (one that
    narrows their way below the route width fails the plan's route checks)."""
    def pieces(g: BaseGeometry) -> int:
        parts = shapely.get_parts(shapely.difference(service, g))
        return int((shapely.area(parts) > _MIN_PIECE_M2).sum())
    return pieces(shapely.union(taken, grown)) <= pieces(taken)


def _runs(cut: list[list[tuple[float, float]]], targets: list[tuple[float, float, bool]],
          door_m: float, length: float) -> list[tuple[float, float]]:
    """Stretches of the ring from each cut-off pocket's span to each target, both ways
    round, shortest first (into a wall, a door's width of it)."""
    out = []
    for spans in cut:
        for a, b in spans:
            for c, d, pocket in targets:
                run = 0.0 if pocket else door_m
                for lo, hi in ((b, (c + run) % length), ((d - run) % length, a)):
                    out.append((_gap(lo, hi, length), lo, hi))
    return [(lo, hi) for _, lo, hi in sorted(out)]


def link_pockets(local: Sequence[BaseGeometry], kinds: Sequence[str], fixtures: Sequence[Fixture],
                 clear: BaseGeometry, standard: Standard, strip: Strip,
                 keeps: Keeps | None = None) -> list[Fixture]:
    """Staff strips joining each counter pocket that does not reach the back of house to one
    that does, shortest first (in the layout frame; ``clear``: the doors' clear floor).

    ``strip(wall, service, taken, depth)`` grows staff floor along one stretch of wall
    (:func:`siteplanner.floorplan.assemble._strip`). ``keeps(strips)`` says whether the
    public route still reaches what it did with these strips taken from the customers'
    floor: a shorter strip that narrows a way below the route or passage width gives way
    to a longer one that does not. A pocket no strip can join is left as it is, and
    reported (:func:`siteplanner.floorplan.access.cut_off_pockets`).
    """
    m = access_masks(kinds, standard)
    staff = [f.staff_side for f in fixtures
             if f.kind in ("counter", "staff_strip") and f.staff_side is not None]
    service = local[m.service] if m.service >= 0 else None
    if service is None or not staff or not m.secure.any() or service.geom_type != "Polygon":
        return []
    door_m = standard.internal_door_m
    ring = LineString(service.exterior.coords)
    wall = shapely.buffer(shapely.boundary(service), 1e-4, cap_style="flat")
    rooms = [local[i] for i in np.flatnonzero(m.secure | (m.passable & m.staff)).tolist()]
    back_wall = shapely.intersection(shapely.union_all([shapely.boundary(r) for r in rooms]), wall)
    back = [(a, b) for a, b in _intervals(ring, back_wall, 1e-4)
            if _gap(a, b, ring.length) >= door_m]
    stations = shapely.union_all([f.staff_side for f in fixtures
                                  if f.kind == "counter" and f.staff_side is not None])
    taken = shapely.union_all([clear, *[f.module for f in fixtures if f.kind != "chair"]])
    depth = standard.fixtures.counter_staff_side_m
    out: list[Fixture] = []
    for _ in range(len(staff)):
        floor = shapely.union_all([*staff, *[f.staff_side for f in out]])
        pockets = counter_pockets(floor)
        # where each pocket's own floor meets the wall (a strip starting inside it could not
        # cover its first millimetres)
        spans = [_intervals(ring, shapely.intersection(floor, p), 1e-4) for p in pockets]
        # a pocket with a door-wide stretch of wall to the back of house opens into it
        good = (shapely.length(shapely.intersection(
            back_wall, shapely.buffer(pockets, 1e-3, join_style="mitre"))) >= door_m).tolist()
        targets = [(a, b, False) for a, b in back]
        targets += [(a, b, True) for s, g in zip(spans, good, strict=True) if g for a, b in s]
        cut = [s for p, s in enumerate(spans)
               if not good[p] and shapely.intersects(pockets[p], stations)]
        found = None
        for lo, hi in _runs(cut, targets, door_m, ring.length):
            # the shortest strip that keeps the floor and the route
            grown = strip(_arc(ring, lo, hi), service, taken, depth)
            if grown is None or not _keeps_floor_whole(service, taken, grown):
                continue
            joined = Fixture("staff_strip", "service", shapely.Polygon(), shapely.Polygon(), grown)
            if keeps is None or keeps([*out, joined]):
                found = joined
                break
        if found is None:
            break
        out.append(found)
        taken = shapely.union_all([taken, found.staff_side])
    return out
