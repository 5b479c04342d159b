"""Catchments and Huff market share for the chosen sites.

Demand points are the study's H3 cells, each carrying the people it holds on
a day (``demand``: residents, workers and measured passers-by, see
:mod:`siteplanner.demand`), so every market figure is in people per day.
They choose among every branch,
own, competitor and new, with Huff's rule over travel times
(:mod:`siteplanner.huff`), each mode's share of a cell by its own mode's
minutes (:mod:`siteplanner.modes`). Walk times run along the streets when a
walking graph exists and in a straight line otherwise.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from siteplanner import huff
from siteplanner._errors import InputError
from siteplanner._memory import release_freed_memory
from siteplanner._street_edges import edge_arrays
from siteplanner.config import HuffSettings, LayerFile
from siteplanner.layers import Layers
from siteplanner.modes import TravelMode, TravelModes
from siteplanner.network import WalkGraph
from siteplanner.proximity import xy

__all__ = ["MARKET_UNITS", "MarketResult", "catchments", "demand_unit", "market_share",
           "walk_graph"]

log = logging.getLogger(__name__)

#: How far an observed-visits row may lie from the branch it describes.
MATCH_M = 75.0

#: The market figures per site; each is in the demand's unit (:func:`demand_unit`).
MARKET_UNITS = ("expected_demand", "from_competitors", "cannibalized", "from_unserved",
                "net_new_demand")


def demand_unit(demand: gpd.GeoDataFrame) -> str:
    """The unit of the demand points: ``attrs["unit"]``, people per day for the demand layer."""
    return str(demand.attrs.get("unit", "demand weight (no unit)"))


def _weights(demand: gpd.GeoDataFrame) -> np.ndarray:
    column = "demand" if "demand" in demand else "weight"
    if column not in demand:
        msg = "demand points need a 'demand' column (people per day); build them with demand_layer"
        raise InputError(msg)
    return demand[column].to_numpy(dtype=float)


def walk_graph(layers: Layers, *, speed_kmh: float, consume: bool = False) -> WalkGraph | None:
    """The walking graph of the study's streets, or None (with a warning) when there are none.

    With ``consume`` the layers' street-node table is emptied once the graph has taken the
    nodes' ids and coordinates, before its build temporaries peak (the pipeline's network
    stage: no later stage reads the table, and the result gets it back from the graph).
    """
    if len(layers.streets) == 0 or len(layers.street_nodes) == 0:
        warnings.warn("no street network: walk times fall back to straight-line distance",
                      UserWarning, stacklevel=2)
        return None
    arrays, crs = edge_arrays(layers.street_nodes, layers.streets), layers.street_nodes.crs
    if consume:
        layers.street_nodes = layers.street_nodes.iloc[:0].copy()
        release_freed_memory()
    return WalkGraph.from_edge_arrays(arrays, crs=crs, speed_kmh=speed_kmh)


def catchments(graph: WalkGraph, sites: gpd.GeoDataFrame, *,
               minutes: tuple[float, ...]) -> gpd.GeoDataFrame:
    """Walking catchments of each site: ``site_id``, ``minutes``, polygon (study CRS)."""
    iso = graph.isochrones(sites, minutes=minutes, labels=sites["site_id"].astype(str).tolist())
    iso = iso.rename(columns={"origin": "site_id"})
    return gpd.GeoDataFrame(iso[["site_id", "minutes", "geometry"]], geometry="geometry",
                            crs=sites.crs)


@dataclass
class MarketResult:
    """Per-site demand figures and the run-level summary for run.json."""

    sites: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def market_share(layers: Layers, selected: gpd.GeoDataFrame, demand: gpd.GeoDataFrame, *,
                 graph: WalkGraph | None, settings: HuffSettings, cutoff_min: float,
                 speed_kmh: float, modes: TravelModes | None = None) -> MarketResult:
    """Huff shares before and after opening ``selected``, split by where demand came from.

    Parameters
    ----------
    demand
        Demand points in the study CRS with a ``demand`` column (people per day,
        :func:`siteplanner.demand.demand_layer`; ``weight`` is read when absent)
        and its unit in ``attrs["unit"]``.
    modes
        The travel modes (:func:`siteplanner.modes.study_modes`): each mode's
        share of every cell chooses by that mode's minutes, and the per-mode
        splits are summed. None: everyone walks on ``graph``.

    Returns
    -------
    MarketResult
        ``sites``: :data:`MARKET_UNITS` per new site in the demand's unit
        (``sites.attrs["unit"]``); ``summary`` for run.json with ``demand_unit``.
    """
    mpm = speed_kmh * 1000 / 60
    own, comp = layers.own_branches, layers.competitors
    facilities = gpd.GeoDataFrame(
        pd.concat([own[["geometry"]], comp[["geometry"]], selected[["geometry"]]],
                  ignore_index=True), geometry="geometry", crs=layers.crs)
    roles = np.array(["own"] * len(own) + ["competitor"] * len(comp) + ["new"] * len(selected))
    attract = np.select([roles == "own", roles == "competitor"],
                        [settings.attractiveness_own, settings.attractiveness_competitor],
                        settings.attractiveness_new)
    ids = ([f"own:{i}" for i in range(len(own))] + [f"competitor:{i}" for i in range(len(comp))]
           + selected["site_id"].astype(str).tolist())
    weights = _weights(demand)
    unit = demand_unit(demand)
    if not np.isfinite(weights).all() or weights.sum() <= 0:
        msg = ("demand is zero everywhere, so there is none to share; check the buildings, "
               "census or raster layer and the foot_traffic layer")
        raise InputError(msg)
    if modes is None:
        modes = TravelModes((TravelMode("walk", graph, 1.0, mpm),))
    minutes = modes.minutes(demand, facilities, cutoff_min=cutoff_min)
    by_mode = modes.weights(weights)
    lam = settings.lam
    summary: dict[str, Any] = {"lambda": lam, "lambda_source": "study",
                               "walk_times": "network" if graph is not None else "straight-line",
                               "cutoff_min": cutoff_min, "demand_points": len(demand),
                               "demand_unit": unit, "modes": list(modes.names)}
    if settings.observed is not None:
        lam = _calibrate(settings.observed, facilities, roles, minutes, attract, by_mode)
        summary.update({"lambda": round(lam, 4), "lambda_source": f"fitted to {settings.observed}"})
    impact = huff.market_impact(minutes, attract, by_mode, roles, lam=lam, facility_ids=ids)
    sites = impact.sites.loc[selected["site_id"].astype(str)]
    sites.attrs["unit"] = unit
    summary.update({
        "own_demand_before": round(float(impact.own_demand_before), 3),
        "own_demand_after": round(float(impact.own_demand_after), 3),
        "total_demand": round(float(weights.sum()), 3),
    })
    return MarketResult(sites=sites, summary=summary)


def _calibrate(path: Any, facilities: gpd.GeoDataFrame, roles: np.ndarray, minutes: Any,
               attract: np.ndarray, weights: np.ndarray) -> float:
    from siteplanner.sources.files import read_layer_file

    obs = read_layer_file(LayerFile(kind="huff.observed", path=path)).to_crs(facilities.crs)
    if "visits" not in obs:
        msg = f"huff.observed ({path}): needs a 'visits' column with visits per existing branch"
        raise InputError(msg)
    existing = np.flatnonzero(roles != "new")
    d, k = cKDTree(xy(facilities.iloc[existing])).query(xy(obs))
    if (d > MATCH_M).any():
        row = int(np.argmax(d > MATCH_M))
        msg = (f"huff.observed ({path}): row {row + 1} lies {d[row]:.0f} m from the nearest "
               f"existing branch (more than {MATCH_M:.0f} m); give visits at branch locations")
        raise InputError(msg)
    cols = existing[k]
    if len(set(cols)) < len(cols):
        msg = f"huff.observed ({path}): two rows match the same branch; give one row per branch"
        raise InputError(msg)
    visits = pd.to_numeric(obs["visits"], errors="coerce").to_numpy()
    if np.isnan(visits).any() or (visits < 0).any() or visits.sum() <= 0:
        msg = f"huff.observed ({path}): visits must be numbers >= 0 with a positive total"
        raise InputError(msg)
    sub = minutes[:, cols]
    return float(huff.calibrate_lambda(sub, attract[cols], observed_visits=visits,
                                       demand_weights=weights))
