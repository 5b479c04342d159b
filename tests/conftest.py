"""Shared fixtures: the bundled real city, the demo study and a CLI runner."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
HELSINKI = ROOT / "data" / "helsinki"
STUDY = HELSINKI / "study.toml"
PBF = HELSINKI / "helsinki.osm.pbf"

# The suite keeps its read cache (and online answers) in a folder of its own, never the
# user's ~/.cache: each test process starts with no kept reads, whatever ran before.
os.environ["SITEPLANNER_CACHE"] = tempfile.mkdtemp(prefix="siteplanner-test-cache-")
atexit.register(shutil.rmtree, os.environ["SITEPLANNER_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def helsinki_osm():
    """The bundled extract read once per session (OSMData)."""
    from siteplanner.sources.pbf import read_pbf

    return read_pbf(PBF)


@pytest.fixture(scope="session")
def demo_study():
    from siteplanner.config import load_study

    return load_study(STUDY)


@pytest.fixture(scope="session")
def _demo_run(tmp_path_factory, runner):
    """The demo run through the CLI, as a planner would run it, and the RankResult it wrote."""
    from siteplanner import pipeline
    from siteplanner.cli import app

    out = tmp_path_factory.mktemp("demo")
    results = []
    rank_sites = pipeline.rank_sites

    def recorded(*args, **kwargs):
        results.append(rank_sites(*args, **kwargs))
        return results[-1]

    # the CLI looks rank_sites up when it runs: keeping its answer spares a second run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "rank_sites", recorded)
        res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert len(results) == 1
    return out, results[0]


@pytest.fixture(scope="session")
def demo_result(_demo_run):
    """The demo study's RankResult (the one the demo_out files were written from)."""
    return _demo_run[1]


@pytest.fixture(scope="session")
def demo_out(_demo_run) -> Path:
    """The output folder of the demo run through the CLI."""
    return _demo_run[0]


def absolute_study_text() -> str:
    """The demo study with its file paths made absolute, to copy into a test folder."""
    return (STUDY.read_text()
            .replace('osm = "helsinki.osm.pbf"', f'osm = "{PBF}"')
            .replace('outline = "branch_outline.geojson"',
                     f'outline = "{HELSINKI / "branch_outline.geojson"}"'))
