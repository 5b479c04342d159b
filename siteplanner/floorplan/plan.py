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
from siteplanner.floorplan import _fallback, _relayout
from siteplanner.floorplan._fallback import check_ranked, exhaustive
from siteplanner.floorplan._grow import grow_short, short_zones
from siteplanner.floorplan.access import Door
from siteplanner.floorplan.assemble import Assembled, assemble
from siteplanner.floorplan.layout import GRID, LayoutProblem
from siteplanner.floorplan.premises import unit_at_door
from siteplanner.floorplan.route import Route
from siteplanner.floorplan.search import _PATIENCE, search_ranked
from siteplanner.floorplan.sizing import (
    Demand,
    describe_programme,
    programme_area,
    reduce_programme,
    size_programme,
)
from siteplanner.floorplan.standard import FLEX, RESERVE, Standard, default_standard

__all__ = ["Allotment", "FloorPlan", "allot", "check_outline_size", "plan_floor", "premises_verdict",
           "validate_entrances", "validate_outline"]

log = logging.getLogger(__name__)

#: Entrances further than this from the outline wall are rejected, metres.
ENTRANCE_TOLERANCE_M = 0.10
#: Just over nothing: asking reduce_programme for this much less takes one unit off.
_STEP_M2 = 1e-6
#: Searches (each of ``budget`` layouts, from another seed) before a programme is given up.
_ATTEMPTS = 4
_RESEED = 7919
#: Most layouts searched exhaustively (branch and bound) after the seeded searches fail (7! * 2**6).
_EXHAUSTIVE = 322_560
#: Shares of the zone allowance (``max_zone_ratio - 1``) a unit cut from premises far larger
#: than the branch adds to its programme, tried in turn: half (the premises verdict's
#: recommended size), then all of it.
_UNIT_SHARES = (0.5, 1.0)
#: Why no zone is grown for its fixtures, as a refusal says it.
_NO_GROWTH = "no plan placed fewer fixtures than planned, so no zone grows"
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
    #: GeoDataFrame, one row per fixture part: ``fixture``, ``zone``, ``part`` (body or
    #: clearance, and the counters' staff side), ``index`` (the fixture's), ``cut_off``
    #: (a counter whose staff side has no staff-only way to the cash room), polygon.
    fixtures: gpd.GeoDataFrame | None = None
    doors: list[Door] = field(default_factory=list)
    route: Route | None = None
    #: The whole premises, when the branch is planned in a unit of them (``outline``) because
    #: no layout fills them (see :func:`plan_floor`); else None.
    premises: Polygon | None = None

    @property
    def ok(self) -> bool:
        """True when every hard constraint passes."""
        return bool(self.metrics["all_constraints_pass"])

    @property
    def cashiers_cut_off(self) -> int:
        """Counter stations whose staff side has no staff-only way to the cash room."""
        return len(self.metrics.get("counters_cut_off") or [])

    @property
    def staff_rooms_cut_off(self) -> list[str]:
        """Staff rooms (the back office, a reserve) with no staff-only way to the cash room."""
        return list(self.metrics.get("staff_rooms_cut_off") or [])

    @property
    def security_note(self) -> str | None:
        """What a security review would object to in a plan that passes every hard
        constraint: cashiers, or staff rooms, cut off from the cash room (reported, not yet
        enforced)."""
        n, rooms = self.cashiers_cut_off, self.staff_rooms_cut_off
        if not n and not rooms:
            return None
        said = []
        if n:
            total = int(self.metrics["fixtures"].get("counter", 0))
            said.append(f"{n} of {total} counter stations have no staff-only way to the cash "
                        "room: their cashiers would carry cash across the customers' floor")
        if rooms:
            said.append(f"the {' and the '.join(r.replace('_', ' ') for r in rooms)} "
                        f"{'has' if len(rooms) == 1 else 'have'} no staff-only way to the cash "
                        "room: its staff would carry cash across the customers' floor")
        return ("; ".join(said) + ". A layout with the service zone along the back office "
                "(try another --seed), or fewer counters on this floor, joins them")


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


