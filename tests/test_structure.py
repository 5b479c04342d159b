"""The package's shape: data flows left to right, so imports never loop or reach back.

Stages (sources, layers, candidates, network, features, scoring, selection,
market, floor plans, the pipeline) compute; outputs (io, record, maps, report
and their helpers) only render; the CLI drives both. A stage that imported an
output, or any import cycle, would let rendering compute again, which is how
the report once described a rule the run never applied.
"""

from __future__ import annotations

from pathlib import Path

from _imports import back_references, cycles, import_graph

PACKAGE = Path(__file__).resolve().parent.parent / "siteplanner"

#: Flow order: everything not named here is a stage.
OUTPUTS = {"siteplanner.io", "siteplanner.record", "siteplanner.maps", "siteplanner.report",
           "siteplanner.national_outputs",
           "siteplanner._charts", "siteplanner._display", "siteplanner._assets",
           "siteplanner._whatif"}
APPS = {"siteplanner", "siteplanner.cli", "siteplanner.floorplan.cli", "siteplanner.national_run"}
LEAVES = {"siteplanner._errors": set(), "siteplanner._fs_guard": {"siteplanner._errors"},
          "siteplanner._fs": {"siteplanner._errors", "siteplanner._fs_guard"}}


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph(PACKAGE)) == []


def test_no_stage_imports_an_output_and_no_module_imports_the_cli():
    graph = import_graph(PACKAGE)
    assert back_references(graph, [set(), OUTPUTS, APPS]) == []


def test_the_error_and_filesystem_modules_are_leaves():
    graph = import_graph(PACKAGE)
    for name, allowed in LEAVES.items():
        assert graph[name] <= allowed, f"{name} imports {graph[name] - allowed}"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_check_finds_a_cycle_made_by_a_lazy_import(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "stage.py": "from pkg import helper\n",
        "helper.py": "def f():\n    from pkg.stage import g\n    return g\n",
        "out.py": "from . import stage\n",
    })
    graph = import_graph(root)
    assert cycles(graph) == [["pkg.helper", "pkg.stage"]]


def test_the_check_finds_a_stage_that_imports_an_output(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "stage.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.out import X\n",
        "out.py": "import pkg.stage\n",
    })
    assert back_references(import_graph(root), [set(), {"pkg.out"}]) == [("pkg.stage", "pkg.out")]
