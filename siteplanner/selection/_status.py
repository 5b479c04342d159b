"""Why each candidate was or was not chosen: a categorical code plus a sentence.

``status`` is one of :data:`STATUSES`, a fixed categorical that code can
compare against (``candidates["status"] == "too_close_to_own"``);
``status_detail`` is the same fact in words for people (the distances, the
branch, the rank).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["STATUSES", "status_codes"]

#: Every status a candidate can have, in the order the outputs list them.
STATUSES = (
    "selected",               # chosen, with its rank
    "too_close_to_own",       # within selection.min_distance_to_own_m of an own branch
    "too_close_to_selected",  # within selection.min_spacing_m of a site chosen before it
    "below_cut",              # free to choose, but ranked below the K sites
    "not_in_set",             # a joint model (coverage, pmedian, capture, npv) chose other sites
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
