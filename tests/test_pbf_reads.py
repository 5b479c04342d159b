"""The .pbf reader's reuse: a one-study run frees the raw tables, a national worker reads once."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pytest

from siteplanner import pipeline
from siteplanner._state import RankState
from siteplanner.config import load_study
from siteplanner.sources import pbf

HELSINKI = Path(__file__).resolve().parents[1] / "data" / "helsinki"


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """The bundled Helsinki extract under a new path: no earlier read in this process holds it."""
    path = tmp_path / "kluuvi.osm.pbf"
    shutil.copyfile(HELSINKI / "helsinki.osm.pbf", path)
    return path


@pytest.fixture
def keep_off():
    before = pbf.keep_reads(False)
    yield
    pbf.keep_reads(before)


def test_a_rank_run_lets_the_raw_osm_tables_go_once_its_layers_are_built(fresh_copy, keep_off):
    """After the layers stage nothing holds the read (0.9 GB on a 100k-candidate city);
    the data date the outputs show is still there."""
    study = load_study(HELSINKI / "study.toml").replace(osm=fresh_copy)
    s = RankState(study=study, plan_floors=False)
    date = pbf.read_pbf(fresh_copy).data_date
    assert date is not None
    stages = dict(pipeline.STAGES)
    stages["load"](s)
    assert str(fresh_copy.resolve()) in pbf.held_reads()
    stages["layers"](s)
    gc.collect()
    assert str(fresh_copy.resolve()) not in pbf.held_reads()
    assert s.osm is not None and s.osm.data_date == date
    assert len(s.osm.features) == len(s.osm.nodes) == len(s.osm.edges) == 0
    assert len(s.layers.streets) > 1000 and len(s.layers.competitors) > 0


def test_a_read_still_held_is_reused_and_a_dropped_one_is_read_again(fresh_copy, keep_off):
    n = pbf.read_count()
    first = pbf.read_pbf(fresh_copy)
    assert pbf.read_pbf(fresh_copy) is first and pbf.read_count() == n + 1
    del first
    gc.collect()
    pbf.read_pbf(fresh_copy)
    assert pbf.read_count() == n + 2


def test_keep_reads_reads_an_extract_once_for_every_later_area(fresh_copy, keep_off):
    """A national worker's areas share one extract: kept, it is read once however many areas."""
    pbf.keep_reads()
    n = pbf.read_count()
    ids = {id(pbf.read_pbf(fresh_copy)) for _ in range(3)}
    gc.collect()
    assert len(ids) == 1 and pbf.read_count() == n + 1
    assert str(fresh_copy.resolve()) in pbf.held_reads()
    pbf.keep_reads(False)
    gc.collect()
    assert str(fresh_copy.resolve()) not in pbf.held_reads()
