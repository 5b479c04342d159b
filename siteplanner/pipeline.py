"""The ranking pipeline: study → layers → candidates → features → score → selection → market.

:func:`rank_sites` runs the stage functions of :data:`STAGES` in order over
one :class:`RankState` and returns a :class:`RankResult` holding each
intermediate table, so an analyst can inspect or change any of them. Every
figure the outputs show is computed here; :mod:`siteplanner.io`,
:mod:`siteplanner.maps` and :mod:`siteplanner.report` only render it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import pandas as pd

from siteplanner import features as feat
from siteplanner._aside import budget_mib
from siteplanner._demand_stage import buildings as buildings_of
from siteplanner._demand_stage import demand_points, footprint_points_of, landuse_of
from siteplanner._errors import InputError
from siteplanner._judgement_stages import collect_judgements, sensitivity_stage, stability_stage
from siteplanner._map_streets import drop_street_lines_ahead, street_lines_ahead
from siteplanner._memory import release_freed_memory
from siteplanner._money_stages import economics_stage, policy_stage, select_npv
from siteplanner._state import MARKET_COLUMNS, RankResult, RankState, need, selected_of, split_market
from siteplanner.ahp import weights_from_judgements
from siteplanner.candidates import (
    SITE_COLUMNS,
    centres_aside,
    centres_aside_stats,
    drop_centres_aside,
    edge_policy,
    h3_candidates,
    site_cells,
    with_addresses,
)
from siteplanner.clustering import opportunity_zones, territories
from siteplanner.config import CRITERIA, FloorplanSettings, Study
from siteplanner.demand import criteria_correlation
from siteplanner.features import compute_criteria
from siteplanner.floorplan.sites import plan_sites
from siteplanner.footfall import (
    centrality_aside,
    centrality_aside_stats,
    drop_centrality_aside,
    foot_traffic_points,
)
from siteplanner.layers import Layers, build_layers
from siteplanner.market import catchments, walk_graph
from siteplanner.model import score
from siteplanner.modes import check_mode_sources, study_modes
from siteplanner.nearby import nearby_counts, nearby_sums
from siteplanner.network import WalkGraph
from siteplanner.pairsums import SharedPairs
from siteplanner.premises import check_premises
from siteplanner.proximity import NetworkWalk, StraightLine
from siteplanner.selection import select_top
from siteplanner.selection._status import status_codes
from siteplanner.selection.joint import select_joint
from siteplanner.sources import read_osm_file
from siteplanner.sources._osm import OSMData

__all__ = ["MARKET_COLUMNS", "STAGES", "RankResult", "RankState", "cache_folder", "load_osm",
           "rank_sites"]

log = logging.getLogger(__name__)


def cache_folder() -> Path:
    """Where online answers are cached: ``osmnx/`` under the cache root (``$SITEPLANNER_CACHE``
    or ``~/.cache/siteplanner``, :func:`siteplanner.sources._readcache.cache_root`)."""
    from siteplanner.sources._readcache import cache_root

    return cache_root() / "osmnx"


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
    budget_mib()  # a bad SITEPLANNER_MEMORY_MIB fails before the data is read
    check_mode_sources(study.network, osm=study.osm,
                       online=study.place is not None or study.bbox is not None)
    s.osm, s.online_area, s.inputs = load_osm(study)
    s.user = {kind: read_layer_file(spec) for kind, spec in study.layers.items()}
    s.inputs += [spec.path for spec in study.layers.values()]


def layers_stage(s: RankState) -> None:
    """Classify OSM features into the study's layers, user files replacing OSM ones."""
    study = s.study
    # the layers project a copy of the read table by table, letting each raw table go as
    # they do (the raw and projected forms of all of them at once were this stage's peak);
    # the state keeps only what later stages read of the raw data
    owned = s.osm.owned_copy() if s.osm is not None else None
    s.osm = s.osm.kept_after_layers() if s.osm is not None else None
    s.layers = build_layers(brand=study.brand, osm=owned, user=s.user, area=s.online_area,
                            crs=study.crs,
                            user_paths={k: str(spec.path) for k, spec in study.layers.items()},
                            area_name=study.area_name, admin_level=study.admin_level,
                            brand_wikidata=study.brand_wikidata, aliases=study.aliases,
                            consume=True)
    del owned
    if study.name is None:
        # a study named by no one is named after its place: the boundary, else the data file
        s.study = study.replace(name=s.layers.area_name or study.display_name)
    if study.ahp is not None:
        s.extras["ahp"] = weights_from_judgements(study.ahp, list(CRITERIA)).to_dict()
    s.user = {}  # the user's files live on in the layers, projected


