"""The study's settings sections: candidates, area, selection, network, Huff, demand, model, floor plan.

Each is a frozen, validated dataclass of the one typed schema in
:mod:`siteplanner.config` (same strict types and one-line messages); every
default is stated once, on its field, with its reason.
"""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Le
from pydantic import Field, Strict

from siteplanner._schema import (
    Capacity,
    Coordinate,
    Decay,
    Expect,
    FilePath,
    H3Res,
    Metres,
    Metres0,
    Minutes,
    PerHour,
    Positive,
    Problem,
    Seconds,
    Switch,
    Text,
    WalkSpeed,
    Weight,
    Whole0,
    Whole1,
    is_file,
    settings,
    show,
)

__all__ = [
    "CAPACITY_METHODS",
    "MODEL_KINDS",
    "SELECTION_METHODS",
    "SOLVERS",
    "CandidateSettings",
    "DemandSettings",
    "FloorplanSettings",
    "HuffSettings",
    "ModelSettings",
    "NetworkSettings",
    "SelectionSettings",
    "StudyArea",
]

SELECTION_METHODS = ("top", "coverage", "pmedian", "capture", "npv")
SOLVERS = ("auto", "exact", "heuristic")
#: Selection methods whose location models take a per-branch capacity.
CAPACITY_METHODS = ("coverage", "pmedian")
MODEL_KINDS = ("weighted", "learned")

Method = Annotated[Literal["top", "coverage", "pmedian", "capture", "npv"],
                   Expect(f"one of {', '.join(SELECTION_METHODS)}")]
Solver = Annotated[Literal["auto", "exact", "heuristic"], Expect(f"one of {', '.join(SOLVERS)}")]
ModelKind = Annotated[Literal["weighted", "learned"], Expect(f"one of {', '.join(MODEL_KINDS)}")]
EdgePolicy = Annotated[Literal["exclude", "keep"], Expect('"exclude" or "keep"')]
PremisesKind = Annotated[Literal["auto", "outline", "osm"], Expect('"auto", "outline" or "osm"')]
AdminLevel = Annotated[int, Strict(), Ge(1), Le(12), Expect("a whole number from 1 to 12 (OSM admin_level)")]
TravelMode = Annotated[Literal["walk", "drive"], Expect('"walk" or "drive"')]
Point2 = Annotated[tuple[Coordinate, Coordinate], Expect("an [x, y] point in local metres")]


@settings("candidates")
class CandidateSettings:
    """How candidate sites are generated when no candidate file is given."""

    #: H3 resolution 11 cells cover about 2,150 m² (~25 m edges, H3's resolution
    #: table): a block face, fine enough to tell one side of a square from the other.
    h3_resolution: H3Res = 11
    #: How far a cell centre may be from a walkable street (m); None: the H3
    #: cell edge length at the resolution (see :mod:`siteplanner.candidates`).
    street_within_m: Metres | None = None
    #: ``exclude``: candidates whose reach runs past the data's edge are not
    #: selected; ``keep``: they are, flagged ``edge``.
    edge: EdgePolicy = "exclude"


@settings("study.area")
class StudyArea:
    """The administrative boundary to study, by its name and/or its ``admin_level``.

    ``area = {admin_level = 2}`` is the country; ``{name = "Andorra la Vella"}``
    one boundary by name (see :mod:`siteplanner.area`).
    """

    name: Text | None = None
    admin_level: AdminLevel | None = None


