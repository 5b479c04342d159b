"""The typed study schema: every bad setting gets one line naming its key, from a file, --set or Python."""

from __future__ import annotations

import pytest
from conftest import PBF, STUDY, absolute_study_text

from siteplanner._errors import ConfigError
from siteplanner.cli import app
from siteplanner.config import (
    CRITERIA,
    CandidateSettings,
    ModelSettings,
    SelectionSettings,
    Study,
    load_study,
)
from siteplanner.criteria import CRITERIA as REGISTRY

BASE = '[study]\nbrand = "Nordea"\nosm = "x.pbf"\n'


def load_text(tmp_path, text: str) -> Study:
    p = tmp_path / "study.toml"
    p.write_text(text, encoding="utf-8")
    return load_study(p)


def refused(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1, msg
    return msg


def assert_one_line_cli_error(res, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], lines[0]


# --- #18 item 6: a blank brand made every bank an own branch ---------------------------------

@pytest.mark.parametrize("brand", ["", " "])
def test_a_blank_brand_on_the_command_line_is_refused(runner, tmp_path, brand):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--brand", brand])
    assert_one_line_cli_error(res, "--brand", "study.brand", "not blank")
    assert not out.exists()


def test_a_blank_brand_in_the_study_file_is_refused(tmp_path):
    msg = refused(tmp_path, '[study]\nbrand = ["Nordea", "  "]\nosm = "x.pbf"\n')
    assert "study.brand" in msg and "not blank" in msg


# --- #18 item 8: unvalidated TOML types crashed with tracebacks ------------------------------

@pytest.mark.parametrize(("line", "key"), [
    ('seed = "abc"', "study.seed"),
    ("seed = [1]", "study.seed"),
    ("seed = -1", "study.seed"),
    ('crs = "EPSG:99999"', "study.crs"),
])
def test_mistyped_study_values_name_their_key(tmp_path, line, key):
    msg = refused(tmp_path, BASE + line + "\n")
    assert msg.startswith(str(tmp_path / "study.toml")) and f"{key} = " in msg and "expected" in msg


@pytest.mark.parametrize(("text", "needle"), [
    ('[study]\nbrand = 5\nosm = "x.pbf"\n', "study.brand = 5: expected"),
    ('[study]\nbrand = "Nordea"\nosm = 5\n', "study.osm = 5: expected a file path"),
    ('layers = "x"\n' + BASE, 'layers = "x": expected a table'),
    (BASE + "[layers.competitors]\npath = 5\n", "layers.competitors.path = 5: expected a file path"),
])
def test_mistyped_tables_and_paths_name_their_key(tmp_path, text, needle):
    assert needle in refused(tmp_path, text)


def test_an_unknown_crs_is_one_line_in_the_cli(runner, tmp_path):
    p = tmp_path / "study.toml"
    p.write_text(absolute_study_text().replace("seed = 42", 'seed = 42\ncrs = "EPSG:99999"'))
    res = runner.invoke(app, ["rank", str(p), "--out", str(tmp_path / "out")])
    assert_one_line_cli_error(res, "study.toml", 'study.crs = "EPSG:99999"', "projected CRS")


# --- #18 item 10: --set skipped the study file's checks --------------------------------------

@pytest.mark.parametrize(("setting", "needle"), [
    ("selection.coverage_minutes=0", "selection.coverage_minutes = 0: expected a number > 0"),
    ("selection.top_k=inf", "selection.top_k = inf: expected a whole number >= 1"),
    ("selection.top_k=nan", "selection.top_k = nan: expected a whole number >= 1"),
])
def test_set_values_get_the_study_files_checks(runner, tmp_path, setting, needle):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--set", setting])
    assert_one_line_cli_error(res, "--set", needle)
    assert not out.exists()


def test_set_and_the_file_say_the_same_about_a_value(tmp_path):
    from_file = refused(tmp_path, BASE + "[selection]\ntop_k = inf\n")
    with pytest.raises(ConfigError) as e:
        Study(brand="Nordea").with_overrides(sets=["selection.top_k=inf"])
    assert from_file.split(": ", 1)[1] == str(e.value).split(": ", 1)[1]


# --- #18 item 11: silent wrong results -------------------------------------------------------

@pytest.mark.parametrize(("text", "needle"), [
    ('[model]\nclusters = "false"\n', 'model.clusters = "false": expected true or false'),
    ("[selection]\ntop_k = true\n", "selection.top_k = true: expected a whole number >= 1"),
    ("[selection]\ntop_k = 4.7\n", "selection.top_k = 4.7: expected a whole number"),
    ("seed = 4.7\n", "study.seed = 4.7: expected a whole number"),
])
def test_values_of_the_wrong_type_are_refused_not_coerced(tmp_path, text, needle):
    body = BASE + text if text.startswith("[") else BASE.replace("[study]\n", "[study]\n" + text)
    assert needle in refused(tmp_path, body)


def test_weights_whose_sum_overflows_are_refused(tmp_path):
    msg = refused(tmp_path, BASE + "[criteria.transit]\nweight = 1e308\n"
                                   "[criteria.commercial]\nweight = 1e308\n")
    assert "criteria" in msg and "sum to inf" in msg


# --- #18 item 12: a UTF-8 BOM reported "Invalid statement" -----------------------------------

def test_a_study_file_with_a_utf8_bom_loads(tmp_path):
    p = tmp_path / "study.toml"
    p.write_bytes(b"\xef\xbb\xbf" + absolute_study_text().encode("utf-8"))
    study = load_study(p)
    assert study.name == "Helsinki city centre" and study.brand == ("Nordea",)


# --- #12 item 8: an API shaped for Python ----------------------------------------------------

def test_a_study_built_in_python_has_every_criterion_at_its_default():
    study = Study(brand="Nordea", osm=PBF)
    assert list(study.criteria) == list(REGISTRY)
    for name, c in study.criteria.items():
        assert (c.direction, c.weight, c.radius_m) == (REGISTRY[name].direction,
                                                        REGISTRY[name].weight,
                                                        REGISTRY[name].radius_m)


@pytest.mark.slow
def test_a_study_built_in_python_ranks(tmp_path):
    # built in code it used to end in "max() arg is an empty sequence": it had no criteria
    from siteplanner.pipeline import rank_sites

    # the bundled extract is a 1 km clip: every cell's reach meets its edge, so keep them
    study = Study(brand=("Nordea",), osm=PBF, seed=1, selection=SelectionSettings(top_k=3),
                  candidates=CandidateSettings(edge="keep"),
                  model=ModelSettings(stability_draws=0, clusters=False, territories=False))
    result = rank_sites(study)
    assert len(result.selected) == 3
    assert result.selected["score"].is_monotonic_decreasing


def test_a_bad_value_in_python_gets_the_same_one_line_message():
    with pytest.raises(ConfigError, match=r"selection\.top_k = 0: expected a whole number >= 1"):
        SelectionSettings(top_k=0)
    with pytest.raises(ConfigError, match=r"study\.seed = true"):
        Study(brand="Nordea", seed=True)  # type: ignore[arg-type]


def test_replace_validates_and_merges_a_section():
    study = Study(brand="Nordea")
    changed = study.replace(selection={"top_k": 4}, seed=7)
    assert (changed.selection.top_k, changed.seed) == (4, 7)
    assert changed.selection.min_spacing_m == study.selection.min_spacing_m
    assert study.selection.top_k == 10  # the original is untouched
    with pytest.raises(ConfigError, match=r"selection\.top_k = 0"):
        study.replace(selection={"top_k": 0})
    with pytest.raises(ConfigError, match=r"selection\.method = \"best\""):
        study.replace(selection={"method": "best"})


def test_with_weights_changes_only_the_named_weights_and_validates():
    study = Study(brand="Nordea")
    w = study.with_weights(transit=0.6, competition=0)
    assert w.criteria["transit"].weight == 0.6 and w.criteria["competition"].weight == 0
    assert w.criteria["commercial"] == study.criteria["commercial"]
    with pytest.raises(ConfigError, match="unknown criterion"):
        study.with_weights(parking=1.0)
    with pytest.raises(ConfigError, match="nan"):
        study.with_weights(transit=float("nan"))
    with pytest.raises(ConfigError, match="weight > 0"):
        study.with_weights(**dict.fromkeys(CRITERIA, 0.0))


def test_with_weights_replaces_ahp_judgements(tmp_path):
    ahp = load_text(tmp_path, BASE + "[ahp]\nfoot_traffic.transit = 3\n")
    assert ahp.ahp is not None
    w = ahp.with_weights(transit=1.0)
    assert w.ahp is None and w.criteria["transit"].weight == 1.0


def test_the_study_name_can_be_set_on_the_command_line():
    study = load_study(STUDY).with_overrides(sets=["study.name=Espoo centre"])
    assert study.name == "Espoo centre"
    # a name that TOML would read as a number or a boolean stays the text typed
    assert load_study(STUDY).with_overrides(sets=["study.name=2024"]).name == "2024"


# --- #12 item 1: defaults that belong to no city ---------------------------------------------

def test_the_default_study_carries_nothing_of_the_demo():
    demo = load_study(STUDY)
    default = Study.default(brand="Nordea", osm=PBF)
    assert load_study(None, brand="Nordea", osm=PBF) == default
    assert default.name is None and demo.name == "Helsinki city centre"
    assert default.floorplan.outline is None and default.seed == 0
    assert "Helsinki" not in str(default.to_document())
    assert default.display_name == "helsinki"  # from the data file until the pipeline names it


def test_every_default_criterion_says_where_its_defaults_come_from():
    for spec in REGISTRY.values():
        assert spec.weight_source and spec.radius_source and spec.label and spec.words and spec.unit
    assert REGISTRY["transit"].describe() == "transit access within a 5-minute walk (400 m)"


def test_without_a_study_file_a_brand_is_asked_for():
    with pytest.raises(ConfigError, match="--brand"):
        load_study(None)


# --- the flow: the settings sit below every stage ---------------------------------------------

def package_imports(module: str) -> set[str]:
    """Every siteplanner module ``module`` reaches through its imports, lazy ones included."""
    import ast
    from pathlib import Path

    import siteplanner

    root = Path(siteplanner.__file__).parent

    def source(mod: str) -> Path | None:
        rel = Path(*mod.split(".")[1:])
        for p in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if p.is_file():
                return p
        return None

    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        path = source(mod)
        if mod in seen or path is None:
            continue
        seen.add(mod)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            todo += [n for n in names if n.startswith("siteplanner.")]
    return seen


def test_the_study_schema_does_not_import_the_floor_planner():
    reached = package_imports("siteplanner.config")
    assert "siteplanner.criteria" in reached
    assert not [m for m in reached if m.startswith(("siteplanner.floorplan", "siteplanner.io",
                                                    "siteplanner.report", "siteplanner.pipeline"))]


def test_compute_criteria_measures_every_registry_criterion(demo_result):
    from siteplanner.features import compute_criteria

    cands = demo_result.candidates.head(50)
    raw = compute_criteria(cands, demo_result.layers, demo_result.study)
    assert list(raw.columns) == list(REGISTRY) and raw.index.equals(cands.index)
    assert raw.notna().all().all() and (raw >= 0).all().all()
    assert raw["commercial"].max() > 0  # a city centre has shops near its candidates
