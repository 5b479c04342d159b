"""The business-case stages: every selected site in money, and the siting rules checked.

``economics`` settles each chosen site's capex, revenue, opex and NPV (dropping
those below the study's hurdle and re-splitting the market until all pay);
``policy`` checks the operating rules per site (``--policy strict`` drops the
failing ones); ``--select npv`` chooses the budgeted set. See docs/economics.md.
"""

from __future__ import annotations

import warnings
from typing import Any

import geopandas as gpd
import numpy as np

from siteplanner._state import RankState, need, split_market
from siteplanner.economics import (
    MONEY_COLUMNS,
    candidate_rents,
    money,
    npv_inputs,
    site_economics,
    sizing_standard,
    tornado,
)
from siteplanner.policy import compliance, failing
from siteplanner.selection._status import drop_sites
from siteplanner.selection.joint import select_npv_set

__all__ = ["economics_stage", "policy_stage", "select_npv"]


def economics_stage(s: RankState) -> None:
    """Each selected site in money; the sites below the NPV hurdle are dropped (``[economics]``)."""
    e, k = s.study.economics, s.study.selection.top_k
    _settle(s)
    sel = need(s.selected)
    paying = int((sel["npv"] >= (e.min_npv or 0.0)).sum()) if len(sel) else 0
    if paying < k:
        kept = "" if e.min_npv is not None or len(sel) == paying else (
            f"; the {len(sel) - paying} that do not are kept and marked (drop them with --min-npv 0)")
        warnings.warn(f"{paying} of {k} sites pay (NPV at least "
                      f"{money(e.min_npv or 0.0, e.currency)} over {e.horizon_years} years at "
                      f"{e.discount_rate:.0%}): the market carries {paying} more "
                      f"{' / '.join(s.study.brand)} branches here{kept}", UserWarning, stacklevel=2)
    if len(sel):
        standard, premises = sizing_standard(s.study.floorplan)
        s.extras["npv_sensitivity"] = tornado(sel[["expected_demand", "cannibalized"]], e,
                                              standard=standard,
                                              rent_per_m2=sel["rent_per_m2_year"].to_numpy(),
                                              premises_m2=premises)


def policy_stage(s: RankState) -> None:
    """The siting rules checked per selected site; ``--policy strict`` drops the failing ones."""
    p, sel_rule = s.study.policy, s.study.selection
    dropped: dict[str, str] = {}
    while True:
        table = compliance(need(s.selected), need(s.ranked), need(s.layers).competitors, p,
                           own_spacing_m=sel_rule.min_distance_to_own_m)
        fails = failing(table)
        if p.mode != "strict" or not fails:
            break
        for sid, why in fails.items():
            warnings.warn(f"--policy strict dropped site {sid}: fails {why}", UserWarning,
                          stacklevel=2)
        dropped |= fails
        _drop(s, fails, "fails_policy", "dropped by --policy strict: fails ")
        _settle(s)
    s.result["compliance"] = table
    rows = table.astype({"value": float}).replace([np.inf, -np.inf], None)
    s.extras["policy"] = {"mode": p.mode, "rules": sorted(set(table["rule"])),
                          "sites_failing": len(fails), "dropped": dropped,
                          "compliance": rows.to_dict("records")}


def _settle(s: RankState) -> None:
    """Money per selected site; drop those below the hurdle and re-split the market until all pay."""
    e = s.study.economics
    standard, premises = sizing_standard(s.study.floorplan)
    dropped: dict[str, str] = dict(s.extras.get("economics", {}).get("dropped", {}))
    while True:
        sel = need(s.selected)
        if len(sel) == 0:
            break
        table = site_economics(sel, e, standard=standard, rent_per_m2=candidate_rents(sel, e),
                               premises_m2=premises)
        low = table.index[table["npv"] < e.min_npv] if e.min_npv is not None else []
        if len(low) == 0:
            break
        why = {str(sel.at[i, "site_id"]): f"NPV {money(float(table.at[i, 'npv']), e.currency)} is "
               f"below the hurdle {money(e.min_npv or 0.0, e.currency)}" for i in low}
        dropped |= why
        _drop(s, why, "not_paying", "")
        split_market(s, need(s.selected).drop(columns=[c for c in MONEY_COLUMNS
                                                   if c in need(s.selected)]))
    sel = need(s.selected)
    if len(sel):
        sel = sel.drop(columns=[c for c in MONEY_COLUMNS if c in sel]).join(table)
    s.selected = sel
    s.ranked = need(s.ranked).drop(columns=[c for c in MONEY_COLUMNS if c in need(s.ranked)])
    s.ranked = s.ranked.join(sel[list(MONEY_COLUMNS)]) if len(sel) else s.ranked
    kept = set(sel["site_id"].astype(str))
    for key in ("catchments",):
        if s.result.get(key) is not None:
            s.result[key] = s.result[key][s.result[key]["site_id"].astype(str).isin(kept)]
    s.result["floorplans"] = {k: v for k, v in s.result.get("floorplans", {}).items() if k in kept}
    s.extras["economics"] = {
        "currency": e.currency, "sites": len(sel),
        "sites_paying": int((sel["npv"] >= (e.min_npv or 0.0)).sum()) if len(sel) else 0,
        "npv_of_paying_sites": round(float(sel.loc[sel["npv"] >= (e.min_npv or 0.0), "npv"].sum()),
                                     2) if len(sel) else 0.0,
        "total_npv": round(float(sel["npv"].sum()), 2) if len(sel) else 0.0,
        "total_capex": round(float(sel["capex"].sum()), 2) if len(sel) else 0.0,
        "min_npv": e.min_npv, "budget": e.budget, "horizon_years": e.horizon_years,
        "discount_rate": e.discount_rate, "dropped": dropped,
    }


def _drop(s: RankState, why: dict[str, str], status: str, prefix: str) -> None:
    """Take the sites ``why`` names out of the selection, with ``status``; renumber the rest."""
    s.ranked, s.selected = drop_sites(need(s.ranked), need(s.selected), why, status=status,
                                      prefix=prefix)


def select_npv(s: RankState, ranked: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """``--select npv``: standalone money per candidate, pairwise overlap, then the budgeted set."""
    study, layers, sel, net, h = s.study, need(s.layers), s.study.selection, s.study.network, \
        s.study.huff
    demand, modes = need(s.demand), need(s.modes)

    def minutes(targets: gpd.GeoDataFrame) -> Any:
        return modes.minutes(demand, targets, cutoff_min=net.cutoff_min) if len(targets) else None

    standard, premises = sizing_standard(study.floorplan)
    eligible = ranked["nearest_own_m"].to_numpy() >= sel.min_distance_to_own_m
    inputs = npv_inputs(ranked, minutes(ranked), minutes(layers.own_branches),
                        minutes(layers.competitors), modes.weights(demand["weight"].to_numpy(dtype=float)),
                        study.economics, standard=standard, lam=h.lam,
                        attractiveness=(h.attractiveness_own, h.attractiveness_competitor,
                                        h.attractiveness_new),
                        eligible=eligible, premises_m2=premises, min_npv=study.economics.min_npv or 0.0)
    e = study.economics
    return select_npv_set(ranked, inputs, budget=e.budget, k=sel.top_k,
                          min_spacing_m=sel.min_spacing_m,
                          min_distance_to_own_m=sel.min_distance_to_own_m,
                          min_npv=e.min_npv or 0.0,
                          currency=e.currency, solver=sel.solver, time_limit_s=sel.time_limit_s,
                          seed=study.seed)


