"""Criterion weights from pairwise judgements: Saaty's Analytic Hierarchy Process.

A planner who finds "foot traffic matters three times as much as transit"
easier to say than "0.35 and 0.20" writes the judgements in the study::

    [ahp]
    foot_traffic.transit = 3        # foot traffic is 3x as important as transit
    foot_traffic.commercial = 2
    transit.commercial = "1/2"      # fractions may be written as strings

Every pair among the criteria named must be judged once (or twice, if the two
values are reciprocal). The judgements fill a positive reciprocal matrix
``A`` (``a_ij = 1 / a_ji``); the weights are its principal (Perron)
eigenvector, normalised to sum to 1, and ``lambda_max`` its eigenvalue.
Saaty's consistency index ``CI = (lambda_max - n) / (n - 1)`` divided by the
random index ``RI(n)`` of random reciprocal matrices gives the consistency
ratio ``CR``; above 0.1 the judgements contradict each other too much to
trust, and the comparison that disagrees most with the derived weights
(largest ``|log(a_ij * w_j / w_i)|``) is named so the planner can revisit it.
Criteria that appear in no judgement get weight 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from siteplanner._errors import ConfigError, InputError

__all__ = ["MAX_CR", "RANDOM_INDEX", "AHPResult", "ahp_matrix", "ahp_weights", "weights_from_judgements"]

#: Saaty's random consistency index by matrix size (Saaty, *The Analytic
#: Hierarchy Process*, 1980): the mean CI of random reciprocal matrices.
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41,
                9: 1.45, 10: 1.49}

#: Saaty's threshold: judgements with a consistency ratio above this are rejected.
MAX_CR = 0.1

_RECIPROCAL_TOL = 1e-6


@dataclass(frozen=True)
class AHPResult:
    """Weights derived from a pairwise comparison matrix, with its consistency.

    ``most_inconsistent`` is ``(a, b, given, implied)``: the judgement
    ``a.b = given`` that strays furthest from what the weights imply
    (``w_a / w_b``); None for fewer than three criteria.
    """

    weights: dict[str, float]
    matrix: pd.DataFrame
    lambda_max: float
    consistency_index: float
    consistency_ratio: float
    most_inconsistent: tuple[str, str, float, float] | None

    def to_dict(self) -> dict[str, Any]:
        """Plain figures for run.json."""
        worst = self.most_inconsistent
        return {
            "weights": {k: round(v, 6) for k, v in self.weights.items()},
            "lambda_max": round(self.lambda_max, 6),
            "consistency_index": round(self.consistency_index, 6),
            "consistency_ratio": round(self.consistency_ratio, 6),
            "most_inconsistent": None if worst is None else {
                "comparison": f"{worst[0]}.{worst[1]}", "given": worst[2],
                "implied": round(worst[3], 4)},
        }


def _value(v: Any, what: str) -> float:
    if isinstance(v, str):
        try:
            x = float(Fraction(v.strip()))
        except (ValueError, ZeroDivisionError):
            msg = f"{what} = {v!r} is not a number; write a judgement from 1/9 to 9, e.g. 3 or \"1/3\""
            raise ConfigError(msg) from None
    elif isinstance(v, bool) or not isinstance(v, int | float):
        msg = f"{what} = {v!r} is not a number; write a judgement from 1/9 to 9, e.g. 3 or \"1/3\""
        raise ConfigError(msg)
    else:
        x = float(v)
    if not math.isfinite(x) or x <= 0:
        msg = f"{what} = {v!r}; a judgement must be a positive ratio (1/9 to 9 on Saaty's scale)"
        raise ConfigError(msg)
    return x


def _flatten(comparisons: Mapping[str, Any], where: str) -> list[tuple[str, str, Any]]:
    """``{"a": {"b": 3}}`` (TOML dotted keys) or ``{"a.b": 3}`` as (a, b, value) triples."""
    out = []
    for key, val in comparisons.items():
        if isinstance(val, Mapping):
            out += [(str(key), str(k2), v2) for k2, v2 in val.items()]
            continue
        a, sep, b = str(key).partition(".")
        if not sep or not a or not b or "." in b:
            msg = (f"{where}.{key}: write a judgement as A.B = N (A is N times as important as B), "
                   "e.g. foot_traffic.transit = 3")
            raise ConfigError(msg)
        out.append((a, b, val))
    return out


def ahp_matrix(comparisons: Mapping[str, Any], criteria: Sequence[str], *,
               where: str = "ahp") -> pd.DataFrame:
    """Build the reciprocal comparison matrix from a study's ``[ahp]`` table.

    Parameters
    ----------
    comparisons
        ``A.B = N`` judgements, nested (as TOML parses dotted keys) or flat.
    criteria
        The known criterion names; judgements may name any subset of them.
    where
        Prefix for error messages (the study file and table).

    Returns
    -------
    pandas.DataFrame
        The square matrix over the criteria named, in ``criteria`` order.
    """
    triples = _flatten(comparisons, where)
    known = list(criteria)
    for a, b, _ in triples:
        for name in (a, b):
            if name not in known:
                msg = f"{where}.{a}.{b}: unknown criterion {name!r}; the criteria are {', '.join(known)}"
                raise ConfigError(msg)
        if a == b:
            msg = f"{where}.{a}.{b}: a criterion is not compared with itself; remove this line"
            raise ConfigError(msg)
    names = [c for c in known if any(c in (a, b) for a, b, _ in triples)]
    if len(names) < 2:
        msg = f"{where}: give at least one judgement between two criteria, e.g. foot_traffic.transit = 3"
        raise ConfigError(msg)
    pos = {n: i for i, n in enumerate(names)}
    m = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(m, 1.0)
    for a, b, raw in triples:
        x = _value(raw, f"{where}.{a}.{b}")
        i, j = pos[a], pos[b]
        if not np.isnan(m[i, j]) and abs(m[i, j] * (1.0 / x) - 1.0) > _RECIPROCAL_TOL:
            msg = (f"{where}: {a}.{b} = {raw!r} contradicts {b}.{a} = {1.0 / m[i, j]:.4g} "
                   f"(the two must multiply to 1); keep only one of them")
            raise ConfigError(msg)
        m[i, j], m[j, i] = x, 1.0 / x
    missing = np.argwhere(np.isnan(m))
    if len(missing):
        i, j = missing[0]
        msg = (f"{where}: no judgement between {names[i]} and {names[j]}; add "
               f"{names[i]}.{names[j]} = N (how many times as important {names[i]} is, 1/9 to 9)")
        raise ConfigError(msg)
    return pd.DataFrame(m, index=names, columns=names)


def ahp_weights(matrix: pd.DataFrame | np.ndarray, names: Sequence[str] | None = None, *,
                max_cr: float | None = MAX_CR, where: str = "AHP matrix") -> AHPResult:
    """Principal-eigenvector weights and Saaty's consistency ratio of a comparison matrix.

    Parameters
    ----------
    matrix
        A positive reciprocal matrix (``a_ij * a_ji = 1``, unit diagonal).
    names
        Criterion names when ``matrix`` is an array.
    max_cr
        Reject a matrix whose consistency ratio exceeds this; None accepts any.
    where
        Prefix for error messages.

    Raises
    ------
    InputError
        If the matrix is not square, positive and reciprocal, or is too
        inconsistent (the message names the most inconsistent judgement).
    """
    if isinstance(matrix, pd.DataFrame):
        labels = [str(c) for c in matrix.columns]
        a = matrix.to_numpy(dtype=float)
    else:
        a = np.asarray(matrix, dtype=float)
        labels = [str(n) for n in names] if names is not None else [f"c{i}" for i in range(len(a))]
    _check_reciprocal(a, labels, where)
    n = a.shape[0]
    vals, vecs = np.linalg.eig(a)
    k = int(np.argmax(vals.real))
    lam = float(vals[k].real)
    w = np.abs(vecs[:, k].real)
    w = w / w.sum()
    ci = max(lam - n, 0.0) / (n - 1) if n > 1 else 0.0
    ri = RANDOM_INDEX.get(n, RANDOM_INDEX[10])
    cr = ci / ri if ri > 0 else 0.0
    worst: tuple[str, str, float, float] | None = None
    if n >= 3:
        err = np.abs(np.log(a * w[None, :] / w[:, None]))
        iu = np.triu_indices(n, 1)
        t = int(np.argmax(err[iu]))
        i, j = int(iu[0][t]), int(iu[1][t])
        worst = (labels[i], labels[j], float(a[i, j]), float(w[i] / w[j]))
    if max_cr is not None and cr > max_cr and worst is not None:
        msg = (f"{where}: judgements are inconsistent: consistency ratio {cr:.3f} > {max_cr}; the most "
               f"inconsistent is {worst[0]}.{worst[1]} = {_fmt(worst[2])} while the other judgements "
               f"imply about {_fmt(worst[3])}; revise that comparison")
        raise InputError(msg)
    return AHPResult(
        weights={lab: float(x) for lab, x in zip(labels, w, strict=True)},
        matrix=pd.DataFrame(a, index=labels, columns=labels),
        lambda_max=lam, consistency_index=float(ci), consistency_ratio=float(cr),
        most_inconsistent=worst,
    )


def _check_reciprocal(a: np.ndarray, labels: list[str], where: str) -> None:
    """Refuse a matrix that is not square, positive and reciprocal, naming the entry."""
    n = a.shape[0] if a.ndim else 0
    if a.ndim != 2 or a.shape != (n, n) or len(labels) != n or n < 1:
        msg = (f"{where} has shape {a.shape} for {len(labels)} criteria; "
               "give a square matrix, one row per criterion")
        raise InputError(msg)
    if not np.isfinite(a).all() or (a <= 0).any():
        i, j = np.argwhere(~np.isfinite(a) | (a <= 0))[0]
        msg = f"{where}: a[{labels[i]}, {labels[j]}] = {a[i, j]}; every entry must be a positive ratio"
        raise InputError(msg)
    bad = np.abs(a * a.T - 1.0) > _RECIPROCAL_TOL
    if bad.any():
        i, j = np.argwhere(bad)[0]
        what = "diagonal entry" if i == j else "pair"
        msg = (f"{where} is not reciprocal ({what}): a[{labels[i]}, {labels[j]}] = {a[i, j]:.4g} "
               f"but a[{labels[j]}, {labels[i]}] = {a[j, i]:.4g}; it must be 1/{a[i, j]:.4g} "
               f"= {1.0 / a[i, j]:.4g} (and 1 on the diagonal)")
        raise InputError(msg)


def weights_from_judgements(comparisons: Mapping[str, Any], criteria: Sequence[str], *,
                            max_cr: float | None = MAX_CR, where: str = "ahp") -> AHPResult:
    """Weights for every criterion from a study's ``[ahp]`` table.

    The result's ``weights`` holds every name in ``criteria``; those the
    judgements do not mention get 0.
    """
    res = ahp_weights(ahp_matrix(comparisons, criteria, where=where), max_cr=max_cr, where=where)
    full = {c: res.weights.get(c, 0.0) for c in criteria}
    return AHPResult(full, res.matrix, res.lambda_max, res.consistency_index,
                     res.consistency_ratio, res.most_inconsistent)


def _fmt(x: float) -> str:
    if x >= 1:
        return f"{x:.3g}"
    return f"1/{1.0 / x:.3g}"
