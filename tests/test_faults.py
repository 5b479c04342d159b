"""Killed, interrupted, overlapping and out-of-space runs of ``siteplanner rank``.

Each run is a real subprocess. ``SITEPLANNER_TEST_KILL_AT=STEP:SIGNAL`` makes
:mod:`siteplanner._fs` send itself SIGNAL at STEP of the output swap:
``start`` (the new folder made, user files copied), ``written`` (every output
written), ``manifest`` (the new folder complete), ``moved`` (the old folder
renamed away) and ``swapped`` (the new folder in place, the old not yet removed).
The output folder must then hold the previous run's files or the new run's
complete set, never a mix, and no temporary folder may outlive the next run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import STUDY

from siteplanner._fs import MANIFEST

CLI = [str(Path(sys.executable).parent / "siteplanner")]
USER_PLAN = "floorplans/my-site/plan.svg"


def _rank(out: Path, top: int, *, kill_at: str | None = None,
          wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SITEPLANNER_TEST_KILL_AT"}
    if kill_at:
        env["SITEPLANNER_TEST_KILL_AT"] = kill_at
    cmd = [*CLI, "rank", str(STUDY), "--no-report", "--top", str(top), "--out", str(out)]
    if not wait:
        return subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=_as_from_a_terminal)
    return subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=300,
                          preexec_fn=_as_from_a_terminal)


def _as_from_a_terminal() -> None:
    """SIGINT and SIGTERM as a run started from a terminal has them: a test runner's worker
    may ignore SIGINT, and a child inherits that, so Ctrl-C would never reach the run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _temps(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".siteplanner-"))


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> dict[str, bytes]:
    """A finished top-3 run's folder, plus a floor plan the user added, as file -> bytes."""
    out = tmp_path_factory.mktemp("previous") / "out"
    res = _rank(out, 3)
    assert res.returncode == 0, res.stderr
    (out / USER_PLAN).parent.mkdir(parents=True)
    (out / USER_PLAN).write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return _tree(out)


def _state(out: Path, previous: dict[str, bytes]) -> str:
    """'old' when the folder is the previous run byte for byte, 'new' when it is a complete
    top-4 run (every manifest file there, the tables agree, the user's plan kept)."""
    files = _tree(out)
    if files == previous:
        return "old"
    manifest = json.loads(files[MANIFEST])["files"]
    assert set(files) == {*manifest, MANIFEST, USER_PLAN}, "a mix of two runs' files"
    assert files[USER_PLAN] == previous[USER_PLAN]
    assert len(pd.read_csv(out / "ranked_sites.csv")) == 4
    assert json.loads(files["run.json"])["selection"]["top_k"] == 4
    return "new"


def _next_run_cleans(out: Path) -> str:
    """A later run (one that fails on its study) finishes the swap and removes the temps."""
    res = subprocess.run([*CLI, "rank", str(out.parent / "no-such-study.toml"), "--out", str(out)],
                         text=True, capture_output=True, timeout=120)
    assert res.returncode == 1
    assert _temps(out.parent) == []
    return res.stderr


@pytest.mark.parametrize(("step", "expect"), [
    ("start", "old"), ("written", "old"), ("manifest", "old"), ("moved", "new"),
    ("swapped", "new")])
def test_sigkill_at_any_step_leaves_the_old_or_the_new_output(previous, tmp_path, step, expect):
    out = tmp_path / "out"
    for rel, data in previous.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    res = _rank(out, 4, kill_at=f"{step}:KILL")
    assert res.returncode == -signal.SIGKILL, res.stderr
    if step == "moved":  # between the two renames: the complete new folder waits beside
        assert not out.exists()
        assert any(".new-" in t for t in _temps(tmp_path))
    else:
        assert _state(out, previous) == expect
        assert _temps(tmp_path)  # what the killed run left
    said = _next_run_cleans(out)
    assert said.count("temporary folder") == 1
    assert _state(out, previous) == expect


@pytest.mark.parametrize(("kill_at", "code", "expect"), [
    ("written:INT", 130, "old"), ("moved:INT", 130, "new"), ("start:TERM", 143, "old"),
    ("manifest:TERM", 143, "old")])
def test_sigint_and_sigterm_clean_up_and_exit_130_or_143(previous, tmp_path, kill_at, code,
                                                         expect):
    out = tmp_path / "out"
    for rel, data in previous.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    res = _rank(out, 4, kill_at=kill_at)
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.strip().startswith("stopped:")
    assert _temps(tmp_path) == []
    assert _state(out, previous) == expect


def test_a_second_run_on_the_same_folder_fails_at_once_and_the_first_finishes(tmp_path):
    out = tmp_path / "out"
    first = _rank(out, 3, wait=False)
    assert isinstance(first, subprocess.Popen)
    lock = tmp_path / ".siteplanner-out.lock"
    deadline = time.monotonic() + 120
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    second = _rank(out, 5)
    assert isinstance(second, subprocess.CompletedProcess)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"error: --out {out}: another siteplanner run (pid {first.pid}) is writing this "
        "folder; wait for it to finish or choose another --out")
    assert time.monotonic() - started < 30  # it did not wait for the first run's work
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len(pd.read_csv(out / "ranked_sites.csv")) == 3
    assert _temps(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 6 MB tmpfs (root only; skipped where mounting is not allowed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_gives_one_line_and_loses_nothing(previous, tiny_disk):
    out = tiny_disk / "out"
    for rel, data in previous.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    free = shutil.disk_usage(tiny_disk).free
    (tiny_disk / "filler").write_bytes(b"\0" * max(free - 400_000, 0))
    res = _rank(out, 4)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines == [f"error: --out {out}: disk full while writing the outputs; free some "
                     "space or choose another --out (the previous output is unchanged)"]
    assert _tree(out) == previous
    assert _temps(tiny_disk) == []
    # a first run into the full disk leaves no empty folder behind
    res = _rank(tiny_disk / "fresh" / "out", 4)
    assert res.returncode == 1 and "disk full" in res.stderr
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "out"]
