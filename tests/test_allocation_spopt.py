"""Cross-check against spopt (PuLP + CBC) on the San Francisco problem spopt ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siteplanner.selection import MaxCoverage, PMedian
from siteplanner.selection import _heuristic as heur_mod

spopt = pytest.importorskip("spopt")
pulp = pytest.importorskip("pulp")
from spopt.locate import MCLP  # noqa: E402
from spopt.locate import PMedian as SpoptPMedian  # noqa: E402

SF_CSV = (
    Path(spopt.__file__).parent
    / "tests/test_locate/data/SF_network_distance_candidateStore_16_censusTract_205_new.csv"
)


@pytest.fixture(scope="module")
def sf() -> tuple[np.ndarray, np.ndarray]:
    """205 census tracts x 16 candidate stores, network distance in metres."""
    assert SF_CSV.exists(), f"spopt no longer ships {SF_CSV.name}"
    df = pd.read_csv(SF_CSV)
    table = df.pivot_table(index="DestinationName", columns="name", values="distance")
    stores = sorted(table.columns, key=lambda s: int(s.split("_")[1]))
    demand = df.drop_duplicates("DestinationName").set_index("DestinationName")["demand"]
    return table[stores].to_numpy(), demand.loc[table.index].to_numpy(dtype=float)


def _cbc() -> object:
    return pulp.PULP_CBC_CMD(msg=False)


def test_sf_data_is_the_documented_problem(sf: tuple[np.ndarray, np.ndarray]) -> None:
    cost, demand = sf
    assert cost.shape == (205, 16)
    assert demand.sum() == 955_113


@pytest.mark.parametrize("k", [2, 4, 6])
@pytest.mark.parametrize("radius", [2000.0, 5000.0])
def test_max_coverage_matches_spopt_mclp(
    sf: tuple[np.ndarray, np.ndarray], k: int, radius: float
) -> None:
    cost, demand = sf
    ref = MCLP.from_cost_matrix(cost, demand, service_radius=radius, p_facilities=k)
    ref = ref.solve(_cbc())
    ref_obj = pulp.value(ref.problem.objective)

    exact = MaxCoverage.from_cost_matrix(cost, demand, k=k, max_cost=radius).solve()
    assert exact.objective_ == pytest.approx(ref_obj, rel=1e-9)
    assert exact.status_ == "optimal"
    assert exact.gap_ <= 1e-6
    covered = (cost[:, exact.selected_] <= radius).any(axis=1)
    assert demand[covered].sum() == pytest.approx(exact.objective_)

    heur = MaxCoverage.from_cost_matrix(cost, demand, k=k, max_cost=radius).solve("heuristic")
    assert heur.objective_ >= 0.99 * ref_obj
    assert len(heur.selected_) == k
    # The heuristic's bound is a true upper limit on the optimum.
    assert heur.bound_ >= ref_obj * (1 - 1e-9)


@pytest.mark.parametrize("k", [2, 4, 6])
def test_pmedian_matches_spopt(sf: tuple[np.ndarray, np.ndarray], k: int) -> None:
    cost, demand = sf
    ref = SpoptPMedian.from_cost_matrix(cost, demand, p_facilities=k).solve(_cbc())
    ref_obj = pulp.value(ref.problem.objective)

    exact = PMedian.from_cost_matrix(cost, demand, k=k).solve()
    assert exact.objective_ == pytest.approx(ref_obj, rel=1e-9)
    assert exact.status_ == "optimal"
    assert (demand * cost[:, exact.selected_].min(axis=1)).sum() == pytest.approx(
        exact.objective_
    )

    heur = PMedian.from_cost_matrix(cost, demand, k=k).solve("heuristic")
    assert heur.objective_ <= 1.01 * ref_obj
    # The Lagrangian bound brackets the optimum within 1 %, so the gap a
    # planner reads from a heuristic run is close to the truth.
    assert heur.bound_ <= ref_obj * (1 + 1e-9)
    assert heur.gap_ <= 0.01


def test_existing_stores_match_spopt_predefined_facilities(
    sf: tuple[np.ndarray, np.ndarray],
) -> None:
    cost, demand = sf
    existing = [0, 9]
    predefined = np.zeros(16, dtype=int)
    predefined[existing] = 1
    ref = MCLP.from_cost_matrix(
        cost, demand, service_radius=3000.0, p_facilities=5, predefined_facilities_arr=predefined
    ).solve(_cbc())
    free = np.setdiff1d(np.arange(16), existing)
    ours = MaxCoverage.from_cost_matrix(
        cost[:, free], demand, k=3, max_cost=3000.0, fixed=cost[:, existing]
    ).solve()
    assert ours.objective_ == pytest.approx(pulp.value(ref.problem.objective))
    assert ours.objective_ > ours.baseline_ > 0


@pytest.mark.parametrize("k", [14, 15, 16])
def test_heuristic_when_k_nearly_uses_up_the_candidates(
    sf: tuple[np.ndarray, np.ndarray], k: int
) -> None:
    # With only a site or two left free, the search's shakes and randomised
    # starts must shrink to what is free instead of failing.
    cost, demand = sf
    exact = PMedian.from_cost_matrix(cost, demand, k=k).solve()
    heur = PMedian.from_cost_matrix(cost, demand, k=k).solve("heuristic")
    assert len(heur.selected_) == k
    assert heur.objective_ == pytest.approx(exact.objective_, rel=1e-9)
    cover = MaxCoverage.from_cost_matrix(cost, demand, k=k, max_cost=2000.0).solve("heuristic")
    assert len(cover.selected_) == k
    # the search's pieces on their own, without the bound that stops them early
    p = PMedian.from_cost_matrix(cost, demand, k=k)._problem
    rng = np.random.default_rng(0)
    start, _ = heur_mod.greedy_min_cost(p, rng, choices=5)
    best, value, _ = heur_mod.iterated_swaps(p, start, rng, rounds=5, lower=-np.inf,
                                             deadline=None)
    assert len(np.unique(start)) == len(best) == k
    assert value == pytest.approx(exact.objective_, rel=1e-9)
