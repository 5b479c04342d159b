"""Rank stability on the bundled city: Monte Carlo weights and bootstrap refits."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from siteplanner._errors import InputError
from siteplanner.config import Criterion
from siteplanner.learned import learned_scores
from siteplanner.selection import select_top
from siteplanner.stability import FRAGILE_BELOW, bootstrap_stability, weight_draws, weight_stability


@pytest.fixture(scope="module")
def city(demo_result):
    study = demo_result.study
    c = demo_result.candidates
    sel = study.selection
    rule = {"k": sel.top_k, "min_spacing_m": sel.min_spacing_m,
            "min_distance_to_own_m": sel.min_distance_to_own_m}
    return c, c[list(study.criteria)], study.criteria, demo_result.layers, rule


def test_draws_centre_on_the_chosen_weights():
    w0 = {"foot_traffic": 0.35, "transit": 0.2, "commercial": 0.2, "competition": 0.25,
          "cannibalization": 0.0}
    d = weight_draws(w0, n_draws=4000, concentration=50.0, seed=1)
    assert np.allclose(d.sum(axis=1), 1.0)
    assert (d["cannibalization"] == 0).all()
    assert d.mean().to_dict() == pytest.approx(w0, abs=0.005)
    # sd = sqrt(w (1 - w) / (concentration + 1)), as documented.
    assert d["foot_traffic"].std() == pytest.approx(np.sqrt(0.35 * 0.65 / 51), rel=0.08)
    pd.testing.assert_frame_equal(d, weight_draws(w0, n_draws=4000, concentration=50.0, seed=1))


def test_one_weighted_criterion_is_perfectly_stable(city):
    c, raw, criteria, layers, rule = city
    only = {n: Criterion(n, cr.direction, 1.0 if n == "transit" else 0.0, cr.radius_m)
            for n, cr in criteria.items()}
    df, summary = weight_stability(c, raw, only, layers.own_branches, n_draws=30, seed=3, **rule)
    selected = df.index[df["stability"] > 0]
    assert len(selected) == rule["k"]
    assert (df.loc[selected, "stability"] == 1.0).all()
    assert not df["fragile"].any() and summary["n_fragile"] == 0
    assert summary["selected_mean_stability"] == 1.0


def test_stability_of_the_demo_selection(city):
    c, raw, criteria, layers, rule = city
    df, summary = weight_stability(c, raw, criteria, layers.own_branches, n_draws=60, seed=42, **rule)
    chosen = set(c.index[c["rank"].notna()])
    assert set(summary["selected"]) == chosen  # the same sites the pipeline chose
    assert df["stability"].between(0, 1).all()
    assert df.index.equals(c.index)
    fragile = set(df.index[df["fragile"]])
    assert fragile <= chosen
    assert fragile == {s for s in chosen if df.loc[s, "stability"] < FRAGILE_BELOW}
    again, _ = weight_stability(c, raw, criteria, layers.own_branches, n_draws=60, seed=42, **rule)
    pd.testing.assert_frame_equal(df, again)  # seeded
    # Tighter judgement, steadier picks.
    tight, s_tight = weight_stability(c, raw, criteria, layers.own_branches, n_draws=60, seed=42,
                                      concentration=2000.0, **rule)
    loose, s_loose = weight_stability(c, raw, criteria, layers.own_branches, n_draws=60, seed=42,
                                      concentration=5.0, **rule)
    assert s_tight["selected_mean_stability"] > summary["selected_mean_stability"] \
        > s_loose["selected_mean_stability"]


def test_bootstrap_stability_of_the_learned_model(city):
    c, raw, _, layers, rule = city
    learned = learned_scores(c, raw, layers)
    df, summary = bootstrap_stability(learned, c, raw, layers.own_branches, n_draws=25, seed=0, **rule)
    assert summary["perturbation"].startswith("bootstrap") and summary["n_draws"] == 25
    chosen = select_top(gpd.GeoDataFrame(learned.table[["score"]], geometry=c.geometry, crs=c.crs),
                        layers.own_branches, **rule)
    first = chosen["rank"].eq(1).idxmax()
    assert set(summary["selected"]) == set(chosen.index[chosen["rank"].notna()])
    # The learned model's winner survives refits more often than any other chosen site.
    assert summary["selected"][first] == max(summary["selected"].values()) > 0.5
    assert df["stability"].between(0, 1).all()


def test_bad_perturbation_settings_are_refused():
    with pytest.raises(InputError, match="concentration"):
        weight_draws({"a": 1.0, "b": 1.0}, concentration=0)
    with pytest.raises(InputError, match="at least one > 0"):
        weight_draws({"a": 0.0, "b": 0.0})


def test_the_prefix_shortcut_chooses_exactly_what_the_full_spacing_rule_chooses(city, monkeypatch):
    """Each draw runs the spacing rule on its best-scoring prefix only; it must not change a pick."""
    from siteplanner import stability

    c, _, _, layers, rule = city
    rng = np.random.default_rng(7)
    monkeypatch.setattr(stability, "PREFIX_MIN", 1)
    for prefix in (1, 5):  # 1: every draw has to widen its prefix at least once
        monkeypatch.setattr(stability, "PREFIX_PER_SITE", prefix)
        for _ in range(5):
            score = np.round(rng.random(len(c)), 2)  # many ties at the prefix's edge
            full = select_top(gpd.GeoDataFrame({"score": score}, geometry=c.geometry.values,
                                               index=c.index, crs=c.crs), layers.own_branches, **rule)
            fixed = stability._spacing_rule(c, layers.own_branches, **rule)
            pos = stability._chosen_in_prefix(score, fixed)
            # the same sites, in the same rank order
            assert list(c.index[pos]) == list(full["rank"].dropna().sort_values().index)


def test_stability_is_the_same_whatever_blas_threads_the_caller_allows(city):
    """The draws' scores are one product on one BLAS thread: a run on a busy machine (whose
    second thread would only spin) gives the bits a run on two threads would."""
    from threadpoolctl import threadpool_limits

    import siteplanner.stability as stability

    c, raw, criteria, layers, rule = city
    df, summary = weight_stability(c, raw, criteria, layers.own_branches, n_draws=60, seed=7, **rule)
    norm = np.column_stack([stability.normalise(raw[n]).to_numpy() for n in criteria])
    draws = stability.weight_draws({n: cr.weight for n, cr in criteria.items()}, n_draws=60,
                                   concentration=50.0, seed=7).to_numpy()
    with threadpool_limits(limits=2):
        two = norm @ draws.T
    with threadpool_limits(limits=1):
        one = norm @ draws.T
    np.testing.assert_array_equal(one, two)
    with threadpool_limits(limits=2):
        again, s_again = weight_stability(c, raw, criteria, layers.own_branches, n_draws=60, seed=7,
                                          **rule)
    pd.testing.assert_frame_equal(df, again)
    assert summary == s_again
