"""What is within a short walk of each candidate, counted, for people to read.

The criteria are kernel sums (see :mod:`siteplanner.features`), right for
ranking but meaningless to a reader ("commercial 30.74"). These counts say
the same thing in plain words: "12 shops and services within a 5-minute
walk". They use the run's own distances (walking along the streets, or
straight lines without them) and the study's ``network.transit_within_min``.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from siteplanner.pairsums import PairSum, pair_sums
from siteplanner.proximity import Proximity

__all__ = ["nearby_counts", "nearby_sums"]


def nearby_counts(candidates: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame], *,
                  proximity: Proximity, metres_per_minute: float,
                  within_min: float) -> pd.DataFrame:
    """Per candidate, how many features of each layer lie within ``within_min`` minutes on foot.

    Parameters
    ----------
    candidates
        The candidate points (study CRS).
    layers
        Short name -> points, e.g. ``{"pois": ..., "competitors": ...}``.
    proximity
        The run's distances (a network walk or straight lines).
    metres_per_minute, within_min
        Walking speed and the walk that counts.

    Returns
    -------
    pandas.DataFrame
        ``<name>_within_<N>min`` per layer, integers, on the candidates' index.
    """
    n = len(candidates)
    counts = pair_sums(proximity, n, nearby_sums(layers, metres_per_minute=metres_per_minute,
                                                 within_min=within_min))
    cols = {f"{name}_within_{within_min:g}min": c for name, c in zip(layers, counts, strict=True)}
    return pd.DataFrame(cols, index=candidates.index)


def nearby_sums(layers: dict[str, gpd.GeoDataFrame], *, metres_per_minute: float,
                within_min: float) -> list[PairSum]:
    """The pair sums :func:`nearby_counts` asks for, one count per layer, in its order."""
    return [PairSum(pts, within_min * metres_per_minute, kernel=False) for pts in layers.values()]
