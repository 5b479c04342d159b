"""Real premises at a ranked site: the OSM building there, or a street-facing unit of it.

A branch's premises are taken from OpenStreetMap when the study gives no floor
outline: the building footprint at the site, when it is about the size the
branch needs; else a unit of that building of the target size, along the wall
that faces the nearest street, as a shop unit in a perimeter block is. The
entrance is put on that street-facing wall, opposite the nearest street.

Everything is in one projected, metric CRS (the pipeline's); the outline handed
to :func:`~siteplanner.floorplan.plan.plan_floor` is in local metres from
``Premises.origin``, so a plan's coordinates stay small and exact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity
from shapely.affinity import translate
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner._errors import InputError

__all__ = ["Premises", "premises_at", "unit_at_door"]

log = logging.getLogger(__name__)

#: A building counts as "at" the site when the site point is within this of it, metres
#: (an OSM bank node is often drawn on the pavement in front of its door).
SITE_TOLERANCE_M = 25.0
#: A street-facing wall must hold a door this wide, metres (the default standard's door).
DOOR_M = 1.8
#: Depth over frontage of the unit cut from a large building: a shop unit is deeper
#: than it is wide (town-centre units run about 1.5-3 x; 1.5 keeps the plan compact).
UNIT_DEPTH_RATIO = 1.5
#: OSM ``highway`` values that are streets a shop door opens onto (roads and
#: pedestrian streets; not footways, paths, corridors or steps).
STREET_TYPES = ("motorway", "trunk", "primary", "secondary", "tertiary", "unclassified",
                "residential", "living_street", "pedestrian", "service", "road",
                "primary_link", "secondary_link", "tertiary_link", "trunk_link")
#: An outline filling this share of its box along the street wall is taken as the box.
SQUARE_FILL = 0.97


@dataclass(frozen=True)
class Premises:
    """A branch's premises.

    Attributes
    ----------
    outline
        Floor outline in local metres (from ``origin``), for ``plan_floor``.
    entrances
        Entrance points on the outline wall facing the nearest street, local metres.
    source
        ``"osm_building"`` (the whole footprint) or ``"osm_unit"`` (a unit of it).
    footprint
        The building footprint, in the input CRS.
    origin
        Where local (0, 0) is, in the input CRS.
    street_m
        Distance from the entrance to the nearest street, metres.
    building
        Index label of the building in the ``buildings`` table.
    """

    outline: Polygon
    entrances: tuple[Point, ...]
    source: str
    footprint: Polygon
    origin: tuple[float, float]
    street_m: float
    building: object

    @property
    def area_m2(self) -> float:
        """Floor area of the outline, m²."""
        return float(self.outline.area)

    def to_crs(self, geom: BaseGeometry) -> BaseGeometry:
        """A geometry in the premises' local metres, moved back into the input CRS."""
        return translate(geom, *self.origin)


def _check_crs(frame: gpd.GeoDataFrame, what: str) -> None:
    if frame.crs is None or not frame.crs.is_projected:
        msg = (f"premises: the {what} table must be in a projected, metric CRS (got "
               f"{frame.crs}); project it first, e.g. with .to_crs(frame.estimate_utm_crs())")
        raise InputError(msg)


def _footprint_at(site: Point, buildings: gpd.GeoDataFrame) -> tuple[object, Polygon]:
    """The building the site is in, else the nearest within ``SITE_TOLERANCE_M``."""
    polys = buildings[buildings.geom_type.isin(("Polygon", "MultiPolygon"))]
    if polys.empty:
        msg = "premises: the buildings table holds no polygons; give OSM building footprints"
        raise InputError(msg)
    idx, dist = polys.sindex.nearest(site, return_distance=True, return_all=False)
    d = float(dist[0])
    if d > SITE_TOLERANCE_M:
        msg = (f"premises: no building within {SITE_TOLERANCE_M:g} m of the site at "
               f"({site.x:.1f}, {site.y:.1f}) (nearest {d:.0f} m); give the study a floor "
               "outline for this site, or check the site's coordinates")
        raise InputError(msg)
    label = polys.index[int(idx[1][0])]
    geom = polys.geometry.loc[label]
    if geom.geom_type == "MultiPolygon":
        geom = min(geom.geoms, key=lambda g: g.distance(site))
    # courtyards are not floor: the outline is the outer wall; noise below 5 cm dropped
    return label, shapely.simplify(Polygon(geom.exterior), 0.05)


