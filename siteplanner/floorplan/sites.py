"""Floor plans for the top sites of a ranking run (the pipeline's ``floorplans`` stage).

Each planned site gets the brand-standard premises (one outline and its
entrances, from the study's ``[floorplan]``) sized for its own demand: the
study's ``arrivals_per_hour`` scaled by the site's Huff ``expected_demand``
relative to the mean of the planned sites. Where the premises are too small
for a busy site, the reduced programme that fits is laid out and the run says
so. Plans are computed here and written by :mod:`siteplanner.io`.

With ``premises = "osm"`` each site gets its own premises instead: the OSM
building footprint at the site, or a street-facing unit of it the size of the
site's programme (:func:`~siteplanner.floorplan.premises.premises_at`), with the
entrance on the street side. The summary says which premises were used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from siteplanner._errors import InputError
from siteplanner.config import FloorplanSettings
from siteplanner.floorplan.export import read_outline
from siteplanner.floorplan.plan import FloorPlan, plan_floor
from siteplanner.floorplan.premises import Premises, premises_at
from siteplanner.floorplan.sizing import Demand, programme_area, size_programme
from siteplanner.floorplan.standard import Standard, default_standard, load_standard

__all__ = ["SitePlan", "describe_premises", "plan_sites"]


@dataclass
class SitePlan:
    """One site's floor plan (None when it could not be made) and its run.json summary."""

    plan: FloorPlan | None
    summary: dict[str, Any] = field(default_factory=dict)
    #: The OSM premises the plan was laid out in (``premises = "osm"``); None for the study outline.
    premises: Premises | None = None


#: Share of the zone allowance in the wider unit tried when the first held only a reduced
#: programme: just under all of it, so ``plan_floor`` takes the unit as the premises (above
#: ``max_zone_ratio`` x the programme it would cut a unit of them at the door).
_WIDER_SHARE = 0.95


def _osm_premises(site: Point, arrivals: float, standard: Standard,
                  buildings: gpd.GeoDataFrame, streets: gpd.GeoDataFrame,
                  share: float = 0.5) -> Premises:
    """The premises at ``site``: a unit of the building there sized for the site's programme.

    The unit is the programme plus ``share`` of the standard's per-zone allowance
    (``1 + (max_zone_ratio - 1) / 2``, 1.25 x by default): the size
    :func:`~siteplanner.floorplan.plan.premises_verdict` recommends, room for the
    circulation without a flex zone.
    """
    target = programme_area(size_programme(Demand(arrivals), standard)) \
        * (1.0 + (standard.max_zone_ratio - 1.0) * share)
    return premises_at(site, buildings, streets, target_m2=target,
                       max_ratio=standard.max_zone_ratio)


def describe_premises(p: Premises) -> str:
    """One line for the plan: which building, and the unit cut from it."""
    ref = str(p.building)
    what = f"osm building {ref}" if "/" in ref else f"osm building #{ref}"
    if p.source == "osm_unit":
        return f"{what}, unit of {p.area_m2:.0f} m² cut from {p.footprint.area:.0f} m²"
    return f"{what}, the whole footprint of {p.area_m2:.0f} m²"


def _wider_unit(site: Point, arrivals: float, standard: Standard,
                buildings: gpd.GeoDataFrame | None, streets: gpd.GeoDataFrame | None, seed: int,
                p: Premises, plan: FloorPlan, used: str) -> tuple[Premises, FloorPlan, str]:
    """A unit of the programme plus nearly the whole zone allowance, with its full programme
    laid out; else ``p``, ``plan`` and ``used`` as they were."""
    assert buildings is not None and streets is not None
    try:
        wider = _osm_premises(site, arrivals, standard, buildings, streets, share=_WIDER_SHARE)
        again = plan_floor(wider.outline, list(wider.entrances), arrivals, standard=standard,
                           seed=seed, fit=True)
    except InputError:
        return p, plan, used
    if again.metrics.get("reduced_programme"):
        return p, plan, used
    return wider, again, describe_premises(wider)


