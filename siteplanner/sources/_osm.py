"""The common shape every OpenStreetMap source returns, whatever it read.

A source (a .pbf through pyrosm, an .osm/.osm.bz2 through osmnx, or Overpass
through osmnx online) returns :class:`OSMData`: tagged features as points in
WGS84 with a fixed set of tag columns, and the walking network as a node and an
edge table. :mod:`siteplanner.layers` turns that into the study's layers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

__all__ = [
    "FEATURE_TAGS",
    "OSM_FEATURE_FILTER",
    "OSMData",
    "WALK_EXCLUDED_HIGHWAYS",
    "normalise_features",
]

#: Tag keys kept on every feature; the layer classifiers read only these.
FEATURE_TAGS = (
    "name", "brand", "operator", "amenity", "shop", "office", "tourism", "leisure",
    "highway", "railway", "public_transport", "station", "subway", "train", "tram", "bus",
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
    "railway": ["station", "halt", "tram_stop", "subway_entrance"],
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
    """

    features: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    data_date: str | None = None


def normalise_features(gdf: gpd.GeoDataFrame, *, id_column: str | None = None) -> gpd.GeoDataFrame:
    """Reduce a raw tagged GeoDataFrame to points with the :data:`FEATURE_TAGS` columns.

    Tags that a reader left inside a JSON ``tags`` column (as pyrosm does for
    keys it has no column for) are unpacked first.
    """
    df = gdf.copy()
    if "tags" in df.columns:
        extra = df["tags"].map(_parse_tags)
        for key in FEATURE_TAGS:
            from_json = extra.map(lambda t, k=key: t.get(k))
            df[key] = df[key].where(df[key].notna(), from_json) if key in df else from_json
    out = pd.DataFrame(index=df.index)
    out["osm_id"] = (df[id_column] if id_column else pd.Series(df.index, index=df.index)).astype(str)
    for key in FEATURE_TAGS:
        col = df[key] if key in df.columns else pd.Series(np.nan, index=df.index, dtype=object)
        out[key] = col.astype(object).where(col.notna(), None)
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
