"""Capacitated location-allocation: the heuristic against the exact MILP on real
data, the allocation both report, penalties for unserved demand, and the errors
for a service standard the capacities cannot meet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree

from siteplanner._errors import InputError
from siteplanner.selection import MaxCoverage, PMedian

spopt = pytest.importorskip("spopt")

SF_DATA = (Path(spopt.__file__).parent / "tests/test_locate/data"
           / "SF_network_distance_candidateStore_16_censusTract_205_new.csv")
EXISTING = [0, 9]  # two of the 16 San Francisco stores stay open as existing branches


@pytest.fixture(scope="module")
def sf() -> tuple[np.ndarray, np.ndarray]:
    """spopt's San Francisco problem: 205 tracts x 16 stores, network metres, population."""
    df = pd.read_csv(SF_DATA)
    wide = df.pivot_table(index="DestinationName", columns="name", values="distance")
    wide = wide[sorted(wide.columns, key=lambda name: int(name.split("_")[1]))]
    people = df.groupby("DestinationName")["demand"].first().loc[wide.index]
    return wide.to_numpy(), people.to_numpy(dtype=float)


def _sf_model(sf: tuple[np.ndarray, np.ndarray], model: str, k: int, **kw: Any) -> Any:
    cost, w = sf
    free = np.setdiff1d(np.arange(cost.shape[1]), EXISTING)
    cap = 1.5 * w.sum() / (k + len(EXISTING))  # binds: 1.5x the average share
    args = dict(k=k, fixed=cost[:, EXISTING], capacity=np.full(free.size, cap),
                fixed_capacity=np.full(len(EXISTING), cap)) | kw
    if model == "coverage":
        return MaxCoverage.from_cost_matrix(cost[:, free], w, max_cost=3000.0, **args)
    return PMedian.from_cost_matrix(cost[:, free], w, **args)


def _check_allocation(m: Any, cost: np.ndarray, w: np.ndarray, cutoff: float) -> None:
    """Served weight stays within capacities, weights and reach, and prices the objective."""
    alloc = sp.csr_array(m.allocation_)
    fixed_caps = np.zeros(0) if m.fixed_capacity is None else m.fixed_capacity
    caps = np.r_[m.capacity, fixed_caps]
    load = np.asarray(alloc.sum(axis=0)).ravel()
    served = np.asarray(alloc.sum(axis=1)).ravel()
    assert (load <= caps * (1 + 1e-6)).all()
    assert (served <= w * (1 + 1e-6)).all()
    rows, cols = alloc.nonzero()
    assert (cost[rows, cols] <= cutoff).all()
    open_cols = np.r_[m.selected_, m.capacity.size + np.arange(fixed_caps.size)]
    assert np.isin(cols, open_cols).all()
    if isinstance(m, MaxCoverage):
        assert m.objective_ == pytest.approx(served.sum(), rel=1e-6)
    else:
        pay = (alloc.toarray() * cost).sum() + m.unreachable_cost * (w - served).clip(0).sum()
        assert m.objective_ == pytest.approx(pay, rel=1e-6)


@pytest.mark.parametrize("model", ["coverage", "pmedian"])
@pytest.mark.parametrize("k", [2, 4])
def test_heuristic_is_within_one_percent_of_the_exact_optimum_on_sf(
    sf: tuple[np.ndarray, np.ndarray], model: str, k: int
) -> None:
    exact = _sf_model(sf, model, k).solve()
    assert exact.status_ == "optimal"
    heur = _sf_model(sf, model, k).solve("heuristic")
    if model == "coverage":
        assert exact.objective_ >= heur.objective_ >= 0.99 * exact.objective_
        assert heur.bound_ >= exact.objective_ * (1 - 1e-6)
    else:
        assert exact.objective_ <= heur.objective_ <= 1.01 * exact.objective_
        assert heur.bound_ <= exact.objective_ * (1 + 1e-6)
    cost, w = sf
    full = np.c_[np.delete(cost, EXISTING, axis=1), cost[:, EXISTING]]
    cutoff = 3000.0 if model == "coverage" else np.inf
    for m in (exact, heur):
        assert len(m.selected_) == k
        _check_allocation(m, full, w, cutoff)


@pytest.fixture(scope="module")
def helsinki(helsinki_osm: Any) -> dict[str, gpd.GeoDataFrame]:
    """The bundled Helsinki extract: 100 candidate and 2 branch sites on walking-network
    nodes, 500 demand nodes weighted by the shops, stops and buildings within 100 m."""
    nodes = helsinki_osm.nodes.to_crs(3067)
    feats = helsinki_osm.features.to_crs(3067)
    rng = np.random.default_rng(3)
    pick = rng.choice(len(nodes), size=602, replace=False)
    xy = np.column_stack([nodes.geometry.x, nodes.geometry.y])[pick]
    near = cKDTree(np.column_stack([feats.geometry.x, feats.geometry.y])).query_ball_point(
        xy[102:], 100.0, return_length=True)
    demand = gpd.GeoDataFrame({"people": 1.0 + near}, geometry=gpd.points_from_xy(*xy[102:].T),
                              crs=3067)
    cap = 1.5 * demand["people"].sum() / 7  # 5 new sites + 2 branches

    def sites(a: int, b: int) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"capacity": np.full(b - a, cap)},
                                geometry=gpd.points_from_xy(*xy[a:b].T), crs=3067)

    return {"demand": demand, "candidates": sites(0, 100), "existing": sites(100, 102)}


