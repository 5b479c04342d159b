"""Geometric measures and hard-constraint checks of a zone layout.

Used twice: cheaply inside the search (on the layout frame) and in full for the
report (on the final geometries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan.standard import ENTRANCE, RATING_WEIGHTS, Standard

__all__ = [
    "door_segments",
    "door_cover",
    "shared_walls",
    "TOUCH_M",
    "WIDTH_KEEP",
    "width_kept",
    "wide_part",
    "route_walls",
    "width_ok",
    "turning_ok",
    "aspect_ratios",
    "relationship_weights",
    "check_layout",
]

_SAMPLE_STEP = 0.05  # metres between the points that measure door contact
_AREA_EPS = 1e-6  # m²: overlaps and gaps below this are floating-point noise
#: Shared wall shorter than this is a corner touch, not a wall (metres).
TOUCH_M = 1e-3
#: A zone meets its minimum width when a disc that wide sweeps this share of it; the
#: rest may be corners of acute walls, but not a neck or a sliver.
WIDTH_KEEP = 0.95


def door_segments(outline: Polygon, entrances: Sequence[Point], width: float) -> list[LineString]:
    """The stretch of outline wall, ``width`` long, centred on each entrance point."""
    ring = LineString(outline.exterior.coords)
    total = ring.length
    half = min(width / 2.0, total / 2.0)
    doors = []
    for p in entrances:
        d = ring.project(p)
        steps = np.linspace(d - half, d + half, max(3, int(np.ceil(width / _SAMPLE_STEP)) + 1))
        pts = shapely.line_interpolate_point(ring, np.mod(steps, total))
        doors.append(LineString(shapely.get_coordinates(pts)))
    return doors


def door_cover(zones: Sequence[BaseGeometry], doors: Sequence[LineString]) -> np.ndarray:
    """Length of each door (columns) that each zone (rows) touches, metres."""
    if not doors:
        return np.zeros((len(zones), 0))
    out = np.zeros((len(zones), len(doors)))
    geoms = np.asarray(zones, dtype=object)
    for j, door in enumerate(doors):
        coords = shapely.get_coordinates(door)
        mids = shapely.points((coords[:-1] + coords[1:]) / 2.0)
        seg = np.hypot(*np.diff(coords, axis=0).T)
        # 10 µm: the layout frame snaps the outline to a micrometre grid, so a turned
        # plan's walls sit up to about a micrometre off the original wall
        touch = shapely.dwithin(geoms[:, None], mids[None, :], 1e-5)
        out[:, j] = touch @ seg
    return out


def shared_walls(zones: Sequence[BaseGeometry], *, tol: float = 1e-5) -> np.ndarray:
    """Symmetric matrix of shared wall length between zones, metres.

    Walls count as shared within ``tol``: after a rotation two zones' common wall
    is no longer bit-identical, and an exact overlay would see only points.
    """
    n = len(zones)
    walls = np.zeros((n, n))
    if n < 2:
        return walls
    i, j = np.triu_indices(n, 1)
    bounds = shapely.boundary(np.asarray(zones, dtype=object))
    near = shapely.buffer(bounds, tol, cap_style="flat")
    ij = shapely.length(shapely.intersection(bounds[i], near[j]))
    ji = shapely.length(shapely.intersection(bounds[j], near[i]))
    length = np.minimum(ij, ji)
    walls[i, j] = length
    walls[j, i] = length
    return walls


def wide_part(zone: BaseGeometry, width: float) -> BaseGeometry:
    """The part of ``zone`` a body ``width`` wide sweeps (a morphological opening).

    Grown back a millimetre past the zone, so the zone's walls lie inside it.
    """
    r = width / 2.0 - 1e-3
    return shapely.buffer(shapely.buffer(zone, -r, join_style="mitre"), r + 1e-3,
                          join_style="mitre")


def route_walls(zones: Sequence[BaseGeometry], walls: np.ndarray, public: np.ndarray,
                width: float, wide: Sequence[BaseGeometry]) -> np.ndarray:
    """``walls`` with each wall between two public zones cut to where both are ``width`` wide.

    ``wide`` is :func:`wide_part` of each zone at ``width``. A public wall
    stretch onto a neighbour's narrow nose (a sliver beside a room cut into the
    zone) is wall no ``width``-wide body walks through, so it opens no route.
    Only pairs whose whole wall is at least ``width`` long and one of which is
    not fully wide are measured.
    """
    out = walls.copy()
    full = np.array([shapely.area(w) >= shapely.area(z) - 1e-9 for z, w in zip(zones, wide,
                                                                               strict=True)])
    pub = np.flatnonzero(public)
    for a, i in enumerate(pub.tolist()):
        for j in pub[a + 1:].tolist():
            if walls[i, j] < width or (full[i] and full[j]):
                continue
            wall = shapely.intersection(shapely.boundary(zones[i]),
                                        shapely.buffer(shapely.boundary(zones[j]), 1e-4))
            out[i, j] = out[j, i] = min(walls[i, j], float(shapely.length(
                shapely.intersection(wall, shapely.intersection(wide[i], wide[j])))))
    return out


def width_kept(zones: Sequence[BaseGeometry], widths: np.ndarray) -> np.ndarray:
    """Share of each zone's area that a disc of its minimum width can sweep.

    This is a morphological opening: what a ``width``-wide body cannot reach are
    the narrow necks and slivers that break the minimum-width rule.
    """
    geoms = np.asarray(zones, dtype=object)
    r = widths / 2.0
    inner = shapely.buffer(geoms, -r, join_style="mitre")
    opened = shapely.intersection(shapely.buffer(inner, r, join_style="mitre"), geoms)
    return np.asarray(shapely.area(opened) / shapely.area(geoms))


def width_ok(zones: Sequence[BaseGeometry], widths: np.ndarray) -> np.ndarray:
    """Whether each zone meets its minimum width (``WIDTH_KEEP`` of it sweepable)."""
    return width_kept(zones, widths) >= WIDTH_KEEP - 1e-9


def turning_ok(zones: Sequence[BaseGeometry], diameter: float) -> np.ndarray:
    """Whether each zone holds a turning circle of ``diameter``."""
    inner = shapely.buffer(np.asarray(zones, dtype=object), -diameter / 2.0 + 1e-9)
    return ~shapely.is_empty(inner)


def aspect_ratios(zones: Sequence[BaseGeometry]) -> np.ndarray:
    """Long side over short side of each zone's minimum rotated rectangle."""
    rects = shapely.oriented_envelope(np.asarray(zones, dtype=object))
    coords = shapely.get_coordinates(shapely.get_exterior_ring(rects)).reshape(len(zones), 5, 2)
    a = np.hypot(*(coords[:, 1] - coords[:, 0]).T)
    b = np.hypot(*(coords[:, 2] - coords[:, 1]).T)
    lo = np.minimum(a, b)
    return np.where(lo > 0, np.maximum(a, b) / np.where(lo > 0, lo, 1.0), np.inf)


