"""Top K with spacing: the operating rule "avoid over-competition" made explicit.

Candidates are taken in score order. A candidate is skipped when it lies
within ``min_distance_to_own_m`` of one of the brand's branches, or within
``min_spacing_m`` of a site already chosen. Every candidate's ``status``
(a code from :data:`~siteplanner.selection._status.STATUSES`) and
``status_detail`` (the same in words) say which happened, so the rule is
visible in the outputs.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
from scipy.spatial import cKDTree

from siteplanner.selection._status import status_codes

__all__ = ["select_top"]


def select_top(scored: gpd.GeoDataFrame, own_branches: gpd.GeoDataFrame, *, k: int,
               min_spacing_m: float, min_distance_to_own_m: float) -> gpd.GeoDataFrame:
    """Choose up to ``k`` sites by score while keeping both spacings.

    Returns a copy of ``scored`` with ``rank`` (1 is best; missing for the
    sites not chosen), ``nearest_own_m``, ``status`` and ``status_detail``.
    """
    xy = np.column_stack([scored.geometry.x, scored.geometry.y])
    out = scored.copy()
    status = np.full(len(out), "below_cut", dtype=object)
    detail = np.full(len(out), "ranked below the top sites", dtype=object)
    if len(own_branches):
        own_xy = np.column_stack([own_branches.geometry.x, own_branches.geometry.y])
        d_own, j_own = cKDTree(own_xy).query(xy)
        labels = own_branches["label"].astype(str).to_numpy()[j_own]
        near_own = d_own < min_distance_to_own_m
        status[near_own] = "too_close_to_own"
        detail[near_own] = [f"within {min_distance_to_own_m:.0f} m of own branch {lab} ({d:.0f} m)"
                            for lab, d in zip(labels[near_own], d_own[near_own], strict=True)]
    else:
        d_own = np.full(len(out), np.inf)
        near_own = np.zeros(len(out), dtype=bool)
    blocked = near_own.copy()
    order = np.lexsort((out.index.astype(str).to_numpy(), -out["score"].to_numpy()))
    tree = cKDTree(xy)
    rank = np.zeros(len(out), dtype=int)
    chosen = 0
    for i in order:
        if chosen == k:
            break
        if blocked[i]:
            continue
        chosen += 1
        rank[i] = chosen
        status[i], detail[i] = "selected", f"selected #{chosen}"
        if min_spacing_m > 0:
            near = np.asarray(tree.query_ball_point(xy[i], min_spacing_m), dtype=int)
            fresh = near[~blocked[near] & (rank[near] == 0)]
            status[fresh] = "too_close_to_selected"
            detail[fresh] = f"within {min_spacing_m:.0f} m of selected site #{chosen}"
            blocked[near] = True
        blocked[i] = True
    if chosen < k:
        warnings.warn(f"only {chosen} of {k} sites fit the spacing rules "
                      f"({min_spacing_m:.0f} m apart, {min_distance_to_own_m:.0f} m from own "
                      "branches); lower the spacings or the number of sites", UserWarning,
                      stacklevel=2)
    out["rank"] = np.where(rank > 0, rank, np.nan)
    out["rank"] = out["rank"].astype("Int64")
    out["nearest_own_m"] = np.round(d_own, 1)
    out["status"] = status_codes(status)
    out["status_detail"] = detail
    return out
