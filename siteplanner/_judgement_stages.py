"""The judgement stages: how much the ranking rests on its weights.

``stability`` counts, for each site, the share of perturbed judgements (Dirichlet draws
of the weights, or refits of a learned model) that keep it in the top K; ``sensitivity``
moves each weight by ±20 % in turn. Where the run can fork, both are measured in a second
process while the clusters and catchments are drawn (:mod:`siteplanner._aside`), and
:func:`collect_judgements` joins them before the market split, as the stages would have.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from siteplanner._aside import Aside, can_fork
from siteplanner._state import RankState, need, selected_of
from siteplanner.stability import bootstrap_stability, weight_sensitivity, weight_stability

__all__ = ["collect_judgements", "sensitivity_stage", "stability_stage"]


def stability_stage(s: RankState) -> None:
    """Each site's share of perturbed judgements (weights, or learned refits) that keep it.

    Where the run can fork, the stability draws and the weight sensitivity (the next
    stage's) are measured together in a second process while the clusters and the
    catchments are drawn, and collected before the market split (:mod:`siteplanner._aside`);
    the answers are those of measuring them here, one after the other.
    """
    what = "measuring the ranking's stability"
    if (_stability_wanted(s) or _sensitivity_wanted(s)) and can_fork(what):
        s.pending["judgements"] = Aside(what, _judgements, s, fork=True)
        return
    _apply_stability(s, _stability(s))


def sensitivity_stage(s: RankState) -> None:
    """One-at-a-time ±20 % weight changes: only for the hand-set weights of a top-K run."""
    if "judgements" not in s.pending and _sensitivity_wanted(s):
        s.result["sensitivity"] = _sensitivity(s)


def _stability_wanted(s: RankState) -> bool:
    return s.study.model.stability_draws > 0 and s.study.selection.method == "top"


def _sensitivity_wanted(s: RankState) -> bool:
    return s.study.selection.method == "top" and s.study.model.kind == "weighted"


def _stability(s: RankState) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    study, sel = s.study, s.study.selection
    if not _stability_wanted(s):
        return None
    rule: dict[str, Any] = {"k": sel.top_k, "min_spacing_m": sel.min_spacing_m,
                            "min_distance_to_own_m": sel.min_distance_to_own_m}
    pool = need(s.pool)
    cands, raw, own = need(s.cands).loc[pool], need(s.raw).loc[pool], need(s.layers).own_branches
    if s.learned is not None:
        stab, report = bootstrap_stability(
            s.learned, cands, raw, own, n_draws=study.model.stability_draws, seed=study.seed,
            **rule)
    else:
        stab, report = weight_stability(
            cands, raw, study.criteria, own, n_draws=study.model.stability_draws,
            concentration=study.model.stability_concentration, seed=study.seed, **rule)
    return stab[["stability", "fragile"]], report


def _sensitivity(s: RankState) -> Any:
    # the ranking's criteria columns: the stability columns, joined or not, are not read
    return weight_sensitivity(need(s.ranked).loc[need(s.pool)], need(s.layers).own_branches,
                              s.study.criteria, s.study.selection)


def _judgements(s: RankState) -> tuple[Any, Any]:
    """Both stages' answers, measured in the second process."""
    return _stability(s), _sensitivity(s) if _sensitivity_wanted(s) else None


def _apply_stability(s: RankState, got: tuple[pd.DataFrame, dict[str, Any]] | None) -> None:
    if got is None:
        return
    stab, s.extras["stability"] = got
    s.ranked = need(s.ranked).join(stab)
    s.selected = selected_of(s.ranked)


def collect_judgements(s: RankState) -> None:
    """The stability and sensitivity measured aside, joined as the two stages would have."""
    job = s.pending.pop("judgements", None)
    if job is None:
        return
    stability, sensitivity = job.result()
    _apply_stability(s, stability)
    if sensitivity is not None:
        s.result["sensitivity"] = sensitivity
    if job.forked:
        s.extras.setdefault("second_process", {})["stability"] = job.stats