def relationship_weights(kinds: Sequence[str], standard: Standard) -> tuple[np.ndarray, np.ndarray,
                                                                            np.ndarray, np.ndarray]:
    """Closeness weights: zone-zone matrix, zone-entrance vector, and the two X masks."""
    n = len(kinds)
    w = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a != b:
                w[a, b] = RATING_WEIGHTS[standard.rating(kinds[a], kinds[b])]
    we = np.array([RATING_WEIGHTS[standard.rating(k, ENTRANCE)] for k in kinds], dtype=float)
    return np.where(w > 0, w, 0.0), np.where(we > 0, we, 0.0), w < 0, we < 0


def satisfaction(walls: np.ndarray, cover: np.ndarray, w: np.ndarray, we: np.ndarray,
                 min_wall: float) -> float:
    """Weighted share of A/E/I pairs (O, U ignored) that share at least ``min_wall``."""
    keep = w >= RATING_WEIGHTS["I"]
    keep_e = we >= RATING_WEIGHTS["I"]
    total = w[keep].sum() / 2.0 + we[keep_e].sum()
    if total == 0:
        return 1.0
    entrance_adj = cover.max(axis=1, initial=0.0) >= min_wall
    got = (w * keep * (walls >= min_wall)).sum() / 2.0 + (we * keep_e * entrance_adj).sum()
    return float(got / total)


def _result(ok: bool, detail: str, zones: Sequence[str] | None = None) -> dict[str, Any]:
    out = {"pass": bool(ok), "detail": detail}
    return out if zones is None else out | {"zones": list(zones)}


