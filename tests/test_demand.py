"""Residents and workers from real OSM buildings, and the census and raster overrides."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.stats import spearmanr

from siteplanner._errors import CRSError, InputError
from siteplanner.candidates import h3_candidates
from siteplanner.demand import (
    DEMAND_UNIT,
    M2_PER_RESIDENT,
    NET_TO_GROSS,
    building_people,
    census_counts,
    classify_use,
    combined_demand,
    criteria_correlation,
    demand_layer,
    raster_counts,
    read_census,
    residents_workers,
)
from siteplanner.sources.buildings import read_buildings, read_landuse

ANDORRA = Path("/work/shared/data/andorra-2022-02.osm.pbf")
PARISH_CSV = Path("/work/shared/data/andorra_parish_population_2022.csv")
HELSINKI = Path(__file__).resolve().parent.parent / "data" / "helsinki" / "helsinki.osm.pbf"
needs_andorra = pytest.mark.skipif(not ANDORRA.is_file(), reason="Andorra extract not here")


@pytest.fixture(scope="module")
def andorra():
    buildings, landuse = read_buildings(ANDORRA), read_landuse(ANDORRA)
    import pyrosm

    bounds = pyrosm.OSM(str(ANDORRA)).get_boundaries()
    parishes = bounds[bounds["admin_level"].astype(str) == "7"][["name", "geometry"]]
    official = pd.read_csv(PARISH_CSV).set_index("parish")["population_2022_12_31"]
    return buildings, landuse, parishes.reset_index(drop=True), official


@pytest.fixture(scope="module")
def helsinki_cells():
    buildings = read_buildings(HELSINKI)
    crs = buildings.estimate_utm_crs()
    hull = gpd.GeoDataFrame(geometry=[buildings.to_crs(crs).union_all().convex_hull.buffer(400)],
                            crs=crs)
    return h3_candidates(hull, resolution=9), buildings


def _per_parish(people: gpd.GeoDataFrame, parishes: gpd.GeoDataFrame) -> pd.DataFrame:
    pts = people.assign(geometry=people.geometry.representative_point())
    joined = pts.sjoin(parishes.to_crs(people.crs), predicate="within")
    return joined.groupby("name")[["residents", "workers"]].sum()


@needs_andorra
def test_andorra_residents_rank_the_parishes_like_the_census(andorra):
    """Densities from published sources, never fitted: parishes rank as in the 2022 census."""
    buildings, landuse, parishes, official = andorra
    people = building_people(buildings, crs=buildings.estimate_utm_crs(), landuse=landuse)
    est = _per_parish(people, parishes).join(official, how="inner")
    assert len(est) == 7
    rho = spearmanr(est["residents"], est["population_2022_12_31"])[0]
    ratio = est["residents"].sum() / official.sum()
    assert rho >= 0.85
    assert 0.5 <= ratio <= 1.5


@needs_andorra
def test_census_parishes_interpolate_onto_cells_and_keep_their_total(andorra):
    """Real parish polygons with the official counts, areally interpolated with tobler."""
    _, _, parishes, official = andorra
    census = parishes.merge(official.rename("population"), left_on="name", right_index=True)
    crs = census.estimate_utm_crs()
    cells = h3_candidates(census.to_crs(crs), resolution=7)
    got = census_counts(cells, census, path="parishes")
    assert got.index.equals(cells.index)
    # cells whose centre lies in the country cover nearly all of it
    assert got.sum() == pytest.approx(official.sum(), rel=0.1)
    centre = cells.geometry.within(census.to_crs(crs).union_all())
    assert got[centre].gt(0).mean() > 0.9


def test_floor_area_uses_levels_then_height_then_the_type_default():
    b = gpd.GeoDataFrame(
        {"building": ["apartments", "apartments", "apartments", "garage"],
         "building:levels": ["5", None, None, "1"], "height": [None, "15.5 m", None, None]},
        geometry=[shapely.box(0, 0, 10, 10)] * 4, crs=3067)
    people = building_people(b, crs=3067)
    assert people["levels"].tolist() == [5, 5, 4, 1]
    assert people["levels_source"].tolist() == ["tag", "height", "default", "tag"]
    assert people["residents"].iloc[0] == pytest.approx(100 * 5 * NET_TO_GROSS / M2_PER_RESIDENT)
    assert people.loc[3, ["residents", "workers"]].sum() == 0  # nobody lives in a garage


def test_hotels_hold_workers_not_residents_and_offices_hold_workers():
    b = gpd.GeoDataFrame(
        {"building": ["yes", "hotel", "office", "house"], "tourism": ["hotel", None, None, None],
         "building:levels": ["4", "4", "4", "2"]},
        geometry=[shapely.box(0, 0, 20, 20)] * 4, crs=3067)
    people = building_people(b, crs=3067)
    assert people["use"].tolist() == ["hotel", "hotel", "office", "residential"]
    assert (people["residents"].iloc[:3] == 0).all()
    assert (people["workers"].iloc[:3] > 0).all()
    assert people["workers"].iloc[3] == 0


def test_landuse_gives_untyped_buildings_their_use():
    b = gpd.GeoDataFrame({"building": ["yes", "yes"]},
                         geometry=[shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10)],
                         crs=3067)
    lu = gpd.GeoDataFrame({"landuse": ["industrial"]}, geometry=[shapely.box(-5, -5, 50, 50)],
                          crs=3067)
    assert classify_use(b, landuse=lu).tolist() == ["industrial", "untyped"]


def test_cells_share_the_buildings_people_without_losing_any(helsinki_cells):
    cells, buildings = helsinki_cells
    rw = residents_workers(cells, buildings)
    people = building_people(buildings, crs=cells.crs)
    assert rw.index.equals(cells.index)
    assert rw["residents"].sum() == pytest.approx(people["residents"].sum(), rel=0.01)
    assert rw["workers"].sum() > 1000  # a city centre full of offices and shops
    assert (rw[["residents", "workers"]] >= 0).all().all()


def test_raster_sums_people_per_cell(tmp_path, helsinki_cells):
    """A GeoTIFF in the real Finnish grid (EPSG:3067) of 100 m pixels, 10 people each."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    cells, _ = helsinki_cells
    box = gpd.GeoSeries(cells["cell"]).to_crs(3067).total_bounds
    width, height = int((box[2] - box[0]) // 100) + 3, int((box[3] - box[1]) // 100) + 3
    path = tmp_path / "pop.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="float32", crs="EPSG:3067",
                       transform=from_origin(box[0] - 100, box[3] + 100, 100, 100)) as dst:
        dst.write(np.full((1, height, width), 10.0, dtype="float32"))
    got = raster_counts(cells, path)
    area_pixels = gpd.GeoSeries(cells["cell"]).to_crs(3067).area.to_numpy() / 100 ** 2
    assert got.to_numpy() == pytest.approx(10 * area_pixels, rel=0.02)


