"""Count calibration on the street network's features, at real Helsinki street points."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from scipy.stats import spearmanr

from siteplanner.calibration import calibrate_foot_traffic, calibration_features
from siteplanner.candidates import h3_candidates
from siteplanner.layers import build_layers
from siteplanner.market import walk_graph


@pytest.fixture(scope="module")
def city(helsinki_osm):
    layers = build_layers(brand=("Nordea",), osm=helsinki_osm)
    cands = h3_candidates(layers.area, resolution=10)
    return layers, cands, walk_graph(layers, speed_kmh=4.8)


def _z(s, at):
    return (s - s.iloc[at].mean()) / s.iloc[at].std()


def test_counts_driven_by_street_centrality_are_found_with_the_network(city):
    """People follow the 800 m betweenness of the street and the POIs at the door; shop counts
    alone cannot see the first, the network features can."""
    layers, cands, graph = city
    X, _ = calibration_features(cands, layers, graph=graph)
    rng = np.random.default_rng(11)
    at = rng.choice(len(cands), 40, replace=False)
    truth = 2500.0 * np.exp(0.7 * _z(X["betweenness_800"], at) + 0.3 * _z(X["pois_150"], at))
    counters = gpd.GeoDataFrame({"count": rng.poisson(truth.iloc[at])},
                                geometry=cands.geometry.iloc[at].to_numpy(), crs=cands.crs)
    with_net = calibrate_foot_traffic(counters.to_crs(4326), cands, layers, graph=graph)
    rep = with_net.report
    assert rep["features"].startswith("street centrality")
    coef = rep["coefficients"]
    assert max(coef, key=lambda k: abs(coef[k])) == "betweenness_800"
    assert rep["model"]["spearman"] > 0.8
    assert rep["model"]["spearman"] >= rep["proxy_baseline"]["spearman"]
    assert with_net.predicted is not None
    assert spearmanr(with_net.predicted, truth)[0] > 0.9  # at every candidate
    # the same counters without the network: shop and stop counts explain much less
    without = calibrate_foot_traffic(counters.to_crs(4326), cands, layers).report
    assert without["features"].startswith("OSM kernel sums")
    assert rep["model"]["spearman"] > without["model"]["spearman"] + 0.1
