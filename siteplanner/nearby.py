"""What is within a short walk of each candidate, counted, for people to read.

The criteria are kernel sums (see :mod:`siteplanner.features`), right for
ranking but meaningless to a reader ("commercial 30.74"). These counts say
the same thing in plain words: "12 shops and services within a 5-minute
walk". They use the run's own distances (walking along the streets, or
straight lines without them) and the study's ``network.transit_within_min``.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner.proximity import Proximity, pairs_by_chunk

__all__ = ["nearby_counts"]


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
    radius = within_min * metres_per_minute
    out = pd.DataFrame(index=candidates.index)
    for name, pts in layers.items():
        col = f"{name}_within_{within_min:g}min"
        if not len(pts) or not n:
            out[col] = np.zeros(n, dtype=np.int64)
            continue
        count = np.zeros(n, dtype=np.int64)
        for i, _, d in pairs_by_chunk(proximity, pts, radius):  # bounded memory
            count += np.bincount(i[d <= radius], minlength=n)
        out[col] = count
    return out
