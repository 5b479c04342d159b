"""From a decoded layout to a checked plan: fixtures, doors, the surplus zone's name, every check."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from shapely.affinity import affine_transform
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan import _rejoin
from siteplanner.floorplan._check import (
    WIDTH_KEEP,
    check_layout,
    door_cover,
    door_segments,
    shared_walls,
    width_kept,
)
from siteplanner.floorplan._cuts import _band, _reflex_lines, _split, _stepped
from siteplanner.floorplan._pockets import link_pockets
from siteplanner.floorplan.access import (
    AccessMasks,
    Door,
    access_masks,
    check_access,
    plan_doors,
    pocket_name,
    pockets_cut_off,
    staff_rooms_cut_off,
)
from siteplanner.floorplan.fixtures import (
    Fixture,
    count_fixtures,
    expected_fixtures,
    place_fixtures,
    wheelchair_places,
)
from siteplanner.floorplan.route import Route, check_route, unreached
from siteplanner.floorplan.standard import CIRCULATION, FLEX, Standard

__all__ = ["Assembled", "assemble", "check_fixtures"]

_EPS = 1e-6


@dataclass
class Assembled:
    """A layout made into a plan (world coordinates)."""

    kinds: tuple[str, ...]
    zones: list[BaseGeometry]
    fixtures: list[Fixture]
    counter_staff: BaseGeometry | None
    doors: list[Door]
    route: Route
    metrics: dict[str, Any]


def _fixtures_local(local: Sequence[BaseGeometry], kinds: Sequence[str], units: Sequence[int],
                    outline: Polygon, doors: Sequence[LineString], standard: Standard, *,
                    link: bool = True, turns: bool = False, line: list[Fixture] | None = None
                    ) -> tuple[list[Fixture], bool, bool]:
    """Fixtures in the layout frame: against staff walls and outer walls, clear of the doors.

    The counters go first (they take the walls they need and leave the rest); each
    later zone keeps clear the openings onto its public neighbours' *free* floor, so
    a seat row's cross aisle leads onto floor the customers can walk, not onto the
    counters' staff side beyond the wall. With ``link`` the counters back onto the
    staff rooms first and a split line stops short of its corners
    (:func:`siteplanner.floorplan.fixtures.place_fixtures`), and the pockets of its staff
    side cut off from the back of house are joined to it by staff strips along the walls
    (:func:`siteplanner.floorplan._pockets.link_pockets`). Returns the fixtures,
    whether that placement differs from the plain one (``link`` false), and whether the
    counter line differs with ``turns`` the other way (stopped short only of the corners
    it turns, not of every wall's ends). ``line``: the service zone's counters, given
    (another line, :mod:`siteplanner.floorplan._rejoin`).
    """
    m = access_masks(kinds, standard)
    outer = shapely.boundary(outline)
    service_prefer, service_near, rooms_back = _rejoin.service_walls(local, kinds, outline,
                                                                     standard)
    width = standard.route_width_m
    door_clear = shapely.buffer(shapely.union_all(list(doors)), width, cap_style="flat") \
        if doors else shapely.Polygon()
    entrance = shapely.union_all(list(doors)) if doors else None
    near = {"self_service": entrance, "service": service_near}
    back = rooms_back if link else None
    pub = np.flatnonzero(m.public).tolist()
    free = {i: local[i] for i in pub}  # each public zone's floor not yet taken by fixtures
    placed: dict[int, list[Fixture]] = {}
    differs = turnable = False
    for i in sorted(range(len(kinds)), key=lambda i: kinds[i] != "service"):
        geom, kind, n = local[i], kinds[i], units[i]
        if not expected_fixtures(kind, n):
            continue
        openings = _openings([free[j] for j in pub], width, [local[j] for j in pub])
        both = shapely.union_all([door_clear, *[shapely.buffer(o, width, cap_style="flat")
                                                for o in openings]])
        ways = [shapely.intersection(shapely.boundary(geom), shapely.buffer(o, 1e-3))
                for o in [*openings, *doors]]
        ways = [w for w in ways if not w.is_empty and w.length > width]
        prefer = service_prefer if kind == "service" else outer
        placed[i] = line if kind == "service" and line is not None else _zone_fixtures(
            geom, kind, n, standard, ways, (both, door_clear, None), prefer=prefer,
            near=near.get(kind), back=back if kind == "service" else None, turns=turns)
        if kind == "service" and back is not None and line is None:
            differs, turnable = _line_differs(geom, n, standard, prefer, near.get(kind), back,
                                              turns, placed[i])
        if i in free:
            solid = [f.body for f in placed[i] if f.kind != "chair"]
            solid += [f.staff_side for f in placed[i] if f.staff_side is not None]
            free[i] = shapely.difference(geom, shapely.union_all(solid)) if solid else geom
    out = [f for i in sorted(placed) for f in placed[i]]
    out += _staff_strips(local, kinds, out, standard)
    if not link:
        return out, False, False
    linked = link_pockets(local, kinds, out, door_clear, standard, _strip,
                          _route_keeps(local, m, out, doors, standard))
    return out + linked, differs or bool(linked), turnable


def _line_differs(service: BaseGeometry, n: int, standard: Standard, prefer: BaseGeometry,
                  near: BaseGeometry | None, back: BaseGeometry, turns: bool,
                  placed: list[Fixture]) -> tuple[bool, bool]:
    """Whether the counters ``placed`` differ from the plain line, and whether the backed
    line differs with ``turns`` the other way (the counters ignore the floor to keep
    clear, so each line is one call)."""
    def bounds(b: BaseGeometry | None, t: bool) -> list[tuple[float, ...]]:
        line = place_fixtures(service, "service", n, standard, prefer=prefer, near=near,
                              back=b, turns=t)
        return [f.staff_side.bounds for f in line if f.staff_side is not None]
    now = [f.staff_side.bounds for f in placed if f.staff_side is not None]
    return bounds(None, False) != now, bounds(back, not turns) != bounds(back, turns)


def _route_keeps(local: Sequence[BaseGeometry], m: AccessMasks, fixtures: list[Fixture],
                 doors: Sequence[LineString], standard: Standard
                 ) -> Callable[[list[Fixture]], bool]:
    """Whether staff strips leave the public route reaching every public zone and customer
    fixture it reaches without them (the plan's route checks, in the layout frame)."""
    public = {str(i): local[i] for i in np.flatnonzero(m.public).tolist()}

    def missed(strips: list[Fixture]) -> tuple[set[str], set[str]]:
        staff = [f.staff_side for f in [*fixtures, *strips]
                 if f.kind in ("counter", "staff_strip") and f.staff_side is not None]
        zones, blocked, _, _ = unreached(public, fixtures, shapely.union_all(staff) if staff
                                         else None, doors, standard)
        return set(zones), set(blocked)

    before: list[tuple[set[str], set[str]]] = []  # the route without strips, once asked

    def keeps(strips: list[Fixture]) -> bool:
        if not before:
            before.append(missed([]))
        zones, blocked = missed(strips)
        return zones <= before[0][0] and blocked <= before[0][1]
    return keeps


def _zone_fixtures(geom: BaseGeometry, kind: str, n: int, standard: Standard,
                   ways: list[BaseGeometry], avoids: Sequence[BaseGeometry | None], *,
                   prefer: BaseGeometry | None, near: BaseGeometry | None,
                   back: BaseGeometry | None = None, turns: bool = False) -> list[Fixture]:
    """One zone's fixtures: the first placement that leaves its openings joined on a route.

    Keeps the doors and passages (``avoids``, strictest first) clear when the zone
    allows, else the doors, else places freely.
    """
    width = standard.route_width_m
    want = expected_fixtures(kind, n)
    places = wheelchair_places(kind, n, standard)
    through = kind == "waiting"
    # a zone its openings do not join even empty refuses every arrangement: the
    # route check judges it, and the fixtures are placed as if it had no openings
    open_ = _passable(geom, [], ways, width, through=through)

    def accept(cells: list[BaseGeometry]) -> bool:
        return not open_ or _passable(geom, cells, ways, width, through=through)

    best: list[Fixture] | None = None
    got: list[Fixture] = []
    for avoid in avoids:
        got = place_fixtures(geom, kind, n, standard, prefer=prefer, avoid=avoid,
                             wheelchair_places=places, accept=accept, near=near, back=back,
                             turns=turns)
        if count_fixtures(got) != want:
            continue
        if best is None:
            best = got
        if _passable(geom, [f.body for f in got if f.kind != "chair"], ways, width,
                     through=through):
            return got
    return best if best is not None else got


def _openings(free: Sequence[BaseGeometry], width: float,
              zones: Sequence[BaseGeometry] | None = None) -> list[BaseGeometry]:
    """The walls between public zones a ``width``-wide body can pass, on both sides.

    A wall counts only where each zone's free floor (``free``: the zone less the
    fixtures placed in it so far; ``zones``, the zones themselves, default ``free``)
    is at least ``width`` wide behind it (a morphological opening): a wall stretch
    onto a neighbour's narrow nose, or onto its counters' staff side, leads nowhere,
    and keeping only it free of seats closed the neighbour off.
    """
    zones = free if zones is None else zones
    r = width / 2.0 - 1e-3
    wide = [shapely.buffer(shapely.buffer(g, -r, join_style="mitre"), r + 1e-3,
                           join_style="mitre") for g in free]
    out = []
    for i, a in enumerate(zones):
        for j in range(i + 1, len(zones)):
            wall = shapely.intersection(shapely.boundary(a),
                                        shapely.buffer(shapely.boundary(zones[j]), 1e-4))
            out.append(shapely.intersection(wall, shapely.intersection(wide[i], wide[j])))
    return out


def _counter_rooms(local: Sequence[BaseGeometry], kinds: Sequence[str], m: AccessMasks,
                   standard: Standard) -> list[int]:
    """Zones that may open only onto the counters' staff side: the secure zones, and the
    staff rooms staff do not walk through (a WC) with no door-wide wall to one they do."""
    walls = shared_walls(local)
    rooms = m.passable & ~m.public
    out = np.flatnonzero(m.secure).tolist()
    for i in np.flatnonzero(m.staff & ~m.passable).tolist():
        if not (walls[i] >= standard.internal_door_m)[rooms].any():
            out.append(int(i))
    return out


def _staff_strips(local: Sequence[BaseGeometry], kinds: Sequence[str], fixtures: list[Fixture],
                  standard: Standard) -> list[Fixture]:
    """Staff floor along a room's wall to the service zone the counters do not cover.

    The cash room may open only from staff floor and never onto public floor; in
    a branch without a staff room it opens from behind the counter line, and so
    does a WC (staff may not reach it across public floor). Where such a room's
    wall to the service zone runs past the counters' staff side, that staff
    side is grown along the rest of the wall, as deep as the staff side
    (``counter_staff_side_m``), walled off from the customers: the room then sits
    in a staff-only pocket behind the counter line. Not grown where it would take
    the floor of another fixture or its clearance.
    """
    m = access_masks(kinds, standard)
    counters = [f.staff_side for f in fixtures if f.kind == "counter" and f.staff_side is not None]
    if m.service < 0 or not counters:
        return []
    service = local[m.service]
    staff = shapely.buffer(shapely.union_all(counters), 1e-4, join_style="mitre")
    taken = shapely.union_all([f.module for f in fixtures if f.kind != "chair"])
    depth = standard.fixtures.counter_staff_side_m
    near = shapely.buffer(shapely.boundary(service), 1e-4, cap_style="flat")
    out: list[Fixture] = []
    for i in _counter_rooms(local, kinds, m, standard):
        wall = shapely.intersection(shapely.boundary(local[i]), near)
        for piece in shapely.get_parts(shapely.line_merge(shapely.difference(wall, staff))):
            strip = _strip(piece, service, taken, depth)
            if strip is None or shapely.area(shapely.difference(strip, staff)) < 1e-6:
                continue
            out.append(Fixture("staff_strip", "service", shapely.Polygon(), shapely.Polygon(),
                               strip))
            # the next room's strip keeps clear of this one (two rooms on one wall share it)
            taken = shapely.union_all([taken, strip])
            staff = shapely.union_all([staff, shapely.buffer(strip, 1e-4, join_style="mitre")])
    return out


def _strip(wall: BaseGeometry, service: BaseGeometry, taken: BaseGeometry, depth: float
           ) -> BaseGeometry | None:
    """Staff floor ``depth`` deep along one stretch of wall into the service zone, or None.

    It gives way to the floor of the fixtures (and their clearances) it meets away
    from the wall, but must still cover the whole stretch: a strip that leaves any of
    the wall on public floor is no strip.
    """
    if shapely.length(wall) <= 1e-3:
        return None
    band = shapely.buffer(wall, depth, cap_style="flat", join_style="mitre")
    strip = shapely.difference(shapely.intersection(band, service), taken)
    strip = shapely.set_precision(strip, 1e-9)
    strip = shapely.union_all([p for p in shapely.get_parts(strip)
                               if p.geom_type == "Polygon" and p.area > 1e-6])
    if strip.is_empty:
        return None
    covered = shapely.length(shapely.intersection(wall, shapely.buffer(strip, 1e-4)))
    return strip if covered >= shapely.length(wall) - 1e-3 else None


def _passable(zone: BaseGeometry, solid: Sequence[BaseGeometry], ways: Sequence[BaseGeometry],
              width: float, *, through: bool = False) -> bool:
    """Whether a body ``width`` wide still walks between all the zone's openings.

    With ``through`` the body must pass through each opening, not past its end:
    the openings are taken less ``width / 2`` at either end, so a free corner
    that only grazes one does not count (seat rows, which can run the whole
    length of a wall; ATMs keep the looser test, which their wall places need).
    """
    if len(ways) < 1:
        return True
    if through:
        r = width / 2.0 - 1e-3
        ways = [shapely.difference(w, shapely.buffer(shapely.boundary(w), r)) for w in ways]
    floor = shapely.difference(zone, shapely.union_all(solid)) if solid else zone
    core = shapely.buffer(floor, -(width / 2.0 - 1e-3), join_style="mitre")
    if core.is_empty:
        return False
    parts = np.asarray(shapely.get_parts(core), dtype=object)
    touch = [set(np.flatnonzero(shapely.dwithin(parts, w, width / 2.0 + 2e-3)).tolist())
             for w in ways]
    return all(t for t in touch) and bool(set.intersection(*touch))


def _behind_counter(zones: Sequence[BaseGeometry], kinds: Sequence[str],
                    counter_staff: BaseGeometry | None) -> np.ndarray:
    """Per zone: the length of its wall to the service zone the counters' staff side covers."""
    out = np.zeros(len(kinds))
    if counter_staff is None or "service" not in kinds:
        return out
    service = zones[list(kinds).index("service")]
    strip = shapely.buffer(counter_staff, 1e-4, join_style="mitre")
    near = shapely.buffer(shapely.boundary(service), 1e-4, cap_style="flat")
    for i, g in enumerate(zones):
        if kinds[i] != "service":
            wall = shapely.intersection(shapely.boundary(g), near)
            out[i] = float(shapely.length(shapely.intersection(wall, strip)))
    return out


#: Grid (metres) the turned plan is snapped to. GEOS's overlay can return the wrong
#: piece for two turned polygons whose shared wall is collinear only to rounding
#: (a measured case: a 31 m² "overlap" of two zones that share one wall); on a
#: nanometre grid it is exact.
_WORLD_GRID = 1e-9


def _world(local: Sequence[BaseGeometry], back: list[float]) -> list[BaseGeometry]:
    turned = [affine_transform(g, back) for g in local]
    return list(shapely.set_precision(np.asarray(turned, dtype=object), _WORLD_GRID))


def _to_world(fx: Fixture, back: list[float]) -> Fixture:
    def t(g: BaseGeometry | None) -> Any:
        return None if g is None else _world([g], back)[0]

    return Fixture(fx.kind, fx.zone, t(fx.body), t(fx.clearance), t(fx.staff_side))


def _surplus_name(kinds: list[str], walls: np.ndarray, cover: np.ndarray,
                  standard: Standard) -> list[str]:
    """``flex`` becomes ``circulation`` when the public route runs through it."""
    if FLEX not in kinds:
        return kinds
    m = access_masks(kinds, standard)
    pub = [i for i in np.flatnonzero(m.public) if kinds[i] != FLEX]
    at_door = [i for i in pub if cover[i].max(initial=0.0) >= standard.min_shared_wall_m]
    adj = walls[np.ix_(pub, pub)] >= standard.route_width_m
    _, label = connected_components(csr_matrix(adj), directed=False)
    entry = {label[pub.index(i)] for i in at_door}
    if len(pub) and all(lab in entry for lab in label):
        return kinds
    return [CIRCULATION if k == FLEX else k for k in kinds]


def check_fixtures(fixtures: Sequence[Fixture], zones: dict[str, BaseGeometry],
                    units: dict[str, int]) -> dict[str, dict[str, Any]]:
    want: dict[str, int] = {}
    for kind, n in units.items():
        want.update(expected_fixtures(kind, n))
    got = count_fixtures(fixtures)
    outside = sorted({f"{f.kind} in {f.zone}" for f in fixtures
                      if not shapely.covers(shapely.buffer(zones[f.zone], 1e-4, join_style="mitre"),
                                            f.module)})
    bodies = np.asarray([shapely.buffer(f.module if f.kind != "chair" else f.body, -1e-4,
                                        join_style="mitre") for f in fixtures], dtype=object)
    overlap: list[str] = []
    if bodies.size > 1:
        tree = shapely.STRtree(bodies)
        a, b = tree.query(bodies, predicate="intersects")
        chairs = np.array([f.kind == "chair" for f in fixtures])
        same_desk = chairs[a] | chairs[b]  # a desk's own chairs stand in its clear cell
        hit = (a < b) & ~same_desk
        overlap = [f"{fixtures[i].kind}/{fixtures[j].kind}" for i, j in zip(a[hit], b[hit],
                                                                            strict=True)]
    return {
        "fixtures_match_programme": {"pass": got == want, "detail": f"placed {got}, planned {want}"},
        "fixtures_inside_zone": {"pass": not outside, "detail": f"fixtures or clearances outside "
                                 f"their zone: {outside}" if outside else
                                 "every fixture and its clearance lies inside its zone"},
        "fixtures_no_overlap": {"pass": not overlap, "detail": f"overlapping fixtures: "
                                f"{overlap[:5]}" if overlap else "no two fixtures overlap"},
    }


def _size_check(kinds: Sequence[str], area: np.ndarray, programme: np.ndarray,
                standard: Standard, residue_m2: float = 0.0
                ) -> tuple[dict[str, Any], dict[str, float]]:
    """Zones within ``max_zone_ratio`` of their programme, plus their share of the residue.

    The residue is surplus floor too small for a usable flex zone, spread over the
    ``surplus_to`` zones as circulation in proportion to their programme (see
    :func:`~siteplanner.floorplan.plan.allot`); it is reported, so it is labelled.
    """
    ratio = {k: float(a / p) for k, a, p in zip(kinds, area, programme, strict=True) if p > 0}
    takers = [k for k in standard.surplus_to if k in kinds]
    prog = dict(zip(kinds, programme.tolist(), strict=True))
    total = sum(prog[k] for k in takers)
    allow = {k: standard.max_zone_ratio + (residue_m2 / total if k in takers and total > 0
                                           else 0.0) for k in ratio}
    over = [f"{k} {r:.2f}x" for k, r in ratio.items() if r > allow[k] + 1e-6]
    return ({"pass": not over, "detail": f"zones over {standard.max_zone_ratio:g}x their programme: "
             f"{over}" if over else f"every programme zone is at most "
             f"{standard.max_zone_ratio:g}x its programme"
             + (f" plus its share of the {residue_m2:.1f} m² circulation residue" if residue_m2 > 0
                else "") + f"; the rest is labelled {FLEX} or {CIRCULATION}"}, ratio)


def _wide(g: BaseGeometry, width: float) -> float:
    """Share of the minimum-width rule met (1 when a disc ``width`` wide sweeps enough of it)."""
    if g.geom_type != "Polygon" or g.is_empty:
        return 0.0
    return min(float(width_kept([g], np.array([width]))[0]) / WIDTH_KEEP, 1.0)


def _carvings(geom: BaseGeometry, flex_m2: float, need: float
              ) -> list[tuple[BaseGeometry, BaseGeometry]]:
    """Ways to cut ``flex_m2`` off a zone: straight cuts at either end, or the zone as a
    rectangle against one wall (as deep as it needs, as square as it can be)."""
    out = []
    keep = geom.area - flex_m2
    for vertical in (True, False):
        for flex_low in (True, False):
            share = flex_m2 / geom.area if flex_low else keep / geom.area
            low, high = _split(geom, share, vertical)
            out.append((high, low) if flex_low else (low, high))
    square = max(need + 0.01, min(np.sqrt(keep), keep / (need + 0.01)))
    for vertical, depth in itertools.product((True, False), sorted({need + 0.01, square})):
        for at_low in (True, False):
            for end in (0, 1):
                cut = _band(geom, keep, depth, vertical, at_low, end, np.empty((0, 2)))
                if cut is not None:
                    out.append(cut)
    # a concave zone: cuts along the lines through its reflex corners, the area the
    # line misses moved across in a tab, so neither piece keeps a neck
    if geom.geom_type == "Polygon":
        for (t, vertical), end in itertools.product(_reflex_lines(geom), (0, 1)):
            for flex_low in (True, False):
                cut = _stepped(geom, flex_m2 if flex_low else keep, t, vertical, need + 0.01, end)
                if cut is not None:
                    out.append((cut[1], cut[0]) if flex_low else cut)
    return out


def carve_flex(local: list[BaseGeometry], kinds: list[str], targets: np.ndarray,
               programme: np.ndarray, units: list[int], host: str, flex_m2: float,
               doors: Sequence[Point], standard: Standard) -> tuple[list[BaseGeometry], list[str], np.ndarray,
                                                np.ndarray, list[int]]:
    """Cut ``flex_m2`` off the host zone, across its long side, on the end away from the doors."""
    if flex_m2 <= 0:
        return local, kinds, targets, programme, units
    need = max(standard.spec(host).min_width_m, standard.turning_circle_m)
    flex_need = max(standard.spec(FLEX).min_width_m, standard.turning_circle_m)
    k = kinds.index(host)
    geom = local[k]
    door = shapely.multipoints(list(doors))
    others = shapely.buffer(shapely.union_all([shapely.boundary(g) for i, g in enumerate(local)
                                               if i != k]), 1e-4, cap_style="flat")
    best: tuple[tuple[float, ...], BaseGeometry, BaseGeometry] | None = None
    for zone, flex in _carvings(geom, flex_m2, need):
        if zone.geom_type != "Polygon" or flex.geom_type != "Polygon":
            continue
        # both pieces as wide as their zones need, the zone keeping its walls to its
        # neighbours, then the flex piece away from the doors
        score = (min(_wide(zone, need), _wide(flex, standard.turning_circle_m)),
                 _wide(flex, flex_need),
                 round(float(shapely.length(shapely.intersection(shapely.boundary(zone), others))), 2),
                 float(shapely.distance(flex, door)))
        if best is None or score > best[0]:
            best = (score, zone, flex)
    if best is None:
        return local, kinds, targets, programme, units
    _, zone, flex = best
    local = [*local[:k], zone, *local[k + 1:], flex]
    t = targets.copy()
    t[k] -= flex_m2
    # a piece too narrow for flex use but wide enough to walk and turn in is circulation
    name = FLEX if _wide(flex, flex_need) >= 1.0 else CIRCULATION
    return (local, [*kinds, name], np.append(t, flex_m2), np.append(programme, 0.0),
            [*units, 0])


def assemble(local: Sequence[BaseGeometry], kinds: Sequence[str], targets: np.ndarray,
             programme: np.ndarray, units: Sequence[int], outline: Polygon,
             local_outline: Polygon, entrances: Sequence[Point], local_doors: Sequence[Point],
             back: list[float], standard: Standard, *, host: str = "",
             flex_m2: float = 0.0, residue_m2: float = 0.0) -> Assembled:
    """Fixtures, doors and every hard constraint of one decoded layout."""
    local, names, targets, programme, units = carve_flex(
        list(local), list(kinds), targets, programme, list(units), host, flex_m2, local_doors, standard)
    zones = _world(local, back)
    metrics = check_layout(zones, names, targets, outline, entrances, standard)
    metrics["constraints"].pop("turning_circle", None)  # the route's check counts fixtures
    walls = shared_walls(zones)
    door_lines = door_segments(outline, entrances, standard.door_width_m)
    cover = door_cover(zones, door_lines)
    kinds = names
    names = _surplus_name(names, walls, cover, standard)
    local_door_lines = door_segments(local_outline, local_doors, standard.door_width_m)
    args = (local, kinds, names, zones, units, targets, programme, outline, entrances,
            local_outline, local_door_lines, door_lines, walls, cover, back, metrics, standard,
            residue_m2)
    done, differs, turnable = _fitted(*args, link=True)
    if differs and not done.metrics["all_constraints_pass"]:
        # the counters backed onto the staff rooms, or the strips joining a split line's
        # pockets, took floor the plan needs (a route, a clear space): the counters by
        # the walls alone, their pockets reported if cut off (and, when that fails too,
        # its failures, which the callers' retries read, as before)
        return _fitted(*args, link=False)[0]
    cut = done.metrics["counter_pockets_cut_off"]
    if cut and turnable and done.metrics["all_constraints_pass"]:
        # cashiers still cut off: the line stopped short only of the corners it turns
        # keeps a short wall to the back office for its end (a passing plan with fewer
        # pockets cut off, or this one)
        other = _fitted(*args, link=True, turns=True)[0]
        if other.metrics["all_constraints_pass"] and \
                len(other.metrics["counter_pockets_cut_off"]) < len(cut):
            done = other
    if done.metrics["counter_pockets_cut_off"] and done.metrics["all_constraints_pass"]:
        # still cut off: the stations beyond the back office's wall sent to another wall
        done = _rejoin.retry(done, local, kinds, units, standard, local_outline,
                             lambda line: _fitted(*args, link=True, line=line)[0])
    return done


def _fitted(local: list[BaseGeometry], kinds: list[str], names: list[str],
            zones: list[BaseGeometry], units: list[int], targets: np.ndarray,
            programme: np.ndarray, outline: Polygon, entrances: Sequence[Point],
            local_outline: Polygon, local_door_lines: list[LineString],
            door_lines: list[LineString], walls: np.ndarray, cover: np.ndarray, back: list[float],
            layout_metrics: dict[str, Any], standard: Standard, residue_m2: float, *,
            link: bool, turns: bool = False, line: list[Fixture] | None = None
            ) -> tuple[Assembled, bool, bool]:
    """One layout's fixtures, doors and full checks, whether its placement differs from the
    plain one and whether its counter line does with ``turns`` the other way (``link``,
    ``turns``: see :func:`_fixtures_local`)."""
    metrics = copy.deepcopy(layout_metrics)
    placed, differs, turnable = _fixtures_local(local, kinds, units, local_outline,
                                                local_door_lines, standard, link=link,
                                                turns=turns, line=line)
    fixtures = [_to_world(f, back) for f in placed]
    counters = [f.staff_side for f in fixtures if f.kind in ("counter", "staff_strip")
                and f.staff_side is not None]
    counter_staff = shapely.union_all(counters) if counters else None
    doors = plan_doors(zones, names, walls, counter_staff, standard)
    doors += [Door("entrance", "street", names[int(np.argmax(cover[:, j]))], line)
              for j, line in enumerate(door_lines)]
    by_kind = dict(zip(names, zones, strict=True))
    checks = check_fixtures(fixtures, by_kind, dict(zip(names, units, strict=True)))
    checks |= check_access(names, walls, doors, cover, bool(counters), standard,
                           behind_counter=_behind_counter(zones, names, counter_staff))
    m = access_masks(names, standard)
    public = {k: g for k, g, p in zip(names, zones, m.public, strict=True) if p}
    route_checks, route = check_route(public, fixtures, counter_staff, door_lines, standard)
    checks |= route_checks
    size, ratio = _size_check(names, shapely.area(np.asarray(zones, dtype=object)), programme,
                              standard, residue_m2)
    checks["zone_size_honest"] = size
    metrics["constraints"] |= checks
    metrics["all_constraints_pass"] = all(c["pass"] for c in metrics["constraints"].values())
    metrics["zone_programme_ratio"] = ratio
    metrics["egress_m"] = route.egress_m
    metrics["fixtures"] = count_fixtures(fixtures)
    metrics["access"] = dict(zip(names, m.access, strict=True))
    # reported, not yet a hard constraint: counter pockets (or a whole line) with no
    # staff-only way to the cash room
    pockets, cut = pockets_cut_off(counter_staff, doors, names, standard, shapely.union_all(
        [f.staff_side for f in fixtures if f.kind == "counter" and f.staff_side is not None]))
    metrics["counter_pockets_cut_off"] = [pocket_name(p, len(pockets)) for p in cut]
    # the stations standing in them, by their index in the plan's fixtures
    cut_floor = shapely.union_all(pockets[cut]) if cut else None
    metrics["counters_cut_off"] = [] if cut_floor is None else [
        k for k, f in enumerate(fixtures) if f.kind == "counter" and f.staff_side is not None
        and bool(shapely.intersects(f.staff_side, cut_floor))]
    metrics["staff_rooms_cut_off"] = staff_rooms_cut_off(counter_staff, doors, names, standard)
    metrics["doors"] = [{"kind": d.kind, "between": [d.a, d.b], "width_m": round(d.geometry.length, 2)}
                        for d in doors]
    metrics["targets_m2"] = dict(zip(names, targets.tolist(), strict=True))
    metrics["programmes_m2"] = dict(zip(names, programme.tolist(), strict=True))
    return (Assembled(tuple(names), zones, fixtures, counter_staff, doors, route, metrics),
            differs, turnable)
