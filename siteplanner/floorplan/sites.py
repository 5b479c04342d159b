"""Floor plans for the top sites of a ranking run.

Each planned site gets the brand-standard premises (one outline and its
entrances, from the study's ``[floorplan]``) sized for its own demand: the
study's ``arrivals_per_hour`` scaled by the site's Huff ``expected_demand``
relative to the mean of the planned sites. Where the premises are too small
for a busy site, the reduced programme that fits is laid out and the run says
so.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from siteplanner._errors import InputError
from siteplanner._fs import safe_component
from siteplanner.config import FloorplanSettings
from siteplanner.floorplan.export import read_outline, write_plan
from siteplanner.floorplan.plan import plan_floor
from siteplanner.floorplan.standard import load_standard

__all__ = ["plan_top_sites"]


def plan_top_sites(selected: gpd.GeoDataFrame, settings: FloorplanSettings, out_dir: Path, *,
                   seed: int = 0) -> dict[str, Any]:
    """Lay out the first ``settings.sites`` selected sites into ``out_dir/<site_id>/``.

    The folder is :func:`siteplanner._fs.safe_component` of the site id (the id itself
    for ids of letters, digits, ``.``, ``_`` and ``-``).

    Returns a summary per site for run.json: arrivals, whether the programme
    was reduced, the hard-constraint result, or the error that stopped it.
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
    summary: dict[str, Any] = {}
    for site_id, factor in zip(top["site_id"].astype(str), rel, strict=True):
        arrivals = round(float(settings.arrivals_per_hour * factor), 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                plan = plan_floor(outline, entrances, max(arrivals, 1.0), standard=standard,
                                  seed=seed, fit=True)
            except InputError as e:
                summary[site_id] = {"arrivals_per_hour": arrivals, "error": str(e)}
                warnings.warn(f"floor plan for site {site_id}: {e}", UserWarning, stacklevel=2)
                continue
        # a site id is data: it names one folder inside out_dir, whatever it holds
        write_plan(plan, out_dir / safe_component(site_id))
        reduced = [str(w.message) for w in caught if "reduced programme" in str(w.message)]
        summary[site_id] = {
            "arrivals_per_hour": arrivals,
            "zones": int(len(plan.zones)),
            "all_constraints_pass": plan.ok,
            "reduced_programme": reduced[0] if reduced else None,
        }
    return summary
