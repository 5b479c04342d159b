"""Layers: the study's GeoDataFrames in one projected, metric CRS.

:func:`build_layers` classifies OpenStreetMap features into transit stops,
competitors, own branches and commercial places, lets a user file replace any
of them, and converts everything to the study CRS (UTM unless the study sets
one). Foot traffic is measured counts when a user gives them; otherwise the
layer stays empty here and :mod:`siteplanner.footfall` builds a proxy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from siteplanner._errors import CRSError, InputError
from siteplanner.area import resolve_area
from siteplanner.brands import group_listing, match_brand
from siteplanner.sources._osm import OSMData

__all__ = ["LayerSource", "Layers", "bank_label", "build_layers", "classify_transit"]

FOOD = {"restaurant", "cafe", "fast_food", "bar", "pub", "food_court", "ice_cream", "biergarten"}
SERVICES = {
    "pharmacy", "post_office", "clinic", "doctors", "dentist", "library", "marketplace",
    "cinema", "theatre", "townhall", "courthouse", "hospital", "bureau_de_change",
    "money_transfer", "veterinary", "arts_centre", "nightclub", "community_centre",
}
FINANCE = {"bank", "atm"}


@dataclass(frozen=True)
class LayerSource:
    """Where one layer came from.

    ``kind`` is ``osm`` (OpenStreetMap), ``user`` (the user's file at
    ``path``), ``proxy`` (estimated from other layers) or ``none`` (no data).
    """

    kind: Literal["osm", "user", "proxy", "none"]
    path: str | None = None

    @property
    def measured(self) -> bool:
        """True for data observed in the world (OSM or the user's file), not estimated."""
        return self.kind in ("osm", "user")

    def __str__(self) -> str:
        return f"user:{self.path}" if self.kind == "user" else self.kind

    @classmethod
    def parse(cls, text: str) -> LayerSource:
        """The inverse of ``str()``: ``osm``, ``user:PATH``, ``proxy`` or ``none``."""
        if text.startswith("user:"):
            return cls("user", text[5:])
        if text in ("osm", "proxy", "none"):
            return cls(text)  # type: ignore[arg-type]
        msg = f"unknown layer source {text!r}; expected osm, user:PATH, proxy or none"
        raise InputError(msg)


OSM, PROXY, NONE = LayerSource("osm"), LayerSource("proxy"), LayerSource("none")


@dataclass
class Layers:
    """The study's layers, all in :attr:`crs` (projected, metres).

    ``sources`` says where each layer came from, as a :class:`LayerSource`.
    ``street_nodes`` feed the walking graph (:mod:`siteplanner.network`), which
    holds their coordinates, and ``addresses`` the candidates' addresses;
    :func:`siteplanner.pipeline.rank_sites` empties ``addresses`` once the candidates
    are addressed and ``street_nodes`` once the walking graph is built (about 240 MB
    on a 100k-candidate city); the run's result has the street nodes back, rebuilt
    from the graph, but not the addresses.
    """

    crs: CRS
    area: gpd.GeoDataFrame
    street_nodes: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    transit: gpd.GeoDataFrame
    competitors: gpd.GeoDataFrame
    own_branches: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame
    foot_traffic: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame | None = None
    sources: dict[str, LayerSource] = field(default_factory=dict)
    banks_found: list[str] = field(default_factory=list)
    #: Where the data ends (study CRS); None without OSM data.
    extent: shapely.Geometry | None = None
    #: The area's own name (a boundary's), its kind (see :class:`StudyArea`) and admin level.
    area_name: str | None = None
    area_source: str = "extent"
    area_level: int | None = None
    #: Context read from OSM, study CRS: boundaries, ``place=*`` points,
    #: addresses and the land where no branch can stand.
    boundaries: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["name", "admin_level"]))
    places: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["name", "place"]))
    addresses: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["street", "housenumber"]))
    blocked: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["kind"]))

    @property
    def foot_traffic_measured(self) -> bool:
        """True when foot traffic comes from the user's measured counts."""
        return self.sources.get("foot_traffic", NONE).kind == "user"

    @property
    def area_polygon(self) -> shapely.Geometry:
        """The study area as one (multi)polygon in the study CRS."""
        return self.area.geometry.union_all()


