"""The bank's siting rules as thresholds, checked for every selected site.

The operating rules say: be reachable (a transit stop within a short walk),
go where people are (foot traffic and shops at or above a percentile of the
study's candidates), avoid over-competition (no competitor within a
distance, no own branch within the spacing) and, optionally, pay back
within a number of years. :func:`compliance` gives one row per (site, rule)
with ``site_id, rule, value, threshold, passes``; under ``--policy strict``
the pipeline drops the sites that fail one (:func:`failing`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from siteplanner.config import PolicySettings

__all__ = ["COMPLIANCE_COLUMNS", "RULES", "compliance", "failing"]

COMPLIANCE_COLUMNS = ("site_id", "rule", "value", "threshold", "passes")

#: rule -> (what it says, the value's unit, whether the value must be at least the threshold)
RULES: dict[str, tuple[str, str, bool]] = {
    "transit_walk": ("a transit stop within a short walk", "minutes", False),
    "foot_traffic": ("foot traffic at or above the percentile of candidates", "criterion value", True),
    "commercial": ("shops and services at or above the percentile of candidates", "criterion value",
                   True),
    "competitor_distance": ("no competitor branch closer than this", "metres", True),
    "own_spacing": ("no own branch closer than the spacing", "metres", True),
    "payback": ("pays back within this many years", "years", False),
}


def compliance(selected: gpd.GeoDataFrame, candidates: pd.DataFrame, competitors: gpd.GeoDataFrame,
               settings: PolicySettings, *, own_spacing_m: float) -> pd.DataFrame:
    """One row per (selected site, rule): the site's value, the threshold and whether it passes.

    ``candidates`` is every candidate of the study (for the percentiles);
    ``selected`` carries ``foot_traffic``, ``commercial``, ``nearest_own_m``,
    the ``walk_min_<mode>`` columns and, when the economics ran,
    ``payback_years``. A missing value (no stop within reach, a site that
    never pays back) fails its rule.
    """
    n = len(selected)
    walk = selected[[c for c in selected.columns if c.startswith("walk_min_")]]
    values: dict[str, tuple[np.ndarray, float]] = {
        "transit_walk": (walk.min(axis=1).to_numpy(dtype=float) if walk.shape[1] else
                         np.full(n, np.nan), settings.transit_max_walk_min),
        "foot_traffic": (selected["foot_traffic"].to_numpy(dtype=float), float(np.percentile(
            candidates["foot_traffic"].to_numpy(dtype=float), settings.foot_traffic_percentile))),
        "commercial": (selected["commercial"].to_numpy(dtype=float), float(np.percentile(
            candidates["commercial"].to_numpy(dtype=float), settings.commercial_percentile))),
        "competitor_distance": (_nearest_m(selected, competitors), settings.competitor_min_m),
        "own_spacing": (selected["nearest_own_m"].to_numpy(dtype=float), own_spacing_m),
    }
    if settings.max_payback_years is not None:
        pay = (selected["payback_years"].to_numpy(dtype=float) if "payback_years" in selected
               else np.full(n, np.nan))
        values["payback"] = (pay, settings.max_payback_years)
    ids = selected["site_id"].astype(str).to_numpy()
    parts = []
    for rule, (v, threshold) in values.items():
        at_least = RULES[rule][2]
        with np.errstate(invalid="ignore"):
            ok = (v >= threshold) if at_least else (v <= threshold)
        parts.append(pd.DataFrame({"site_id": ids, "rule": rule, "value": np.round(v, 3),
                                   "threshold": round(threshold, 3), "passes": ok & ~np.isnan(v)}))
    if not parts or n == 0:
        return pd.DataFrame(columns=list(COMPLIANCE_COLUMNS))
    table = pd.concat(parts, ignore_index=True)
    order = {sid: i for i, sid in enumerate(ids)}
    table = table.sort_values(["site_id"], key=lambda s: s.map(order), kind="stable")
    return table.reset_index(drop=True)[list(COMPLIANCE_COLUMNS)]


def failing(table: pd.DataFrame) -> dict[str, str]:
    """Site id -> the rules it fails, in words with value and threshold (sites that pass are absent)."""
    bad = table[~table["passes"].astype(bool)]
    out: dict[str, str] = {}
    for sid, rows in bad.groupby("site_id", sort=False):
        out[str(sid)] = "; ".join(
            f"{r.rule} ({_fmt(r.value)} {RULES[str(r.rule)][1]}, needs "
            f"{'>=' if RULES[str(r.rule)][2] else '<='} {_fmt(r.threshold)})"
            for r in rows.itertuples())
    return out


def _fmt(v: object) -> str:
    x = float(v)  # type: ignore[arg-type]
    return "none" if np.isnan(x) else f"{x:,.4g}"


def _nearest_m(sites: gpd.GeoDataFrame, others: gpd.GeoDataFrame) -> np.ndarray:
    if len(others) == 0:
        return np.full(len(sites), np.inf)
    d, _ = cKDTree(np.column_stack([others.geometry.x, others.geometry.y])).query(
        np.column_stack([sites.geometry.x, sites.geometry.y]))
    return np.round(d, 1)
