"""Feature functions, scoring and the spacing rule, on the real city's geometry."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from siteplanner import features as feat
from siteplanner.config import CRITERIA, Criterion
from siteplanner.model import score
from siteplanner.selection import select_top


@pytest.fixture(scope="module")
def layers(demo_result):
    return demo_result.layers


@pytest.fixture(scope="module")
def cands(demo_result):
    return demo_result.candidates


def test_kernel_sum_equals_a_direct_computation(cands, layers):
    got = feat.commercial(cands, layers.pois, radius_m=250)
    sample = cands.iloc[::37]
    d = np.hypot(sample.geometry.x.to_numpy()[:, None] - layers.pois.geometry.x.to_numpy()[None],
                 sample.geometry.y.to_numpy()[:, None] - layers.pois.geometry.y.to_numpy()[None])
    k = np.where(d < 250, (1 - (d / 250) ** 2) ** 2, 0.0).sum(axis=1)
    np.testing.assert_allclose(got.loc[sample.index].to_numpy(), k, rtol=1e-9)
    assert got.name == "commercial" and got.index.equals(cands.index)


def test_a_metro_entrance_counts_more_than_a_bus_stop(cands, layers):
    t = layers.transit
    one_metro = t[t["mode"] == "metro"].head(1)
    one_bus = t[t["mode"] == "bus"].head(1)
    at_metro = cands.iloc[[0]].set_geometry(one_metro.geometry.values)
    at_bus = cands.iloc[[0]].set_geometry(one_bus.geometry.values)
    assert feat.transit(at_metro, one_metro, radius_m=300).iloc[0] == feat.MODE_WEIGHTS["metro"]
    assert feat.transit(at_bus, one_bus, radius_m=300).iloc[0] == feat.MODE_WEIGHTS["bus"]


def test_measured_foot_traffic_takes_the_count_at_a_counter(cands, layers):
    pts = layers.transit.head(8).assign(count=np.arange(8) * 100.0 + 50)
    at = cands.iloc[:8].set_geometry(pts.geometry.values)
    got = feat.foot_traffic(at, pts, radius_m=250, measured=True)
    # on a counter, its own count wins even when another counter stands across the street
    np.testing.assert_allclose(got.to_numpy(), pts["count"].to_numpy(), rtol=0.05)


def test_a_larger_radius_reaches_more_competitors(cands, layers):
    near = feat.competition(cands, layers.competitors, radius_m=200)
    far = feat.competition(cands, layers.competitors, radius_m=800)
    assert (far >= near - 1e-12).all() and (far > near).sum() > len(cands) / 2


def test_costs_lower_the_score_and_benefits_raise_it():
    raw = pd.DataFrame({n: [0.0, 1.0] for n in CRITERIA}, index=["a", "b"])
    crit = {n: Criterion(n, s.direction, 1.0, 100.0) for n, s in CRITERIA.items()}
    s = score(raw, crit)
    assert s.loc["b", "foot_traffic_contribution"] == pytest.approx(0.2)
    assert s.loc["b", "competition_contribution"] == pytest.approx(-0.2)
    assert s.loc["b", "score"] == pytest.approx(0.6 - 0.4)
    assert (s.loc["a"] == 0).all()


def test_a_constant_criterion_contributes_nothing():
    raw = pd.DataFrame({n: [3.0, 3.0, 3.0] for n in CRITERIA})
    crit = {n: Criterion(n, s.direction, s.weight, s.radius_m) for n, s in CRITERIA.items()}
    assert (score(raw, crit)["score"] == 0).all()


def test_spacing_skips_a_close_second_and_reports_why():
    pts = gpd.GeoDataFrame({"score": [0.9, 0.8, 0.7]},
                           geometry=gpd.points_from_xy([0, 50, 500], [0, 0, 0]), crs=3067,
                           index=["a", "b", "c"])
    own = gpd.GeoDataFrame({"label": ["Home"]}, geometry=gpd.points_from_xy([2000], [0]), crs=3067)
    out = select_top(pts, own, k=2, min_spacing_m=100, min_distance_to_own_m=100)
    assert out["rank"].tolist()[0] == 1 and pd.isna(out.loc["b", "rank"])
    assert out.loc["c", "rank"] == 2
    assert out.loc["b", "status"] == "too_close_to_selected"
    assert out.loc["b", "status_detail"] == "within 100 m of selected site #1"


def test_a_site_next_to_an_own_branch_is_never_chosen():
    pts = gpd.GeoDataFrame({"score": [0.9, 0.1]}, geometry=gpd.points_from_xy([0, 900], [0, 0]),
                           crs=3067, index=["top", "far"])
    own = gpd.GeoDataFrame({"label": ["Nordea"]}, geometry=gpd.points_from_xy([30], [0]), crs=3067)
    out = select_top(pts, own, k=1, min_spacing_m=0, min_distance_to_own_m=200)
    assert out.loc["far", "rank"] == 1
    assert out.loc["top", "status"] == "too_close_to_own"
    assert out.loc["top", "status_detail"] == "within 200 m of own branch Nordea (30 m)"


def test_fewer_sites_than_asked_warns():
    pts = gpd.GeoDataFrame({"score": [0.9, 0.8]}, geometry=gpd.points_from_xy([0, 10], [0, 0]),
                           crs=3067)
    own = gpd.GeoDataFrame({"label": []}, geometry=gpd.GeoSeries([], crs=3067))
    with pytest.warns(UserWarning, match="only 1 of 2 sites fit"):
        out = select_top(pts, own, k=2, min_spacing_m=100, min_distance_to_own_m=0)
    assert out["rank"].notna().sum() == 1
