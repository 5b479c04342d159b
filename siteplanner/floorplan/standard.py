"""The brand standard: zone kinds, space per unit, service targets and the closeness chart."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from siteplanner._errors import ConfigError

__all__ = [
    "ACCESS_CLASSES",
    "CHANNELS",
    "FLEX",
    "RESERVE",
    "Fixtures",
    "MANDATORY_ZONES",
    "RATING_WEIGHTS",
    "ZONE_KINDS",
    "Channel",
    "Standard",
    "ZoneSpec",
    "default_standard",
    "load_standard",
]

#: Zone kinds in drawing order. The first three are always present.
ZONE_KINDS: tuple[str, ...] = (
    "self_service",
    "waiting",
    "service",
    "advisory",
    "back_office",
    "vault",
    "restroom",
)
MANDATORY_ZONES: tuple[str, ...] = ("self_service", "waiting", "service")
#: The zone that takes floor beyond what the programme zones may hold (at most
#: ``max_zone_ratio`` times their programme). It is named ``circulation`` in a plan
#: when the public route runs through it, else ``flex`` (future counters, seating, events).
FLEX = "flex"
CIRCULATION = "circulation"
#: Surplus floor beyond the egress reach of the door, closed to customers (staff access).
RESERVE = "reserve"
#: Who may enter a zone: customers, staff only, or staff with a controlled door (cash).
ACCESS_CLASSES: tuple[str, ...] = ("public", "staff", "secure")
#: Demand channels and the zone each one is served in by default.
CHANNELS: tuple[str, ...] = ("counter", "advisory", "self_service")
#: ALDEP weights for the Systematic Layout Planning closeness ratings.
RATING_WEIGHTS: dict[str, int] = {"A": 64, "E": 16, "I": 4, "O": 1, "U": 0, "X": -1024}
ENTRANCE = "entrance"

_TOP_KEYS = {
    "name",
    "seat_overflow_probability",
    "max_occupancy",
    "turning_circle_m",
    "door_width_m",
    "min_shared_wall_m",
    "area_tolerance",
    "max_zone_ratio",
    "max_egress_m",
    "clear_width_m",
    "route_width_m",
    "internal_door_m",
    "typical_outline_m2",
    "max_outline_m2",
    "fixtures",
    "circulation_allowance",
    "surplus_to",
    "shares",
    "channels",
    "zones",
    "relationships",
}
_CHANNEL_KEYS = {
    "zone",
    "service_time_min",
    "target_level",
    "target_wait_min",
    "max_servers",
    "min_servers",
}
_ZONE_KEYS = {
    "unit",
    "base_m2",
    "base_units",
    "area_per_unit_m2",
    "queue_place_m2",
    "wheelchair_place_m2",
    "seats_per_wheelchair_place",
    "min_units",
    "circulation",
    "min_width_m",
    "public",
    "access",
}
_FIXTURE_KEYS = {
    "counter_module_m", "counter_depth_m", "counter_staff_side_m", "counter_customer_side_m",
    "atm_width_m", "atm_depth_m", "atm_clear_m", "seat_width_m", "seat_depth_m",
    "seat_aisle_m", "wheelchair_place_m", "desk_width_m", "desk_depth_m", "desk_cell_m", "desk_cell_depth_m",
    "chair_m", "safe_width_m", "safe_depth_m", "safe_clear_m",
}


@dataclass(frozen=True)
class Channel:
    """One demand channel: who serves it, how long it takes, and the service target."""

    name: str
    zone: str
    service_time_min: float
    target_level: float
    target_wait_min: float
    max_servers: int
    min_servers: int = 1


@dataclass(frozen=True)
class ZoneSpec:
    """Space rules for one zone kind."""

    kind: str
    unit: str
    area_per_unit_m2: float = 0.0
    base_m2: float = 0.0
    base_units: int = 0
    queue_place_m2: float = 0.0
    wheelchair_place_m2: float = 0.0
    seats_per_wheelchair_place: int = 20
    min_units: int = 1
    circulation: float | None = None
    min_width_m: float = 1.2
    access: str = "public"

    @property
    def public(self) -> bool:
        """True for zones customers walk into."""
        return self.access == "public"


@dataclass(frozen=True)
class Fixtures:
    """Fixture sizes and clearances, metres; sources in ``default_standard.toml``."""

    counter_module_m: float = 1.8
    counter_depth_m: float = 0.6
    counter_staff_side_m: float = 1.2
    counter_customer_side_m: float = 1.8
    atm_width_m: float = 0.8
    atm_depth_m: float = 0.75
    atm_clear_m: float = 1.5
    seat_width_m: float = 0.55
    seat_depth_m: float = 0.6
    seat_aisle_m: float = 0.9
    wheelchair_place_m: float = 0.9
    desk_width_m: float = 1.4
    desk_depth_m: float = 0.7
    desk_cell_m: float = 3.0
    desk_cell_depth_m: float = 2.7
    chair_m: float = 0.5
    safe_width_m: float = 1.0
    safe_depth_m: float = 0.8
    safe_clear_m: float = 1.0


@dataclass(frozen=True)
class Standard:
    """A brand standard for branch floors.

    Build one with :func:`load_standard` or :func:`default_standard`; every field is
    documented, with its source, in ``default_standard.toml``.
    """

    name: str
    zones: Mapping[str, ZoneSpec]
    channels: Mapping[str, Channel]
    relationships: Mapping[tuple[str, str], str]
    shares: Mapping[str, float]
    seat_overflow_probability: float = 0.05
    max_occupancy: float = 0.85
    turning_circle_m: float = 1.5
    door_width_m: float = 1.8
    min_shared_wall_m: float = 1.0
    area_tolerance: float = 0.10
    circulation_allowance: float = 0.30
    surplus_to: tuple[str, ...] = field(default=("waiting", "self_service", "service"))
    max_zone_ratio: float = 1.5
    max_egress_m: float = 30.0
    clear_width_m: float = 0.9
    route_width_m: float = 1.2
    internal_door_m: float = 0.9
    typical_outline_m2: tuple[float, float] = (140.0, 370.0)
    max_outline_m2: float = 4000.0
    fixtures: Fixtures = field(default_factory=Fixtures)
    flex: ZoneSpec = field(default_factory=lambda: ZoneSpec(kind=FLEX, unit="m²",
                                                             min_width_m=2.4))

    @property
    def kinds(self) -> tuple[str, ...]:
        """Zone kinds of this standard, in the canonical order."""
        return tuple(k for k in ZONE_KINDS if k in self.zones)

    def rating(self, a: str, b: str) -> str:
        """Closeness rating between two zone kinds (or ``"entrance"``); U when unlisted."""
        return self.relationships.get(_pair(a, b), "U")

    def spec(self, kind: str) -> ZoneSpec:
        """Space rules of a zone kind, the surplus zone (flex or circulation) included."""
        if kind == FLEX:
            return self.flex
        if kind == CIRCULATION:  # a public corridor: as wide as the turning circle [DIN]
            return replace(self.flex, kind=CIRCULATION, min_width_m=self.turning_circle_m)
        if kind == RESERVE:  # the flex floor closed to customers: staff storage, expansion
            return replace(self.flex, kind=RESERVE, access="staff")
        return self.zones[kind]

    def access(self, kind: str) -> str:
        """Access class (``public``, ``staff`` or ``secure``) of a zone kind."""
        return self.spec(kind).access

    def circulation_of(self, kind: str) -> float:
        """Circulation allowance of one zone kind."""
        own = self.zones[kind].circulation
        return self.circulation_allowance if own is None else own

    def with_zones(self, kinds: Iterable[str]) -> Standard:
        """The same standard restricted to ``kinds`` (the mandatory zones are always kept)."""
        wanted = set(kinds) | set(MANDATORY_ZONES)
        unknown = wanted - set(self.zones)
        if unknown:
            msg = f"zone kinds {sorted(unknown)} are not in standard {self.name!r}; known: {self.kinds}"
            raise ConfigError(msg)
        zones = {k: v for k, v in self.zones.items() if k in wanted}
        channels = {n: c for n, c in self.channels.items() if c.zone in wanted}
        return replace(self, zones=zones, channels=channels)


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _read_default() -> dict[str, Any]:
    text = resources.files("siteplanner.floorplan").joinpath("default_standard.toml").read_text()
    return tomllib.loads(text)


def default_standard() -> Standard:
    """The documented default standard shipped with siteplanner."""
    return _build(_read_default(), source="default_standard.toml")


def load_standard(path: str | Path) -> Standard:
    """Read a brand standard from a TOML file; missing keys come from the default.

    Parameters
    ----------
    path
        TOML file. A ``[zones]`` table, when given, decides which optional zones
        the branch has; a ``[relationships]`` table, when given, replaces the chart.

    Raises
    ------
    ConfigError
        Unreadable file, unknown keys, zone kinds or ratings, or out-of-range values.
    """
    path = Path(path)
    try:
        user = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"standard file {path} does not exist; pass an existing TOML file to --standard"
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        msg = f"standard file {path} is not readable TOML: {exc}"
        raise ConfigError(msg) from None
    base = _read_default()
    _check_keys(user, _TOP_KEYS, f"{path}")
    merged: dict[str, Any] = {k: v for k, v in base.items() if k not in ("zones", "relationships")}
    merged.update({k: v for k, v in user.items()
                   if k not in ("zones", "channels", "shares", "fixtures")})
    merged["shares"] = {**base["shares"], **user.get("shares", {})}
    merged["fixtures"] = {**base.get("fixtures", {}), **user.get("fixtures", {})}
    channels = {n: dict(c) for n, c in base["channels"].items()}
    for name, table in user.get("channels", {}).items():
        if name not in CHANNELS:
            msg = f"{path}: unknown channel {name!r} in [channels]; use one of {CHANNELS}"
            raise ConfigError(msg)
        channels[name].update(table)
    merged["channels"] = channels
    user_zones = user.get("zones")
    if user_zones is None:
        merged["zones"] = base["zones"]
    else:
        zones: dict[str, Any] = {}
        for kind, table in user_zones.items():
            zones[kind] = {**base["zones"].get(kind, {}), **table}
        for kind in MANDATORY_ZONES:
            zones.setdefault(kind, base["zones"][kind])
        merged["zones"] = zones
    merged["relationships"] = user.get("relationships", base["relationships"])
    return _build(merged, source=str(path))


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}"
        raise ConfigError(msg)


def _positive(value: Any, where: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        msg = f"{where} = {value!r} must be a number {bound}"
        raise ConfigError(msg)
    return float(value)


def _share(value: Any, where: str) -> float:
    v = _positive(value, where)
    if v >= 1:
        msg = f"{where} = {value!r} must be a share between 0 and 1 (exclusive)"
        raise ConfigError(msg)
    return v


def _zone_spec(kind: str, table: Mapping[str, Any], source: str) -> ZoneSpec:
    if kind not in ZONE_KINDS:
        msg = f"{source}: unknown zone kind {kind!r} in [zones]; use one of {ZONE_KINDS}"
        raise ConfigError(msg)
    w = f"{source} [zones.{kind}]"
    _check_keys(table, _ZONE_KEYS, w)
    access = table.get("access")
    if access is None:  # older standards said public = true/false
        access = "public" if bool(table.get("public", True)) else "staff"
    if access not in ACCESS_CLASSES:
        msg = f"{w} access = {access!r}; use one of {list(ACCESS_CLASSES)}"
        raise ConfigError(msg)
    if kind in MANDATORY_ZONES and access != "public":
        msg = f"{w} access = {access!r}: customers use the {kind} zone, so it must be 'public'"
        raise ConfigError(msg)

    def num(key: str, default: float, *, zero: bool = True) -> float:
        return _positive(table.get(key, default), f"{w} {key}", allow_zero=zero)

    spec = ZoneSpec(
        kind=kind,
        unit=str(table.get("unit", "units")),
        area_per_unit_m2=num("area_per_unit_m2", 0.0),
        base_m2=num("base_m2", 0.0),
        base_units=int(num("base_units", 0)),
        queue_place_m2=num("queue_place_m2", 0.0),
        wheelchair_place_m2=num("wheelchair_place_m2", 0.0),
        seats_per_wheelchair_place=int(num("seats_per_wheelchair_place", 20, zero=False)),
        min_units=int(num("min_units", 1, zero=False)),
        circulation=None if "circulation" not in table else num("circulation", 0.0),
        min_width_m=num("min_width_m", 1.2, zero=False),
        access=str(access),
    )
    if spec.area_per_unit_m2 + spec.base_m2 <= 0:
        msg = f"{w}: give base_m2 or area_per_unit_m2 > 0, or the zone has no area"
        raise ConfigError(msg)
    return spec


def _fixtures(table: Mapping[str, Any], source: str) -> Fixtures:
    _check_keys(table, _FIXTURE_KEYS, f"{source} [fixtures]")
    return Fixtures(**{k: _positive(v, f"{source} [fixtures] {k}") for k, v in table.items()})


def _limits(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The route, egress, size and outline limits of a standard, checked."""
    out: dict[str, Any] = {k: _positive(data[k], f"{source} {k}") for k in (
        "max_egress_m", "clear_width_m", "route_width_m", "internal_door_m", "max_outline_m2")}
    ratio = _positive(data["max_zone_ratio"], f"{source} max_zone_ratio")
    if ratio < 1:
        msg = f"{source}: max_zone_ratio = {ratio:g} must be at least 1 (a zone holds its programme)"
        raise ConfigError(msg)
    typical = data["typical_outline_m2"]
    ok = (isinstance(typical, list | tuple) and len(typical) == 2
          and all(isinstance(v, int | float) and not isinstance(v, bool) for v in typical)
          and 0 < typical[0] < typical[1] <= out["max_outline_m2"])
    if not ok:
        msg = (f"{source}: typical_outline_m2 = {typical!r} must be [low, high] m² with "
               f"0 < low < high <= max_outline_m2 ({out['max_outline_m2']:g})")
        raise ConfigError(msg)
    out["max_zone_ratio"] = ratio
    out["typical_outline_m2"] = (float(typical[0]), float(typical[1]))
    if out["route_width_m"] < out["clear_width_m"]:
        msg = (f"{source}: route_width_m = {out['route_width_m']:g} is below clear_width_m = "
               f"{out['clear_width_m']:g}; a main route is at least as wide as a passage")
        raise ConfigError(msg)
    return out


