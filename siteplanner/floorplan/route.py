"""The public route: walkable floor, clear widths and the egress distance.

Walkable floor is the public zones less the fixtures' bodies and the counters'
staff side. A body of width ``w`` passes where the floor survives an erosion by
``w / 2``; the part of that eroded floor that touches the entrance door, grown
back by ``w / 2``, is the floor reached at width ``w`` (a morphological opening
seeded at the door). Checked:

- ``route_reaches_public_zones``: every public zone is reached at the main-route
  width (1.2 m);
- ``clear_width_past_fixtures``: every customer fixture's clear space (ATM clear
  space, counter front, seat aisle, desk) is reached at the passage width (0.9 m);
- ``turning_circle``: each public zone's walkable floor holds the 1.5 m circle;
- ``egress_distance``: the walk from the farthest reached public point to the
  door, on a grid over the floor reached at 0.9 m (8-neighbour moves,
  ``scipy.sparse.csgraph.dijkstra``), is at most ``max_egress_m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan.fixtures import Fixture
from siteplanner.floorplan.standard import Standard

__all__ = ["Route", "check_route", "reached_floor", "unreached", "walkable_floor"]

_SLACK = 1e-3  # metres: a passage exactly as wide as the rule passes
_WELD = 1e-6  # metres
_MIN_AREA = 0.05  # m²: touching less floor than this is not reaching it
#: Customer fixtures whose clear space must be on the route.
CUSTOMER_FIXTURES = ("atm", "counter", "seat", "wheelchair_place", "desk")


@dataclass(frozen=True)
class Route:
    """The public route of a plan and the egress measure."""

    floor: BaseGeometry
    reached: BaseGeometry
    egress_m: float
    egress_path: LineString | None


def walkable_floor(public_zones: Sequence[BaseGeometry], fixtures: Sequence[Fixture],
                   counter_staff: BaseGeometry | None) -> BaseGeometry:
    """Public floor less fixture bodies and the counters' staff side.

    Chairs are loose furniture and do not count: the clear widths are measured
    past the fixed fixtures (counters, ATMs, seat rows, desks, the safe).
    """
    # turned plans leave hairline cracks between zones (their walls are rounded after the
    # rotation): closing them by a micrometre keeps the floor one piece
    grown = shapely.buffer(np.asarray(list(public_zones), dtype=object), _WELD, join_style="mitre")
    floor = shapely.buffer(shapely.union_all(grown), -_WELD, join_style="mitre")
    solid = [f.body for f in fixtures if f.kind != "chair"]
    solid += [counter_staff] if counter_staff is not None else []
    if solid:
        floor = shapely.difference(floor, shapely.union_all(solid))
    return floor


def reached_floor(floor: BaseGeometry, doors: Sequence[LineString], width: float) -> BaseGeometry:
    """Floor a body ``width`` wide reaches from the doors (an opening seeded at them)."""
    r = width / 2.0 - _SLACK
    core = shapely.buffer(floor, -r, join_style="mitre")
    if core.is_empty or not doors:
        return shapely.Polygon()
    parts = np.asarray(shapely.get_parts(core), dtype=object)
    door = shapely.union_all(list(doors))
    seeds = parts[shapely.dwithin(parts, door, r + 2 * _SLACK)]
    if not seeds.size:
        return shapely.Polygon()
    grown = shapely.buffer(shapely.union_all(seeds), r, join_style="mitre")
    return shapely.intersection(grown, floor)


def _grid_egress(floor: BaseGeometry, doors: Sequence[LineString]
                 ) -> tuple[float, LineString | None]:
    """Longest shortest walk (metres) from a floor cell to a door, and its path."""
    if floor.is_empty:
        return float("inf"), None
    x0, y0, x1, y1 = floor.bounds
    h = max(0.25, float(np.sqrt(floor.area / 40000.0)))
    xs = np.arange(x0 + h / 2, x1, h)
    ys = np.arange(y0 + h / 2, y1, h)
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(floor, gx, gy)
    ids = -np.ones(inside.shape, dtype=int)
    ids[inside] = np.arange(int(inside.sum()))
    n = int(inside.sum())
    if n == 0:
        return float("inf"), None
    rows, cols, w = [], [], []
    ii, jj = np.nonzero(inside)
    for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
        i2, j2 = ii + di, jj + dj
        ok = (i2 < inside.shape[0]) & (j2 >= 0) & (j2 < inside.shape[1])
        ok[ok] = inside[i2[ok], j2[ok]]
        rows.append(ids[ii[ok], jj[ok]])
        cols.append(ids[i2[ok], j2[ok]])
        w.append(np.full(int(ok.sum()), h * float(np.hypot(di, dj))))
    px, py = gx[ii, jj], gy[ii, jj]
    door = shapely.union_all(list(doors))
    d_door = shapely.distance(shapely.points(px, py), door)
    start = np.flatnonzero(d_door <= 1.5 * h)
    if not start.size:
        return float("inf"), None
    # a virtual node n joins the cells at the door, at their own distance to it
    r = np.concatenate([*rows, np.full(start.size, n)])
    c = np.concatenate([*cols, start])
    ww = np.concatenate([*w, d_door[start] + 1e-9])
    graph = coo_matrix((ww, (r, c)), shape=(n + 1, n + 1)).tocsr()
    dist, pred = dijkstra(graph, directed=False, indices=n, return_predecessors=True)
    dist = dist[:n]
    far = int(np.argmax(np.where(np.isfinite(dist), dist, -1.0)))
    path = [far]
    while pred[path[-1]] >= 0 and pred[path[-1]] != n:
        path.append(int(pred[path[-1]]))
    pts = np.column_stack([px[path], py[path]])
    line = LineString(pts) if len(pts) > 1 else None
    return float(dist[far]), line


def _result(ok: bool, detail: str) -> dict[str, Any]:
    return {"pass": bool(ok), "detail": detail}


def unreached(public: dict[str, BaseGeometry], fixtures: Sequence[Fixture],
              counter_staff: BaseGeometry | None, doors: Sequence[LineString],
              standard: Standard) -> tuple[list[str], list[str], BaseGeometry, BaseGeometry]:
    """What the public route misses: the public zones the main route (``route_width_m``)
    does not reach, the customer fixtures whose clear space the passage width
    (``clear_width_m``) does not reach, the walkable floor and the floor reached at the
    passage width (``public``: public zone kind to polygon)."""
    floor = walkable_floor(list(public.values()), fixtures, counter_staff)
    main = reached_floor(floor, doors, standard.route_width_m)
    passage = reached_floor(floor, doors, standard.clear_width_m)
    cut_off = [k for k, g in public.items()
               if shapely.area(shapely.intersection(g, main)) < _MIN_AREA]
    blocked = sorted({f"{f.kind} in {f.zone}" for f in fixtures
                      if f.kind in CUSTOMER_FIXTURES and not f.clearance.is_empty
                      and shapely.area(shapely.intersection(f.clearance, passage)) < _MIN_AREA})
    return cut_off, blocked, floor, passage


def check_route(public: dict[str, BaseGeometry], fixtures: Sequence[Fixture],
                counter_staff: BaseGeometry | None, doors: Sequence[LineString],
                standard: Standard) -> tuple[dict[str, dict[str, Any]], Route]:
    """Route constraints of a plan (``public``: public zone kind to polygon)."""
    cut_off, blocked, floor, passage = unreached(public, fixtures, counter_staff, doors, standard)
    circle = standard.turning_circle_m
    no_turn = [k for k, g in public.items() if shapely.buffer(
        shapely.intersection(g, floor), -circle / 2.0 + _SLACK).is_empty]
    egress, path = _grid_egress(passage, doors)
    limit = standard.max_egress_m
    checks = {
        "route_reaches_public_zones": _result(
            not cut_off, f"public zones not reached on a {standard.route_width_m:g} m route from "
            f"the entrance: {cut_off}" if cut_off else
            f"every public zone is on a {standard.route_width_m:g} m route from the entrance"),
        "clear_width_past_fixtures": _result(
            not blocked, f"fixtures whose clear space a {standard.clear_width_m:g} m passage does "
            f"not reach: {blocked}" if blocked else
            f"every customer fixture is reached past the others with {standard.clear_width_m:g} m"),
        "turning_circle": _result(
            not no_turn, f"public zones without a free {circle:g} m turning circle: {no_turn}"
            if no_turn else f"every public zone keeps a free {circle:g} m turning circle"),
        "egress_distance": _result(
            egress <= limit + 1e-9, f"farthest public point {egress:.1f} m from the door "
            f"(max_egress_m {limit:g} m)"),
    }
    return checks, Route(floor=floor, reached=passage, egress_m=egress, egress_path=path)
