"""Fixtures inside the zones: counters, ATMs, seats, advisory desks and the safe.

Placement works in the layout frame, where the zones' walls run along the axes.
Every fixture is a *body* (what stands on the floor) and a *clearance* (the floor
that must stay free in front of it); body plus clearance is a module that must
lie inside its zone, and modules never overlap. Modules are found by testing
candidate boxes against the zone in one vectorised ``covers`` call:

- counters: ``units`` stations side by side along one straight wall, staff side
  against the wall, then the counter top, then the customer side;
- ATMs: against a wall, each with its clear space in front;
- the safe: against a wall, with its door-swing clearance;
- seats: rows along the zone's long side with an aisle in front of each row;
  wheelchair places at the row ends;
- advisory desks: one square cell each, a staff chair behind and two customer
  chairs in front.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan._wallrun import EPS as _EPS
from siteplanner.floorplan._wallrun import overlaps as _overlaps
from siteplanner.floorplan._wallrun import take as _take
from siteplanner.floorplan.access import counter_pockets
from siteplanner.floorplan.standard import Standard

__all__ = ["FIXTURE_OF", "Fixture", "count_fixtures", "expected_fixtures", "fits",
           "place_fixtures", "wheelchair_places"]

Accept = Callable[[list[BaseGeometry]], bool]

#: The fixture kind that counts each zone's units (zones not listed get none).
FIXTURE_OF = {"service": "counter", "self_service": "atm", "waiting": "seat",
              "advisory": "desk", "vault": "safe"}


@dataclass(frozen=True)
class Fixture:
    """One fixture: its kind, zone, the body on the floor and the clear floor it needs."""

    kind: str
    zone: str
    body: Polygon
    clearance: BaseGeometry
    #: For counters: the staff side behind the counter top (staff-only floor).
    staff_side: BaseGeometry | None = None

    @property
    def module(self) -> BaseGeometry:
        """Body plus clearance (plus the staff side): what must stay inside the zone."""
        parts = [self.body, self.clearance] + ([self.staff_side] if self.staff_side else [])
        return shapely.union_all(parts)


def expected_fixtures(kind: str, units: int) -> dict[str, int]:
    """Fixtures of each kind the programme of one zone asks for."""
    fx = FIXTURE_OF.get(kind)
    return {} if fx is None else {fx: int(units)}


def _edges(zone: BaseGeometry, *, slanted: bool = False) -> np.ndarray:
    """Exterior edges ``(x0, y0, x1, y1)`` of a zone, counter-clockwise: the axis-parallel
    ones, and with ``slanted`` the others too (a chamfer or a skewed outer wall)."""
    ring = shapely.get_exterior_ring(shapely.orient_polygons(zone))
    c = shapely.get_coordinates(ring)
    e = np.hstack([c[:-1], c[1:]])
    axis = (np.abs(e[:, 0] - e[:, 2]) < _EPS) | (np.abs(e[:, 1] - e[:, 3]) < _EPS)
    length = np.hypot(e[:, 2] - e[:, 0], e[:, 3] - e[:, 1])
    return e[(axis | slanted) & (length > _EPS)]


def _slanted(edge: np.ndarray) -> np.ndarray:
    """Whether each edge runs along neither axis."""
    e = np.asarray(edge, dtype=float).reshape(-1, 4)
    return (np.abs(e[:, 0] - e[:, 2]) >= _EPS) & (np.abs(e[:, 1] - e[:, 3]) >= _EPS)


def _frame(edge: np.ndarray, s: np.ndarray, width: float,
           depth_lo: np.ndarray | float, depth_hi: np.ndarray | float) -> np.ndarray:
    """Rectangles along an edge: from ``s`` to ``s + width`` along it, ``depth_lo..depth_hi``
    inward; boxes on an axis-parallel edge, turned with the wall on a slanted one."""
    x0, y0, x1, y1 = np.asarray(edge, dtype=float).T
    length = np.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    nx, ny = -uy, ux  # interior is to the left of a counter-clockwise edge
    a = np.asarray(s, dtype=float)
    b = a + width
    lo = np.broadcast_to(np.asarray(depth_lo, dtype=float), a.shape)
    hi = np.broadcast_to(np.asarray(depth_hi, dtype=float), a.shape)
    xs = np.stack([x0 + ux * a + nx * lo, x0 + ux * b + nx * hi], axis=1)
    ys = np.stack([y0 + uy * a + ny * lo, y0 + uy * b + ny * hi], axis=1)
    out = shapely.box(xs.min(axis=1), ys.min(axis=1), xs.max(axis=1), ys.max(axis=1))
    turned = np.broadcast_to(_slanted(np.asarray(edge, dtype=float)), a.shape)
    if turned.any():
        t = np.flatnonzero(turned)
        x0, y0, ux, uy, nx, ny = (np.broadcast_to(v, a.shape)[t] for v in (x0, y0, ux, uy, nx, ny))
        corners = np.stack([np.stack([x0 + ux * p + nx * q, y0 + uy * p + ny * q], axis=1)
                            for p, q in ((a[t], lo[t]), (b[t], lo[t]), (b[t], hi[t]),
                                         (a[t], hi[t]))], axis=1)
        out = np.asarray(out, dtype=object).copy()
        out[t] = shapely.polygons(corners)
    return out


def _counters(zone: BaseGeometry, n: int, std: Standard, prefer: BaseGeometry | None,
              near: BaseGeometry | None, *, back: BaseGeometry | None = None,
              turns: bool = False, slanted: bool = True) -> list[Fixture]:
    """``n`` counter stations, staff side against the wall, on the best walls first.

    Stations whose staff side backs onto ``back`` (the staff rooms staff walk
    through: the cashiers' way to the cash room) come first, then walls touching
    ``prefer`` (staff rooms and outer walls), the
    longest first; along them, stations start from
    ``near`` (a cash room's wall, which their staff side then covers) and grow
    outwards, so the line stays in one run; a line too long for one wall turns
    the corner onto the next. When the walls along the axes hold too few, the
    slanted walls (a chamfer, a skewed outer wall) are used too, the stations
    standing square to them.
    """
    out = _counter_line(zone, n, std, prefer, near, back, turns=turns, slanted=False)
    if len(out) < n and slanted:
        turned = _counter_line(zone, n, std, prefer, near, back, turns=turns, slanted=True)
        if len(turned) > len(out):
            return turned
    return out


def _counter_line(zone: BaseGeometry, n: int, std: Standard, prefer: BaseGeometry | None,
                  near: BaseGeometry | None, back: BaseGeometry | None = None, *,
                  turns: bool = False, slanted: bool) -> list[Fixture]:
    """Up to ``n`` stations (see :func:`_counters`), on slanted walls too with ``slanted``."""
    f = std.fixtures
    depth = f.counter_staff_side_m + f.counter_depth_m + f.counter_customer_side_m
    edges = _edges(zone, slanted=slanted)
    edge, start, modules = _wall_modules(zone, f.counter_module_m, depth, None, slanted=slanted)
    if not modules.size:
        return []
    lines = shapely.linestrings(edges[edge].reshape(-1, 2, 2))
    score = np.zeros(len(modules))
    if prefer is not None and not prefer.is_empty:
        score = np.round(shapely.length(shapely.intersection(
            lines, shapely.buffer(prefer, 1e-4, cap_style="flat"))), 6)
    dist = np.zeros(len(modules)) if near is None or near.is_empty else \
        np.round(shapely.distance(modules, near), 6)
    # the wall shared with a cash room first: its staff side then covers that wall
    on_near = np.zeros(len(modules), dtype=bool) if near is None or near.is_empty else \
        shapely.length(shapely.intersection(lines, shapely.buffer(near, 1e-4, cap_style="flat"))) \
        > 1e-3
    # then the stations whose staff side backs onto a staff room over most of a module
    backed = np.zeros(len(modules), dtype=bool)
    if back is not None and not back.is_empty:
        e = edges[edge]
        u = (e[:, 2:] - e[:, :2]) / np.hypot(e[:, 2] - e[:, 0], e[:, 3] - e[:, 1])[:, None]
        a = e[:, :2] + u * start[:, None]
        walls = shapely.linestrings(np.stack([a, a + u * f.counter_module_m], axis=1))
        backed = shapely.length(shapely.intersection(
            walls, shapely.buffer(back, 1e-4, cap_style="flat"))) > f.counter_module_m / 2
    key = np.lexsort((start, dist, -shapely.length(lines), edge, -score, ~backed, ~on_near))
    box = shapely.bounds(modules)
    turned = _slanted(edges[edge])
    taken = _take(key, n, box, modules, turned)
    if back is not None and len(taken) > 1 and len(counter_pockets(shapely.union_all(_frame(
            edges[edge[taken]], start[taken], f.counter_module_m, 0.0,
            f.counter_staff_side_m)))) > 1:
        # a line over several walls: stopped a staff side's depth short of every wall's
        # ends (or with ``turns`` of the corners it turns), its runs leave the corners
        # free for the staff floor that joins them (siteplanner.floorplan._pockets)
        cornered = _take(key[_clear_of_turns(edges, edge, start, taken, f.counter_module_m,
                                             f.counter_staff_side_m, every=not turns)[key]],
                         n, box, modules, turned)
        if len(cornered) == len(taken):
            taken = cornered
    # every station at once: an edge row and a start per station
    e, s0 = edges[edge[taken]], start[taken]
    staff = _frame(e, s0, f.counter_module_m, 0.0, f.counter_staff_side_m)
    body = _frame(e, s0, f.counter_module_m, f.counter_staff_side_m,
                  f.counter_staff_side_m + f.counter_depth_m)
    front = _frame(e, s0, f.counter_module_m, f.counter_staff_side_m + f.counter_depth_m, depth)
    out = [Fixture("counter", "service", b, c, st)
           for b, c, st in zip(body, front, staff, strict=True)]
    if len(out) < n and (prefer is not None or near is not None or back is not None):
        # the preferred walls first can strand a station at a corner; the plain order
        # (each wall from its start, as fits() counts) packs them when it holds them all
        plain = _counter_line(zone, n, std, None, None, slanted=slanted)
        if len(plain) > len(out):
            return plain
    return out


def _clear_of_turns(edges: np.ndarray, edge: np.ndarray, start: np.ndarray, taken: list[int],
                    width: float, depth: float, *, every: bool = False) -> np.ndarray:
    """Per module: whether it stands ``depth`` clear of each end of its wall where the wall
    meets another that holds a module of ``taken`` (a corner the line turns), or with
    ``every`` of both ends of every wall. A line's free end may stand in a corner, which
    keeps a short wall to the back office for it; clearing every end moves a line off
    walls too short to hold a station clear of both corners."""
    used = np.zeros(len(edges), dtype=bool)
    used[np.unique(edge[taken])] = True
    # an edge's start meets the edge ending there (the ring is counter-clockwise)
    meet = np.all(np.abs(edges[:, None, 2:] - edges[None, :, :2]) < 1e-6, axis=2)
    turn_in = (meet & used[:, None]).any(axis=0) | every  # an edge before it holds a module
    turn_out = (meet & used[None, :]).any(axis=1) | every  # an edge after it does
    length = np.hypot(*(edges[edge][:, 2:] - edges[edge][:, :2]).T)
    return ((~turn_in[edge] | (start >= depth - _EPS))
            & (~turn_out[edge] | (start + width <= length - depth + _EPS)))


def _wall_modules(zone: BaseGeometry, width: float, depth: float,
                  avoid: BaseGeometry | None, *, slanted: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``width``-wide, ``depth``-deep module against a wall that fits the zone.

    Modules start every ``width / 3`` along each wall and flush with its far
    end; returns each module's edge index (into ``_edges(zone, slanted=slanted)``),
    its start along the edge and the module.
    """
    edges = _edges(zone, slanted=slanted)
    rows_e, rows_s, boxes = [], [], []
    for k, e in enumerate(edges):
        length = float(np.hypot(e[2] - e[0], e[3] - e[1]))
        if length + _EPS < width:
            continue
        starts = np.unique(np.append(np.arange(0.0, length - width + _EPS, width / 3.0),
                                     max(length - width, 0.0)))
        rows_e.append(np.full(starts.size, k))
        rows_s.append(starts)
        boxes.append(_frame(e, starts, width, 0.0, depth))
    if not boxes:
        return np.empty(0, dtype=int), np.empty(0), np.empty(0, dtype=object)
    edge, start, box = np.concatenate(rows_e), np.concatenate(rows_s), np.concatenate(boxes)
    ok = shapely.covers(shapely.buffer(zone, _EPS, join_style="mitre"), box)
    if avoid is not None and not avoid.is_empty:
        ok &= ~shapely.intersects(shapely.buffer(box, -_EPS), avoid)
    return edge[ok], start[ok], box[ok]


def _against_walls(zone: BaseGeometry, kind: str, zone_kind: str, n: int, width: float,
                   body_w: float, body_d: float, clear_d: float, prefer: BaseGeometry | None,
                   avoid: BaseGeometry | None, *, near: BaseGeometry | None = None,
                   accept: Accept | None = None, slanted: bool = True) -> list[Fixture]:
    """``n`` modules ``width`` wide against walls: body at the wall, clearance in front.

    Modules nearest ``near`` (the entrance, for ATMs) are taken first, else those
    on walls touching ``prefer``, longest wall first; a module ``accept`` refuses
    (given the bodies so far, it would close a passage) is passed over. With
    ``slanted``, when the walls along the axes hold too few, the slanted walls
    hold modules too, turned square to them.
    """
    args = (zone, kind, zone_kind, n, width, body_w, body_d, clear_d, prefer, avoid)
    out = _wall_row(*args, near=near, accept=accept, slanted=False)
    if len(out) < n and slanted:
        turned = _wall_row(*args, near=near, accept=accept, slanted=True)
        if len(turned) > len(out):
            return turned
    return out


def _wall_row(zone: BaseGeometry, kind: str, zone_kind: str, n: int, width: float,
              body_w: float, body_d: float, clear_d: float, prefer: BaseGeometry | None,
              avoid: BaseGeometry | None, *, near: BaseGeometry | None, accept: Accept | None,
              slanted: bool) -> list[Fixture]:
    """Up to ``n`` wall modules in one order (see :func:`_against_walls`)."""
    edges = _edges(zone, slanted=slanted)
    edge, start, modules = _wall_modules(zone, width, body_d + clear_d, avoid, slanted=slanted)
    if not modules.size:
        return []
    lines = shapely.linestrings(edges[edge].reshape(-1, 2, 2))
    length = shapely.length(lines)
    if near is not None and not near.is_empty:
        key = np.lexsort((start, edge, shapely.distance(modules, near)))
    else:
        score = np.zeros(len(modules))
        if prefer is not None and not prefer.is_empty:
            score = np.round(shapely.length(shapely.intersection(
                lines, shapely.buffer(prefer, 1e-4, cap_style="flat"))), 6)
        key = np.lexsort((start, edge, -length, -score))
    box = shapely.bounds(modules)
    turned = _slanted(edges[edge])
    taken: list[int] = []
    out: list[Fixture] = []
    for i in key:
        if taken and _overlaps(box, i, taken, modules, turned):
            continue
        e, s = edges[edge[i]], float(start[i])
        side = (width - body_w) / 2.0
        body = _frame(e, np.array([s + side]), body_w, 0.0, body_d)[0]
        if accept is not None and not accept([*(f.body for f in out), body]):
            continue
        clear = _frame(e, np.array([s]), width, body_d, body_d + clear_d)[0]
        taken.append(int(i))
        out.append(Fixture(kind, zone_kind, body, clear))
        if len(out) == n:
            break
    if len(out) < n and (near is not None or prefer is not None):
        # nearest the door first leaves gaps between modules that a wall taken from its
        # start does not (what fits() counts): the plain order when it holds more
        plain = _wall_row(zone, kind, zone_kind, n, width, body_w, body_d, clear_d, None,
                          avoid, near=None, accept=accept, slanted=slanted)
        if len(plain) > len(out):
            return plain
    return out


def _grid(zone: BaseGeometry, cell_w: float, cell_d: float, *, along_x: bool,
          margin: float) -> np.ndarray:
    """Cells ``cell_w`` along the long axis by ``cell_d`` across, wholly inside the zone.

    Rows start at the low wall across the long axis; ``margin`` is kept free at
    the low end of every row (the cross aisle of the main route).
    """
    x0, y0, x1, y1 = zone.bounds
    if not along_x:
        x0, y0, x1, y1 = y0, x0, y1, x1
    nx = int(np.floor((x1 - x0 - margin + _EPS) / cell_w))
    ny = int(np.floor((y1 - y0 + _EPS) / cell_d))
    if nx < 1 or ny < 1:
        return np.empty(0, dtype=object)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny))
    a = x0 + margin + i.ravel() * cell_w
    b = y0 + j.ravel() * cell_d
    boxes = (shapely.box(a, b, a + cell_w, b + cell_d) if along_x else
             shapely.box(b, a, b + cell_d, a + cell_w))
    inside = shapely.covers(shapely.buffer(zone, _EPS, join_style="mitre"), boxes)
    return boxes[inside]