def candidates_stage(s: RankState) -> None:
    """H3 cells on buildable land near streets (or the user's premises), edges flagged; their
    addresses, found meanwhile in a second process, are joined in the score stage
    (:func:`_addressed`: the network and features stages read the sites' places only)."""
    study = s.study
    s.cands, s.extras["candidates"], s.pending["addresses"] = site_cells(
        need(s.layers), resolution=study.candidates.h3_resolution,
        reach_m=max(c.radius_m for c in study.criteria.values()),
        street_within_m=study.candidates.street_within_m)
    cells = centres_aside_stats(need(s.layers).area, resolution=study.candidates.h3_resolution)
    if cells is not None and need(s.layers).candidates is None:
        s.extras.setdefault("second_process", {})["cells"] = cells


def _addressed(s: RankState) -> None:
    """The candidates' addresses joined (:func:`~siteplanner.candidates.with_addresses`)."""
    job = s.pending.pop("addresses", None)
    if job is None:
        return
    report = s.extras["candidates"]
    s.cands = with_addresses(need(s.cands), report, job)
    if "addresses_second_process" in report:
        s.extras.setdefault("second_process", {})["addresses"] = report.pop(
            "addresses_second_process")
    layers = need(s.layers)
    layers.addresses = layers.addresses.iloc[:0].copy()  # read only by the candidates' addresses


def graph_stage(s: RankState) -> None:
    """The walking graph, while a second process finds the area's H3 cells; the street
    centrality, when the foot-traffic proxy reads it, is then measured in a second process
    while the candidates are made."""
    net, layers = s.study.network, need(s.layers)
    if layers.candidates is None:  # the H3 cells, found meanwhile in a second process
        centres_aside(layers.area, resolution=s.study.candidates.h3_resolution)
    # the graph reads only the nodes' ids and coordinates, and takes the table's place
    s.graph = walk_graph(layers, speed_kmh=net.walk_speed_kmh, consume=True)
    _centrality_aside(s)


def _reads_centrality(s: RankState) -> bool:
    """Whether the foot-traffic criterion is the street-centrality proxy (a walking graph, no
    measured counts)."""
    return (s.graph is not None and "foot_traffic" in s.study.criteria
            and not need(s.layers).foot_traffic_measured)


def _centrality_aside(s: RankState) -> None:
    """The street centrality measured in a second process, when the foot-traffic proxy reads
    it and none measures it yet (:func:`~siteplanner.footfall.centrality_aside`)."""
    if _reads_centrality(s):
        centrality_aside(need(s.graph))


