"""`siteplanner rank --select`: the set of sites chosen jointly, existing branches kept."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import STUDY

from siteplanner.cli import app


def rank(runner, tmp_path, *args):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(out), "--top", "3", *args])
    return res, out


def test_coverage_set_is_optimal_and_beats_the_existing_branches(runner, tmp_path):
    res, out = rank(runner, tmp_path, "--select", "coverage")
    assert res.exit_code == 0, res.stderr
    run = json.loads((out / "run.json").read_text())
    model = run["selection_model"]
    assert model["model"] == "MaxCoverage" and model["method"] == "exact"
    assert model["gap"] == pytest.approx(0.0, abs=1e-6)
    assert model["objective"] > model["existing_only_objective"]
    assert run["selection"]["rule"] == "coverage"
    ranked = pd.read_csv(out / "ranked_sites.csv")
    assert len(ranked) == 3 and (ranked["nearest_own_m"] >= 200).all()


def test_coverage_set_covers_at_least_as_much_as_the_top_ranked_sites(runner, tmp_path, demo_result):
    """The joint set is optimal for coverage, so the score-order top 3 cannot cover more."""
    from siteplanner.market import walk_graph
    from siteplanner.proximity import walk_minutes
    from siteplanner.selection import MaxCoverage

    res, out = rank(runner, tmp_path, "--select", "coverage")
    joint = json.loads((out / "run.json").read_text())["selection_model"]["objective"]
    layers, study, cands = demo_result.layers, demo_result.study, demo_result.candidates
    graph = walk_graph(layers, speed_kmh=study.network.walk_speed_kmh)
    demand = demo_result.demand  # the people the coverage model serves
    cost = walk_minutes(graph, demand, cands, cutoff_min=15, metres_per_minute=80)
    fixed = walk_minutes(graph, demand, layers.own_branches, cutoff_min=15, metres_per_minute=80)
    top3 = cands["rank"].notna() & (cands["rank"] <= 3)
    m = MaxCoverage.from_cost_matrix(cost[:, top3.to_numpy()], demand["weight"].to_numpy(),
                                     k=3, max_cost=5.0, fixed=fixed).solve()
    assert joint >= m.objective_ - 1e-6


def test_pmedian_with_the_heuristic(runner, tmp_path):
    res, out = rank(runner, tmp_path, "--select", "pmedian", "--solver", "heuristic")
    assert res.exit_code == 0, res.stderr
    model = json.loads((out / "run.json").read_text())["selection_model"]
    assert model["model"] == "PMedian" and model["method"] == "heuristic"
    assert model["objective"] < model["existing_only_objective"]  # walks get shorter
    cands = pd.read_csv(out / "ranked_sites.csv")
    assert len(cands) == 3


def test_unknown_rule_and_too_many_sites(runner, tmp_path):
    res, out = rank(runner, tmp_path, "--select", "nearest")
    assert res.exit_code == 1 and 'selection.method = "nearest"' in res.stderr
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(tmp_path / "o2"),
                              "--select", "coverage", "--top", "5000"])
    assert res.exit_code == 1
    assert "candidates left after excluding" in res.stderr
    assert not (tmp_path / "o2").exists()
