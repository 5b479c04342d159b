"""plan_floor: from an outline, entrances and demand to a checked zone layout."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.affinity import affine_transform
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner._errors import InputError
from siteplanner.floorplan._check import check_layout
from siteplanner.floorplan.layout import GRID, LayoutProblem, search_layout
from siteplanner.floorplan.sizing import (
    Demand,
    describe_programme,
    programme_area,
    reduce_programme,
    size_programme,
)
from siteplanner.floorplan.standard import Standard, default_standard

__all__ = ["FloorPlan", "plan_floor", "validate_outline", "validate_entrances"]

log = logging.getLogger(__name__)

#: Entrances further than this from the outline wall are rejected, metres.
ENTRANCE_TOLERANCE_M = 0.10
#: Just over nothing: asking reduce_programme for this much less takes one unit off.
_STEP_M2 = 1e-6
#: Searches (each of ``budget`` layouts, from another seed) before a programme is given up.
_ATTEMPTS = 4
_RESEED = 7919
#: Units --fit takes off, one at a time, looking for a programme that lays out.
_FIT_STEPS = 6


@dataclass
class FloorPlan:
    """A sized and laid-out branch floor.

    Attributes
    ----------
    zones
        GeoDataFrame, one row per zone: ``zone``, ``area_m2``, ``target_m2``,
        ``programme_m2``, ``units``, ``unit`` and the polygon (local metres, no CRS).
    sizing
        The sizing table (servers, waits, utilisation, seats, areas) per zone.
    metrics
        Area errors, adjacency satisfaction, X violations, aspect ratios, each hard
        constraint's pass or fail, and the runtime.
    """

    zones: gpd.GeoDataFrame
    sizing: pd.DataFrame
    metrics: dict[str, Any]
    outline: Polygon
    entrances: tuple[Point, ...]
    standard: Standard = field(repr=False)

    @property
    def ok(self) -> bool:
        """True when every hard constraint passes."""
        return bool(self.metrics["all_constraints_pass"])


def validate_outline(outline: object, *, source: str = "outline") -> Polygon:
    """Check that ``outline`` is one non-empty, simple polygon without holes."""
    if not isinstance(outline, BaseGeometry):
        msg = f"{source} must be a shapely Polygon, got {type(outline).__name__}"
        raise InputError(msg)
    geom: BaseGeometry = outline
    if geom.is_empty:
        msg = f"{source} is empty; give a floor outline polygon in local metres"
        raise InputError(msg)
    if isinstance(geom, MultiPolygon) and len(geom.geoms) == 1:
        geom = geom.geoms[0]
    if not isinstance(geom, Polygon):
        msg = f"{source} is a {geom.geom_type}; give a single Polygon floor outline"
        raise InputError(msg)
    if not geom.is_valid:
        why = shapely.is_valid_reason(geom)
        msg = f"{source} is not a simple polygon ({why}); fix the self-intersection and retry"
        raise InputError(msg)
    if len(geom.interiors):
        msg = (f"{source} has {len(geom.interiors)} hole(s); give the floor as a simple "
               "polygon (model shafts and columns as part of a zone)")
        raise InputError(msg)
    if not geom.area > 0:
        msg = f"{source} has zero area"
        raise InputError(msg)
    return geom


def validate_entrances(entrances: Sequence[Point], outline: Polygon) -> tuple[Point, ...]:
    """Snap entrances onto the outline wall; reject any further than 10 cm from it."""
    pts = tuple(entrances)
    if not pts:
        msg = "no entrance given; pass at least one --entrance X,Y on the outline wall"
        raise InputError(msg)
    ring = outline.exterior
    out = []
    for p in pts:
        if not isinstance(p, Point) or p.is_empty:
            msg = f"entrance {p!r} must be a shapely Point"
            raise InputError(msg)
        d = ring.distance(p)
        if d > ENTRANCE_TOLERANCE_M:
            msg = (f"entrance ({p.x:g}, {p.y:g}) is {d:.2f} m from the outline wall; entrances "
                   f"must lie on the boundary (within {ENTRANCE_TOLERANCE_M:g} m)")
            raise InputError(msg)
        out.append(ring.interpolate(ring.project(p)))
    return tuple(out)


def _frame(outline: Polygon) -> tuple[list[float], list[float]]:
    """Affine maps to and from a frame whose axes run along the outline's longest wall."""
    c = shapely.get_coordinates(outline.exterior)
    d = np.diff(c, axis=0)
    k = int(np.argmax(np.hypot(d[:, 0], d[:, 1])))
    angle = math.atan2(d[k, 1], d[k, 0]) % (math.pi / 2)
    if angle > math.pi / 4:
        angle -= math.pi / 2
    if abs(angle) < 1e-9:
        ident = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        return ident, ident
    cx, cy = outline.centroid.x, outline.centroid.y
    ca, sa = math.cos(angle), math.sin(angle)
    # forward: rotate by -angle about the centroid, centroid to the origin
    fwd = [ca, sa, -sa, ca, -(ca * cx + sa * cy), -(-sa * cx + ca * cy)]
    back = [ca, -sa, sa, ca, cx, cy]
    return fwd, back


