"""The second process a run writes its GeoPackage in: its answer, its errors and its death
all reach the caller, and a failed write leaves an earlier good output as it was."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from siteplanner import _aside
from siteplanner._errors import InputError, OutputError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def _pid_and(x: int) -> tuple[int, int]:
    return os.getpid(), x * 2


def _fail() -> None:
    raise InputError("layer demand: no column 'people'; add it")


def _warn() -> int:
    import warnings

    warnings.warn("3 candidates lie outside the area; they are left out", UserWarning, stacklevel=1)
    return 7


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _touch(path: Path) -> int:
    path.write_text("written in the child")
    return len(path.read_text())


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two CPUs, forking on, and memory to spare (whatever this test process holds)."""
    monkeypatch.delenv(_aside.ENV_OFF, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(_aside, "budget_mib", lambda: 1e9)


def test_the_function_runs_in_another_process_and_its_answer_comes_back(forks, tmp_path) -> None:
    job = _aside.aside("testing", _pid_and, 21)
    assert job.forked
    pid, value = job.result()
    assert value == 42 and pid != os.getpid()
    assert job.stats["seconds"] >= 0 and (job.stats["own_mib"] is None or job.stats["own_mib"] > 0)
    # what it writes is on disk for the parent once it has answered
    assert _aside.aside("testing", _touch, tmp_path / "f.txt").result() == 20
    assert (tmp_path / "f.txt").read_text() == "written in the child"


def test_its_error_is_raised_in_the_caller_with_its_one_line_message(forks) -> None:
    job = _aside.aside("testing", _fail)
    with pytest.raises(InputError, match=r"^layer demand: no column 'people'; add it$"):
        job.result()


def test_its_warnings_are_given_again_in_the_caller(forks) -> None:
    job = _aside.aside("testing", _warn)
    with pytest.warns(UserWarning, match="^3 candidates lie outside the area; they are left out$"):
        assert job.result() == 7


def test_a_killed_child_is_an_error_that_says_how_it_ended(forks) -> None:
    job = _aside.aside("testing", _die)
    with pytest.raises(OutputError, match=r"^the second process testing was killed by signal 9 "
                                          r".*SITEPLANNER_NO_FORK=1"):
        job.result()


def test_the_opt_out_and_a_single_cpu_run_it_in_this_process(monkeypatch) -> None:
    monkeypatch.setenv(_aside.ENV_OFF, "1")
    job = _aside.aside("testing", _pid_and, 1)
    assert not job.forked and job.result() == (os.getpid(), 2)
    monkeypatch.delenv(_aside.ENV_OFF)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0}, raising=False)
    job = _aside.aside("testing", _pid_and, 2)
    assert not job.forked and job.result() == (os.getpid(), 4)
    with pytest.raises(InputError):
        _aside.aside("testing", _fail).result()  # raised where the caller asks, as when forked


def test_a_child_past_the_memory_budget_runs_in_this_process_and_says_why(
        forks, monkeypatch, caplog) -> None:
    """The budget counts this process and the live children, and a child's expected share."""
    import logging

    mine = _aside._pss_mib(os.getpid())
    assert mine is not None and mine > 10  # read from /proc on Linux
    # room for one (with a margin: this process's share of pages it shared with a child
    # that has just ended comes back to it)
    monkeypatch.setattr(_aside, "budget_mib", lambda: mine * (1 + _aside.CHILD_SHARE) * 1.25 + 100)
    assert _aside.aside("testing", _pid_and, 1).forked
    monkeypatch.setattr(_aside, "budget_mib", lambda: mine * 1.05)
    with caplog.at_level(logging.INFO, logger="siteplanner._aside"):
        job = _aside.aside("measuring street centrality", _pid_and, 2)
    assert not job.forked and job.result() == (os.getpid(), 4)
    assert "measuring street centrality in this process" in caplog.text
    assert "SITEPLANNER_MEMORY_MIB" in caplog.text


def test_a_child_that_has_just_started_counts_as_what_it_is_expected_to_reach(
        forks, monkeypatch) -> None:
    """Room for one child but not two: the second is refused while the first runs, though
    the first holds almost nothing of its own yet (its PSS alone would leave room)."""
    import time

    mine = _aside._pss_mib(os.getpid())
    assert mine is not None
    monkeypatch.setattr(_aside, "budget_mib", lambda: mine * (1 + 1.5 * _aside.CHILD_SHARE))
    first = _aside.aside("sleeping", time.sleep, 1.0)
    assert first.forked
    second = _aside.aside("testing", _pid_and, 5)
    assert not second.forked and second.result() == (os.getpid(), 10)
    first.result()
    assert _aside.aside("testing", _pid_and, 6).forked  # the first has ended: room again


