"""A site model learned from the branches that exist: what makes a good site.

:class:`SiteModel` (scikit-learn contract) learns it. With branches that
carry a performance figure it regresses performance on the site criteria;
with only locations it fits a *presence* model: candidate cells holding a
bank of any brand against the other (background) cells. It is scored by
spatial-block cross-validation (:mod:`siteplanner._spatial_cv`), and
:func:`learned_scores` runs it end to end.

Explanations are exact and additive. The default ``method="linear"`` fits a
ridge (performance) or logistic (presence) model on standardised criteria; a
site's contribution from criterion ``j`` is ``coef_j * (x_j - mean_j) / sd_j``,
which is also the criterion's exact SHAP value for a linear model. The
contributions add up to the site's value minus the average training site's
value (``expected_value_``); for presence the value is the log-odds. The
option ``method="additive_gbm"`` fits gradient-boosted trees in which every
tree uses one criterion only (``interaction_cst``), so the model is
a sum of one-criterion curves (a GAM); each curve's value at the site,
centred on its training mean, is the contribution, again exact. Linear is the
default because a planner reads one number per criterion ("a standard
deviation more transit adds 12 % to deposits"), and because the few dozen
branches a bank has in one city do not support more.

The presence model leaves ``competition`` and ``cannibalization`` out by
default: they are kernels over the very banks being modelled, so every bank
cell would carry its own bank in them and the model would find banks by
looking at banks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from siteplanner._errors import InputError
from siteplanner._spatial_cv import _folds, _matrix, _oof, _spearman, _target, _threads_for
from siteplanner.config import Criterion
from siteplanner.layers import Layers
from siteplanner.model import score as weighted_score

__all__ = [
    "MIN_BRANCHES",
    "MIN_PRESENCE",
    "PRESENCE_FEATURES",
    "LearnedScores",
    "SiteModel",
    "global_importance",
    "learned_scores",
    "presence_labels",
]

#: Fewest branches with a performance figure a performance model accepts
#: (two per criterion).
MIN_BRANCHES = 10
#: Fewest bank cells a presence model accepts.
MIN_PRESENCE = 5
#: The criteria a presence model uses by default (see the module docstring).
PRESENCE_FEATURES = ("foot_traffic", "transit", "commercial")

Kind = Literal["performance", "presence"]


class SiteModel(BaseEstimator):
    """An explainable model of branch performance or of bank presence.

    Parameters
    ----------
    kind
        ``"performance"`` (regression of a performance figure) or
        ``"presence"`` (bank cell = 1 against background cells = 0).
    method
        ``"linear"`` (ridge / logistic on standardised criteria) or
        ``"additive_gbm"`` (boosted trees without interactions: a GAM).
    alpha
        Ridge penalty (performance) or inverse of the logistic ``C``
        (presence), on standardised criteria.
    min_samples
        Fewest branches (performance) or bank cells (presence) to fit on;
        :data:`MIN_BRANCHES` or :data:`MIN_PRESENCE` when None.
    random_state
        Seed of the boosted trees.

    Attributes
    ----------
    expected_value_
        The model's value (performance, or presence log-odds) at the average
        training site: ``decision_function(X) = expected_value_ +
        contributions(X).sum(axis=1)`` exactly.
    """

    def __init__(self, kind: Kind = "performance", *, method: Literal["linear", "additive_gbm"] = "linear",
                 alpha: float = 1.0, min_samples: int | None = None,
                 random_state: int | None = None) -> None:
        self.kind = kind
        self.method = method
        self.alpha = alpha
        self.min_samples = min_samples
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> SiteModel:
        """Fit to site criteria ``X`` and performance or 0/1 presence ``y``."""
        arr, names = _matrix(X, f"{self.kind} model")
        if self.kind == "performance":
            need = MIN_BRANCHES if self.min_samples is None else self.min_samples
            target = _target(y, "performance", need=need, unit="branch")
        elif self.kind == "presence":
            target = pd.to_numeric(pd.Series(np.asarray(y, dtype=object)), errors="coerce").to_numpy(float)
            if not np.isin(target, (0.0, 1.0)).all():
                msg = "presence must be 0 (background cell) or 1 (cell holding a bank) for every cell"
                raise InputError(msg)
            need = MIN_PRESENCE if self.min_samples is None else self.min_samples
            if target.sum() < need or target.sum() == len(target):
                msg = (f"presence model: needs at least {need} cells holding a bank and one "
                       f"without, got {int(target.sum())} of {len(target)}; widen the study area "
                       "or give branch performance")
                raise InputError(msg)
        else:
            msg = f"kind = {self.kind!r}; use 'performance' or 'presence'"
            raise InputError(msg)
        if len(target) != len(arr):
            msg = f"{self.kind} model: {len(arr)} feature rows but {len(target)} targets"
            raise InputError(msg)
        est: Any
        if self.method == "linear":
            est = (Ridge(alpha=self.alpha) if self.kind == "performance"
                   else LogisticRegression(C=1.0 / self.alpha, max_iter=1000))
        elif self.method == "additive_gbm":
            kw = {"interaction_cst": [[j] for j in range(arr.shape[1])], "learning_rate": 0.05,
                  "max_iter": 200, "max_leaf_nodes": 4, "min_samples_leaf": max(2, len(arr) // 20),
                  "early_stopping": False, "random_state": self.random_state}
            est = (HistGradientBoostingRegressor(**kw) if self.kind == "performance"
                   else HistGradientBoostingClassifier(**kw))
        else:
            msg = f"method = {self.method!r}; use 'linear' or 'additive_gbm'"
            raise InputError(msg)
        self.pipeline_ = Pipeline([("scale", StandardScaler()), ("model", est)])
        with _threads_for(len(arr)):
            self.pipeline_.fit(arr, target)
        self.n_features_in_ = arr.shape[1]
        self.feature_names_ = names or [f"x{i}" for i in range(arr.shape[1])]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        parts = self._parts(arr)
        self.part_means_ = parts.mean(axis=0)
        self.expected_value_ = float(np.mean(self._raw(arr)))
        return self

    def _raw(self, arr: np.ndarray) -> np.ndarray:
        if self.kind == "presence":
            return np.asarray(self.pipeline_.decision_function(arr), dtype=float)
        return np.asarray(self.pipeline_.predict(arr), dtype=float)

    def _parts(self, arr: np.ndarray) -> np.ndarray:
        est = self.pipeline_["model"]
        z = self.pipeline_["scale"].transform(arr)
        if self.method == "linear":
            return np.asarray(z * np.ravel(est.coef_)[None, :])
        # An additive model is f(x) = c + sum_j g_j(x_j), so g_j(x_j) - g_j(ref_j) is f at
        # the reference with only column j set to the site's value, minus f at the reference.
        ref = self.pipeline_["scale"].mean_
        n, p = arr.shape
        probe = np.repeat(ref[None, None, :], n, axis=0).repeat(p, axis=1)
        probe[:, np.arange(p), np.arange(p)] = arr
        f = self._raw(probe.reshape(n * p, p)).reshape(n, p)
        return np.asarray(f - self._raw(ref[None, :])[0])

    def decision_function(self, X: Any) -> np.ndarray:
        """The model's value: performance, or the log-odds of presence."""
        arr, _ = _matrix(X, f"{self.kind} model")
        return self._raw(arr)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted performance, or the probability that a cell holds a bank."""
        raw = self.decision_function(X)
        return raw if self.kind == "performance" else 1.0 / (1.0 + np.exp(-raw))

    def contributions(self, X: Any) -> pd.DataFrame:
        """Each criterion's additive part of ``decision_function(X) - expected_value_``."""
        arr, names = _matrix(X, f"{self.kind} model")
        parts = self._parts(arr) - self.part_means_
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(parts, columns=self.feature_names_, index=index)


