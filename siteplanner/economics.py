"""The business case of each site: capex, revenue, opex, NPV, payback and break-even, in money.

A site's figures come from two places:

- its **floor plan**: the counters, ATMs and advisory desks that Erlang C sizes
  for its arrivals (:func:`siteplanner.floorplan.sizing.size_programme`), the
  premises area, and the staff (FTEs) that keep the staffed stations open;
- its **demand**: the visits per day it draws under the Huff rule
  (``expected_demand``) and those it takes from the brand's own branches
  (``cannibalized``).

``customers = customer_share x expected_demand``; revenue is customers times
``revenue_per_customer_year``; the cannibalised revenue is the same for
``cannibalized``. Arrivals per opening hour are the customers' branch visits
(``branch_visits_per_customer_year``) spread over 52 weeks of
``opening_hours_per_week``. Then, with ``cf = revenue - opex - cannibalised
revenue`` the yearly net cash flow::

    npv = -capex + sum_{t=1..horizon} cf / (1 + r)^t
    payback_years = capex / cf              (missing when cf <= 0)
    break_even_customers = (capex / annuity + opex + cannibalised revenue) / revenue per customer

Every default and its published source is in
:class:`~siteplanner.config.EconomicsSettings` and ``docs/economics.md``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from siteplanner._errors import InputError
from siteplanner.config import EconomicsSettings, FloorplanSettings
from siteplanner.floorplan.sizing import Demand, programme_area, size_programme
from siteplanner.floorplan.standard import Standard

__all__ = [
    "MONEY_COLUMNS",
    "NPVInputs",
    "annuity_factor",
    "candidate_rents",
    "npv",
    "npv_inputs",
    "pair_losses",
    "payback_years",
    "site_economics",
    "sizing_standard",
    "staffing",
    "tornado",
]

log = logging.getLogger(__name__)

#: Per-site columns this module adds, in the order ranked_sites.csv shows them.
MONEY_COLUMNS = ("premises_m2", "counters", "atms", "advisory_desks", "fte", "customers",
                 "rent_per_m2_year", "capex", "revenue_per_year", "opex_per_year",
                 "cannibalized_revenue_per_year", "npv", "payback_years", "break_even_customers")

#: The inputs the tornado moves, and the change each way.
TORNADO_INPUTS = ("revenue_per_customer_year", "rent_per_m2_year", "customer_share")
TORNADO_CHANGE = 0.20


def annuity_factor(rate: float, years: int) -> float:
    """Present value of 1 a year for ``years`` years at ``rate``: ``sum_{t=1..T} (1 + r)^-t``."""
    if rate == 0:
        return float(years)
    return float((1.0 - (1.0 + rate) ** -years) / rate)


def npv(capex: Any, cash_flow: Any, *, rate: float, years: int) -> np.ndarray:
    """``-capex + sum_{t=1..years} cash_flow / (1 + rate)^t``, elementwise."""
    return (-np.asarray(capex, dtype=float)
            + np.asarray(cash_flow, dtype=float) * annuity_factor(rate, years))


def payback_years(capex: Any, cash_flow: Any) -> np.ndarray:
    """``capex / cash_flow`` in years, NaN where the yearly cash flow is <= 0 (it never pays back)."""
    c, f = np.asarray(capex, dtype=float), np.asarray(cash_flow, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(f > 0, c / np.where(f > 0, f, 1.0), np.nan)


#: Sizings already run, by (the standard's repr, arrivals per hour): the tornado prices
#: the same sites 15 times, and each Erlang C sizing builds its tables in pandas (~5 ms).
_SIZED: dict[tuple[str, float], tuple[int, int, int, float, bool]] = {}
_SIZED_KEPT = 10_000


def staffing(arrivals_per_hour: Any, standard: Standard) -> pd.DataFrame:
    """Counters, advisory desks, ATMs and programme area (m²) per site from Erlang C.

    The standard's sizing runs once per distinct arrival rate (rounded to
    0.1 per hour), not once per site, and once per process for each
    standard and rate. A site busier than the standard's
    ``max_servers`` can serve gets the most stations the standard allows and
    the run warns.
    """
    rates = np.round(np.maximum(np.asarray(arrivals_per_hour, dtype=float), 0.1), 1)
    unique, inverse = np.unique(rates, return_inverse=True)
    key = repr(standard)  # a frozen dataclass of plain values: its repr is its content
    if len(_SIZED) > _SIZED_KEPT:
        _SIZED.clear()
    rows = [_SIZED.get((key, float(a))) or _SIZED.setdefault((key, float(a)),
                                                             _sized(float(a), standard))
            for a in unique]
    table = pd.DataFrame(rows, columns=["counters", "advisory_desks", "atms", "programme_m2",
                                        "capped"])
    return table.iloc[inverse].reset_index(drop=True)


def _sized(arrivals: float, standard: Standard) -> tuple[int, int, int, float, bool]:
    try:
        t = size_programme(Demand(arrivals), standard)
        capped = False
    except InputError:
        # more than the standard's max_servers: the largest branch the standard allows
        caps = {n: c.max_servers or 1 for n, c in standard.channels.items()}
        t = size_programme(Demand(dict.fromkeys(caps, 0.0) | {"counter": 0.1}), standard)
        for name, ch in standard.channels.items():
            t.loc[ch.zone, ["servers", "units"]] = caps[name]
        capped = True

    def units(zone: str) -> int:
        return int(t.at[zone, "units"]) if zone in t.index else 0

    return units("service"), units("advisory"), units("self_service"), programme_area(t), capped


def site_economics(demand: pd.DataFrame, settings: EconomicsSettings, *, standard: Standard,
                   rent_per_m2: Any = None, premises_m2: float | None = None) -> pd.DataFrame:
    """Capex, revenue, opex, NPV, payback and break-even per site, in ``settings.currency``.

    Parameters
    ----------
    demand
        One row per site with ``expected_demand`` and ``cannibalized`` (visits per day).
    rent_per_m2
        Rent per m² and year per site (default ``settings.rent_per_m2_year``).
    premises_m2
        The brand's standard premises area when every site uses it (the
        ``[floorplan]`` outline); else each site's programme area from the sizing.

    Returns
    -------
    DataFrame
        :data:`MONEY_COLUMNS` on ``demand``'s index.
    """
    e = settings
    visits = np.nan_to_num(demand["expected_demand"].to_numpy(dtype=float))
    cannib = np.nan_to_num(demand["cannibalized"].to_numpy(dtype=float))
    customers = e.customer_share * visits
    arrivals = customers * e.branch_visits_per_customer_year / (52.0 * e.opening_hours_per_week)
    staff = staffing(arrivals, standard)
    if staff["capped"].any():
        log.warning("%d sites need more stations than the standard's max_servers; "
                    "sized at the maximum", int(staff["capped"].sum()))
    area = np.round(np.full(len(demand), float(premises_m2)) if premises_m2 is not None
                    else staff["programme_m2"].to_numpy(), 1)
    rent = (np.full(len(demand), e.rent_per_m2_year) if rent_per_m2 is None
            else np.asarray(rent_per_m2, dtype=float))
    counters = staff["counters"].to_numpy()
    stations = counters + staff["advisory_desks"].to_numpy()
    fte = stations * e.opening_hours_per_week / (e.fte_hours_per_week * (1.0 - e.shrinkage))
    capex = (area * e.fitout_per_m2 + staff["atms"].to_numpy() * e.equipment_per_atm
             + counters * e.equipment_per_counter)
    revenue = customers * e.revenue_per_customer_year
    lost = e.customer_share * cannib * e.revenue_per_customer_year
    opex = area * (rent + e.other_opex_per_m2_year) + fte * e.salary_per_fte_year
    flow = revenue - opex - lost
    ann = annuity_factor(e.discount_rate, e.horizon_years)
    with np.errstate(divide="ignore", invalid="ignore"):
        break_even = np.where(e.revenue_per_customer_year > 0,
                              (capex / ann + opex + lost) / max(e.revenue_per_customer_year, 1e-12),
                              np.nan)
    out = pd.DataFrame({
        "premises_m2": area, "counters": counters,
        "atms": staff["atms"].to_numpy(), "advisory_desks": staff["advisory_desks"].to_numpy(),
        "fte": np.round(fte, 2), "customers": np.round(customers, 1),
        "rent_per_m2_year": rent, "capex": np.round(capex, 2),
        "revenue_per_year": np.round(revenue, 2), "opex_per_year": np.round(opex, 2),
        "cannibalized_revenue_per_year": np.round(lost, 2),
        "npv": np.round(npv(capex, flow, rate=e.discount_rate, years=e.horizon_years), 2),
        "payback_years": np.round(payback_years(capex, flow), 2),
        "break_even_customers": np.round(break_even, 1),
    }, index=demand.index)
    return out


def sizing_standard(floorplan: FloorplanSettings) -> tuple[Standard, float | None]:
    """The brand standard the sizing uses, and the standard premises area (m²) when the study has one."""
    from siteplanner.floorplan.export import read_outline
    from siteplanner.floorplan.standard import default_standard, load_standard

    standard = load_standard(floorplan.standard) if floorplan.standard else default_standard()
    area = float(read_outline(floorplan.outline).area) if floorplan.outline is not None else None
    return standard, area


def candidate_rents(cands: gpd.GeoDataFrame, settings: EconomicsSettings) -> np.ndarray:
    """Rent per m² and year for each candidate: its own asking rent, else its district's, else the default.

    The candidate's own rent is the ``settings.rent_column`` of a user
    premises layer; a district's is the same column of the ``districts``
    polygon layer. A column that is missing or not numeric is an error that
    names the file and the column.
    """
    col = settings.rent_column
    rent = np.full(len(cands), settings.rent_per_m2_year)
    if settings.districts is not None:
        districts = _read_districts(settings.districts)
        values = _rent_values(districts, col, f"economics.districts ({settings.districts})")
        districts = districts.assign(_rent=values).to_crs(cands.crs)
        hit = gpd.sjoin(cands[["geometry"]].reset_index(drop=True), districts[["_rent", "geometry"]],
                        how="left", predicate="within")
        first = hit[~hit.index.duplicated()]["_rent"].to_numpy(dtype=float)
        rent = np.where(np.isnan(first), rent, first)
    if col in cands:
        own = _rent_values(cands, col, "layer candidates")
        rent = np.where(np.isnan(own), rent, own)
    return rent


def _read_districts(path: Any) -> gpd.GeoDataFrame:
    """The district polygons (any format GDAL reads), with a one-line error when they are not."""
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except Exception as e:  # pyogrio raises several kinds for a file it cannot read
        msg = f"economics.districts ({path}): cannot be read ({e}); give a GeoPackage or GeoJSON"
        raise InputError(msg) from None
    if gdf.crs is None or not gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        msg = (f"economics.districts ({path}): needs polygons with a CRS, one per district with "
               "its asking rent")
        raise InputError(msg)
    return gdf


def _rent_values(gdf: pd.DataFrame, col: str, where: str) -> np.ndarray:
    if col not in gdf:
        msg = (f"{where}: no column {col!r} with the asking rent per m² and year; add it or set "
               "economics.rent_column to the rent column's name")
        raise InputError(msg)
    values = pd.to_numeric(gdf[col], errors="coerce")
    bad = values.isna() & gdf[col].notna()
    if bad.any() or (values < 0).any():
        first = gdf[col][bad | (values < 0)].iloc[0]
        msg = (f"{where}: column {col!r} holds {first!r}, not an asking rent >= 0; give a number "
               "per m² and year in every row (leave it empty to use the default)")
        raise InputError(msg)
    return values.to_numpy(dtype=float)


@dataclass
class NPVInputs:
    """What ``--select npv`` chooses from: standalone money per candidate and the pairwise overlap.

    ``table`` holds :data:`MONEY_COLUMNS` for every candidate opened alone;
    ``pairs`` (p x 2 candidate positions) and ``loss`` (p, money) are the NPV
    two sites lose together through Huff cannibalisation between them;
    ``market`` the Huff gains per demand point behind them (money), for the
    cover bound of :mod:`siteplanner.selection._npv_bounds`.
    """

    table: pd.DataFrame
    pairs: np.ndarray
    loss: np.ndarray
    market: tuple[sp.csr_array, np.ndarray] | None = None


def pair_losses(util: sp.csc_array, own: np.ndarray, rival: np.ndarray, weights: np.ndarray,
                pairs: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Brand demand (visits per day) two new sites lose by opening together rather than apart.

    With ``O`` the own and ``T`` all existing utility at a demand point and
    ``f(U) = (O + U) / (T + U)`` the brand's share there, the pair (i, j)
    loses ``sum_p w_p [f(u_i) + f(u_j) - f(0) - f(u_i + u_j)]`` (>= 0: the
    share is concave in U). Only demand points both sites reach count.
    """
    total = own + rival
    base = np.divide(own, total, out=np.zeros_like(total), where=total > 0)
    out = np.zeros(len(pairs))
    used = np.unique(pairs)
    if len(used) * util.shape[0] <= 5e7:  # dense columns of the sites in a pair: vectorised
        pos = np.searchsorted(used, pairs)
        u = util[:, used].toarray()
        o, t, w = own[:, None], total[:, None], weights[:, None]
        for start in range(0, len(pairs), chunk):
            a, b = u[:, pos[start:start + chunk, 0]], u[:, pos[start:start + chunk, 1]]
            with np.errstate(divide="ignore", invalid="ignore"):  # 0/0: a point nobody reaches
                g = (o + a) / (t + a) + (o + b) / (t + b) - base[:, None] - (o + a + b) / (t + a + b)
            out[start:start + len(a[0])] = (w * np.nan_to_num(g)).sum(axis=0)
        return np.maximum(out, 0.0)
    for start in range(0, len(pairs), chunk):
        i, j = pairs[start:start + chunk, 0], pairs[start:start + chunk, 1]
        a, b = sp.csr_array(util[:, i]), sp.csr_array(util[:, j])
        both = (a != 0).multiply(b != 0)
        a, b = sp.csr_array(a.multiply(both)), sp.csr_array(b.multiply(both))
        a.sort_indices()
        b.sort_indices()
        rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        o, t, w = own[rows], total[rows], weights[rows]

        def f(u: np.ndarray, o: np.ndarray = o, t: np.ndarray = t) -> np.ndarray:
            return (o + u) / (t + u)

        g = w * (f(a.data) + f(b.data) - base[rows] - f(a.data + b.data))
        out[start:start + len(i)] = np.bincount(a.indices, weights=g, minlength=len(i))
    return np.maximum(out, 0.0)


