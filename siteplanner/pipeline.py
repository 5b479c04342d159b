"""The ranking pipeline: study → layers → candidates → features → score → selection → market.

:func:`rank_sites` runs the stage functions of :data:`STAGES` in order over
one :class:`RankState` and returns a :class:`RankResult` holding each
intermediate table, so an analyst can inspect or change any of them. Every
figure the outputs show is computed here; :mod:`siteplanner.io`,
:mod:`siteplanner.maps` and :mod:`siteplanner.report` only render it.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner import features as feat
from siteplanner._errors import InputError
from siteplanner.ahp import weights_from_judgements
from siteplanner.calibration import calibrate_foot_traffic
from siteplanner.candidates import SITE_COLUMNS, edge_policy, h3_candidates, site_candidates
from siteplanner.clustering import opportunity_zones, territories
from siteplanner.config import CRITERIA, Study
from siteplanner.demand import criteria_correlation, demand_layer, read_census
from siteplanner.economics import (
    MONEY_COLUMNS,
    candidate_rents,
    money,
    npv_inputs,
    site_economics,
    sizing_standard,
    tornado,
)
from siteplanner.features import compute_criteria
from siteplanner.floorplan.sites import SitePlan, plan_sites
from siteplanner.footfall import foot_traffic_points
from siteplanner.layers import Layers, build_layers
from siteplanner.learned import LearnedScores, learned_scores
from siteplanner.market import catchments, market_share, walk_graph
from siteplanner.model import score
from siteplanner.nearby import nearby_counts
from siteplanner.network import WalkGraph
from siteplanner.policy import compliance, failing
from siteplanner.premises import check_premises
from siteplanner.proximity import NetworkWalk, Proximity, StraightLine
from siteplanner.rescore import rank_inputs, rescore, rescored_sites
from siteplanner.selection import select_top
from siteplanner.selection._status import drop_sites, status_codes
from siteplanner.selection.joint import select_joint, select_npv_set
from siteplanner.sources import read_osm_file
from siteplanner.sources._osm import OSMData
from siteplanner.stability import Sensitivity, bootstrap_stability, weight_sensitivity, weight_stability

__all__ = ["MARKET_COLUMNS", "STAGES", "RankResult", "RankState", "cache_folder", "load_osm",
           "rank_sites"]

log = logging.getLogger(__name__)

MARKET_COLUMNS = ("expected_demand", "from_competitors", "cannibalized", "net_new_demand")


@dataclass
class RankResult:
    """Everything a ranking run produced.

    ``candidates`` holds every candidate with its raw criterion values,
    contributions, score, rank, ``status`` (a code) and ``status_detail``;
    ``selected`` the chosen sites in rank order. The later stages fill the
    optional parts when they run: ``catchments`` (site_id, minutes, polygon),
    ``clusters`` and ``territories`` (polygons), ``sensitivity`` (the
    one-at-a-time weight check of a weighted top-K run), ``floorplans`` (per
    planned site), ``foot_traffic_points`` (the points behind the foot-traffic
    criterion), and ``extras`` (named figures for run.json, such as the
    market impact or the model's validation scores).
    """

    study: Study
    layers: Layers
    candidates: gpd.GeoDataFrame
    selected: gpd.GeoDataFrame
    foot_traffic_measured: bool
    data_date: str | None
    timings: dict[str, float] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    catchments: gpd.GeoDataFrame | None = None
    clusters: gpd.GeoDataFrame | None = None
    territories: gpd.GeoDataFrame | None = None
    sensitivity: Sensitivity | None = None
    floorplans: dict[str, SitePlan] = field(default_factory=dict)
    foot_traffic_points: gpd.GeoDataFrame | None = None
    #: The demand cells: residents, workers, foot traffic and demand in people per day.
    demand: gpd.GeoDataFrame | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    compliance: pd.DataFrame | None = None

    def rescore(self, weights: Mapping[str, float] | None = None, **by_name: float) -> gpd.GeoDataFrame:
        """The top K again under other weights, without computing any feature again.

        Parameters
        ----------
        weights
            Criterion name -> weight (any scale: weights are divided by their
            sum); criteria not named keep the study's weight. Keyword
            arguments do the same: ``result.rescore(transit=0.5)``.

        Returns
        -------
        geopandas.GeoDataFrame
            The chosen sites in rank order with the new ``score``,
            ``NAME_contribution``, ``rank`` and ``previous_rank`` (the run's
            rank; missing for a site the run did not choose). It is the
            same ranking path as the report's weight sensitivity and the
            map's what-if panel (:mod:`siteplanner.rescore`).

        Examples
        --------
        >>> sites = result.rescore(transit=0.5)  # doctest: +SKIP
        """
        study = self.study
        if study.model.kind != "weighted" or study.selection.method != "top":
            msg = (f"rescore re-ranks a weighted top-K run; this run used --model {study.model.kind} "
                   f"--select {study.selection.method}: run rank again with the new weights")
            raise InputError(msg)
        inputs = rank_inputs(self.candidates, self.layers.own_branches, study.criteria, study.selection)
        w = {n: study.criteria[n].weight for n in inputs.names} | dict(weights or {}) | by_name
        return rescored_sites(self.candidates, inputs, rescore(inputs, w))


@dataclass
class RankState:
    """What the stages hand each other: each stage reads earlier fields and sets its own."""

    study: Study
    plan_floors: bool = True
    osm: OSMData | None = None
    online_area: Any = None
    inputs: list[Path] = field(default_factory=list)
    user: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    layers: Layers | None = None
    cands: gpd.GeoDataFrame | None = None
    graph: WalkGraph | None = None
    prox: Proximity | None = None
    reach_m: float = 0.0
    raw: pd.DataFrame | None = None
    access: pd.DataFrame | None = None
    learned: LearnedScores | None = None
    ranked: gpd.GeoDataFrame | None = None
    pool: pd.Index | None = None
    selected: gpd.GeoDataFrame | None = None
    demand: gpd.GeoDataFrame | None = None
    foot_pts: gpd.GeoDataFrame | None = None
    result: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def metres_per_minute(self) -> float:
        return self.study.network.walk_speed_kmh * 1000 / 60


def cache_folder() -> Path:
    """Where online answers are cached: ``$SITEPLANNER_CACHE`` or ``~/.cache/siteplanner``."""
    root = os.environ.get("SITEPLANNER_CACHE") or Path.home() / ".cache" / "siteplanner"
    return Path(root) / "osmnx"


def load_osm(study: Study) -> tuple[OSMData | None, Any, list[Path]]:
    """Read the study's OSM source: a local file, or osmnx online for a place or bbox."""
    if study.osm is not None:
        return read_osm_file(study.osm), None, [study.osm]
    if study.place is not None or study.bbox is not None:
        from siteplanner.sources.overpass import read_online

        data, area = read_online(place=study.place, bbox=study.bbox, cache_folder=cache_folder())
        return data, area, []
    return None, None, []


# --------------------------------------------------------------------------- stages

def load_stage(s: RankState) -> None:
    """Read the OSM source and every user layer file."""
    from siteplanner.sources.files import read_layer_file

    study = s.study
    if study.osm is None and study.place is None and study.bbox is None \
            and "area" not in study.layers:
        msg = "no data source: give --osm FILE, --place NAME, --bbox W,S,E,N or an area layer"
        raise InputError(msg)
    check_premises(study.floorplan, where=str(study.source_file or "study"))
    s.osm, s.online_area, s.inputs = load_osm(study)
    s.user = {kind: read_layer_file(spec) for kind, spec in study.layers.items()}
    s.inputs += [spec.path for spec in study.layers.values()]


def layers_stage(s: RankState) -> None:
    """Classify OSM features into the study's layers, user files replacing OSM ones."""
    study = s.study
    s.layers = build_layers(brand=study.brand, osm=s.osm, user=s.user, area=s.online_area,
                            crs=study.crs,
                            user_paths={k: str(spec.path) for k, spec in study.layers.items()},
                            area_name=study.area_name, admin_level=study.admin_level,
                            brand_wikidata=study.brand_wikidata, aliases=study.aliases)
    if study.name is None:
        # a study named by no one is named after its place: the boundary, else the data file
        s.study = study.replace(name=s.layers.area_name or study.display_name)
    if study.ahp is not None:
        s.extras["ahp"] = weights_from_judgements(study.ahp, list(CRITERIA)).to_dict()


def candidates_stage(s: RankState) -> None:
    """H3 cells on buildable land near streets (or the user's premises), addressed, edges flagged."""
    study = s.study
    s.cands, s.extras["candidates"] = site_candidates(
        _need(s.layers), resolution=study.candidates.h3_resolution,
        reach_m=max(c.radius_m for c in study.criteria.values()),
        street_within_m=study.candidates.street_within_m)


def network_stage(s: RankState) -> None:
    """The walking graph and one bounded search from every candidate, shared by all criteria."""
    net, layers, cands = s.study.network, _need(s.layers), _need(s.cands)
    s.graph = walk_graph(layers, speed_kmh=net.walk_speed_kmh)
    s.reach_m = max(max(c.radius_m for c in s.study.criteria.values()),
                    net.cutoff_min * s.metres_per_minute)
    if s.graph is None:
        s.extras["network"] = {"walk_times": "straight-line",
                               "note": "no street network in the data; distances are straight lines"}
        s.prox = StraightLine(cands)
        return
    report = s.graph.components(cands)
    s.extras["network"] = {"walk_times": "network", "nodes": s.graph.n_nodes,
                           "components": report.n_components,
                           "candidates_off_main_network": round(report.unreachable_share, 4)}
    if report.unreachable_share > 0:
        warnings.warn(
            f"{report.unreachable_share:.1%} of candidates lie on street pieces cut off "
            "from the main walking network; they are measured from the nearest street "
            "node of the main network", UserWarning, stacklevel=2)
    s.prox = NetworkWalk(s.graph, cands, cutoff_m=s.reach_m)


def features_stage(s: RankState) -> None:
    """Every criterion's raw value per candidate, and walk minutes to transit by mode."""
    study, layers, cands = s.study, _need(s.layers), _need(s.cands)
    s.foot_pts, _ = foot_traffic_points(layers)
    s.raw = compute_criteria(cands, layers, study, proximity=s.prox)
    net = study.network
    s.access = feat.transit_access(cands, layers.transit, proximity=_need(s.prox), reach_m=s.reach_m,
                                   metres_per_minute=s.metres_per_minute,
                                   within_min=net.transit_within_min)
    s.access = s.access.join(nearby_counts(
        cands, {"pois": layers.pois, "competitors": layers.competitors, "own": layers.own_branches},
        proximity=_need(s.prox), metres_per_minute=s.metres_per_minute,
        within_min=net.transit_within_min))
    if layers.foot_traffic_measured:
        s.raw["foot_traffic"], s.extras["foot_traffic_calibration"] = _calibrated_foot_traffic(
            s.raw["foot_traffic"], cands, layers, study)


def score_stage(s: RankState) -> None:
    """The weighted score (or the learned model's), with each criterion's contribution."""
    study, layers, cands, raw = s.study, _need(s.layers), _need(s.cands), _need(s.raw)
    if study.model.kind == "learned":
        graph, reach_m = s.graph, s.reach_m

        def featurize(pts: gpd.GeoDataFrame) -> pd.DataFrame:
            p = NetworkWalk(graph, pts, cutoff_m=reach_m) if graph is not None else None
            return compute_criteria(pts, layers, study, proximity=p)

        s.learned = learned_scores(cands, raw, layers, featurize=featurize,
                                   performance_column=study.model.performance_column,
                                   criteria=study.criteria, random_state=study.seed)
        scored = s.learned.table
        s.extras["learned_model"] = s.learned.report
    else:
        scored = score(raw, study.criteria)
    table = cands[list(SITE_COLUMNS)].join(raw).join(scored).join(_need(s.access))
    s.extras["criteria_correlation"] = criteria_correlation(
        raw, {k: c.weight for k, c in study.criteria.items()})
    s.ranked = gpd.GeoDataFrame(table, geometry="geometry", crs=layers.crs)


def select_stage(s: RankState) -> None:
    """Top K with spacing, or the set a location-allocation model chooses jointly."""
    study, layers, sel = s.study, _need(s.layers), s.study.selection
    pool, edge_rows = edge_policy(_need(s.ranked), policy=study.candidates.edge)
    s.pool = pool.index  # edge candidates held out of selection stay out of stability too
    ranked = select_top(pool, layers.own_branches, k=sel.top_k,
                        min_spacing_m=sel.min_spacing_m,
                        min_distance_to_own_m=sel.min_distance_to_own_m)
    s.demand = _demand_points(_need(s.cands), _need(s.raw), layers, study)
    s.extras["demand"] = {k: s.demand.attrs[k] for k in ("unit", "sources", "weights")
                          if k in s.demand.attrs} | {"cells": len(s.demand)}
    if sel.method == "npv":
        ranked, s.extras["selection_model"] = _select_npv(s, ranked)
    elif sel.method != "top":
        h, net = study.huff, study.network
        ranked, s.extras["selection_model"] = select_joint(
            sel.method, ranked, s.demand, own=layers.own_branches,  # type: ignore[arg-type]
            competitors=layers.competitors, graph=s.graph, k=sel.top_k,
            min_distance_to_own_m=sel.min_distance_to_own_m,
            coverage_minutes=sel.coverage_minutes, cutoff_min=net.cutoff_min,
            speed_kmh=net.walk_speed_kmh, lam=h.lam,
            attractiveness=(h.attractiveness_own, h.attractiveness_competitor,
                            h.attractiveness_new),
            solver=sel.solver, time_limit_s=sel.time_limit_s, seed=study.seed,
            capacity=sel.capacity)
    if len(edge_rows):
        ranked = pd.concat([ranked, edge_rows])
        ranked["status"] = status_codes(ranked["status"].astype(str))
    s.ranked = ranked
    s.selected = _selected(ranked)


def stability_stage(s: RankState) -> None:
    """Each site's share of perturbed judgements (weights, or learned refits) that keep it."""
    study, sel = s.study, s.study.selection
    if study.model.stability_draws <= 0 or sel.method != "top":
        return
    rule: dict[str, Any] = {"k": sel.top_k, "min_spacing_m": sel.min_spacing_m,
                            "min_distance_to_own_m": sel.min_distance_to_own_m}
    pool = _need(s.pool)
    cands, raw, own = _need(s.cands).loc[pool], _need(s.raw).loc[pool], _need(s.layers).own_branches
    if s.learned is not None:
        stab, s.extras["stability"] = bootstrap_stability(
            s.learned, cands, raw, own, n_draws=study.model.stability_draws, seed=study.seed,
            **rule)
    else:
        stab, s.extras["stability"] = weight_stability(
            cands, raw, study.criteria, own, n_draws=study.model.stability_draws,
            concentration=study.model.stability_concentration, seed=study.seed, **rule)
    s.ranked = _need(s.ranked).join(stab[["stability", "fragile"]])
    s.selected = _selected(s.ranked)


def sensitivity_stage(s: RankState) -> None:
    """One-at-a-time ±20 % weight changes: only for the hand-set weights of a top-K run."""
    study = s.study
    if study.selection.method != "top" or study.model.kind != "weighted":
        return
    s.result["sensitivity"] = weight_sensitivity(_need(s.ranked).loc[_need(s.pool)],
                                                 _need(s.layers).own_branches, study.criteria,
                                                 study.selection)


def clusters_stage(s: RankState) -> None:
    """Opportunity zones of high-scoring cells and demand-balanced territories."""
    model, layers = s.study.model, _need(s.layers)
    ranked, selected = _need(s.ranked), _need(s.selected)
    if model.clusters:
        z = opportunity_zones(ranked)
        s.result["clusters"], s.extras["clusters"] = z.polygons, z.report
    if model.territories:
        seeds = pd.concat([layers.own_branches[["label", "geometry"]],
                           selected[["geometry"]].assign(label=selected["site_id"])],
                          ignore_index=True)
        t = territories(ranked, demand=_need(s.raw)["foot_traffic"],
                        seeds=gpd.GeoDataFrame(seeds, geometry="geometry", crs=layers.crs))
        s.result["territories"], s.extras["territories"] = t.polygons, t.report


def market_stage(s: RankState) -> None:
    """Walking catchments and the Huff split of demand among own, competitor and new sites."""
    net, selected = s.study.network, _need(s.selected)
    if s.graph is not None and len(selected):
        s.result["catchments"] = catchments(s.graph, selected, minutes=net.catchment_minutes)
    _market(s, selected)


def _market(s: RankState, selected: gpd.GeoDataFrame) -> None:
    """The Huff split for ``selected`` opened together, joined onto it as ``s.selected``."""
    net = s.study.network
    if len(selected) == 0:
        s.selected = selected
        return
    market = market_share(_need(s.layers), selected, _need(s.demand), graph=s.graph,
                          settings=s.study.huff, cutoff_min=net.cutoff_min,
                          speed_kmh=net.walk_speed_kmh)
    parts = market.sites[list(MARKET_COLUMNS)].set_axis(selected.index)
    s.selected = selected.drop(columns=[c for c in MARKET_COLUMNS if c in selected]).join(parts)
    s.extras["market"] = market.summary


def floorplans_stage(s: RankState) -> None:
    """Floor plans for the top sites, sized by each site's own demand (``[floorplan]``)."""
    settings = s.study.floorplan
    if not s.plan_floors or settings.outline is None:
        return
    plans = plan_sites(_need(s.selected), settings, seed=s.study.seed)
    s.result["floorplans"] = plans
    if plans:
        s.extras["floorplans"] = {sid: p.summary for sid, p in plans.items()}


def economics_stage(s: RankState) -> None:
    """Each selected site in money; the sites below the NPV hurdle are dropped (``[economics]``)."""
    e, k = s.study.economics, s.study.selection.top_k
    _settle(s)
    sel = _need(s.selected)
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
        table = compliance(_need(s.selected), _need(s.ranked), _need(s.layers).competitors, p,
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
        sel = _need(s.selected)
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
        _market(s, _need(s.selected).drop(columns=[c for c in MONEY_COLUMNS
                                                   if c in _need(s.selected)]))
    sel = _need(s.selected)
    if len(sel):
        sel = sel.drop(columns=[c for c in MONEY_COLUMNS if c in sel]).join(table)
    s.selected = sel
    s.ranked = _need(s.ranked).drop(columns=[c for c in MONEY_COLUMNS if c in _need(s.ranked)])
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
    s.ranked, s.selected = drop_sites(_need(s.ranked), _need(s.selected), why, status=status,
                                      prefix=prefix)


def _select_npv(s: RankState, ranked: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """``--select npv``: standalone money per candidate, pairwise overlap, then the budgeted set."""
    from siteplanner.proximity import walk_minutes

    study, layers, sel, net, h = s.study, _need(s.layers), s.study.selection, s.study.network, \
        s.study.huff
    mpm, demand = s.metres_per_minute, _need(s.demand)

    def minutes(targets: gpd.GeoDataFrame) -> Any:
        return (walk_minutes(s.graph, demand, targets, cutoff_min=net.cutoff_min,
                             metres_per_minute=mpm) if len(targets) else None)

    standard, premises = sizing_standard(study.floorplan)
    eligible = ranked["nearest_own_m"].to_numpy() >= sel.min_distance_to_own_m
    inputs = npv_inputs(ranked, minutes(ranked), minutes(layers.own_branches),
                        minutes(layers.competitors), demand["weight"].to_numpy(dtype=float),
                        study.economics, standard=standard, lam=h.lam,
                        attractiveness=(h.attractiveness_own, h.attractiveness_competitor,
                                        h.attractiveness_new),
                        eligible=eligible, interaction_m=2 * max(net.catchment_minutes) * mpm,
                        premises_m2=premises, min_npv=study.economics.min_npv or 0.0)
    e = study.economics
    return select_npv_set(ranked, inputs, budget=e.budget, k=sel.top_k,
                          min_spacing_m=sel.min_spacing_m,
                          min_distance_to_own_m=sel.min_distance_to_own_m,
                          min_npv=e.min_npv or 0.0,
                          currency=e.currency, solver=sel.solver, time_limit_s=sel.time_limit_s,
                          seed=study.seed)


#: The stages in the order they run; the CLI's progress display reads the names.
STAGES: tuple[tuple[str, Callable[[RankState], None]], ...] = (
    ("load", load_stage),
    ("layers", layers_stage),
    ("candidates", candidates_stage),
    ("network", network_stage),
    ("features", features_stage),
    ("score", score_stage),
    ("select", select_stage),
    ("stability", stability_stage),
    ("sensitivity", sensitivity_stage),
    ("clusters", clusters_stage),
    ("market", market_stage),
    ("floorplans", floorplans_stage),
    ("economics", economics_stage),
    ("policy", policy_stage),
)


def rank_sites(study: Study, *, on_stage: Callable[[str], None] | None = None,
               floorplans: bool = True) -> RankResult:
    """Run the ranking pipeline on a study.

    Parameters
    ----------
    study
        A validated study (see :func:`siteplanner.config.load_study`).
    on_stage
        Called with each stage name as it starts (the CLI shows progress).
    floorplans
        Plan the top sites' floors when the study has a ``[floorplan]``
        outline; ``False`` skips the slowest stage (the CLI's ``--no-report``).
    """
    state = RankState(study=study, plan_floors=floorplans)
    timings: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        for name, stage in STAGES:
            if on_stage:
                on_stage(name)
            log.info("stage %s", name)
            t0 = time.perf_counter()
            stage(state)
            timings[name] = round(time.perf_counter() - t0, 4)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for m in messages:
        log.warning("%s", m)
    return _result(state, timings, messages)


def _result(s: RankState, timings: dict[str, float], messages: list[str]) -> RankResult:
    layers = _need(s.layers)
    return RankResult(
        study=s.study, layers=layers, candidates=_need(s.ranked), selected=_need(s.selected),
        foot_traffic_measured=layers.foot_traffic_measured,
        data_date=s.osm.data_date if s.osm is not None else None,
        timings=timings, inputs=s.inputs, warnings=messages,
        catchments=s.result.get("catchments"), clusters=s.result.get("clusters"),
        territories=s.result.get("territories"), sensitivity=s.result.get("sensitivity"),
        floorplans=s.result.get("floorplans", {}), foot_traffic_points=s.foot_pts, demand=s.demand,
        extras=s.extras, compliance=s.result.get("compliance"),
    )


def _need(value: Any) -> Any:
    """A field an earlier stage sets; None here means the stages ran out of order."""
    if value is None:
        msg = "pipeline stages ran out of order: a stage read a field no earlier stage set"
        raise RuntimeError(msg)
    return value


def _selected(ranked: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return ranked[ranked["rank"].notna()].sort_values("rank")


def _calibrated_foot_traffic(idw: pd.Series, cands: gpd.GeoDataFrame, layers: Layers,
                             study: Study) -> tuple[pd.Series, dict[str, Any]]:
    """Foot traffic from a model fitted to the counters, or their interpolation when too few."""
    try:
        cal = calibrate_foot_traffic(layers.foot_traffic, cands, layers,
                                     proxy_radius_m=study.criteria["foot_traffic"].radius_m,
                                     random_state=study.seed)
    except InputError as e:
        warnings.warn(f"{e}; foot traffic is interpolated between the counters instead",
                      UserWarning, stacklevel=2)
        return idw, {"source": "inverse-distance interpolation of the counters", "reason": str(e)}
    if cal.predicted is None:
        return idw, {"source": "inverse-distance interpolation of the counters", **cal.report}
    return cal.predicted.rename("foot_traffic"), {"source": "calibrated model", **cal.report}


def _demand_points(cands: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers,
                   study: Study) -> gpd.GeoDataFrame:
    """The H3 cells of the study area that hold people, with people per day: the demand.

    Demand covers the whole area, not only the buildable candidates: people
    live and work where no branch can stand. Cells with no one in them are
    left out of the market. Without buildings, census or raster the demand
    falls back to the foot-traffic value over the candidates, with a warning.
    """
    from siteplanner.sources.buildings import read_buildings, read_landuse

    osm = study.osm if study.osm is not None and study.osm.is_file() else None
    d = study.demand
    if osm is None and d.census is None and d.raster is None:
        cells, foot = cands, raw["foot_traffic"]
    else:
        cells = h3_candidates(layers.area, resolution=study.candidates.h3_resolution)
        foot = raw["foot_traffic"].reindex(cells.index)
        if layers.foot_traffic_measured:
            pts, _ = foot_traffic_points(layers)
            foot = feat.foot_traffic(cells, pts, radius_m=study.criteria["foot_traffic"].radius_m,
                                     measured=True)
    census = (read_census(d.census), str(d.census)) if d.census is not None else None
    out = demand_layer(
        cells, foot_traffic=foot.fillna(0.0), foot_traffic_measured=layers.foot_traffic_measured,
        buildings=read_buildings(osm) if osm else None, landuse=read_landuse(osm) if osm else None,
        census=census, raster=d.raster,
        weights={"residents": d.residents_weight, "workers": d.workers_weight,
                 "foot_traffic": d.foot_traffic_weight})
    keep = out[out["demand"] > 0] if (out["demand"] > 0).any() else out
    keep = keep.copy()
    keep.attrs = out.attrs
    keep["weight"] = keep["demand"]
    return keep
