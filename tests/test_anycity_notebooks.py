"""The quickstart notebook finds the bundled study from any folder (through siteplanner.datasets)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_criteria_and_weights.ipynb"])
def test_notebook_runs_from_a_folder_outside_the_checkout(name, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert "Path.cwd()" not in "".join(c.source for c in nb.cells)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
