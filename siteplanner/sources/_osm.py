"""The common shape every OpenStreetMap source returns, whatever it read.

A source (a .pbf through pyrosm, an .osm/.osm.bz2 through osmnx, or Overpass
through osmnx online) returns :class:`OSMData`: tagged features as points in
WGS84 with a fixed set of tag columns, and the walking network as a node and an
edge table. :mod:`siteplanner.layers` turns that into the study's layers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

if TYPE_CHECKING:
    from siteplanner.sources.buildings import Packed

__all__ = [
    "BLOCKED_LAND",
    "CONTEXT_FILTER",
    "FEATURE_TAGS",
    "OSM_FEATURE_FILTER",
    "OSMData",
    "WALK_EXCLUDED_HIGHWAYS",
    "context_tables",
    "normalise_features",
    "tag_column",
]

#: Tag keys kept on every feature; the layer classifiers read only these.
FEATURE_TAGS = (
    "name", "brand", "operator", "amenity", "shop", "office", "tourism", "leisure",
    "highway", "railway", "public_transport", "station", "subway", "train", "tram", "bus",
    "light_rail", "brand:wikidata", "operator:wikidata",
)

#: The OSM tags that select features worth reading for a branch study.
OSM_FEATURE_FILTER: dict[str, bool | list[str]] = {
    "amenity": True,
    "shop": True,
    "office": True,
    "tourism": ["hotel", "museum", "attraction", "gallery"],
    "leisure": ["fitness_centre", "sports_centre"],
    "public_transport": ["platform", "station"],
    "highway": ["bus_stop"],
    "railway": ["station", "halt", "tram_stop", "subway_entrance", "train_station_entrance"],
}

#: Land where no branch can stand, as ``(key, values)``: water, rail yards,
#: parks and cemeteries. These are the OSM wiki's tags for those uses
#: (``natural=water``, ``waterway=riverbank``, ``landuse=reservoir|basin|railway|cemetery``,
#: ``amenity=grave_yard``, ``leisure=park``); a candidate cell whose centre
#: lies in one of them is left out.
BLOCKED_LAND: dict[str, tuple[str, ...]] = {
    "natural": ("water", "wetland", "glacier"),
    "waterway": ("riverbank",),
    "landuse": ("reservoir", "basin", "railway", "cemetery"),
    "amenity": ("grave_yard",),
    "leisure": ("park",),
}

#: Place kinds that name a district, from the largest to the smallest.
PLACE_KINDS = ("city", "town", "suburb", "quarter", "village", "neighbourhood", "hamlet")

#: The OSM tags a study's context is read from: the administrative
#: boundaries (the study area, districts), ``place=*`` nodes (districts),
#: addresses, and the land where no branch can stand.
CONTEXT_FILTER: dict[str, bool | list[str]] = {
    "boundary": ["administrative"],
    "place": list(PLACE_KINDS),
    "addr:housenumber": True,
    **{k: list(v) for k, v in BLOCKED_LAND.items()},
}

#: Highway values that are not walkable (used when filtering raw ways).
WALK_EXCLUDED_HIGHWAYS = frozenset({
    "motorway", "motorway_link", "trunk", "trunk_link", "construction", "proposed",
    "raceway", "bus_guideway", "abandoned", "platform",
})


@dataclass
class OSMData:
    """What an OSM source read.

    Attributes
    ----------
    features
        Points in EPSG:4326, one per tagged element, with ``osm_id`` and the
        :data:`FEATURE_TAGS` columns (strings or missing). Areas are
        represented by a point inside them.
    nodes
        Walking-network nodes in EPSG:4326, indexed by OSM node id.
    edges
        Walking-network edges in EPSG:4326 with ``u``, ``v`` and ``length`` (m).
    data_date
        The newest element timestamp (ISO 8601) where the source records one.
    boundaries
        Administrative boundary polygons (``name``, ``admin_level`` as int),
        EPSG:4326; empty when the extract holds none (city clips rarely do).
    places
        ``place=*`` points (``name``, ``place``), EPSG:4326.
    addresses
        Points with ``street`` and ``housenumber`` (buildings and entrances
        are represented by a point inside them), EPSG:4326.
    blocked
        Polygons of :data:`BLOCKED_LAND` with ``kind`` (``natural=water``...), EPSG:4326.
    extent
        The area the file holds data for (EPSG:4326): the convex hull of its
        street nodes and features, or the polygon an online source was asked for.
    buildings, landuse
        Building footprints and ``landuse`` polygons (EPSG:4326, the columns of
        :func:`siteplanner.sources.buildings.read_buildings` / ``read_landuse``)
        when the source read them: a GeoDataFrame (online studies) or packed as
        WKB (:class:`siteplanner.sources.buildings.Packed`, a ``.pbf`` read, whose
        parse gives them for little); None when they are to be read from the
        file when the demand model needs them (``.osm`` files).
    """

    features: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    data_date: str | None = None
    boundaries: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["name", "admin_level"]))
    places: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["name", "place"]))
    addresses: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["street", "housenumber"]))
    blocked: gpd.GeoDataFrame = field(default_factory=lambda: _empty(["kind"]))
    extent: shapely.Geometry | None = None
    buildings: gpd.GeoDataFrame | Packed | None = None
    landuse: gpd.GeoDataFrame | Packed | None = None

    def __post_init__(self) -> None:
        if self.extent is None:
            pts = np.concatenate([self.nodes.geometry.values, self.features.geometry.values])
            if len(pts):
                self.extent = shapely.convex_hull(shapely.multipoints(pts))

    def owned_copy(self) -> OSMData:
        """A new ``OSMData`` holding the same tables, for a caller to empty as it goes
        (``build_layers(consume=True)``) without touching a read others may hold: once
        nothing else holds the original, each table is freed as the copy lets it go."""
        return dataclasses.replace(self)

    def kept_after_layers(self) -> OSMData:
        """What a run still reads once its layers are built: the date, the extent, and the
        buildings and land use an online source read; the tables are left empty.

        The layers hold their own projected copies, so the run drops the raw
        tables (about 0.9 GB on a 100k-candidate city) rather than carry them to the end.
        """
        def empty(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
            return frame.iloc[:0].copy()  # a copy: a slice's view would hold the whole table

        return OSMData(features=empty(self.features), nodes=empty(self.nodes), edges=empty(self.edges),
                       data_date=self.data_date, extent=self.extent, buildings=self.buildings,
                       landuse=self.landuse)


def _empty(columns: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: pd.Series([], dtype=object) for c in columns},
                            geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def tag_columns(df: pd.DataFrame, keys: Iterable[str]) -> dict[str, pd.Series]:
    """The values of several tags: each its column, else what a JSON ``tags`` column holds.

    Each row's JSON is parsed once for all ``keys`` and only their values are kept: a
    country's context holds hundreds of thousands of rows, and parsing them again for
    every key was most of reading a large extract.
    """
    keys = list(dict.fromkeys(keys))
    cols = {k: df[k] if k in df.columns else pd.Series(None, index=df.index, dtype=object)
            for k in keys}
    need = [k for k in keys if "tags" in df.columns and cols[k].isna().any()]
    if need:
        values: dict[str, list[str | None]] = {k: [] for k in need}
        for raw in df["tags"].to_numpy(dtype=object):
            tags = _parse_tags(raw)
            for k in need:
                values[k].append(tags.get(k))
        for k in need:
            cols[k] = cols[k].where(cols[k].notna(),
                                    pd.Series(values[k], index=df.index, dtype=object))
    return {k: c.astype(object).where(c.notna(), None) for k, c in cols.items()}


def tag_column(df: pd.DataFrame, key: str) -> pd.Series:
    """The values of tag ``key``: its column, else what a JSON ``tags`` column holds for it."""
    return tag_columns(df, [key])[key]


def context_tables(raw: gpd.GeoDataFrame | None, *,
                   boundaries: gpd.GeoDataFrame | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Split raw tagged elements read with :data:`CONTEXT_FILTER` into the context tables.

    Parameters
    ----------
    raw
        Elements with one column per tag (or a JSON ``tags`` column), any CRS.
    boundaries
        Administrative boundaries read separately (pyrosm assembles them with
        ``get_boundaries``); else they are taken from ``raw``.

    Returns
    -------
    dict
        ``boundaries``, ``places``, ``addresses`` and ``blocked``, as in :class:`OSMData`.
    """
    if raw is None or len(raw) == 0:
        raw = _empty([])
    raw = raw.to_crs(4326) if raw.crs is not None else raw.set_crs(4326)
    geom = raw.geometry
    poly = geom.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    out: dict[str, gpd.GeoDataFrame] = {}
    b = raw if boundaries is None else boundaries.to_crs(4326)
    b_poly = b.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    bt = tag_columns(b, ["admin_level", "boundary", "name"])
    rt = tag_columns(raw, ["place", "name", "addr:street", "addr:housenumber", *BLOCKED_LAND])
    level = pd.to_numeric(bt["admin_level"], errors="coerce")
    keep = b_poly & (bt["boundary"] == "administrative").to_numpy() & level.notna().to_numpy()
    out["boundaries"] = gpd.GeoDataFrame(
        {"name": bt["name"][keep].to_numpy(), "admin_level": level[keep].astype(int).to_numpy()},
        geometry=shapely.make_valid(b.geometry.values[keep]), crs=4326)
    place, name = rt["place"], rt["name"]
    is_place = place.isin(PLACE_KINDS).to_numpy() & name.notna().to_numpy()
    out["places"] = gpd.GeoDataFrame(
        {"name": name[is_place].to_numpy(), "place": place[is_place].to_numpy()},
        geometry=_points(geom.values[is_place]), crs=4326)
    street, number = rt["addr:street"], rt["addr:housenumber"]
    is_addr = street.notna().to_numpy() & number.notna().to_numpy()
    out["addresses"] = gpd.GeoDataFrame(
        {"street": street[is_addr].to_numpy(), "housenumber": number[is_addr].to_numpy()},
        geometry=_points(geom.values[is_addr]), crs=4326)
    kind = pd.Series(None, index=raw.index, dtype=object)
    for key, values in BLOCKED_LAND.items():
        v = rt[key]
        hit = v.isin(values) & kind.isna()
        kind[hit] = key + "=" + v[hit].astype(str)
    is_blocked = kind.notna().to_numpy() & poly
    out["blocked"] = gpd.GeoDataFrame(
        {"kind": kind[is_blocked].to_numpy()},
        geometry=shapely.make_valid(geom.values[is_blocked]), crs=4326)
    return out


