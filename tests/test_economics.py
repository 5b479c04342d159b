"""Each site in money: NPV, payback and break-even by the formulas, staffing feeding the opex."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import numpy_financial as npf
import pandas as pd
import pytest
from shapely.geometry import Point, box

from siteplanner._errors import ConfigError, InputError
from siteplanner.config import EconomicsSettings, Study
from siteplanner.economics import (
    annuity_factor,
    candidate_rents,
    npv,
    payback_years,
    site_economics,
    staffing,
    tornado,
)
from siteplanner.floorplan.standard import default_standard


def test_npv_and_payback_follow_the_formulas_on_a_hand_computed_case():
    # capex 1,000, 300 a year for 5 years at 10 %: 300 x 3.790787 - 1,000 = 137.24
    assert annuity_factor(0.10, 5) == pytest.approx(3.7907868, rel=1e-7)
    assert npv(1000.0, 300.0, rate=0.10, years=5) == pytest.approx(137.2360, abs=1e-4)
    assert npv(1000.0, 300.0, rate=0.10, years=5) == pytest.approx(
        npf.npv(0.10, [-1000.0] + [300.0] * 5))
    assert payback_years(1000.0, 300.0) == pytest.approx(1000 / 300)
    assert np.isnan(payback_years(1000.0, 0.0)) and np.isnan(payback_years(1000.0, -5.0))
    assert npv(500.0, 100.0, rate=0.0, years=4) == pytest.approx(-100.0)


def test_site_money_adds_up_from_its_staffing_and_demand():
    e = EconomicsSettings()
    demand = pd.DataFrame({"expected_demand": [800.0], "cannibalized": [100.0]})
    t = site_economics(demand, e, standard=default_standard(), rent_per_m2=[900.0]).iloc[0]
    customers = 0.76 * 800
    assert t["customers"] == pytest.approx(customers)
    assert t["revenue_per_year"] == pytest.approx(customers * 789, abs=0.01)
    assert t["cannibalized_revenue_per_year"] == pytest.approx(0.76 * 100 * 789, abs=0.01)
    capex = t["premises_m2"] * 2663 + t["atms"] * 59100 + t["counters"] * 16200
    assert t["capex"] == pytest.approx(capex, abs=1.0)
    fte = (t["counters"] + t["advisory_desks"]) * 40 / (40 * (1 - 0.24))
    assert t["fte"] == pytest.approx(fte, abs=0.01)
    opex = t["premises_m2"] * (900 + 76) + fte * 100900
    assert t["opex_per_year"] == pytest.approx(opex, rel=1e-4)
    flow = t["revenue_per_year"] - t["opex_per_year"] - t["cannibalized_revenue_per_year"]
    assert t["npv"] == pytest.approx(npf.npv(0.10, [-t["capex"]] + [flow] * 10), abs=0.05)
    assert t["payback_years"] == pytest.approx(t["capex"] / flow, abs=0.01)
    # at the break-even customer count the cash flow exactly repays the capex
    at_break_even = t["break_even_customers"] * 789 - t["opex_per_year"] - \
        t["cannibalized_revenue_per_year"]
    assert at_break_even * annuity_factor(0.10, 10) == pytest.approx(t["capex"], rel=1e-3)


def test_more_arrivals_need_more_counters_and_cost_more_to_run():
    std = default_standard()
    visits = np.array([100.0, 400.0, 1000.0, 2500.0, 6000.0, 12000.0])
    staff = staffing(0.76 * visits * 12 / (52 * 40), std)
    assert (np.diff(staff["counters"]) >= 0).all() and staff["counters"].iloc[-1] > \
        staff["counters"].iloc[0]
    t = site_economics(pd.DataFrame({"expected_demand": visits, "cannibalized": 0.0}),
                       EconomicsSettings(), standard=std)
    assert (np.diff(t["opex_per_year"]) >= 0).all()
    assert (np.diff(t["fte"]) >= 0).all() and t["fte"].iloc[-1] > t["fte"].iloc[0]
    assert t["opex_per_year"].iloc[-1] > t["opex_per_year"].iloc[0]


def test_tornado_moves_npv_the_right_way():
    demand = pd.DataFrame({"expected_demand": [900.0, 600.0], "cannibalized": [50.0, 20.0]})
    t = tornado(demand, EconomicsSettings(), standard=default_standard())
    by = {r["input"]: r for r in t["inputs"]}
    assert by["revenue_per_customer_year"]["low"] < t["base"] < by["revenue_per_customer_year"]["high"]
    assert by["customer_share"]["low"] < t["base"] < by["customer_share"]["high"]
    assert by["rent_per_m2_year"]["low"] > t["base"] > by["rent_per_m2_year"]["high"]


def _cands():
    pts = [Point(10, 10), Point(30, 10), Point(200, 200)]
    return gpd.GeoDataFrame({"site_id": ["a", "b", "c"]}, geometry=pts, crs=3067)


def test_rent_comes_from_the_candidate_then_its_district_then_the_default(tmp_path):
    districts = gpd.GeoDataFrame({"asking_rent": [400.0]}, geometry=[box(0, 0, 100, 100)], crs=3067)
    path = tmp_path / "districts.gpkg"
    districts.to_file(path)
    e = dataclasses.replace(EconomicsSettings(), districts=path)
    cands = _cands().assign(asking_rent=[250.0, None, None])
    assert candidate_rents(cands, e).tolist() == [250.0, 400.0, 1104.0]


def test_a_rent_column_missing_or_not_numeric_is_named(tmp_path):
    e = EconomicsSettings()
    with pytest.raises(InputError, match="'asking_rent' holds 'cheap'"):
        candidate_rents(_cands().assign(asking_rent=["cheap", 100, 200]), e)
    districts = gpd.GeoDataFrame({"rent": [400.0]}, geometry=[box(0, 0, 100, 100)], crs=3067)
    districts.to_file(tmp_path / "d.gpkg")
    with pytest.raises(InputError, match="no column 'asking_rent'.*economics.rent_column"):
        candidate_rents(_cands(), dataclasses.replace(e, districts=tmp_path / "d.gpkg"))


@pytest.mark.parametrize(("section", "match"), [
    ({"rent_per_m2_year": -5}, "economics.rent_per_m2_year = -5: expected an amount >= 0"),
    ({"discount_rate": 1.0}, "economics.discount_rate = 1.0: expected a yearly rate from 0 to below 1"),
    ({"horizon_years": 0}, "economics.horizon_years = 0: expected a whole number of years"),
    ({"budget": "a lot"}, 'economics.budget = "a lot": expected an amount > 0'),
    ({"customer_share": 1.5}, "economics.customer_share = 1.5: expected a share from 0 to 1"),
])
def test_bad_economics_get_one_line_naming_the_field(section, match):
    with pytest.raises(ConfigError, match=match) as e:
        Study.from_dict({"study": {"brand": "X"}, "economics": section})
    assert "\n" not in str(e.value)


def test_a_budget_that_is_not_a_number_on_the_command_line():
    s = Study.from_dict({"study": {"brand": "X"}})
    with pytest.raises(ConfigError, match='--budget: economics.budget = "ten": expected an amount'):
        s.with_overrides(budget="ten")
    assert s.with_overrides(budget="1_500_000").economics.budget == 1.5e6


def test_the_demo_report_opens_with_the_sites_that_pay_and_shows_rules_and_tornado(demo_out):
    import json
    import re

    html = (demo_out / "report.html").read_text()
    econ = json.loads((demo_out / "run.json").read_text())["economics"]
    answer = re.search(r"<p class='answer'>(.*?)</p>", html, re.S).group(1)
    assert answer.startswith(f"{econ['sites_paying']} of the 10 sites pay: their total NPV is EUR ")
    assert f"{econ['npv_of_paying_sites']:,.0f}" in answer
    assert "<table class='compliance" in html and ("pass" in html or "fail" in html)
    assert "alt='NPV sensitivity'" in html
    ranked = pd.read_csv(demo_out / "ranked_sites.csv")
    for col in ("capex", "revenue_per_year", "opex_per_year", "cannibalized_revenue_per_year",
                "npv", "payback_years", "break_even_customers"):
        assert col in ranked
    assert "rules: " in (demo_out / "map.html").read_text()
