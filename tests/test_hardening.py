"""One test per defect of issue #18 fixed in the filesystem, console and layer-reader code.

Each reproduces the probe's case: hostile site ids, console markup in data, user files in
the output folder, a full disk, temp folders of killed runs, and non-finite or ambiguous
layer files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from conftest import STUDY, absolute_study_text
from shapely.geometry import Point

from siteplanner._errors import InputError, OutputError
from siteplanner._fs import MANIFEST, atomic_outputs, output_lock, safe_component
from siteplanner.cli import app
from siteplanner.config import LayerFile, load_study
from siteplanner.io import write_rank_outputs
from siteplanner.sources.files import read_layer_file


def _rank(runner, out: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["rank", str(STUDY), "--out", str(out), *args])


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- 1. path traversal

@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "..", ".", "", "a/b", "a\\b", "CON",
                                  "x\x00y", "\x1b[31mred", "é", "a" * 300, ".hidden",
                                  "ok-0123456789abcdef"])
def test_safe_component_is_one_bounded_component_inside_the_folder(name, tmp_path):
    comp = safe_component(name)
    assert comp == safe_component(name)  # deterministic
    assert comp not in ("", ".", "..") and "/" not in comp and "\\" not in comp
    assert not comp.startswith(".") and len(comp) <= 100
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in comp)
    assert (tmp_path / comp).resolve().parent == tmp_path.resolve()


def test_safe_component_keeps_plain_ids_and_never_maps_two_names_to_one():
    assert safe_component("8b1126d8e6b0fff") == "8b1126d8e6b0fff"
    assert safe_component("S-01_a.b") == "S-01_a.b"
    names = ["a/b", "a_b", "a?b", "a b", safe_component("a/b"), "a" * 81, "a" * 82]
    assert len({safe_component(n) for n in names}) == len(names)


def test_site_ids_with_paths_write_nothing_outside_the_output_folder(runner, tmp_path):
    target = tmp_path / "PWNED"
    cands = tmp_path / "c.csv"
    cands.write_text(f"site_id,lon,lat\n{target},24.94,60.17\n../../PWNED2,24.945,60.172\n")
    out = tmp_path / "runs" / "o"
    res = _rank(runner, out, "--layer", f"candidates={cands}",
                "--set", "selection.min_distance_to_own_m=0", "--set", "selection.min_spacing_m=0")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "runs"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["o"]
    plans = sorted(p.name for p in (out / "floorplans").iterdir())
    assert plans == sorted([safe_component(str(target)), safe_component("../../PWNED2")])
    html = (out / "map.html").read_text(encoding="utf-8")
    assert all(f"floorplans/{p}/plan.svg" in html for p in plans)
    assert (out / "report.html").read_text(encoding="utf-8").count("class='plan'") == 2


# --------------------------------------------------------------------------- 2. console markup

def test_markup_in_a_brand_is_printed_as_text(runner, tmp_path):
    res = _rank(runner, tmp_path / "o", "--brand", "[/x]")
    assert res.exit_code == 1, res.output
    assert "MarkupError" not in res.output and "[/x]" in res.output
    assert res.output.startswith("error:") and len(res.output.strip().splitlines()) == 1


def test_words_in_brackets_survive_in_messages(runner, tmp_path):
    res = _rank(runner, tmp_path / "o", "--layer", f"competitors={tmp_path / 'none.csv'}")
    assert res.exit_code == 1
    assert "[layers.competitors]" in res.output


def test_a_study_named_with_markup_and_ansi_prints_its_table_as_text(runner, tmp_path):
    study = tmp_path / "study.toml"
    text = absolute_study_text()
    first = next(line for line in text.splitlines() if line.startswith("name"))
    study.write_text(text.replace(first, 'name = "Study [/x] end"', 1))
    out = tmp_path / "o"
    res = runner.invoke(app, ["rank", str(study), "--no-report", "--top", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Study [/x] end: top 2 sites" in res.output
    # a terminal escape in the name is refused in one line, and never reaches the terminal raw
    study.write_text(text.replace(first, 'name = "Study \\u001b[2J end"', 1))
    res = runner.invoke(app, ["rank", str(study), "--no-report", "--top", "2", "--out", str(out)])
    assert res.exit_code == 1 and "study.name" in res.output and "control characters" in res.output
    assert "\x1b" not in res.output and len(res.output.strip().splitlines()) == 1


# --------------------------------------------------------------------------- 4. user files

@pytest.fixture
def rerun_folder(demo_out, tmp_path) -> Path:
    """A copy of the demo run's folder with a floor plan and a note the user added."""
    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    mine = out / "floorplans" / "my-own-site"
    mine.mkdir()
    (mine / "plan.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (out / "notes.txt").write_text("why these sites")
    return out


def test_a_rerun_keeps_the_files_the_user_added(demo_result, rerun_folder):
    from dataclasses import replace

    sel = demo_result.selected.sort_values("rank").copy()
    sel.loc[sel.index[-1], "site_id"] = "my-own-site"  # ranked below the 3 the study plans
    mine = (rerun_folder / "floorplans" / "my-own-site" / "plan.svg").read_bytes()
    # a full run that draws its own floor plans (the old swap replaced floorplans/ whole)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing of the user's is replaced
        write_rank_outputs(replace(demo_result, selected=sel), rerun_folder, report=True)
    assert (rerun_folder / "floorplans" / "my-own-site" / "plan.svg").read_bytes() == mine
    assert len(list((rerun_folder / "floorplans").iterdir())) == 4
    assert (rerun_folder / "notes.txt").read_text() == "why these sites"
    # the user's plan is linked from the new map
    assert "floorplans/my-own-site/plan.svg" in (rerun_folder / "map.html").read_text()


def test_no_report_drops_the_report_and_plans_the_earlier_run_wrote(demo_result, demo_out,
                                                                    rerun_folder):
    run_plans = [p.name for p in (demo_out / "floorplans").iterdir()]
    assert run_plans
    write_rank_outputs(demo_result, rerun_folder, report=False)
    assert not (rerun_folder / "report.html").exists()
    assert [p.name for p in (rerun_folder / "floorplans").iterdir()] == ["my-own-site"]
    html = (rerun_folder / "map.html").read_text(encoding="utf-8")
    assert not any(f"floorplans/{p}/" in html for p in run_plans)
    manifest = json.loads((rerun_folder / MANIFEST).read_text())["files"]
    assert "notes.txt" not in manifest and "ranked_sites.csv" in manifest


def test_rebuilding_the_report_keeps_every_other_output(demo_out, tmp_path):
    from siteplanner.report import rebuild_report

    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    before = _tree(out)
    rebuild_report(out)
    after = _tree(out)
    assert set(after) == set(before)
    assert all(after[f] == before[f] for f in before if f not in ("report.html", MANIFEST))


def test_a_folder_of_other_files_is_not_swapped_out(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="did not write.*thesis.tex"), atomic_outputs(tmp_path):
        pass
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


# --------------------------------------------------------------------------- 5. full disk

def _disk_full(*_a, **_k):  # type: ignore[no-untyped-def]
    from pyogrio.errors import DataSourceError

    msg = "sqlite3_exec(COMMIT) failed: database or disk is full"
    raise DataSourceError(msg)


def _fill_the_disk(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every GeoPackage write fails as GDAL does on a full disk (both ways io may write)."""
    import pyogrio

    monkeypatch.setattr(gpd.GeoDataFrame, "to_file", _disk_full)
    monkeypatch.setattr(pyogrio, "write_dataframe", _disk_full)


def test_a_full_disk_is_one_line_and_keeps_the_previous_output(demo_result, demo_out, tmp_path,
                                                               monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    before = _tree(out)
    _fill_the_disk(monkeypatch)
    with pytest.raises(OutputError) as e:
        write_rank_outputs(demo_result, out, report=False)
    assert "disk full" in str(e.value) and str(out) in str(e.value)
    assert "\n" not in str(e.value)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_first_run_on_a_full_disk_leaves_no_empty_folder(demo_result, tmp_path, monkeypatch):
    _fill_the_disk(monkeypatch)
    with pytest.raises(OutputError, match="disk full"):
        write_rank_outputs(demo_result, tmp_path / "new" / "out", report=False)
    assert list(tmp_path.iterdir()) == []


def test_enospc_from_a_writer_is_disk_full(tmp_path):
    import errno

    with pytest.raises(OutputError, match="disk full"), atomic_outputs(tmp_path / "o"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 7. stale temp folders

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_folders_of_dead_runs_are_removed_once_and_live_ones_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ranked_sites.csv").write_text("rank\n1\n")
    dead = tmp_path / f".siteplanner-out.new-{_dead_pid()}-0a1b"
    dead.mkdir()
    (dead / "ranked_sites.csv").write_text("half")
    live = tmp_path / f".siteplanner-out.new-{os.getppid()}-0a1b"
    live.mkdir()
    other = tmp_path / f".siteplanner-other.new-{_dead_pid()}-0a1b"  # another folder's
    other.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with output_lock(out):
            pass
        with output_lock(out):
            pass
    said = [str(w.message) for w in caught if "temporary folder" in str(w.message)]
    assert len(said) == 1 and str(out) in said[0]
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert (out / "ranked_sites.csv").read_text() == "rank\n1\n"


def test_a_swap_killed_between_its_renames_is_finished_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    pid = _dead_pid()
    old = tmp_path / f".siteplanner-out.old-{pid}-0a1b"
    old.mkdir()
    (old / "ranked_sites.csv").write_text("old")
    new = tmp_path / f".siteplanner-out.new-{pid}-0a1b"
    new.mkdir()
    (new / "ranked_sites.csv").write_text("new")
    (new / MANIFEST).write_text(json.dumps({"files": ["ranked_sites.csv"]}))
    with pytest.warns(UserWarning, match="complete output in place"), output_lock(out):
        pass
    assert (out / "ranked_sites.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --------------------------------------------------------------------------- 9, 12. layer readers

def _csv(tmp_path: Path, text: str, kind: str = "competitors") -> LayerFile:
    p = tmp_path / "layer.csv"
    p.write_text(text, encoding="utf-8")
    return LayerFile(kind=kind, path=p)


@pytest.mark.parametrize("value", ["inf", "-inf", "1e999"])
def test_an_infinite_csv_coordinate_names_the_file_and_line(tmp_path, value):
    spec = _csv(tmp_path, f"name,lon,lat\na,24.9,60.1\nb,{value},60.2\n")
    with pytest.raises(InputError, match=r"layer\.csv\): line 3 has a lon/lat that is not finite"):
        read_layer_file(spec)


def test_a_nan_coordinate_in_geojson_names_the_feature_and_is_not_repaired(tmp_path):
    p = tmp_path / "area.geojson"
    ring = "[[24.9,60.1],[24.95,60.1],[NaN,60.15],[24.9,60.1]]"
    p.write_text('{"type":"FeatureCollection","features":['
                 '{"type":"Feature","properties":{},"geometry":{"type":"Point",'
                 '"coordinates":[24.9,60.1]}},'
                 '{"type":"Feature","properties":{},"geometry":{"type":"Polygon",'
                 f'"coordinates":[{ring}]}}}}]}}')
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "repaired invalid geometries" warning first
        with pytest.raises(InputError, match="feature 2 has a coordinate that is not a finite"):
            read_layer_file(LayerFile(kind="competitors", path=p))


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_a_non_finite_count_names_the_file_and_line(tmp_path, value):
    spec = _csv(tmp_path, f"lon,lat,count\n24.9,60.1,5\n24.91,60.11,{value}\n", "foot_traffic")
    with pytest.raises(InputError, match=r"layer\.csv\): line 3 has count = .*finite number >= 0"):
        read_layer_file(spec)


def test_a_semicolon_separated_csv_gets_a_separator_hint(tmp_path):
    spec = _csv(tmp_path, "name;lon;lat\na;24,9;60,1\n")
    with pytest.raises(InputError, match="separated by semicolons: save the file with commas"):
        read_layer_file(spec)


def test_column_names_in_a_message_stay_on_one_line(tmp_path):
    spec = _csv(tmp_path, '"x\ny",lat\n1,2\n')
    with pytest.raises(InputError) as e:
        read_layer_file(spec)
    assert "\n" not in str(e.value) and "'x\\ny'" in str(e.value)


@pytest.fixture
def two_layers(tmp_path) -> Path:
    p = tmp_path / "shops_and_banks.gpkg"
    for name, x in (("banks", 24.94), ("shops", 24.95)):
        gpd.GeoDataFrame({"name": [name]}, geometry=[Point(x, 60.17)], crs=4326).to_file(
            p, layer=name, engine="pyogrio")
    return p


def test_a_geopackage_with_two_layers_asks_which_one(two_layers):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(InputError, match=r"holds 2 layers \('banks', 'shops'\).*"
                                             r"layer = \"NAME\" under \[layers.competitors\]"):
            read_layer_file(LayerFile(kind="competitors", path=two_layers))
    got = read_layer_file(LayerFile(kind="competitors", path=two_layers, layer="shops"))
    assert got["name"].tolist() == ["shops"]
    with pytest.raises(InputError, match="no layer 'nope'.*'banks', 'shops'"):
        read_layer_file(LayerFile(kind="competitors", path=two_layers, layer="nope"))


def test_a_layer_is_chosen_in_the_study_file_and_on_the_command_line(two_layers, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(absolute_study_text() + f'\n[layers.competitors]\npath = "{two_layers}"\n'
                     'layer = "banks"\n')
    assert load_study(study).layers["competitors"].layer == "banks"
    over = load_study(study).with_overrides(layers=[f"competitors={two_layers}:shops"])
    assert over.layers["competitors"].layer == "shops"
    assert over.layers["competitors"].path == two_layers

