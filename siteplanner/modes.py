"""Catchments by travel mode: a drive network from OSM speeds, mode shares, the default rule.

A cell's demand is split among the study's modes (``[network] modes``) by
``[network] mode_share``; each share sees the branches by its own mode's
minutes. The market and the location models get the split as *stacked rows*:
one block of demand rows per mode, each with its mode's minutes and its
share of the weights. Huff per mode then summed, and "a cell's mode-share is
covered when within the mode's minutes", are exactly what the models compute
on the stacked rows, so the models themselves need no change.

Drive speeds
    Each road's speed is its ``maxspeed`` tag times 0.8 when tagged, else the
    class default (:data:`DRIVE_SPEEDS_KMH`). Both follow the Project OSRM
    car profile (``profiles/car.lua``): its free-flow speed per ``highway``
    class, its ``speed_reduction = 0.8`` applied to a posted limit (traffic
    rarely drives at the limit), and its implicit limits for ``maxspeed``
    values such as ``"FR:urban"`` (urban 50, rural 90, trunk 110, motorway
    130 km/h, from the OSM wiki's speed-limit table). The leg between a
    point and the nearest drivable road (from the door to the car) is walked
    at the walking speed. One-way tags are not followed: the graph is
    undirected, which shortens some drives in one-way grids.

Default modes
    Walk only where the study area's residents per km² reach
    :data:`URBAN_CENTRE_DENSITY` (1,500 inhabitants per km², the density of an
    *urban centre* in the EU/OECD/UN Degree of Urbanisation, Eurostat 2021,
    "Applying the Degree of Urbanisation", methodological manual, ch. 2);
    walk and drive below it. Without a residents estimate the study walks.

Default shares
    :data:`DEFAULT_MODE_SHARE`: of the daily trips in the U.S. 2001 National
    Household Travel Survey, 87 % went by private vehicle and 9 % on foot
    (BTS, *NHTS 2001 Highlights Report*, BTS03-05, tables A-10 to A-16; BTS
    Pocket Guide to Transportation 2004, table 12; family and personal
    business, which includes shopping and banking, is 45 % of those trips).
    Over the two modes modelled: walk 9/96 = 0.094, drive 87/96 = 0.906. A
    car-oriented split, used only where the density rule adds driving; give
    your country's survey split in ``mode_share``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from siteplanner._errors import ModeError
from siteplanner.network import DEFAULT_SPEED_KMH, WalkGraph
from siteplanner.proximity import walk_minutes

if TYPE_CHECKING:
    from siteplanner._sections import NetworkSettings

__all__ = [
    "DEFAULT_MODE_SHARE",
    "DRIVE_SPEEDS_KMH",
    "IMPLICIT_MAXSPEED_KMH",
    "MAXSPEED_FACTOR",
    "MODES",
    "URBAN_CENTRE_DENSITY",
    "DriveGraph",
    "TravelMode",
    "TravelModes",
    "check_mode_sources",
    "default_modes",
    "drive_speeds",
    "mode_shares",
    "study_modes",
]

log = logging.getLogger(__name__)

MODES = ("walk", "drive")

#: Free-flow car speed per OSM ``highway`` class (km/h): Project OSRM car profile.
DRIVE_SPEEDS_KMH: dict[str, float] = {
    "motorway": 90.0, "motorway_link": 45.0, "trunk": 85.0, "trunk_link": 40.0,
    "primary": 65.0, "primary_link": 30.0, "secondary": 55.0, "secondary_link": 25.0,
    "tertiary": 40.0, "tertiary_link": 20.0, "unclassified": 25.0, "residential": 25.0,
    "living_street": 10.0, "service": 15.0,
}
#: A road of a class the table does not name (``road``, ``track``...): OSRM's default speed.
OTHER_ROAD_KMH = 10.0
#: Share of a posted ``maxspeed`` driven on average: OSRM car profile's ``speed_reduction``.
MAXSPEED_FACTOR = 0.8
#: Implicit limits a ``maxspeed`` like ``"DE:urban"`` stands for (km/h): OSRM's defaults
#: from the OSM wiki's speed-limit table; ``none`` (no limit) is OSRM's 140.
IMPLICIT_MAXSPEED_KMH: dict[str, float] = {"urban": 50.0, "rural": 90.0, "trunk": 110.0,
                                           "motorway": 130.0, "none": 140.0}
_MPH_KMH = 1.609344

#: Inhabitants per km² of an urban centre (Degree of Urbanisation, Eurostat 2021).
URBAN_CENTRE_DENSITY = 1500.0

#: Walk and drive shares of daily trips, NHTS 2001 (9 % walk, 87 % private vehicle).
DEFAULT_MODE_SHARE: dict[str, float] = {"walk": 9 / 96, "drive": 87 / 96}


# --------------------------------------------------------------------------- drive speeds

def _per_value(values: pd.Series, parse: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``parse`` applied once per distinct value, not once per road.

    A country's 100k roads carry a few hundred distinct ``highway`` and
    ``maxspeed`` tags, and the string parsing is per element. List values
    (osmnx merges ways' tags into lists) cannot be factorised and are parsed
    row by row.
    """
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable lists
        return parse(values)
    parsed = parse(pd.Series(np.asarray(uniques, dtype=object), dtype=object))
    if not len(parsed):
        return parse(values)
    out = parsed.array.take(codes, allow_fill=True)
    return pd.Series(out, index=values.index, dtype=parsed.dtype, name=values.name)