def _long_x(zone: BaseGeometry) -> bool:
    x0, y0, x1, y1 = zone.bounds
    return x1 - x0 >= y1 - y0


def _fill_order(cells: np.ndarray, need: int, along: bool, *, aisle_high: bool = False
                ) -> np.ndarray:
    """The cells in the order the seats take them: whole rows, the last row from its far end.

    The cross aisle runs at the low end of every row (see :func:`_grid`; the high
    end with ``aisle_high``, the grid of a zone turned end for end). Taking
    a part-filled last row from the other end leaves its free cells next to the
    cross aisle, one open space at least the aisle plus a cell wide and a cell
    (seat and aisle) deep, where a wheelchair can turn (1.5 m circle, ADA 304).
    Filled from the aisle end, a zone at its programme area kept the aisle and
    the free cells apart, neither wide enough.
    """
    if need <= 0 or cells.size <= need:
        return cells
    lo = shapely.bounds(cells)
    row = np.round(lo[:, 1] if along else lo[:, 0], 6)
    pos = lo[:, 0] if along else lo[:, 1]
    last = np.flatnonzero(row == row[need - 1])  # consecutive: the grid is row by row
    order = np.arange(cells.size)
    order[last] = last[np.argsort(pos[last] if aisle_high else -pos[last], kind="stable")]
    return cells[order]


