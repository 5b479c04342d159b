"""The study: typed, validated settings loaded from a TOML file.

A study file is what a planner versions. Every setting has a documented
default, so the smallest study is a brand and a data source::

    [study]
    name = "Helsinki city centre"
    brand = ["Nordea"]
    osm = "helsinki.osm.pbf"

Relative paths are resolved against the study file's folder.
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from siteplanner._errors import ConfigError, InputError

__all__ = [
    "CRITERIA",
    "LAYER_KINDS",
    "CandidateSettings",
    "Criterion",
    "EconomicsSettings",
    "FloorplanSettings",
    "HuffSettings",
    "LayerFile",
    "ModelSettings",
    "NetworkSettings",
    "PolicySettings",
    "SelectionSettings",
    "Study",
    "load_study",
    "parse_bbox",
]

Direction = Literal["benefit", "cost"]
_T = TypeVar("_T")

#: The stable criterion names, their direction and default weight and radius.
#: Radii are walking-scale distances for a city centre: 400 m is about five
#: minutes on foot, the distance most pedestrians accept for an errand.
CRITERIA: dict[str, tuple[Direction, float, float]] = {
    "foot_traffic": ("benefit", 0.35, 250.0),
    "transit": ("benefit", 0.20, 400.0),
    "commercial": ("benefit", 0.20, 250.0),
    "competition": ("cost", 0.15, 400.0),
    "cannibalization": ("cost", 0.10, 600.0),
}

#: Layer kinds a user file may provide (``--layer KIND=FILE``).
LAYER_KINDS = (
    "area",
    "competitors",
    "own_branches",
    "transit",
    "pois",
    "foot_traffic",
    "candidates",
)


@dataclass(frozen=True)
class Criterion:
    """One scoring criterion: its direction, weight and kernel radius in metres."""

    name: str
    direction: Direction
    weight: float
    radius_m: float


@dataclass(frozen=True)
class LayerFile:
    """A user file for one layer kind.

    ``lon_column``/``lat_column`` are used for CSV; ``count_column`` for foot
    traffic; ``name_column`` for labels on the map.
    """

    kind: str
    path: Path
    lon_column: str = "lon"
    lat_column: str = "lat"
    count_column: str = "count"
    name_column: str = "name"
    #: For foot traffic as hourly series: ``path`` is a long table (counter,
    #: timestamp, count) and ``locations`` a CSV of counter, lon, lat.
    locations: Path | None = None
    counter_column: str = "counter"
    time_column: str = "timestamp"


@dataclass(frozen=True)
class CandidateSettings:
    """How candidate sites are generated when no candidate file is given.

    H3 resolution 11 cells have ~25 m edges (about 2,150 m²): a block face in
    a city centre, fine enough to tell one side of a square from the other.
    """

    h3_resolution: int = 11


@dataclass(frozen=True)
class SelectionSettings:
    """The rule that turns a ranking into sites: top K with spacing.

    The two spacings are the operating rule "avoid over-competition" made
    explicit: new sites keep ``min_spacing_m`` from each other and
    ``min_distance_to_own_m`` from the brand's existing branches.
    """

    top_k: int = 10
    min_spacing_m: float = 200.0
    min_distance_to_own_m: float = 200.0
    #: ``top`` (score order with spacing), or a joint location model:
    #: ``coverage`` (MCLP), ``pmedian`` or ``capture`` (see selection/joint.py).
    method: str = "top"
    #: ``exact`` (MILP), ``heuristic`` (greedy + swaps) or ``auto`` (exact up to 2,000 candidates).
    solver: str = "auto"
    coverage_minutes: float = 5.0
    time_limit_s: float = 60.0
    #: Demand (in the units of the demand weights) one branch can serve, applied
    #: to every new site and existing own branch under ``coverage`` / ``pmedian``;
    #: ``None``: no limit.
    capacity: float | None = None


@dataclass(frozen=True)
class NetworkSettings:
    """Walking on the street network.

    4.8 km/h is the usual planning speed for adult pedestrians; ``cutoff_min``
    bounds every walk-time search; catchments are drawn at
    ``catchment_minutes``; ``transit_within_min`` is the walk within which
    stops are counted.
    """

    walk_speed_kmh: float = 4.8
    cutoff_min: float = 15.0
    catchment_minutes: tuple[float, ...] = (5.0, 10.0)
    transit_within_min: float = 5.0


@dataclass(frozen=True)
class HuffSettings:
    """The Huff market-share model.

    ``lam`` is the distance-decay exponent: 2 is Huff's (1963) own estimate
    for shopping trips, and convenience trips on foot fit 1.5-2.5 in most
    later studies. Attractiveness is relative (a new flagship branch equal to
    an existing branch is 1.0). ``observed`` is an optional CSV of visits per
    existing branch (lon, lat, visits) from which ``lam`` is fitted.
    """

    lam: float = 2.0
    attractiveness_own: float = 1.0
    attractiveness_competitor: float = 1.0
    attractiveness_new: float = 1.0
    observed: Path | None = None


@dataclass(frozen=True)
class ModelSettings:
    """How candidates are scored and how sure the ranking is.

    ``kind`` is ``weighted`` (the study's weights) or ``learned`` (a model
    fitted to the existing branches: their ``performance_column`` when the
    own-branch file has one, else where banks of any brand chose to be).
    ``stability_draws`` Monte Carlo draws of the weights (Dirichlet with
    ``stability_concentration`` around them), or bootstrap refits of the
    learned model, give each site's chance of staying in the top K.
    """

    kind: str = "weighted"
    performance_column: str = "performance"
    stability_draws: int = 100
    stability_concentration: float = 50.0
    clusters: bool = True
    territories: bool = True


@dataclass(frozen=True)
class FloorplanSettings:
    """Floor plans for the top sites, drawn into the run's report.

    Every new branch is built to the brand standard in the same kind of
    premises: ``outline`` (GeoJSON or WKT in local metres) with its
    ``entrances``. A site's peak-hour arrivals are ``arrivals_per_hour``
    scaled by its expected demand relative to the mean of the planned sites
    (the Huff model's ``expected_demand``), so a busier site gets more
    counters and seats.
    """

    outline: Path | None = None
    entrances: tuple[tuple[float, float], ...] = ()
    sites: int = 3
    arrivals_per_hour: float = 60.0
    standard: Path | None = None


@dataclass(frozen=True)
class EconomicsSettings:
    """The business case of a site: every default is a published figure (docs/economics.md).

    Money is in ``currency`` (the sources below are in euros). Sources:

    - ``revenue_per_customer_year`` 789: Nordea Year-end Report 2007, income
      EUR 7,886m, and Annual Report 2007, about 10 million customers.
    - ``customer_share`` 0.76: World Bank Global Findex 2021, 76 % of adults
      worldwide hold an account; the share of the people a site draws each day
      (``expected_demand``, visits per day) who become its customers.
    - ``branch_visits_per_customer_year`` 12: Gallup (2014, via Statista),
      the average US bank customer visited a branch 1.0 times a month.
    - ``rent_per_m2_year`` 1,104: Cushman & Wakefield, Main Streets Across the
      World 2025, prime rent on Warsaw's Nowy Świat (35th of 141 streets).
    - ``fitout_per_m2`` 2,663: Turner & Townsend (2024), average high-spec
      fit-out in Dublin, EUR 2,663/m².
    - ``equipment_per_atm`` 59,100: USD 48,000 per machine + 16,000 installation
      (a published bank-management case), at the ECB 2024 average USD 1.0824/EUR.
    - ``equipment_per_counter`` 16,200: a teller cash recycler per counter,
      USD 15,000-20,000 (ICBA Independent Banker, Oct. 2015), midpoint at 1.0824.
    - ``salary_per_fte_year`` 100,900: Eurostat labour cost in financial and
      insurance activities, euro area 2012, EUR 48.5 per hour, x 40 h x 52 weeks.
    - ``other_opex_per_m2_year`` 76: Assure Index 2024 (offices), median
      service charge GBP 6.00/sq ft, at the ECB 2024 average GBP 0.8466/EUR.
    - ``horizon_years`` 10: the 10-year useful life of branch equipment in the
      same bank-management case.
    - ``discount_rate`` 0.10: EBA Risk Assessment Reports (2013, 2015), most
      EU banks put their cost of equity at 10-12 %.
    - ``opening_hours_per_week`` and ``fte_hours_per_week`` 40: the ILO
      Forty-Hour Week Convention (C047, 1935).
    - ``shrinkage`` 0.24: Knowlagent Contact Center Shrinkage Survey 2010, the
      average share of paid time not spent serving customers.

    ``districts`` is an optional polygon layer with an asking rent per m² and
    year in ``rent_column``; a candidate premises layer with that column sets
    the rent per candidate (it wins over the district). ``budget`` caps the
    total capex of ``--select npv``; ``min_npv`` is the hurdle a site must reach:
    when set, sites below it are dropped from any selection (``None``: every
    site is kept and its money shown; ``--select npv`` always uses a hurdle, 0
    when unset).
    """

    currency: str = "EUR"
    revenue_per_customer_year: float = 789.0
    customer_share: float = 0.76
    branch_visits_per_customer_year: float = 12.0
    rent_per_m2_year: float = 1104.0
    fitout_per_m2: float = 2663.0
    equipment_per_atm: float = 59100.0
    equipment_per_counter: float = 16200.0
    salary_per_fte_year: float = 100900.0
    other_opex_per_m2_year: float = 76.0
    horizon_years: int = 10
    discount_rate: float = 0.10
    opening_hours_per_week: float = 40.0
    fte_hours_per_week: float = 40.0
    shrinkage: float = 0.24
    districts: Path | None = None
    rent_column: str = "asking_rent"
    budget: float | None = None
    min_npv: float | None = None


@dataclass(frozen=True)
class PolicySettings:
    """The bank's siting rules as thresholds, checked for every selected site.

    ``transit_max_walk_min``: a stop within this walk (5 min, the study's own
    transit reach by default); ``foot_traffic_percentile`` and
    ``commercial_percentile``: at or above this percentile of the study's
    candidates (50: the median candidate); ``competitor_min_m``: no competitor
    branch closer (100 m, about a block); the own-branch spacing is the
    study's ``selection.min_distance_to_own_m``; ``max_payback_years``: optional.
    ``mode`` ``report`` lists the checks; ``strict`` drops a failing site.
    """

    mode: str = "report"
    transit_max_walk_min: float = 5.0
    foot_traffic_percentile: float = 50.0
    commercial_percentile: float = 50.0
    competitor_min_m: float = 100.0
    max_payback_years: float | None = None


@dataclass(frozen=True)
class Study:
    """A validated study. Build it with :func:`load_study` or :meth:`Study.from_dict`."""

    name: str
    brand: tuple[str, ...]
    osm: Path | None = None
    place: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    crs: str | None = None
    seed: int = 0
    candidates: CandidateSettings = field(default_factory=CandidateSettings)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    criteria: dict[str, Criterion] = field(default_factory=dict)
    layers: dict[str, LayerFile] = field(default_factory=dict)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    huff: HuffSettings = field(default_factory=HuffSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    floorplan: FloorplanSettings = field(default_factory=FloorplanSettings)
    economics: EconomicsSettings = field(default_factory=EconomicsSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    ahp: dict[str, Any] | None = None
    source_file: Path | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base_dir: Path | None = None,
                  source_file: Path | None = None) -> Study:
        """Validate a parsed TOML document (or an equivalent dict)."""
        where = str(source_file) if source_file else "study"
        raw = copy.deepcopy(raw)
        _only_keys(raw, {"study", "candidates", "selection", "criteria", "layers", "network",
                         "huff", "model", "ahp", "floorplan", "economics", "policy"}, where, "")
        s = raw.get("study", {})
        _only_keys(s, {"name", "brand", "osm", "place", "bbox", "crs", "seed"}, where, "study.")
        brand = s.get("brand")
        if isinstance(brand, str):
            brand = [brand]
        if not brand or not all(isinstance(b, str) and b.strip() for b in brand):
            msg = (f"{where}: study.brand is missing or empty; set it to the brand name(s) "
                   'of your own branches, e.g. brand = ["Nordea"]')
            raise ConfigError(msg)
        base = base_dir or Path.cwd()
        osm = s.get("osm")
        bbox = s.get("bbox")
        if bbox is not None:
            bbox = parse_bbox(bbox, f"{where}: study.bbox")
        cand = raw.get("candidates", {})
        _only_keys(cand, {"h3_resolution"}, where, "candidates.")
        res = cand.get("h3_resolution", CandidateSettings.h3_resolution)
        if not isinstance(res, int) or not 5 <= res <= 13:
            msg = (f"{where}: candidates.h3_resolution = {res!r} is out of range; "
                   "use an integer from 5 (city region) to 13 (a shop front); 11 suits a centre")
            raise ConfigError(msg)
        sel = raw.get("selection", {})
        _only_keys(sel, {"top_k", "min_spacing_m", "min_distance_to_own_m", "method", "solver",
                         "coverage_minutes", "time_limit_s", "capacity"}, where, "selection.")
        top_k = sel.get("top_k", SelectionSettings.top_k)
        if not isinstance(top_k, int) or top_k < 1:
            msg = f"{where}: selection.top_k = {top_k!r}; use a whole number of sites >= 1"
            raise ConfigError(msg)
        spacing = _non_negative(sel.get("min_spacing_m", SelectionSettings.min_spacing_m),
                                f"{where}: selection.min_spacing_m")
        own = _non_negative(sel.get("min_distance_to_own_m",
                                    SelectionSettings.min_distance_to_own_m),
                            f"{where}: selection.min_distance_to_own_m")
        criteria = _criteria(raw.get("criteria", {}), where)
        ahp = raw.get("ahp")
        if ahp is not None:
            criteria = _ahp_weights(ahp, criteria, where)
        layers = {}
        for kind, spec in raw.get("layers", {}).items():
            layers[kind] = _layer(kind, spec, base, where)
        return cls(
            name=str(s.get("name", "siteplanner study")),
            brand=tuple(b.strip() for b in brand),
            osm=(base / osm) if osm else None,
            place=s.get("place"),
            bbox=bbox,
            crs=s.get("crs"),
            seed=int(s.get("seed", 0)),
            candidates=CandidateSettings(h3_resolution=res),
            selection=_selection_rule(SelectionSettings(
                top_k=top_k, min_spacing_m=spacing, min_distance_to_own_m=own,
                method=str(sel.get("method", "top")), solver=str(sel.get("solver", "auto")),
                coverage_minutes=_positive(sel.get("coverage_minutes", 5.0),
                                           f"{where}: selection.coverage_minutes"),
                time_limit_s=_positive(sel.get("time_limit_s", 60.0),
                                       f"{where}: selection.time_limit_s"),
                capacity=_capacity(sel.get("capacity"), f"{where}: selection.capacity")), where),
            criteria=criteria,
            layers=layers,
            network=_network(raw.get("network", {}), where),
            huff=_huff(raw.get("huff", {}), base, where),
            model=_model(raw.get("model", {}), where),
            floorplan=_floorplan(raw.get("floorplan", {}), base, where),
            economics=_economics(raw.get("economics", {}), base, where),
            policy=_policy(raw.get("policy", {}), where),
            ahp=ahp,
            source_file=source_file,
        )

    def with_overrides(self, *, sets: list[str] | None = None, brand: list[str] | None = None,
                       top_k: int | None = None, osm: Path | None = None,
                       place: str | None = None, bbox: str | None = None,
                       layers: list[str] | None = None, select: str | None = None,
                       solver: str | None = None, model: str | None = None,
                       budget: str | None = None, min_npv: str | None = None,
                       policy: str | None = None) -> Study:
        """Apply command-line overrides; ``sets`` are ``criteria.NAME.weight=W`` strings.

        ``budget`` and ``min_npv`` are the texts of ``--budget`` and
        ``--min-npv`` (money in the study's currency); ``policy`` is ``--policy``.
        """
        criteria = dict(self.criteria)
        selection = self.selection
        network, huff = self.network, self.huff
        for item in sets or []:
            section = item.partition(".")[0]
            if section in ("network", "huff"):
                network, huff = _apply_section_set(item, network, huff)
            else:
                criteria, selection = _apply_set(item, criteria, selection)
        new_layers = dict(self.layers)
        for item in layers or []:
            kind, sep, path = item.partition("=")
            if not sep or not path:
                msg = f"--layer {item!r}: write it as KIND=FILE, e.g. --layer competitors=banks.csv"
                raise ConfigError(msg)
            new_layers[kind.strip()] = _layer(kind.strip(), {"path": path}, Path.cwd(), "--layer")
        if top_k is not None:
            if top_k < 1:
                msg = f"--top {top_k}: use a whole number of sites >= 1"
                raise ConfigError(msg)
            selection = _replace(selection, top_k=top_k)
        if select is not None:
            selection = _selection_rule(_replace(selection, method=select), "--select")
        if solver is not None:
            selection = _selection_rule(_replace(selection, solver=solver), "--solver")
        if selection.capacity is not None:
            selection = _selection_rule(selection, "command line")
        kw: dict[str, Any] = {"criteria": criteria, "selection": selection, "layers": new_layers,
                              "network": network, "huff": huff,
                              "economics": _economics_overrides(self.economics, budget, min_npv),
                              "policy": _policy_override(self.policy, policy)}
        if model is not None:
            if model not in MODEL_KINDS:
                msg = f"--model {model!r}: use one of {', '.join(MODEL_KINDS)}"
                raise ConfigError(msg)
            kw["model"] = _replace(self.model, kind=model)
        if brand:
            kw["brand"] = tuple(brand)
        if osm is not None:
            kw.update(osm=osm, place=None, bbox=None)
        if place is not None:
            kw.update(place=place, osm=None, bbox=None)
        if bbox is not None:
            kw.update(bbox=parse_bbox(bbox.split(","), "--bbox"), osm=None, place=None)
        return _replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        """The resolved study as plain data (for run.json)."""
        d = asdict(self)

        def plain(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [plain(x) for x in v]
            return v

        return plain(d)  # type: ignore[no-any-return]


def load_study(path: str | Path) -> Study:
    """Read and validate a study TOML file."""
    p = Path(path)
    if not p.is_file():
        msg = f"{p}: study file not found; give the path to a .toml study (see data/helsinki/study.toml)"
        raise ConfigError(msg)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        msg = f"{p}: not valid TOML ({e}); fix the syntax at that line"
        raise ConfigError(msg) from None
    return Study.from_dict(raw, base_dir=p.parent.resolve(), source_file=p)


def _replace(obj: _T, **kw: Any) -> _T:
    from dataclasses import replace

    return replace(obj, **kw)  # type: ignore[type-var]


def _only_keys(d: Any, allowed: set[str], where: str, prefix: str) -> None:
    if not isinstance(d, dict):
        msg = f"{where}: {prefix.rstrip('.') or 'document'} must be a table"
        raise ConfigError(msg)
    unknown = sorted(set(d) - allowed)
    if unknown:
        msg = (f"{where}: unknown setting {prefix}{unknown[0]}; "
               f"known settings here are {', '.join(prefix + k for k in sorted(allowed))}")
        raise ConfigError(msg)


SELECTION_METHODS = ("top", "coverage", "pmedian", "capture", "npv")
SOLVERS = ("auto", "exact", "heuristic")
#: Selection methods whose location models take a per-branch capacity.
CAPACITY_METHODS = ("coverage", "pmedian")


def _selection_rule(sel: SelectionSettings, where: str) -> SelectionSettings:
    if sel.method not in SELECTION_METHODS:
        msg = (f"{where}: selection method {sel.method!r} is unknown; "
               f"use one of {', '.join(SELECTION_METHODS)}")
        raise ConfigError(msg)
    if sel.solver not in SOLVERS:
        msg = f"{where}: selection solver {sel.solver!r} is unknown; use one of {', '.join(SOLVERS)}"
        raise ConfigError(msg)
    if sel.capacity is not None and sel.method not in CAPACITY_METHODS:
        msg = (f"{where}: selection.capacity = {sel.capacity:g} applies to the "
               f"{' and '.join(CAPACITY_METHODS)} methods, not {sel.method!r}; choose one of "
               "those or drop it (--set selection.capacity=none)")
        raise ConfigError(msg)
    return sel


def _capacity(v: Any, what: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        msg = (f"{what} = {v!r}; use a number > 0: the demand one branch can serve, "
               "in the units of the demand weights")
        raise ConfigError(msg)
    return float(v)


def _non_negative(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        msg = f"{what} = {v!r}; use a number >= 0"
        raise ConfigError(msg)
    return float(v)


def parse_bbox(v: Any, what: str) -> tuple[float, float, float, float]:
    """Check a west, south, east, north box in degrees; ``what`` names it in errors."""
    try:
        w, s, e, n = (float(x) for x in v)
    except (TypeError, ValueError):
        msg = f"{what} = {v!r}; give west,south,east,north in degrees"
        raise ConfigError(msg) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        msg = (f"{what} = {v!r} is not west,south,east,north in degrees "
               "(west < east, south < north, lon in [-180, 180], lat in [-90, 90])")
        raise ConfigError(msg)
    return (w, s, e, n)


def _floorplan(raw: Any, base: Path, where: str) -> FloorplanSettings:
    _only_keys(raw, {"outline", "entrances", "sites", "arrivals_per_hour", "standard"},
               where, "floorplan.")
    if not raw:
        return FloorplanSettings()
    if "outline" not in raw:
        msg = f"{where}: floorplan needs outline = \"FILE\" (GeoJSON or WKT in local metres)"
        raise ConfigError(msg)
    outline = base / str(raw["outline"])
    if not outline.is_file():
        msg = f"{where}: floorplan.outline {outline} not found; check the path"
        raise ConfigError(msg)
    ents = raw.get("entrances")
    try:
        entrances = tuple((float(x), float(y)) for x, y in ents)
    except (TypeError, ValueError):
        msg = (f"{where}: floorplan.entrances = {ents!r}; give a list of [x, y] points on the "
               "outline's wall, e.g. [[10.0, 0.0]]")
        raise ConfigError(msg) from None
    if not entrances:
        msg = f"{where}: floorplan.entrances is empty; give at least one [x, y] on the wall"
        raise ConfigError(msg)
    _check_premises(outline, entrances, where)
    sites = raw.get("sites", 3)
    if isinstance(sites, bool) or not isinstance(sites, int) or sites < 1:
        msg = f"{where}: floorplan.sites = {sites!r}; use a whole number of top sites >= 1"
        raise ConfigError(msg)
    standard = raw.get("standard")
    if standard is not None and not (base / str(standard)).is_file():
        msg = f"{where}: floorplan.standard {base / str(standard)} not found; check the path"
        raise ConfigError(msg)
    return FloorplanSettings(
        outline=outline, entrances=entrances, sites=sites,
        arrivals_per_hour=_positive(raw.get("arrivals_per_hour", 60.0),
                                    f"{where}: floorplan.arrivals_per_hour"),
        standard=(base / str(standard)) if standard is not None else None)


def _check_premises(outline: Path, entrances: tuple[tuple[float, float], ...], where: str) -> None:
    """Fail at load time, not after the ranking, when the premises cannot be planned."""
    from shapely.geometry import Point

    from siteplanner.floorplan.export import read_outline
    from siteplanner.floorplan.plan import validate_entrances, validate_outline

    try:
        poly = validate_outline(read_outline(outline), source=str(outline))
        validate_entrances([Point(x, y) for x, y in entrances], poly)
    except InputError as e:
        msg = f"{where}: floorplan: {e}"
        raise ConfigError(msg) from None


MODEL_KINDS = ("weighted", "learned")


def _model(raw: Any, where: str) -> ModelSettings:
    _only_keys(raw, {"kind", "performance_column", "stability_draws", "stability_concentration",
                     "clusters", "territories"}, where, "model.")
    d = ModelSettings()
    kind = str(raw.get("kind", d.kind))
    if kind not in MODEL_KINDS:
        msg = f"{where}: model.kind = {kind!r}; use one of {', '.join(MODEL_KINDS)}"
        raise ConfigError(msg)
    draws = raw.get("stability_draws", d.stability_draws)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0:
        msg = f"{where}: model.stability_draws = {draws!r}; use a whole number >= 0 (0 skips it)"
        raise ConfigError(msg)
    return ModelSettings(
        kind=kind, performance_column=str(raw.get("performance_column", d.performance_column)),
        stability_draws=draws,
        stability_concentration=_positive(raw.get("stability_concentration",
                                                  d.stability_concentration),
                                          f"{where}: model.stability_concentration"),
        clusters=bool(raw.get("clusters", d.clusters)),
        territories=bool(raw.get("territories", d.territories)))


def _ahp_weights(ahp: Any, criteria: dict[str, Criterion], where: str) -> dict[str, Criterion]:
    """Replace the criteria's weights by those of the AHP judgements (validated there)."""
    from siteplanner.ahp import weights_from_judgements

    if not isinstance(ahp, dict):
        msg = f"{where}: ahp must be a table of judgements such as foot_traffic.transit = 3"
        raise ConfigError(msg)
    result = weights_from_judgements(ahp, list(CRITERIA), where=f"{where}: ahp")
    return {n: Criterion(n, c.direction, float(result.weights[n]), c.radius_m)
            for n, c in criteria.items()}


def _network(raw: Any, where: str) -> NetworkSettings:
    _only_keys(raw, {"walk_speed_kmh", "cutoff_min", "catchment_minutes", "transit_within_min"},
               where, "network.")
    d = NetworkSettings()
    speed = _positive(raw.get("walk_speed_kmh", d.walk_speed_kmh), f"{where}: network.walk_speed_kmh")
    if speed > 20:
        msg = f"{where}: network.walk_speed_kmh = {speed} is not a walking speed; use about 3-6 km/h"
        raise ConfigError(msg)
    cutoff = _positive(raw.get("cutoff_min", d.cutoff_min), f"{where}: network.cutoff_min")
    minutes = raw.get("catchment_minutes", list(d.catchment_minutes))
    if not isinstance(minutes, list) or not minutes:
        msg = f"{where}: network.catchment_minutes must be a list of minutes, e.g. [5, 10]"
        raise ConfigError(msg)
    mins = tuple(_positive(m, f"{where}: network.catchment_minutes") for m in minutes)
    if max(mins) > cutoff:
        msg = (f"{where}: network.catchment_minutes {max(mins):g} exceeds network.cutoff_min "
               f"{cutoff:g}; raise the cutoff or shorten the catchment")
        raise ConfigError(msg)
    within = _positive(raw.get("transit_within_min", d.transit_within_min),
                       f"{where}: network.transit_within_min")
    return NetworkSettings(speed, cutoff, tuple(sorted(mins)), within)


def _huff(raw: Any, base: Path, where: str) -> HuffSettings:
    _only_keys(raw, {"lambda", "attractiveness_own", "attractiveness_competitor",
                     "attractiveness_new", "observed"}, where, "huff.")
    d = HuffSettings()
    lam = raw.get("lambda", d.lam)
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not 0 < lam <= 5:
        msg = (f"{where}: huff.lambda = {lam!r} is outside (0, 5]; distance decay for walking "
               "trips is usually 1.5-2.5")
        raise ConfigError(msg)
    att = {k: _positive(raw.get(k, getattr(d, k)), f"{where}: huff.{k}")
           for k in ("attractiveness_own", "attractiveness_competitor", "attractiveness_new")}
    observed = raw.get("observed")
    return HuffSettings(float(lam), observed=(base / observed) if observed else None, **att)


def _criteria(raw: Any, where: str) -> dict[str, Criterion]:
    if not isinstance(raw, dict):
        msg = f"{where}: criteria must be a table of [criteria.NAME] sections"
        raise ConfigError(msg)
    out: dict[str, Criterion] = {}
    for name, (direction, weight, radius) in CRITERIA.items():
        spec = raw.get(name, {})
        _only_keys(spec, {"weight", "radius_m"}, where, f"criteria.{name}.")
        out[name] = Criterion(
            name, direction,
            _non_negative(spec.get("weight", weight), f"{where}: criteria.{name}.weight"),
            _positive(spec.get("radius_m", radius), f"{where}: criteria.{name}.radius_m"),
        )
    unknown = sorted(set(raw) - set(CRITERIA))
    if unknown:
        msg = (f"{where}: unknown criterion {unknown[0]!r}; "
               f"the criteria are {', '.join(CRITERIA)}")
        raise ConfigError(msg)
    _check_weights(out, where)
    return out


def _positive(v: Any, what: str) -> float:
    x = _non_negative(v, what)
    if x == 0:
        msg = f"{what} = 0; use a radius > 0 metres"
        raise ConfigError(msg)
    return x


def _check_weights(criteria: dict[str, Criterion], where: str) -> None:
    if sum(c.weight for c in criteria.values()) <= 0:
        msg = f"{where}: every criterion weight is 0; give at least one criterion a weight > 0"
        raise ConfigError(msg)


def _apply_section_set(item: str, network: NetworkSettings,
                       huff: HuffSettings) -> tuple[NetworkSettings, HuffSettings]:
    key, sep, value = item.partition("=")
    section, _, name = key.strip().partition(".")
    if not sep or not name:
        msg = f"--set {item!r}: write it as {section}.FIELD=VALUE"
        raise ConfigError(msg)
    parsed: Any
    try:
        parsed = [float(v) for v in value.split(",")] if name == "catchment_minutes" else float(value)
    except ValueError:
        msg = f"--set {item!r}: {value!r} is not a number"
        raise ConfigError(msg) from None
    if section == "network":
        raw = asdict(network) | {"catchment_minutes": list(network.catchment_minutes), name: parsed}
        return _network(raw, "--set"), huff
    raw = {("lambda" if k == "lam" else k): v for k, v in asdict(huff).items() if k != "observed"}
    raw[name] = parsed
    new = _huff(raw, Path.cwd(), "--set")
    return network, HuffSettings(new.lam, new.attractiveness_own, new.attractiveness_competitor,
                                 new.attractiveness_new, huff.observed)


def _apply_set(item: str, criteria: dict[str, Criterion],
               selection: SelectionSettings) -> tuple[dict[str, Criterion], SelectionSettings]:
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) not in (2, 3):
        msg = (f"--set {item!r}: write it as criteria.NAME.weight=W, criteria.NAME.radius_m=R "
               "or selection.FIELD=V")
        raise ConfigError(msg)
    if parts == ["selection", "capacity"]:
        # "none" lifts a capacity the study file sets.
        text = value.strip()
        parsed: Any
        try:
            parsed = float(text)
        except ValueError:
            parsed = None if text.lower() == "none" else text
        return criteria, _replace(selection, capacity=_capacity(parsed, "--set selection.capacity"))
    try:
        number = float(value)
    except ValueError:
        msg = f"--set {item!r}: {value!r} is not a number"
        raise ConfigError(msg) from None
    if parts[0] == "selection" and len(parts) == 2:
        fields = {"top_k", "min_spacing_m", "min_distance_to_own_m", "coverage_minutes",
                  "time_limit_s", "capacity"}
        if parts[1] not in fields:
            msg = f"--set {item!r}: unknown selection field; use one of {', '.join(sorted(fields))}"
            raise ConfigError(msg)
        if parts[1] == "top_k":
            if number < 1 or number != int(number):
                msg = f"--set {item!r}: top_k must be a whole number >= 1"
                raise ConfigError(msg)
            return criteria, _replace(selection, top_k=int(number))
        v = _non_negative(number, f"--set {key}")
        d = asdict(selection) | {parts[1]: v}
        return criteria, SelectionSettings(**d)
    if parts[0] != "criteria" or len(parts) != 3:
        msg = f"--set {item!r}: only criteria.NAME.weight|radius_m and selection.FIELD can be set"
        raise ConfigError(msg)
    name, attr = parts[1], parts[2]
    if name not in criteria:
        msg = f"--set {item!r}: unknown criterion {name!r}; the criteria are {', '.join(CRITERIA)}"
        raise ConfigError(msg)
    c = criteria[name]
    if attr == "weight":
        c = Criterion(name, c.direction, _non_negative(number, f"--set {key}"), c.radius_m)
    elif attr == "radius_m":
        c = Criterion(name, c.direction, c.weight, _positive(number, f"--set {key}"))
    else:
        msg = f"--set {item!r}: a criterion has 'weight' and 'radius_m', not {attr!r}"
        raise ConfigError(msg)
    out = dict(criteria) | {name: c}
    _check_weights(out, "--set")
    return out, selection


def _layer(kind: str, spec: Any, base: Path, where: str) -> LayerFile:
    if kind not in LAYER_KINDS:
        msg = f"{where}: unknown layer kind {kind!r}; use one of {', '.join(LAYER_KINDS)}"
        raise ConfigError(msg)
    if isinstance(spec, str):
        spec = {"path": spec}
    _only_keys(spec, {"path", "lon_column", "lat_column", "count_column", "name_column",
                      "locations", "counter_column", "time_column"}, where, f"layers.{kind}.")
    if "locations" in spec and kind != "foot_traffic":
        msg = f"{where}: layers.{kind}.locations is only for foot_traffic given as hourly series"
        raise ConfigError(msg)
    if "path" not in spec:
        msg = f"{where}: layers.{kind} needs a path = \"FILE\""
        raise ConfigError(msg)
    p = Path(spec["path"])
    opts: dict[str, Any] = {k: str(v) for k, v in spec.items() if k not in ("path", "locations")}
    if "locations" in spec:
        loc = Path(spec["locations"])
        opts["locations"] = loc if loc.is_absolute() else base / loc
    return LayerFile(kind=kind, path=p if p.is_absolute() else base / p, **opts)


POLICY_MODES = ("report", "strict")
_MONEY = ("revenue_per_customer_year", "rent_per_m2_year", "fitout_per_m2", "equipment_per_atm",
          "equipment_per_counter", "salary_per_fte_year", "other_opex_per_m2_year")
_SHARES = ("customer_share", "shrinkage")
_HOURS = ("opening_hours_per_week", "fte_hours_per_week")


def _money(v: Any, what: str, currency: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        msg = f"{what} = {v!r} is not a number; give an amount in {currency}, e.g. 1500"
        raise ConfigError(msg)
    if v < 0:
        msg = f"{what} = {v!r} is negative; prices and rates must be >= 0 {currency}"
        raise ConfigError(msg)
    return float(v)


def _economics(raw: Any, base: Path, where: str) -> EconomicsSettings:
    d = EconomicsSettings()
    _only_keys(raw, {f.name for f in dataclass_fields(EconomicsSettings)}, where, "economics.")
    currency = str(raw.get("currency", d.currency)).strip()
    if not currency:
        msg = f"{where}: economics.currency is empty; give a currency code such as EUR"
        raise ConfigError(msg)
    kw: dict[str, Any] = {"currency": currency}
    for name in _MONEY + ("branch_visits_per_customer_year",):
        kw[name] = _money(raw.get(name, getattr(d, name)), f"{where}: economics.{name}", currency)
    for name in _SHARES:
        v = _money(raw.get(name, getattr(d, name)), f"{where}: economics.{name}", currency)
        if v > 1 or (name == "shrinkage" and v == 1):
            msg = f"{where}: economics.{name} = {v!r}; use a share from 0 to 1 (below 1 for shrinkage)"
            raise ConfigError(msg)
        kw[name] = v
    for name in _HOURS:
        v = _money(raw.get(name, getattr(d, name)), f"{where}: economics.{name}", currency)
        if not 0 < v <= 168:
            msg = f"{where}: economics.{name} = {v!r}; use hours per week between 1 and 168"
            raise ConfigError(msg)
        kw[name] = v
    horizon = raw.get("horizon_years", d.horizon_years)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        msg = (f"{where}: economics.horizon_years = {horizon!r}; use a whole number of years "
               ">= 1, e.g. 10")
        raise ConfigError(msg)
    rate = raw.get("discount_rate", d.discount_rate)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        msg = (f"{where}: economics.discount_rate = {rate!r}; use a yearly rate from 0 to "
               "below 1, e.g. 0.10 for 10 %")
        raise ConfigError(msg)
    districts = raw.get("districts")
    if districts is not None and not (base / str(districts)).is_file():
        msg = f"{where}: economics.districts {base / str(districts)} not found; check the path"
        raise ConfigError(msg)
    return EconomicsSettings(
        **kw, horizon_years=horizon, discount_rate=float(rate),
        districts=(base / str(districts)) if districts is not None else None,
        rent_column=str(raw.get("rent_column", d.rent_column)),
        budget=_budget(raw.get("budget"), f"{where}: economics.budget", currency),
        min_npv=_hurdle(raw.get("min_npv", d.min_npv), f"{where}: economics.min_npv", currency))


def _amount(v: Any, what: str, currency: str, purpose: str) -> float | None:
    """A money amount from TOML or the command line (``1_500_000`` and ``1,500,000`` read as numbers)."""
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v.replace("_", "").replace(",", ""))
        except ValueError:
            msg = f"{what} = {v!r} is not a number; give {purpose} in {currency}"
            raise ConfigError(msg) from None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        msg = f"{what} = {v!r} is not a number; give {purpose} in {currency}"
        raise ConfigError(msg)
    return float(v)


def _budget(v: Any, what: str, currency: str) -> float | None:
    b = _amount(v, what, currency, "the capex budget, e.g. 2000000")
    if b is not None and b <= 0:
        msg = f"{what} = {v!r}; give the capex budget as a number > 0 in {currency}, e.g. 2000000"
        raise ConfigError(msg)
    return b


def _hurdle(v: Any, what: str, currency: str) -> float | None:
    return _amount(v, what, currency, "the NPV hurdle, e.g. 0")


def _economics_overrides(e: EconomicsSettings, budget: str | None,
                         min_npv: str | None) -> EconomicsSettings:
    if budget is not None:
        e = _replace(e, budget=_budget(budget, "--budget", e.currency))
    if min_npv is not None:
        e = _replace(e, min_npv=_hurdle(min_npv, "--min-npv", e.currency))
    return e


def _policy_override(p: PolicySettings, mode: str | None) -> PolicySettings:
    if mode is None:
        return p
    if mode not in POLICY_MODES:
        msg = f"--policy {mode!r}: use one of {', '.join(POLICY_MODES)}"
        raise ConfigError(msg)
    return _replace(p, mode=mode)


def _policy(raw: Any, where: str) -> PolicySettings:
    d = PolicySettings()
    _only_keys(raw, {f.name for f in dataclass_fields(PolicySettings)}, where, "policy.")
    mode = str(raw.get("mode", d.mode))
    if mode not in POLICY_MODES:
        msg = f"{where}: policy.mode = {mode!r}; use one of {', '.join(POLICY_MODES)}"
        raise ConfigError(msg)
    pct = {}
    for name in ("foot_traffic_percentile", "commercial_percentile"):
        v = raw.get(name, getattr(d, name))
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 100:
            msg = f"{where}: policy.{name} = {v!r} is outside 0-100; give a percentile, e.g. 50"
            raise ConfigError(msg)
        pct[name] = float(v)
    payback = raw.get("max_payback_years")
    return PolicySettings(
        mode=mode, **pct,
        transit_max_walk_min=_positive(raw.get("transit_max_walk_min", d.transit_max_walk_min),
                                       f"{where}: policy.transit_max_walk_min"),
        competitor_min_m=_non_negative(raw.get("competitor_min_m", d.competitor_min_m),
                                       f"{where}: policy.competitor_min_m"),
        max_payback_years=None if payback is None else _positive(
            payback, f"{where}: policy.max_payback_years"))