def _first_tag(values: pd.Series) -> pd.Series:
    """The first of a list-valued or ``;``-separated tag (osmnx merges ways into lists)."""
    return _per_value(values, _first_tag_rows)


def _first_tag_rows(values: pd.Series) -> pd.Series:
    first = values.map(lambda v: v[0] if isinstance(v, list | tuple) and len(v) else v)
    return first.astype("string").str.split(";").str[0].str.strip()


def _parse_maxspeed(values: pd.Series) -> pd.Series:
    """``maxspeed`` tags as km/h: ``"50"``, ``"30 mph"``, ``"FR:urban"``, ``"none"``; else NaN."""
    return _per_value(values, _parse_maxspeed_rows)


def _parse_maxspeed_rows(values: pd.Series) -> pd.Series:
    text = _first_tag_rows(values).str.lower()
    number = pd.to_numeric(text.str.extract(r"^\s*(\d+(?:\.\d+)?)", expand=False), errors="coerce")
    mph = text.str.contains("mph", regex=False).fillna(False).to_numpy(dtype=bool)
    kmh = number.to_numpy(dtype=float) * np.where(mph, _MPH_KMH, 1.0)
    zone = text.str.extract(r"^(?:[a-z]{2}(?:-[a-z]+)?:)?([a-z_]+)$", expand=False)
    implicit = zone.map(IMPLICIT_MAXSPEED_KMH).to_numpy(dtype=float)
    out = np.where(np.isfinite(kmh) & (kmh > 0), kmh, implicit)
    return pd.Series(out, index=values.index, dtype=float, name=values.name)


def drive_speeds(highway: pd.Series, maxspeed: pd.Series | None = None) -> pd.Series:
    """Car speed per road (km/h): ``maxspeed`` x :data:`MAXSPEED_FACTOR` when tagged, else by class.

    Parameters
    ----------
    highway
        The OSM ``highway`` class per road.
    maxspeed
        The OSM ``maxspeed`` tag per road (None: no road is tagged).

    Examples
    --------
    >>> drive_speeds(pd.Series(["primary", "residential"]), pd.Series(["50", None])).tolist()
    [40.0, 25.0]
    """
    by_class = _first_tag(highway).map(DRIVE_SPEEDS_KMH).astype(float).fillna(OTHER_ROAD_KMH)
    if maxspeed is None:
        return by_class.rename("speed_kmh")
    posted = _parse_maxspeed(maxspeed.reindex(highway.index)) * MAXSPEED_FACTOR
    return posted.where(posted.notna(), by_class).rename("speed_kmh")


class DriveGraph(WalkGraph):
    """A road network whose edge weights are driving times at each road's own speed.

    Built by :meth:`from_roads`. ``edge_length`` holds *walk-equivalent
    metres*, the road's metres x walking speed / its car speed, and
    ``speed_kmh`` is the walking speed: every search, cutoff and minute of
    :class:`WalkGraph` then reads drive minutes, while the leg from a point to
    its nearest road is walked. ``edge_speed_kmh`` and ``edge_metres`` keep
    each road's car speed and true length.
    """

    edge_speed_kmh: np.ndarray
    edge_metres: np.ndarray

    @classmethod
    def from_roads(cls, nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, *,
                   walk_speed_kmh: float = DEFAULT_SPEED_KMH) -> DriveGraph:
        """Build from road nodes and edges (``u``, ``v``, ``length`` m, ``highway``, ``maxspeed``).

        Parameters
        ----------
        nodes, edges
            As for :meth:`WalkGraph.from_gdfs`; ``edges`` also needs
            ``highway`` and may carry ``maxspeed``.
        walk_speed_kmh
            The speed of the walk between a point and its nearest road.
        """
        if "highway" not in edges:
            msg = "roads: missing column 'highway'; the drive network needs each road's OSM class"
            raise ModeError(msg)
        # only the road classes a car profile routes on (pyrosm's "driving" also keeps
        # e.g. via_ferrata); "road" (class unknown) at OTHER_ROAD_KMH
        edges = edges[_first_tag(edges["highway"]).isin([*DRIVE_SPEEDS_KMH, "road"])
                      .fillna(False).to_numpy(dtype=bool)]
        speed = drive_speeds(edges["highway"], edges["maxspeed"] if "maxspeed" in edges else None)
        metres = pd.to_numeric(edges["length"], errors="coerce")
        weighted = edges.assign(length=metres * (walk_speed_kmh / speed))
        graph = cls.from_gdfs(nodes, weighted, speed_kmh=walk_speed_kmh)
        assert isinstance(graph, DriveGraph)
        # the geometry keeps each road's true shape, so its length is the road's metres
        graph.edge_metres = shapely.length(graph.edge_geometry)
        weight = np.where(graph.edge_length > 0, graph.edge_length, np.nan)
        graph.edge_speed_kmh = walk_speed_kmh * graph.edge_metres / weight
        return graph


