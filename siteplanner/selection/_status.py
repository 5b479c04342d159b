"""Why each candidate was or was not chosen: a categorical code plus a sentence.

``status`` is one of :data:`STATUSES`, a fixed categorical that code can
compare against (``candidates["status"] == "too_close_to_own"``);
``status_detail`` is the same fact in words for people (the distances, the
branch, the rank).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["STATUSES", "drop_sites", "status_codes"]

#: Every status a candidate can have, in the order the outputs list them.
STATUSES = (
    "selected",               # chosen, with its rank
    "too_close_to_own",       # within selection.min_distance_to_own_m of an own branch
    "too_close_to_selected",  # within selection.min_spacing_m of a site chosen before it
    "below_cut",              # free to choose, but ranked below the K sites
    "not_in_set",             # a joint model (coverage, pmedian, capture, npv) chose other sites
    "edge",                   # its reach runs past the edge of the data (candidates.edge)
    "not_paying",             # chosen, then dropped: its NPV is below economics.min_npv
    "fails_policy",           # chosen, then dropped by --policy strict: it fails a siting rule
)


def status_codes(codes: object) -> pd.Categorical:
    """``codes`` (strings from :data:`STATUSES`) as the categorical the outputs carry."""
    cat = pd.Categorical(codes, categories=list(STATUSES))
    if cat.isna().any():
        bad = sorted({str(c) for c, m in zip(codes, cat.isna(), strict=True) if m})  # type: ignore[call-overload]
        msg = f"unknown candidate status {bad}; expected one of {', '.join(STATUSES)}"
        raise ValueError(msg)
    return cat


def drop_sites(ranked: Any, selected: Any, why: dict[str, str], *, status: str,
               prefix: str = "") -> tuple[Any, Any]:
    """Take the sites ``why`` names (site id -> reason) out of a selection.

    They get ``status`` and ``prefix + reason`` as their detail and lose
    their rank; the sites left keep their order, renumbered from 1.
    Returns the new ``(ranked, selected)``.
    """
    ranked = ranked.copy()
    ids = ranked["site_id"].astype(str)
    out = ids.isin(list(why))
    codes = ranked["status"].astype(str).to_numpy(dtype=object)
    codes[out.to_numpy()] = status
    ranked["status"] = status_codes(codes)
    ranked.loc[out, "status_detail"] = [prefix + why[i] for i in ids[out]]
    ranked.loc[out, "rank"] = pd.NA
    keep = ranked["rank"].notna()
    ranked.loc[keep, "rank"] = ranked.loc[keep, "rank"].astype(int).rank(method="first").astype(int)
    ranked["rank"] = ranked["rank"].astype("Int64")
    sel = selected[~selected["site_id"].astype(str).isin(list(why))].copy()
    sel["rank"] = ranked.loc[sel.index, "rank"]
    sel["status_detail"] = ranked.loc[sel.index, "status_detail"]
    return ranked, sel.sort_values("rank")
