"""The pipeline's state: what stages hand each other and what a run returns.

:class:`RankState` is passed from stage to stage; :class:`RankResult` is
what :func:`siteplanner.pipeline.rank_sites` returns.

The stage functions themselves live in :mod:`siteplanner.pipeline` and
:mod:`siteplanner._money_stages`; both build on this module, so neither
imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from siteplanner._errors import InputError
from siteplanner.config import Study
from siteplanner.floorplan.sites import SitePlan
from siteplanner.layers import Layers
from siteplanner.market import market_share
from siteplanner.modes import TravelModes
from siteplanner.network import WalkGraph
from siteplanner.proximity import Proximity
from siteplanner.rescore import rank_inputs, rescore, rescored_sites
from siteplanner.sources._osm import OSMData
from siteplanner.stability import Sensitivity

if TYPE_CHECKING:  # a learned model's scores; importing them loads scikit-learn
    from siteplanner.learned import LearnedScores

__all__ = ["MARKET_COLUMNS", "RankResult", "RankState", "need", "selected_of", "split_market"]

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
    #: The travel modes of the market and the location models (set in the select stage).
    modes: TravelModes | None = None
    prox: Proximity | None = None
    reach_m: float = 0.0
    raw: pd.DataFrame | None = None
    access: pd.DataFrame | None = None
    learned: LearnedScores | None = None
    ranked: gpd.GeoDataFrame | None = None
    pool: pd.Index | None = None
    selected: gpd.GeoDataFrame | None = None
    demand: gpd.GeoDataFrame | None = None
    #: OSM building footprints (WGS84), read once for the demand and the floor plans' premises.
    buildings: gpd.GeoDataFrame | None = None
    foot_pts: gpd.GeoDataFrame | None = None
    result: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    #: Work running in a second process (:func:`siteplanner._aside.aside`), by name, until
    #: a later stage collects it.
    pending: dict[str, Any] = field(default_factory=dict)

    @property
    def metres_per_minute(self) -> float:
        return self.study.network.walk_speed_kmh * 1000 / 60


def need(value: Any) -> Any:
    """A field an earlier stage sets; None here means the stages ran out of order."""
    if value is None:
        msg = "pipeline stages ran out of order: a stage read a field no earlier stage set"
        raise RuntimeError(msg)
    return value


def selected_of(ranked: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return ranked[ranked["rank"].notna()].sort_values("rank")



def split_market(s: RankState, selected: gpd.GeoDataFrame) -> None:
    """The Huff split for ``selected`` opened together, joined onto it as ``s.selected``."""
    net = s.study.network
    if len(selected) == 0:
        s.selected = selected
        return
    market = market_share(need(s.layers), selected, need(s.demand), graph=s.graph,
                          settings=s.study.huff, cutoff_min=net.cutoff_min,
                          speed_kmh=net.walk_speed_kmh, modes=s.modes)
    parts = market.sites[list(MARKET_COLUMNS)].set_axis(selected.index)
    s.selected = selected.drop(columns=[c for c in MARKET_COLUMNS if c in selected]).join(parts)
    s.extras["market"] = market.summary


