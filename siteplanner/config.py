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
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError

from siteplanner import _overrides
from siteplanner._business_settings import EconomicsSettings, PolicySettings, parse_amount
from siteplanner._document import LAYER_KINDS, STUDY_KEYS, document_to_fields, origin_of, toml_key
from siteplanner._errors import ConfigError
from siteplanner._schema import (
    Coordinate,
    Expect,
    FilePath,
    Metres,
    Problem,
    Seed,
    Text,
    Weight,
    is_file,
    one_line,
    settings,
    show,
    validation_problems,
)
from siteplanner._sections import (
    CAPACITY_METHODS,
    MODEL_KINDS,
    SELECTION_METHODS,
    SOLVERS,
    CandidateSettings,
    DemandSettings,
    FloorplanSettings,
    HuffSettings,
    ModelSettings,
    NetworkSettings,
    SelectionSettings,
    StudyArea,
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
    "EconomicsSettings",
    "FloorplanSettings",
    "HuffSettings",
    "LayerFile",
    "ModelSettings",
    "NationalSettings",
    "NetworkSettings",
    "PolicySettings",
    "SelectionSettings",
    "Study",
    "StudyArea",
    "load_study",
    "parse_bbox",
]


CriterionName = Annotated[str, Expect(f"one of {', '.join(CRITERIA)}")]
DirectionField = Annotated[Direction, Expect("benefit or cost")]


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
    economics: EconomicsSettings = Field(default_factory=EconomicsSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
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
                       area_name: str | None = None, budget: str | None = None,
                       min_npv: str | None = None, policy: str | None = None) -> Study:
        """Apply command-line overrides (``--set KEY=VALUE`` and the options), validated as the file is."""
        doc = self.to_document()
        origins = _overrides.apply(
            doc, sets=sets or [], brand=brand, top_k=top_k, osm=osm, place=place, bbox=bbox,
            layers=layers or [], select=select, solver=solver, model=model, text_key=_takes_text)
        if self.ahp is not None and any(k.startswith("criteria.") and k.endswith(".weight")
                                        for k in origins):
            doc.pop("ahp", None)
        for key, value, origin in (("economics.budget", budget, "--budget"),
                                   ("economics.min_npv", min_npv, "--min-npv"),
                                   ("policy.mode", policy, "--policy")):
            if value is not None:
                section, field_name = key.split(".")
                doc.setdefault(section, {})[field_name] = (
                    parse_amount(value) if section == "economics" else value)
                origins = {**origins, key: origin}
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
        for sec in ("candidates", "selection", "network", "demand", "economics", "policy", "model",
                    "floorplan", "national"):
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
