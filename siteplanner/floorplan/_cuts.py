"""Cutting one piece of a floor in two: exact straight cuts, bands against a wall, stepped cuts.

The area left of a line ``x = t`` is a piecewise quadratic in ``t`` whose
pieces come from the polygon's edges, so a straight cut for any area share is
solved exactly (:func:`cut_area`). A band is a rectangle of a given area and
depth against one wall; a stepped cut runs along the line through a reflex
corner and moves the area the line misses across it in a tab, so neither side
keeps a neck. Vertices are snapped to ``GRID`` so shared walls coincide.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["GRID", "cut_area"]

GRID = 1e-6  # metres; cut positions and vertices are snapped to it so shared walls coincide
_DOOR_SNAP = 1e-3  # metres: a door this close to a wall line is in that wall


def _edges(geom: BaseGeometry, vertical: bool) -> np.ndarray:
    """Edges ``(x0, y0, x1, y1)`` of every ring, oriented so the formula below is positive."""
    # get_rings takes polygons only: a piece in two parts gives the rings of both
    rings = shapely.get_rings(shapely.get_parts(shapely.orient_polygons(geom)))
    parts = []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        if not vertical:
            c = c[:, ::-1]
        parts.append(np.hstack([c[:-1], c[1:]]))
    return np.vstack(parts)


def _area_below(e: np.ndarray, t: np.ndarray, sign: float) -> np.ndarray:
    """Area of the polygon with coordinate ``u <= t`` for each ``t`` (edges in (u, v) form)."""
    x0, y0, x1, y1 = e.T
    lo = np.minimum(x0, x1)
    hi = np.maximum(x0, x1)
    dx = x1 - x0
    slope = np.divide(y1 - y0, dx, out=np.zeros_like(dx), where=dx != 0)
    end = np.clip(t[:, None], lo, hi)
    y_lo = y0 + slope * (lo - x0)
    y_end = y0 + slope * (end - x0)
    integral = (end - lo) * (y_lo + y_end) / 2.0
    # -∮ v du over the clipped boundary; the cut line itself has du = 0
    return sign * (-np.sign(dx) * integral).sum(axis=1)


def _area_profile(geom: BaseGeometry, vertical: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breakpoints of the area-below-``t`` function, its values there and at each midpoint."""
    e = _edges(geom, vertical)
    # swapping x and y mirrors the polygon, which reverses the sign of the formula
    sign = 1.0 if vertical else -1.0
    knots = np.unique(np.concatenate([e[:, 0], e[:, 2]]))
    both = _area_below(e, np.concatenate([knots, (knots[:-1] + knots[1:]) / 2.0]), sign)
    return knots, both[:knots.size], both[knots.size:]


def _solve_cut(profile: tuple[np.ndarray, np.ndarray, np.ndarray], share: float) -> float:
    knots, a_knots, a_mid = profile
    goal = share * float(a_knots[-1])
    k = min(max(int(np.searchsorted(a_knots, goal)), 1), knots.size - 1)
    t0, t1 = float(knots[k - 1]), float(knots[k])
    a0, a1, am = float(a_knots[k - 1]), float(a_knots[k]), float(a_mid[k - 1])
    c = 2.0 * (a1 + a0) - 4.0 * am
    b = (a1 - a0) - c
    rhs = goal - a0
    disc = max(b * b + 4.0 * c * rhs, 0.0)
    denom = b + math.sqrt(disc)
    u = 2.0 * rhs / denom if denom > 0 else 0.0
    return t0 + min(max(u, 0.0), 1.0) * (t1 - t0)


def cut_area(geom: BaseGeometry, share: float, *, vertical: bool) -> float:
    """Position ``t`` of the line (``x = t`` or ``y = t``) leaving ``share`` of the area below it.

    Exact up to rounding: the area below ``t`` is quadratic between consecutive
    vertex coordinates, so the crossing interval is found on the breakpoints and
    the quadratic through its ends and midpoint is solved.
    """
    return _solve_cut(_area_profile(geom, vertical), share)


def _split(geom: BaseGeometry, share: float, vertical: bool,
           profile: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
           ) -> tuple[BaseGeometry, BaseGeometry]:
    x0, y0, x1, y1 = geom.bounds
    if _is_rect(geom):
        # most pieces in the layout frame are rectangles: the cut is linear in t
        lo, hi = (x0, x1) if vertical else (y0, y1)
        t = round((lo + share * (hi - lo)) / GRID) * GRID
        if vertical:
            return shapely.box(x0, y0, t, y1), shapely.box(t, y0, x1, y1)
        return shapely.box(x0, y0, x1, t), shapely.box(x0, t, x1, y1)
    if profile is None:
        profile = _area_profile(geom, vertical)
    t = round(_solve_cut(profile, share) / GRID) * GRID
    return _halves(geom, t, vertical)


def _halves(geom: BaseGeometry, t: float, vertical: bool) -> tuple[BaseGeometry, BaseGeometry]:
    """The piece below and above the line ``x = t`` (``y = t``), snapped to the grid.

    clip_by_rect is several times faster than a general overlay; a cut of a simple
    polygon by a half-plane box is exactly its case.
    """
    x0, y0, x1, y1 = geom.bounds
    pad = 1.0
    if vertical:
        low = shapely.clip_by_rect(geom, x0 - pad, y0 - pad, t, y1 + pad)
        high = shapely.clip_by_rect(geom, t, y0 - pad, x1 + pad, y1 + pad)
    else:
        low = shapely.clip_by_rect(geom, x0 - pad, y0 - pad, x1 + pad, t)
        high = shapely.clip_by_rect(geom, x0 - pad, t, x1 + pad, y1 + pad)
    parts = shapely.set_precision(np.array([low, high]), GRID)
    return _polygonal(parts[0]), _polygonal(parts[1])


