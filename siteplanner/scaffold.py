"""``siteplanner init``: a commented ``study.toml`` for a new place, written from its data.

The study starts at the package's defaults (which belong to no city, each with
its source in :mod:`siteplanner.config` and :mod:`siteplanner.criteria`) and
adds what only the data can tell: the banks found (near-duplicate spellings
grouped, so the planner sees "BNP Paribas / BNP-Paribas" as one brand), the
administrative boundaries with their levels, and a suggested study area. The
planner then edits the brand and keeps or changes the rest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from siteplanner._errors import InputError, OutputError
from siteplanner.brands import brand_groups
from siteplanner.config import Study
from siteplanner.layers import bank_label
from siteplanner.sources import read_osm_file

__all__ = ["study_template", "write_study"]

_SECTION_NOTES = {
    "candidates": "Candidate cells: H3 resolution 11 is ~25 m, a block face.",
    "selection": "How sites are chosen: top K by score, kept apart (metres).",
    "network": ("Walking, and driving where the study is thinly peopled: speed (km/h), the "
                "walks counted (minutes), the modes and their share of demand."),
    "model": "weighted (the weights below) or learned; stability draws and clusters.",
    "floorplan": ("Floor plans for the top sites: in the brand's premises outline if given, "
                  "else in each site's own OSM building (premises = \"auto\")."),
    "huff": "The Huff market split: distance decay and relative attractiveness.",
}


def study_template(osm: Path, *, brand: str | None = None) -> str:
    """The text of a commented study file for the OSM extract ``osm``.

    ``brand`` is the planner's own brand; without it the most frequent bank in
    the data is written in, to be edited.
    """
    data = read_osm_file(osm)
    banks = data.features[data.features["amenity"] == "bank"]
    counts = bank_label(banks).value_counts()
    groups = sorted(brand_groups(counts.index), key=lambda g: -int(counts[g].sum()))
    if brand is None and not groups:
        msg = f"{osm}: the data holds no bank (amenity=bank); give --brand NAME for your own branches"
        raise InputError(msg)
    chosen = brand or groups[0][0]
    doc = Study.default(brand=chosen, osm=osm).to_document()
    doc["study"] = {"name": None, "brand": [chosen], "osm": osm.name,
                    **_area(data.boundaries, data.extent), "seed": 0}
    lines = ["# A siteplanner study, written by `siteplanner init` from " + osm.name + ".",
             "# Every value below is the package default (see the docs for its source);",
             "# change what your network needs. Paths are relative to this file.", "",
             "# Banks in the data, with near-duplicate spellings grouped (branches):"]
    lines += [f"#   {' / '.join(g)} ({int(counts[g].sum())})" for g in groups] or ["#   none"]
    lines += _boundary_notes(data.boundaries)
    for section, table in doc.items():
        lines += _section(section, table)
    return "\n".join(lines) + "\n"


def write_study(folder: Path, osm: Path, *, brand: str | None = None, force: bool = False) -> Path:
    """Write :func:`study_template` to ``folder/study.toml`` and return its path."""
    if not osm.is_file():
        msg = f"--osm {osm}: file not found; give an OpenStreetMap extract (.osm.pbf, .osm, .osm.bz2)"
        raise InputError(msg)
    path = folder / "study.toml"
    if path.exists() and not force:
        msg = f"{path} already exists; choose another folder or pass --force to replace it"
        raise OutputError(msg)
    text = study_template(osm.resolve(), brand=brand)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(f'osm = "{osm.resolve().name}"', f'osm = "{_relative(osm, folder)}"'),
                        encoding="utf-8")
    except OSError as e:
        msg = f"{path}: cannot write the study ({e.strerror}); choose a folder you can write to"
        raise OutputError(msg) from None
    return path


def _relative(osm: Path, folder: Path) -> str:
    try:
        return str(osm.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(osm.resolve())


def _area(boundaries: Any, extent: Any) -> dict[str, Any]:
    """The suggested area: the outermost boundary (lowest admin level), when the data has one."""
    if boundaries is None or len(boundaries) == 0:
        return {}
    return {"area": {"admin_level": int(boundaries["admin_level"].min())}}


def _boundary_notes(boundaries: Any) -> list[str]:
    if boundaries is None or len(boundaries) == 0:
        return ["#", "# The data holds no administrative boundary: the study area is the data's",
                "# extent. Give your own polygon with [layers.area] path = \"area.geojson\"."]
    out = ["#", "# Administrative boundaries in the data (admin_level: names); choose the study",
           "# area with area = {admin_level = N} or {name = \"...\"}, or --area-name NAME:"]
    for level, names in boundaries.groupby("admin_level")["name"]:
        shown = sorted(str(n) for n in names.dropna().unique())
        more = f", ... ({len(shown)} in all)" if len(shown) > 8 else ""
        out.append(f"#   {int(level)}: {', '.join(shown[:8])}{more}")
    return out


def _section(name: str, table: Mapping[str, Any]) -> list[str]:
    if name in ("criteria", "layers"):
        out = []
        if name == "criteria":
            out += ["", "# The criteria: weights are shares of their sum; radii in metres."]
        for key, sub in table.items():
            out += ["", f"[{name}.{key}]"] + [f"{k} = {_value(v)}" for k, v in sub.items()]
        return out
    out = ["", f"# {_SECTION_NOTES[name]}"] if name in _SECTION_NOTES else [""]
    out.append(f"[{name}]")
    for key, value in table.items():
        if value is None:
            out.append(f"# {key} = \"...\"")
        else:
            out.append(f"{key} = {_value(value)}")
    return out


def _value(v: Any) -> str:
    """One TOML value: text, number, boolean, array or inline table."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            msg = f"cannot write {v!r} in a study file"
            raise ValueError(msg)
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    return "[" + ", ".join(_value(x) for x in v) + "]"
