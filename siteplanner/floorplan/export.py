"""Reading outlines, and writing a floor plan: GeoJSON, SVG/PNG drawing, DXF and metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry import Polygon, mapping, shape

from siteplanner._errors import InputError, OutputError
from siteplanner._fs import atomic_outputs

if TYPE_CHECKING:
    from siteplanner.floorplan.plan import FloorPlan

__all__ = ["OUTPUT_FILES", "read_outline", "write_plan"]

OUTPUT_FILES = ("zones.geojson", "plan.svg", "plan.png", "plan.dxf", "metrics.json")

#: Fill colours per zone kind (colour-blind-safe Okabe-Ito palette) and DXF colour indices.
COLOURS = {
    "self_service": ("#E69F00", 30),
    "waiting": ("#56B4E9", 4),
    "service": ("#009E73", 3),
    "advisory": ("#F0E442", 2),
    "back_office": ("#999999", 8),
    "vault": ("#D55E00", 1),
    "restroom": ("#CC79A7", 6),
}


def read_outline(path: str | Path) -> Polygon:
    """Read a floor outline from GeoJSON (geometry, Feature or one-feature collection) or WKT.

    Coordinates are taken as local metres.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        msg = f"outline file {path} does not exist"
        raise InputError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"outline file {path} is not readable text: {exc}"
        raise InputError(msg) from None
    if not text:
        msg = f"outline file {path} is empty; give a GeoJSON or WKT polygon"
        raise InputError(msg)
    if text[0] in "{[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"outline file {path} is not valid GeoJSON: {exc}"
            raise InputError(msg) from None
        return _from_geojson(data, path)
    try:
        geom = shapely.from_wkt(text)
    except shapely.errors.GEOSException:
        msg = (f"outline file {path} is neither GeoJSON nor WKT; give a polygon as GeoJSON "
               "('{\"type\": \"Polygon\", ...}') or WKT ('POLYGON ((...))')")
        raise InputError(msg) from None
    if not isinstance(geom, Polygon):
        msg = f"outline file {path} holds a {geom.geom_type}; give a single Polygon"
        raise InputError(msg)
    return geom


def _from_geojson(data: Any, path: Path) -> Polygon:
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        feats = data.get("features") or []
        if len(feats) != 1:
            msg = f"outline file {path} has {len(feats)} features; give exactly one polygon"
            raise InputError(msg)
        data = feats[0]
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    try:
        geom = shape(data)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        msg = f"outline file {path} has no readable GeoJSON geometry: {exc}"
        raise InputError(msg) from None
    if not isinstance(geom, Polygon):
        msg = f"outline file {path} holds a {geom.geom_type}; give a single Polygon"
        raise InputError(msg)
    return geom


def _geojson(plan: FloorPlan) -> str:
    feats = []
    for row in plan.zones.itertuples(index=False):
        feats.append({
            "type": "Feature",
            "properties": {
                "zone": row.zone,
                "area_m2": round(float(row.area_m2), 3),
                "target_m2": round(float(row.target_m2), 3),
                "programme_m2": round(float(row.programme_m2), 3),
                "units": int(row.units),
                "unit": row.unit,
            },
            "geometry": mapping(shapely.set_precision(row.geometry, 1e-4)),
        })
    for k, p in enumerate(plan.entrances):
        feats.append({"type": "Feature", "properties": {"entrance": k + 1},
                      "geometry": mapping(p)})
    return json.dumps({"type": "FeatureCollection", "features": feats}, indent=1) + "\n"


def _label(row: Any) -> str:
    name = str(row.zone).replace("_", " ")
    n = int(row.units)
    unit = str(row.unit)
    if n == 1 and unit.endswith("s") and not unit.endswith("ss"):
        unit = unit[:-1]
    return f"{name}\n{row.area_m2:.1f} m²\n{n} {unit}"


