"""`siteplanner rank --select coverage|pmedian` with `selection.capacity`: the demand
one branch can serve, for new sites and existing own branches alike."""

from __future__ import annotations

import json

import pytest
from conftest import STUDY, absolute_study_text

from siteplanner.cli import app


def test_capacity_caps_what_each_branch_covers_and_is_recorded(runner, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--top", "3",
                              "--select", "coverage", "--set", "selection.capacity=1500"])
    assert res.exit_code == 0, res.stderr
    run = json.loads((out / "run.json").read_text())
    model = run["selection_model"]
    assert model["capacity"] == 1500
    assert run["selection"]["capacity"] == 1500
    assert run["study"]["selection"]["capacity"] == 1500
    # Each of the 3 new sites covers at most 1500 more than the branches alone.
    assert model["existing_only_objective"] < model["objective"]
    assert model["objective"] <= model["existing_only_objective"] + 3 * 1500 + 1e-6
    served = model["demand_total"] - model["demand_unserved"]
    assert served == pytest.approx(model["objective"], rel=1e-6)


@pytest.mark.parametrize("value", ["-5", "0", "lots", "inf"])
def test_bad_capacity_on_the_command_line(runner, tmp_path, value):
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(tmp_path / "o"), "--select",
                              "pmedian", "--set", f"selection.capacity={value}"])
    assert res.exit_code == 1
    assert "selection.capacity" in res.stderr and "expected a number > 0" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_bad_capacity_in_the_study_file(runner, tmp_path):
    study = tmp_path / "study.toml"
    study.write_text(absolute_study_text().replace(
        "[selection]\n", '[selection]\nmethod = "coverage"\ncapacity = "lots"\n'))
    res = runner.invoke(app, ["rank", str(study), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert 'selection.capacity = "lots"' in res.stderr


def test_capacity_needs_a_model_that_takes_it(runner, tmp_path):
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(tmp_path / "o"), "--select",
                              "capture", "--set", "selection.capacity=100"])
    assert res.exit_code == 1
    assert "selection.capacity = 100 applies to the coverage and pmedian methods" in res.stderr
