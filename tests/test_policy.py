"""The siting rules as a checked policy: compliance.csv, the strict run, bad thresholds."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _business import money_study

from siteplanner._errors import ConfigError
from siteplanner.cli import app
from siteplanner.config import Study
from siteplanner.policy import RULES

BASE_RULES = set(RULES) - {"payback"}


def test_compliance_covers_exactly_the_selected_sites_and_every_rule(demo_out):
    ranked = pd.read_csv(demo_out / "ranked_sites.csv", dtype={"site_id": str})
    table = pd.read_csv(demo_out / "compliance.csv", dtype={"site_id": str})
    assert list(table.columns) == ["site_id", "rule", "value", "threshold", "passes"]
    assert set(table["site_id"]) == set(ranked["site_id"])
    assert len(table) == len(ranked) * len(BASE_RULES)
    assert (table.groupby("site_id")["rule"].apply(set) == BASE_RULES).all()
    own = table[table["rule"] == "own_spacing"].set_index("site_id")["value"]
    assert (own.loc[ranked["site_id"]].to_numpy() == ranked["nearest_own_m"].to_numpy()).all()


def test_a_strict_run_never_keeps_a_failing_site(runner, tmp_path):
    study = money_study(tmp_path, "\n[policy]\nmode = \"strict\"\nfoot_traffic_percentile = 97\n"
                                  "max_payback_years = 8\n")
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(study), "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "compliance.csv", dtype={"site_id": str})
    ranked = pd.read_csv(out / "ranked_sites.csv", dtype={"site_id": str})
    assert table["passes"].all()
    assert set(table["rule"]) == set(RULES)
    assert set(table["site_id"]) == set(ranked["site_id"])
    run = json.loads((out / "run.json").read_text())
    dropped = run["policy"]["dropped"]
    assert dropped and not set(dropped) & set(ranked["site_id"])
    assert any("foot_traffic" in why for why in dropped.values())
    assert "--policy strict dropped site" in res.stderr


@pytest.mark.parametrize(("section", "match"), [
    ({"foot_traffic_percentile": 101},
     "policy.foot_traffic_percentile = 101: expected a percentile from 0 to 100"),
    ({"commercial_percentile": -1}, "policy.commercial_percentile = -1: expected a percentile from 0"),
    ({"mode": "harsh"}, 'policy.mode = "harsh": expected report or strict'),
])
def test_bad_policy_thresholds_are_named(section, match):
    with pytest.raises(ConfigError, match=match):
        Study.from_dict({"study": {"brand": "X"}, "policy": section})
