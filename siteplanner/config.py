"""The study: one typed schema for the study file, ``--set`` and Python.

A study file is what a planner versions. Every setting has a documented
default that belongs to no city, so the smallest study is a brand and a data
source::

    [study]
    brand = ["Nordea"]
    osm = "helsinki.osm.pbf"

Relative paths are resolved against the study file's folder. In Python the
same study is ``Study(brand=("Nordea",), osm=Path("helsinki.osm.pbf"))``, and
``study.replace(...)`` / ``study.with_weights(transit=0.3)`` change it; every
one of these is validated by the same schema, with the same one-line messages
(``study.toml: selection.top_k = true: expected a whole number >= 1``).

The criteria's defaults live in the registry (:mod:`siteplanner.criteria`);
every other default is stated once, on its field below, with its reason.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import BeforeValidator, Field, Strict, TypeAdapter, ValidationError

from siteplanner import _overrides
from siteplanner._document import LAYER_KINDS, STUDY_KEYS, document_to_fields, origin_of, toml_key
from siteplanner._errors import ConfigError
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
    Seed,
    Switch,
    Text,
    WalkSpeed,
    Weight,
    Whole0,
    Whole1,
    is_file,
    one_line,
    settings,
    show,
    validation_problems,
)
from siteplanner.criteria import CRITERIA, Direction

__all__ = [
    "CAPACITY_METHODS",
    "CRITERIA",
    "LAYER_KINDS",
    "MODEL_KINDS",
    "SELECTION_METHODS",
    "SOLVERS",
    "CandidateSettings",
    "Criterion",
    "DemandSettings",
    "FloorplanSettings",
    "HuffSettings",
    "LayerFile",
    "ModelSettings",
    "NationalSettings",
    "NetworkSettings",
    "SelectionSettings",
    "Study",
    "StudyArea",
    "load_study",
    "parse_bbox",
]

SELECTION_METHODS = ("top", "coverage", "pmedian", "capture")
SOLVERS = ("auto", "exact", "heuristic")
#: Selection methods whose location models take a per-branch capacity.
CAPACITY_METHODS = ("coverage", "pmedian")
MODEL_KINDS = ("weighted", "learned")

Method = Annotated[Literal["top", "coverage", "pmedian", "capture"],
                   Expect(f"one of {', '.join(SELECTION_METHODS)}")]
Solver = Annotated[Literal["auto", "exact", "heuristic"], Expect(f"one of {', '.join(SOLVERS)}")]
ModelKind = Annotated[Literal["weighted", "learned"], Expect(f"one of {', '.join(MODEL_KINDS)}")]
CriterionName = Annotated[str, Expect(f"one of {', '.join(CRITERIA)}")]
DirectionField = Annotated[Direction, Expect("benefit or cost")]
EdgePolicy = Annotated[Literal["exclude", "keep"], Expect('"exclude" or "keep"')]
AdminLevel = Annotated[int, Strict(), Ge(1), Le(12), Expect("a whole number from 1 to 12 (OSM admin_level)")]


def _brands(v: Any) -> Any:
    return (v,) if isinstance(v, str) else v


Brands = Annotated[tuple[Text, ...], BeforeValidator(_brands),
                   Expect('brand names that are not blank, e.g. brand = ["Nordea"]')]
Names = Annotated[tuple[Text, ...], BeforeValidator(_brands),
                  Expect('a list of texts that are not blank, e.g. ["Q123", "Q456"]')]


def _crs(v: Any) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    if not isinstance(v, str) or not v.strip():
        msg = "not text"
        raise ValueError(msg)
    try:
        crs = CRS.from_user_input(v)
    except CRSError:
        msg = "unknown CRS"
        raise ValueError(msg) from None
    if not crs.is_projected:
        raise Problem("", f"{{key}} = {show(v)} is not projected: give a metric CRS such as a "
                          "UTM zone (EPSG:326NN)")
    return v


CRSName = Annotated[str, BeforeValidator(_crs),
                    Expect('a projected CRS pyproj knows, e.g. "EPSG:3067" or "EPSG:32635"')]
Box = Annotated[tuple[Coordinate, Coordinate, Coordinate, Coordinate],
                Expect("[west, south, east, north] in degrees")]
Point2 = Annotated[tuple[Coordinate, Coordinate], Expect("an [x, y] point in local metres")]


def parse_bbox(v: Any, what: str) -> tuple[float, float, float, float]:
    """Check a west, south, east, north box in degrees; ``what`` names it in errors."""
    try:
        w, s, e, n = (float(x) for x in v)
    except (TypeError, ValueError):
        msg = f"{what} = {show(v)}: expected west,south,east,north in degrees"
        raise ConfigError(msg) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        msg = (f"{what} = {show(v)} is not west,south,east,north in degrees "
               "(west < east, south < north, lon in [-180, 180], lat in [-90, 90])")
        raise ConfigError(msg)
    return (w, s, e, n)


@settings("criteria")
class Criterion:
    """One scoring criterion: its direction, weight and kernel radius in metres.

    Its defaults and meaning are in the registry: :attr:`spec`.
    """

    name: CriterionName
    direction: DirectionField
    weight: Weight
    radius_m: Metres

    def __post_init__(self) -> None:
        if self.name not in CRITERIA:
            raise Problem("", f"unknown criterion {show(self.name)}; the criteria are "
                              f"{', '.join(CRITERIA)}")

    @property
    def spec(self) -> Any:
        """The registry's :class:`~siteplanner.criteria.CriterionSpec` for this criterion."""
        return CRITERIA[self.name]

    @classmethod
    def default(cls, name: str) -> Criterion:
        """The criterion with the registry's default weight and radius."""
        if name not in CRITERIA:
            msg = f"unknown criterion {show(name)}; the criteria are {', '.join(CRITERIA)}"
            raise ConfigError(msg)
        s = CRITERIA[name]
        return cls(name=name, direction=s.direction, weight=s.weight, radius_m=s.radius_m)


