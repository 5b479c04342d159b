"""The business-case settings of a study: ``[economics]`` and ``[policy]``.

Part of the one typed schema of :mod:`siteplanner.config` (the same strict
types and one-line messages); kept in their own module because they are many.
Every default is a published figure, cited on its field and in
``docs/economics.md``; a user overrides them with the bank's own numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import AllowInfNan, Strict

from siteplanner._schema import (
    Expect,
    FilePath,
    Metres0,
    Minutes,
    Problem,
    Text,
    is_file,
    settings,
    show,
)

__all__ = ["POLICY_MODES", "EconomicsSettings", "PolicySettings", "parse_amount"]

POLICY_MODES = ("report", "strict")

_NUM = (Strict(), AllowInfNan(False))
Money = Annotated[float, *_NUM, Ge(0), Expect("an amount >= 0 in the study's currency")]
Budget = Annotated[float, *_NUM, Gt(0), Expect("an amount > 0 in the study's currency, e.g. 2000000")]
Hurdle = Annotated[float, *_NUM, Expect("an amount in the study's currency, e.g. 0")]
Share = Annotated[float, *_NUM, Ge(0), Le(1), Expect("a share from 0 to 1")]
Shrinkage = Annotated[float, *_NUM, Ge(0), Lt(1), Expect("a share from 0 to below 1")]
Hours = Annotated[float, *_NUM, Gt(0), Le(168), Expect("hours per week, more than 0 and at most 168")]
Years = Annotated[int, Strict(), Ge(1), Expect("a whole number of years >= 1, e.g. 10")]
PaybackYears = Annotated[float, *_NUM, Gt(0), Expect("a number of years > 0, e.g. 7")]
Rate = Annotated[float, *_NUM, Ge(0), Lt(1), Expect("a yearly rate from 0 to below 1, e.g. 0.10 for 10 %")]
Percentile = Annotated[float, *_NUM, Ge(0), Le(100), Expect("a percentile from 0 to 100")]
PolicyMode = Annotated[Literal["report", "strict"], Expect("report or strict")]
Currency = Annotated[str, Strict(), Expect('a currency code such as "EUR"')]


@settings("economics")
class EconomicsSettings:
    """The business case of a site: every default is a published figure (docs/economics.md).

    Money is in ``currency`` (the sources below are in euros). Sources:

    - ``revenue_per_customer_year`` 789: Nordea Year-end Report 2007, income
      EUR 7,886m, and Annual Report 2007, about 10 million customers.
    - ``customer_share`` 0.76: World Bank Global Findex 2021, 76 % of adults
      worldwide hold an account; the share of the people a site draws each day
      (``expected_demand``, people per day) who become its customers.
    - ``branch_visits_per_customer_year`` 12: Gallup (2014, via Statista),
      the average US bank customer visited a branch 1.0 times a month.
    - ``rent_per_m2_year`` 1,104: Cushman & Wakefield, Main Streets Across the
      World 2025, prime rent on Warsaw's Nowy Świat (35th of 141 streets).
    - ``fitout_per_m2`` 2,663: Turner & Townsend (2024), average high-spec
      fit-out in Dublin, EUR 2,663/m².
    - ``equipment_per_atm`` 59,100: USD 48,000 per machine + 16,000 installation
      (a published bank-management case), at the ECB 2024 average USD 1.0824/EUR.
    - ``equipment_per_counter`` 16,200: a teller cash recycler per counter,
      USD 15,000-20,000 (ICBA Independent Banker, Oct. 2015), midpoint at 1.0824.
    - ``salary_per_fte_year`` 100,900: Eurostat labour cost in financial and
      insurance activities, euro area 2012, EUR 48.5 per hour, x 40 h x 52 weeks.
    - ``other_opex_per_m2_year`` 76: Assure Index 2024 (offices), median
      service charge GBP 6.00/sq ft, at the ECB 2024 average GBP 0.8466/EUR.
    - ``horizon_years`` 10: the 10-year useful life of branch equipment in the
      same bank-management case.
    - ``discount_rate`` 0.10: EBA Risk Assessment Reports (2013, 2015), most
      EU banks put their cost of equity at 10-12 %.
    - ``opening_hours_per_week`` and ``fte_hours_per_week`` 40: the ILO
      Forty-Hour Week Convention (C047, 1935).
    - ``shrinkage`` 0.24: Knowlagent Contact Center Shrinkage Survey 2010, the
      average share of paid time not spent serving customers.

    ``districts`` is an optional polygon layer with an asking rent per m² and
    year in ``rent_column``; a candidate premises layer with that column sets
    the rent per candidate (it wins over the district). ``budget`` caps the
    total capex of ``--select npv``; ``min_npv`` is the hurdle a site must reach:
    when set, sites below it are dropped from any selection (``None``: every
    site is kept and its money shown; ``--select npv`` always uses a hurdle, 0
    when unset).
    """

    currency: Currency = "EUR"
    revenue_per_customer_year: Money = 789.0
    customer_share: Share = 0.76
    branch_visits_per_customer_year: Money = 12.0
    rent_per_m2_year: Money = 1104.0
    fitout_per_m2: Money = 2663.0
    equipment_per_atm: Money = 59100.0
    equipment_per_counter: Money = 16200.0
    salary_per_fte_year: Money = 100900.0
    other_opex_per_m2_year: Money = 76.0
    horizon_years: Years = 10
    discount_rate: Rate = 0.10
    opening_hours_per_week: Hours = 40.0
    fte_hours_per_week: Hours = 40.0
    shrinkage: Shrinkage = 0.24
    districts: FilePath | None = None
    rent_column: Text = "asking_rent"
    budget: Budget | None = None
    min_npv: Hurdle | None = None

    def __post_init__(self) -> None:
        if not self.currency.strip():
            raise Problem("currency", "{key} is empty; give a currency code such as EUR")
        if self.districts is not None and not is_file(Path(self.districts)):
            raise Problem("districts", f"{{key}} {show(str(self.districts))} not found; check the path")


@settings("policy")
class PolicySettings:
    """The bank's siting rules as thresholds, checked for every selected site.

    ``transit_max_walk_min``: a stop within this walk (5 min, the study's own
    transit reach by default); ``foot_traffic_percentile`` and
    ``commercial_percentile``: at or above this percentile of the study's
    candidates (50: the median candidate); ``competitor_min_m``: no competitor
    branch closer (100 m, about a block); the own-branch spacing is the
    study's ``selection.min_distance_to_own_m``; ``max_payback_years``: optional.
    ``mode`` ``report`` lists the checks; ``strict`` drops a failing site.
    """

    mode: PolicyMode = "report"
    transit_max_walk_min: Minutes = 5.0
    foot_traffic_percentile: Percentile = 50.0
    commercial_percentile: Percentile = 50.0
    competitor_min_m: Metres0 = 100.0
    max_payback_years: PaybackYears | None = None


def parse_amount(text: str) -> float | str:
    """``--budget`` / ``--min-npv`` text as a number (``1_500_000`` and ``1,500,000`` too).

    Text that is not a number is returned as it is, so the schema names it in its message.
    """
    try:
        return float(text.replace("_", "").replace(",", ""))
    except ValueError:
        return text