def _seat_parts(cell: BaseGeometry, along: bool, up: bool, d: float
                ) -> tuple[BaseGeometry, BaseGeometry]:
    """A seat cell's seat (``d`` deep, on the low side when ``up``) and its aisle."""
    x0, y0, x1, y1 = cell.bounds
    if along:
        return ((shapely.box(x0, y0, x1, y0 + d), shapely.box(x0, y0 + d, x1, y1)) if up
                else (shapely.box(x0, y1 - d, x1, y1), shapely.box(x0, y0, x1, y1 - d)))
    return ((shapely.box(x0, y0, x0 + d, y1), shapely.box(x0 + d, y0, x1, y1)) if up
            else (shapely.box(x1 - d, y0, x1, y1), shapely.box(x0, y0, x1 - d, y1)))


def _seat_bodies(cells: np.ndarray, along: bool, up: bool, d: float) -> list[BaseGeometry]:
    return [_seat_parts(c, along, up, d)[0] for c in cells]


def _seat_cells(zone: BaseGeometry, std: Standard, need: int, avoid: BaseGeometry | None,
                accept: Accept | None = None) -> tuple[np.ndarray, bool, bool]:
    """Seat cells (seat plus aisle), trying rows along either axis from either wall.

    Returns the cells, whether rows run along x, and whether the seats face up
    the row axis (their aisle on the high side). The first arrangement that
    holds ``need`` cells clear of ``avoid`` (and, given ``accept``, leaves the
    zone passable past the seats, their aisles walkable as the route check has them) wins,
    the long axis first.
    """
    f = std.fixtures
    cx, cy = shapely.get_coordinates(shapely.centroid(zone))[0]
    best: tuple[np.ndarray, bool, bool] = (np.empty(0, dtype=object), True, True)
    for along in (_long_x(zone), not _long_x(zone)):
        for end, mirror in itertools.product((False, True), repeat=2):
            # mirror: the seats face the other long wall; end: the cross aisle at the
            # other end of the rows (next to whichever neighbour it opens onto)
            flip = (-1.0 if end else 1.0, -1.0 if mirror else 1.0)
            sx, sy = flip if along else flip[::-1]
            g = affinity.scale(zone, sx, sy, origin=(cx, cy)) if mirror or end else zone
            cells = _grid(g, f.seat_width_m, f.seat_depth_m + f.seat_aisle_m, along_x=along,
                          margin=std.route_width_m)
            if (mirror or end) and cells.size:
                cells = np.asarray([affinity.scale(c, sx, sy, origin=(cx, cy)) for c in cells],
                                   dtype=object)
            if avoid is not None and not avoid.is_empty and cells.size:
                cells = cells[~shapely.intersects(shapely.buffer(cells, -_EPS), avoid)]
            cells = _fill_order(cells, need, along, aisle_high=end)
            if cells.size >= need and (accept is None or accept(
                    _seat_bodies(cells[:need], along, not mirror, f.seat_depth_m))):
                return cells, along, not mirror
            if cells.size > best[0].size:
                best = (cells, along, not mirror)
    return best