def _street_wall(outline: Polygon, streets: gpd.GeoDataFrame, min_length: float = DOOR_M
                 ) -> tuple[LineString, float, Point]:
    """The outline wall facing the nearest street, the distance to it and the street point.

    A wall faces a street when the street lies on its outer side; among walls at least
    ``min_length`` long (a door's width; a unit's frontage when one is cut, falling back to
    the longest wall when none is that long), the one whose midpoint is nearest a street wins.
    """
    ring = shapely.get_coordinates(shapely.orient_polygons(outline).exterior)
    a, b = ring[:-1], ring[1:]
    length = np.hypot(*(b - a).T)
    ok = length >= min(min_length, max(float(length.max()), DOOR_M))
    if not ok.any():
        msg = f"premises: no wall of the building is {DOOR_M:g} m long, too short for a door"
        raise InputError(msg)
    mids = shapely.points((a + b) / 2.0)
    near = streets.sindex.nearest(mids, return_all=False)[1]
    lines = streets.geometry.to_numpy()[near]
    dist = shapely.distance(mids, lines)
    target = shapely.line_interpolate_point(lines, shapely.line_locate_point(lines, mids))
    to_street = shapely.get_coordinates(target) - (a + b) / 2.0
    # outward normal of a counter-clockwise ring is the edge direction turned clockwise
    d = (b - a) / np.where(length > 0, length, 1.0)[:, None]
    outward = np.column_stack([d[:, 1], -d[:, 0]])
    facing = ok & ((to_street * outward).sum(axis=1) > 0)
    pick = np.flatnonzero(facing if facing.any() else ok)
    k = int(pick[np.argmin(dist[pick])])
    return LineString([a[k], b[k]]), float(dist[k]), Point(target[k])


def _unit(outline: Polygon, wall: LineString, at: float, target_m2: float,
          front: float | None = None) -> Polygon:
    """A unit of ``target_m2`` against ``wall``, centred at ``at`` along it, as deep as needed.

    The frontage starts at ``front`` (by default ``sqrt(target / UNIT_DEPTH_RATIO)``) and
    widens (past the wall's ends, round the corner of the block) only when the building
    is too shallow behind the wall to hold the target area.
    """
    (x0, y0), (x1, y1) = wall.coords
    u = np.array([x1 - x0, y1 - y0]) / wall.length
    inward = np.array([-u[1], u[0]])  # interior lies left of a counter-clockwise wall
    base = np.array([x0, y0])
    reach = float(np.hypot(*(np.array(outline.bounds[2:]) - np.array(outline.bounds[:2]))))

    def cut(depth: float, front: float) -> BaseGeometry:
        start = min(max(at - front / 2.0, 0.0), wall.length - front) if front <= wall.length \
            else at - front / 2.0
        o = base + u * start
        rect = Polygon([o, o + u * front, o + u * front + inward * depth, o + inward * depth])
        parts = [g for g in shapely.get_parts(shapely.intersection(outline, rect))
                 if g.geom_type == "Polygon"]
        if not parts:
            return Polygon()
        # the piece on the street wall: a deep cut may reach round a courtyard corner
        return min(parts, key=lambda g: g.distance(wall))

    front = min(wall.length, float(np.sqrt(target_m2 / UNIT_DEPTH_RATIO)) if front is None
                else front)
    while cut(reach, front).area < target_m2 and front < 2.0 * reach:
        front = max(front * 1.5, wall.length) if front < wall.length else front * 1.5
    lo, hi = 0.0, reach
    for _ in range(50):  # the area grows with the depth: bisection to the target area
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if cut(mid, front).area < target_m2 else (lo, mid)
    return shapely.set_precision(cut(hi, front), 1e-3)


def _square(outline: Polygon, wall: LineString) -> Polygon:
    """The outline as a rectangle on ``wall`` when it is one to within the tracing error.

    OSM footprints are traced from imagery to about half a metre, so a unit whose
    walls are a degree or two off square is nearly a rectangle, and the planner's
    straight walls would leave slivers along the skewed ones. When the outline
    fills at least ``SQUARE_FILL`` of its box in the wall's frame, the rectangle of
    the same area and frontage is taken instead.
    """
    (x0, y0), (x1, y1) = wall.coords
    angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
    local = shapely.affinity.rotate(outline, -angle, origin=(x0, y0))
    bx0, by0, bx1, by1 = local.bounds
    if local.area < SQUARE_FILL * (bx1 - bx0) * (by1 - by0):
        return outline
    depth = local.area / (bx1 - bx0)
    # the street wall is the box's side nearest the wall's own line (y = y0 after the turn)
    lo = by0 if abs(by0 - y0) <= abs(by1 - y0) else by1 - depth
    rect = shapely.box(bx0, lo, bx1, lo + depth)
    # no rounding after the turn: rounded corners would skew the walls off square again
    return shapely.affinity.rotate(rect, angle, origin=(x0, y0))