def _is_rect(g: BaseGeometry) -> bool:
    x0, y0, x1, y1 = g.bounds
    box_area = (x1 - x0) * (y1 - y0)
    return g.geom_type == "Polygon" and abs(g.area - box_area) <= 1e-9 * box_area


def _wall_span(region: BaseGeometry, vertical: bool, at_low: bool, end: int,
               door: float | None = None) -> tuple[float, float, float] | None:
    """Where a band can lean on the region's outermost wall across the cut axis.

    Returns the wall's coordinate on the cut axis and the stretch ``(v0, v1)`` of
    it at the chosen end (lowest start or highest end when the wall is broken), or
    the stretch holding ``door`` (a coordinate along the wall) when given.
    """
    c = shapely.get_coordinates(shapely.get_exterior_ring(region))
    if not vertical:
        c = c[:, ::-1]
    x0, x1 = c[:, 0].min(), c[:, 0].max()
    u = x0 if at_low else x1
    on = np.abs(c[:, 0] - u) < GRID / 2
    seg = on[:-1] & on[1:]
    if not seg.any():
        return None
    v0 = np.minimum(c[:-1, 1], c[1:, 1])[seg]
    v1 = np.maximum(c[:-1, 1], c[1:, 1])[seg]
    if door is not None:
        holds = np.flatnonzero((v0 <= door) & (door <= v1))
        if not holds.size:
            return None
        k = int(holds[0])
    else:
        k = int(np.argmin(v0)) if end == 0 else int(np.argmax(v1))
    return float(u), float(v0[k]), float(v1[k])


def _band(region: BaseGeometry, area: float, depth: float, vertical: bool, at_low: bool,
          end: int, doors: np.ndarray) -> tuple[BaseGeometry, BaseGeometry] | None:
    """A ``depth``-deep rectangle of ``area`` against one wall, and the rest.

    ``end`` 0 and 1 start it at either end of the wall; 2 centres it on a door in
    that wall (``doors``: door centres, x and y), slid to stay on the wall.
    """
    if region.geom_type != "Polygon":
        return None  # a piece in two parts has no one wall to lean a band on
    door = None
    if end == 2:
        uv = doors if vertical else doors[:, ::-1]
        x0, y0, x1, y1 = region.bounds
        u_wall = (x0 if at_low else x1) if vertical else (y0 if at_low else y1)
        on = np.flatnonzero(np.abs(uv[:, 0] - u_wall) < _DOOR_SNAP)
        if not on.size:
            return None
        door = float(uv[on[0], 1])
    span = _wall_span(region, vertical, at_low, end, door)
    if span is None:
        return None
    u, v0, v1 = span
    length = area / depth
    u_in = u + depth if at_low else u - depth
    if door is not None:
        v_a = max(min(door - length / 2.0, v1 - length), v0)
        v_a, v_b = v_a, v_a + length
    else:
        v_a, v_b = (v0, v0 + length) if end == 0 else (v1 - length, v1)
    ua, ub = sorted((u, round(u_in / GRID) * GRID))
    va, vb = round(v_a / GRID) * GRID, round(v_b / GRID) * GRID
    rect = shapely.box(ua, va, ub, vb) if vertical else shapely.box(va, ua, vb, ub)
    if not shapely.covers(region, rect):
        return None
    rest = _polygonal(shapely.set_precision(shapely.difference(region, rect), GRID))
    if rest.geom_type != "Polygon":
        return None
    return rect, rest


def _reflex_lines(region: BaseGeometry) -> list[tuple[float, bool]]:
    """Axis lines through the reflex corners of a piece: where a cut leaves no neck."""
    ring = shapely.get_exterior_ring(shapely.orient_polygons(region))
    c = shapely.get_coordinates(ring)[:-1]
    if len(c) < 5:
        return []
    before, after = c - np.roll(c, 1, axis=0), np.roll(c, -1, axis=0) - c
    reflex = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0] < -1e-9
    x0, y0, x1, y1 = region.bounds
    out = {(round(float(x), 6), True) for x in c[reflex, 0] if x0 + GRID < x < x1 - GRID}
    out |= {(round(float(y), 6), False) for y in c[reflex, 1] if y0 + GRID < y < y1 - GRID}
    return sorted(out)


def _stepped(region: BaseGeometry, area: float, t: float, vertical: bool, depth: float,
             end: int) -> tuple[BaseGeometry, BaseGeometry] | None:
    """A cut along the line through a reflex corner, with a ``depth``-deep tab that
    moves the area the line misses across it: both pieces exact, neither with a neck."""
    low, high = _halves(region, t, vertical)
    if low.geom_type != "Polygon" or high.geom_type != "Polygon":
        return None
    delta = area - float(low.area)
    if abs(delta) <= 1e-9 * area:
        return low, high
    donor, taker = (high, low) if delta > 0 else (low, high)
    cut = _band(donor, abs(delta), depth, vertical, delta > 0, end, np.empty((0, 2)))
    if cut is None:
        return None
    tab, rest = cut
    try:
        merged = _polygonal(shapely.set_precision(shapely.union(taker, tab), GRID))
    except shapely.errors.GEOSException:
        # a union GEOS cannot build (it raised "unable to assign free hole to a shell" on
        # a unit of a Helsinki block): the cut is not taken, as one leaving a hole is not
        return None
    if merged.geom_type != "Polygon" or len(merged.interiors):
        return None
    return (merged, rest) if delta > 0 else (rest, merged)


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    """Drop the points and lines an intersection may leave along the cut."""
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
    return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)


def _key(g: BaseGeometry) -> bytes:
    """Identity of a piece: its snapped coordinates (cheap, and equal pieces merge)."""
    return shapely.get_coordinates(g).tobytes()
