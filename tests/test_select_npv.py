"""`--select npv --budget`: the set with the most NPV within the capex budget."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from _business import money_study

from siteplanner._errors import InputError
from siteplanner.cli import app
from siteplanner.selection.npv import MaxNPV


def _instance(seed: int, n: int = 12):
    rng = np.random.default_rng(seed)
    pairs = np.array(list(itertools.combinations(range(n), 2)))
    return dict(value=rng.normal(5, 4, n), capex=rng.uniform(1, 5, n),
                conflicts=pairs[rng.random(len(pairs)) < 0.1],
                pairs=(p := pairs[rng.random(len(pairs)) < 0.4]), loss=rng.uniform(0, 3, len(p)))


def _brute_force(m: MaxNPV, k: int, n: int) -> float:
    return max(m.evaluate(list(s)) for r in range(k + 1) for s in itertools.combinations(range(n), r)
               if m.feasible(list(s)))


@pytest.mark.parametrize("seed", range(8))
def test_exact_and_heuristic_agree_with_the_optimum_on_small_instances(seed):
    inst = _instance(seed)
    exact = MaxNPV.from_arrays(**inst, budget=10.0, k=4).solve("exact")
    heur = MaxNPV.from_arrays(**inst, budget=10.0, k=4).solve("heuristic")
    best = _brute_force(exact, 4, 12)
    assert exact.objective_ == pytest.approx(best, abs=1e-6)
    assert exact.status_ == "optimal" and exact.gap_ <= 1e-5
    assert heur.objective_ >= 0.97 * best
    assert heur.bound_ >= best - 1e-6  # the reported bound really bounds the optimum


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_the_chosen_set_never_exceeds_the_budget_or_the_spacing(method):
    for seed in range(6):
        inst = _instance(100 + seed, n=40)
        m = MaxNPV.from_arrays(**inst, budget=7.5, k=6).solve(method)
        chosen = m.selected_
        assert inst["capex"][chosen].sum() <= 7.5 + 1e-9 and len(chosen) <= 6
        conflict = {tuple(p) for p in inst["conflicts"].tolist()}
        assert not any((a, b) in conflict for a, b in itertools.combinations(sorted(chosen), 2))


def test_bad_budget_is_named():
    with pytest.raises(InputError, match="budget = -1"):
        MaxNPV.from_arrays([1.0], [1.0], budget=-1, k=1)


def test_npv_run_stays_in_budget_and_records_the_solver(runner, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(money_study(tmp_path)), "--out", str(out), "--no-report",
                              "--select", "npv", "--budget", "600000", "--solver", "heuristic"])
    assert res.exit_code == 0, res.output
    ranked = pd.read_csv(out / "ranked_sites.csv")
    assert 1 <= len(ranked) and ranked["capex"].sum() <= 600_000
    assert (ranked["npv"] > 0).all()
    run = json.loads((out / "run.json").read_text())
    model = run["selection_model"]
    assert model["model"] == "MaxNPV" and model["method"] == "heuristic"
    assert model["bound"] >= model["objective"] and model["gap"] >= 0
    # the bound reported is the smallest valid one, and it is named
    assert model["bound"] == pytest.approx(min(model["bounds"].values()), abs=0.01)
    assert model["bound_method"] in ("knapsack_lp", "huff_cover_lp") and "huff_cover_lp" in model["bounds"]
    assert run["economics"]["total_capex"] <= 600_000
    assert run["economics"]["sites_paying"] == len(ranked)


def test_a_budget_that_fits_no_site_says_so_in_one_line(runner, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", str(money_study(tmp_path)), "--out", str(out), "--no-report",
                              "--select", "npv", "--budget", "1000"])
    assert res.exit_code == 1
    line = res.stderr.strip()
    assert "\n" not in line and "fits no site" in line and "cheapest site that pays" in line
    assert not (out / "ranked_sites.csv").exists()


def test_a_budget_that_is_not_a_number_is_refused(runner, tmp_path):
    res = runner.invoke(app, ["rank", str(money_study(tmp_path)), "--out", str(tmp_path / "o"),
                              "--select", "npv", "--budget", "plenty"])
    assert res.exit_code == 1
    assert '--budget: economics.budget = "plenty": expected an amount > 0' in res.stderr