def test_the_budget_is_the_setting_and_at_most_half_the_available_memory(monkeypatch) -> None:
    monkeypatch.setenv(_aside.ENV_BUDGET, "1000")
    monkeypatch.setattr(_aside, "_meminfo_mib", lambda _field: 1e6)
    assert _aside.budget_mib() == 1000
    monkeypatch.setattr(_aside, "_meminfo_mib", lambda _field: 1200.0)
    assert _aside.budget_mib() == 600
    monkeypatch.delenv(_aside.ENV_BUDGET)
    monkeypatch.setattr(_aside, "_meminfo_mib", lambda _field: None)
    assert _aside.budget_mib() == _aside.DEFAULT_BUDGET_MIB == 1536


@pytest.mark.parametrize("value", ["lots", "0", "-5", "nan", "inf"])
def test_a_bad_memory_budget_is_one_line_naming_the_variable_before_the_data_is_read(
        value, monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from siteplanner.cli import app

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(_aside.ENV_BUDGET, value)
    out = tmp_path / "out"
    got = CliRunner().invoke(app, ["rank", str(root / "data" / "helsinki" / "study.toml"),
                                   "--no-report", "--out", str(out)])
    assert got.exit_code != 0 and "Traceback" not in got.output
    text = " ".join(got.output.split())
    assert f"SITEPLANNER_MEMORY_MIB={value!r} is not a number of MiB" in text
    assert "SITEPLANNER_MEMORY_MIB=3000" in text and not out.exists()


def test_a_thread_other_than_the_main_one_runs_it_in_this_process(forks) -> None:
    """A Dask worker's task runs in a thread: it is never forked from."""
    import threading

    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(_aside.aside("testing", _pid_and, 3)))
    t.start()
    t.join()
    (job,) = got
    assert not job.forked and job.result() == (os.getpid(), 6)


def test_a_gpkg_write_that_dies_leaves_the_earlier_output_and_exits_non_zero(
        forks, tmp_path, monkeypatch) -> None:
    """A run whose GeoPackage process is killed fails with one line, and the folder a
    good run wrote before is untouched (the outputs are swapped in only when whole)."""
    from typer.testing import CliRunner

    from siteplanner import io
    from siteplanner.cli import app

    root = Path(__file__).resolve().parents[1]
    study, out = root / "data" / "helsinki" / "study.toml", tmp_path / "out"
    runner = CliRunner()
    good = runner.invoke(app, ["rank", str(study), "--no-report", "--out", str(out)])
    assert good.exit_code == 0, good.output
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "sites.gpkg" in before

    def killed(tables, path) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(io, "_write_gpkg", killed)
    bad = runner.invoke(app, ["rank", str(study), "--no-report", "--out", str(out)])
    assert bad.exit_code != 0
    lines = [ln for ln in bad.output.strip().splitlines() if ln.strip()]
    assert "killed by signal 9" in bad.output and "Traceback" not in bad.output, bad.output
    assert len([ln for ln in lines if "killed" in ln]) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_work_measured_aside_gives_the_same_run_and_is_recorded(
        forks, demo_study, monkeypatch) -> None:
    """The street centrality (beside the candidates), the sites' addresses (beside their
    cells, the network and the features), the stability and sensitivity (beside the
    clusters) and the map's streets (beside the selection), each measured in a second
    process, give the very tables of measuring them in the run's own process, and
    run.json says what ran aside, for how long and with how much memory."""
    import shapely

    from siteplanner import _map_streets, candidates, footfall, pipeline
    from siteplanner._map_budget import street_lines
    from siteplanner.record import RunRecord

    candidates._CENTRES.clear()  # nothing this process found before
    footfall._CENTRALITY.clear()
    forked = pipeline.rank_sites(demo_study, floorplans=False)
    aside = forked.extras["second_process"]
    assert set(aside) == {"cells", "centrality", "addresses", "stability"}
    assert all(v["seconds"] > 0 for v in aside.values()) and not footfall._PENDING
    assert "addresses_second_process" not in forked.extras["candidates"]
    monkeypatch.setenv(_aside.ENV_OFF, "1")
    footfall._CENTRALITY.clear()
    plain = pipeline.rank_sites(demo_study, floorplans=False)
    assert "second_process" not in plain.extras
    for name in ("candidates", "selected", "demand"):
        a, b = getattr(forked, name), getattr(plain, name)
        assert list(a.columns) == list(b.columns) and a.equals(b), name
    assert forked.demand.attrs == plain.demand.attrs and forked.demand["residents"].sum() > 0
    assert forked.candidates["address"].notna().all() and forked.selected["stability"].notna().all()
    assert forked.sensitivity.to_record() == plain.sensitivity.to_record()
    assert forked.extras["stability"] == plain.extras["stability"]
    assert sorted(forked.warnings) == sorted(plain.warnings)  # the children's, given again
    lines, left_out = _map_streets.map_street_lines(forked.layers.streets)  # drawn ahead
    assert (lines, left_out) != (None, None) and not len(_map_streets._PENDING)
    want, want_left_out = street_lines(forked.layers.streets)
    assert left_out == want_left_out and len(want) and shapely.equals_exact(lines, want, 0).all()
    assert _map_streets.street_lines_stats(forked.layers.streets)["seconds"] > 0
    doc = RunRecord.from_result(forked, aside={"sites.gpkg": {"seconds": 0.5, "own_mib": 40.0}}).to_dict()
    assert set(doc["second_process"]) == {"cells", "centrality", "addresses", "stability",
                                          "sites.gpkg"}