def default_criteria() -> dict[str, Criterion]:
    """Every criterion at the registry's defaults, in table order."""
    return {n: Criterion.default(n) for n in CRITERIA}


@settings("layers")
class LayerFile:
    """A user file for one layer kind.

    ``lon_column``/``lat_column`` are used for CSV; ``count_column`` for foot
    traffic; ``name_column`` for labels on the map. For foot traffic as
    hourly series, ``path`` is a long table (counter, timestamp, count) and
    ``locations`` a CSV of counter, lon, lat.
    """

    #: One of :data:`LAYER_KINDS` in a study; other readers name their file here (``huff.observed``).
    kind: Text
    path: FilePath
    lon_column: Text = "lon"
    lat_column: Text = "lat"
    count_column: Text = "count"
    name_column: Text = "name"
    locations: FilePath | None = None
    counter_column: Text = "counter"
    time_column: Text = "timestamp"
    #: The layer to read from a file that holds several (a GeoPackage).
    layer: Text | None = None

    def __post_init__(self) -> None:
        if self.locations is not None and self.kind != "foot_traffic":
            raise Problem("locations", "{key} is only for foot_traffic given as hourly series")


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

    def __post_init__(self) -> None:
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

    Every new branch is built to the brand standard in the same kind of
    premises: ``outline`` (GeoJSON or WKT in local metres) with its
    ``entrances``. There is no default premises: without an outline no plan
    is drawn. A site's peak-hour arrivals are ``arrivals_per_hour`` scaled by
    its expected demand relative to the mean of the planned sites. 60 an hour
    (one a minute) is an illustrative peak for a small branch; set the
    brand's own figure.
    """

    outline: FilePath | None = None
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
        if self.entrances and self.outline is None:
            raise Problem("outline", '{key} is missing: the entrances need outline = "FILE" '
                                     "(GeoJSON or WKT in local metres)")


@settings("national")
class NationalSettings:
    """The places ``siteplanner national`` runs the study over, one area each.

    Each entry is an OSM file (``.osm.pbf``, ``.osm``, ``.osm.bz2``; relative
    to the study file), studied as a whole, or the name of an administrative
    boundary in the study's own extract. Empty: give ``--by admin_level=N``.
    See :mod:`siteplanner.national`.
    """

    places: tuple[Text, ...] = ()


@settings("", key_name=lambda parts: toml_key(parts))
class Study:
    """A validated study.

    Build it with :func:`load_study`, :meth:`Study.from_dict`,
    :meth:`Study.default` or directly: ``Study(brand=("Nordea",), osm=path)``.
    ``name`` may be ``None``: the pipeline then names the study after its
    area (:attr:`display_name` is the fallback until it does).
    """

    brand: Brands
    name: Text | None = None
    osm: FilePath | None = None
    place: Text | None = None
    bbox: Box | None = None
    crs: CRSName | None = None
    #: Every random step takes this seed, so reruns are identical.
    seed: Seed = 0
    candidates: CandidateSettings = Field(default_factory=CandidateSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    criteria: dict[str, Criterion] = Field(default_factory=default_criteria)
    layers: dict[str, LayerFile] = Field(default_factory=dict)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    huff: HuffSettings = Field(default_factory=HuffSettings)
    demand: DemandSettings = Field(default_factory=DemandSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    floorplan: FloorplanSettings = Field(default_factory=FloorplanSettings)
    national: NationalSettings = Field(default_factory=NationalSettings)
    ahp: dict[str, Any] | None = None
    source_file: Path | None = None
    #: The administrative boundary to study (``[study] area``); None: the data's own extent.
    area: StudyArea | None = None
    #: The brand's Wikidata ids and other spellings (see :mod:`siteplanner.brands`).
    brand_wikidata: Names = ()
    aliases: Names = ()

    def __post_init__(self) -> None:
        if not self.brand:
            raise Problem("brand", "{key} is missing or empty; set it to the brand name(s) of "
                                   'your own branches, e.g. brand = ["Nordea"] (or --brand NAME)')
        if self.bbox is not None:
            try:
                parse_bbox(self.bbox, "{key}")
            except ConfigError as e:
                raise Problem("bbox", str(e)) from None
        object.__setattr__(self, "brand", tuple(b.strip() for b in self.brand))
        object.__setattr__(self, "criteria", _complete_criteria(self.criteria))
        for kind, spec in self.layers.items():
            if kind not in LAYER_KINDS:
                raise Problem(f"layers.{kind}", f"unknown layer kind {show(kind)}; use one of "
                                                f"{', '.join(LAYER_KINDS)}")
            if spec.kind != kind:
                raise Problem(f"layers.{kind}.kind", f"{{key}} = {show(spec.kind)}: "
                                                     f"expected {show(kind)}, the table's name")

    @property
    def area_name(self) -> str | None:
        """The name of the study's boundary, when one is named."""
        return self.area.name if self.area is not None else None

    @property
    def admin_level(self) -> int | None:
        """The admin level of the study's boundary, when one is given."""
        return self.area.admin_level if self.area is not None else None

    @property
    def display_name(self) -> str:
        """``name``, else a name from the data source (file, place), for titles."""
        if self.name:
            return self.name
        if self.place:
            return self.place
        if self.osm is not None:
            return self.osm.name.split(".")[0].replace("_", " ").replace("-", " ")
        return "siteplanner study"

    @classmethod
    def default(cls, *, brand: str | tuple[str, ...] | list[str], osm: Path | str | None = None,
                place: str | None = None, bbox: tuple[float, float, float, float] | None = None,
                name: str | None = None) -> Study:
        """A study at the packaged defaults (no city's settings) for a brand and a data source."""
        return cls(brand=brand, osm=osm, place=place, bbox=bbox, name=name)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, base_dir: Path | None = None,
                  source_file: Path | None = None, where: str | None = None,
                  origins: Mapping[str, str] | None = None) -> Study:
        """Validate a parsed TOML document (or an equivalent dict).

        ``origins`` maps dotted keys set on the command line to the option
        that set them, so their errors name that option instead of the file.
        """
        label = where or (str(source_file) if source_file else "study")
        try:
            kwargs = document_to_fields(raw, base=base_dir or Path.cwd(), layer_keys=_LAYER_KEYS)
            kwargs["source_file"] = source_file
            return _ADAPTER.validate_python(kwargs)
        except ValidationError as e:
            problem = validation_problems(e, cls, key_name=toml_key)[0]
        except Problem as p:
            problem = p
        origin = origin_of(problem.key, origins or {}) or label
        msg = one_line(f"{origin}: {problem.text}")
        raise ConfigError(msg) from None

    def replace(self, **changes: Any) -> Study:
        """A copy with ``changes`` applied and validated; a section may be given as a dict.

        ``study.replace(selection={"top_k": 5}, seed=1)``
        """
        kw: dict[str, Any] = {}
        for key, value in changes.items():
            current = getattr(self, key, None)
            if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
                value = dataclasses.replace(current, **value)  # type: ignore[type-var]
            kw[key] = value
        return dataclasses.replace(self, **kw)

    def with_weights(self, **weights: float) -> Study:
        """A copy with new criterion weights, e.g. ``with_weights(transit=0.3)`` (validated).

        Weights set this way replace any AHP judgements of the study.
        """
        criteria = dict(self.criteria)
        for name, w in weights.items():
            if name not in criteria:
                msg = (f"with_weights: unknown criterion {show(name)}; the criteria are "
                       f"{', '.join(CRITERIA)}")
                raise ConfigError(msg)
            criteria[name] = dataclasses.replace(criteria[name], weight=w)
        return self.replace(criteria=criteria, ahp=None)

    def with_overrides(self, *, sets: list[str] | None = None, brand: list[str] | None = None,
                       top_k: int | None = None, osm: Path | None = None,
                       place: str | None = None, bbox: str | None = None,
                       layers: list[str] | None = None, select: str | None = None,
                       solver: str | None = None, model: str | None = None,
                       area_name: str | None = None) -> Study:
        """Apply command-line overrides (``--set KEY=VALUE`` and the options), validated as the file is."""
        doc = self.to_document()
        origins = _overrides.apply(
            doc, sets=sets or [], brand=brand, top_k=top_k, osm=osm, place=place, bbox=bbox,
            layers=layers or [], select=select, solver=solver, model=model, text_key=_takes_text)
        if self.ahp is not None and any(k.startswith("criteria.") and k.endswith(".weight")
                                        for k in origins):
            doc.pop("ahp", None)
        if area_name is not None:
            doc["study"]["area"] = {**doc["study"].get("area", {}), "name": area_name}
            origins = {**origins, "study.area.name": "--area-name"}
        return Study.from_dict(doc, base_dir=Path.cwd(), source_file=self.source_file,
                               origins=origins)

    def to_dict(self) -> dict[str, Any]:
        """The resolved study as plain data (for run.json)."""
        return _plain(dataclasses.asdict(self))  # type: ignore[no-any-return]

    def to_document(self) -> dict[str, Any]:
        """The study as a TOML document (sections and keys as the study file writes them)."""
        d = self.to_dict()
        doc: dict[str, Any] = {"study": {k: d[k] for k in STUDY_KEYS if d[k] not in (None, [])}}
        if "area" in doc["study"]:
            doc["study"]["area"] = {k: v for k, v in doc["study"]["area"].items() if v is not None}
        for sec in ("candidates", "selection", "network", "demand", "model", "floorplan", "national"):
            doc[sec] = {k: v for k, v in d[sec].items() if v is not None and v != []}
        huff = {k: v for k, v in d["huff"].items() if v is not None}
        doc["huff"] = {("lambda" if k == "lam" else k): v for k, v in huff.items()}
        doc["criteria"] = {n: {"weight": c["weight"], "radius_m": c["radius_m"]}
                           for n, c in d["criteria"].items()}
        doc["layers"] = {k: {f: v for f, v in spec.items() if v is not None and f != "kind"}
                         for k, spec in d["layers"].items()}
        if self.ahp is not None:
            doc["ahp"] = copy.deepcopy(self.ahp)
        return doc