@settings("selection")
class SelectionSettings:
    """The rule that turns a ranking into sites: top K with spacing, or a location model.

    The two spacings make the operating rule "avoid over-competition"
    explicit: new sites keep ``min_spacing_m`` from each other and
    ``min_distance_to_own_m`` from the brand's existing branches. Their
    default is the five-minute walk (400 m, see :mod:`siteplanner.criteria`):
    no new site lies within another branch's five-minute walk.
    """

    #: Ten sites: a shortlist a planning committee can visit (a convention; change it).
    top_k: Whole1 = 10
    min_spacing_m: Metres0 = 400.0
    min_distance_to_own_m: Metres0 = 400.0
    #: ``top`` (score order with spacing), or a joint location model:
    #: ``coverage`` (MCLP), ``pmedian`` or ``capture`` (see selection/joint.py).
    method: Method = "top"
    #: ``exact`` (MILP), ``heuristic`` (greedy + swaps) or ``auto`` (exact up to 2,000 candidates).
    solver: Solver = "auto"
    #: Demand within a five-minute walk counts as covered (the radii's walk).
    coverage_minutes: Minutes = 5.0
    #: The solver's time budget: a run-time choice, not a modelling one.
    time_limit_s: Seconds = 60.0
    #: Demand one branch can serve under ``coverage`` / ``pmedian``; ``None``: no limit.
    capacity: Capacity | None = None

    def __post_init__(self) -> None:
        if self.capacity is not None and self.method not in CAPACITY_METHODS:
            raise Problem("capacity", f"{{key}} = {self.capacity:g} applies to the "
                                      f"{' and '.join(CAPACITY_METHODS)} methods, not "
                                      f"{self.method!r}; choose one of those or drop it "
                                      "(--set selection.capacity=none)")


@settings("network")
class NetworkSettings:
    """Walking on the street network.

    4.8 km/h (1.33 m/s) is the planning speed for adult pedestrians, within
    the comfortable walking speed of adults (1.27-1.46 m/s, Bohannon 1997).
    ``cutoff_min`` bounds every walk-time search: 15 minutes, three
    five-minute walks, covers the longest default catchment with room.
    Catchments are drawn at five- and ten-minute walks;
    ``transit_within_min`` is the walk within which stops are counted (the
    five-minute stop catchment of transit planning).
    """

    walk_speed_kmh: WalkSpeed = 4.8
    cutoff_min: Minutes = 15.0
    catchment_minutes: Annotated[tuple[Minutes, ...], Field(min_length=1)] = (5.0, 10.0)
    transit_within_min: Minutes = 5.0
    #: How demand reaches a branch: ``["walk"]``, ``["walk", "drive"]``...; None: by the
    #: density rule of :mod:`siteplanner.modes` (walk only in urban centres of >= 1,500
    #: residents per km², walk and drive below). Each mode's minutes use the same cutoffs.
    modes: Annotated[tuple[TravelMode, ...], Field(min_length=1)] | None = None
    #: Each mode's share of demand (summed to 1 over ``modes``); None: walk 0.094, drive
    #: 0.906, the NHTS 2001 split of daily trips (see :mod:`siteplanner.modes`).
    mode_share: dict[TravelMode, Weight] | None = None

    def __post_init__(self) -> None:
        if self.modes is not None and len(set(self.modes)) < len(self.modes):
            raise Problem("modes", f"{{key}} names a mode twice ({list(self.modes)}); name each once")
        mins = sorted(self.catchment_minutes)
        if mins[-1] > self.cutoff_min:
            raise Problem("catchment_minutes",
                          f"{{key}} {mins[-1]:g} exceeds network.cutoff_min {self.cutoff_min:g}; "
                          "raise the cutoff or shorten the catchment")
        object.__setattr__(self, "catchment_minutes", tuple(mins))


@settings("huff")
class HuffSettings:
    """The Huff market-share model.

    ``lam`` (``lambda`` in the study file) is the distance-decay exponent: 2
    is Huff's (1963) own estimate for shopping trips, and convenience trips
    on foot fit 1.5-2.5 in most later studies. Attractiveness is relative: a
    new branch equal to an existing one is 1.0, the neutral choice.
    ``observed`` is an optional CSV of visits per existing branch (lon, lat,
    visits) from which ``lam`` is fitted.
    """

    lam: Decay = 2.0
    attractiveness_own: Positive = 1.0
    attractiveness_competitor: Positive = 1.0
    attractiveness_new: Positive = 1.0
    observed: FilePath | None = None