def _seats(zone: BaseGeometry, n: int, places: int, std: Standard,
           avoid: BaseGeometry | None, accept: Accept | None = None) -> list[Fixture]:
    f = std.fixtures
    per_place = int(np.ceil(f.wheelchair_place_m / f.seat_width_m))
    cells, along, up = _seat_cells(zone, std, n + places * per_place, avoid, accept)
    if accept is not None and not accept(_seat_bodies(cells[:n + places * per_place], along, up,
                                                      f.seat_depth_m)):
        cells, along, up = _seat_cells(zone, std, n + places * per_place, avoid)
    out: list[Fixture] = []
    # wheelchair places take the first cells of the first rows, a place per row end
    for k, cell in enumerate(cells[:n + places * per_place]):
        body, clear = _seat_parts(cell, along, up, f.seat_depth_m)
        kind = "wheelchair_place" if k < places * per_place else "seat"
        out.append(Fixture(kind, "waiting", body, clear))
    # a wheelchair place is one fixture as wide as the cells it takes
    wheel = [x for x in out if x.kind == "wheelchair_place"]
    merged = [Fixture("wheelchair_place", "waiting",
                      shapely.union_all([w.body for w in wheel[p:p + per_place]]).envelope,
                      shapely.union_all([w.clearance for w in wheel[p:p + per_place]]).envelope)
              for p in range(0, len(wheel), per_place)]
    return merged + [x for x in out if x.kind == "seat"]