@dataclass(frozen=True)
class Allotment:
    """Target areas per zone kind (the surplus zone included) and how the surplus was split."""

    targets: pd.Series
    allowed: pd.Series
    flex_m2: float
    residue_m2: float
    #: The zone laid out with the flex floor, which is then cut off it as its own zone.
    host: str
    #: Flex floor closed to customers as a staff ``reserve`` zone (see ``_as_reserve``), m².
    reserve_m2: float = 0.0
    #: The zones grown past their share because their fixtures fell short (see ``_grown``).
    grown: tuple[str, ...] = ()

    def scope(self, programme: pd.Series) -> dict[str, Any]:
        """The layout problem of this allotment, as a proof records it (``_fallback.scope_text``)."""
        surplus = ("reserve" if self.reserve_m2 > 0 else "flex" if self.flex_m2 > 0 else
                   "shared" if float(self.targets.sum() - programme.sum()) > 1e-6 else "none")
        return {"zones": {str(k): round(float(v), 1) for k, v in self.targets.items()},
                "surplus": surplus, "reserve_m2": round(self.reserve_m2, 1),
                "flex_m2": round(self.flex_m2, 1), "host": self.host, "grown": list(self.grown)}


def allot(programme: pd.Series, available: float, standard: Standard) -> Allotment:
    """Targets that fill the outline without padding any zone past ``max_zone_ratio``.

    Floor beyond the programme goes first to the ``surplus_to`` zones in
    proportion to their programme, up to ``max_zone_ratio`` times it; what is left
    becomes one ``flex`` zone when it is large enough to be a usable area (its
    minimum width squared), else it is spread over the same zones as circulation
    (the documented allowance above the ratio, reported as ``residue_m2``). The
    search lays the flex floor out as part of the first ``surplus_to`` zone (the
    host), and the plan cuts it off as its own zone: one zone fewer to search.
    """
    surplus = max(available - float(programme.sum()), 0.0)
    takers = [k for k in standard.surplus_to if k in programme.index]
    share = programme[takers] / programme[takers].sum()
    room = (standard.max_zone_ratio - 1.0) * float(programme[takers].sum())
    give = min(surplus, room)
    target = programme.astype(float).copy()
    target[takers] += give * share
    rest = surplus - give
    spec = standard.spec(FLEX)
    usable = max(spec.min_width_m, standard.turning_circle_m) ** 2
    allowed = programme.astype(float) * standard.max_zone_ratio
    flex = 0.0
    residue = 0.0
    if rest > usable:
        flex = rest
        target[takers[0]] += rest
    elif rest > 0:
        residue = rest
        target[takers] += rest * share
        allowed[takers] += rest * share
    return Allotment(target, allowed, flex, residue, takers[0])


def premises_verdict(available: float, programme: float, flex: float,
                     standard: Standard, *, reserve: bool = False) -> dict[str, Any]:
    """How far the premises are from the programme, and what to do about it.

    ``reserve``: the ``flex`` floor is closed to customers as a staff reserve.
    """
    ratio = available / programme
    if available < programme - 1e-9:
        verdict = "too_small"
        advice = (f"the premises are {programme - available:.0f} m² ({1 - ratio:.0%}) smaller than "
                  f"the programme; take a unit of at least {programme:.0f} m², or shrink the "
                  "zones in this order: waiting seats, ATMs, advisory desks, counters (--fit)")
    elif flex > 0:
        verdict = "too_large"
        good = programme * (1.0 + (standard.max_zone_ratio - 1.0) / 2.0)
        advice = (f"the premises are {available - programme:.0f} m² ({ratio - 1:.0%}) larger than "
                  f"the programme; {flex:.0f} m² is left as "
                  + ("a staff reserve (storage, room to grow; it lies beyond the door's "
                     f"{standard.max_egress_m:g} m egress reach, so customers are kept out)"
                     if reserve else "a flex zone (future counters, seating, events)")
                  + f"; a unit of about {good:.0f} m² would fit without it")
    else:
        verdict = "fits"
        advice = (f"the premises hold the programme with {available - programme:.0f} m² "
                  "(at most "f"{standard.max_zone_ratio:g}x per zone) to spare")
    return {"outline_m2": available, "programme_m2": programme, "ratio": ratio,
            "verdict": verdict, "advice": advice}