def network_stage(s: RankState) -> None:
    """One bounded search from every candidate over the walking graph, shared by all criteria."""
    net, cands = s.study.network, need(s.cands)
    _centrality_aside(s)  # when the budget had no room beside the graph's children: now
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
    """Every criterion's raw value per candidate, and walk minutes to transit by mode.

    The criteria, the transit count and the nearby counts share one search per chunk of
    each layer, at the largest radius any of them asks (:class:`SharedPairs`).
    """
    study, layers, cands = s.study, need(s.layers), need(s.cands)
    s.foot_pts, _ = foot_traffic_points(layers)
    net = study.network
    near = {"pois": layers.pois, "competitors": layers.competitors, "own": layers.own_branches}
    walk = {"metres_per_minute": s.metres_per_minute, "within_min": net.transit_within_min}
    prox = SharedPairs(need(s.prox), len(cands), [
        *feat.criteria_sums(layers, study),
        *feat.transit_access_sums(layers.transit, reach_m=s.reach_m, **walk),
        *nearby_sums(near, **walk)])
    # the foot-traffic proxy reads the street centrality measured aside: asked last, so the
    # other criteria, the transit access and the counts run while it is still measured (each
    # value is the same whatever the order: the shared searches give every ask the same sums)
    last = ["foot_traffic"] if _reads_centrality(s) else []
    s.raw = compute_criteria(cands, layers, study, proximity=prox,
                             names=[n for n in study.criteria if n not in last])
    s.access = feat.transit_access(cands, layers.transit, proximity=prox, reach_m=s.reach_m, **walk)
    s.access = s.access.join(nearby_counts(cands, near, proximity=prox, **walk))
    if last:
        s.raw = s.raw.join(compute_criteria(cands, layers, study, proximity=prox, names=last))
        s.raw = s.raw[list(study.criteria)]
    log.debug("features: %d layer passes shared by every pair sum", prox.passes)
    stats = centrality_aside_stats(s.graph) if s.graph is not None else None
    if stats is not None:
        s.extras.setdefault("second_process", {})["centrality"] = stats
    if layers.foot_traffic_measured:
        s.raw["foot_traffic"], s.extras["foot_traffic_calibration"] = _calibrated_foot_traffic(
            s.raw["foot_traffic"], cands, layers, study, s.graph)
    s.prox = None  # no later stage asks; its kept searches are most of a national run's memory


def score_stage(s: RankState) -> None:
    """The weighted score (or the learned model's), with each criterion's contribution."""
    _addressed(s)
    study, layers, cands, raw = s.study, need(s.layers), need(s.cands), need(s.raw)
    if study.model.kind == "learned":
        from siteplanner.learned import learned_scores  # scikit-learn: only for a learned model

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
    table = cands[list(SITE_COLUMNS)].join(raw).join(scored).join(need(s.access))
    s.extras["criteria_correlation"] = criteria_correlation(
        raw, {k: c.weight for k, c in study.criteria.items()})
    s.ranked = gpd.GeoDataFrame(table, geometry="geometry", crs=layers.crs)
    street_lines_ahead(layers.streets)  # the map's streets, drawn aside through the selection


def select_stage(s: RankState) -> None:
    """Top K with spacing, or the set a location-allocation model chooses jointly."""
    study, layers, sel = s.study, need(s.layers), s.study.selection
    pool, edge_rows = edge_policy(need(s.ranked), policy=study.candidates.edge)
    s.ranked = None  # ``pool`` and ``edge_rows`` hold its rows; set again at the stage's end
    s.pool = pool.index  # edge candidates held out of selection stay out of stability too
    ranked = select_top(pool, layers.own_branches, k=sel.top_k,
                        min_spacing_m=sel.min_spacing_m,
                        min_distance_to_own_m=sel.min_distance_to_own_m)
    del pool
    s.demand = demand_points(need(s.cands), need(s.raw), layers, study,
                             footprint_points_of(s, layers.crs), landuse_of(s))
    if not s.plan_floors or _premises_kind(study.floorplan, has_buildings=True) != "osm":
        # no floor plan reads them: the run does not carry them, nor the read's packed copy,
        # to the end
        s.buildings = None
        if s.osm is not None:
            s.osm = dataclasses.replace(s.osm, buildings=None, landuse=None)
    s.extras["demand"] = {k: s.demand.attrs[k] for k in ("unit", "sources", "weights")
                          if k in s.demand.attrs} | {"cells": len(s.demand)}
    s.modes = study_modes(study.network, demand=s.demand, area_km2=float(layers.area.area.sum()) / 1e6,
                          walk=s.graph, crs=layers.crs, osm=study.osm, online_area=s.online_area,
                          cache_folder=cache_folder())
    s.extras["modes"] = s.modes.report
    if sel.method == "npv":
        ranked, s.extras["selection_model"] = select_npv(s, ranked)
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
            capacity=sel.capacity, modes=s.modes)
    if len(edge_rows):
        ranked = pd.concat([ranked, edge_rows])
        ranked["status"] = status_codes(ranked["status"].astype(str))
    s.ranked = ranked
    s.selected = selected_of(ranked)