@pytest.mark.parametrize(("stage", "started"), [("candidates", 2), ("clusters", 5)],
                         ids=["centrality-running", "stability-running"])
def test_a_run_that_fails_with_work_still_aside_leaves_no_child(
        forks, demo_study, monkeypatch, stage, started) -> None:
    """A stage that fails while a second process still works (the cells and the centrality,
    before the candidates; the stability and the map's streets, before the clusters) stops
    it: none is left running or unreaped, and the stage's own error is the one raised."""
    from siteplanner import _map_streets, candidates, footfall, pipeline

    def broken(_s) -> None:
        raise InputError(f"{stage}: broken on purpose; fix it")

    monkeypatch.setattr(pipeline, "STAGES", tuple(
        (n, broken if n == stage else f) for n, f in pipeline.STAGES))
    children: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    candidates._CENTRES.clear()
    footfall._CENTRALITY.clear()
    with pytest.raises(InputError, match="broken on purpose"):
        pipeline.rank_sites(demo_study, floorplans=False)
    # the cells and the centrality, then the addresses, the map's streets, the stability
    assert len(children) == started and not footfall._PENDING and not candidates._PENDING
    assert not len(_map_streets._PENDING)
    for pid in children:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # gone, and reaped


def test_an_answer_nobody_collects_leaves_no_zombie_and_goes_with_its_table(forks) -> None:
    """A child is reaped as soon as it ends, collected or not; the map's streets drawn
    ahead for a table go when the table goes (their child killed if still running)."""
    import gc
    import time

    import geopandas as gpd
    import shapely

    from siteplanner import _map_streets

    job = _aside.aside("testing", _pid_and, 3)
    for _ in range(200):  # the reader thread reaps the child once its answer is read
        if not job._reader.is_alive():
            break
        time.sleep(0.01)
    with pytest.raises(ChildProcessError):
        os.waitpid(job._pid, os.WNOHANG)  # no zombie left to reap
    assert job.result()[1] == 6
    streets = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (500, 0)])], crs=3035)
    _map_streets.street_lines_ahead(streets)
    (ahead,) = _map_streets._PENDING._jobs.values()
    del streets
    gc.collect()
    assert not len(_map_streets._PENDING) and ahead._done is not None  # cancelled and reaped


def _nice_and(x: int) -> tuple[int, int, int]:
    return os.getpid(), os.nice(0), x * 3


def _hold(seconds: float) -> int:
    import time

    time.sleep(seconds)
    return 1