def npv_inputs(ranked: gpd.GeoDataFrame, minutes: Any, own_minutes: Any, rival_minutes: Any,
               weights: np.ndarray, settings: EconomicsSettings, *, standard: Standard,
               lam: float, attractiveness: tuple[float, float, float], eligible: np.ndarray,
               premises_m2: float | None = None,
               min_npv: float = 0.0) -> NPVInputs:
    """Every candidate's standalone economics and the pairwise NPV losses among ``eligible`` ones.

    ``minutes`` (demand x candidates), ``own_minutes`` and ``rival_minutes``
    are walk minutes as :func:`siteplanner.proximity.walk_minutes` returns
    them; the pairs that interact are those sharing a demand point (both within
    the walk cutoff of it), and only pairs of eligible candidates whose own NPV
    exceeds ``min_npv`` (and 0) are counted: no other can be chosen.
    """
    from siteplanner.selection._npv_pairs import huff_market, huff_pair_losses

    a_own, a_comp, a_new = attractiveness
    util = _utility(minutes, a_new, lam)
    n_rows = util.shape[0]
    own_u = (np.asarray(_utility(own_minutes, a_own, lam).sum(axis=1)).ravel()
             if own_minutes is not None else np.zeros(n_rows))
    riv_u = (np.asarray(_utility(rival_minutes, a_comp, lam).sum(axis=1)).ravel()
             if rival_minutes is not None else np.zeros(n_rows))
    if util.shape[1] * n_rows > 5e7:
        msg = (f"--select npv: {util.shape[1]} candidates x {n_rows} demand points is too "
               "large to evaluate; use coarser cells (candidates.h3_resolution) or a smaller area")
        raise InputError(msg)
    u = util.toarray()
    total = own_u + riv_u
    alone = total[:, None] + u
    share_after = np.divide(u + own_u[:, None], alone, out=np.zeros_like(alone), where=alone > 0)
    before = np.divide(own_u, total, out=np.zeros_like(total), where=total > 0)
    expected = weights @ np.divide(u, alone, out=np.zeros_like(alone), where=alone > 0)
    net_new = weights @ (share_after - before[:, None])
    demand = pd.DataFrame({"expected_demand": expected,
                           "cannibalized": np.maximum(expected - net_new, 0.0)}, index=ranked.index)
    table = site_economics(demand, settings, standard=standard,
                           rent_per_m2=candidate_rents(ranked, settings), premises_m2=premises_m2)
    table = table.join(demand)
    idx = np.flatnonzero(eligible & (table["npv"].to_numpy() > max(min_npv, 0.0)))
    # only pairs that share a demand point can cannibalise: built sparse (selection._npv_pairs)
    pairs, lost = huff_pair_losses(util, own_u, riv_u, weights, columns=idx)
    value = settings.customer_share * settings.revenue_per_customer_year * annuity_factor(
        settings.discount_rate, settings.horizon_years)
    loss = lost * value
    keep = loss > 1e-9 * max(float(np.abs(table["npv"]).max()), 1.0)
    gain, cap = huff_market(util, own_u, riv_u, weights)
    return NPVInputs(table=table, pairs=pairs[keep], loss=loss[keep],
                     market=(gain * value, cap * value))