def clusters_stage(s: RankState) -> None:
    """Opportunity zones of high-scoring cells and demand-balanced territories."""
    model, layers = s.study.model, need(s.layers)
    ranked, selected = need(s.ranked), need(s.selected)
    if model.clusters:
        z = opportunity_zones(ranked)
        s.result["clusters"], s.extras["clusters"] = z.polygons, z.report
    if model.territories:
        seeds = pd.concat([layers.own_branches[["label", "geometry"]],
                           selected[["geometry"]].assign(label=selected["site_id"])],
                          ignore_index=True)
        cells, people = _territory_cells(s)
        t = territories(cells, demand=people,
                        seeds=gpd.GeoDataFrame(seeds, geometry="geometry", crs=layers.crs))
        s.result["territories"], s.extras["territories"] = t.polygons, t.report
        s.extras["territories"]["cells"] = {"h3_resolution": cells.attrs.get("resolution"),
                                            "count": len(cells), "demand": "people per day"}


#: Territories are drawn over at most this many cells; a larger area uses coarser H3 cells.
TERRITORY_MAX_CELLS = 20_000


def _territory_cells(s: RankState) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """The whole study area as contiguous H3 cells, with the people per day each holds.

    Territories cover the area, not only the buildable candidates (whose
    cells have gaps); past :data:`TERRITORY_MAX_CELLS` cells the grid is one
    or more H3 levels coarser, which changes nothing a territory's outline
    shows at a country's scale.
    """
    import h3

    layers, demand = need(s.layers), need(s.demand)
    res = s.study.candidates.h3_resolution
    if not all(h3.is_valid_cell(str(i)) for i in demand.index[:50]):  # user candidates: no grid
        cands = need(s.ranked)
        return cands, need(s.raw)["foot_traffic"].reindex(cands.index).fillna(0.0)
    km2 = float(layers.area.area.sum()) / 1e6
    while res > 5 and km2 / h3.average_hexagon_area(res, unit="km^2") > TERRITORY_MAX_CELLS:
        res -= 1
    cells = h3_candidates(layers.area, resolution=res)
    cells.attrs["resolution"] = res
    parent = [h3.cell_to_parent(str(c), res) for c in demand.index]
    people = demand["weight"].groupby(parent).sum().reindex(cells.index).fillna(0.0)
    return cells, people


def market_stage(s: RankState) -> None:
    """Walking catchments and the Huff split of demand among own, competitor and new sites."""
    net, selected = s.study.network, need(s.selected)
    if s.graph is not None and len(selected):
        # the catchments read the sites' places only: drawn before the stability (measured
        # aside) is joined onto the sites, and while it may still run
        s.result["catchments"] = catchments(s.graph, selected, minutes=net.catchment_minutes)
    collect_judgements(s)
    split_market(s, need(s.selected))


def floorplans_stage(s: RankState) -> None:
    """Floor plans for the top sites, sized by each site's own demand (``[floorplan]``)."""
    if not s.plan_floors:
        return
    settings = s.study.floorplan
    # the buildings are read only when the premises would be theirs
    buildings = buildings_of(s) if _premises_kind(settings, has_buildings=True) == "osm" else None
    kind = _premises_kind(settings, has_buildings=buildings is not None and not buildings.empty)
    if kind is None:
        return
    osm = kind == "osm"
    plans = plan_sites(need(s.selected), dataclasses.replace(settings, premises=kind),
                       seed=s.study.seed,
                       buildings=buildings.to_crs(need(s.layers).crs) if osm and buildings is not None
                       else None, streets=need(s.layers).streets if osm else None)
    s.result["floorplans"] = plans
    if plans:
        s.extras["floorplans"] = {sid: p.summary for sid, p in plans.items()}


