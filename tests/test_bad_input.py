"""Every input a planner controls: a bad one gets one line, exit 1, and no output."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import STUDY, absolute_study_text

from siteplanner.cli import app


@pytest.fixture(scope="module")
def banks(helsinki_osm) -> gpd.GeoDataFrame:
    """The real banks of the bundled city, as a user's competitor list would hold them."""
    f = helsinki_osm.features
    return f[f["amenity"] == "bank"][["name", "operator", "geometry"]].reset_index(drop=True)


def run(runner, tmp_path, *args: str):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), *args])
    return res, out


def assert_clean_failure(res, out, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in res.output + res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_missing_layer_file(runner, tmp_path):
    res, out = run(runner, tmp_path, "--layer", f"competitors={tmp_path / 'nope.csv'}")
    assert_clean_failure(res, out, "nope.csv", "file not found")


def test_unknown_format(runner, tmp_path):
    p = tmp_path / "banks.xlsx"
    p.write_bytes(b"PK\x03\x04")
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "banks.xlsx", "unknown format", ".geojson")


def test_unreadable_file(runner, tmp_path):
    p = tmp_path / "banks.gpkg"
    p.write_text("this is not a geopackage")
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "banks.gpkg", "cannot read as GeoPackage")


def test_file_without_crs(runner, tmp_path, banks):
    p = tmp_path / "banks.gpkg"
    banks.set_crs(None, allow_override=True).to_file(p, driver="GPKG")
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "banks.gpkg", "no CRS")


def test_swapped_lon_lat(runner, tmp_path, banks):
    # Helsinki: lon 24.9, lat 60.2; written the wrong way round
    p = tmp_path / "banks.csv"
    pd.DataFrame({"name": banks["name"], "lon": banks.geometry.y,
                  "lat": banks.geometry.x}).to_csv(p, index=False)
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "competitors", "swapped")


def test_latitude_out_of_range(runner, tmp_path, banks):
    p = tmp_path / "banks.csv"
    pd.DataFrame({"lon": banks.geometry.x, "lat": banks.geometry.y + 100}).to_csv(p, index=False)
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "banks.csv", "swapped")


def test_csv_without_lon_lat_columns(runner, tmp_path, banks):
    p = tmp_path / "banks.csv"
    pd.DataFrame({"x": banks.geometry.x, "y": banks.geometry.y}).to_csv(p, index=False)
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "no column 'lon'", "lon_column")


def test_empty_layer(runner, tmp_path):
    p = tmp_path / "banks.csv"
    p.write_text("name,lon,lat\n")
    res, out = run(runner, tmp_path, "--layer", f"competitors={p}")
    assert_clean_failure(res, out, "banks.csv", "no features")


def test_unknown_brand_lists_the_brands_found(runner, tmp_path):
    res, out = run(runner, tmp_path, "--brand", "Bank of Atlantis")
    assert_clean_failure(res, out, "Bank of Atlantis", "banks found:", "Nordea", "Aktia")


def test_invalid_area_geometry_is_repaired_with_a_warning(runner, tmp_path, helsinki_osm):
    # a bow-tie over the real extract: invalid, make_valid turns it into two triangles
    w, s, e, n = helsinki_osm.nodes.total_bounds
    bowtie = shapely.Polygon([(w, s), (e, n), (e, s), (w, n), (w, s)])
    assert not bowtie.is_valid
    p = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[bowtie], crs=4326).to_file(p, driver="GeoJSON")
    res, out = run(runner, tmp_path, "--layer", f"area={p}", "--top", "3", "--no-report")
    assert res.exit_code == 0, res.output
    assert "repaired 1 invalid geometries" in res.stderr
    assert (out / "ranked_sites.csv").exists()


def test_unknown_criterion_in_set(runner, tmp_path):
    res, out = run(runner, tmp_path, "--set", "criteria.parking.weight=0.5")
    assert_clean_failure(res, out, "parking", "foot_traffic, transit")