def test_a_fresh_interpreter_runs_the_pickled_call_nicer_and_its_answer_comes_back(forks) -> None:
    pending: _aside.Pending[str, tuple[int, int, int]] = _aside.Pending()
    pending.start_fresh("k", "testing", 1.0, _nice_and, 5)
    assert "k" in pending
    found, answer = pending.take("k")
    assert found and answer is not None
    pid, nice, value = answer
    assert pid != os.getpid() and value == 15
    assert nice == min(19, os.nice(0) + _aside.FRESH_NICE)  # the run's own processes go first
    stats = pending.stats("k")
    assert stats is not None and stats["seconds"] >= 0
    with pytest.raises(InputError, match=r"^layer demand: no column 'people'; add it$"):
        _aside.Aside("testing", _fail, fork=True, fresh_mib=10.0).result()
    with pytest.raises(OutputError, match=r"^the second process testing was killed by signal 9"):
        _aside.Aside("testing", _die, fork=True, fresh_mib=10.0).result()


def test_a_fresh_interpreter_is_started_only_when_its_expected_memory_fits(forks, monkeypatch) -> None:
    mine = _aside._pss_mib(os.getpid())
    assert mine is not None
    monkeypatch.setattr(_aside, "budget_mib", lambda: mine + _aside.FRESH_BASE_MIB + 150)
    pending: _aside.Pending[str, int] = _aside.Pending()
    pending.start_fresh("big", "testing", 1000.0, _hold, 0.0)
    assert "big" not in pending and pending.take("big") == (False, None)
    pending.start_fresh("small", "testing", 10.0, _hold, 0.0)
    assert "small" in pending and pending.take("small") == (True, 1)


def test_a_fresh_interpreter_holds_none_of_the_pages_the_caller_writes_meanwhile(forks) -> None:
    """A fork's child keeps the old copy of every page its parent writes after the fork; a
    fresh interpreter shares nothing, so the caller's work beside it costs it nothing."""
    import time

    import numpy as np

    heap = np.ones(300 * 2**20 // 8)  # 300 MiB of the caller's, touched
    own = {}
    for how in ("fork", "fresh"):
        job = (_aside.Aside("testing", _hold, 3.0, fork=True) if how == "fork" else
               _aside.Aside("testing", _hold, 3.0, fork=True, fresh_mib=10.0))
        time.sleep(1.0)  # started (a fresh one has imported what it needs)
        heap += 1.0  # the caller writes every page
        rollup = _aside._rollup_mib(job._pid)
        assert rollup is not None
        own[how] = rollup["Private"]
        assert job.result() == 1
    assert own["fork"] > 290 and own["fresh"] < 150, own


def _loads_pandas_for(module: str) -> bool:
    import importlib
    import sys

    importlib.import_module(module)
    return "pandas" in sys.modules


def test_the_centrality_measured_fresh_loads_no_pandas(forks) -> None:
    """The street centrality's fresh interpreter imports numpy and scipy only: pandas alone
    would be 80 MiB, more than the work itself, beside a large city's run."""
    pending: _aside.Pending[str, bool] = _aside.Pending()
    pending.start_fresh("k", "testing", 1.0, _loads_pandas_for, "siteplanner.centrality")
    assert pending.take("k") == (True, False)


def test_where_no_fork_fits_the_centrality_is_measured_fresh_and_is_the_same(
        forks, demo_study, monkeypatch) -> None:
    """A run whose fork would not fit the budget (a large city's) measures its street
    centrality in a fresh interpreter, and ranks as the run's own process does."""
    from siteplanner import footfall, pipeline

    spawned: list[int] = []
    spawn = os.posix_spawn

    def recorded(*args, **kwargs) -> int:  # noqa: ANN002, ANN003
        pid = spawn(*args, **kwargs)
        spawned.append(pid)
        return pid

    monkeypatch.setattr(os, "posix_spawn", recorded)
    monkeypatch.setattr(footfall, "can_fork", lambda *_a, **_k: False)
    footfall._CENTRALITY.clear()
    fresh = pipeline.rank_sites(demo_study, floorplans=False)
    assert len(spawned) == 1 and fresh.extras["second_process"]["centrality"]["seconds"] > 0
    monkeypatch.setenv(_aside.ENV_OFF, "1")
    footfall._CENTRALITY.clear()
    plain = pipeline.rank_sites(demo_study, floorplans=False)
    for name in ("candidates", "selected"):
        a, b = getattr(fresh, name), getattr(plain, name)
        assert list(a.columns) == list(b.columns) and a.equals(b), name
