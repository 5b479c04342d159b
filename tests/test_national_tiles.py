"""``siteplanner national --tile-km2``: a large area split into tiles with overlap, merged by core.

Andorra la Vella (one parish, about 12 km² of bounds) at H3 resolution 9 with
no stability draws, whole and in 10 km² tiles, so each run takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from test_national import FAST, national, places_study

from siteplanner.config import load_study
from siteplanner.national import plan_areas
from siteplanner.national_tiles import in_core, overlap_m, tile_areas

pytestmark = pytest.mark.slow
TILE_KM2 = 10.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("tiles")
    study = places_study(tmp, ["Andorra la Vella"])
    whole, tiled = tmp / "whole", tmp / "tiled"
    for out, extra in ((whole, []), (tiled, ["--tile-km2", TILE_KM2])):
        run = national(study, "--workers", 1, "--top", 8, "--out", out, *FAST, *extra)
        assert run.returncode == 0, run.stderr
    return study, whole, tiled


def test_a_large_area_becomes_tiles_whose_cores_part_it_and_overlap_the_catchment(tmp_path):
    study = load_study(places_study(tmp_path, ["Andorra la Vella"]))
    jobs = tile_areas(plan_areas(study, cache_dir=tmp_path / "c"), tile_km2=TILE_KM2,
                      cache_dir=tmp_path / "c")
    assert len(jobs) >= 2 and {j.parent for j in jobs} == {"Andorra la Vella"}
    # the study areas overlap by the longest catchment walk (10 min at 4.8 km/h = 800 m)
    assert overlap_m(study) == pytest.approx(800.0)
    pts = pd.DataFrame({"lon": np.linspace(1.48, 1.56, 40).repeat(40),
                        "lat": np.tile(np.linspace(42.49, 42.53, 40), 40)})
    hits = np.sum([in_core(pts, j.core) for j in jobs], axis=0)
    area = shapely.union_all([shapely.box(*j.core[1:]) for j in jobs])
    assert hits.max() == 1  # no point in two cores
    assert area.area > 0
    assert tile_areas(plan_areas(study, cache_dir=tmp_path / "c"), tile_km2=1e6,
                      cache_dir=tmp_path / "c")[0].core is None


def test_tiles_merge_into_one_ranking_from_their_cores_close_to_the_untiled_one(runs):
    study, whole, tiled = runs
    areas = pd.read_csv(tiled / "areas.csv", keep_default_na=False)
    assert (areas["status"] == "done").sum() >= 2
    # a tile of bare mountain holds no one: it fails alone, with the reason, and the rest merge
    failed = areas[areas["status"] == "failed"]
    assert failed["error"].str.contains("demand is zero everywhere").all()
    jobs = tile_areas(plan_areas(load_study(study), cache_dir=tiled / ".cache"), tile_km2=TILE_KM2,
                      cache_dir=tiled / ".cache")
    a = pd.read_csv(whole / "national_sites.csv")
    b = pd.read_csv(tiled / "national_sites.csv")
    assert len(b) == len(a) == 8
    assert set(b["area"]) == {"Andorra la Vella"}
    # every merged site comes from the tile whose core holds it, exactly one
    cores = np.array([in_core(b, j.core) for j in jobs])
    assert (cores.sum(axis=0) == 1).all()
    assert json.loads((tiled / "national.json").read_text())["split"]["tiles"] == len(jobs)
    # agreement: the same sites, or one within the spacing (400 m) of an untiled pick
    same = len(set(a["site_id"]) & set(b["site_id"])) / len(a)
    d = np.hypot((a["lon"].to_numpy()[:, None] - b["lon"].to_numpy()) * 82_000,
                 (a["lat"].to_numpy()[:, None] - b["lat"].to_numpy()) * 111_000).min(axis=0)
    assert same >= 0.5 and (d <= 400).mean() >= 0.75, (same, d.round())