def plan_sites(selected: gpd.GeoDataFrame, settings: FloorplanSettings, *,
               seed: int = 0, buildings: gpd.GeoDataFrame | None = None,
               streets: gpd.GeoDataFrame | None = None) -> dict[str, SitePlan]:
    """Lay out the first ``settings.sites`` selected sites, keyed by site id.

    With ``settings.premises == "osm"``, ``buildings`` (footprints, with an
    ``osm_id`` column when known) and ``streets`` (lines) in the CRS of
    ``selected`` give each site its own premises; else the study's outline is
    planned at every site. A site whose plan cannot be made keeps the error in
    its summary and the run warns; the other sites are still planned.
    """
    osm = settings.premises == "osm"
    if (settings.outline is None and not osm) or len(selected) == 0:
        return {}
    if osm and (buildings is None or streets is None or buildings.empty):
        msg = ('floorplan: premises = "osm" needs the OSM building footprints and streets of the '
               'study area; give the study an osm extract, or premises = "outline" with an outline')
        raise InputError(msg)
    outline = read_outline(settings.outline) if settings.outline is not None and not osm else None
    entrances = [Point(x, y) for x, y in settings.entrances]
    standard = load_standard(settings.standard) if settings.standard else default_standard()
    if osm and buildings is not None and "osm_id" in buildings:
        buildings = buildings.set_index("osm_id", drop=False)
    top = selected.sort_values("rank").head(settings.sites)
    if "expected_demand" in top and top["expected_demand"].sum() > 0:
        rel = top["expected_demand"].to_numpy(dtype=float) / top["expected_demand"].mean()
    else:
        rel = np.ones(len(top))
    plans: dict[str, SitePlan] = {}
    for site_id, factor, site in zip(top["site_id"].astype(str), rel, top.geometry.centroid,
                                     strict=True):
        arrivals = max(round(float(settings.arrivals_per_hour * factor), 1), 1.0)
        with warnings.catch_warnings():
            # the summary and the run's one warning below say what plan_floor would repeat
            warnings.simplefilter("ignore", UserWarning)
            try:
                used, p = "study outline", None
                if osm:
                    assert buildings is not None and streets is not None
                    p = _osm_premises(site, arrivals, standard, buildings, streets)
                    outline, entrances, used = p.outline, list(p.entrances), describe_premises(p)
                assert outline is not None
                plan = plan_floor(outline, entrances, arrivals, standard=standard,
                                  seed=seed, fit=True)
                if p is not None and p.source == "osm_unit" and \
                        plan.metrics.get("reduced_programme"):
                    # the unit held only a reduced programme: a unit of nearly the whole
                    # allowance (1.475 x), kept when it holds the full one
                    p, plan, used = _wider_unit(site, arrivals, standard, buildings, streets,
                                                seed, p, plan, used)
            except InputError as e:
                plans[site_id] = SitePlan(None, {"arrivals_per_hour": arrivals, "error": str(e)})
                warnings.warn(f"floor plan for site {site_id}: {e}", UserWarning, stacklevel=2)
                continue
        plan.metrics["premises_source"] = used
        reduced = None
        if plan.metrics.get("reduced_programme"):
            full = programme_area(size_programme(Demand(arrivals), standard))
            # smaller than the programme, or large enough and still holding no layout of it
            why = ("are smaller than" if plan.metrics["outline_m2"] < full else
                   "hold no layout of")
            reduced = (f"the premises ({plan.metrics['outline_m2']:.1f} m²) {why} the "
                       f"{full:.1f} m² programme for {arrivals:g} arrivals per hour; laid out a "
                       f"reduced programme of {plan.metrics['programme_m2']:.1f} m²")
            warnings.warn(f"floor plan for site {site_id}: {reduced}", UserWarning, stacklevel=2)
        if plan.security_note:
            warnings.warn(f"floor plan for site {site_id}: {plan.security_note}", UserWarning,
                          stacklevel=2)
        plans[site_id] = SitePlan(plan, {
            "arrivals_per_hour": arrivals,
            "premises": used,
            "zones": int(len(plan.zones)),
            "all_constraints_pass": plan.ok,
            "cashiers_cut_off": plan.cashiers_cut_off,
            "staff_rooms_cut_off": plan.staff_rooms_cut_off,
            "reduced_programme": reduced,
        }, premises=p)
    return plans