def _channels(data: Mapping[str, Any], zones: Mapping[str, ZoneSpec], source: str
              ) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, table in data.items():
        if name not in CHANNELS:
            msg = f"{source}: unknown channel {name!r} in [channels]; use one of {CHANNELS}"
            raise ConfigError(msg)
        _check_keys(table, _CHANNEL_KEYS, f"{source} [channels.{name}]")
        w = f"{source} [channels.{name}]"
        zone = str(table["zone"])
        if zone not in ZONE_KINDS:
            msg = f"{w} zone = {zone!r} is not a zone kind; use one of {ZONE_KINDS}"
            raise ConfigError(msg)
        if zone not in zones:
            continue  # the branch has no such zone, so the channel is not served here
        channels[name] = Channel(
            name=name,
            zone=zone,
            service_time_min=_positive(table["service_time_min"], f"{w} service_time_min"),
            target_level=_share(table["target_level"], f"{w} target_level"),
            target_wait_min=_positive(table["target_wait_min"], f"{w} target_wait_min",
                                      allow_zero=True),
            max_servers=int(_positive(table["max_servers"], f"{w} max_servers")),
            min_servers=int(_positive(table.get("min_servers", 1), f"{w} min_servers")),
        )
    return channels


def _relationships(data: Mapping[str, Any], zones: Mapping[str, ZoneSpec], source: str
                   ) -> dict[tuple[str, str], str]:
    relationships: dict[tuple[str, str], str] = {}
    allowed_ends = set(ZONE_KINDS) | {ENTRANCE}
    for key, rating in data.items():
        parts = str(key).split("/")
        if len(parts) != 2 or not set(parts) <= allowed_ends or parts[0] == parts[1]:
            msg = (f"{source} [relationships] key {key!r} must be 'kind/kind' with two different "
                   f"kinds from {sorted(allowed_ends)}")
            raise ConfigError(msg)
        if rating not in RATING_WEIGHTS:
            msg = (f"{source} [relationships] {key!r} = {rating!r} is not a closeness rating; "
                   f"use one of {list(RATING_WEIGHTS)}")
            raise ConfigError(msg)
        if set(parts) <= set(zones) | {ENTRANCE}:
            relationships[_pair(parts[0], parts[1])] = str(rating)
    return relationships


