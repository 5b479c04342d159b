"""The one ranking path for changed weights: raw criteria -> scores -> top K with spacing.

A weighted top-K run can be asked "what if the weights were different?"
without computing any feature again: the raw criterion values, their
directions and the selection rule are fixed; only the weights move. This
module is that question's single answer in Python. The report's weight
sensitivity (:func:`siteplanner.stability.weight_sensitivity`),
:meth:`siteplanner.pipeline.RankResult.rescore` and the what-if panel of
``map.html`` (whose JavaScript mirrors :func:`weighted_scores` and
:func:`top_k` operation for operation) all use it, so the report, the
notebook and the map cannot disagree.

The arithmetic is that of :func:`siteplanner.model.score` and
:func:`siteplanner.selection.select_top`, in the same order of floating-point
operations:

- each criterion is min-max normalised over the candidates,
  ``n = (x - lo) / (hi - lo)`` (0 for a constant criterion);
- weights are divided by their sum ``t`` (summed in criterion order);
- ``score = 0 + s_1 (w_1 / t) n_1 + s_2 (w_2 / t) n_2 + ...``, added in
  criterion order, with ``s = +1`` for a benefit and ``-1`` for a cost;
- candidates are taken by score, ties broken by site id; one within
  ``min_distance_to_own_m`` of an own branch or within ``min_spacing_m``
  (inclusive) of a site already chosen is skipped, until K are chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from siteplanner._errors import InputError
from siteplanner.config import Criterion, SelectionSettings

__all__ = ["RankInputs", "Rescored", "rank_inputs", "rescore", "rescored_sites", "top_k",
           "weighted_scores"]


@dataclass(frozen=True)
class RankInputs:
    """What a re-ranking needs, fixed for a run: everything but the weights.

    Rows are the candidates in ``site_ids`` order (the run's own order).
    ``tie_order`` is each row's position when the rows are sorted by site id.
    """

    names: tuple[str, ...]
    signs: np.ndarray
    raw: np.ndarray
    site_ids: np.ndarray
    tie_order: np.ndarray
    xy: np.ndarray
    near_own: np.ndarray
    k: int
    min_spacing_m: float
    min_distance_to_own_m: float

    @property
    def normalised(self) -> np.ndarray:
        """The min-max normalised criteria (rows x criteria), as :func:`siteplanner.model.normalise`."""
        lo, hi = self.raw.min(axis=0), self.raw.max(axis=0)
        span = hi - lo
        ok = np.isfinite(span) & (span > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            n = (self.raw - lo) / np.where(ok, span, 1.0)
        return np.where(ok, n, 0.0)


@dataclass(frozen=True)
class Rescored:
    """Scores and the chosen sites for one set of weights.

    ``scores`` are per candidate (the :class:`RankInputs` row order);
    ``chosen`` the row numbers of the chosen sites in rank order.
    """

    weights: dict[str, float]
    scores: np.ndarray
    chosen: np.ndarray
    site_ids: list[str]


def rank_inputs(candidates: gpd.GeoDataFrame, own_branches: gpd.GeoDataFrame,
                criteria: Mapping[str, Criterion], selection: SelectionSettings) -> RankInputs:
    """The fixed part of a re-ranking, from a run's candidates (raw criteria, points, ids).

    ``candidates`` is the run's candidate table (one column per criterion,
    point geometry in the study CRS, indexed by site id, as the pipeline's
    ``RankResult.candidates``).
    """
    names = tuple(n for n in criteria if n in candidates)
    if not names:
        msg = f"candidates have none of the criteria {list(criteria)}; pass a run's candidate table"
        raise InputError(msg)
    xy = np.column_stack([candidates.geometry.x.to_numpy(), candidates.geometry.y.to_numpy()])
    near_own = np.zeros(len(candidates), dtype=bool)
    if len(own_branches):
        own_xy = np.column_stack([own_branches.geometry.x, own_branches.geometry.y])
        near_own = cKDTree(own_xy).query(xy)[0] < selection.min_distance_to_own_m
    # select_top breaks ties by the table's index (the site id) as text
    ties = candidates.index.astype(str).to_numpy()
    order = np.argsort(ties, kind="stable")
    tie_order = np.empty(len(order), dtype=np.int64)
    tie_order[order] = np.arange(len(order))
    return RankInputs(
        names=names,
        signs=np.array([1.0 if criteria[n].direction == "benefit" else -1.0 for n in names]),
        raw=candidates[list(names)].to_numpy(dtype=float),
        site_ids=candidates["site_id"].astype(str).to_numpy(), tie_order=tie_order, xy=xy,
        near_own=near_own, k=selection.top_k, min_spacing_m=float(selection.min_spacing_m),
        min_distance_to_own_m=float(selection.min_distance_to_own_m))


def _weight_vector(inputs: RankInputs, weights: Mapping[str, float]) -> np.ndarray:
    unknown = sorted(set(weights) - set(inputs.names))
    if unknown:
        msg = f"weights for unknown criteria {unknown}; use some of {list(inputs.names)}"
        raise InputError(msg)
    missing = [n for n in inputs.names if n not in weights]
    if missing:
        msg = f"weights: no weight for {missing}; give one per criterion {list(inputs.names)}"
        raise InputError(msg)
    w = np.array([float(weights[n]) for n in inputs.names])
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        msg = f"weights {dict(weights)}: give weights >= 0 with at least one > 0"
        raise InputError(msg)
    return w


def weighted_scores(inputs: RankInputs, weights: Mapping[str, float], *,
                    normalised: np.ndarray | None = None) -> np.ndarray:
    """Each candidate's score under ``weights`` (one per criterion, any scale)."""
    f = _factors(inputs, weights)
    n = inputs.normalised if normalised is None else normalised
    s = np.zeros(len(n))
    for c in range(len(f)):  # criterion by criterion: the page adds in the same order
        s = s + f[c] * n[:, c]
    return s