def check_outline_size(outline: Polygon, standard: Standard) -> None:
    """Refuse an outline above the standard's hard cap; warn above its typical range."""
    area = float(outline.area)
    lo, hi = standard.typical_outline_m2
    if area > standard.max_outline_m2:
        msg = (f"outline is {area:.4g} m², above the standard's max_outline_m2 "
               f"{standard.max_outline_m2:g} m²; this is not a branch floor (check the units are "
               "metres, or take one unit of the building)")
        raise InputError(msg)
    if area > hi:
        warnings.warn(f"outline is {area:.0f} m², above the typical branch range {lo:g}-{hi:g} m² "
                      "of the standard; the surplus is planned as flex floor", stacklevel=3)


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


def _check_egress_reach(outline: Polygon, entrances: Sequence[Point], sizing: pd.DataFrame,
                        standard: Standard) -> None:
    """Refuse at once when the public programme cannot lie within ``max_egress_m`` of a door.

    A walk is never shorter than the straight line, so public floor can only lie
    in the part of the outline within ``max_egress_m`` of an entrance, as the
    crow flies. When the public zones' programme is larger than that part, no
    layout meets the egress rule: a proof, naming the zones.
    """
    limit = standard.max_egress_m
    # the polygon of 128 sides drawn round the disc, so the reach is never underestimated
    disc = limit / math.cos(math.pi / 128)
    reach = float(shapely.area(shapely.intersection(
        outline, shapely.buffer(shapely.multipoints(list(entrances)), disc, quad_segs=32))))
    public = [str(k) for k in sizing.index if standard.spec(str(k)).public]
    need = float(sizing["programme_m2"].reindex(public).sum())
    if need > reach + 1e-6:
        msg = (f"the public zones ({', '.join(public)}: {need:.0f} m²) need more floor than the "
               f"{reach:.0f} m² of this outline within {limit:g} m of a door (max_egress_m), as "
               "the crow flies; no layout meets the egress rule: add an entrance on the far "
               "side, or take a more compact unit")
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
        Bad outline, entrance off the wall, bad or unmeetable demand, an outline
        above the standard's ``max_outline_m2``, an outline too small for the
        programme (unless ``fit``), or no layout found that meets every hard
        constraint (with ``fit``: not even of a programme reduced one unit at a
        time). A plan that breaks a hard constraint is never returned.
    """
    return _plan_floor(outline, entrances, demand, standard=standard, seed=seed, fit=fit,
                       budget=budget, in_a_unit=True)


def _plan_floor(outline: Polygon, entrances: Sequence[Point], demand: Demand | float, *,
                standard: Standard | None, seed: int, fit: bool, budget: int,
                in_a_unit: bool) -> FloorPlan:
    """:func:`plan_floor`; ``in_a_unit``: premises far larger than the branch that hold no
    layout are planned in a unit of them (not again inside that unit)."""
    t0 = time.perf_counter()
    standard = standard or default_standard()
    outline = validate_outline(outline)
    check_outline_size(outline, standard)
    entrances = validate_entrances(entrances, outline)
    if not isinstance(demand, Demand):
        demand = Demand(demand)
    sizing, reduced = _programme_that_fits(size_programme(demand, standard), float(outline.area),
                                           standard, fit)
    _check_wide_enough(outline, [str(k) for k in sizing.index], standard)
    _check_egress_reach(outline, entrances, sizing, standard)
    # premises far larger than the branch (a 480 m² unit for 171 m²): when no layout fills
    # them, the branch is planned in a unit of them at the door, before any programme is cut
    large = in_a_unit and float(outline.area) > standard.max_zone_ratio * programme_area(sizing)
    try:
        found = _fallback.unless_unproven(lambda: _search(outline, entrances, sizing, standard,
                                                          seed=seed, fit=fit and not large,
                                                          budget=budget))
    except _fallback.LayoutRefused as refused:
        if not large:
            raise
        return _in_a_unit(outline, entrances, demand, sizing, standard, refused, seed=seed,
                          fit=fit, budget=budget)
    sizing, allotment, done, genome, problem, reduced_here = found
    return _plan(done, sizing, allotment, outline, entrances, standard, genome, problem,
                 reduced or reduced_here, seed, t0)


def _in_a_unit(outline: Polygon, entrances: tuple[Point, ...], demand: Demand,
               sizing: pd.DataFrame, standard: Standard, refused: _fallback.LayoutRefused, *,
               seed: int, fit: bool, budget: int) -> FloorPlan:
    """The branch planned in a unit of ``outline`` at its first entrance, or ``refused``.

    The unit is the one :mod:`~siteplanner.floorplan.premises` cuts from a large OSM
    building: the programme plus half the zone allowance (1.25 x by default), against
    the entrance's wall, centred on the door, 1.5 x as deep as wide; when that unit
    holds no layout, one of the programme plus the whole allowance (1.5 x). The rest of the
    premises is not part of the plan, and the plan says so (``premises``,
    ``metrics["unit_of_premises"]``, a warning).
    """
    plan = None
    for share in _UNIT_SHARES:
        target = programme_area(sizing) * (1.0 + (standard.max_zone_ratio - 1.0) * share)
        unit = unit_at_door(outline, entrances[0], target, standard.spec(FLEX).min_width_m)
        doors = [p for p in entrances if unit.exterior.distance(p) <= ENTRANCE_TOLERANCE_M]
        if unit.is_empty or unit.area >= outline.area or not doors:
            continue
        try:
            plan = _plan_floor(unit, doors, demand, standard=standard, seed=seed, fit=fit,
                               budget=budget, in_a_unit=False)
            break
        except InputError:
            continue
    if plan is None:
        # the whole premises' refusal, which says so of units of them too (--fit would
        # shrink the programme of premises too large for it)
        sizes = " or ".join(f"{1.0 + (standard.max_zone_ratio - 1.0) * k:g}"
                            for k in _UNIT_SHARES)
        msg = (f"{refused}; a unit of the premises at the entrance, {sizes} x the programme, "
               "holds none either")
        raise _fallback.LayoutRefused(msg, proven=refused.proven) from None
    rest = float(outline.area - unit.area)
    plan.premises = outline
    plan.metrics["unit_of_premises"] = {
        "premises_m2": round(float(outline.area), 1), "unit_m2": round(float(unit.area), 1),
        "rest_m2": round(rest, 1), "why": str(refused)}
    warnings.warn(f"no layout fills the {outline.area:.1f} m² premises (about "
                  f"{outline.area / programme_area(sizing):.1f} x the {programme_area(sizing):.1f} m² "
                  f"programme); the branch is planned in a {unit.area:.1f} m² unit of them at "
                  f"the entrance, and the other {rest:.1f} m² are not part of the plan "
                  "(partition them off, or let them)", stacklevel=3)
    return plan


def _programme_that_fits(sizing: pd.DataFrame, available: float, standard: Standard,
                         fit: bool) -> tuple[pd.DataFrame, bool]:
    needed = programme_area(sizing)
    if needed <= available + 1e-9:
        return sizing, False
    smaller = reduce_programme(sizing, available, standard)
    if fit and smaller is not None:
        warnings.warn(f"outline {available:.1f} m² is smaller than the programme "
                      f"{needed:.1f} m²; laid out the reduced programme "
                      f"{describe_programme(smaller)}", stacklevel=3)
        return smaller, True
    offer = (f"the reduced programme that fits is {describe_programme(smaller)}; "
             "rerun with --fit to lay it out" if smaller is not None else
             "even one unit per zone does not fit")
    msg = (f"outline is {needed - available:.1f} m² too small: it has {available:.1f} m² "
           f"but the programme needs {needed:.1f} m²; {offer}")
    raise InputError(msg)


def _attempts(problem: LayoutProblem, allotment: Allotment, sizing: pd.DataFrame,
              outline: Polygon, entrances: tuple[Point, ...], back: list[float], seed: int,
              budget: int, broke: set[str], short: set[str]) -> tuple[Assembled, Any]:
    """The cheapest layout whose full plan passes every check.

    The search's cost sees the zones only; fixtures, doors and the public route
    are checked on the assembled plan. So the cheapest ``_CHECKED`` layouts of a
    search are assembled in cost order until one passes; failing that, another
    search from another seed follows, up to ``_ATTEMPTS``. When those fail and
    every layout the method can express is at most ``_EXHAUSTIVE`` (seven zones),
    all are searched by branch and bound and checked: when none passes, the plan's
    ``metrics["exhaustive"]`` is the proof for this problem, naming the zones that do
    not fit. The least broken plan is returned when none passes. ``broke`` and
    ``short`` gather the checks every plan assembled here failed and the zones whose
    fixtures fell short in any of them (the retries they call for, see ``_chain``).
    """
    programme = sizing["programme_m2"].reindex(list(problem.kinds), fill_value=0.0
                                               ).to_numpy(dtype=float)
    units = tuple(int(sizing["units"].get(k, 0)) for k in problem.kinds)
    planned = dict(zip(problem.kinds, units, strict=True))

    def lay(genome: Any) -> Assembled:
        return assemble(problem.decode(genome), problem.kinds, problem.targets, programme, units,
                        outline, problem.outline, entrances, problem.entrances, back,
                        problem.standard, host=allotment.host, flex_m2=allotment.flex_m2,
                        residue_m2=allotment.residue_m2)

    def build(genome: Any) -> Assembled:
        done = lay(genome)
        broke.update(k for k, v in done.metrics["constraints"].items() if not v["pass"])
        short.update(short_zones(done.metrics["fixtures"], planned))
        return done

    best: tuple[float, Assembled, Any] | None = None
    tried: set[Any] = set()
    failures: dict[str, int] = {}  # the failed full checks, for the exhaustive proof
    for attempt in range(_ATTEMPTS):
        # the problem keeps its cache of cut pieces, so a retry costs less than the first
        # the first search stops once it stagnates; a retry, after its best plans failed
        # the full checks, spends its whole budget
        ranked = search_ranked(problem, seed=seed + _RESEED * attempt, budget=budget,
                               patience=_PATIENCE if attempt == 0 else budget)
        best, ok = check_ranked(ranked, tried, best, build, failures=failures)
        if ok:
            # cashiers cut off: a layout whose service zone backs onto the back of house
            return _relayout.backed(problem, best[1], best[2], lay, tried, seed=seed,
                                    budget=budget)
    space = math.factorial(problem.n) * 2 ** (problem.n - 1)
    if budget < space <= _EXHAUSTIVE and not _fallback.quick():
        assert best is not None
        best, ok = exhaustive(problem, best, tried, build, failures,
                              allotment.scope(sizing["programme_m2"]))
        if ok:
            return best[1], best[2]
    assert best is not None
    return best[1], best[2]


def _beyond_egress(outline: Polygon, entrances: Sequence[Point], standard: Standard) -> bool:
    """Whether some corner of the outline is over ``max_egress_m`` from every door, straight."""
    c = shapely.get_coordinates(outline.exterior)
    d = np.array([[p.x, p.y] for p in entrances])
    far = np.sqrt(((c[:, None, :] - d[None, :, :]) ** 2).sum(axis=2)).min(axis=1).max()
    return bool(far > standard.max_egress_m)


def _as_reserve(allotment: Allotment, programme: pd.Series, standard: Standard) -> Allotment:
    """The surplus floor as its own staff zone, ``reserve``, laid out by the search.

    On premises that reach beyond ``max_egress_m`` of the door, surplus public
    floor (flex, or zones grown past their programme) would spread the public
    zones to the far end and break the egress rule. Closed to customers (staff
    storage, room to grow) it is staff floor, and the search places it like any
    staff room, so the public zones, at their programme, stay within reach of the
    door. Unchanged when the surplus is below a usable room (then it is the
    circulation residue).
    """
    surplus = float(allotment.targets.sum() - programme.sum())
    spec = standard.spec(RESERVE)
    if surplus <= max(spec.min_width_m, standard.turning_circle_m) ** 2:
        return allotment
    targets = programme.astype(float).reindex(allotment.targets.index)
    targets[RESERVE] = surplus
    allowed = allotment.allowed.copy()
    allowed[RESERVE] = surplus
    return Allotment(targets, allowed, 0.0, 0.0, allotment.host, reserve_m2=surplus)


def _grown(allotment: Allotment, sizing: pd.DataFrame, short: list[str],
           standard: Standard) -> Allotment | None:
    """The allotment with the ``short`` zones grown from the surplus, or None when none can grow.

    See :mod:`siteplanner.floorplan._grow`: within ``max_zone_ratio`` of their
    programme, the area taken from the reserve, the flex zone or the other zones'
    surplus.
    """
    programme = sizing["programme_m2"].astype(float)
    grown = grow_short(allotment.targets, programme, short, allotment.host, allotment.flex_m2,
                       standard)
    if grown is None:
        return None
    targets, flex = grown
    log.debug("fixtures of %s fell short; retrying with them grown to %s m²", short,
              targets[short].round(1).to_dict())
    return Allotment(targets, allotment.allowed, flex, allotment.residue_m2, allotment.host,
                     reserve_m2=float(targets.get(RESERVE, 0.0)), grown=tuple(short))


@dataclass
class _Searched:
    """One layout problem searched: its allotment and best plan, and what its plans broke."""

    allotment: Allotment
    problem: LayoutProblem
    done: Assembled
    genome: Any
    #: The checks some plan assembled for this problem failed (any of them, not only the best).
    broke: set[str]
    #: The zones whose fixtures fell short: in the best plan, else in any plan assembled.
    short: list[str]

    @property
    def failed(self) -> dict[str, str]:
        """The best plan's failed checks and their details."""
        return {k: v["detail"] for k, v in self.done.metrics["constraints"].items()
                if not v["pass"]}