def _build(data: Mapping[str, Any], *, source: str) -> Standard:
    _check_keys(data, _TOP_KEYS, source)
    zones = {kind: _zone_spec(kind, table, source) for kind, table in data["zones"].items()}
    missing = [k for k in MANDATORY_ZONES if k not in zones]
    if missing:
        msg = f"{source}: [zones] lacks the mandatory zone kinds {missing}"
        raise ConfigError(msg)

    channels = _channels(data["channels"], zones, source)
    served = {c.zone for c in channels.values()}
    for kind in ("service", "self_service"):
        if kind not in served:
            msg = f"{source}: no channel is served in the mandatory zone {kind!r}"
            raise ConfigError(msg)

    relationships = _relationships(data["relationships"], zones, source)
    shares = {str(k): _positive(v, f"{source} [shares] {k}", allow_zero=True)
              for k, v in data["shares"].items()}
    for k in shares:
        if k not in CHANNELS:
            msg = f"{source}: unknown channel {k!r} in [shares]; use one of {CHANNELS}"
            raise ConfigError(msg)
    surplus = tuple(str(k) for k in data["surplus_to"])
    bad = [k for k in surplus if k not in ZONE_KINDS]
    if bad or not surplus:
        msg = f"{source}: surplus_to = {list(surplus)} must name zone kinds from {ZONE_KINDS}"
        raise ConfigError(msg)
    occupancy = _positive(data["max_occupancy"], f"{source} max_occupancy")
    if occupancy >= 1:
        msg = f"{source}: max_occupancy = {occupancy} must be below 1 (a server load of 1 never clears)"
        raise ConfigError(msg)
    return Standard(
        name=str(data.get("name", source)),
        zones=zones,
        channels=channels,
        relationships=relationships,
        shares=shares,
        seat_overflow_probability=_share(data["seat_overflow_probability"],
                                         f"{source} seat_overflow_probability"),
        max_occupancy=occupancy,
        turning_circle_m=_positive(data["turning_circle_m"], f"{source} turning_circle_m"),
        door_width_m=_positive(data["door_width_m"], f"{source} door_width_m"),
        min_shared_wall_m=_positive(data["min_shared_wall_m"], f"{source} min_shared_wall_m"),
        area_tolerance=_share(data["area_tolerance"], f"{source} area_tolerance"),
        circulation_allowance=_positive(data["circulation_allowance"],
                                        f"{source} circulation_allowance", allow_zero=True),
        surplus_to=tuple(k for k in surplus if k in zones) or ("waiting",),
        fixtures=_fixtures(data.get("fixtures", {}), source),
        flex=ZoneSpec(kind=FLEX, unit="m²", min_width_m=zones["waiting"].min_width_m),
        **_limits(data, source),
    )