def _draw(plan: FloorPlan, svg: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "siteplanner"
    x0, y0, x1, y1 = plan.outline.bounds
    w, h = x1 - x0, y1 - y0
    fig, ax = plt.subplots(figsize=(10, 10 * max(h, 1) / max(w, 1) * 0.9 + 1.2))
    for row in plan.zones.itertuples(index=False):
        colour = COLOURS.get(str(row.zone), ("#DDDDDD", 7))[0]
        for part in shapely.get_parts(row.geometry):
            xs, ys = part.exterior.xy
            ax.fill(xs, ys, facecolor=colour, edgecolor="black", linewidth=1.2, alpha=0.85)
        circle = shapely.maximum_inscribed_circle(row.geometry, 0.01)
        anchor = shapely.get_point(circle, 0)
        ax.text(anchor.x, anchor.y, _label(row), ha="center", va="center", fontsize=9,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1.5})
    xs, ys = plan.outline.exterior.xy
    ax.plot(xs, ys, color="black", linewidth=2.5)
    for k, p in enumerate(plan.entrances):
        ax.plot(p.x, p.y, marker="v", markersize=14, color="#CC0000", markeredgecolor="black",
                zorder=5)
        ax.annotate(f"entrance {k + 1}", (p.x, p.y), textcoords="offset points",
                    xytext=(8, 8), fontsize=9, color="#CC0000", weight="bold")
    bar = _scale_length(w)
    bx, by = x0, y0 - 0.08 * max(h, w)
    ax.plot([bx, bx + bar], [by, by], color="black", linewidth=4, solid_capstyle="butt")
    ax.text(bx + bar / 2, by - 0.02 * max(h, w), f"{bar:g} m", ha="center", va="top", fontsize=9)
    m = plan.metrics
    status = "all hard constraints pass" if m["all_constraints_pass"] else "HARD CONSTRAINTS FAIL"
    ax.set_title(f"Branch floor plan: {m['outline_m2']:.0f} m², programme "
                 f"{m['programme_m2']:.0f} m², adjacency {m['adjacency_satisfaction']:.0%}, "
                 f"{status}", fontsize=11)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    fig.savefig(png, format="png", dpi=150, metadata={"Software": None})
    plt.close(fig)


def _scale_length(width: float) -> float:
    """A round scale-bar length near a fifth of the drawing width."""
    raw = max(width / 5.0, 1.0)
    base = 10 ** np.floor(np.log10(raw))
    return float(max(m * base for m in (1, 2, 5) if m * base <= raw))


def _dxf(plan: FloorPlan, path: Path) -> None:
    import ezdxf
    from ezdxf import units

    doc = ezdxf.new("R2010")
    doc.units = units.M
    msp = doc.modelspace()
    doc.layers.add("OUTLINE", color=7)
    doc.layers.add("ENTRANCE", color=1)
    for row in plan.zones.itertuples(index=False):
        layer = f"ZONE_{str(row.zone).upper()}"
        if layer not in doc.layers:
            doc.layers.add(layer, color=COLOURS.get(str(row.zone), ("", 7))[1])
        for part in shapely.get_parts(row.geometry):
            msp.add_lwpolyline(list(part.exterior.coords)[:-1], close=True,
                               dxfattribs={"layer": layer})
        centre = shapely.get_point(shapely.maximum_inscribed_circle(row.geometry, 0.01), 0)
        msp.add_text(f"{row.zone} {row.area_m2:.1f} m2", height=0.3,
                     dxfattribs={"layer": layer}).set_placement((centre.x, centre.y))
    msp.add_lwpolyline(list(plan.outline.exterior.coords)[:-1], close=True,
                       dxfattribs={"layer": "OUTLINE"})
    for p in plan.entrances:
        msp.add_circle((p.x, p.y), radius=0.3, dxfattribs={"layer": "ENTRANCE"})
    doc.saveas(path)


def _metrics_json(plan: FloorPlan) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    return json.dumps(clean(plan.metrics), indent=1, sort_keys=False) + "\n"


def write_plan(plan: FloorPlan, out: str | Path) -> list[Path]:
    """Write the plan's files into directory ``out``, all or none.

    The files are written into a temporary directory next to ``out`` and moved
    into place only after every one succeeded (:func:`siteplanner._fs.atomic_outputs`).
    """
    out = Path(out)
    try:
        with atomic_outputs(out) as tmp:
            (tmp / "zones.geojson").write_text(_geojson(plan), encoding="utf-8")
            _draw(plan, tmp / "plan.svg", tmp / "plan.png")
            _dxf(plan, tmp / "plan.dxf")
            (tmp / "metrics.json").write_text(_metrics_json(plan), encoding="utf-8")
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        msg = f"cannot write the floor plan to {out}: {exc}"
        raise OutputError(msg) from None
    return [out / name for name in OUTPUT_FILES]