def _lay_out(local: Polygon, local_doors: tuple[Point, ...], allotment: Allotment,
             sizing: pd.DataFrame, outline: Polygon, entrances: tuple[Point, ...],
             back: list[float], standard: Standard, seed: int, budget: int) -> _Searched:
    """The best plan of one allotment (see :func:`_attempts`) and its search problem."""
    kinds = tuple(str(k) for k in allotment.targets.index)
    units = tuple(int(sizing["units"].get(k, 0)) for k in kinds)
    problem = LayoutProblem(local, kinds, allotment.targets.to_numpy(dtype=float),
                            local_doors, standard, units=units)
    broke: set[str] = set()
    seen: set[str] = set()
    done, genome = _attempts(problem, allotment, sizing, outline, entrances, back, seed, budget,
                             broke, seen)
    planned = {str(k): int(v) for k, v in sizing["units"].items()}
    short = short_zones(done.metrics["fixtures"], planned) or [k for k in kinds if k in seen]
    return _Searched(allotment, problem, done, genome, broke, short)


def _retries(searched: _Searched, sizing: pd.DataFrame, standard: Standard
             ) -> tuple[list[Allotment], list[str]]:
    """The layout problems to try after ``searched`` failed, in order, and why others do not apply.

    The staff reserve (``_as_reserve``) when some plan broke the egress rule (the
    reserve's purpose), the surplus is a usable room and it is not a reserve
    already; the zones whose fixtures fell short grown (``_grown``) when some plan
    placed fewer than planned. Every plan assembled counts, not only the least
    broken: #138's best plan failed the clear width alone while others broke the
    egress rule the reserve then meets. A grown problem is not grown again. The
    reserve goes first when the best plan itself broke the egress rule.
    """
    allotment = searched.allotment
    if allotment.grown:
        return [], []
    why: list[str] = []
    out: list[Allotment] = []
    programme = sizing["programme_m2"]
    reserve = _as_reserve(allotment, programme, standard)
    if allotment.reserve_m2 > 0:
        why.append("the surplus is a staff reserve already")
    elif "egress_distance" not in searched.broke:
        why.append("no plan broke the egress rule, which a staff reserve is for")
    elif reserve is allotment:
        surplus = float(allotment.targets.sum() - programme.sum())
        why.append(f"the surplus, {surplus:.1f} m², is too small for a staff reserve")
    else:
        out.append(reserve)
    if not searched.short:
        why.append(_NO_GROWTH)
    else:
        grown = _grown(allotment, sizing, searched.short, standard)
        if grown is None:
            why.append(f"{', '.join(searched.short)} fell short of fixtures but can grow no "
                       "further (at their allowance, or no surplus to take)")
        else:
            out.append(grown)
    if out and "egress_distance" not in searched.failed:
        out.reverse()  # the best plan's own failure decides which retry comes first
    narrow = [k for c in ("min_width", "turning_circle")
              for k in searched.done.metrics["constraints"].get(c, {}).get("zones", ())
              if k in programme.index]
    if not searched.short and narrow:
        # zones too narrow (a 12.9 m² waiting area beside a 309 m² staff reserve, sliced to
        # 0.8 m), grown towards their allowance from the surplus: last, so the plans the
        # other retries found are kept
        grow = set(narrow) | {k for k in standard.surplus_to if k in programme.index}
        wider = _grown(allotment, sizing, sorted(grow), standard)
        if wider is not None:
            out.append(wider)
            why.remove(_NO_GROWTH)  # the zones do grow, for width rather than fixtures
    return out, why


