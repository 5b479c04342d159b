"""``run.json``: the one schema of a run's provenance, written and read by the same code.

:class:`RunRecord` is what a run folder says about how it was made: the inputs
with their sha256, the resolved study, package versions, the OSM data date,
seconds per stage, which layers were measured and which were proxies, the
selection rule, and every figure a stage reported (``figures``: the market
impact, the solver's method, bound and gap, the stability summary, the
weight sensitivity, the floor plans, ...). :mod:`siteplanner.io` writes it;
``siteplanner report`` reads it back with :meth:`RunRecord.read`.

In the file the figures sit at the top level beside the fixed fields, so
``run["market"]`` reads as before; :meth:`RunRecord.from_dict` puts every key
that is not a field back into ``figures``.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from siteplanner._errors import InputError
from siteplanner._fs import sha256

__all__ = ["PACKAGES", "RunRecord"]

#: The packages whose versions run.json records.
PACKAGES = ("siteplanner", "geopandas", "shapely", "pyproj", "pyogrio", "osmnx", "pyrosm", "h3",
            "numpy", "pandas", "scipy", "scikit-learn", "folium")


@dataclass
class RunRecord:
    """The contents of ``run.json``."""

    siteplanner: str | None
    created: str
    study: dict[str, Any]
    crs: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    osm_data_date: str | None = None
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds_per_stage: dict[str, float] = field(default_factory=dict)
    python: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)
    foot_traffic: str = "proxy"
    candidates: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: Any, *, write_seconds: float | None = None,
                    aside: dict[str, Any] | None = None) -> RunRecord:
        """The record of a :class:`~siteplanner.pipeline.RankResult` (``write_seconds``: the
        write stage; ``aside``: what the write ran in a second process, by output, with its
        seconds and own memory, added to the stages' ``second_process``)."""
        layers, sel_rule = result.layers, result.study.selection
        status = result.candidates["status"].astype(str)
        timings = dict(result.timings)
        if write_seconds is not None:
            timings["write"] = round(write_seconds, 4)
        figures = dict(result.extras)
        if aside:
            figures["second_process"] = {**figures.get("second_process", {}), **aside}
        counts = figures.pop("candidates", {})
        if result.sensitivity is not None:
            figures["sensitivity"] = result.sensitivity.to_record()
        return cls(
            siteplanner=_version("siteplanner"),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            study=result.study.to_dict(),
            crs=layers.crs.to_string(),
            inputs=[{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256(p)}
                    for p in result.inputs if p.is_file()],
            osm_data_date=result.data_date,
            layers={k: {"source": str(v), "measured": v.measured} for k, v in sorted(layers.sources.items())},
            seconds_per_stage=timings,
            python=platform.python_version(),
            packages={p: _version(p) for p in PACKAGES},
            foot_traffic="measured" if result.foot_traffic_measured else "proxy",
            candidates={"count": len(result.candidates),
                        "source": str(layers.sources.get("candidates", "h3")), **counts},
            selection={
                "rule": "top_k_with_spacing" if sel_rule.method == "top" else sel_rule.method,
                "top_k": sel_rule.top_k,
                "min_spacing_m": sel_rule.min_spacing_m,
                "min_distance_to_own_m": sel_rule.min_distance_to_own_m,
                "capacity": sel_rule.capacity,
                "selected": len(result.selected),
                "excluded_near_own": int((status == "too_close_to_own").sum()),
            },
            warnings=list(result.warnings),
            figures=figures,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: the fixed fields, then each figure at the top level."""
        doc = asdict(self)
        figures = doc.pop("figures")
        clash = sorted(set(figures) & set(doc))
        if clash:
            msg = f"run.json: stage figures {clash} would overwrite fixed fields; rename them"
            raise ValueError(msg)
        return {**doc, **figures}

    def to_json(self) -> str:
        """``to_dict`` as indented UTF-8 JSON with a final newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, source: str = "run.json") -> RunRecord:
        """The record of a parsed ``run.json``; unknown keys become ``figures``."""
        if not isinstance(doc, dict):
            msg = (f"{source}: expected a JSON object, found a {type(doc).__name__}; "
                   "rerun `siteplanner rank` to write it again")
            raise InputError(msg)
        names = {f.name for f in fields(cls)} - {"figures"}
        for key in ("created", "study", "crs"):
            if key not in doc:
                msg = f"{source}: the field {key!r} is missing; rerun `siteplanner rank` to write it again"
                raise InputError(msg)
        if not isinstance(doc["study"], dict):
            msg = f"{source}: 'study' must be an object; rerun `siteplanner rank` to write it again"
            raise InputError(msg)
        known = {k: v for k, v in doc.items() if k in names}
        return cls(**known, figures={k: v for k, v in doc.items() if k not in names})

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """Read ``run.json``, with a one-line error for a missing, broken or foreign file."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            msg = f"{path}: not found; give the output folder of a `siteplanner rank` run"
            raise InputError(msg) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            msg = f"{path}: not valid JSON ({e}); rerun `siteplanner rank` to write it again"
            raise InputError(msg) from None
        return cls.from_dict(doc, source=str(path))

    def write(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
