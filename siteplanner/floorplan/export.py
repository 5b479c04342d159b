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
from siteplanner.floorplan.drawing import COLOURS, draw_plan

if TYPE_CHECKING:
    from siteplanner.floorplan.plan import FloorPlan

__all__ = ["OUTPUT_FILES", "read_outline", "write_plan"]

OUTPUT_FILES = ("zones.geojson", "plan.svg", "plan.png", "plan.dxf", "metrics.json")

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


def _feature(geom: Any, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props,
            "geometry": mapping(shapely.set_precision(geom, 1e-4))}


#: How each part of a fixture row is written: planned fixtures carry ``fixture``,
#: the desks' chairs and the seat rows' wheelchair places are furniture and spaces.
def _fixture_props(row: Any) -> dict[str, Any]:
    kind, zone = str(row.fixture), str(row.zone)
    # a counter whose staff side has no staff-only way to the cash room says so
    cut = {"cut_off_from_cash_room": True} if getattr(row, "cut_off", False) else {}
    if row.part == "clearance":
        return {"clearance": kind, "zone": zone}
    if row.part == "staff_side":
        return {"staff_side": kind, "zone": zone, "access": "staff"} | cut
    if kind == "chair":
        return {"furniture": "chair", "zone": zone}
    if kind == "wheelchair_place":
        return {"space": "wheelchair_place", "zone": zone}
    return {"fixture": kind, "zone": zone} | cut


def _geojson(plan: FloorPlan) -> str:
    """Zones (with ``access``), fixtures, clearances, doors, the egress path and entrances."""
    feats = []
    # a staff room with no staff-only way to the cash room says so
    cut_rooms = set(plan.staff_rooms_cut_off)
    for row in plan.zones.itertuples(index=False):
        cut = {"cut_off_from_cash_room": True} if row.zone in cut_rooms else {}
        feats.append(_feature(
            row.geometry, zone=row.zone, access=row.access,
            area_m2=round(float(row.area_m2), 3), target_m2=round(float(row.target_m2), 3),
            programme_m2=round(float(row.programme_m2), 3), units=int(row.units),
            unit=row.unit, **cut))
    if plan.fixtures is not None:
        for row in plan.fixtures.itertuples(index=False):
            feats.append(_feature(row.geometry, **_fixture_props(row)))
    for d in plan.doors:
        feats.append(_feature(d.geometry, door=d.kind, between=f"{d.a}/{d.b}",
                              width_m=round(float(d.geometry.length), 2)))
    if plan.route is not None and plan.route.egress_path is not None:
        feats.append(_feature(plan.route.egress_path, route="egress",
                              length_m=round(float(plan.route.egress_m), 2)))
    for k, p in enumerate(plan.entrances):
        feats.append({"type": "Feature", "properties": {"entrance": k + 1},
                      "geometry": mapping(p)})
    if plan.premises is not None:
        # the premises beyond the unit the branch is planned in
        rest = plan.premises.difference(plan.outline)
        feats.append(_feature(rest, premises="rest, not planned",
                              area_m2=round(float(rest.area), 3)))
    return json.dumps({"type": "FeatureCollection", "features": feats}, indent=1) + "\n"


def _dxf(plan: FloorPlan, path: Path) -> None:
    """DXF in metres: zone layers (one per kind), fixtures, doors, circulation, dimensions."""
    import ezdxf
    from ezdxf import units

    doc = ezdxf.new("R2010", setup=True)
    doc.units = units.M
    msp = doc.modelspace()
    for name, colour in (("OUTLINE", 7), ("ENTRANCE", 1), ("ZONES", 7), ("FIXTURES", 250),
                         ("DOORS", 5), ("CIRCULATION", 4), ("DIMENSIONS", 7),
                         ("CASHIERS_CUT_OFF", 1)):
        doc.layers.add(name, color=colour)

    def poly(geom: Any, layer: str) -> None:
        for part in shapely.get_parts(geom):
            if part.geom_type == "Polygon":
                msp.add_lwpolyline(list(part.exterior.coords)[:-1], close=True,
                                   dxfattribs={"layer": layer})

    for row in plan.zones.itertuples(index=False):
        layer = f"ZONE_{str(row.zone).upper()}"
        if layer not in doc.layers:
            doc.layers.add(layer, color=COLOURS.get(str(row.zone), ("", 7))[1])
        poly(row.geometry, layer)
        centre = shapely.get_point(shapely.maximum_inscribed_circle(row.geometry, 0.01), 0)
        msp.add_text(f"{row.zone} {row.area_m2:.1f} m2 {row.access}", height=0.3,
                     dxfattribs={"layer": "ZONES"}).set_placement((centre.x, centre.y))
    if plan.fixtures is not None:
        for row in plan.fixtures.itertuples(index=False):
            # a staff side with no staff-only way to the cash room on a layer of its own
            cut = row.part == "staff_side" and bool(getattr(row, "cut_off", False))
            poly(row.geometry, "CASHIERS_CUT_OFF" if cut else "FIXTURES")
    for d in plan.doors:
        (ax, ay), (bx, by) = d.geometry.coords[0], d.geometry.coords[-1]
        msp.add_line((ax, ay), (bx, by), dxfattribs={"layer": "DOORS"})
    if plan.route is not None:
        poly(plan.route.reached, "CIRCULATION")
        if plan.route.egress_path is not None:
            msp.add_lwpolyline(list(plan.route.egress_path.coords),
                               dxfattribs={"layer": "CIRCULATION"})
    ring = list(plan.outline.exterior.coords)
    msp.add_lwpolyline(ring[:-1], close=True, dxfattribs={"layer": "OUTLINE"})
    if plan.premises is not None:  # the whole premises, of which the outline is a unit
        msp.add_lwpolyline(list(plan.premises.exterior.coords)[:-1], close=True,
                           dxfattribs={"layer": "PREMISES"})
    for a, b in zip(ring[:-1], ring[1:], strict=True):
        if np.hypot(b[0] - a[0], b[1] - a[1]) > 0.5:
            msp.add_aligned_dim(p1=a, p2=b, distance=-1.0,
                                dxfattribs={"layer": "DIMENSIONS"}).render()
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
            draw_plan(plan, tmp / "plan.svg", tmp / "plan.png")
            _dxf(plan, tmp / "plan.dxf")
            (tmp / "metrics.json").write_text(_metrics_json(plan), encoding="utf-8")
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        msg = f"cannot write the floor plan to {out}: {exc}"
        raise OutputError(msg) from None
    return [out / name for name in OUTPUT_FILES]
