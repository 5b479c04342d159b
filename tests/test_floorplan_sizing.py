"""Sizing: Erlang C against a published example, seats from the queue distribution, areas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln

from siteplanner._errors import InputError
from siteplanner.floorplan import Demand, default_standard, erlang_c, size_programme, size_servers
from siteplanner.floorplan.sizing import (
    programme_area,
    queue_length_pmf,
    reduce_programme,
    seats_for_queues,
)


def test_erlang_c_matches_the_published_worked_example() -> None:
    # pyworkforce docs: 100 calls per 30 min, AHT 3 min, 20 s target
    s = size_servers(200.0, 3.0, target_level=0.8, target_wait_min=20 / 60)
    assert s.servers == 14
    assert s.service_level == pytest.approx(0.888, abs=5e-4)
    assert s.utilisation == pytest.approx(0.714, abs=5e-4)
    assert s.p_wait == pytest.approx(0.174, abs=5e-4)


def _erlang_c_logspace(c: int, a: float) -> float:
    k = np.arange(c)
    log_terms = k * math.log(a) - gammaln(k + 1)
    log_last = c * math.log(a) - gammaln(c + 1) + math.log(c / (c - a))
    top = np.exp(log_last - np.logaddexp.reduce(np.append(log_terms, log_last)))
    return float(top)


@pytest.mark.parametrize(("c", "a"), [(3, 2.0), (60, 50.0), (900, 870.0)])
def test_erlang_c_is_stable_for_many_servers(c: int, a: float) -> None:
    assert erlang_c(c, a) == pytest.approx(_erlang_c_logspace(c, a), rel=1e-9)


def test_large_demand_sizes_without_overflow() -> None:
    s = size_servers(30000.0, 3.0, target_level=0.8, target_wait_min=0.5)
    assert 1500 < s.servers < 1600
    assert s.utilisation < 1.0 and 0.8 <= s.service_level <= 1.0


def test_seats_are_the_95_percent_queue_length_and_little_holds() -> None:
    c, a = 5, 4.0
    k, mean_q = seats_for_queues([(c, a)], 0.05)
    pmf = queue_length_pmf(c, a)
    tail = 1.0 - np.cumsum(pmf)
    assert tail[k] <= 0.05 < tail[k - 1]
    s = size_servers(60.0, 4.0, target_level=0.5, target_wait_min=5.0)
    assert s.servers == 5
    lam = 60.0 / 60.0
    assert mean_q == pytest.approx(lam * s.mean_wait_min, rel=1e-6)  # Little: Lq = λ Wq


def test_programme_reports_servers_seats_and_areas_per_zone() -> None:
    std = default_standard()
    t = size_programme(Demand(120.0), std)
    assert list(t.index) == list(std.kinds)
    assert t.loc["service", "service_level"] >= 0.8
    assert t.loc["service", "utilisation"] <= std.max_occupancy
    assert t.loc["waiting", "units"] >= t.loc["waiting", "queue_places"]
    assert t.loc["back_office", "units"] == t.loc["service", "units"] + t.loc["advisory", "units"]
    ss = std.zones["self_service"]
    net = ss.area_per_unit_m2 * t.loc["self_service", "units"] + ss.queue_place_m2 * t.loc[
        "self_service", "queue_places"]
    assert t.loc["self_service", "programme_m2"] == pytest.approx(net * 1.3)
    more = size_programme(Demand(240.0), std)
    assert programme_area(more) > programme_area(t)


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan")])
def test_zero_negative_or_nan_demand_is_rejected(bad: float) -> None:
    with pytest.raises(InputError, match="arrivals"):
        size_programme(Demand(bad), default_standard())


def test_negative_channel_demand_is_rejected() -> None:
    with pytest.raises(InputError, match="negative"):
        size_programme(Demand({"counter": 10.0, "self_service": -1.0}), default_standard())


def test_demand_beyond_max_servers_names_the_cap() -> None:
    with pytest.raises(InputError, match=r"more than 16 servers \(max_servers"):
        size_programme(Demand({"counter": 500.0, "self_service": 10.0}), default_standard())


def test_reduced_programme_fits_and_keeps_every_zone() -> None:
    std = default_standard()
    t = size_programme(Demand(120.0), std)
    small = reduce_programme(t, 120.0, std)
    assert small is not None
    assert programme_area(small) <= 120.0
    assert (small["units"] >= 1).all() and list(small.index) == list(t.index)
    assert reduce_programme(t, 20.0, std) is None