def _desks(zone: BaseGeometry, n: int, std: Standard, avoid: BaseGeometry | None
           ) -> list[Fixture]:
    f = std.fixtures
    cells = _grid(zone, f.desk_cell_m, f.desk_cell_depth_m, along_x=_long_x(zone), margin=0.0)
    if avoid is not None and not avoid.is_empty and cells.size:
        cells = cells[~shapely.intersects(shapely.buffer(cells, -_EPS), avoid)]
    if cells.size < n:
        # a zone too squat for a grid of cells may hold them around its walls
        around = _against_walls(zone, "desk", "advisory", n, f.desk_cell_m, f.desk_cell_m,
                                f.desk_cell_depth_m, 0.0, None, avoid, slanted=False)
        if len(around) > cells.size:
            cells = np.asarray([a.body for a in around], dtype=object)
    out = []
    for cell in cells[:n]:
        cx, cy = shapely.get_coordinates(shapely.centroid(cell))[0]
        body = shapely.box(cx - f.desk_width_m / 2, cy - f.desk_depth_m / 2,
                           cx + f.desk_width_m / 2, cy + f.desk_depth_m / 2)
        c = f.chair_m
        chairs = [shapely.box(cx - c / 2, cy + f.desk_depth_m / 2, cx + c / 2,
                              cy + f.desk_depth_m / 2 + c)]
        chairs += [shapely.box(x - c / 2, cy - f.desk_depth_m / 2 - c, x + c / 2,
                               cy - f.desk_depth_m / 2) for x in (cx - 0.4, cx + 0.4)]
        clear = shapely.difference(cell, body)
        out.append(Fixture("desk", "advisory", body, clear))
        out += [Fixture("chair", "advisory", ch, shapely.Polygon()) for ch in chairs]
    return out