def _factors(inputs: RankInputs, weights: Mapping[str, float]) -> list[float]:
    """``sign * (w / total)`` per criterion, as model.score computes them."""
    w = _weight_vector(inputs, weights)
    total = 0.0
    for v in w:  # a Python sum in criterion order, as model.score and the page do
        total += float(v)
    return [float(inputs.signs[c] * (float(w[c]) / total)) for c in range(len(w))]


def top_k(inputs: RankInputs, scores: np.ndarray) -> np.ndarray:
    """Row numbers of the chosen sites in rank order, by the study's spacing rule."""
    order = np.lexsort((inputs.tie_order, -scores))
    blocked = inputs.near_own.copy()
    tree = cKDTree(inputs.xy) if inputs.min_spacing_m > 0 else None
    chosen: list[int] = []
    for i in order:  # stops after K sites; each pick blocks its neighbours at once
        if len(chosen) == inputs.k:
            break
        if blocked[i]:
            continue
        chosen.append(int(i))
        blocked[i] = True
        if tree is not None:
            blocked[tree.query_ball_point(inputs.xy[i], inputs.min_spacing_m)] = True
    return np.array(chosen, dtype=np.int64)


def rescore(inputs: RankInputs, weights: Mapping[str, float], *,
            normalised: np.ndarray | None = None) -> Rescored:
    """Scores and top K for ``weights``: :func:`weighted_scores` then :func:`top_k`."""
    s = weighted_scores(inputs, weights, normalised=normalised)
    chosen = top_k(inputs, s)
    return Rescored({n: float(weights[n]) for n in inputs.names}, s, chosen,
                    [str(x) for x in inputs.site_ids[chosen]])


def rescored_sites(candidates: gpd.GeoDataFrame, inputs: RankInputs,
                   result: Rescored) -> gpd.GeoDataFrame:
    """The chosen sites of ``result`` as rows of ``candidates``, in rank order.

    Each row carries the new ``score``, each ``NAME_contribution`` (they sum
    to the score), the new ``rank`` and ``previous_rank`` (the run's rank;
    missing for a site the run did not choose).
    """
    rows = candidates.iloc[result.chosen].copy()
    if "rank" in rows:
        rows["previous_rank"] = rows["rank"].astype("Int64")
    n = inputs.normalised[result.chosen]
    for c, f in enumerate(_factors(inputs, result.weights)):
        rows[f"{inputs.names[c]}_contribution"] = f * n[:, c]
    rows["score"] = result.scores[result.chosen]
    rows["rank"] = pd.array(np.arange(1, len(rows) + 1), dtype="Int64")
    return rows