def _points(geoms: np.ndarray) -> np.ndarray:
    kinds = shapely.get_type_id(geoms)
    return np.where(kinds == 0, geoms, shapely.point_on_surface(geoms))


def normalise_features(gdf: gpd.GeoDataFrame, *, id_column: str | None = None) -> gpd.GeoDataFrame:
    """Reduce a raw tagged GeoDataFrame to points with the :data:`FEATURE_TAGS` columns.

    Tags that a reader left inside a JSON ``tags`` column (as pyrosm does for
    keys it has no column for) are unpacked first.
    """
    out = pd.DataFrame(index=gdf.index)
    out["osm_id"] = (gdf[id_column] if id_column else pd.Series(gdf.index, index=gdf.index)
                     ).astype(str)
    for key, col in tag_columns(gdf, FEATURE_TAGS).items():
        out[key] = col
    geom = gdf.geometry.to_crs(4326) if gdf.crs is not None else gdf.geometry
    pts = geom.where(geom.geom_type == "Point", geom.representative_point())
    res = gpd.GeoDataFrame(out, geometry=pts.values, crs=4326)
    res = res[~res.geometry.is_empty & res.geometry.notna()]
    return res.reset_index(drop=True)


def _parse_tags(v: object) -> dict[str, str]:
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    if isinstance(v, str) and v.startswith("{"):
        try:
            d = json.loads(v)
        except json.JSONDecodeError:
            return {}
        return {str(k): str(x) for k, x in d.items()} if isinstance(d, dict) else {}
    return {}
