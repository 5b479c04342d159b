"""Learned models on the bundled city's real geometry: planted relationships come back out."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from siteplanner._errors import InputError
from siteplanner._spatial_cv import SpatialBlockKFold
from siteplanner.calibration import (
    MIN_COUNTERS,
    FootTrafficCalibrator,
    calibrate_foot_traffic,
    osm_features,
)
from siteplanner.config import CRITERIA
from siteplanner.features import compute_criteria as _features
from siteplanner.learned import MIN_BRANCHES, SiteModel, learned_scores

RAW = list(CRITERIA)


@pytest.fixture(scope="module")
def city(demo_result):
    c = demo_result.candidates
    return c, c[RAW], demo_result.layers, demo_result.study


def _z(s: pd.Series, at: np.ndarray) -> pd.Series:
    return (s - s.iloc[at].mean()) / s.iloc[at].std(ddof=0)


# --------------------------------------------------------------------------- spatial CV

@pytest.mark.parametrize("kw", [{"block_size_m": 250.0}, {"h3_resolution": 9}])
def test_spatial_folds_never_share_a_block(city, kw):
    cands = city[0]
    cv = SpatialBlockKFold(5, random_state=3, **kw)
    blocks = cv.blocks(cands)
    seen = []
    for train, test in cv.split(cands):
        assert not set(blocks[train]) & set(blocks[test])
        assert len(train) + len(test) == len(cands)
        seen.append(test)
    every = np.sort(np.concatenate(seen))
    assert np.array_equal(every, np.arange(len(cands)))  # each site tested exactly once
    sizes = [len(t) for t in seen]
    assert max(sizes) < 2 * min(sizes)  # blocks dealt so folds are about equal


def test_too_few_blocks_for_the_folds_is_explained(city):
    with pytest.raises(InputError, match="at least 5 blocks.*use smaller blocks"):
        list(SpatialBlockKFold(5, block_size_m=5000.0).split(city[0]))


# --------------------------------------------------------------------------- foot traffic

def test_calibration_recovers_planted_foot_traffic(city):
    cands, _, layers, _ = city
    X = np.log1p(osm_features(cands, layers))
    rng = np.random.default_rng(7)
    at = rng.choice(len(cands), 40, replace=False)
    # Planted: people follow transit and junction density, shun office blocks, and
    # ignore shops; the OSM proxy (shops + stops) therefore ranks streets poorly.
    eta = 0.6 * _z(X["transit_400"], at) + 0.3 * _z(X["street_nodes_100"], at) \
        - 0.2 * _z(X["offices_250"], at)
    truth = 3000.0 * np.exp(eta)
    counters = gpd.GeoDataFrame({"count": rng.poisson(truth.iloc[at])},
                                geometry=cands.geometry.iloc[at].to_numpy(), crs=cands.crs)
    cal = calibrate_foot_traffic(counters.to_crs(4326), cands, layers, random_state=0)
    rep = cal.report
    assert rep["calibrated"] and rep["n_counters"] == 40 and rep["cv"]["scheme"] == "spatial blocks"
    assert rep["coefficients"]["transit_400"] == pytest.approx(0.6, abs=0.15)
    assert rep["coefficients"]["offices_250"] == pytest.approx(-0.2, abs=0.1)
    assert rep["model"]["r2"] > 0.9 > rep["proxy_baseline"]["r2"]
    assert rep["model"]["spearman"] > rep["proxy_baseline"]["spearman"] + 0.3
    assert cal.predicted is not None and cal.predicted.index.equals(cands.index)
    assert spearmanr(cal.predicted, truth).statistic > 0.97  # at all 990 candidates
    assert cal.predicted.median() == pytest.approx(truth.median(), rel=0.1)  # in count units


def test_without_counts_the_proxy_stays_and_says_so(city):
    cands, _, layers, _ = city
    cal = calibrate_foot_traffic(None, cands, layers)
    assert cal.predicted is None
    assert cal.report["foot_traffic"] == "proxy" and "no measured counts" in cal.report["reason"]


def test_the_fewest_counters_allowed_still_cross_validate(city):
    cands, _, layers, _ = city
    at = np.random.default_rng(3).choice(len(cands), MIN_COUNTERS, replace=False)
    few = gpd.GeoDataFrame({"count": 100.0 + 10 * np.arange(MIN_COUNTERS)},
                           geometry=cands.geometry.iloc[at].to_numpy(), crs=cands.crs)
    rep = calibrate_foot_traffic(few, cands, layers).report
    assert rep["n_counters"] == MIN_COUNTERS and np.isfinite(rep["model"]["r2"])


def test_too_few_counters_says_how_many_are_needed(city):
    cands, _, layers, _ = city
    few = gpd.GeoDataFrame({"count": np.arange(5.0)}, geometry=cands.geometry.iloc[:5].to_numpy(),
                           crs=cands.crs)
    with pytest.raises(InputError, match=f"at least {MIN_COUNTERS} counters, got 5"):
        calibrate_foot_traffic(few, cands, layers)


# --------------------------------------------------------------------------- site model

def _planted_branches(city, n=40, seed=11):
    cands, _, layers, study = city
    rng = np.random.default_rng(seed)
    at = rng.choice(len(cands), n, replace=False)
    branches = gpd.GeoDataFrame({"label": "Nordea"}, geometry=cands.geometry.iloc[at].to_numpy(),
                                index=pd.RangeIndex(n), crs=cands.crs)
    planted = dataclasses.replace(layers, own_branches=branches)

    def featurize(pts):
        return _features(pts, planted, study)

    X = featurize(branches)
    X["cannibalization"] -= 1.0  # the branch itself, as learned_scores describes it
    perf = 1000 + 150 * _z(X["transit"], np.arange(n)) - 100 * _z(X["competition"], np.arange(n))
    perf += rng.normal(0, 10, n)
    return planted.own_branches.assign(performance=perf.to_numpy()), planted, featurize, X


def test_performance_model_recovers_planted_relationship(city):
    cands, raw, _, study = city
    branches, planted, featurize, _ = _planted_branches(city)
    planted = dataclasses.replace(planted, own_branches=branches)
    res = learned_scores(cands, raw, planted, featurize=featurize, criteria=study.criteria)
    rep = res.report
    assert rep["kind"] == "performance" and rep["n_train"] == 40
    coef = rep["coefficients_per_sd"]
    assert coef["transit"] == pytest.approx(150, rel=0.15)
    assert coef["competition"] == pytest.approx(-100, rel=0.15)
    assert max(abs(coef[c]) for c in ("foot_traffic", "commercial", "cannibalization")) < 30
    assert rep["cv"]["model"]["r2"] > 0.8
    imp = rep["importance"]
    assert max(imp, key=lambda c: imp[c]["permutation"]) == "transit"
    t = res.table
    parts = t[[f"{c}_contribution" for c in RAW]].sum(axis=1)
    assert np.allclose(parts, t["score"])
    assert np.allclose(t["score"] + res.model.expected_value_, t["predicted"])
    tr = res.X_train
    truth = 150 * (raw["transit"] - tr["transit"].mean()) / tr["transit"].std(ddof=0) \
        - 100 * (raw["competition"] - tr["competition"].mean()) / tr["competition"].std(ddof=0)
    assert spearmanr(t["score"], truth).statistic > 0.97


def test_presence_model_recovers_planted_preference(city):
    cands, raw, layers, _ = city
    rng = np.random.default_rng(5)
    z = _z(raw["transit"], np.arange(len(raw)))
    p = 1 / (1 + np.exp(-(-4.0 + 1.5 * z)))
    banks = cands[rng.random(len(cands)) < p]
    planted = dataclasses.replace(layers, competitors=banks[["geometry"]].assign(label="bank"),
                                  own_branches=banks.iloc[:0][["geometry"]].assign(label="own"))
    res = learned_scores(cands, raw, planted, features=["transit", "commercial"])
    rep = res.report
    assert rep["kind"] == "presence" and rep["n_bank_cells"] == len(banks)
    assert rep["coefficients_per_sd"]["transit"] == pytest.approx(1.5, abs=0.5)
    assert abs(rep["coefficients_per_sd"]["commercial"]) < 0.6
    assert rep["cv"]["model"]["roc_auc"] > 0.75
    assert set(res.table["predicted"].between(0, 1)) == {True}
    assert (res.table["foot_traffic_contribution"] == 0).all()  # not a feature here


def test_additive_gbm_parts_add_up_exactly(city):
    cands, raw, layers, _ = city
    res = learned_scores(cands, raw, layers, method="additive_gbm", random_state=0)
    m = res.model
    cols = res.report["features"]
    total = m.expected_value_ + res.table["score"]
    assert np.allclose(total, m.decision_function(raw[cols]))
    # The bundled city's own banks: 17 of them, in 17 different cells.
    assert res.report["n_bank_cells"] == 17


def test_estimators_follow_the_sklearn_contract():
    m = SiteModel("presence", alpha=2.0, random_state=4)
    assert clone(m).get_params() == m.get_params()
    assert not [k for k in vars(m) if k.endswith("_")]  # nothing fitted in __init__
    f = FootTrafficCalibrator("gbm", random_state=1)
    assert clone(f).get_params()["method"] == "gbm"
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((20, 3)), columns=["a", "b", "c"])
    assert f.fit(X, rng.poisson(100, 20)) is f and f.n_features_in_ == 3


# --------------------------------------------------------------------------- bad input

def test_the_fewest_branches_allowed_still_cross_validate(city):
    cands, raw, _, _ = city
    branches, planted, featurize, _ = _planted_branches(city)
    few = dataclasses.replace(planted, own_branches=branches.iloc[:MIN_BRANCHES])
    res = learned_scores(cands, raw, few, featurize=featurize, block_size_m=250.0)
    assert res.report["n_train"] == MIN_BRANCHES and np.isfinite(res.report["cv"]["model"]["r2"])


def test_bad_performance_input_says_what_to_fix(city):
    cands, raw, _, _ = city
    branches, planted, featurize, _ = _planted_branches(city)
    few = dataclasses.replace(planted, own_branches=branches.iloc[:6])
    with pytest.raises(InputError, match=f"at least {MIN_BRANCHES} branchs?e?s?, got 6"):
        learned_scores(cands, raw, few, featurize=featurize)
    with pytest.raises(InputError, match="no 'performance' column"):
        learned_scores(cands, raw, planted, featurize=featurize, target="performance")
    text = branches.assign(performance=branches["performance"].astype(object))
    text.loc[3, "performance"] = "n/a"
    with pytest.raises(InputError, match="must be a number.*row 4 holds 'n/a'"):
        learned_scores(cands, raw, dataclasses.replace(planted, own_branches=text), featurize=featurize)
    flat = branches.assign(performance=5.0)
    with pytest.raises(InputError, match="is 5 for all 40 branch.*nothing to learn"):
        learned_scores(cands, raw, dataclasses.replace(planted, own_branches=flat), featurize=featurize)


def test_identical_counts_are_refused():
    X = pd.DataFrame(np.random.default_rng(0).random((12, 2)), columns=["a", "b"])
    with pytest.raises(InputError, match="nothing to learn"):
        FootTrafficCalibrator().fit(X, np.full(12, 40.0))
