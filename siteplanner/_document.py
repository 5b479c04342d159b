"""The study file's layout and the schema's fields, both ways.

A study file groups the study's own keys under ``[study]``, keys criteria and
layers by name, and calls the Huff exponent ``lambda``; the schema
(:class:`siteplanner.config.Study`) has them as flat fields. This module turns
a parsed TOML document into the schema's fields (paths resolved against the
file's folder, each criterion's missing keys filled from the registry), and
spells a schema location the way the study file writes it, for messages.
It raises :class:`~siteplanner._schema.Problem`; the schema's caller turns
that into the one-line :class:`~siteplanner._errors.ConfigError`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from siteplanner._errors import ConfigError, InputError
from siteplanner._overrides import bare
from siteplanner._schema import Problem, show
from siteplanner.criteria import CRITERIA

__all__ = ["LAYER_KINDS", "SECTIONS", "STUDY_KEYS", "document_to_fields", "origin_of", "toml_key"]

#: Layer kinds a user file may provide (``--layer KIND=FILE``).
LAYER_KINDS = ("area", "competitors", "own_branches", "transit", "pois", "foot_traffic",
               "candidates")
#: The study's own keys, written under ``[study]`` in the file.
STUDY_KEYS = ("name", "brand", "osm", "place", "bbox", "crs", "seed", "area", "brand_wikidata",
              "aliases")
SECTIONS = ("study", "candidates", "selection", "criteria", "layers", "network", "huff", "demand",
            "economics", "policy", "model", "ahp", "floorplan",
            "national")



def toml_key(parts: tuple[str, ...]) -> str:
    """A schema location in the study file's words: ``seed`` is ``study.seed``, ``lam`` ``lambda``."""
    if parts and parts[0] in STUDY_KEYS:
        parts = ("study", *parts)
    if parts[:2] == ("huff", "lam"):
        parts = ("huff", "lambda", *parts[2:])
    return ".".join(parts) or "study"


def origin_of(key: str, origins: Mapping[str, str]) -> str | None:
    """The command-line option that set ``key`` (or a table above it), if any."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        hit = origins.get(".".join(parts[:i]))
        if hit:
            return hit
    return next((o for k, o in origins.items() if k.startswith(key + ".")), None)


def _table(raw: Any, key: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Problem(key, f"{key} = {show(raw)}: expected a table ([{key}] section)")
    return raw


def _only(raw: dict[str, Any], allowed: tuple[str, ...], key: str) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        k = f"{key}.{bare(unknown[0])}"
        raise Problem(k, f"unknown setting {k}; known settings here are "
                         f"{', '.join(f'{key}.{a}' for a in sorted(allowed))}")


def document_to_fields(raw: Any, *, base: Path, layer_keys: tuple[str, ...]) -> dict[str, Any]:
    """A TOML document as the Study's fields: ``[study]`` flattened, paths resolved, defaults filled."""
    raw = copy.deepcopy(_table(raw, "document"))
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        k = bare(unknown[0])
        raise Problem(k, f"unknown section [{k}]; the sections are {', '.join(SECTIONS)}")
    out: dict[str, Any] = dict(_table(raw.get("study", {}), "study"))
    _only(out, STUDY_KEYS, "study")
    _resolve(out, ("osm",), base)
    for sec in ("candidates", "selection", "network", "model"):
        out[sec] = _table(raw.get(sec, {}), sec)
    huff = dict(_table(raw.get("huff", {}), "huff"))
    if "lam" in huff:
        _only(huff, ("lambda",), "huff")
    if "lambda" in huff:
        huff["lam"] = huff.pop("lambda")
    out["huff"] = _resolve(huff, ("observed",), base)
    out["floorplan"] = _resolve(dict(_table(raw.get("floorplan", {}), "floorplan")),
                                ("outline", "standard"), base)
    out["demand"] = _resolve(dict(_table(raw.get("demand", {}), "demand")), ("census", "raster"), base)
    out["economics"] = _resolve(dict(_table(raw.get("economics", {}), "economics")), ("districts",),
                                base)
    out["policy"] = dict(_table(raw.get("policy", {}), "policy"))
    out["national"] = _national(raw.get("national", {}), base)
    out["layers"] = _layers(raw.get("layers", {}), base, layer_keys)
    out["criteria"] = _criteria(raw.get("criteria", {}))
    if "ahp" in raw:
        out["ahp"] = _table(raw["ahp"], "ahp")
        out["criteria"] = _ahp_weights(out["ahp"], out["criteria"])
    return out


def _resolve(table: dict[str, Any], keys: tuple[str, ...], base: Path) -> dict[str, Any]:
    for k in keys:
        v = table.get(k)
        if isinstance(v, str) and v.strip():
            table[k] = base / v
    return table


#: Endings that make a ``[national] places`` entry an OSM file rather than a boundary name.
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".xml")


def _national(raw: Any, base: Path) -> dict[str, Any]:
    """``[national]``: the places that are OSM files are resolved against the study file's folder."""
    out = dict(_table(raw, "national"))
    _only(out, ("places",), "national")
    places = out.get("places")
    if isinstance(places, list | tuple):
        out["places"] = [str(base / p) if isinstance(p, str) and p.lower().endswith(OSM_SUFFIXES)
                         else p for p in places]
    return out


def _layers(raw: Any, base: Path, layer_keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, spec in _table(raw, "layers").items():
        key = f"layers.{bare(kind)}"
        if kind not in LAYER_KINDS:
            raise Problem(key, f"unknown layer kind {show(kind)} ({key}); use one of "
                               f"{', '.join(LAYER_KINDS)}")
        spec = {"path": spec} if isinstance(spec, str) else dict(_table(spec, key))
        _only(spec, layer_keys, key)
        if "path" not in spec:
            raise Problem(f"{key}.path", f'{key} needs a path = "FILE"')
        out[kind] = {"kind": kind, **_resolve(spec, ("path", "locations"), base)}
    return out


def _criteria(raw: Any) -> dict[str, Any]:
    raw = _table(raw, "criteria")
    unknown = sorted(set(raw) - set(CRITERIA))
    if unknown:
        k = f"criteria.{bare(unknown[0])}"
        raise Problem(k, f"unknown criterion {show(unknown[0])} ({k}); the criteria are "
                         f"{', '.join(CRITERIA)}")
    out: dict[str, Any] = {}
    for name, spec in CRITERIA.items():
        given = _table(raw.get(name, {}), f"criteria.{name}")
        _only(given, ("weight", "radius_m"), f"criteria.{name}")
        out[name] = {"name": name, "direction": spec.direction, "weight": spec.weight,
                     "radius_m": spec.radius_m, **given}
    return out


def _ahp_weights(ahp: dict[str, Any], criteria: dict[str, Any]) -> dict[str, Any]:
    """Replace the criteria's weights by those of the AHP judgements (validated there)."""
    from siteplanner.ahp import weights_from_judgements

    try:
        result = weights_from_judgements(ahp, list(CRITERIA), where="ahp")
    except (ConfigError, InputError) as e:
        raise Problem("ahp", str(e)) from None
    return {n: {**c, "weight": float(result.weights[n])} for n, c in criteria.items()}