def _utility(minutes: Any, attractiveness: float, lam: float) -> sp.csr_array:
    """Huff utility ``A * max(t, 1 min)^-λ`` of every reachable pair (sparse; missing = unreachable)."""
    from siteplanner.huff import DEFAULT_MIN_MINUTES

    if sp.issparse(minutes):
        u = sp.csr_array(minutes, dtype=float, copy=True)
        u.data = attractiveness * np.maximum(u.data, DEFAULT_MIN_MINUTES) ** -lam
        return u
    m = np.asarray(minutes, dtype=float)
    ok = np.isfinite(m)
    vals = np.where(ok, attractiveness * np.maximum(np.where(ok, m, 1.0), DEFAULT_MIN_MINUTES) ** -lam,
                    0.0)
    return sp.csr_array(vals)


def tornado(demand: pd.DataFrame, settings: EconomicsSettings, *, standard: Standard,
            rent_per_m2: Any = None, premises_m2: float | None = None,
            change: float = TORNADO_CHANGE) -> dict[str, Any]:
    """Total NPV of the sites when each of :data:`TORNADO_INPUTS` moves by ±``change``.

    Returns the base total and, per input, the totals at ``1 - change`` and
    ``1 + change`` (rent moves the per-site rents, which may come from a layer).
    """
    base_rent = (np.full(len(demand), settings.rent_per_m2_year) if rent_per_m2 is None
                 else np.asarray(rent_per_m2, dtype=float))

    def total(e: EconomicsSettings, rent: np.ndarray) -> float:
        t = site_economics(demand, e, standard=standard, rent_per_m2=rent, premises_m2=premises_m2)
        return round(float(t["npv"].sum()), 2)

    rows = []
    for name in TORNADO_INPUTS:
        ends = []
        for f in (1 - change, 1 + change):
            if name == "rent_per_m2_year":
                ends.append(total(settings, base_rent * f))
            else:
                value = getattr(settings, name) * f
                value = min(value, 1.0) if name == "customer_share" else value
                ends.append(total(replace(settings, **{name: value}), base_rent))
        rows.append({"input": name, "low": ends[0], "high": ends[1]})
    return {"change": change, "base": total(settings, base_rent), "currency": settings.currency,
            "inputs": rows, "sites": len(demand)}


def money(value: float, currency: str) -> str:
    """``EUR 1,234,567`` (rounded to whole units), for messages."""
    return f"{currency} {value:,.0f}" if math.isfinite(value) else f"{currency} –"
