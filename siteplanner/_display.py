"""How figures look to people, shared by the map and the report: colours, labels, number formats.

Rendering only: nothing here computes a result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from siteplanner.config import CRITERIA

__all__ = [
    "COMPETITOR_COLOUR",
    "HEAT_GRADIENT",
    "IMPACT_FIELDS",
    "MODE_COLOURS",
    "OWN_COLOUR",
    "SCORE_CMAP",
    "SITE_COLOUR",
    "access_facts",
    "criteria_of",
    "present",
    "format_value",
    "signed",
]

MODE_COLOURS = {"rail": "#6a3d9a", "metro": "#d6336c", "tram": "#2f9e44", "bus": "#1971c2"}
OWN_COLOUR, COMPETITOR_COLOUR, SITE_COLOUR = "#0b7285", "#c92a2a", "#f08c00"
SCORE_CMAP, HEAT_GRADIENT = "YlGnBu", {0.3: "#fee391", 0.6: "#fe9929", 0.85: "#d7301f", 1.0: "#7f0000"}

#: Optional per-site figures from the market-impact and stability stages:
#: column name -> (label in popups and the report, how to format it).
IMPACT_FIELDS: dict[str, tuple[str, str]] = {
    "expected_demand": ("Expected demand", "number"),
    "net_new_demand": ("Net-new demand", "number"),
    "from_competitors": ("of which won from competitors", "number"),
    "cannibalized": ("taken from own branches", "number"),
    "stability": ("Stability (share of weight scenarios that keep it)", "share"),
}



def criteria_of(table: pd.DataFrame) -> list[str]:
    """The criteria with a ``NAME_contribution`` column, the standard ones first."""
    names = [c for c in CRITERIA if f"{c}_contribution" in table]
    extra = sorted(c[: -len("_contribution")] for c in table.columns
                   if isinstance(c, str) and c.endswith("_contribution")
                   and c[: -len("_contribution")] not in CRITERIA)
    return names + extra


def format_value(value: Any, kind: str = "number") -> str:
    """A figure for people: ``share`` in [0, 1] as a percentage, others to 3 significant digits."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{int(value):,}"
    v = float(value)
    if not math.isfinite(v):
        return "–"
    if kind == "share" and 0 <= v <= 1:
        return f"{v:.0%}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def access_facts(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Walking access to transit from a site's ``walk_min_<mode>`` and ``stops_within_<N>min``."""
    facts = []
    for col in sorted(k for k in row if isinstance(k, str) and k.startswith("walk_min_")):
        if present(row, col):
            facts.append((f"Walk to nearest {col[len('walk_min_'):]} stop",
                          f"{float(row[col]):.1f} min"))
    for col in sorted(k for k in row if isinstance(k, str) and k.startswith("stops_within_")):
        if present(row, col):
            within = col[len("stops_within_"):].replace("min", " min")
            facts.append((f"Transit stops within {within} walk", f"{float(row[col]):.0f}"))
    return facts


def signed(value: float) -> str:
    """``+0.123`` / ``-0.123``, with no ``-0.000`` for a part that rounds to zero."""
    return f"{round(float(value), 3) + 0.0:+.3f}"


def present(row: Mapping[str, Any], col: str) -> bool:
    v = row.get(col)
    return v is not None and not (isinstance(v, float) and math.isnan(v))