# --------------------------------------------------------------------------- the modes

@dataclass(frozen=True)
class TravelMode:
    """One mode: its name, its graph (None: straight lines, walk only) and its share of demand."""

    name: str
    graph: WalkGraph | None
    share: float
    metres_per_minute: float


@dataclass(frozen=True)
class TravelModes:
    """The study's modes, with the record of which were used and why.

    :meth:`minutes` stacks one block of demand rows per mode and
    :meth:`weights` the demand split by share in the same order, so any model
    over (demand rows x sites) sees each mode's share by its own minutes.
    """

    modes: tuple[TravelMode, ...]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modes)

    def minutes(self, origins: gpd.GeoDataFrame, targets: gpd.GeoDataFrame, *,
                cutoff_min: float) -> sp.csr_matrix | np.ndarray:
        """Minutes from each (mode, origin) row to each target; one mode: its matrix as is."""
        blocks = [walk_minutes(m.graph, origins, targets, cutoff_min=cutoff_min,
                               metres_per_minute=m.metres_per_minute) for m in self.modes]
        if len(blocks) == 1:
            return blocks[0]
        return sp.vstack([_sparse(b) for b in blocks], format="csr")

    def weights(self, weights: np.ndarray) -> np.ndarray:
        """The demand per (mode, origin) row: each origin's weight times each mode's share."""
        w = np.asarray(weights, dtype=float)
        if len(self.modes) == 1:
            return w
        return np.concatenate([w * m.share for m in self.modes])


def _sparse(minutes: sp.csr_matrix | np.ndarray) -> sp.csr_matrix:
    """A dense matrix with ``inf`` beyond the cutoff as sparse, reachable zeros kept stored."""
    if sp.issparse(minutes):
        return sp.csr_matrix(minutes)
    r, c = np.nonzero(np.isfinite(minutes))
    return sp.csr_matrix((minutes[r, c], (r, c)), shape=minutes.shape)