@pytest.mark.parametrize("model", ["coverage", "pmedian"])
def test_heuristic_matches_exact_on_helsinki(helsinki: dict[str, gpd.GeoDataFrame],
                                             model: str) -> None:
    cls, cutoff = (MaxCoverage, 150.0) if model == "coverage" else (PMedian, 250.0)

    def build(capacity: float | None) -> Any:
        layers = {name: gdf.assign(capacity=capacity) if capacity else gdf
                  for name, gdf in helsinki.items()}
        return cls.from_geodataframe(layers["demand"], layers["candidates"],
                                     weights_col="people", k=5, existing=layers["existing"],
                                     max_cost=cutoff, capacity_col="capacity" if capacity else None)

    free = build(None).solve()
    # 5 new sites + 2 branches: p-median gets 1.5x the average share of all demand,
    # coverage 80 % of the average share of what the free optimum covers
    total = helsinki["demand"]["people"].sum()
    cap = 1.5 * total / 7 if model == "pmedian" else 0.8 * free.objective_ / 7
    exact = build(cap).solve()
    heur = build(cap).solve("heuristic")
    assert exact.status_ == "optimal"
    if model == "coverage":
        assert free.objective_ > exact.objective_ >= heur.objective_ >= 0.99 * exact.objective_
    else:
        assert free.objective_ < exact.objective_ <= heur.objective_ <= 1.01 * exact.objective_
    assert heur.gap_ < 0.05  # the Lagrangian bound from the LP prices is close


def test_infinite_capacity_gives_the_uncapacitated_optimum(
    sf: tuple[np.ndarray, np.ndarray]
) -> None:
    # A 3 km cutoff leaves tracts out of reach: they pay unreachable_cost in both models.
    cost, w = sf
    kw = dict(k=3, max_cost=3000.0, unreachable_cost=5000.0)
    free = PMedian.from_cost_matrix(cost, w, **kw).solve()
    assert free.unserved_ > 0
    unlimited = PMedian.from_cost_matrix(cost, w, capacity=np.full(16, np.inf), **kw)
    assert unlimited.solve().objective_ == pytest.approx(free.objective_, rel=1e-9)
    assert unlimited.unserved_ == pytest.approx(free.unserved_)
    heur = PMedian.from_cost_matrix(cost, w, capacity=np.full(16, np.inf), **kw).solve("heuristic")
    assert free.objective_ * (1 - 1e-9) <= heur.objective_ <= 1.01 * free.objective_
    cover = MaxCoverage.from_cost_matrix(cost, w, k=3, max_cost=3000.0).solve()
    cover_inf = MaxCoverage.from_cost_matrix(cost, w, k=3, max_cost=3000.0,
                                             capacity=np.full(16, np.inf)).solve()
    assert cover_inf.objective_ == pytest.approx(cover.objective_, rel=1e-9)


def test_unserved_demand_pays_the_penalty(sf: tuple[np.ndarray, np.ndarray]) -> None:
    # Capacity for half the demand: the rest is unserved and costs unreachable_cost.
    cost, w = sf
    m = PMedian.from_cost_matrix(cost, w, k=4, capacity=np.full(16, w.sum() / 8),
                                 unreachable_cost=30_000.0).solve()
    assert m.unserved_ == pytest.approx(w.sum() / 2, rel=1e-6)
    _check_allocation(m, cost, w, np.inf)


def test_cover_all_with_capacity_serves_every_point(sf: tuple[np.ndarray, np.ndarray]) -> None:
    cost, w = sf
    for method in ("exact", "heuristic"):
        m = PMedian.from_cost_matrix(cost, w, k=6, max_cost=12_000.0, cover_all=True,
                                     capacity=np.full(16, w.sum() / 5)).solve(method)
        served = np.asarray(m.allocation_.sum(axis=1)).ravel()
        assert served == pytest.approx(w, rel=1e-6)


def test_infeasible_cover_all_with_capacity_names_the_constraint(
    sf: tuple[np.ndarray, np.ndarray]
) -> None:
    cost, w = sf
    with pytest.raises(InputError, match=r"^capacity: cover_all=True needs all 955113") as err:
        PMedian.from_cost_matrix(cost, w, k=4, max_cost=12_000.0, cover_all=True,
                                 capacity=np.full(16, w.sum() / 5))
    assert "\n" not in str(err.value)
    # 12 stores put every tract within 4.7 km, and their capacity adds up to 102 % of
    # the demand, but not where it is needed.
    standard = dict(k=12, max_cost=4700.0, cover_all=True)
    PMedian.from_cost_matrix(cost, w, **standard).solve()
    tight = standard | {"capacity": np.full(16, 1.02 * w.sum() / 12)}
    with pytest.raises(InputError, match=r"^cover_all: no 12 sites can serve all demand") as err:
        PMedian.from_cost_matrix(cost, w, **tight).solve()
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"^cover_all: no 12 sites found that serve all") as err:
        PMedian.from_cost_matrix(cost, w, **tight).solve("heuristic")
    assert "\n" not in str(err.value)


def test_heuristic_is_deterministic_for_a_seed(sf: tuple[np.ndarray, np.ndarray]) -> None:
    runs = [_sf_model(sf, "pmedian", 4).solve("heuristic", random_state=7) for _ in range(2)]
    assert list(runs[0].selected_) == list(runs[1].selected_)
    assert runs[0].objective_ == runs[1].objective_
    assert (runs[0].allocation_ != runs[1].allocation_).nnz == 0


def test_baseline_is_the_existing_branches_within_their_capacity(
    sf: tuple[np.ndarray, np.ndarray]
) -> None:
    cost, w = sf
    m = _sf_model(sf, "coverage", 2)
    cap = m.fixed_capacity[0]
    within = (cost[:, EXISTING] <= 3000.0)
    reach = [w[within[:, i]].sum() for i in range(len(EXISTING))]
    # each branch covers at most its capacity, and the two reaches do not overlap here
    assert not (within[:, 0] & within[:, 1]).any()
    assert m.baseline_ == pytest.approx(sum(min(cap, r) for r in reach))
