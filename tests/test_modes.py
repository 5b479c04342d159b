"""Catchments by mode: drive speeds from OSM tags, Huff and coverage per mode, the default rule."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from siteplanner.config import HuffSettings
from siteplanner.market import market_share
from siteplanner.modes import (
    DRIVE_SPEEDS_KMH,
    MAXSPEED_FACTOR,
    URBAN_CENTRE_DENSITY,
    DriveGraph,
    TravelMode,
    TravelModes,
    default_modes,
)
from siteplanner.network import WalkGraph
from siteplanner.selection.coverage import MaxCoverage

CRS = 3067  # ETRS-TM35FIN, metres
WALK_MPM = 4.8 * 1000 / 60
POPULATION_CSV = Path("/work/shared/data/andorra_parish_population_2022.csv")


def _points(xs: list[float], index: list[int] | None = None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=shapely.points(xs, np.zeros(len(xs))), index=index, crs=CRS)


def _roads(xs: list[float], highway: list[str], maxspeed: list[str | None]) -> DriveGraph:
    nodes = _points(xs, index=list(range(1, len(xs) + 1)))
    n = len(xs) - 1
    edges = gpd.GeoDataFrame(
        {"u": range(1, n + 1), "v": range(2, n + 2), "length": np.diff(xs),
         "highway": highway, "maxspeed": maxspeed},
        geometry=[None] * n, crs=CRS)
    return DriveGraph.from_roads(nodes, edges)


def _two_modes(walk: WalkGraph, drive: DriveGraph, drive_share: float = 0.5) -> TravelModes:
    return TravelModes((TravelMode("walk", walk, 1 - drive_share, WALK_MPM),
                        TravelMode("drive", drive, drive_share, WALK_MPM)))


def _short_street() -> WalkGraph:
    nodes = _points([0.0, 100.0], index=[1, 2])
    edges = gpd.GeoDataFrame({"u": [1], "v": [2], "length": [100.0]}, geometry=[None], crs=CRS)
    return WalkGraph.from_gdfs(nodes, edges)


def test_drive_minutes_use_maxspeed_when_tagged_and_the_class_default_otherwise():
    # 1 km of primary posted at 60 km/h, then 1 km of untagged residential
    graph = _roads([0.0, 1000.0, 2000.0], ["primary", "residential"], ["60", None])
    minutes = graph.walk_minutes(graph.nodes_at([0]), cutoff_min=60).toarray()[0]
    posted = 60 * MAXSPEED_FACTOR
    assert minutes[1] == pytest.approx(60 / posted)
    assert minutes[2] == pytest.approx(60 / posted + 60 / DRIVE_SPEEDS_KMH["residential"])
    assert graph.edge_speed_kmh.tolist() == pytest.approx([posted, DRIVE_SPEEDS_KMH["residential"]])
    # a limit in mph and an implicit zone limit are read too; an untagged class uses its default
    mph = _roads([0.0, 1000.0, 2000.0], ["primary", "primary"], ["30 mph", "FR:urban"])
    assert mph.edge_speed_kmh.tolist() == pytest.approx([30 * 1.609344 * 0.8, 50 * 0.8])


def test_a_site_reached_only_by_road_gets_the_drive_share_of_demand_in_huff():
    walk = _short_street()
    drive = _roads([0.0, 5000.0], ["primary"], [None])  # 5 km at 65 km/h: 4.6 min
    demand = _points([0.0]).assign(demand=[100.0])
    site = _points([5000.0]).assign(site_id=["far"])
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=CRS))
    layers = SimpleNamespace(own_branches=empty, competitors=empty, crs=CRS)

    def expected(modes: TravelModes | None) -> float:
        res = market_share(layers, site, demand, graph=walk, settings=HuffSettings(),  # type: ignore[arg-type]
                           cutoff_min=15.0, speed_kmh=4.8, modes=modes)
        return float(res.sites["expected_demand"].iloc[0])

    assert expected(None) == 0.0  # a 62-minute walk: beyond the 15-minute cutoff
    assert expected(_two_modes(walk, drive, drive_share=0.4)) == pytest.approx(40.0)


def test_coverage_covers_a_far_cell_by_drive_and_not_by_walk():
    walk = _short_street()
    drive = _roads([0.0, 5000.0], ["primary"], [None])
    cells = _points([0.0, 5000.0])
    weights = np.array([10.0, 100.0])
    site = _points([0.0])
    walk_only = TravelModes((TravelMode("walk", walk, 1.0, WALK_MPM),))
    for modes, covered in ((walk_only, 10.0), (_two_modes(walk, drive), 10.0 + 50.0)):
        model = MaxCoverage.from_cost_matrix(modes.minutes(cells, site, cutoff_min=15.0),
                                             modes.weights(weights), k=1, max_cost=5.0)
        model.solve("exact")
        assert model.objective_ == pytest.approx(covered)


def test_the_default_rule_drives_in_a_low_density_country():
    # Andorra: the official 2022 population over its 468 km² (Govern d'Andorra)
    people = float(pd.read_csv(POPULATION_CSV)["population_2022_12_31"].sum())
    modes, why = default_modes(people, 468.0)
    assert modes == ("walk", "drive")
    assert why["residents_per_km2"] < URBAN_CENTRE_DENSITY
    assert default_modes(None, 468.0)[0] == ("walk",)


def test_the_dense_bundled_city_walks_and_run_json_says_why(demo_out):
    doc = json.loads((demo_out / "run.json").read_text())
    modes = doc["modes"]
    assert modes["modes"] == ["walk"]
    assert modes["chosen_by"] == "density rule"
    assert modes["residents_per_km2"] >= URBAN_CENTRE_DENSITY
    assert doc["market"]["modes"] == ["walk"]


def test_drive_on_data_without_a_road_network_is_one_line(runner, tmp_path):
    from siteplanner.cli import app

    osm = Path(__file__).parent / "data" / "osm" / "kluuvi.osm.bz2"
    res = runner.invoke(app, ["rank", "--osm", str(osm), "--brand", "Nordea", "--out",
                              str(tmp_path), "--set", 'network.modes=["drive"]', "--no-report"])
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1, res.output
    assert "'drive' has no road network" in lines[0] and 'modes = ["walk"]' in lines[0]
    assert "Traceback" not in res.output