def _empty(columns: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: pd.Series([], dtype=object) for c in columns},
                            geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def bank_label(df: pd.DataFrame) -> pd.Series:
    """The name a bank is known by: its brand, else its operator, else its name."""
    label = df["brand"].where(df["brand"].notna(), df["operator"])
    return label.where(label.notna(), df["name"]).fillna("(unnamed bank)").astype(str)


def classify_transit(features: pd.DataFrame) -> pd.DataFrame:
    """One row per (stop, mode) from the OSM tags that say the mode.

    The tags follow the OSM wiki's public transport schema (``public_transport=*``
    with ``bus|tram|train|subway|light_rail=yes``) and the older ones
    (``highway=bus_stop``, ``railway=station|halt|tram_stop|subway_entrance``):

    * ``metro``: ``station=subway``, ``subway=yes`` on a station, or a
      ``railway=subway_entrance`` that is not a train station's entrance
      (``train=yes`` without ``subway=yes``);
    * ``rail``: ``railway=station|halt`` or ``public_transport=station`` with
      ``train=yes`` (or ``station=train``), not a metro or tram station;
      ``railway=train_station_entrance`` is left out, its station counts;
    * ``tram``: ``railway=tram_stop``, ``station=light_rail|tram``, or
      ``tram=yes`` / ``light_rail=yes`` on a station;
    * ``bus``: ``highway=bus_stop``, ``amenity=bus_station``, or ``bus=yes`` on a station.

    Stop positions and bare platforms are left out so that one physical stop
    counts once per mode; an element with two modes (a station with
    ``train=yes`` and ``tram=yes``) gives one row for each.
    """
    def tag(key: str) -> pd.Series:
        return features[key].fillna("").astype(str) if key in features else pd.Series(
            "", index=features.index)

    rw, station, pt = tag("railway"), tag("station"), tag("public_transport")
    is_station = rw.isin(["station", "halt"]) | (pt == "station")
    yes = {k: tag(k) == "yes" for k in ("subway", "train", "tram", "light_rail", "bus")}
    metro_station = is_station & ((station == "subway") | yes["subway"])
    tram_station = is_station & (station.isin(["light_rail", "tram"]) | yes["tram"] | yes["light_rail"])
    train_entrance = yes["train"] & ~yes["subway"]
    rules = {
        "rail": is_station & ~metro_station & (
            rw.isin(["station", "halt"]) & ~tram_station | yes["train"] | (station == "train")),
        "metro": metro_station | ((rw == "subway_entrance") & ~train_entrance),
        "tram": (rw == "tram_stop") | tram_station,
        "bus": (tag("highway") == "bus_stop") | (tag("amenity") == "bus_station")
        | (is_station & yes["bus"]),
    }
    parts = [features[mask].assign(mode=mode) for mode, mask in rules.items() if mask.any()]
    if not parts:
        return features.iloc[0:0].assign(mode=pd.Series(dtype=str))
    return pd.concat(parts, ignore_index=True)


def _poi_category(features: pd.DataFrame) -> pd.Series:
    amenity = features["amenity"].fillna("")
    cat = pd.Series(None, index=features.index, dtype=object)
    cat[features["office"].notna()] = "office"
    cat[features["tourism"].notna() | features["leisure"].notna()] = "leisure"
    cat[amenity.isin(SERVICES)] = "service"
    cat[amenity.isin(FOOD)] = "food"
    cat[features["shop"].notna()] = "shop"
    return cat