_ADAPTER: TypeAdapter[Study] = TypeAdapter(Study)
_LAYER_KEYS = tuple(f.name for f in dataclasses.fields(LayerFile) if f.name != "kind")


def _complete_criteria(given: Mapping[str, Criterion]) -> dict[str, Criterion]:
    """Every registry criterion in table order: the given ones, defaults for the rest."""
    for key, c in given.items():
        if key != c.name:
            raise Problem(f"criteria.{key}", f"{{key}} holds the criterion {show(c.name)}; "
                                             "key each criterion by its own name")
    out = {n: given.get(n) or Criterion.default(n) for n in CRITERIA}
    total = sum(c.weight for c in out.values())
    if not math.isfinite(total) or total <= 0:
        what = "every criterion weight is 0" if total == 0 else f"the weights sum to {total:g}"
        raise Problem("criteria", f"{{key}}: {what}; give at least one criterion a weight > 0 and keep "
                                  "them small numbers (they are shares of their sum)")
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _takes_text(parts: tuple[str, ...]) -> bool:
    """Whether the setting at dotted ``parts`` is text or a path (``--set`` then keeps VALUE as typed)."""
    from siteplanner._schema import expectation

    path: tuple[str, ...] = parts[1:] if parts[:1] == ("study",) else parts
    what = expectation(Study, path) or ""
    return what.startswith(("text", "printable text", "a file path", "a projected CRS"))


def load_study(path: str | Path | None = None, **fields: Any) -> Study:
    """Read and validate a study TOML file; with no file, :meth:`Study.default` of ``fields``.

    A UTF-8 byte-order mark at the start of the file is accepted.
    """
    if path is None:
        try:
            return Study.default(**fields)
        except TypeError:
            msg = ("no study file and no brand: give a study file or the brand of your own "
                   "branches (--brand NAME)")
            raise ConfigError(msg) from None
    p = Path(path)
    if not is_file(p):
        msg = (f"{p}: study file not found; give the path to a .toml study "
               "(see data/helsinki/study.toml)")
        raise ConfigError(msg)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        msg = one_line(f"{p}: not valid TOML ({e}); fix the syntax at that line")
        raise ConfigError(msg) from None
    except RecursionError:
        msg = f"{p}: not valid TOML (nested too deeply); flatten its arrays and tables"
        raise ConfigError(msg) from None
    except OSError as e:
        msg = f"{p}: cannot read the study file ({e.strerror}); check its permissions"
        raise ConfigError(msg) from None
    return Study.from_dict(raw, base_dir=p.parent.resolve(), source_file=p)
