"""The report describes the run that was made: its selection model, its scoring, its record."""

from __future__ import annotations

import json

import pytest
from conftest import STUDY

from siteplanner.cli import app
from siteplanner.record import RunRecord
from siteplanner.report import report_input

SPACING_WORDS = "Sites are then taken in score order, skipping any within"
WEIGHT_SCENARIOS = "Each weight was lowered and raised"


def _ranked_and_reported(runner, tmp_path, *args: str) -> tuple[str, dict]:
    """`rank --no-report ARGS`, then `siteplanner report` on its folder, as a planner would."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--top", "3", "--no-report",
                              *args])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text(encoding="utf-8")
    return html, json.loads((out / "run.json").read_text(encoding="utf-8"))


def _section(html: str, heading: str) -> str:
    start = html.index(f"<h2>{heading}</h2>")
    end = html.find("<h2>", start + 5)
    return html[start:end if end > 0 else None]


@pytest.mark.parametrize(("method", "words", "model"), [
    ("coverage", "maximal covering location model", "MaxCoverage"),
    ("pmedian", "p-median model", "PMedian"),
    ("capture", "maximum capture model", "MaxCapture"),
])
def test_a_joint_selection_report_names_its_model_and_objective_not_the_spacing_rule(
        runner, tmp_path, method, words, model):
    html, run = _ranked_and_reported(runner, tmp_path, "--select", method, "--solver", "heuristic")
    chosen = _section(html, "How the sites were chosen")
    info = run["selection_model"]
    assert words in chosen and f"({model}, --select {method})" in chosen
    assert f"its objective is {info['objective']} {info['units']}" in chosen
    assert SPACING_WORDS not in html
    summary = _section(html, "Summary")
    assert "m from the others" not in summary and "no spacing rule" in summary
    assert WEIGHT_SCENARIOS not in html and "kept under" not in html


def test_a_learned_report_says_the_scores_were_learned_and_shows_refit_stability(runner, tmp_path):
    html, run = _ranked_and_reported(runner, tmp_path, "--model", "learned")
    chosen = _section(html, "How the sites were chosen")
    assert "The scores were learned, not weighted by hand" in chosen
    assert "rescaled so the weakest candidate gets 0" not in chosen
    firm = _section(html, "How firm the ranking is")
    assert "bootstrap refits of the learned model" in firm
    assert WEIGHT_SCENARIOS not in html and "sensitivity" not in run
    assert run["stability"]["perturbation"] == "bootstrap refits of the learned model"


def test_the_weighted_top_k_report_shows_the_weight_scenarios_the_run_computed(demo_out):
    html = (demo_out / "report.html").read_text(encoding="utf-8")
    run = json.loads((demo_out / "run.json").read_text(encoding="utf-8"))
    scenarios = run["sensitivity"]["scenarios"]
    assert len(scenarios) == 10  # five criteria, each weight lowered and raised
    assert WEIGHT_SCENARIOS in html and SPACING_WORDS in html
    worst = min(s["kept"] for s in scenarios)
    assert f"at least {worst} of the 10 sites stay in the top 10" in html


def test_a_run_folder_read_back_gives_the_record_that_was_written(demo_out, demo_result):
    path = demo_out / "run.json"
    record = RunRecord.read(path)
    assert record.to_dict() == json.loads(path.read_text(encoding="utf-8"))
    assert report_input(demo_out).record == record
    fresh = RunRecord.from_result(demo_result)
    assert RunRecord.from_dict(json.loads(fresh.to_json())) == fresh
    assert fresh.study == record.study and fresh.figures.keys() == record.figures.keys()


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("run.json", "[1, 2, 3]", "run.json: expected a JSON object, found a list"),
    ("run.json", "{not json", "run.json: not valid JSON"),
    ("run.json", '{"created": "x"}', "run.json: the field 'study' is missing"),
    ("sites.gpkg", "this is not a GeoPackage", "sites.gpkg: cannot be read as a GeoPackage"),
])
def test_report_on_a_broken_run_folder_is_one_line(runner, demo_out, tmp_path, name, text, needle):
    """Issue 18, item 13: a corrupt sites.gpkg or a run.json that is a list crashed the report."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(demo_out, out)
    (out / name).write_text(text, encoding="utf-8")
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 1, res.output
    line = res.stderr.strip()
    assert needle in line and "\n" not in line and "Traceback" not in res.output
    assert "rerun `siteplanner rank`" in line


def test_the_spacing_warning_is_said_once_per_run(runner, tmp_path):
    """Issue 18, item 14: one report run printed "only N of K sites fit" eleven times."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--top", "40", "--no-report",
                              "--set", "selection.min_spacing_m=600"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if "sites fit the spacing rules" in ln]
    assert len(lines) == 1, lines
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0 and "sites fit the spacing rules" not in res.stderr
