"""``siteplanner national``: Andorra by parish on a LocalCluster and on a real Dask cluster.

Each area runs at H3 resolution 9 with no stability draws, so one parish takes
seconds; the 7-parish run is shared by the tests that read its outputs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siteplanner import datasets

BIN = Path(sys.executable).parent
FAST = ["--set", "candidates.h3_resolution=9", "--set", "model.stability_draws=0"]
TOP = ["--top", 12]  # the parish runs' K: part of each area's settings, so of its cache key
STUDY = datasets.andorra().study
PARISHES = 7

pytestmark = pytest.mark.slow


def national(*args: object, env: dict[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "siteplanner"), "national", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def places_study(tmp_path: Path, places: list[str]) -> Path:
    """The Andorra study with a [national] places list (files relative to the new study file)."""
    text = STUDY.read_text(encoding="utf-8").replace(
        'osm = "andorra-2022-02.osm.pbf"', f'osm = "{datasets.andorra().osm}"')
    path = tmp_path / "study.toml"
    path.write_text(text + "\n[national]\nplaces = " + json.dumps(places) + "\n", encoding="utf-8")
    return path


def areas(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "areas.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def parishes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("national") / "out"
    t0 = time.perf_counter()
    run = national(STUDY, "--by", "admin_level=7", "--top", 12, "--workers", 2, "--out", out, *FAST)
    assert run.returncode == 0, run.stderr
    return out, time.perf_counter() - t0


def test_a_local_cluster_ranks_the_best_sites_across_all_parishes(parishes):
    out, _ = parishes
    rows = areas(out)
    assert len(rows) == PARISHES and set(rows["status"]) == {"done"}
    assert (rows["candidates"] > 0).all() and rows["error"].eq("").all()
    sites = pd.read_csv(out / "national_sites.csv")
    assert list(sites.columns[:8]) == ["rank", "area", "site_id", "address", "district", "lon", "lat",
                                       "score"]
    assert sites["rank"].tolist() == list(range(1, 13))
    # with the business case the national order is NPV, else the one national score
    key = "npv" if "npv" in sites and sites["npv"].notna().all() else "score"
    assert sites[key].is_monotonic_decreasing
    assert sites["area"].nunique() > 1 and set(sites["area"]) <= set(rows["area"])
    # the spacing rule holds nationally, across parish borders (400 m, metres on the ground)
    lat0 = np.radians(sites["lat"].mean())
    xy = np.column_stack([sites["lon"] * 111_320 * np.cos(lat0), sites["lat"] * 110_540])
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    assert d[np.triu_indices(len(xy), 1)].min() >= 390
    for area in rows["area"]:
        folder = next(p for p in (out / "areas").iterdir() if json.loads(
            (p / "run.json").read_text())["study"]["name"] == area)
        assert (folder / "ranked_sites.csv").is_file() and (folder / "sites.gpkg").is_file()
    record = json.loads((out / "national.json").read_text())
    assert record["cluster"]["kind"] == "local" and record["cluster"]["workers"] == 2
    assert all(b > 0 for b in record["cluster"]["memory_limit_bytes"])
    assert (out / "map.html").stat().st_size < 5_000_000
    assert "top 12 sites nationally" in (out / "report.html").read_text()


def test_each_worker_reads_the_country_extract_once_for_all_its_parishes(parishes):
    """The parishes share one extract: a worker reads it for its first parish and keeps it."""
    out, _ = parishes
    metas = [json.loads(p.read_text()) for p in (out / ".cache").glob("*/meta.json")]
    assert len(metas) == PARISHES
    reads: dict[int, int] = {}
    for m in metas:
        reads[m["worker_pid"]] = max(reads.get(m["worker_pid"], 0), m["worker_extract_reads"])
    assert set(reads.values()) == {1}, reads


def test_national_scores_are_one_min_max_over_every_parish(parishes):
    """A parish's own best site is not the country's best unless its raw criteria say so."""
    out, _ = parishes
    sites = pd.read_csv(out / "national_sites.csv")
    contrib = sites.filter(like="_contribution")
    assert np.allclose(contrib.sum(axis=1), sites["score"], atol=1e-5)
    # every parish had its own rank-1 site with an area score of its own; nationally far fewer lead
    assert (sites["area_rank"] == 1).sum() < PARISHES


def test_a_rerun_finds_every_parish_cached_and_starts_no_cluster(parishes):
    out, first_s = parishes
    t0 = time.perf_counter()
    run = national(STUDY, "--by", "admin_level=7", "--top", 12, "--workers", 2, "--out", out, *FAST)
    rerun_s = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr
    assert set(areas(out)["status"]) == {"cached"}
    assert json.loads((out / "national.json").read_text())["cluster"]["kind"].startswith("none")
    assert rerun_s < first_s / 2


def test_a_changed_setting_redoes_the_area_and_the_old_one_comes_back_from_the_cache(parishes, tmp_path):
    out, _ = parishes
    study = places_study(tmp_path, ["Andorra la Vella"])
    same = national(study, "--workers", 1, "--out", out, *TOP, *FAST)
    assert same.returncode == 0, same.stderr
    assert areas(out)["status"].tolist() == ["cached"]
    changed = national(study, "--workers", 1, "--out", out, *TOP, *FAST,
                       "--set", "selection.min_spacing_m=300")
    assert changed.returncode == 0, changed.stderr
    assert areas(out)["status"].tolist() == ["done"]
    folder = out / "areas" / json.loads((out / "national.json").read_text())["areas"][0]["folder"][6:]
    assert json.loads((folder / "run.json").read_text())["selection"]["min_spacing_m"] == 300
    back = national(study, "--workers", 1, "--out", out, *TOP, *FAST)
    assert areas(out)["status"].tolist() == ["cached"], back.stderr
    assert json.loads((folder / "run.json").read_text())["selection"]["min_spacing_m"] == 400


def test_an_area_with_bad_data_fails_alone_and_is_reported(parishes, tmp_path):
    out, _ = parishes
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"this is not a protocol buffer" * 10)
    study = places_study(tmp_path, ["Andorra la Vella", "broken.osm.pbf"])
    run = national(study, "--workers", 1, "--out", out, *TOP, *FAST)
    assert run.returncode == 1
    rows = areas(out).set_index("area")
    assert rows.loc["Andorra la Vella", "status"] == "cached"
    assert rows.loc["broken", "status"] == "failed" and rows.loc["broken", "error"]
    assert "1 of 2 areas failed (broken)" in run.stderr
    assert pd.read_csv(out / "national_sites.csv")["area"].eq("Andorra la Vella").all()


def test_an_admin_level_with_no_boundaries_lists_the_levels_present(parishes):
    out, _ = parishes
    run = national(STUDY, "--by", "admin_level=5", "--out", out, *FAST, timeout=60)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "levels present: 2, 7, 8" in run.stderr


def test_a_missing_place_file_is_one_line(tmp_path):
    run = national(places_study(tmp_path, ["nowhere.osm.pbf"]), "--out", tmp_path / "o", timeout=60)
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "nowhere.osm.pbf not found" in run.stderr


def test_zero_workers_is_one_line(tmp_path):
    run = national(STUDY, "--by", "admin_level=7", "--workers", 0, "--out", tmp_path / "o", timeout=60)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and "--workers 0" in run.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_scheduler_that_does_not_answer_fails_within_seconds(tmp_path):
    t0 = time.perf_counter()
    run = national(STUDY, "--by", "admin_level=7", "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
                   "--out", tmp_path / "o", timeout=60)
    assert run.returncode == 1 and "no Dask scheduler answered" in run.stderr
    assert run.stderr.count("\n") == 1
    assert time.perf_counter() - t0 < 20  # 5 s to connect, the rest is Python starting


# --------------------------------------------------------------------------- a real cluster

@pytest.fixture
def cluster(tmp_path):
    """`dask scheduler` and two `dask worker`s as separate processes, as a user's cluster is started."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    marker = tmp_path / "attempts"
    marker.mkdir()
    env = {**os.environ, "SITEPLANNER_TEST_NATIONAL_SLEEP": f"Escaldes-Engordany=120={marker}"}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        for _ in range(2):
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard", "--memory-limit", "2GiB"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))
        yield address, marker
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_a_real_cluster_retries_an_area_whose_worker_was_killed(cluster, tmp_path):
    address, marker = cluster
    study = places_study(tmp_path, ["Andorra la Vella", "Escaldes-Engordany"])
    out = tmp_path / "out"
    proc = subprocess.Popen([str(BIN / "siteplanner"), "national", str(study), "--scheduler", address,
                             "--top", "5", "--out", str(out), *FAST], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not any(marker.iterdir()) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        first = next(marker.iterdir())
        victim = int(re.sub(r"\D", "", first.name))
        os.kill(victim, signal.SIGKILL)  # the worker process running Escaldes-Engordany, mid-task
        stdout, stderr = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    attempts = sorted(p.name for p in marker.iterdir())
    assert len(attempts) == 2 and f"attempt-{victim}" in attempts  # ran again, in another process
    rows = areas(out)
    assert rows["status"].tolist() == ["done", "done"]
    record = json.loads((out / "national.json").read_text())
    assert record["cluster"]["kind"] == "scheduler" and record["cluster"]["address"] == address
    assert len(pd.read_csv(out / "national_sites.csv")) == 5
