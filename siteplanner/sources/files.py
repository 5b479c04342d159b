"""Read a user's own file for one layer: GeoJSON, GeoPackage, GeoParquet or CSV.

Every coordinate and count must be a finite number: a NaN or an infinity is
refused with the file and the row, before any geometry operation could trip
over it. Data quoted in a message (column names, layer names) is shown with
``repr`` so that a message stays one line.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

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
    if spec.layer is not None and fmt in ("CSV", "GeoParquet"):
        msg = f"{label}: a {fmt} file has one table; drop layer = {spec.layer!r}"
        raise InputError(msg)
    gdf = _read(spec, label, fmt)
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
    _check_finite(gdf, label)
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


def _read(spec: LayerFile, label: str, fmt: str) -> gpd.GeoDataFrame:
    try:
        if spec.locations is not None:
            return _read_hourly(spec, label)
        if fmt == "CSV":
            return _read_csv(spec, label)
        if fmt == "GeoParquet":
            return gpd.read_parquet(spec.path)
        return gpd.read_file(spec.path, engine="pyogrio", layer=_layer_name(spec, label, fmt))
    except InputError:
        raise
    except Exception as e:  # pyogrio/pyarrow raise many kinds for unreadable files
        msg = f"{label}: cannot read as {fmt} ({_one_line(e)}); check the file is a valid {fmt}"
        raise InputError(msg) from None


def _one_line(text: object) -> str:
    """A library's message cut to its first line."""
    lines = str(text).splitlines()
    return lines[0] if lines else type(text).__name__


def _layer_name(spec: LayerFile, label: str, fmt: str) -> str | None:
    """The layer to read: the one asked for, or the only one; several without a choice fail."""
    import pyogrio

    names = [str(n) for n in pyogrio.list_layers(spec.path)[:, 0]]
    if spec.layer is not None:
        if spec.layer not in names:
            msg = (f"{label}: no layer {spec.layer!r} in the {fmt}; "
                   f"its layers are {', '.join(map(repr, names))}")
            raise InputError(msg)
        return spec.layer
    if len(names) > 1:
        msg = (f"{label}: the {fmt} holds {len(names)} layers ({', '.join(map(repr, names[:8]))}); "
               f"choose one with layer = \"NAME\" under [layers.{spec.kind}] "
               f"or --layer {spec.kind}=FILE:NAME")
        raise InputError(msg)
    return None


def _separator_hint(path: Any) -> str:
    """A hint when the header looks separated by something other than commas."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline()
    except OSError:
        return ""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if sep in header and "," not in header:
            return (f"; the header is separated by {name}: save the file with commas "
                    "between columns (and points as decimal marks)")
    return ""


def _first_bad_row(bad: pd.Series) -> int:
    """The file line of the first flagged row (line 1 is the header)."""
    return int(np.flatnonzero(bad.to_numpy())[0]) + 2


def _read_csv(spec: LayerFile, label: str) -> gpd.GeoDataFrame:
    try:
        df = pd.read_csv(spec.path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        msg = f"{label}: cannot read as CSV ({_one_line(e)}); check the file"
        raise InputError(msg) from None
    missing = [c for c in (spec.lon_column, spec.lat_column) if c not in df.columns]
    if missing:
        cols = ", ".join(repr(str(c)) for c in df.columns[:20])
        msg = (f"{label}: no column {missing[0]!r} (columns: {cols}); "
               f"name the columns lon/lat or set layers.{spec.kind}.lon_column/lat_column"
               f"{_separator_hint(spec.path)}")
        raise InputError(msg)
    lon = _numbers(df[spec.lon_column])
    lat = _numbers(df[spec.lat_column])
    bad = lon.isna() | lat.isna()
    if bad.any():
        msg = (f"{label}: line {_first_bad_row(bad)} has a lon/lat that is not a number; "
               "fix or remove that row")
        raise InputError(msg)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        msg = (f"{label}: line {_first_bad_row(bad)} has a lon/lat that is not finite "
               "(inf or NaN); give coordinates in degrees or remove that row")
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


def _numbers(values: pd.Series) -> pd.Series:
    """A column as floats; text that is not a number (and a missing value) becomes NaN.

    ``pd.to_numeric`` keeps the words "inf" and "nan" as numbers; "nan" counts as
    missing here, "inf" stays infinite for the finiteness check to name it.
    """
    if values.dtype == object:
        text = values.astype(str).str.strip()
        values = values.where(~text.str.fullmatch(r"[+-]?nan", case=False))
    return pd.to_numeric(values, errors="coerce").astype(float)


def _check_finite(gdf: gpd.GeoDataFrame, label: str) -> None:
    """Refuse a geometry with a NaN or infinite coordinate, naming the feature."""
    coords, index = shapely.get_coordinates(gdf.geometry.values, include_z=True,
                                            return_index=True)
    finite = np.isfinite(coords[:, :2]).all(axis=1)
    if gdf.geometry.has_z.any():
        finite &= ~np.isinf(coords[:, 2])  # a missing z is NaN: only infinity is wrong
    if not finite.all():
        row = int(index[np.flatnonzero(~finite)[0]])
        msg = (f"{label}: feature {row + 1} has a coordinate that is not a finite number "
               "(NaN or inf); fix or remove that feature")
        raise InputError(msg)


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
               f"(columns: {', '.join(repr(str(c)) for c in gdf.columns[:20] if c != 'geometry')}); "
               "add it or set layers.foot_traffic.count_column")
        raise InputError(msg)
    counts = _numbers(gdf[col])
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        label_of = gdf.index[first]
        where = (f"line {label_of + 2}" if spec.path.suffix.lower() == ".csv"
                 and isinstance(label_of, int | np.integer) else f"feature {first + 1}")
        value = repr(gdf[col].iloc[first])[:40]
        msg = (f"{label}: {where} has {col} = {value}; every count must be a finite "
               "number >= 0 (visits per day); fix or remove that row")
        raise InputError(msg)
    out = gdf.copy()
    out["count"] = counts.astype(float)
    return out