def global_importance(model: SiteModel, X: pd.DataFrame, y: np.ndarray, *, n_repeats: int = 10,
                      random_state: int | None = 0) -> dict[str, dict[str, float]]:
    """Global importance per criterion, for run.json.

    ``mean_abs_contribution`` is each criterion's share of the mean absolute
    contribution over the sites in ``X``; ``permutation`` is scikit-learn's
    permutation importance (the drop in R², or in ROC AUC for presence, when
    the criterion's column is shuffled), mean over ``n_repeats`` shuffles.
    """
    contrib = model.contributions(X).abs().mean()
    share = contrib / contrib.sum() if contrib.sum() > 0 else contrib

    def scorer(est: SiteModel, Xs: Any, ys: Any) -> float:
        if est.kind == "presence":
            return float(roc_auc_score(ys, est.decision_function(Xs)))
        return float(r2_score(ys, est.predict(Xs)))

    perm = permutation_importance(model, X, y, scoring=scorer, n_repeats=n_repeats,
                                  random_state=random_state)
    return {name: {"mean_abs_contribution": round(float(share[name]), 4),
                   "permutation": round(float(perm.importances_mean[j]), 4)}
            for j, name in enumerate(X.columns)}


def presence_labels(candidates: gpd.GeoDataFrame, banks: gpd.GeoDataFrame) -> pd.Series:
    """1 for the candidate each bank falls nearest to, else 0.

    H3 cells are the Voronoi cells of their centres, so for H3 candidates this
    marks the cells that hold a bank. A bank farther than 1.5 candidate
    spacings (median nearest-neighbour distance) from every candidate lies
    outside the study's candidates and marks nothing.
    """
    xy = np.column_stack([candidates.geometry.x, candidates.geometry.y])
    out = np.zeros(len(candidates), dtype=int)
    if len(banks) and len(candidates) > 1:
        tree = cKDTree(xy)
        spacing = float(np.median(tree.query(xy, k=2)[0][:, 1]))
        bxy = np.column_stack([banks.geometry.x, banks.geometry.y])
        d, j = tree.query(bxy)
        out[j[d <= 1.5 * spacing]] = 1
    return pd.Series(out, index=candidates.index, name="bank_present")


