"""Read a user's own file for one layer: GeoJSON, GeoPackage, GeoParquet or CSV."""

from __future__ import annotations

import warnings
from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner._errors import CRSError, InputError
from siteplanner.config import LayerFile

__all__ = ["SUFFIXES", "read_layer_file"]

SUFFIXES = {
    ".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
    ".parquet": "GeoParquet", ".geoparquet": "GeoParquet", ".csv": "CSV",
}


def read_layer_file(spec: LayerFile) -> gpd.GeoDataFrame:
    """Read, check and return a user layer in EPSG:4326.

    Point layers keep one point per row (areas become a point inside them);
    the ``area`` layer keeps its polygons. Invalid geometries are repaired with
    a warning.
    """
    path = spec.path
    label = f"layer {spec.kind} ({path})"
    if not path.is_file():
        msg = f"{label}: file not found; check the path in --layer {spec.kind}=FILE or [layers.{spec.kind}]"
        raise InputError(msg)
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        msg = (f"{label}: unknown format {path.suffix!r}; "
               f"use one of {', '.join(sorted(SUFFIXES))}")
        raise InputError(msg)
    try:
        if spec.locations is not None:
            gdf = _read_hourly(spec, label)
        elif fmt == "CSV":
            gdf = _read_csv(spec, label)
        elif fmt == "GeoParquet":
            gdf = gpd.read_parquet(path)
        else:
            gdf = gpd.read_file(path, engine="pyogrio")
    except InputError:
        raise
    except Exception as e:  # pyogrio/pyarrow raise many kinds for unreadable files
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        msg = f"{label}: cannot read as {fmt} ({first}); check the file is a valid {fmt}"
        raise InputError(msg) from None
    if len(gdf) == 0:
        msg = f"{label}: the file has no features; give a file with at least one row"
        raise InputError(msg)
    if gdf.crs is None:
        msg = (f"{label}: the file has no CRS; set one in the file "
               "(e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg in.gpkg) or give a CSV with lon/lat")
        raise CRSError(msg)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if len(gdf) == 0:
        msg = f"{label}: every geometry is empty; give features with coordinates"
        raise InputError(msg)
    bad = ~gdf.geometry.is_valid
    if bad.any():
        warnings.warn(f"{label}: repaired {int(bad.sum())} invalid geometries with make_valid",
                      UserWarning, stacklevel=2)
        gdf = gdf.set_geometry(gdf.geometry.make_valid())
    gdf = gdf.to_crs(4326)
    _check_range(gdf, label)
    if spec.kind == "area":
        polys = gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon", "GeometryCollection"])]
        if len(polys) == 0:
            msg = f"{label}: the study area must be polygons, not {gdf.geom_type.iloc[0]}"
            raise InputError(msg)
        return polys
    if spec.kind == "foot_traffic":
        # hourly series arrive already averaged into a "count" column
        gdf = _counts(gdf, replace(spec, count_column="count") if spec.locations else spec, label)
    pts = gdf.geometry.where(gdf.geom_type == "Point", gdf.geometry.representative_point())
    return gdf.set_geometry(pts)


def _read_csv(spec: LayerFile, label: str) -> gpd.GeoDataFrame:
    try:
        df = pd.read_csv(spec.path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        msg = f"{label}: cannot read as CSV ({e}); check the file"
        raise InputError(msg) from None
    missing = [c for c in (spec.lon_column, spec.lat_column) if c not in df.columns]
    if missing:
        msg = (f"{label}: no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))}); "
               f"name the columns lon/lat or set layers.{spec.kind}.lon_column/lat_column")
        raise InputError(msg)
    lon = pd.to_numeric(df[spec.lon_column], errors="coerce")
    lat = pd.to_numeric(df[spec.lat_column], errors="coerce")
    bad = lon.isna() | lat.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        msg = (f"{label}: line {row} has a lon/lat that is not a number; "
               "fix or remove that row")
        raise InputError(msg)
    if ((lat.abs() > 90) & (lon.abs() <= 90)).any():
        msg = (f"{label}: latitudes beyond ±90 in column {spec.lat_column!r} while longitudes fit; "
               "lon and lat look swapped: swap the column names or set lon_column/lat_column")
        raise InputError(msg)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def _read_hourly(spec: LayerFile, label: str) -> gpd.GeoDataFrame:
    """Hourly counts per counter, averaged to a daily mean over complete days."""
    from siteplanner.counts import daily_mean_counts

    assert spec.locations is not None
    if not spec.locations.is_file():
        msg = f"{label}: locations file {spec.locations} not found; check layers.foot_traffic.locations"
        raise InputError(msg)
    try:
        hourly = pd.read_csv(spec.path)
        where = pd.read_csv(spec.locations)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        msg = f"{label}: cannot read the hourly counts or their locations as CSV ({e})"
        raise InputError(msg) from None
    return daily_mean_counts(hourly, where, counter_column=spec.counter_column,
                             time_column=spec.time_column, count_column=spec.count_column,
                             lon_column=spec.lon_column, lat_column=spec.lat_column)


def _check_range(gdf: gpd.GeoDataFrame, label: str) -> None:
    w, s, e, n = gdf.total_bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        msg = (f"{label}: coordinates out of range (bounds {w:.4g}, {s:.4g}, {e:.4g}, {n:.4g}) "
               "after converting to lon/lat; check the file's CRS and the lon/lat order")
        raise CRSError(msg)


def _counts(gdf: gpd.GeoDataFrame, spec: LayerFile, label: str) -> gpd.GeoDataFrame:
    col = spec.count_column
    if col not in gdf.columns:
        msg = (f"{label}: no {col!r} column for the measured counts "
               f"(columns: {', '.join(c for c in gdf.columns if c != 'geometry')}); "
               "add it or set layers.foot_traffic.count_column")
        raise InputError(msg)
    counts = pd.to_numeric(gdf[col], errors="coerce")
    if counts.isna().any() or (counts < 0).any():
        msg = f"{label}: column {col!r} must hold counts >= 0 in every row; fix or remove the others"
        raise InputError(msg)
    out = gdf.copy()
    out["count"] = counts.astype(float)
    return out
