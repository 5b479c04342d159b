"""The analyst notebooks run top to bottom, offline, on the bundled data, each within a minute."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
#: A cell that runs longer is taken as hung (a guard, not a speed test: speeds are measured
#: in benchmarks/, and a shared CI machine may be slow).
CELL_TIMEOUT_S = 300


def _run(name: str) -> object:
    """The notebook, executed cell by cell from the notebooks folder."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def _texts(nb: object) -> str:
    out = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
            out.extend(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(out)


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebooks_are_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code"
    assert all(not c.outputs and c.execution_count is None for c in code), \
        f"{name} has outputs; clear them before committing"


def test_quickstart_runs_and_shows_the_tables_map_and_outputs():
    nb = _run("01_quickstart.ipynb")
    text = _texts(nb)
    assert "Helsinki city centre | brand: Nordea | top K: 10" in text
    assert "largest gap between the parts and the score: 0.0" in text
    assert "ranked below the top sites" in text
    maps = [o for c in nb.cells for o in c.get("outputs", [])
            if "leaflet" in o.get("data", {}).get("text/html", "").lower()]
    assert maps, "the map did not render inline"
    for name in ("map.html", "ranked_sites.csv", "report.html", "run.json", "sites.gpkg"):
        assert f"'{name}'" in text


def test_criteria_notebook_compares_weightings_and_reads_stability():
    nb = _run("02_criteria_and_weights.ipynb")
    text = _texts(nb)
    assert "same sites as the full rerun: True" in text
    assert "of 10 sites are chosen under both weightings" in text
    assert "kept_share" in text and "same_rank" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 2


def test_floor_plan_notebook_sizes_lays_out_and_exports_a_branch():
    floorplan = pytest.importorskip("siteplanner.floorplan")
    if not hasattr(floorplan, "plan_floor"):
        pytest.skip("siteplanner.floorplan has no plan_floor yet; the floor-plan notebook needs it")
    nb = _run("03_floor_plan.ipynb")
    text = _texts(nb)
    assert "'all_constraints_pass': True" in text
    assert "120 arrivals/h" in text
    assert "'plan.svg'" in text and "'zones.geojson'" in text