@settings("demand")
class DemandSettings:
    """The people each cell holds (see :mod:`siteplanner.demand` and docs/demand.md).

    ``demand = residents_weight * residents + workers_weight * workers +
    foot_traffic_weight * measured passers-by``, in people per day. Every
    weight is 1 by default: each resident, worker and counted passer-by is one
    person who may use a branch. Residents come from ``raster`` (a GeoTIFF of
    people per pixel), else ``census`` (polygons with ``census_column``), else
    the OSM buildings.
    """

    residents_weight: Weight = 1.0
    workers_weight: Weight = 1.0
    foot_traffic_weight: Weight = 1.0
    census: FilePath | None = None
    census_column: Text | None = None
    raster: FilePath | None = None

    def __post_init__(self) -> None:
        for key in ("census", "raster"):
            p = getattr(self, key)
            if p is not None and not is_file(p):
                raise Problem(key, f"{{key}} {show(str(p))} not found; check the path")
        if self.census is not None and self.census_column is None:
            raise Problem("census_column", "{key} is missing: name the census file's column of "
                                           "residents, e.g. census_column = \"population\"")


@settings("model")
class ModelSettings:
    """How candidates are scored and how sure the ranking is.

    ``kind`` is ``weighted`` (the study's weights) or ``learned`` (a model
    fitted to the existing branches: their ``performance_column`` when the
    own-branch file has one, else where banks of any brand chose to be).
    ``stability_draws`` Monte Carlo draws of the weights (Dirichlet with
    ``stability_concentration`` around them), or bootstrap refits of the
    learned model, give each site's chance of staying in the top K: 100
    draws put a share's standard error at most 5 points; a concentration of
    50 moves a 0.2 weight by about ±0.06 (one standard deviation).
    """

    kind: ModelKind = "weighted"
    performance_column: Text = "performance"
    stability_draws: Whole0 = 100
    stability_concentration: Positive = 50.0
    clusters: Switch = True
    territories: Switch = True


@settings("floorplan")
class FloorplanSettings:
    """Floor plans for the top sites, drawn into the run's report.

    Every new branch is built to the brand standard. Its premises are, by
    ``premises``:

    - ``"outline"``: the study's ``outline`` (GeoJSON or WKT in local metres)
      with its ``entrances``, the same unit at every site; no plan is drawn
      without an outline;
    - ``"osm"``: each site's own OSM building footprint (a street-facing unit
      of the programme's size when the building is larger, the entrance on
      the street side); it needs building footprints in the study's data;
    - ``"auto"`` (the default): the outline when the study gives one, else
      the OSM footprint; with neither, the run says so and draws no plan.

    A site's peak-hour arrivals are ``arrivals_per_hour`` scaled by its
    expected demand relative to the mean of the planned sites. 60 an hour
    (one a minute) is an illustrative peak for a small branch; set the
    brand's own figure.
    """

    outline: FilePath | None = None
    premises: PremisesKind = "auto"
    entrances: tuple[Point2, ...] = ()
    sites: Whole1 = 3
    arrivals_per_hour: PerHour = 60.0
    standard: FilePath | None = None

    def __post_init__(self) -> None:
        for key in ("outline", "standard"):
            p = getattr(self, key)
            if p is not None and not is_file(p):
                raise Problem(key, f"{{key}} {show(str(p))} not found; check the path")
        if self.outline is not None and not self.entrances:
            raise Problem("entrances", "{key} is empty; give at least one [x, y] on the "
                                       "outline's wall, e.g. [[10.0, 0.0]]")
        if self.premises == "outline" and self.outline is None:
            raise Problem("outline", '{key} is missing: premises = "outline" plans the study\'s '
                                     'outline = "FILE"; give one, or premises = "auto" or "osm"')
        if self.entrances and self.outline is None:
            raise Problem("outline", '{key} is missing: the entrances need outline = "FILE" '
                                     "(GeoJSON or WKT in local metres)")