def unit_at_door(outline: Polygon, door: Point, target_m2: float, min_strip_m: float) -> Polygon:
    """A unit of ``target_m2`` of ``outline`` against the wall ``door`` is on, centred on it.

    Cut as :func:`premises_at` cuts one from a large building (1.5 x as deep as wide),
    but across the whole wall when the strips left beside the unit would be narrower
    than ``min_strip_m`` each (a 16 m end wall and an 11.9 m front left two 2 m strips).
    """
    ring = shapely.orient_polygons(outline)
    xy = shapely.get_coordinates(ring.exterior)
    walls = shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1))
    wall = walls[int(np.argmin(shapely.distance(walls, door)))]
    front = float(np.sqrt(target_m2 / UNIT_DEPTH_RATIO))
    if wall.length - front < 2.0 * min_strip_m:
        front = float(wall.length)
    return _square(_unit(ring, wall, float(wall.project(door)), target_m2, front), wall)


def premises_at(site: Point, buildings: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, *,
                target_m2: float, max_ratio: float = 1.5) -> Premises:
    """The premises of a branch at ``site``, from OSM buildings and streets.

    Parameters
    ----------
    site
        The site, in the CRS of ``buildings`` and ``streets`` (projected, metres).
    buildings
        Building footprints (OSM ``building=*``), polygons.
    streets
        Street centre lines (a walking or driving network's edges), lines; with a
        ``highway`` column, only the streets among them (``STREET_TYPES``) count.
    target_m2
        Floor area the branch needs, m² (its programme, or the standard's typical size).
    max_ratio
        A footprint up to ``max_ratio`` times ``target_m2`` is taken whole (the
        standard's ``max_zone_ratio``: beyond it the surplus would be flex floor);
        a larger one gives a unit of ``target_m2`` along its street-facing wall.

    Raises
    ------
    InputError
        A geographic CRS, no building at the site, no street, or a non-positive target.
    """
    if not np.isfinite(target_m2) or target_m2 <= 0:
        msg = f"premises: target_m2 = {target_m2!r} must be a positive area in m²"
        raise InputError(msg)
    _check_crs(buildings, "buildings")
    _check_crs(streets, "streets")
    lines = streets[streets.geom_type.isin(("LineString", "MultiLineString"))]
    if lines.empty:
        msg = "premises: the streets table holds no lines; give the study's street network edges"
        raise InputError(msg)
    if "highway" in lines:
        # a walking network holds footways through courtyards and passages; the door
        # faces a street (OSM highway values of roads and pedestrian streets)
        streets_only = lines[lines["highway"].isin(STREET_TYPES)]
        lines = streets_only if not streets_only.empty else lines
    lines = lines.explode(index_parts=False).reset_index(drop=True)
    label, footprint = _footprint_at(site, buildings)
    outline, source = footprint, "osm_building"
    if footprint.area > max_ratio * target_m2:
        # the unit's shop front: a wall as long as its frontage, or a short jog of the
        # facade (a 3.7 m corner wall) gives a unit 4 m wide and 32 m deep
        wall, _, street_pt = _street_wall(footprint, lines,
                                          float(np.sqrt(target_m2 / UNIT_DEPTH_RATIO)))
        at = float(wall.project(street_pt))
        outline, source = _unit(footprint, wall, at, target_m2), "osm_unit"
    else:
        wall, _, street_pt = _street_wall(footprint, lines)
        at = float(wall.project(street_pt))
    outline = _square(outline, wall)
    if source == "osm_unit" or not outline.equals(footprint):
        wall, _, street_pt = _street_wall(outline, lines)
        at = float(wall.project(street_pt))
    half = min(DOOR_M / 2.0 + 0.1, wall.length / 2.0)
    door = wall.interpolate(min(max(at, half), wall.length - half))
    street_m = float(lines.distance(door).min())
    x0, y0 = outline.bounds[:2]
    log.info("premises at (%.0f, %.0f): %s of %.0f m², door %.1f m from a street", site.x,
             site.y, source, outline.area, street_m)
    return Premises(outline=translate(outline, -x0, -y0),
                    entrances=(translate(door, -x0, -y0),), source=source,
                    footprint=footprint, origin=(float(x0), float(y0)), street_m=street_m,
                    building=label)