def wheelchair_places(kind: str, units: int, standard: Standard) -> int:
    """Wheelchair places the waiting zone keeps in its seat rows (sizing's rule)."""
    if kind != "waiting":
        return 0
    spec = standard.zones[kind]
    return max(1, -(-units // spec.seats_per_wheelchair_place)) if spec.wheelchair_place_m2 else 0


def place_fixtures(zone: BaseGeometry, kind: str, units: int, standard: Standard, *,
                   prefer: BaseGeometry | None = None, avoid: BaseGeometry | None = None,
                   wheelchair_places: int = 0, accept: Accept | None = None,
                   near: BaseGeometry | None = None, back: BaseGeometry | None = None,
                   turns: bool = False, slanted: bool = True) -> list[Fixture]:
    """Fixtures of one zone, in the layout frame.

    Parameters
    ----------
    zone
        The zone polygon, walls along the axes.
    kind, units
        Zone kind and its planned units (stations, ATMs, seats, desks, rooms).
    prefer
        Walls to put counters, ATMs and the safe against first (staff rooms,
        outer walls).
    avoid
        Floor fixtures must keep clear (door openings, passages to other zones).
    wheelchair_places
        Wheelchair places to reserve in the seat rows.
    accept
        Called with candidate seat-row cells or ATM bodies; arrangements it
        refuses (that close a passage) are passed over when another holds them.
    near
        ATMs take the wall places nearest it (the entrance) first; counters grow
        from it (a cash room's wall) along their wall.
    back
        Counters whose staff side backs onto it (the staff rooms staff walk
        through; empty when there are none) go first, so the cashiers reach the
        cash room on staff floor, and a line split over several walls stops
        short of their corners (of every wall's ends, or with ``turns`` only of the
        corners it turns). None: the walls by ``prefer`` alone.
    slanted
        When the walls along the axes hold too few counters, ATMs or safes, stand
        the rest square to the slanted walls (a chamfer, a skewed outer wall).

    Returns
    -------
    list of Fixture
        Possibly fewer than ``units`` when they do not fit; :func:`fits` says so.
    """
    f = standard.fixtures
    if kind == "service":
        return _counters(zone, units, standard, prefer, near, back=back, turns=turns,
                         slanted=slanted)
    if kind == "self_service":
        return _against_walls(zone, "atm", kind, units, f.atm_clear_m, f.atm_width_m,
                              f.atm_depth_m, f.atm_clear_m, prefer, avoid, near=near,
                              accept=accept, slanted=slanted)
    if kind == "vault":
        return _against_walls(zone, "safe", kind, units, f.safe_width_m, f.safe_width_m,
                              f.safe_depth_m, f.safe_clear_m, prefer, avoid, slanted=slanted)
    if kind == "waiting":
        return _seats(zone, units, wheelchair_places, standard, avoid, accept)
    if kind == "advisory":
        return _desks(zone, units, standard, avoid)
    return []


def fits(zone: BaseGeometry, kind: str, units: int, standard: Standard) -> bool:
    """Whether all ``units`` fixtures of a zone fit inside it with their clearances."""
    want = expected_fixtures(kind, units)
    if not want or zone.geom_type != "Polygon":
        return zone.geom_type == "Polygon" or not want
    places = wheelchair_places(kind, units, standard)
    if _is_box(zone) and _fits_box(zone, kind, units, places, standard):
        return True
    got = place_fixtures(zone, kind, units, standard, wheelchair_places=places)
    return count_fixtures(got) == want and sum(x.kind == "wheelchair_place" for x in got) == places


def _is_box(g: BaseGeometry) -> bool:
    x0, y0, x1, y1 = g.bounds
    return abs(g.area - (x1 - x0) * (y1 - y0)) <= 1e-9 * max(g.area, 1.0)


def _fits_box(zone: BaseGeometry, kind: str, n: int, places: int, std: Standard) -> bool:
    """Closed-form test on an axis-parallel rectangle: True when the fixtures surely fit.

    Counts what :func:`place_fixtures` would place on the same rectangle (fixtures
    along one long wall, or the seat and desk grids), so a False only means the
    full placement must decide.
    """
    x0, y0, x1, y1 = zone.bounds
    short, long = sorted((x1 - x0, y1 - y0))
    f = std.fixtures
    e = _EPS
    if kind == "service":
        depth = f.counter_staff_side_m + f.counter_depth_m + f.counter_customer_side_m
        return short + e >= depth and np.floor((long + e) / f.counter_module_m) >= n
    if kind == "self_service":
        return (short + e >= f.atm_depth_m + f.atm_clear_m
                and np.floor((long + e) / f.atm_clear_m) >= n)
    if kind == "vault":
        return short + e >= f.safe_width_m and long + e >= f.safe_depth_m + f.safe_clear_m
    if kind == "waiting":
        per_place = int(np.ceil(f.wheelchair_place_m / f.seat_width_m))
        nx = np.floor((long - std.route_width_m + e) / f.seat_width_m)
        ny = np.floor((short + e) / (f.seat_depth_m + f.seat_aisle_m))
        return nx >= 1 and nx * ny >= n + places * per_place
    if kind == "advisory":
        return (np.floor((long + e) / f.desk_cell_m)
                * np.floor((short + e) / f.desk_cell_depth_m)) >= n
    return True


def count_fixtures(fixtures: Sequence[Fixture]) -> dict[str, int]:
    """Fixtures per kind, leaving out chairs and wheelchair places (not planned units)."""
    out: dict[str, int] = {}
    for x in fixtures:
        if x.kind in FIXTURE_OF.values():
            out[x.kind] = out.get(x.kind, 0) + 1
    return out
