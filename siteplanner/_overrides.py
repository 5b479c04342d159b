"""The command line's study overrides: ``--set KEY=VALUE`` and the options that set a study key.

``KEY`` is a dotted key of the study file, into any section:
``selection.top_k=5``, ``criteria.transit.weight=0.3``, ``study.name=Espoo``,
``layers.competitors=banks.csv``, ``layers.competitors.lon_column=x``.
``VALUE`` is read as a TOML value (``5``, ``0.3``, ``true``, ``inf``,
``[5, 10]``); a bare word or anything else that is not TOML stays text, and
``a,b,c`` is a list. ``none`` removes the key, so its default applies again.
Text settings (names, paths, columns) keep VALUE exactly as typed.

The overrides are written into the study's document, which the study schema
then validates like a file, so a value gets the same message either way.
This module only edits the document; it knows nothing of the schema.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siteplanner._errors import ConfigError

__all__ = ["apply", "bare", "parse_set", "parse_value"]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_UNSET = object()

#: Whether the setting at a dotted key (as parts) takes text, so VALUE stays as typed.
TextKey = Callable[[tuple[str, ...]], bool]


def bare(key: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted (one line, ASCII)."""
    if _BARE.fullmatch(key):
        return key
    import json

    return json.dumps(key, ensure_ascii=True)


def parse_value(text: str, *, as_text: bool = False) -> Any:
    """A ``--set`` VALUE: a TOML value, else text; ``a,b`` is a list; ``none`` unsets."""
    t = text.strip()
    if t.lower() in ("none", "null"):
        return _UNSET
    if as_text:
        return t
    try:
        return tomllib.loads(f"v = {t}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        pass
    if "," in t:
        return [parse_value(x) for x in t.split(",")]
    return t


def parse_set(item: str, *, text_key: TextKey | None = None) -> tuple[tuple[str, ...], Any]:
    """Split ``KEY=VALUE`` into the key's parts and the parsed value."""
    key, sep, value = item.partition("=")
    parts = tuple(p.strip() for p in key.strip().split("."))
    if not sep or len(parts) < 2 or not all(parts):
        msg = (f"--set {bare(item)}: write it as SECTION.KEY=VALUE, e.g. "
               "criteria.transit.weight=0.3, selection.top_k=5 or study.name=Espoo")
        raise ConfigError(msg)
    as_text = text_key(parts) if text_key is not None else False
    return parts, parse_value(value, as_text=as_text)


def _put(doc: dict[str, Any], parts: tuple[str, ...], value: Any, origin: str) -> None:
    node = doc
    for i, p in enumerate(parts[:-1]):
        nxt = node.setdefault(p, {})
        if isinstance(nxt, str) and parts[0] == "layers" and i == 1:
            nxt = node[p] = {"path": nxt}
        if not isinstance(nxt, dict):
            msg = f"{origin}: {'.'.join(bare(x) for x in parts[: i + 1])} is not a table"
            raise ConfigError(msg)
        node = nxt
    if value is _UNSET:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def apply(doc: dict[str, Any], *, sets: list[str], brand: list[str] | None = None,
          top_k: int | None = None, osm: Path | None = None, place: str | None = None,
          bbox: str | None = None, layers: list[str] | None = None, select: str | None = None,
          solver: str | None = None, model: str | None = None,
          text_key: TextKey | None = None) -> dict[str, str]:
    """Write the overrides into ``doc`` in place; return which option set each dotted key."""
    origins: dict[str, str] = {}

    def put(key: str, value: Any, origin: str) -> None:
        parts = tuple(key.split("."))
        _put(doc, parts, value, origin)
        origins[".".join(parts)] = origin

    study = doc.setdefault("study", {})
    if osm is not None:
        study.pop("place", None), study.pop("bbox", None)
        put("study.osm", str(osm), "--osm")
    if place is not None:
        study.pop("osm", None), study.pop("bbox", None)
        put("study.place", place, "--place")
    if bbox is not None:
        study.pop("osm", None), study.pop("place", None)
        put("study.bbox", [parse_value(x) for x in bbox.split(",")], "--bbox")
    if brand:
        put("study.brand", list(brand), "--brand")
    for item in layers or []:
        kind, sep, path = item.partition("=")
        if not sep or not kind.strip() or not path:
            msg = f"--layer {bare(item)}: write it as KIND=FILE, e.g. --layer competitors=banks.csv"
            raise ConfigError(msg)
        file, layer = _path_and_layer(path)
        put(f"layers.{kind.strip()}", str(Path(file).absolute()), "--layer")
        if layer is not None:
            put(f"layers.{kind.strip()}.layer", layer, "--layer")
    for key, value, origin in (("selection.top_k", top_k, "--top"),
                               ("selection.method", select, "--select"),
                               ("selection.solver", solver, "--solver"),
                               ("model.kind", model, "--model")):
        if value is not None:
            put(key, value, origin)
    for item in sets:
        parts, value = parse_set(item, text_key=text_key)
        _put(doc, parts, value, "--set")
        origins[".".join(parts)] = "--set"
    return origins


def _path_and_layer(text: str) -> tuple[str, str | None]:
    """``FILE`` or ``FILE:LAYER`` (a layer of a GeoPackage) from ``--layer KIND=...``."""
    path, sep, layer = text.rpartition(":")
    if sep and layer and path and not Path(text).exists() and Path(path).suffix:
        return path, layer
    return text, None
