"""Writing a run's folder: the tables, the layers, the floor plans, the map, the report, run.json.

Everything here renders what :func:`siteplanner.pipeline.rank_sites` computed;
no model code runs. Every file is first written into a temporary folder beside
the output folder and moved into place only when all of them were written
(:func:`siteplanner._fs.atomic_outputs`), so a failed run never leaves a
half-written file where a good one stood.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from siteplanner._fs import atomic_outputs, safe_component
from siteplanner.config import CRITERIA
from siteplanner.record import RunRecord

__all__ = ["gpkg_tables", "ranked_table", "write_rank_outputs"]

def ranked_table(selected: gpd.GeoDataFrame) -> pd.DataFrame:
    """``ranked_sites.csv``: rank, site_id, lon, lat, score, then NAME and NAME_contribution."""
    wgs = selected.geometry.to_crs(4326)
    cols: dict[str, Any] = {
        "rank": selected["rank"].astype(int).to_numpy(),
        "site_id": selected["site_id"].astype(str).to_numpy(),
        **{c: selected[c].to_numpy() for c in ("address", "district") if c in selected},
        "lon": wgs.x.round(6).to_numpy(),
        "lat": wgs.y.round(6).to_numpy(),
        "score": selected["score"].round(6).to_numpy(),
    }
    for name in CRITERIA:
        cols[name] = selected[name].round(6).to_numpy()
        cols[f"{name}_contribution"] = selected[f"{name}_contribution"].round(6).to_numpy()
    cols["nearest_own_m"] = selected["nearest_own_m"].to_numpy()
    extra = [c for c in selected.columns if c in OPTIONAL_COLUMNS or c.startswith(ACCESS_PREFIXES)]
    for c in sorted(extra, key=_optional_order):
        v = selected[c]
        cols[c] = v.round(6).to_numpy() if pd.api.types.is_float_dtype(v) else v.to_numpy()
    return pd.DataFrame(cols)


#: Columns later stages add to the selected sites, in the order ranked_sites.csv shows them.
OPTIONAL_COLUMNS = ("expected_demand", "from_competitors", "cannibalized", "net_new_demand",
                    "premises_m2", "counters", "atms", "advisory_desks", "fte", "customers",
                    "rent_per_m2_year", "capex", "revenue_per_year", "opex_per_year",
                    "cannibalized_revenue_per_year", "npv", "payback_years",
                    "break_even_customers", "predicted", "stability", "fragile")
ACCESS_PREFIXES = ("walk_min_", "stops_within_")


def _optional_order(c: str) -> tuple[int, str]:
    return (OPTIONAL_COLUMNS.index(c), c) if c in OPTIONAL_COLUMNS else (len(OPTIONAL_COLUMNS), c)


def gpkg_tables(result: Any) -> dict[str, gpd.GeoDataFrame]:
    """The layers of ``sites.gpkg``, in the study CRS, each with one geometry column."""
    layers = result.layers
    cand = result.candidates.drop(columns=["cell"]).reset_index(drop=True)
    cand["rank"] = cand["rank"].astype("float64")
    cand["status"] = cand["status"].astype(str)
    sel = cand[cand["rank"].notna()].sort_values("rank")
    keep = ["name", "label", "brand", "operator", "osm_id", "geometry"]
    tables: dict[str, Any] = {
        "candidates": cand,
        "selected": sel,
        "competitors": layers.competitors[[c for c in keep if c in layers.competitors]],
        "own_branches": layers.own_branches[[c for c in keep if c in layers.own_branches]],
        "transit": layers.transit[[c for c in ("name", "mode", "osm_id", "geometry")
                                   if c in layers.transit]],
    }
    for name in ("catchments", "clusters", "territories"):
        extra_layer = getattr(result, name, None)
        if extra_layer is not None and len(extra_layer):
            tables[name] = extra_layer
    demand = getattr(result, "demand", None)
    if demand is not None and len(demand):
        # one row per demand cell: residents, workers, foot traffic and demand (people per day)
        tables["demand"] = demand.drop(columns=[c for c in ("weight",) if c in demand])
    if len(layers.streets):
        # simplified streets let `siteplanner report` redraw the mini-maps without the OSM file
        tables["streets"] = gpd.GeoDataFrame(
            geometry=layers.streets.geometry.simplify(1.0).values, crs=layers.crs)
    return {name: gpd.GeoDataFrame(gdf, geometry="geometry", crs=layers.crs)
            for name, gdf in tables.items()}


def write_rank_outputs(result: Any, out_dir: Path, *, report: bool = True) -> list[Path]:
    """Write ranked_sites.csv, compliance.csv, sites.gpkg, map.html, report.html and run.json.

    Parameters
    ----------
    result
        The ranking run to write.
    out_dir
        The output folder; it is replaced as a whole only when every file was written.
    report
        Write ``report.html`` and the floor plans the run made. Without them
        (e.g. when comparing scenarios by their tables) the report.html and floor
        plans an earlier run wrote are not kept (files the user added are);
        ``siteplanner report OUT_DIR`` can build the report later.
    """
    from siteplanner.floorplan.export import write_plan
    from siteplanner.maps import floorplan_links, write_map
    from siteplanner.report import build_report

    t0 = time.perf_counter()
    with atomic_outputs(out_dir) as tmp:
        ranked_table(result.selected).to_csv(tmp / "ranked_sites.csv", index=False,
                                             lineterminator="\n")
        if getattr(result, "compliance", None) is not None:
            # one row per (selected site, rule): site_id, rule, value, threshold, passes
            result.compliance.to_csv(tmp / "compliance.csv", index=False, lineterminator="\n")
        for name, gdf in gpkg_tables(result).items():
            gdf.to_crs(4326).to_file(tmp / "sites.gpkg", layer=name, driver="GPKG", engine="pyogrio")
        # tmp holds the plans the user added (carried over) and the ones this run draws
        plans_dir = tmp / "floorplans"
        if report and result.floorplans:
            for site_id, site_plan in result.floorplans.items():
                if site_plan.plan is not None:
                    write_plan(site_plan.plan, plans_dir / safe_component(site_id))
        ids = result.selected["site_id"].astype(str).tolist()
        write_map(result, tmp / "map.html", floorplans=floorplan_links(plans_dir.parent, ids))
        record = RunRecord.from_result(result, write_seconds=time.perf_counter() - t0)
        if report:
            html = build_report(result, floorplans_dir=plans_dir, record=record)
            (tmp / "report.html").write_text(html, encoding="utf-8")
        record.write(tmp / "run.json")
        names = sorted(p.name for p in tmp.iterdir())
    return [out_dir / n for n in names]
