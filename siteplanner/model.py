"""Scoring: a weighted sum of normalised criteria, with each criterion's part.

Normalisation is min-max over the study's candidates: for criterion ``c``,
``n_c = (x_c - min x_c) / (max x_c - min x_c)``, in [0, 1] (0 when every
candidate has the same value). Weights are divided by their sum, so they are
shares. A benefit adds ``w_c * n_c`` to the score, a cost subtracts it:

    score = sum_c sign_c * w_c * n_c,   contribution_c = sign_c * w_c * n_c

The contributions therefore add up to the score exactly, and a planner reads
off why a site ranks where it does. Scores compare candidates within one
study; they are not comparable across studies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from siteplanner.config import Criterion

__all__ = ["normalise", "score"]


def normalise(values: pd.Series) -> pd.Series:
    """Min-max scale to [0, 1]; a constant criterion scales to 0."""
    lo, hi = float(values.min()), float(values.max())
    if not np.isfinite(hi - lo) or hi - lo <= 0:
        return pd.Series(0.0, index=values.index, name=values.name)
    return (values - lo) / (hi - lo)


def score(raw: pd.DataFrame, criteria: dict[str, Criterion]) -> pd.DataFrame:
    """Score candidates from their raw criterion values.

    Parameters
    ----------
    raw
        One column per criterion name, indexed like the candidates.
    criteria
        The study's criteria (direction and weight).

    Returns
    -------
    pandas.DataFrame
        ``score`` then, per criterion, ``NAME_contribution``; same index.
    """
    total = sum(c.weight for c in criteria.values())
    parts = {}
    for name, c in criteria.items():
        sign = 1.0 if c.direction == "benefit" else -1.0
        parts[f"{name}_contribution"] = sign * (c.weight / total) * normalise(raw[name])
    contrib = pd.DataFrame(parts, index=raw.index)
    return pd.concat([contrib.sum(axis=1).rename("score"), contrib], axis=1)
