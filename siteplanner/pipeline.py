"""The ranking pipeline: study → layers → candidates → features → score → selection.

:func:`rank_sites` runs every stage and returns a :class:`RankResult` holding
each intermediate table, so an analyst can inspect or change any of them.
Writing files is :mod:`siteplanner.io`'s job.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from siteplanner import features as feat
from siteplanner._errors import InputError
from siteplanner.ahp import weights_from_judgements
from siteplanner.candidates import h3_candidates, user_candidates
from siteplanner.clustering import opportunity_zones, territories
from siteplanner.config import CRITERIA, Study
from siteplanner.demand import criteria_correlation, demand_layer, read_census
from siteplanner.footfall import foot_traffic_points, foot_traffic_proxy
from siteplanner.layers import Layers, build_layers
from siteplanner.learn import calibrate_foot_traffic, learned_scores
from siteplanner.market import catchments, market_share, walk_graph
from siteplanner.model import score
from siteplanner.proximity import NetworkWalk, Proximity, StraightLine
from siteplanner.selection import select_top
from siteplanner.selection.joint import select_joint
from siteplanner.sources._osm import OSMData
from siteplanner.stability import bootstrap_stability, weight_stability

__all__ = ["MARKET_COLUMNS", "STAGES", "RankResult", "cache_folder", "load_osm", "rank_sites"]

log = logging.getLogger(__name__)

STAGES = ("load", "layers", "candidates", "network", "features", "score", "select", "stability",
          "clusters", "market")


@dataclass
class RankResult:
    """Everything a ranking run produced.

    ``candidates`` holds every candidate with its raw criterion values,
    contributions, score, rank and status; ``selected`` the chosen sites in
    rank order. The later stages fill the optional parts when they run:
    ``catchments`` (site_id, minutes, polygon), ``clusters`` and
    ``territories`` (polygons), and ``extras`` (named figures for run.json,
    such as the market impact or the model's validation scores).
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
    extras: dict[str, Any] = field(default_factory=dict)
    demand: gpd.GeoDataFrame | None = None


def cache_folder() -> Path:
    """Where online answers are cached: ``$SITEPLANNER_CACHE`` or ``~/.cache/siteplanner``."""
    root = os.environ.get("SITEPLANNER_CACHE") or Path.home() / ".cache" / "siteplanner"
    return Path(root) / "osmnx"


def load_osm(study: Study) -> tuple[OSMData | None, Any, list[Path]]:
    """Read the study's OSM source: a local file, or osmnx online for a place or bbox."""
    if study.osm is not None:
        path = study.osm
        if not path.is_file():
            msg = f"{path}: OSM file not found; check study.osm or --osm"
            raise InputError(msg)
        name = path.name.lower()
        if name.endswith(".pbf"):
            from siteplanner.sources.pbf import read_pbf

            return read_pbf(path), None, [path]
        if name.endswith((".osm", ".osm.bz2", ".xml")):
            from siteplanner.sources.xml import read_osm_xml

            return read_osm_xml(path), None, [path]
        msg = f"{path}: unknown OSM format; use .osm.pbf, .osm or .osm.bz2"
        raise InputError(msg)
    if study.place is not None or study.bbox is not None:
        from siteplanner.sources.overpass import read_online

        data, area = read_online(place=study.place, bbox=study.bbox, cache_folder=cache_folder())
        return data, area, []
    return None, None, []


def rank_sites(study: Study, *,
               on_stage: Callable[[str], None] | None = None) -> RankResult:
    """Run the ranking pipeline on a study.

    Parameters
    ----------
    study
        A validated study (see :func:`siteplanner.config.load_study`).
    on_stage
        Called with each stage name as it starts (the CLI shows progress).
    """
    from siteplanner.sources.files import read_layer_file

    timings: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        if on_stage:
            on_stage(name)
        log.info("stage %s", name)
        t0 = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - t0, 4)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        with stage("load"):
            if study.osm is None and study.place is None and study.bbox is None \
                    and "area" not in study.layers:
                msg = "no data source: give --osm FILE, --place NAME, --bbox W,S,E,N or an area layer"
                raise InputError(msg)
            osm, area, inputs = load_osm(study)
            user = {kind: read_layer_file(spec) for kind, spec in study.layers.items()}
            inputs += [spec.path for spec in study.layers.values()]
        with stage("layers"):
            layers = build_layers(brand=study.brand, osm=osm, user=user, area=area, crs=study.crs,
                                  user_paths={k: str(s.path) for k, s in study.layers.items()})
        with stage("candidates"):
            if layers.candidates is not None:
                cands = user_candidates(layers.candidates, layers.area)
            else:
                cands = h3_candidates(layers.area, resolution=study.candidates.h3_resolution)
        with stage("network"):
            net = study.network
            graph = walk_graph(layers, speed_kmh=net.walk_speed_kmh)
            mpm = net.walk_speed_kmh * 1000 / 60
            reach_m = max(max(c.radius_m for c in study.criteria.values()), net.cutoff_min * mpm)
            prox: Proximity
            if graph is not None:
                report = graph.components(cands)
                network_info = {"walk_times": "network", "nodes": graph.n_nodes,
                                "components": report.n_components,
                                "candidates_off_main_network": round(report.unreachable_share, 4)}
                if report.unreachable_share > 0:
                    warnings.warn(
                        f"{report.unreachable_share:.1%} of candidates lie on street pieces cut off "
                        "from the main walking network; they are measured from the nearest street "
                        "node of the main network", UserWarning, stacklevel=2)
                prox = NetworkWalk(graph, cands, cutoff_m=reach_m)
            else:
                network_info = {"walk_times": "straight-line",
                                "note": "no street network in the data; distances are straight lines"}
                prox = StraightLine(cands)
        extras: dict[str, Any] = {"network": network_info}
        if study.ahp is not None:
            extras["ahp"] = weights_from_judgements(study.ahp, list(CRITERIA)).to_dict()
        with stage("features"):
            raw = _features(cands, layers, study, proximity=prox)
            access = feat.transit_access(cands, layers.transit, proximity=prox, reach_m=reach_m,
                                         metres_per_minute=mpm, within_min=net.transit_within_min)
            if layers.foot_traffic_measured:
                raw["foot_traffic"], extras["foot_traffic_calibration"] = _calibrated_foot_traffic(
                    raw["foot_traffic"], cands, layers, study)
        with stage("score"):
            learned = None
            if study.model.kind == "learned":
                def featurize(pts: gpd.GeoDataFrame) -> pd.DataFrame:
                    p = NetworkWalk(graph, pts, cutoff_m=reach_m) if graph is not None else None
                    return _features(pts, layers, study, proximity=p)

                learned = learned_scores(cands, raw, layers, featurize=featurize,
                                         performance_column=study.model.performance_column,
                                         criteria=study.criteria, random_state=study.seed)
                scored = learned.table
                extras["learned_model"] = learned.report
            else:
                scored = score(raw, study.criteria)
            table = cands[["site_id", "geometry", "cell"]].join(raw).join(scored).join(access)
            extras["criteria_correlation"] = criteria_correlation(
                raw, {k: c.weight for k, c in study.criteria.items()})
        with stage("select"):
            sel = study.selection
            ranked = select_top(gpd.GeoDataFrame(table, geometry="geometry", crs=layers.crs),
                                layers.own_branches, k=sel.top_k,
                                min_spacing_m=sel.min_spacing_m,
                                min_distance_to_own_m=sel.min_distance_to_own_m)
            demand = _demand_points(cands, raw, layers, study, proximity=prox)
            extras["demand"] = {"unit": demand.attrs["unit"], "sources": demand.attrs["sources"],
                                "weights": demand.attrs["weights"]}
            joint: dict[str, Any] = {}
            if sel.method != "top":
                h = study.huff
                ranked, joint = select_joint(
                    sel.method, ranked, demand, own=layers.own_branches,  # type: ignore[arg-type]
                    competitors=layers.competitors, graph=graph, k=sel.top_k,
                    min_distance_to_own_m=sel.min_distance_to_own_m,
                    coverage_minutes=sel.coverage_minutes, cutoff_min=net.cutoff_min,
                    speed_kmh=net.walk_speed_kmh, lam=h.lam,
                    attractiveness=(h.attractiveness_own, h.attractiveness_competitor,
                                    h.attractiveness_new),
                    solver=sel.solver, time_limit_s=sel.time_limit_s, seed=study.seed,
                    capacity=sel.capacity)
            selected = ranked[ranked["rank"].notna()].sort_values("rank")
        with stage("stability"):
            if study.model.stability_draws > 0 and sel.method == "top":
                rule: dict[str, Any] = {"k": sel.top_k, "min_spacing_m": sel.min_spacing_m,
                                        "min_distance_to_own_m": sel.min_distance_to_own_m}
                if learned is not None:
                    stab, extras["stability"] = bootstrap_stability(
                        learned, cands, raw, layers.own_branches, n_draws=study.model.stability_draws,
                        seed=study.seed, **rule)
                else:
                    stab, extras["stability"] = weight_stability(
                        cands, raw, study.criteria, layers.own_branches,
                        n_draws=study.model.stability_draws,
                        concentration=study.model.stability_concentration, seed=study.seed, **rule)
                ranked = ranked.join(stab[["stability", "fragile"]])
                selected = ranked[ranked["rank"].notna()].sort_values("rank")
        with stage("clusters"):
            zones = terr = None
            if study.model.clusters:
                z = opportunity_zones(ranked)
                zones, extras["clusters"] = z.polygons, z.report
            if study.model.territories:
                seeds = pd.concat([layers.own_branches[["label", "geometry"]],
                                   selected[["geometry"]].assign(label=selected["site_id"])],
                                  ignore_index=True)
                t = territories(ranked, demand=raw["foot_traffic"],
                                seeds=gpd.GeoDataFrame(seeds, geometry="geometry", crs=layers.crs))
                terr, extras["territories"] = t.polygons, t.report
        with stage("market"):
            catch = (catchments(graph, selected, minutes=net.catchment_minutes)
                     if graph is not None and len(selected) else None)
            market = market_share(layers, selected, demand, graph=graph, settings=study.huff,
                                  cutoff_min=net.cutoff_min, speed_kmh=net.walk_speed_kmh)
            parts = market.sites[list(MARKET_COLUMNS)].set_axis(selected.index)
            selected = selected.join(parts)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for m in messages:
        log.warning("%s", m)
    return RankResult(
        study=study, layers=layers, candidates=ranked, selected=selected,
        foot_traffic_measured=layers.foot_traffic_measured,
        data_date=osm.data_date if osm is not None else None,
        timings=timings, inputs=inputs, warnings=messages, catchments=catch,
        clusters=zones, territories=terr, demand=demand,
        extras={**extras, "market": market.summary,
                **({"selection_model": joint} if joint else {})},
    )


