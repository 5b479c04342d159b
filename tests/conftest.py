"""Shared fixtures: the bundled real city, the demo study and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
HELSINKI = ROOT / "data" / "helsinki"
STUDY = HELSINKI / "study.toml"
PBF = HELSINKI / "helsinki.osm.pbf"


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
def demo_result(demo_study):
    from siteplanner.pipeline import rank_sites

    return rank_sites(demo_study)


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory, runner) -> Path:
    """The demo run through the CLI, as a planner would run it."""
    from siteplanner.cli import app

    out = tmp_path_factory.mktemp("demo")
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def absolute_study_text() -> str:
    """The demo study with its file paths made absolute, to copy into a test folder."""
    return (STUDY.read_text()
            .replace('osm = "helsinki.osm.pbf"', f'osm = "{PBF}"')
            .replace('outline = "branch_outline.geojson"',
                     f'outline = "{HELSINKI / "branch_outline.geojson"}"'))