def build_layers(*, brand: tuple[str, ...], osm: OSMData | None = None,
                 user: dict[str, gpd.GeoDataFrame] | None = None,
                 user_paths: dict[str, str] | None = None,
                 area: shapely.Geometry | None = None, crs: str | None = None,
                 area_name: str | None = None, admin_level: int | None = None,
                 brand_wikidata: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
                 consume: bool = False) -> Layers:
    """Assemble the study's layers.

    Features are kept wherever the file has them, beyond the study area too,
    so that what a site near the area's border counts is not cut at the border.

    Parameters
    ----------
    brand, brand_wikidata, aliases
        The planner's own brand: see :func:`siteplanner.brands.match_brand`.
        Every other bank is a competitor.
    area_name, admin_level
        The administrative boundary to study (see :func:`siteplanner.area.resolve_area`).
    osm
        What an OSM source read, or None when every layer is a user file.
    user
        User layers by kind, in EPSG:4326 (from :func:`read_layer_file`).
    user_paths
        The file behind each user layer, for provenance.
    area
        The study area in EPSG:4326 when the source provides one (Nominatim).
    crs
        A projected CRS to use instead of the local UTM zone.
    consume
        Empty ``osm``'s tables as each is projected, so that the raw and the projected
        form of only one table are held at once, not of all (on a 100k-candidate city
        the raw tables are about 1 GB): for a caller that owns ``osm``, as the pipeline
        does with :meth:`~siteplanner.sources._osm.OSMData.owned_copy`.
    """
    user, paths = dict(user or {}), user_paths or {}
    chosen = resolve_area(
        boundaries=osm.boundaries if osm is not None else _empty(["name", "admin_level"]),
        extent=osm.extent if osm is not None else None, name=area_name, admin_level=admin_level,
        user=shapely.union_all(user["area"].geometry.values) if "area" in user else None,
        user_path=paths.get("area", ""), online=area)
    area_gdf = gpd.GeoDataFrame({"name": [chosen.name or "study area"]},
                                geometry=[chosen.geometry], crs=4326)
    target = _study_crs(area_gdf, crs)
    sources: dict[str, LayerSource] = {
        "area": LayerSource("user", paths.get("area", "")) if chosen.source == "user" else OSM}
    osm_layers, banks = _osm_point_layers(osm, brand=brand, brand_wikidata=brand_wikidata,
                                          aliases=aliases)
    if osm is not None and consume:
        _taken(osm, "features")  # the point layers hold what they keep of it
    points = _point_layers(osm_layers, user, paths, sources, area=chosen.geometry,
                           has_osm=osm is not None)
    del osm_layers
    if "own_branches" not in user and len(points["own_branches"]) == 0:
        _no_own_branches(brand, banks)
    projected = _projected_points(points, target)
    nodes, edges = _streets(osm, target, sources, consume=consume)
    context = _context(osm, target, consume=consume) if osm is not None else {}
    return Layers(  # the point layers: transit, competitors, own_branches, pois, foot_traffic
        crs=target, area=area_gdf.to_crs(target), street_nodes=nodes, streets=edges, **projected,
        sources=sources, banks_found=sorted(banks["label"].unique()) if banks is not None else [],
        extent=_extent(osm, target), area_name=chosen.name, area_source=chosen.source,
        area_level=chosen.admin_level, **context,
    )


def _context(osm: OSMData, target: CRS, *, consume: bool) -> dict[str, gpd.GeoDataFrame]:
    """The boundaries, places, addresses and blocked land in the study CRS."""
    return {k: _projected(_taken(osm, k) if consume else getattr(osm, k), target)
            for k in ("boundaries", "places", "addresses", "blocked")}


def _extent(osm: OSMData | None, target: CRS) -> shapely.Geometry | None:
    if osm is None or osm.extent is None:
        return None
    return gpd.GeoSeries([osm.extent], crs=4326).to_crs(target).iloc[0]


def _projected_points(points: dict[str, gpd.GeoDataFrame], target: CRS) -> dict[str, gpd.GeoDataFrame]:
    """The point layers (EPSG:4326) in the study CRS, banks labelled; ``points`` is emptied
    as they go."""
    for kind in ("competitors", "own_branches"):
        points[kind] = _labelled(points[kind])
    return {kind: _projected(points.pop(kind), target) for kind in list(points)}


def _projected(gdf: gpd.GeoDataFrame | pd.DataFrame, target: CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=4326).to_crs(target)


def _taken(osm: OSMData, name: str) -> gpd.GeoDataFrame:
    """``osm``'s table ``name``, left empty on ``osm`` (a copy: a slice would hold it all)."""
    table = getattr(osm, name)
    setattr(osm, name, table.iloc[:0].copy())
    return table


def _study_crs(area: gpd.GeoDataFrame, crs: str | None) -> CRS:
    """The study's projected CRS: ``study.crs``, else the UTM zone of ``area``."""
    target = CRS.from_user_input(crs) if crs else area.estimate_utm_crs()
    if not target.is_projected:
        msg = f"study.crs = {crs!r} is not projected; give a metric CRS such as a UTM zone"
        raise CRSError(msg)
    return target