MARKET_COLUMNS = ("expected_demand", "from_competitors", "cannibalized", "net_new_demand")


def _features(cands: gpd.GeoDataFrame, layers: Layers, study: Study, *,
              proximity: Proximity | None = None) -> pd.DataFrame:
    c = study.criteria
    foot_pts, measured = foot_traffic_points(layers)
    p = proximity
    foot = (feat.foot_traffic(cands, foot_pts, radius_m=c["foot_traffic"].radius_m,
                              measured=True, proximity=p)
            if measured else foot_traffic_proxy(cands, layers, proximity=p))
    cols = [
        foot,
        feat.transit(cands, layers.transit, radius_m=c["transit"].radius_m, proximity=p),
        feat.commercial(cands, layers.pois, radius_m=c["commercial"].radius_m, proximity=p),
        feat.competition(cands, layers.competitors, radius_m=c["competition"].radius_m,
                         proximity=p),
        feat.cannibalization(cands, layers.own_branches, radius_m=c["cannibalization"].radius_m,
                             proximity=p),
    ]
    return pd.concat(cols, axis=1)


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


def _demand_points(cands: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers, study: Study,
                   *, proximity: Proximity | None = None) -> gpd.GeoDataFrame:
    """H3 cells with the people they hold per day: the demand that chooses among branches."""
    from siteplanner.sources.buildings import read_buildings, read_landuse

    if layers.candidates is None:
        cells, foot = cands, raw["foot_traffic"]
    else:
        cells = h3_candidates(layers.area, resolution=study.candidates.h3_resolution)
        foot = _features(cells, layers, study)["foot_traffic"]
    d = study.demand
    osm = study.osm if study.osm is not None and study.osm.is_file() else None
    census = (read_census(d.census), str(d.census)) if d.census is not None else None
    out = demand_layer(
        cells, foot_traffic=foot, foot_traffic_measured=layers.foot_traffic_measured,
        buildings=read_buildings(osm) if osm else None, landuse=read_landuse(osm) if osm else None,
        census=census, raster=d.raster,
        weights={"residents": d.residents_weight, "workers": d.workers_weight,
                 "foot_traffic": d.foot_traffic_weight})
    out["weight"] = out["demand"]
    return out