@dataclass
class LearnedScores:
    """A learned model's scores at every candidate, and what it was fitted on.

    ``table`` is aligned to the candidates: ``score`` (the model's value
    relative to the average training site: performance units, or presence
    log-odds), ``predicted`` (performance, or the probability a cell holds a
    bank) and one ``NAME_contribution`` per criterion, which add up to
    ``score`` exactly. ``report`` holds the figures for run.json.
    """

    table: pd.DataFrame
    model: SiteModel
    report: dict[str, Any]
    X_train: pd.DataFrame
    y_train: np.ndarray
    train_geometry: gpd.GeoSeries
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def learned_scores(candidates: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers, *,
                   featurize: Callable[[gpd.GeoDataFrame], pd.DataFrame] | None = None,
                   target: Literal["auto", "performance", "presence"] = "auto",
                   performance_column: str = "performance", features: Sequence[str] | None = None,
                   method: Literal["linear", "additive_gbm"] = "linear", alpha: float = 1.0,
                   n_splits: int = 5, block_size_m: float = 500.0,
                   criteria: dict[str, Criterion] | None = None,
                   random_state: int | None = 0) -> LearnedScores:
    """Score candidates with a model learned from the branches that exist.

    Parameters
    ----------
    candidates
        The candidate points (study CRS), indexed by site id.
    raw
        The raw criteria at the candidates (one column per criterion).
    layers
        The study's layers: ``own_branches`` (with the performance column when
        there is one) and ``competitors``.
    featurize
        Computes the raw criteria at any points, e.g.
        ``lambda points: siteplanner.features.compute_criteria(points, layers, study)``;
        needed for a performance model. A branch's own kernel weight (1 at distance 0) is
        taken off its ``cannibalization``, so a branch is described as the
        candidate it once was.
    target
        ``"performance"``, ``"presence"``, or ``"auto"``: performance when
        the own branches carry ``performance_column``, else presence.
    features
        The criteria the model uses: every column of ``raw`` for performance,
        :data:`PRESENCE_FEATURES` for presence.
    method, alpha
        See :class:`SiteModel`.
    n_splits, block_size_m
        Spatial-block cross-validation.
    criteria
        The study's criteria; when given, the weighted score is cross-checked
        against the same target as a baseline.
    """
    own = layers.own_branches
    kind = _kind(target, has_performance=performance_column in own.columns)
    cols = _columns(kind, raw, features)
    if kind == "performance":
        X, y, geometry, baseline_values = _performance_data(
            own, raw, cols, featurize=featurize, column=performance_column, criteria=criteria)
    else:
        X, y, geometry, baseline_values = _presence_data(candidates, raw, layers, cols,
                                                         criteria=criteria)
    with threadpool_limits(limits=1):
        return _learn(kind, X, y, geometry, raw, cols, baseline_values, method=method, alpha=alpha,
                      n_splits=n_splits, block_size_m=block_size_m, random_state=random_state)


_Training = tuple[pd.DataFrame, np.ndarray, gpd.GeoSeries, np.ndarray | None]


def _kind(target: str, *, has_performance: bool) -> Kind:
    if target == "auto":
        return "performance" if has_performance else "presence"
    if target == "performance":
        return "performance"
    if target == "presence":
        return "presence"
    msg = f"target = {target!r}; use 'auto', 'performance' or 'presence'"
    raise InputError(msg)


def _columns(kind: Kind, raw: pd.DataFrame, features: Sequence[str] | None) -> list[str]:
    default = list(raw.columns) if kind == "performance" else [c for c in PRESENCE_FEATURES if c in raw]
    cols = list(features) if features is not None else default
    unknown = [c for c in cols if c not in raw.columns]
    if unknown:
        msg = f"learned model: unknown criterion {unknown[0]!r}; the criteria are {', '.join(raw.columns)}"
        raise InputError(msg)
    return cols


