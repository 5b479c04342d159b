"""What a run holds, and for how long: the layers project the read table by table, the
building footprints come packed with the read and go once the demand is built."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from siteplanner import _demand_stage, pipeline
from siteplanner._state import RankState
from siteplanner.config import load_study
from siteplanner.demand import building_people
from siteplanner.layers import build_layers
from siteplanner.sources import pbf
from siteplanner.sources.buildings import Packed, footprint_points, read_buildings, read_landuse

ROOT = Path(__file__).resolve().parents[1]
HELSINKI = ROOT / "data" / "helsinki"
ANDORRA = ROOT / "siteplanner" / "data" / "andorra" / "andorra-2022-02.osm.pbf"


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """The bundled Helsinki extract under a new path: no earlier read in this process holds it."""
    path = tmp_path / "kluuvi.osm.pbf"
    shutil.copyfile(HELSINKI / "helsinki.osm.pbf", path)
    return path


def _same(a: object, b: object) -> bool:
    if isinstance(a, shapely.Geometry):
        return bool(shapely.equals_exact(a, b, tolerance=0))
    return bool(a.equals(b)) if hasattr(a, "equals") else a == b


def test_layers_built_consuming_a_copy_equal_the_plain_ones_and_leave_the_read_whole() -> None:
    data = pbf.read_pbf(ANDORRA)
    sizes = {k: len(getattr(data, k)) for k in ("features", "nodes", "edges", "addresses", "blocked")}
    plain = build_layers(brand=("MoraBanc",), osm=data, admin_level=2)
    copy = data.owned_copy()
    eaten = build_layers(brand=("MoraBanc",), osm=copy, admin_level=2, consume=True)
    for f in dataclasses.fields(plain):
        assert _same(getattr(plain, f.name), getattr(eaten, f.name)), f.name
    # the copy let its tables go; the read (which a national worker reuses) is untouched
    assert all(len(getattr(copy, k)) == 0 for k in sizes)
    assert {k: len(getattr(data, k)) for k in sizes} == sizes
    assert copy.data_date == data.data_date and copy.extent is data.extent


def test_street_segments_built_from_their_projected_nodes_equal_the_projected_segments() -> None:
    data = pbf.read_pbf(ANDORRA)
    layers = build_layers(brand=("MoraBanc",), osm=data, admin_level=2)
    projected = data.edges.to_crs(layers.crs)
    assert layers.streets.equals(projected)
    assert np.array_equal(shapely.get_coordinates(layers.streets.geometry.values),
                          shapely.get_coordinates(projected.geometry.values))


def test_curved_edges_are_projected_as_they_are() -> None:
    """An edge that is not the straight segment between its nodes (osmnx's simplified
    network, an .osm source) keeps its own shape."""
    data = pbf.read_pbf(HELSINKI / "helsinki.osm.pbf")
    edges = data.edges.copy()
    line = edges.geometry.iloc[0]
    (x0, y0), (x1, y1) = line.coords
    edges.loc[0, "geometry"] = shapely.LineString([(x0, y0), ((x0 + x1) / 2, y0), (x1, y1)])
    bent = dataclasses.replace(data, edges=gpd.GeoDataFrame(edges, geometry="geometry", crs=4326))
    layers = build_layers(brand=("Nordea",), osm=bent)
    assert layers.streets.equals(bent.edges.to_crs(layers.crs))
    assert shapely.get_num_coordinates(layers.streets.geometry.values[0]) == 3


@pytest.mark.parametrize("path", [HELSINKI / "helsinki.osm.pbf", ANDORRA], ids=["helsinki", "andorra"])
def test_a_pbf_read_holds_the_footprints_packed_equal_to_reading_them_from_the_file(path) -> None:
    data = pbf.read_pbf(path)
    assert isinstance(data.buildings, Packed) and isinstance(data.landuse, Packed)
    assert data.buildings.frame().equals(read_buildings(path))
    assert data.landuse.frame().equals(read_landuse(path))
    assert len(data.buildings) > 400


def _to_select(study, *, plan_floors: bool) -> RankState:
    s = RankState(study=study, plan_floors=plan_floors)
    for name, stage in pipeline.STAGES:
        stage(s)
        if name == "select":
            return s
    raise AssertionError("no select stage")


def test_the_demand_from_the_packed_footprints_equals_the_one_from_the_file(fresh_copy) -> None:
    study = load_study(HELSINKI / "study.toml").replace(osm=fresh_copy)
    s = _to_select(study, plan_floors=False)
    from_file = _demand_stage.demand_points(s.cands, s.raw, s.layers, s.study,
                                            read_buildings(fresh_copy), read_landuse(fresh_copy))
    assert s.demand is not None and s.demand["residents"].sum() > 0
    assert s.demand.equals(from_file)
    # nothing holds the footprints once the demand is built when no floor plan reads them
    assert s.buildings is None and s.osm is not None
    assert s.osm.buildings is None and s.osm.landuse is None


def test_floor_plans_in_osm_buildings_keep_the_footprints_read_with_the_data(fresh_copy) -> None:
    study = load_study(HELSINKI / "study.toml").replace(osm=fresh_copy)
    study = study.replace(floorplan=dataclasses.replace(study.floorplan, outline=None, entrances=()))
    s = _to_select(study, plan_floors=True)
    assert s.osm is not None and isinstance(s.osm.buildings, Packed)
    assert _demand_stage.buildings(s).equals(read_buildings(fresh_copy))


@pytest.mark.parametrize("path", [HELSINKI / "helsinki.osm.pbf", ANDORRA], ids=["helsinki", "andorra"])
def test_people_from_footprint_points_equal_people_from_the_footprints(path) -> None:
    """The demand's slim reading (a point and an area per building, piece by piece) gives
    every building the same people, use and cell as its polygon does."""
    data = pbf.read_pbf(path)
    full = read_buildings(path)
    crs = full.estimate_utm_crs()
    landuse = read_landuse(path)
    slim = footprint_points(data.buildings.frames(rows=1000), crs=crs)
    assert len(slim) == len(full) and (slim.geom_type == "Point").all()
    a = building_people(full, crs=crs, landuse=landuse)
    b = building_people(slim, crs=crs, landuse=landuse)
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert np.array_equal(shapely.get_coordinates(shapely.point_on_surface(a.geometry.values)),
                          shapely.get_coordinates(b.geometry.values))


def test_an_empty_packed_table_is_one_empty_piece() -> None:
    empty = Packed.of(read_buildings(HELSINKI / "helsinki.osm.pbf").iloc[:0])
    pieces = list(empty.frames())
    assert len(pieces) == 1 and pieces[0].empty
    assert footprint_points(pieces, crs=3067).empty


def test_a_runs_result_gives_back_the_street_nodes_the_network_stage_let_go(
        demo_result, demo_study, helsinki_osm) -> None:
    """The run frees the junction table once the walking graph holds it; an analyst's
    ``walk_graph(result.layers)`` still needs it, so the result has it back, exact."""
    from siteplanner.market import walk_graph

    built = build_layers(brand=demo_study.brand, osm=helsinki_osm, crs=demo_result.layers.crs)
    nodes = demo_result.layers.street_nodes
    assert len(nodes) == demo_result.extras["network"]["nodes"] > 0
    assert nodes.index.equals(built.street_nodes.index)
    assert nodes.geometry.geom_equals_exact(built.street_nodes.geometry, tolerance=0).all()
    graph = walk_graph(demo_result.layers, speed_kmh=demo_study.network.walk_speed_kmh)
    assert graph is not None and graph.n_nodes == len(nodes)