def _chain(first: Allotment, sizing: pd.DataFrame, local: Polygon,
           local_doors: tuple[Point, ...], outline: Polygon, entrances: tuple[Point, ...],
           back: list[float], standard: Standard, seed: int, budget: int
           ) -> tuple[list[_Searched], list[str]]:
    """Lay out ``first``, then each retry its failure calls for (:func:`_retries`), until one passes.

    Each retry's own retries follow it at once (the reserve's grown zones before the
    first problem's), so the first plan found is the one the planner found before
    it tried every retry. Returns the problems searched (the last passes, when one
    does) and why the retries not searched do not apply: a refusal is proven only
    when every problem searched is (``_fallback.refusal``).
    """
    pending = [first]
    searched: list[_Searched] = []
    why: list[str] = []
    while pending:
        allotment = pending.pop(0)
        done = _lay_out(local, local_doors, allotment, sizing, outline, entrances, back,
                        standard, seed, budget)
        searched.append(done)
        if not done.failed:
            break
        more, not_here = _retries(done, sizing, standard)
        pending[:0] = more
        why += not_here
    return searched, why


def _search(outline: Polygon, entrances: tuple[Point, ...], sizing: pd.DataFrame,
            standard: Standard, *, seed: int, fit: bool, budget: int) -> tuple[Any, ...]:
    """Search layouts, taking units off the programme (with ``fit``) until one passes."""
    fwd, back = _frame(outline)
    local = shapely.set_precision(affine_transform(outline, fwd), GRID)
    local_doors = tuple(Point(affine_transform(p, fwd).coords[0]) for p in entrances)
    reduced = False
    for step in range(_FIT_STEPS + 1):
        allotment = allot(sizing["programme_m2"], float(outline.area), standard)
        if _beyond_egress(outline, entrances, standard):
            # the far end out of the door's reach: the surplus is staff floor from the start
            allotment = _as_reserve(allotment, sizing["programme_m2"], standard)
        searched, why_not = _chain(allotment, sizing, local, local_doors, outline, entrances,
                                   back, standard, seed, budget)
        last = searched[-1]
        if not last.failed:
            return sizing, last.allotment, last.done, last.genome, last.problem, reduced
        failed = min((s.failed for s in searched), key=len)  # the least broken of them
        # a smaller programme leaves more floor to the public zones, which can free a
        # wall or a corner for the rooms that did not fit
        smaller = (reduce_programme(sizing, programme_area(sizing) - _STEP_M2, standard)
                   if fit and step < _FIT_STEPS else None)
        if smaller is None:
            hint = ("--fit found no smaller programme that lays out" if fit else
                    "rerun with --fit to lay out a reduced programme, or try another --seed")
            why, proven = _fallback.refusal(
                [(s.allotment.scope(sizing["programme_m2"]), s.done.metrics.get("exhaustive"))
                 for s in searched], why_not)
            msg = (f"no layout of {describe_programme(sizing)} in this {outline.area:.1f} m² "
                   f"outline meets every hard constraint{why} (best try: "
                   f"{'; '.join(f'{k}: {v}' for k, v in failed.items())}); {hint}")
            raise _fallback.LayoutRefused(msg, proven=proven)
        sizing, reduced = smaller, True
        warnings.warn(f"the programme does not lay out in this outline ({', '.join(failed)}); "
                      f"trying the reduced programme {describe_programme(smaller)}", stacklevel=3)
    raise AssertionError("unreachable")


