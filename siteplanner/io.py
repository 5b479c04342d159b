"""Writing a run's folder: the tables, the layers, the floor plans, the map, the report, run.json.

Everything here renders what :func:`siteplanner.pipeline.rank_sites` computed;
no model code runs. Every file is first written into a temporary folder beside
the output folder and moved into place only when all of them were written
(:func:`siteplanner._fs.atomic_outputs`), so a failed run never leaves a
half-written file where a good one stood.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner._aside import aside
from siteplanner._fs import atomic_outputs, safe_component
from siteplanner.config import CRITERIA
from siteplanner.record import RunRecord

__all__ = ["STREETS_KEPT_WHOLE", "gpkg_tables", "ranked_table", "write_rank_outputs"]

log = logging.getLogger(__name__)

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


def gpkg_tables(result: Any, *, all_streets: bool = False) -> dict[str, gpd.GeoDataFrame]:
    """The layers of ``sites.gpkg``, in the study CRS, each with one geometry column.

    The ``streets`` layer holds every street of a small network and only those
    near the selected sites of a large one (:data:`STREETS_KEPT_WHOLE`), unless
    ``all_streets``.
    """
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
    streets = _report_streets(layers.streets, sel, tables.get("catchments"), all_streets=all_streets)
    if len(streets):
        # simplified streets let `siteplanner report` redraw the mini-maps without the OSM file
        tables["streets"] = gpd.GeoDataFrame(geometry=streets.simplify(1.0).values, crs=layers.crs)
    return {name: gpd.GeoDataFrame(gdf, geometry="geometry", crs=layers.crs)
            for name, gdf in tables.items()}


#: The most street segments ``sites.gpkg`` keeps whole (a city centre: Helsinki's bundled
#: centre has about 8k). The streets are input data, not results: past this only the streets
#: the report's mini-maps draw around each selected site are kept (a country's network is
#: most of the file and of the time to write it); ``all_streets=True`` keeps every one.
STREETS_KEPT_WHOLE = 20_000


def _report_streets(streets: gpd.GeoDataFrame, selected: gpd.GeoDataFrame,
                    catchments: gpd.GeoDataFrame | None, *, all_streets: bool) -> gpd.GeoSeries:
    """The streets written to ``sites.gpkg``: all of a small network, else those near the sites."""
    geoms = streets.geometry
    if all_streets or len(streets) <= STREETS_KEPT_WHOLE or not len(selected):
        return geoms
    import shapely

    from siteplanner._charts import MINI_MAP_RADIUS_M

    # each mini-map shows a square around the site and its catchments (see _charts.mini_map)
    views = [shapely.box(*shapely.bounds(pt.buffer(MINI_MAP_RADIUS_M))) for pt in selected.geometry]
    if catchments is not None and len(catchments) and "site_id" in catchments:
        ids = selected["site_id"].astype(str).to_numpy()
        for i, sid in enumerate(ids):
            mine = catchments.geometry[catchments["site_id"].astype(str) == sid]
            if len(mine):
                w, s, e, n = shapely.union(views[i], shapely.envelope(mine.union_all()).buffer(30)).bounds
                half = max(e - w, n - s) / 2
                views[i] = shapely.box((w + e) / 2 - half, (s + n) / 2 - half,
                                       (w + e) / 2 + half, (s + n) / 2 + half)
    # a bounding-box test, then the exact one on the few segments it keeps: the same
    # segments as a spatial index, without building (and keeping on the layer) a tree of
    # a country's million segments for ten boxes
    arr = np.asarray(geoms.values)
    bounds = shapely.bounds(arr)
    keep = np.zeros(len(arr), dtype=bool)
    for view in views:
        w, s, e, n = view.bounds
        near = np.flatnonzero((bounds[:, 0] <= e) & (bounds[:, 2] >= w)
                              & (bounds[:, 1] <= n) & (bounds[:, 3] >= s))
        keep[near[shapely.intersects(view, arr[near])]] = True
    hit = np.flatnonzero(keep)
    log.info("sites.gpkg: %d of %d street segments, those the mini-maps draw", len(hit), len(geoms))
    return geoms.iloc[hit]


#: GDAL settings for writing ``sites.gpkg``: SQLite's ``synchronous = OFF`` skips the
#: fsync after every transaction (about 0.14 s per layer, most of a ten-layer file's time).
#: A crash mid-write cannot leave a half-written file in the output folder, because
#: the file is written in a temporary folder swapped in whole (:func:`atomic_outputs`).
GPKG_WRITE_OPTIONS = {"OGR_SQLITE_SYNCHRONOUS": "OFF"}


def _write_gpkg(tables: dict[str, gpd.GeoDataFrame], path: Path) -> None:
    """Each layer in WGS84, written in bulk through pyogrio and Arrow."""
    import pyogrio

    saved = {k: pyogrio.get_gdal_config_option(k) for k in GPKG_WRITE_OPTIONS}
    pyogrio.set_gdal_config_options(GPKG_WRITE_OPTIONS)
    try:
        for i, (name, gdf) in enumerate(tables.items(), start=1):
            log.info("write: sites.gpkg layer %d of %d (%s, %s rows)", i, len(tables), name,
                     f"{len(gdf):,}", extra={"progress": (i, len(tables))})
            pyogrio.write_dataframe(gdf.to_crs(4326), path, layer=name, driver="GPKG",
                                    use_arrow=True)
    finally:
        pyogrio.set_gdal_config_options(saved)


def write_rank_outputs(result: Any, out_dir: Path, *, report: bool = True,
                       all_streets: bool = False) -> list[Path]:
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
    all_streets
        Keep every street in ``sites.gpkg`` even past :data:`STREETS_KEPT_WHOLE`
        segments (by default a large network keeps only the streets near the sites).
    """
    from siteplanner._map_streets import street_lines_stats
    from siteplanner._memory import release_freed_memory
    from siteplanner.maps import floorplan_links, write_map

    t0 = time.perf_counter()
    release_freed_memory()  # the ranking's working state (graphs, searches) is freed by now
    with atomic_outputs(out_dir) as tmp:
        ranked_table(result.selected).to_csv(tmp / "ranked_sites.csv", index=False,
                                             lineterminator="\n")
        if getattr(result, "compliance", None) is not None:
            # one row per (selected site, rule): site_id, rule, value, threshold, passes
            result.compliance.to_csv(tmp / "compliance.csv", index=False, lineterminator="\n")
        tables = gpkg_tables(result, all_streets=all_streets)
        log.info("write: sites.gpkg (%d layers, %s candidates), beside the map", len(tables),
                 f"{len(result.candidates):,}")
        # GDAL holds the GIL while it writes: the GeoPackage goes to a second process,
        # which writes it while this one draws the map (siteplanner._aside)
        gpkg = aside("writing sites.gpkg", _write_gpkg, tables, tmp / "sites.gpkg")
        del tables
        try:
            # tmp holds the plans the user added (carried over) and the ones this run draws
            plans_dir = tmp / "floorplans"
            if report and result.floorplans:
                from siteplanner.floorplan.export import write_plan

                for site_id, site_plan in result.floorplans.items():
                    if site_plan.plan is not None:
                        write_plan(site_plan.plan, plans_dir / safe_component(site_id))
            ids = result.selected["site_id"].astype(str).tolist()
            log.info("write: map.html (%s candidates)", f"{len(result.candidates):,}")
            write_map(result, tmp / "map.html", floorplans=floorplan_links(plans_dir.parent, ids))
        except BaseException:
            gpkg.close()  # the folder is dropped: the second process is waited for first
            raise
        gpkg.result()
        figures = {"sites.gpkg": gpkg.stats} if gpkg.forked else {}
        streets = street_lines_stats(result.layers.streets)  # drawn aside for the map
        if streets is not None:
            figures["map streets"] = streets
        record = RunRecord.from_result(result, write_seconds=time.perf_counter() - t0,
                                       aside=figures or None)
        if report:
            from siteplanner.report import build_report

            html = build_report(result, floorplans_dir=plans_dir, record=record)
            (tmp / "report.html").write_text(html, encoding="utf-8")
        record.write(tmp / "run.json")
        names = sorted(p.name for p in tmp.iterdir())
    return [out_dir / n for n in names]
