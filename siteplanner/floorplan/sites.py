"""Floor plans for the top sites of a ranking run (the pipeline's ``floorplans`` stage).

Each planned site gets the brand-standard premises (one outline and its
entrances, from the study's ``[floorplan]``) sized for its own demand: the
study's ``arrivals_per_hour`` scaled by the site's Huff ``expected_demand``
relative to the mean of the planned sites. Where the premises are too small
for a busy site, the reduced programme that fits is laid out and the run says
so. Plans are computed here and written by :mod:`siteplanner.io`.
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
from siteplanner.floorplan.standard import load_standard

__all__ = ["SitePlan", "plan_sites"]


@dataclass
class SitePlan:
    """One site's floor plan (None when it could not be made) and its run.json summary."""

    plan: FloorPlan | None
    summary: dict[str, Any] = field(default_factory=dict)


def plan_sites(selected: gpd.GeoDataFrame, settings: FloorplanSettings, *,
               seed: int = 0) -> dict[str, SitePlan]:
    """Lay out the first ``settings.sites`` selected sites, keyed by site id.

    A site whose plan cannot be made keeps the error in its summary and the
    run warns; the other sites are still planned.
    """
    if settings.outline is None or len(selected) == 0:
        return {}
    outline = read_outline(settings.outline)
    entrances = [Point(x, y) for x, y in settings.entrances]
    standard = load_standard(settings.standard) if settings.standard else None
    top = selected.sort_values("rank").head(settings.sites)
    if "expected_demand" in top and top["expected_demand"].sum() > 0:
        rel = top["expected_demand"].to_numpy(dtype=float) / top["expected_demand"].mean()
    else:
        rel = np.ones(len(top))
    plans: dict[str, SitePlan] = {}
    for site_id, factor in zip(top["site_id"].astype(str), rel, strict=True):
        arrivals = round(float(settings.arrivals_per_hour * factor), 1)
        with warnings.catch_warnings():
            # the summary and the run's one warning below say what plan_floor would repeat
            warnings.simplefilter("ignore", UserWarning)
            try:
                plan = plan_floor(outline, entrances, max(arrivals, 1.0), standard=standard,
                                  seed=seed, fit=True)
            except InputError as e:
                plans[site_id] = SitePlan(None, {"arrivals_per_hour": arrivals, "error": str(e)})
                warnings.warn(f"floor plan for site {site_id}: {e}", UserWarning, stacklevel=2)
                continue
        reduced = None
        if plan.metrics.get("reduced_programme"):
            reduced = (f"the premises ({plan.metrics['outline_m2']:.1f} m²) are smaller than the "
                       f"programme for {arrivals:g} arrivals per hour; laid out a reduced programme "
                       f"of {plan.metrics['programme_m2']:.1f} m²")
            warnings.warn(f"floor plan for site {site_id}: {reduced}", UserWarning, stacklevel=2)
        plans[site_id] = SitePlan(plan, {
            "arrivals_per_hour": arrivals,
            "zones": int(len(plan.zones)),
            "all_constraints_pass": plan.ok,
            "reduced_programme": reduced,
        })
    return plans