def default_modes(residents: float | None, area_km2: float) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The modes the density rule picks, and why, for run.json.

    Parameters
    ----------
    residents
        Residents of the study area (the demand layer's total), None when unknown.
    area_km2
        The study area in km².

    Examples
    --------
    >>> default_modes(86_610, 468.0)[0]
    ('walk', 'drive')
    """
    rule = (f"walk only at >= {URBAN_CENTRE_DENSITY:,.0f} residents per km² of study area "
            "(an urban centre, EU/OECD Degree of Urbanisation), walk and drive below")
    if residents is None or not np.isfinite(residents) or area_km2 <= 0:
        return ("walk",), {"rule": rule, "residents_per_km2": None,
                           "why": "no residents estimate (buildings, census or raster): walk only"}
    density = float(residents) / area_km2
    dense = density >= URBAN_CENTRE_DENSITY
    why = (f"{density:,.0f} residents per km² {'>=' if dense else '<'} "
           f"{URBAN_CENTRE_DENSITY:,.0f}: {'walk only' if dense else 'walk and drive'}")
    return (("walk",) if dense else MODES), {"rule": rule, "residents_per_km2": round(density, 1),
                                             "residents": round(float(residents), 1),
                                             "area_km2": round(area_km2, 3), "why": why}


def mode_shares(modes: tuple[str, ...], shares: Mapping[str, float] | None) -> dict[str, float]:
    """Each mode's share of demand, summing to 1 over ``modes`` (defaults: NHTS 2001)."""
    given = dict(DEFAULT_MODE_SHARE if shares is None else shares)
    missing = [m for m in modes if m not in given]
    if missing and len(modes) > 1:
        msg = (f"network.mode_share: no share for mode {missing[0]!r}; give one per mode in "
               f"network.modes, e.g. mode_share = {{walk = 0.6, drive = 0.4}}")
        raise ModeError(msg)
    if len(modes) == 1:
        return {modes[0]: 1.0}
    total = sum(given[m] for m in modes)
    if total <= 0:
        msg = "network.mode_share: the shares of the study's modes sum to 0; give positive shares"
        raise ModeError(msg)
    return {m: given[m] / total for m in modes}


def study_modes(settings: NetworkSettings, *, demand: gpd.GeoDataFrame, area_km2: float,
                walk: WalkGraph | None, crs: Any, osm: Path | None = None,
                online_area: Any = None, cache_folder: Path | None = None) -> TravelModes:
    """The study's modes with their graphs and shares, and the record of why, for run.json.

    The drive network is read only when ``"drive"`` is among the modes.

    Parameters
    ----------
    settings
        ``[network]``: ``modes`` (None: :func:`default_modes` over the demand's
        residents), ``mode_share``, ``walk_speed_kmh``.
    demand
        The demand layer (its ``residents`` column drives the default rule).
    area_km2
        The study area in km².
    walk
        The walking graph (None: walks are straight lines).
    crs
        The study's projected CRS, for the roads.
    osm, online_area, cache_folder
        Where the roads are read from (see :func:`siteplanner.sources.drive.read_drive_network`).
    """
    if settings.modes is None:
        residents = _residents(demand)
        names, why = default_modes(residents, area_km2)
        chosen: dict[str, Any] = {"chosen_by": "density rule", **why}
        from siteplanner.sources.drive import drive_source_problem

        if "drive" in names and drive_source_problem(osm=osm, online=online_area is not None):
            names = ("walk",)
            chosen["why"] += "; but the data has no road network (an .osm.pbf or online area): walk only"
    else:
        names, chosen = tuple(settings.modes), {"chosen_by": "study (network.modes)"}
    given = None if settings.mode_share is None else {str(k): v for k, v in settings.mode_share.items()}
    shares = mode_shares(names, given)
    mpm = settings.walk_speed_kmh * 1000 / 60
    modes, report = [], {"modes": list(names), "shares": {k: round(v, 4) for k, v in shares.items()},
                         "share_source": ("study (network.mode_share)" if settings.mode_share
                                          else "NHTS 2001: walk 9 %, private vehicle 87 % of daily "
                                               "trips (siteplanner.modes)") if len(names) > 1
                         else "one mode", **chosen}
    for name in names:
        graph = walk if name == "walk" else _drive_graph(settings, crs=crs, osm=osm,
                                                         online_area=online_area,
                                                         cache_folder=cache_folder, report=report)
        modes.append(TravelMode(name=name, graph=graph, share=shares[name], metres_per_minute=mpm))
    log.info("travel modes %s, shares %s (%s)", names, report["shares"], chosen.get("why", "set"))
    return TravelModes(modes=tuple(modes), report=report)


def check_mode_sources(settings: NetworkSettings, *, osm: Path | None, online: bool) -> None:
    """Refuse at once a study whose ``modes`` name ``"drive"`` on data with no road network.

    The default rule adds driving only where a network can be read (an
    ``.osm.pbf`` file or an online area); otherwise it stays with walking.
    """
    from siteplanner.sources.drive import drive_source_problem

    if settings.modes is not None and "drive" in settings.modes:
        problem = drive_source_problem(osm=osm, online=online)
        if problem:
            raise ModeError(problem)


def _residents(demand: gpd.GeoDataFrame) -> float | None:
    if "residents" not in demand:
        return None
    total = float(pd.to_numeric(demand["residents"], errors="coerce").sum())
    return total if total > 0 else None


def _drive_graph(settings: NetworkSettings, *, crs: Any, osm: Path | None, online_area: Any,
                 cache_folder: Path | None, report: dict[str, Any]) -> DriveGraph:
    from siteplanner.sources.drive import read_drive_network

    t0 = time.perf_counter()
    nodes, edges = read_drive_network(osm=osm, online_area=online_area, cache_folder=cache_folder)
    graph = DriveGraph.from_roads(nodes.to_crs(crs), edges.to_crs(crs),
                                  walk_speed_kmh=settings.walk_speed_kmh)
    tagged = _parse_maxspeed(edges["maxspeed"]).notna() if "maxspeed" in edges else pd.Series([])
    report["drive_network"] = {
        "nodes": graph.n_nodes, "edges": len(graph.edge_length),
        "km": round(float(graph.edge_metres.sum()) / 1000, 1),
        "median_speed_kmh": round(float(np.nanmedian(graph.edge_speed_kmh)), 1),
        "maxspeed_tagged_share": round(float(tagged.mean()), 4) if len(tagged) else 0.0,
        "speeds": "maxspeed x 0.8, else by highway class (OSRM car profile)",
        "one_way": "not followed (undirected)", "seconds": round(time.perf_counter() - t0, 2)}
    return graph