def _performance_data(own: gpd.GeoDataFrame, raw: pd.DataFrame, cols: list[str], *,
                      featurize: Callable[[gpd.GeoDataFrame], pd.DataFrame] | None, column: str,
                      criteria: dict[str, Criterion] | None) -> _Training:
    """Criteria, performance and places of the own branches, and the weighted score there."""
    if column not in own.columns:
        have = ", ".join(c for c in own.columns if c != "geometry")
        msg = (f"own_branches: no {column!r} column (columns: {have}); add each "
               "branch's performance (e.g. deposits or transactions) or use the presence model")
        raise InputError(msg)
    y = _target(own[column], f"own_branches column {column!r}", need=MIN_BRANCHES, unit="branch")
    if featurize is None:
        msg = "learned_scores: a performance model needs featurize= to compute criteria at branches"
        raise InputError(msg)
    full = featurize(own)
    if "cannibalization" in full:
        full = full.assign(cannibalization=np.maximum(full["cannibalization"] - 1.0, 0.0))
    baseline_values = None
    if criteria is not None:
        both = pd.concat([raw, full[raw.columns]], ignore_index=True)
        baseline_values = weighted_score(both, criteria)["score"].to_numpy()[len(raw):]
    return full[cols], y, own.geometry, baseline_values


def _presence_data(candidates: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers,
                   cols: list[str], *, criteria: dict[str, Criterion] | None) -> _Training:
    """Criteria and bank presence at every candidate cell, and the weighted score there."""
    own = layers.own_branches
    banks = pd.concat([own.geometry, layers.competitors.geometry], ignore_index=True)
    labels = presence_labels(candidates, gpd.GeoDataFrame(geometry=banks, crs=layers.crs))
    baseline_values = None
    if criteria is not None:
        baseline_values = weighted_score(raw, criteria)["score"].to_numpy()
    return raw[cols], labels.to_numpy(dtype=float), candidates.geometry, baseline_values


def _learn(kind: Kind, X: pd.DataFrame, y: np.ndarray, geometry: gpd.GeoSeries, raw: pd.DataFrame,
           cols: list[str], baseline_values: np.ndarray | None, *, method: Literal["linear", "additive_gbm"],
           alpha: float, n_splits: int, block_size_m: float, random_state: int | None) -> LearnedScores:
    model = SiteModel(kind, method=method, alpha=alpha, random_state=random_state).fit(X, y)
    folds, scheme = _folds(geometry, "block", n_splits=n_splits, block_size_m=block_size_m,
                           random_state=random_state)
    arr = X.to_numpy(dtype=float)
    if kind == "performance":
        oof = _oof(model, arr, y, folds)
        metrics: dict[str, Any] = {"r2": round(float(r2_score(y, oof)), 4),
                                   "spearman": round(_spearman(oof, y), 4)}
        base = {"r2_mean_only": 0.0}
        if baseline_values is not None:
            base["spearman_weighted_score"] = round(_spearman(baseline_values, y), 4)
    else:
        oof = _oof(model, arr, y, folds, predict=lambda m, a: m.decision_function(a))
        ok = np.isfinite(oof)
        if len(np.unique(y[ok])) < 2:
            metrics = {"roc_auc": None, "average_precision": None, "cells_tested": int(ok.sum()),
                       "note": "the bank cells fill too few blocks to test on held-out banks; "
                               "use smaller blocks (block_size_m)"}
        else:
            metrics = {"roc_auc": round(float(roc_auc_score(y[ok], oof[ok])), 4),
                       "average_precision": round(float(average_precision_score(y[ok], oof[ok])), 4),
                       "cells_tested": int(ok.sum())}
        base = {"roc_auc_random": 0.5, "average_precision_random": round(float(y.mean()), 4)}
        if baseline_values is not None:
            base["roc_auc_weighted_score"] = round(float(roc_auc_score(y, baseline_values)), 4)

    parts = model.contributions(raw[cols])
    table = pd.DataFrame(index=raw.index)
    table["score"] = parts.sum(axis=1)
    table["predicted"] = model.predict(raw[cols])
    for name in raw.columns:
        table[f"{name}_contribution"] = parts[name] if name in parts else 0.0
    report = {
        "kind": kind, "method": method, "features": cols, "n_train": len(y),
        **({"n_bank_cells": int(y.sum())} if kind == "presence" else {}),
        "expected_value": round(model.expected_value_, 6),
        "value": "performance" if kind == "performance" else "log-odds that a cell holds a bank",
        "cv": {**scheme, "model": metrics, "baseline": base},
        "importance": global_importance(model, X, y, random_state=random_state),
    }
    if method == "linear":
        coef = np.ravel(model.pipeline_["model"].coef_)
        report["coefficients_per_sd"] = {c: round(float(v), 6) for c, v in zip(cols, coef, strict=True)}
    return LearnedScores(table, model, report, X, y, geometry, folds)