def test_raster_without_crs_is_refused(tmp_path, helsinki_cells):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32",
                       transform=from_origin(0, 2, 1, 1)) as dst:
        dst.write(np.ones((1, 2, 2), dtype="float32"))
    with pytest.raises(CRSError, match=r"nocrs\.tif: the raster has no CRS; set it"):
        raster_counts(helsinki_cells[0], path)


def _census(helsinki_cells, values, column="population"):
    cells, _ = helsinki_cells
    polys = gpd.GeoSeries(cells["cell"].iloc[:len(values)], crs=cells.crs)
    return gpd.GeoDataFrame({column: values}, geometry=polys.values, crs=cells.crs)


def test_population_layer_without_a_count_column_is_refused(helsinki_cells):
    census = _census(helsinki_cells, [5, 6], column="name")
    with pytest.raises(InputError, match=r"tracts\.gpkg: no count column \(looked for population"):
        census_counts(helsinki_cells[0], census, path="tracts.gpkg")


@pytest.mark.parametrize(("values", "words"), [(["12", "many"], "holds 'many' at row 2, not a number"),
                                               ([3, -4], r"is negative \(-4\) at row 2")])
def test_bad_counts_are_refused_naming_row_and_file(helsinki_cells, values, words):
    census = _census(helsinki_cells, values)
    with pytest.raises(InputError, match=rf"tracts\.gpkg: column 'population' {words}"):
        census_counts(helsinki_cells[0], census, path="tracts.gpkg")


def test_census_far_from_the_study_is_refused(helsinki_cells):
    far = gpd.GeoDataFrame({"population": [100]}, geometry=[shapely.box(2.0, 41.0, 2.1, 41.1)],
                           crs=4326)
    with pytest.raises(InputError, match="do not overlap the study area"):
        census_counts(helsinki_cells[0], far, path="barcelona.gpkg")


def test_read_census_refuses_points(tmp_path):
    path = tmp_path / "pts.geojson"
    gpd.GeoDataFrame({"population": [1]}, geometry=[shapely.Point(0, 0)], crs=4326).to_file(path)
    with pytest.raises(InputError, match="must hold polygons"):
        read_census(path)


def test_combined_demand_is_people_per_day_and_ignores_a_unitless_proxy():
    parts = pd.DataFrame({"residents": [10.0, 0.0], "workers": [5.0, 20.0],
                          "foot_traffic": [0.9, 0.1]})
    proxy = combined_demand(parts, foot_traffic_measured=False)
    assert proxy.tolist() == [15.0, 20.0]
    assert proxy.attrs["unit"] == DEMAND_UNIT == "people per day"
    measured = combined_demand(parts.assign(foot_traffic=[100.0, 0.0]), foot_traffic_measured=True,
                               weights={"foot_traffic": 0.5, "workers": 0.0})
    assert measured.tolist() == [60.0, 0.0]
    with pytest.raises(InputError, match="unknown part"):
        combined_demand(parts, foot_traffic_measured=False, weights={"tourists": 1.0})