def test_negative_weight(runner, tmp_path):
    res, out = run(runner, tmp_path, "--set", "criteria.transit.weight=-1")
    assert_clean_failure(res, out, "criteria.transit.weight", ">= 0")


def test_negative_radius(runner, tmp_path):
    res, out = run(runner, tmp_path, "--set", "criteria.commercial.radius_m=-50")
    assert_clean_failure(res, out, "criteria.commercial.radius_m", "> 0 (metres)")


def test_negative_radius_in_the_study_file(runner, tmp_path):
    bad = absolute_study_text().replace("radius_m = 400", "radius_m = -400", 1)
    p = tmp_path / "study.toml"
    p.write_text(bad)
    res = runner.invoke(app, ["rank", str(p), "--out", str(tmp_path / "out")])
    assert_clean_failure(res, tmp_path / "out", "study.toml", "criteria.transit.radius_m")


def test_unknown_study_setting_names_the_known_ones(runner, tmp_path):
    p = tmp_path / "study.toml"
    p.write_text('[study]\nbrand = "Nordea"\nosm = "x.pbf"\n[selection]\ntopk = 3\n')
    res = runner.invoke(app, ["rank", str(p), "--out", str(tmp_path / "out")])
    assert_clean_failure(res, tmp_path / "out", "selection.topk", "selection.top_k")


def test_missing_study_file(runner, tmp_path):
    res = runner.invoke(app, ["rank", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")])
    assert_clean_failure(res, tmp_path / "o", "none.toml", "not found")


def test_output_folder_that_cannot_be_written(runner, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    res, _ = run(runner, tmp_path, "--out", str(blocker / "out"))
    assert_clean_failure(res, blocker / "out", "a_file", "not a folder")


def test_a_failed_run_leaves_the_previous_good_output_untouched(runner, tmp_path, demo_out):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo_out, out)  # a good run's output, floor plans included

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    before = files()
    assert "floorplans" in {p.name for p in out.iterdir()}
    bad = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--brand", "Nobody"])
    assert bad.exit_code == 1
    assert files() == before
    assert not list(tmp_path.glob(".siteplanner-*"))


def test_debug_shows_the_traceback(runner, tmp_path):
    from siteplanner._errors import InputError

    res = runner.invoke(app, ["--debug", "rank", str(STUDY), "--out", str(tmp_path / "o"),
                              "--brand", "Nobody"])
    assert res.exit_code != 0
    assert isinstance(res.exception, InputError)


@pytest.mark.parametrize(("section", "needle"), [
    ('[floorplan]\noutline = "nowhere.geojson"\nentrances = [[1, 0]]\n', "floorplan.outline"),
    ('[floorplan]\noutline = "branch_outline.geojson"\nentrances = "door"\n',
     "floorplan.entrances"),
    ('[floorplan]\noutline = "branch_outline.geojson"\nentrances = [[14, 0]]\nsites = 0\n',
     "floorplan.sites"),
])
def test_bad_floorplan_settings(runner, tmp_path, section, needle):
    import shutil

    shutil.copy(STUDY.parent / "branch_outline.geojson", tmp_path)
    text = STUDY.read_text().split("[floorplan]")[0]
    p = tmp_path / "study.toml"
    p.write_text(text + section)
    res = runner.invoke(app, ["rank", str(p), "--out", str(tmp_path / "out")])
    assert_clean_failure(res, tmp_path / "out", needle)


def test_an_entrance_off_the_wall_names_the_distance(runner, tmp_path):
    import shutil

    shutil.copy(STUDY.parent / "branch_outline.geojson", tmp_path)
    text = STUDY.read_text().replace("entrances = [[14.0, 0.0]]", "entrances = [[14.0, 3.0]]")
    p = tmp_path / "study.toml"
    p.write_text(text.replace('osm = "helsinki.osm.pbf"',
                              f'osm = "{STUDY.parent / "helsinki.osm.pbf"}"'))
    res = runner.invoke(app, ["rank", str(p), "--out", str(tmp_path / "out"), "--top", "2"])
    assert_clean_failure(res, tmp_path / "out", "entrance", "3.0")