def _fit_checks(geoms: np.ndarray, targets: np.ndarray, outline: Polygon, eps: float,
                tol: float, kinds: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Inside the outline, no overlap, full cover, areas on target (the tiling rules)."""
    n = len(kinds)
    err = np.abs(shapely.area(geoms) - targets) / targets
    outside = shapely.area(shapely.difference(geoms, outline)).max(initial=0.0)
    i, j = np.triu_indices(n, 1)
    overlap = (shapely.area(shapely.intersection(geoms[i], geoms[j])) if n > 1
               else np.zeros(0)).max(initial=0.0)
    gap = outline.difference(shapely.union_all(geoms)).area
    bad_area = [kinds[k] for k in range(n) if err[k] > tol]
    return {
        "inside_outline": _result(outside <= eps,
                                  f"largest area outside the outline {outside:.2e} m²"),
        "no_overlap": _result(overlap <= eps, f"largest pairwise overlap {overlap:.2e} m²"),
        "covers_outline": _result(gap <= eps, f"uncovered floor {gap:.2e} m²"),
        "area_within_tolerance": _result(not bad_area, f"zones off target by more than {tol:.0%}: "
                                         f"{bad_area}" if bad_area else f"all within {tol:.0%}"),
    }


def _shape_checks(geoms: np.ndarray, kinds: Sequence[str], standard: Standard
                  ) -> dict[str, dict[str, Any]]:
    """Turning circles of public zones, minimum widths, one piece per zone."""
    specs = [standard.spec(k) for k in kinds]
    public = np.array([s.public for s in specs])
    wide = width_ok(list(geoms), np.array([s.min_width_m for s in specs]))
    turn = turning_ok(list(geoms), standard.turning_circle_m)
    single = shapely.get_type_id(geoms) == 3  # Polygon, not MultiPolygon
    bad_turn = [k for k, p, t in zip(kinds, public, turn, strict=True) if p and not t]
    bad_width = [k for k, w in zip(kinds, wide, strict=True) if not w]
    split = [k for k, one in zip(kinds, single, strict=True) if not one]
    return {
        "turning_circle": _result(not bad_turn, f"public zones without a "
                                  f"{standard.turning_circle_m:g} m circle: {bad_turn}"
                                  if bad_turn else "every public zone holds one", bad_turn),
        "min_width": _result(not bad_width, f"zones narrower than their minimum width: "
                             f"{bad_width}" if bad_width else "every zone meets its minimum width",
                             bad_width),
        "connected": _result(not split, f"zones in several pieces: {split}" if split
                             else "every zone is one piece"),
    }


def _relationship_rows(kinds: Sequence[str], walls: np.ndarray, cover: np.ndarray,
                       standard: Standard) -> list[dict[str, Any]]:
    """Each rated zone pair (and zone-entrance pair) with its shared wall, metres."""
    n = len(kinds)
    i, j = np.triu_indices(n, 1)
    pairs = []
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        rating = standard.rating(kinds[a], kinds[b])
        if rating != "U":
            pairs.append({"a": kinds[a], "b": kinds[b], "rating": rating,
                          "shared_wall_m": round(float(walls[a, b]), 3),
                          "adjacent": bool(walls[a, b] >= standard.min_shared_wall_m)})
    for a in range(n):
        rating = standard.rating(kinds[a], ENTRANCE)
        if rating != "U":
            c = float(cover[a].max(initial=0.0))
            pairs.append({"a": kinds[a], "b": ENTRANCE, "rating": rating,
                          "shared_wall_m": round(c, 3),
                          "adjacent": bool(c >= standard.min_shared_wall_m)})
    return pairs


def _x_pairs(kinds: Sequence[str], walls: np.ndarray, cover: np.ndarray, xmask: np.ndarray,
             xmask_e: np.ndarray) -> list[list[Any]]:
    """X-rated zone pairs sharing a wall, and X-rated zones holding an entrance door."""
    n = len(kinds)
    i, j = np.triu_indices(n, 1)
    out: list[list[Any]] = [[kinds[a], kinds[b], round(float(walls[a, b]), 3)]
                            for a, b in zip(i.tolist(), j.tolist(), strict=True)
                            if xmask[a, b] and walls[a, b] > TOUCH_M]
    out += [[kinds[a], ENTRANCE, round(float(cover[a].max(initial=0.0)), 3)]
            for a in range(n) if xmask_e[a] and cover[a].max(initial=0.0) > 1e-6]
    return out


def check_layout(
    zones: Sequence[Polygon],
    kinds: Sequence[str],
    targets: np.ndarray,
    outline: Polygon,
    entrances: Sequence[Point],
    standard: Standard,
) -> dict[str, Any]:
    """Every hard constraint of issue #3, with the measures behind it."""
    geoms = np.asarray(zones, dtype=object)
    # vertices are snapped to a micrometre grid, which moves walls by up to that much
    eps = _AREA_EPS * (1.0 + outline.area + outline.length)
    err = np.abs(shapely.area(geoms) - targets) / targets
    cover = door_cover(zones, door_segments(outline, entrances, standard.door_width_m))
    walls = shared_walls(zones)
    w, we, xmask, xmask_e = relationship_weights(kinds, standard)
    x_pairs = _x_pairs(kinds, walls, cover, xmask, xmask_e)
    ss = cover[list(kinds).index("self_service")].max(initial=0.0)
    constraints = _fit_checks(geoms, targets, outline, eps, standard.area_tolerance, kinds)
    constraints["self_service_at_entrance"] = _result(
        ss >= standard.min_shared_wall_m, f"self_service holds {ss:.2f} m of an entrance door")
    constraints["x_pairs_no_shared_wall"] = _result(
        not x_pairs, f"X pairs sharing wall: {x_pairs}" if x_pairs else "no X pair shares a wall")
    constraints.update(_shape_checks(geoms, kinds, standard))
    circle = shapely.length(shapely.maximum_inscribed_circle(geoms, 0.01)) * 2.0
    return {
        "area_error": {k: float(e) for k, e in zip(kinds, err, strict=True)},
        "area_error_mean": float(err.mean()),
        "area_error_max": float(err.max()),
        "adjacency_satisfaction": satisfaction(walls, cover, w, we, standard.min_shared_wall_m),
        "relationships": _relationship_rows(kinds, walls, cover, standard),
        "x_violations": x_pairs,
        "aspect_ratio": {k: round(float(a), 3) for k, a in
                         zip(kinds, aspect_ratios(zones), strict=True)},
        "largest_circle_m": {k: round(float(c), 3) for k, c in zip(kinds, circle, strict=True)},
        "constraints": constraints,
        "all_constraints_pass": all(c["pass"] for c in constraints.values()),
    }