def _fixture_table(done: Assembled) -> gpd.GeoDataFrame:
    rows: list[dict[str, Any]] = []
    cut = set(done.metrics.get("counters_cut_off") or [])
    for k, fx in enumerate(done.fixtures):
        row = {"fixture": fx.kind, "zone": fx.zone, "index": k, "cut_off": k in cut}
        if not fx.body.is_empty:  # a staff strip is staff floor only
            rows.append(row | {"part": "body", "geometry": fx.body})
        if not fx.clearance.is_empty:
            rows.append(row | {"part": "clearance", "geometry": fx.clearance})
        if fx.staff_side is not None:
            rows.append(row | {"part": "staff_side", "geometry": fx.staff_side})
    cols = ["fixture", "zone", "part", "index", "cut_off", "geometry"]
    return gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=None)


def _plan(done: Assembled, sizing: pd.DataFrame, allotment: Allotment, outline: Polygon,
          entrances: tuple[Point, ...], standard: Standard, genome: Any, problem: LayoutProblem,
          reduced: bool, seed: int, t0: float) -> FloorPlan:
    kinds = done.kinds
    targets = done.metrics.pop("targets_m2")
    programmes = done.metrics.pop("programmes_m2")
    programme = np.array(list(programmes.values()), dtype=float)
    sizing = sizing.assign(target_m2=pd.Series(targets).reindex(sizing.index))
    zones = gpd.GeoDataFrame(
        {
            "zone": list(kinds),
            "access": [standard.access(k) for k in kinds],
            "area_m2": shapely.area(np.asarray(done.zones, dtype=object)),
            "target_m2": list(targets.values()),
            "programme_m2": programme,
            "units": [int(sizing["units"].get(k, 0)) for k in kinds],
            "unit": [str(sizing["unit"].get(k, "m²")) for k in kinds],
        },
        geometry=done.zones,
        crs=None,
    )
    metrics = done.metrics
    available = float(outline.area)
    takers = [k for k in standard.surplus_to if k in kinds]
    metrics.update({
        "outline_m2": available,
        "programme_m2": float(programme.sum()),
        "surplus_m2": available - float(programme.sum()),
        "flex_m2": allotment.flex_m2,
        "reserve_m2": allotment.reserve_m2,
        "circulation_residue_m2": allotment.residue_m2,
        "surplus_rule": (f"floor beyond the programme goes to {', '.join(takers)} "
                         f"in proportion to their programme, up to {standard.max_zone_ratio:g}x it; "
                         f"the rest is one {FLEX} zone (named circulation when the public route "
                         "runs through it), or, below a usable size, circulation in those zones"),
        "premises": premises_verdict(available, float(programme.sum()),
                                     allotment.flex_m2 + allotment.reserve_m2, standard,
                                     reserve=allotment.reserve_m2 > 0),
        "reduced_programme": reduced,
        "seed": seed,
        "genome": {"order": [problem.kinds[i] for i in genome[0]], "flips": list(genome[1])},
        "layouts_costed": problem.evaluations,
        "runtime_s": {"total": time.perf_counter() - t0},
    })
    log.info("floor plan: %d zones, %d fixtures, satisfaction %.2f, %.2f s", len(kinds),
             len(done.fixtures), metrics["adjacency_satisfaction"], metrics["runtime_s"]["total"])
    return FloorPlan(zones=zones, sizing=sizing, metrics=metrics, outline=outline,
                     entrances=entrances, standard=standard, fixtures=_fixture_table(done),
                     doors=done.doors, route=done.route)