def _premises_kind(settings: FloorplanSettings, *,
                   has_buildings: bool) -> Literal["outline", "osm"] | None:
    """Which premises ``[floorplan]`` plans: ``"outline"``, ``"osm"``, or ``None`` for no plan.

    ``"auto"`` is the outline when the study gives one, else the OSM building
    footprint at each site; with neither, the run warns and draws no plan.
    """
    if settings.premises != "auto":
        return settings.premises
    if settings.outline is not None:
        return "outline"
    if has_buildings:
        return "osm"
    warnings.warn('no floor plans: the study has no [floorplan] outline and its data has no '
                  'building footprints; give outline = "FILE" (local metres) to plan the '
                  "brand's standard premises", UserWarning, stacklevel=2)
    return None


#: The stages in the order they run; the CLI's progress display reads the names.
STAGES: tuple[tuple[str, Callable[[RankState], None]], ...] = (
    ("load", load_stage),
    ("layers", layers_stage),
    ("graph", graph_stage),
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
        try:
            for name, stage in STAGES:
                if on_stage:
                    on_stage(name)
                log.info("stage %s", name)
                t0 = time.perf_counter()
                stage(state)
                release_freed_memory()  # the next stage starts from what is still held
                timings[name] = round(time.perf_counter() - t0, 4)
        except BaseException:
            drop_street_lines_ahead()  # no map will be drawn
            raise
        finally:
            drop_centres_aside()  # a stage failed before the candidates read them
            drop_centrality_aside()  # a stage failed before the features read it
            for job in state.pending.values():
                job.cancel()
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for m in messages:
        log.warning("%s", m)
    return _result(state, timings, messages)


def _result(s: RankState, timings: dict[str, float], messages: list[str]) -> RankResult:
    layers = need(s.layers)
    if s.graph is not None:
        layers.street_nodes = _nodes_from_graph(layers.street_nodes, s.graph)
    return RankResult(
        study=s.study, layers=layers, candidates=need(s.ranked), selected=need(s.selected),
        foot_traffic_measured=layers.foot_traffic_measured,
        data_date=s.osm.data_date if s.osm is not None else None,
        timings=timings, inputs=s.inputs, warnings=messages,
        catchments=s.result.get("catchments"), clusters=s.result.get("clusters"),
        territories=s.result.get("territories"), sensitivity=s.result.get("sensitivity"),
        floorplans=s.result.get("floorplans", {}), foot_traffic_points=s.foot_pts, demand=s.demand,
        extras=s.extras, compliance=s.result.get("compliance"),
    )


def _nodes_from_graph(emptied: gpd.GeoDataFrame, graph: WalkGraph) -> gpd.GeoDataFrame:
    """The street nodes the network stage let go, rebuilt from the graph for the result.

    The graph keeps every node's id and coordinates (:func:`edge_arrays`), so a layer of
    points alone comes back exact and an analyst's ``walk_graph(result.layers)`` works;
    one with other columns stays empty (their values are gone).
    """
    if len(emptied) or set(emptied.columns) != {emptied.geometry.name}:
        return emptied
    points = gpd.points_from_xy(graph.xy[:, 0], graph.xy[:, 1], crs=emptied.crs)
    index = pd.Index(graph.node_ids, name=emptied.index.name)
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(points, index=index,
                                                    name=emptied.geometry.name), crs=emptied.crs)


def _calibrated_foot_traffic(idw: pd.Series, cands: gpd.GeoDataFrame, layers: Layers,
                             study: Study, graph: WalkGraph | None) -> tuple[pd.Series, dict[str, Any]]:
    """Foot traffic from a model fitted to the counters, or their interpolation when too few."""
    from siteplanner.calibration import calibrate_foot_traffic  # scikit-learn: only with counters

    try:
        cal = calibrate_foot_traffic(layers.foot_traffic, cands, layers,
                                     proxy_radius_m=study.criteria["foot_traffic"].radius_m,
                                     random_state=study.seed, graph=graph)
    except InputError as e:
        warnings.warn(f"{e}; foot traffic is interpolated between the counters instead",
                      UserWarning, stacklevel=2)
        return idw, {"source": "inverse-distance interpolation of the counters", "reason": str(e)}
    if cal.predicted is None:
        return idw, {"source": "inverse-distance interpolation of the counters", **cal.report}
    return cal.predicted.rename("foot_traffic"), {"source": "calibrated model", **cal.report}


