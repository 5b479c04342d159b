"""Rank stability: would a site still be chosen if the judgement behind the score moved a little?

Weights are judgements, and a learned model is an estimate; both could
reasonably be somewhat different. :func:`weight_stability` draws many weight
vectors from a Dirichlet distribution centred on the study's weights,

    w ~ Dirichlet(concentration * w0),   E[w] = w0,
    sd(w_c) = sqrt(w0_c (1 - w0_c) / (concentration + 1)),

so with the default concentration 50 a weight of 0.35 varies by about ±0.07
and one of 0.10 by about ±0.04. Criteria with weight 0 stay at 0. Each draw
re-scores the candidates (the same min-max criteria as
:func:`siteplanner.model.score`) and re-selects with the study's spacing rule
(:func:`siteplanner.selection.select_top`). A site's ``stability`` is the
share of draws in which it is selected.

:func:`bootstrap_stability` does the same for a learned model: each draw
refits it on a bootstrap resample of its training sites (banks and background
cells resampled separately for a presence model, so every refit sees banks).

:func:`weight_sensitivity` is the plain one-at-a-time check the report
shows for hand-set weights: each weight lowered and raised by 20 % in turn.

A selected site is ``fragile`` when its stability is below
:data:`FRAGILE_BELOW` (0.5): in most plausible variations of the judgement it
would not have been chosen, so it deserves a second look before a lease.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits

from siteplanner._errors import InputError
from siteplanner.config import Criterion, SelectionSettings
from siteplanner.model import normalise
from siteplanner.rescore import RankInputs, rank_inputs, rescore, top_k

if TYPE_CHECKING:  # scikit-learn loads only when a learned model is refitted
    from siteplanner.learned import LearnedScores

log = logging.getLogger(__name__)

__all__ = [
    "FRAGILE_BELOW",
    "SENSITIVITY_CHANGE",
    "Sensitivity",
    "bootstrap_stability",
    "weight_draws",
    "weight_sensitivity",
    "weight_stability",
]

#: A selected site chosen in fewer than this share of the draws is flagged fragile.
FRAGILE_BELOW = 0.5
#: The one-at-a-time weight change of :func:`weight_sensitivity` (a share: 0.2 = 20 %).
SENSITIVITY_CHANGE = 0.2


def weight_draws(weights: Mapping[str, float], *, n_draws: int = 200, concentration: float = 50.0,
                 seed: int | None = 0) -> pd.DataFrame:
    """Weight vectors drawn from a Dirichlet centred on ``weights`` (one row per draw).

    Rows sum to 1; criteria with weight 0 are 0 in every draw.
    """
    names = list(weights)
    w0 = np.array([float(weights[n]) for n in names])
    if (w0 < 0).any() or not np.isfinite(w0).all() or w0.sum() <= 0:
        msg = f"weights {dict(weights)}: give weights >= 0 with at least one > 0"
        raise InputError(msg)
    if not concentration > 0:
        msg = f"concentration = {concentration!r}; use a number > 0 (larger = smaller perturbations)"
        raise InputError(msg)
    if n_draws < 1:
        msg = f"n_draws = {n_draws!r}; use at least 1 draw (a few hundred for stable shares)"
        raise InputError(msg)
    w0 = w0 / w0.sum()
    on = w0 > 0
    out = np.zeros((n_draws, len(names)))
    if on.sum() == 1:
        out[:, on] = 1.0
    else:
        out[:, on] = np.random.default_rng(seed).dirichlet(concentration * w0[on], size=n_draws)
    return pd.DataFrame(out, columns=names)


def _select_counts(scores: np.ndarray, fixed: RankInputs) -> np.ndarray:
    """How often each candidate is selected over the columns (draws) of ``scores``.

    The spacing rule takes candidates in score order and stops at the K-th
    site, so each draw runs it on the best-scoring prefix only (every
    candidate scoring at least the prefix's last): when K sites are chosen
    within the prefix, the full run would choose exactly them. A prefix that
    runs out first is widened until it does, or holds every candidate. The
    rule is :func:`siteplanner.rescore.top_k` (the arithmetic of
    :func:`siteplanner.selection.select_top`), on points, own-branch blocks
    and the site-id tie order found once (:func:`_spacing_rule`) for all the draws.
    """
    hits = np.zeros(len(fixed.site_ids))
    for d in range(scores.shape[1]):  # one pass of the spacing rule per draw
        if d % 10 == 0 or d == scores.shape[1] - 1:
            log.info("stability: draw %d of %d", d + 1, scores.shape[1],
                     extra={"progress": (d + 1, scores.shape[1])})
        hits[_chosen_in_prefix(scores[:, d], fixed)] += 1
    return hits


def _spacing_rule(candidates: gpd.GeoDataFrame, own_branches: gpd.GeoDataFrame, *, k: int,
                  min_spacing_m: float, min_distance_to_own_m: float) -> RankInputs:
    """What the spacing rule needs besides the scores, as :func:`siteplanner.rescore.rank_inputs`
    finds it: the points, which lie too close to an own branch, and the site-id tie order."""
    xy = np.column_stack([candidates.geometry.x.to_numpy(), candidates.geometry.y.to_numpy()])
    near_own = np.zeros(len(candidates), dtype=bool)
    if len(own_branches):
        own_xy = np.column_stack([own_branches.geometry.x, own_branches.geometry.y])
        near_own = cKDTree(own_xy).query(xy)[0] < min_distance_to_own_m
    ids = candidates.index.astype(str).to_numpy()  # select_top breaks ties by the id as text
    tie_order = np.empty(len(ids), dtype=np.int64)
    tie_order[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    return RankInputs(names=(), signs=np.zeros(0), raw=np.zeros((len(ids), 0)), site_ids=ids,
                      tie_order=tie_order, xy=xy, near_own=near_own, k=k,
                      min_spacing_m=float(min_spacing_m),
                      min_distance_to_own_m=float(min_distance_to_own_m))


#: The first prefix a draw's spacing rule runs on: this many candidates per site asked for,
#: and at least PREFIX_MIN (below that the prefix saves nothing worth the bookkeeping).
PREFIX_PER_SITE = 64
PREFIX_MIN = 2_000


def _chosen_in_prefix(score: np.ndarray, fixed: RankInputs) -> np.ndarray:
    """Positions of the sites :func:`select_top` chooses for ``score``, found on a prefix."""
    n, k = len(score), fixed.k
    m = min(n, max(PREFIX_PER_SITE * k, PREFIX_MIN))
    while True:
        if m < n:
            cut = np.partition(score, n - m)[n - m]
            pos = np.flatnonzero(score >= cut)  # ties at the cut all come in: a true prefix
        else:
            pos = np.arange(n)
        prefix = replace(fixed, raw=fixed.raw[pos], site_ids=fixed.site_ids[pos],
                         tie_order=fixed.tie_order[pos], xy=fixed.xy[pos],
                         near_own=fixed.near_own[pos])
        chosen = top_k(prefix, score[pos])
        if len(chosen) >= k or len(pos) == n:
            return pos[chosen]
        m = min(n, m * 4)


def _result(hits: np.ndarray, n: int, base: np.ndarray, index: pd.Index,
            extra: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    stability = pd.Series(hits / n, index=index, name="stability")
    fragile = pd.Series(base & (stability.to_numpy() < FRAGILE_BELOW), index=index, name="fragile")
    sel = stability[base]
    summary = {
        **extra, "n_draws": n, "fragile_below": FRAGILE_BELOW,
        "selected_mean_stability": round(float(sel.mean()), 4) if len(sel) else None,
        "n_fragile": int(fragile.sum()),
        "selected": {str(i): round(float(v), 4) for i, v in sel.sort_values(ascending=False).items()},
    }
    return pd.concat([stability, fragile], axis=1), summary


def weight_stability(candidates: gpd.GeoDataFrame, raw: pd.DataFrame, criteria: dict[str, Criterion],
                     own_branches: gpd.GeoDataFrame, *, k: int, min_spacing_m: float,
                     min_distance_to_own_m: float, weights: Mapping[str, float] | None = None,
                     n_draws: int = 200, concentration: float = 50.0,
                     seed: int | None = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each site's probability of being selected when the weights are perturbed.

    Parameters
    ----------
    candidates
        Candidate points (study CRS), indexed like ``raw``.
    raw
        Raw criterion values, one column per criterion.
    criteria
        The study's criteria (direction; weight unless ``weights`` is given).
    own_branches
        The brand's branches (for the distance rule), with a ``label``.
    k, min_spacing_m, min_distance_to_own_m
        The study's selection rule.
    weights
        The chosen weights, e.g. from AHP; the criteria's weights when None.
    n_draws, concentration, seed
        The Monte Carlo draws (see the module docstring).

    Returns
    -------
    (pandas.DataFrame, dict)
        ``stability`` (0-1) and ``fragile`` (selected with the chosen weights
        and stability < :data:`FRAGILE_BELOW`) on the candidates' index, and
        a summary for run.json.
    """
    names = list(criteria)
    w0 = weights if weights is not None else {n: criteria[n].weight for n in names}
    draws = weight_draws({n: w0[n] for n in names}, n_draws=n_draws,
                         concentration=concentration, seed=seed)
    sign = np.array([1.0 if criteria[n].direction == "benefit" else -1.0 for n in names])
    norm = np.column_stack([normalise(raw[n]).to_numpy() for n in names]) * sign
    chosen = np.array([w0[n] for n in names], dtype=float)
    # one BLAS thread: a product with a handful of criteria is memory-bound, and a second
    # thread only spins (0.15 CPU s at 107k x 200 draws on one, 1.0-1.6 on two; the same
    # bits, as the threads split the rows, not the sums)
    with threadpool_limits(limits=1):
        base_scores = norm @ (chosen / chosen.sum())
        all_scores = norm @ draws.to_numpy().T
    fixed = _spacing_rule(candidates, own_branches, k=k, min_spacing_m=min_spacing_m,
                          min_distance_to_own_m=min_distance_to_own_m)
    base = _select_counts(base_scores[:, None], fixed) > 0
    hits = _select_counts(all_scores, fixed)
    return _result(hits, n_draws, base, raw.index,
                   {"perturbation": "Dirichlet weights", "concentration": concentration, "seed": seed})


def bootstrap_stability(learned: LearnedScores, candidates: gpd.GeoDataFrame, raw: pd.DataFrame,
                        own_branches: gpd.GeoDataFrame, *, k: int, min_spacing_m: float,
                        min_distance_to_own_m: float, n_draws: int = 100,
                        seed: int | None = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each site's probability of being selected when the learned model is refitted on resamples.

    Takes what :func:`siteplanner.learned.learned_scores` returned; the other
    parameters and the result are as in :func:`weight_stability`.
    """
    from sklearn.base import clone

    model = learned.model
    X, y = learned.X_train.to_numpy(dtype=float), learned.y_train
    cols = list(learned.X_train.columns)
    Xc = raw[cols].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == 1), np.flatnonzero(y == 0)] if model.kind == "presence" \
        else [np.arange(len(y))]
    scores = np.empty((len(raw), n_draws))
    with threadpool_limits(limits=1):
        for b in range(n_draws):  # one refit per bootstrap draw
            take = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
            scores[:, b] = clone(model).fit(X[take], y[take]).decision_function(Xc)
    fixed = _spacing_rule(candidates, own_branches, k=k, min_spacing_m=min_spacing_m,
                          min_distance_to_own_m=min_distance_to_own_m)
    base = _select_counts(learned.table["score"].to_numpy()[:, None], fixed) > 0
    hits = _select_counts(scores, fixed)
    return _result(hits, n_draws, base, raw.index,
                   {"perturbation": "bootstrap refits of the learned model", "seed": seed})


@dataclass(frozen=True)
class Sensitivity:
    """The result of :func:`weight_sensitivity`.

    ``scenarios`` has one row per scenario: ``criterion``, ``change`` (-0.2 or
    +0.2), ``weight``, ``kept`` (how many of the base top K are still chosen),
    ``same_rank`` and ``entered`` (the site ids that came in); ``kept_share``
    is, per base site id, the share of scenarios that still choose it.
    """

    change: float
    scenarios: pd.DataFrame
    kept_share: pd.Series

    def to_record(self) -> dict[str, Any]:
        """The JSON form kept in run.json, so ``siteplanner report`` needs no re-run."""
        return {"change": self.change,
                "scenarios": self.scenarios.to_dict("records"),
                "kept_share": {str(k): round(float(v), 6) for k, v in self.kept_share.items()}}

    @classmethod
    def from_record(cls, doc: Mapping[str, Any]) -> Sensitivity:
        """The inverse of :meth:`to_record`."""
        scen = pd.DataFrame(list(doc.get("scenarios") or []),
                            columns=["criterion", "change", "weight", "kept", "same_rank", "entered"])
        kept = pd.Series(dict(doc.get("kept_share") or {}), dtype=float, name="kept_share")
        return cls(float(doc.get("change", SENSITIVITY_CHANGE)), scen, kept)


def weight_sensitivity(candidates: gpd.GeoDataFrame, own_branches: gpd.GeoDataFrame,
                       criteria: Mapping[str, Criterion], selection: SelectionSettings, *,
                       change: float = SENSITIVITY_CHANGE) -> Sensitivity:
    """One-at-a-time weight sensitivity of the top-K selection.

    Each criterion's weight is lowered and raised by ``change`` (a share,
    0.2 = 20 %) while the others stay; the candidates are scored and chosen
    again through :mod:`siteplanner.rescore`, the ranking path that
    ``RankResult.rescore`` and the map's what-if panel use too.
    """
    inputs = rank_inputs(candidates, own_branches, criteria, selection)
    names = inputs.names
    norm = inputs.normalised
    base = candidates[candidates["rank"].notna()].sort_values("rank")
    base_rank = dict(zip(base["site_id"].astype(str), base["rank"].astype(int), strict=True))
    rows = []
    kept_count = pd.Series(0, index=list(base_rank), dtype=int)
    for name in names:  # 2 x criteria scenarios: a handful, each a vectorised re-score
        for sign in (-1.0, 1.0):
            weights = {n: criteria[n].weight for n in names}
            weights[name] = criteria[name].weight * (1 + sign * change)
            if sum(weights.values()) <= 0:
                continue
            chosen = rescore(inputs, weights, normalised=norm).site_ids
            new_rank = {sid: r for r, sid in enumerate(chosen, start=1)}
            kept = [sid for sid in base_rank if sid in new_rank]
            kept_count[kept] += 1
            rows.append({
                "criterion": name, "change": sign * change, "weight": weights[name],
                "kept": len(kept), "same_rank": sum(new_rank[sid] == base_rank[sid] for sid in kept),
                "entered": [sid for sid in new_rank if sid not in base_rank],
            })
    n = max(len(rows), 1)
    return Sensitivity(change, pd.DataFrame(rows), (kept_count / n).rename("kept_share"))