def test_demand_layer_says_where_each_part_came_from(helsinki_cells):
    cells, buildings = helsinki_cells
    foot = pd.Series(0.5, index=cells.index)
    layer = demand_layer(cells, foot_traffic=foot, foot_traffic_measured=False, buildings=buildings)
    assert {"residents", "workers", "foot_traffic", "demand"} <= set(layer.columns)
    assert layer.attrs["unit"] == "people per day"
    assert layer.attrs["sources"]["residents"].startswith("OSM buildings")
    assert layer.attrs["sources"]["foot_traffic"] == "network proxy"
    with pytest.warns(UserWarning, match="no buildings, census or raster"):
        bare = demand_layer(cells, foot_traffic=foot, foot_traffic_measured=False)
    assert bare.attrs["unit"] == "foot-traffic index"


def test_near_duplicate_weighted_criteria_warn():
    x = np.arange(50.0)
    raw = pd.DataFrame({"a": x, "b": x * 2 + 1, "c": np.sin(x)})
    with pytest.warns(UserWarning, match="criteria a and b correlate at 1.00"):
        rep = criteria_correlation(raw, {"a": 0.5, "b": 0.5, "c": 0.1})
    assert rep["near_duplicates"] == ["a~b"]
    assert rep["pearson"]["a~b"] == pytest.approx(1.0)
    assert criteria_correlation(raw, {"a": 0.5, "b": 0.0, "c": 0.1})["near_duplicates"] == []


def test_buildings_go_to_their_h3_cell_without_building_cell_polygons(helsinki_cells):
    cells, buildings = helsinki_cells
    by_id = residents_workers(cells.drop(columns=["cell"]), buildings)
    # the same cells under plain row numbers: counted by their polygons instead
    by_polygon = residents_workers(cells.reset_index(drop=True), buildings)
    a, b = by_id["residents"].to_numpy(), by_polygon["residents"].to_numpy()
    assert a.sum() == pytest.approx(b.sum(), rel=1e-6)
    # H3's own rule and the projected hexagon differ only for a footprint on a cell's edge
    assert np.abs(a - b).sum() <= 0.01 * a.sum()


@pytest.mark.parametrize("resolution", [9, 11])
def test_people_counted_over_the_cells_ids_are_those_of_the_cells_frame(resolution) -> None:
    """The area's cells as sorted integer ids (no frame of them all, as a country's run
    counts them) get every building in the same cell, so the very same people."""
    from siteplanner._cell_people import people_of_cells
    from siteplanner.candidates import area_cells

    buildings, landuse = read_buildings(HELSINKI), read_landuse(HELSINKI)
    crs = buildings.estimate_utm_crs()
    area = gpd.GeoDataFrame(geometry=[buildings.to_crs(crs).union_all().convex_hull], crs=crs)
    cells = area_cells(area, resolution=resolution)
    got = people_of_cells(cells, buildings, landuse=landuse)
    want = residents_workers(h3_candidates(area, resolution=resolution, polygons=False), buildings,
                             landuse=landuse)
    assert len(want) == len(cells.ids) and want["residents"].sum() > 1000
    for col in ("residents", "workers", "floor_area_m2"):
        assert np.array_equal(got[col], want[col].to_numpy()), col
    # buildings outside the area's cells count nowhere, as there
    assert got["residents"].sum() <= building_people(buildings, crs=crs)["residents"].sum()


def test_the_demand_of_the_cells_with_people_is_the_demand_over_every_cell(demo_study) -> None:
    """The select stage builds the demand over the cells with residents or workers only;
    the layer (rows, values, order, sources) is the one built over every cell of the area
    and then cut to the cells with demand."""
    from siteplanner import _demand_stage, pipeline
    from siteplanner._state import RankState

    s = RankState(study=demo_study, plan_floors=False)
    for name, stage in pipeline.STAGES:
        if name == "select":
            break
        stage(s)
    footprints = _demand_stage.footprint_points_of(s, s.layers.crs)
    landuse = _demand_stage.landuse_of(s)
    got = _demand_stage.demand_points(s.cands, s.raw, s.layers, s.study, footprints, landuse)
    d = s.study.demand
    every = h3_candidates(s.layers.area, resolution=s.study.candidates.h3_resolution,
                          polygons=False)
    out = demand_layer(every, foot_traffic=s.raw["foot_traffic"].reindex(every.index).fillna(0.0),
                       foot_traffic_measured=False, buildings=footprints, landuse=landuse,
                       weights={"residents": d.residents_weight, "workers": d.workers_weight,
                                "foot_traffic": d.foot_traffic_weight})
    want = out[out["demand"] > 0]
    assert len(every) > 2 * len(got) > 0
    assert got.drop(columns="weight").equals(want) and got.attrs == want.attrs
    assert np.array_equal(got["weight"], got["demand"])