def _no_own_branches(brand: tuple[str, ...], banks: gpd.GeoDataFrame | None) -> NoReturn:
    """Refuse a brand that matches no bank, listing the banks the data has."""
    found = group_listing(banks["label"]) if banks is not None else "none"
    msg = (f"brand {' / '.join(brand)!r} matches no bank in the data; banks found: {found} "
           "(near-duplicate spellings grouped, bank counts in brackets). Set study.brand "
           "(or --brand) to one of them, "
           "add spellings to study.aliases, or give --layer own_branches=FILE")
    raise InputError(msg)


def _streets(osm: OSMData | None, target: CRS, sources: dict[str, LayerSource], *,
             consume: bool = False) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The walking network's nodes and edges in the study CRS (empty without OSM data).

    When every edge is the straight segment between its two nodes (pyrosm's
    network, split at every node), its projected geometry is built from the
    projected nodes: the same coordinates as projecting it (PROJ transforms each
    point alone), without holding the raw and the projected segments at once.
    """
    if osm is None:
        return (gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=target)),
                gpd.GeoDataFrame({"u": [], "v": [], "length": []},
                                 geometry=gpd.GeoSeries([], crs=target)))
    sources["streets"] = OSM
    raw_nodes = _taken(osm, "nodes") if consume else osm.nodes
    raw_edges = _taken(osm, "edges") if consume else osm.edges
    ends = _segment_ends(raw_nodes, raw_edges)
    nodes = _points_to_crs(raw_nodes, target)
    del raw_nodes
    if ends is None:
        return nodes, raw_edges.to_crs(target)
    name = raw_edges.geometry.name
    table = pd.DataFrame(raw_edges.drop(columns=name))
    del raw_edges
    xy = shapely.get_coordinates(nodes.geometry.values)
    segments = shapely.linestrings(np.stack([xy[ends[0]], xy[ends[1]]], axis=1))
    return nodes, gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(segments, index=table.index,
                                                                 crs=target, name=name))


def _points_to_crs(points: gpd.GeoDataFrame, target: CRS) -> gpd.GeoDataFrame:
    """``points.to_crs(target)`` for a table of 2D points: their coordinates projected at once
    and the points built from them (the same coordinates: PROJ projects each point alone),
    without GeoPandas copying every geometry to set its coordinates (twice the time on a
    country's 300k street nodes). Other geometries are projected by GeoPandas."""
    geoms = points.geometry.values
    if points.crs is None or not len(points) or shapely.has_z(geoms).any() or \
            not (shapely.get_type_id(geoms) == shapely.GeometryType.POINT).all() or \
            shapely.is_empty(geoms).any():
        return points.to_crs(target)
    from pyproj import Transformer

    xy = shapely.get_coordinates(geoms)
    x, y = Transformer.from_crs(points.crs, target, always_xy=True).transform(xy[:, 0], xy[:, 1])
    name = points.geometry.name
    return gpd.GeoDataFrame(pd.DataFrame(points.drop(columns=name)), crs=target,
                            geometry=gpd.GeoSeries(shapely.points(x, y), index=points.index,
                                                   crs=target, name=name))


def _segment_ends(nodes: gpd.GeoDataFrame,
                  edges: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The node rows of each edge's ends, when every edge is exactly the segment between
    the coordinates of its nodes ``u`` and ``v`` (else None: its own geometry is projected)."""
    if len(edges) == 0 or len(nodes) == 0 or not nodes.index.is_unique:
        return None
    geoms = edges.geometry.values
    if not (shapely.get_type_id(geoms) == 1).all() or \
            not (shapely.get_num_coordinates(geoms) == 2).all() or shapely.has_z(geoms).any():
        return None
    u, v = nodes.index.get_indexer(edges["u"]), nodes.index.get_indexer(edges["v"])
    if (u < 0).any() or (v < 0).any() or not (shapely.get_type_id(nodes.geometry.values) == 0).all() \
            or shapely.has_z(nodes.geometry.values).any():
        return None
    xy = shapely.get_coordinates(nodes.geometry.values)
    if len(xy) != len(nodes):  # an empty or non-point node
        return None
    coords = shapely.get_coordinates(geoms).reshape(-1, 2, 2)
    same = (coords[:, 0] == xy[u]).all() and (coords[:, 1] == xy[v]).all()
    return (u, v) if same else None


def _empty_points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": pd.Series([], dtype=object)},
                            geometry=gpd.GeoSeries([], crs=4326))


def _osm_point_layers(osm: OSMData | None, *, brand: tuple[str, ...], brand_wikidata: tuple[str, ...],
                      aliases: tuple[str, ...]) -> tuple[dict[str, gpd.GeoDataFrame], Any]:
    """Own branches, competitors, transit stops and POIs classified from OSM, and the banks."""
    if osm is None:
        empty = _empty_points()
        return {k: empty for k in ("own_branches", "competitors", "transit", "pois")}, None
    features = osm.features
    banks = features[features["amenity"] == "bank"].copy()
    banks["label"] = bank_label(banks)
    is_own = match_brand(banks, brand=brand, wikidata=brand_wikidata, aliases=aliases,
                         labels=banks["label"])
    pois = features[~features["amenity"].isin(FINANCE)].copy()
    pois["category"] = _poi_category(pois)
    return {"own_branches": banks[is_own], "competitors": banks[~is_own],
            "transit": classify_transit(features), "pois": pois[pois["category"].notna()]}, banks


def _point_layers(osm_layers: dict[str, gpd.GeoDataFrame], user: dict[str, gpd.GeoDataFrame],
                  paths: dict[str, str], sources: dict[str, LayerSource], *,
                  area: shapely.Geometry, has_osm: bool) -> dict[str, gpd.GeoDataFrame]:
    """Each point layer from the user's file where given, else from OSM (EPSG:4326), noted in ``sources``."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    for kind, osm_layer in osm_layers.items():
        if kind in user:
            layers[kind] = _user_points(kind, user[kind], area)
            sources[kind] = LayerSource("user", paths.get(kind, ""))
        else:
            layers[kind] = osm_layer
            sources[kind] = OSM if has_osm else NONE
    if "mode" not in layers["transit"]:
        if "transit" in user:
            warnings.warn("transit file has no 'mode' column; every stop is treated as a bus stop",
                          UserWarning, stacklevel=3)
        layers["transit"] = layers["transit"].assign(mode="bus")
    if "category" not in layers["pois"]:
        layers["pois"] = layers["pois"].assign(category="shop")
    for kind in ("competitors", "transit", "pois"):
        if len(layers[kind]) == 0:
            warnings.warn(f"layer {kind} is empty: the {kind} criterion is 0 everywhere",
                          UserWarning, stacklevel=3)
    for kind in ("foot_traffic", "candidates"):
        if kind in user:
            layers[kind] = _user_points(kind, user[kind], area)
            sources[kind] = LayerSource("user", paths.get(kind, ""))
    if "foot_traffic" not in user:
        layers["foot_traffic"] = _empty_points().assign(count=pd.Series([], dtype=float))
        sources["foot_traffic"] = PROXY
    return layers


def _labelled(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    gdf = gdf.copy()
    for col in ("brand", "operator", "name"):
        if col not in gdf:
            gdf[col] = None
    gdf["label"] = bank_label(gdf)
    return gdf


def _user_points(kind: str, gdf: gpd.GeoDataFrame, area: shapely.Geometry) -> gpd.GeoDataFrame:
    """Check a user point layer against the study area, catching swapped lon/lat."""
    box = shapely.buffer(shapely.envelope(area), 0.05)
    inside = shapely.contains(box, gdf.geometry.values)
    if not inside.any():
        swapped = shapely.points(shapely.get_coordinates(gdf.geometry.values)[:, ::-1])
        if shapely.contains(box, swapped).mean() > 0.5:
            msg = (f"layer {kind}: no point lies near the study area, but with lon and lat "
                   "swapped they do; swap the coordinate columns in the file")
            raise InputError(msg)
        w, s, e, n = shapely.bounds(area)
        msg = (f"layer {kind}: no point lies within the study area "
               f"({w:.4f}, {s:.4f}, {e:.4f}, {n:.4f}); check the file's CRS and coordinates")
        raise InputError(msg)
    if not inside.all():
        warnings.warn(f"layer {kind}: {int((~inside).sum())} of {len(gdf)} points lie far "
                      "outside the study area and are ignored", UserWarning, stacklevel=3)
    return gdf[inside].copy()