def _allot(programme: pd.Series, available: float, standard: Standard) -> pd.Series:
    """Targets that fill the outline: surplus goes to the surplus zones by programme area."""
    surplus = available - float(programme.sum())
    takers = [k for k in standard.surplus_to if k in programme.index]
    share = programme[takers] / programme[takers].sum()
    target = programme.astype(float).copy()
    target[takers] += surplus * share
    return target


def _check_wide_enough(outline: Polygon, kinds: Sequence[str], standard: Standard) -> None:
    """Refuse at once an outline nowhere as wide as its widest-needing zone: no search helps."""
    wide = 2.0 * float(shapely.length(shapely.maximum_inscribed_circle(outline, 0.01)))
    need = {k: max(standard.zones[k].min_width_m,
                   standard.turning_circle_m if standard.zones[k].public else 0.0)
            for k in kinds}
    worst = max(need, key=lambda k: need[k])
    if need[worst] > wide:
        msg = (f"the outline is at most {wide:.2f} m wide but the {worst} zone needs "
               f"{need[worst]:g} m; no layout can meet the minimum widths of the standard "
               "(give a wider floor, or a standard with narrower zones)")
        raise InputError(msg)


def plan_floor(
    outline: Polygon,
    entrances: Sequence[Point],
    demand: Demand | float,
    *,
    standard: Standard | None = None,
    seed: int = 0,
    fit: bool = False,
    budget: int = 120,
) -> FloorPlan:
    """Size the zones of a branch for ``demand`` and lay them out inside ``outline``.

    Parameters
    ----------
    outline
        Simple polygon in local metres (concave shapes allowed, no holes).
    entrances
        Points on the outline wall (snapped when within 10 cm).
    demand
        A :class:`Demand`, or the total peak-hour arrivals.
    standard
        Brand standard; the documented default when None.
    seed
        Seed of the local search; the same inputs and seed give the same plan.
    fit
        When the outline is too small, or its shape holds no valid layout of the
        programme, lay out a reduced programme that fits instead of raising.
    budget
        Layouts one local search may cost; when its best layout breaks a hard
        constraint, up to three more searches from other seeds follow.

    Raises
    ------
    InputError
        Bad outline, entrance off the wall, bad or unmeetable demand, an
        outline too small for the programme (unless ``fit``), or no layout found
        that meets every hard constraint (with ``fit``: not even of a programme
        reduced one unit at a time). A plan that breaks a hard constraint is never
        returned.
    """
    t0 = time.perf_counter()
    standard = standard or default_standard()
    outline = validate_outline(outline)
    entrances = validate_entrances(entrances, outline)
    if not isinstance(demand, Demand):
        demand = Demand(demand)
    sizing = size_programme(demand, standard)
    available = float(outline.area)
    needed = programme_area(sizing)
    reduced = False
    if needed > available + 1e-9:
        smaller = reduce_programme(sizing, available, standard)
        if fit and smaller is not None:
            sizing, reduced = smaller, True
            warnings.warn(f"outline {available:.1f} m² is smaller than the programme "
                          f"{needed:.1f} m²; laid out the reduced programme "
                          f"{describe_programme(smaller)}", stacklevel=2)
        else:
            offer = (f"the reduced programme that fits is {describe_programme(smaller)}; "
                     "rerun with --fit to lay it out" if smaller is not None else
                     "even one unit per zone does not fit")
            msg = (f"outline is {needed - available:.1f} m² too small: it has {available:.1f} m² "
                   f"but the programme needs {needed:.1f} m²; {offer}")
            raise InputError(msg)
    _check_wide_enough(outline, [str(k) for k in sizing.index], standard)
    fwd, back = _frame(outline)
    local = shapely.set_precision(affine_transform(outline, fwd), GRID)
    local_doors = tuple(Point(affine_transform(p, fwd).coords[0]) for p in entrances)
    steps = 0
    while True:
        programme = sizing["programme_m2"]
        target = _allot(programme, available, standard)
        kinds = tuple(str(k) for k in sizing.index)
        problem = LayoutProblem(local, kinds, target.to_numpy(dtype=float), local_doors, standard)
        for attempt in range(_ATTEMPTS):
            # a search that ends on a broken layout restarts from other seeds; the
            # problem keeps its cache of cut pieces, so a retry costs less than the first
            genome, _ = search_layout(problem, seed=seed + _RESEED * attempt, budget=budget)
            geoms = [affine_transform(g, back) for g in problem.decode(genome)]
            metrics = check_layout(geoms, kinds, target.to_numpy(dtype=float), outline,
                                   entrances, standard)
            if metrics["all_constraints_pass"]:
                break
        if metrics["all_constraints_pass"]:
            break
        failed = {k: v["detail"] for k, v in metrics["constraints"].items() if not v["pass"]}
        # a smaller programme leaves more floor to the public zones, which can free a
        # wall or a corner for the rooms that did not fit
        steps += 1
        smaller = (reduce_programme(sizing, programme_area(sizing) - _STEP_M2, standard)
                   if fit and steps <= _FIT_STEPS else None)
        if smaller is None:
            hint = ("--fit found no smaller programme that lays out" if fit else
                    "rerun with --fit to lay out a reduced programme, or try another --seed")
            msg = (f"no layout of {describe_programme(sizing)} in this {available:.1f} m² "
                   f"outline meets every hard constraint (best try: "
                   f"{'; '.join(f'{k}: {v}' for k, v in failed.items())}); {hint}")
            raise InputError(msg)
        sizing, reduced = smaller, True
        warnings.warn(f"the programme does not lay out in this outline ({', '.join(failed)}); "
                      f"trying the reduced programme {describe_programme(smaller)}", stacklevel=2)
    t_layout = time.perf_counter() - t0

    sizing = sizing.assign(target_m2=target)
    zones = gpd.GeoDataFrame(
        {
            "zone": list(kinds),
            "area_m2": shapely.area(np.asarray(geoms, dtype=object)),
            "target_m2": target.to_numpy(dtype=float),
            "programme_m2": programme.to_numpy(dtype=float),
            "units": sizing["units"].to_numpy(dtype=int),
            "unit": sizing["unit"].to_numpy(dtype=object),
        },
        geometry=geoms,
        crs=None,
    )
    metrics.update({
        "outline_m2": available,
        "programme_m2": float(programme.sum()),
        "surplus_m2": available - float(programme.sum()),
        "surplus_rule": ("floor beyond the programme goes to " + ", ".join(
            k for k in standard.surplus_to if k in kinds) + " in proportion to their "
            "programme areas; other zones keep their programme area"),
        "reduced_programme": reduced,
        "seed": seed,
        "genome": {"order": [kinds[i] for i in genome[0]], "flips": list(genome[1])},
        "layouts_costed": problem.evaluations,
        "runtime_s": {"layout": t_layout, "total": time.perf_counter() - t0},
    })
    log.info("floor plan: %d zones, satisfaction %.2f, %.2f s", len(kinds),
             metrics["adjacency_satisfaction"], metrics["runtime_s"]["total"])
    return FloorPlan(zones=zones, sizing=sizing, metrics=metrics, outline=outline,
                     entrances=entrances, standard=standard)
