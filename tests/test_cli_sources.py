"""The three kinds of source through the CLI: a .pbf, an .osm.bz2, and osmnx online."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from _replay_server import DATA, ReplayServer, replay_server  # noqa: F401
from conftest import STUDY
from test_sources_online import no_courtesy_pause, online, osmnx_settings  # noqa: F401

from siteplanner.cli import app

KLUUVI_OSM = DATA / "kluuvi.osm.bz2"


def test_rank_from_an_osm_bz2_extract(runner, tmp_path: Path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--osm", str(KLUUVI_OSM), "--top", "2",
                              "--set", "selection.min_spacing_m=100", "--no-report", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["inputs"][0]["path"].endswith("kluuvi.osm.bz2")
    assert run["osm_data_date"].startswith("2019-04")
    ranked = pd.read_csv(out / "ranked_sites.csv")
    assert len(ranked) == 2
    # every site lies in the few blocks the extract covers
    assert ranked["lon"].between(24.939, 24.946).all() and ranked["lat"].between(60.168, 60.173).all()


def test_rank_online_for_a_place(runner, tmp_path: Path, online: ReplayServer,  # noqa: F811
                                 monkeypatch):
    monkeypatch.setenv("SITEPLANNER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--place", "Kluuvi, Helsinki, Finland",
                              "--top", "2", "--set", "selection.min_spacing_m=100",
                              "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    assert online.seen("search") and online.seen("interpreter")
    assert list((tmp_path / "cache" / "osmnx").glob("*.json")), "answers are cached"
    run = json.loads((out / "run.json").read_text())
    assert run["study"]["place"] == "Kluuvi, Helsinki, Finland" and run["study"]["osm"] is None
    assert len(pd.read_csv(out / "ranked_sites.csv")) == 2
    # an online study's demand is people in its buildings, not the shop-density fallback
    assert "falls back" not in res.stderr
    assert run["demand"]["sources"]["residents"].startswith("OSM buildings"), run["demand"]


def test_an_unknown_place_is_one_clean_line(runner, tmp_path: Path, online: ReplayServer,  # noqa: F811
                                            monkeypatch):
    monkeypatch.setenv("SITEPLANNER_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(app, ["rank", str(STUDY), "--place", "Atlantis", "--out",
                              str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.stderr.strip().startswith("error:") and "Atlantis" in res.stderr
    assert not (tmp_path / "out").exists()
