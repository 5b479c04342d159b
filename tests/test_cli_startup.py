"""The command line starts fast: ``--help`` loads no heavy library, and ends cleanly.

No timings are asserted (the machine is shared); what is asserted is what makes
the start slow when it breaks: the heavy modules a command does not need.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import siteplanner
from siteplanner.cli import FLOORPLAN_HELP, app

HEAVY = ("geopandas", "sklearn", "folium", "matplotlib", "pyrosm", "osmnx", "jinja2", "scipy")
CLI = Path(sys.executable).with_name("siteplanner")
FLOORPLAN_DATA = Path(__file__).parent / "data" / "floorplan"


def _loaded_after(code: str) -> list[str]:
    probe = (f"import json, sys\n{code}\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_help_and_import_load_no_heavy_library() -> None:
    assert _loaded_after("import siteplanner") == []
    assert _loaded_after("from siteplanner.cli import app\n"
                         "from typer.testing import CliRunner\n"
                         "r = CliRunner().invoke(app, ['--help'])\n"
                         "assert r.exit_code == 0 and 'floorplan' in r.output, r.output") == []


def test_public_names_are_still_importable_from_the_package() -> None:
    from siteplanner.network import WalkGraph
    from siteplanner.pipeline import rank_sites

    assert siteplanner.rank_sites is rank_sites
    assert siteplanner.WalkGraph is WalkGraph
    assert set(siteplanner.__all__) <= set(dir(siteplanner))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        siteplanner.nope  # noqa: B018


def test_floorplan_help_line_is_the_planners_own_docstring() -> None:
    from siteplanner.floorplan.cli import floorplan_command

    assert floorplan_command.__doc__ is not None
    assert floorplan_command.__doc__.splitlines()[0] == FLOORPLAN_HELP


def test_floorplan_runs_through_the_main_app(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    res = CliRunner().invoke(app, ["floorplan", "--outline", str(FLOORPLAN_DATA / "l_shape.geojson"),
                                   "--entrance", "20,4", "--arrivals", "80", "--seed", "2",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "zones.geojson").is_file() and "Zone sizing" in res.output
    usage = CliRunner().invoke(app, ["floorplan", "--help"])
    assert usage.exit_code == 0 and "--outline" in usage.output
    bad = CliRunner().invoke(app, ["floorplan", "--outline", str(tmp_path / "none.geojson"),
                                   "--entrance", "1,1", "--arrivals", "10", "--out", str(out)])
    assert bad.exit_code == 1 and "none.geojson" in bad.output


@pytest.mark.skipif(not CLI.is_file(), reason="the console script is not installed")
def test_console_script_flushes_its_output_and_keeps_the_exit_code(tmp_path: Path) -> None:
    ok = subprocess.run([str(CLI), "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "rank" in ok.stdout
    missing = tmp_path / "missing.osm.pbf"
    bad = subprocess.run([str(CLI), "rank", "--osm", str(missing), "--brand", "X",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error:") and "missing.osm.pbf" in bad.stderr
    usage = subprocess.run([str(CLI), "rank", "--top", "many"], capture_output=True, text=True)
    assert usage.returncode == 2 and "Usage: siteplanner rank" in usage.stderr
