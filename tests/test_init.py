"""`siteplanner init`: a commented study for a new place, from what its data holds."""

from __future__ import annotations

from siteplanner import datasets
from siteplanner.cli import app
from siteplanner.config import load_study


def test_init_writes_a_study_that_loads_with_the_brands_and_boundaries_found(runner, tmp_path):
    res = runner.invoke(app, ["init", str(tmp_path / "andorra"), "--osm", str(datasets.andorra().osm),
                              "--brand", "MoraBanc"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "andorra" / "study.toml"
    text = path.read_text(encoding="utf-8")
    # near-duplicate spellings of one bank are listed as one brand, with its branch count
    assert "#   MoraBanc / MoraBanc (Seu Social) / Morabank (3)" in text
    assert "#   7: Andorra la Vella, Canillo, Encamp" in text
    study = load_study(path)
    assert study.brand == ("MoraBanc",) and study.admin_level == 2
    assert study.osm is not None and study.osm.samefile(datasets.andorra().osm)
    assert study.selection.min_spacing_m == 400.0  # the package default, no city's
    again = runner.invoke(app, ["init", str(tmp_path / "andorra"), "--osm",
                                str(datasets.andorra().osm)])
    assert again.exit_code == 1 and "already exists" in again.stderr and "--force" in again.stderr


def test_init_names_a_missing_extract(runner, tmp_path):
    res = runner.invoke(app, ["init", str(tmp_path), "--osm", str(tmp_path / "nope.osm.pbf")])
    assert res.exit_code == 1
    assert "nope.osm.pbf: file not found" in res.stderr and "Traceback" not in res.output
