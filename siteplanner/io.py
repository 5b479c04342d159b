"""Writing a run's outputs atomically, with run.json provenance.

Every file is first written into a temporary folder beside the output folder
and moved into place only when all of them were written
(:func:`siteplanner._fs.atomic_outputs`), so a failed run never leaves a
half-written file where a good one stood.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from siteplanner._fs import atomic_outputs, sha256
from siteplanner.config import CRITERIA

__all__ = ["provenance", "ranked_table", "write_rank_outputs"]

PACKAGES = ("siteplanner", "geopandas", "shapely", "pyproj", "pyogrio", "osmnx", "pyrosm", "h3",
            "numpy", "pandas", "scipy", "scikit-learn", "folium")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def provenance(*, study: dict[str, Any], inputs: list[Path], timings: dict[str, float],
               layers: dict[str, Any], data_date: str | None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run.json document: inputs with their sha256, study, versions, timings, sources."""
    doc: dict[str, Any] = {
        "siteplanner": _version("siteplanner"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)}
                   for p in inputs if p.is_file()],
        "osm_data_date": data_date,
        "study": study,
        "layers": {k: {"source": str(v), "measured": v.measured}
                   for k, v in sorted(layers.items())},
        "seconds_per_stage": timings,
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
    }
    doc.update(extra or {})
    return doc


def ranked_table(selected: gpd.GeoDataFrame) -> pd.DataFrame:
    """``ranked_sites.csv``: rank, site_id, lon, lat, score, then NAME and NAME_contribution."""
    wgs = selected.geometry.to_crs(4326)
    cols: dict[str, Any] = {
        "rank": selected["rank"].astype(int).to_numpy(),
        "site_id": selected["site_id"].astype(str).to_numpy(),
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
                    "predicted", "stability", "fragile")
ACCESS_PREFIXES = ("walk_min_", "stops_within_")


def _optional_order(c: str) -> tuple[int, str]:
    return (OPTIONAL_COLUMNS.index(c), c) if c in OPTIONAL_COLUMNS else (len(OPTIONAL_COLUMNS), c)


def write_rank_outputs(result: Any, out_dir: Path, *, report: bool = True) -> list[Path]:
    """Write ranked_sites.csv, sites.gpkg, map.html, report.html and run.json for a :class:`RankResult`.

    Parameters
    ----------
    result
        The ranking run to write.
    out_dir
        The output folder; it is replaced as a whole only when every file was written.
    report
        Write ``report.html`` and, with a ``[floorplan]`` study section, the floor plans it
        draws. Without them a run is much faster (e.g. when comparing scenarios by their
        tables); the report.html and floor plans an earlier run wrote are not kept
        (files the user added are);
        ``siteplanner report OUT_DIR`` can build the report later.
    """
    from siteplanner.floorplan.sites import plan_top_sites
    from siteplanner.maps import floorplan_links, write_map
    from siteplanner.report import write_report

    layers = result.layers
    with atomic_outputs(out_dir) as tmp:
        ranked_table(result.selected).to_csv(tmp / "ranked_sites.csv", index=False,
                                             lineterminator="\n")
        gpkg = tmp / "sites.gpkg"
        cand = result.candidates.drop(columns=["cell"]).reset_index(drop=True)
        cand["rank"] = cand["rank"].astype("float64")
        sel = cand[cand["rank"].notna()].sort_values("rank")
        keep = ["name", "label", "brand", "operator", "osm_id", "geometry"]
        tables = {
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
        if len(layers.streets):
            # simplified streets let `siteplanner report` redraw the mini-maps without the OSM file
            tables["streets"] = gpd.GeoDataFrame(
                geometry=layers.streets.geometry.simplify(1.0).values, crs=layers.crs)
        for name, gdf in tables.items():
            g = gpd.GeoDataFrame(gdf, geometry="geometry", crs=layers.crs).to_crs(4326)
            g.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
        ids = result.selected["site_id"].astype(str).tolist()
        floorplans: dict[str, Any] = {}
        # tmp holds the plans the user added (carried over) and the ones this run draws
        plans_dir = tmp / "floorplans"
        if report and result.study.floorplan.outline is not None:
            floorplans = plan_top_sites(result.selected, result.study.floorplan,
                                        tmp / "floorplans", seed=result.study.seed)
        write_map(result, tmp / "map.html", floorplans=floorplan_links(plans_dir.parent, ids))
        if report:
            write_report(result, tmp / "report.html", floorplans_dir=plans_dir)
        sel_rule = result.study.selection
        doc = provenance(
            study=result.study.to_dict(), inputs=result.inputs, timings=result.timings,
            layers=layers.sources, data_date=result.data_date,
            extra={
                "foot_traffic": "measured" if result.foot_traffic_measured else "proxy",
                "candidates": {"count": len(result.candidates),
                               "source": str(layers.sources.get("candidates", "h3"))},
                "selection": {
                    "rule": ("top_k_with_spacing" if sel_rule.method == "top"
                             else sel_rule.method), "top_k": sel_rule.top_k,
                    "min_spacing_m": sel_rule.min_spacing_m,
                    "min_distance_to_own_m": sel_rule.min_distance_to_own_m,
                    "capacity": sel_rule.capacity,
                    "selected": len(result.selected),
                    "excluded_near_own": int(result.candidates["status"]
                                             .str.contains("own branch").sum()),
                },
                "crs": layers.crs.to_string(),
                "warnings": result.warnings,
                **result.extras,
                **({"floorplans": floorplans} if floorplans else {}),
            },
        )
        (tmp / "run.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
        names = sorted(p.name for p in tmp.iterdir())
    return [out_dir / n for n in names]
