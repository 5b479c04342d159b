"""The map's streets, drawn ahead in a second process while the run selects its sites.

The map's offline base draws the study's streets merged, simplified and cut to their
vertex budget (:func:`siteplanner._map_budget.street_lines`): half a second of a
country's write stage (Andorra x3), though it reads nothing but the streets, which the
layers stage has made. :func:`street_lines_ahead` starts it in a second process
(:mod:`siteplanner._aside`) once the sites are scored, when the second core is otherwise
idle through the selection, and :func:`map_street_lines` takes its answer when the map
is drawn, or draws them there when none was started (one process, a Dask worker).

The work is kept by the street table it reads (:class:`~siteplanner._aside.Pending`, weakly,
by identity): a table that goes takes its work with it, and the map of another table
draws its own.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np

from siteplanner._aside import Pending
from siteplanner._map_budget import street_lines

__all__ = ["drop_street_lines_ahead", "map_street_lines", "street_lines_ahead",
           "street_lines_stats"]

_WHAT = "drawing the map's streets"
#: The drawings started, by the street table they read (weakly).
_PENDING: Pending[gpd.GeoDataFrame, tuple[np.ndarray, str | None]] = Pending(weak=True)


def street_lines_ahead(streets: gpd.GeoDataFrame) -> None:
    """Start :func:`~siteplanner._map_budget.street_lines` of ``streets`` in a second
    process for the map drawn later; nothing where the run cannot fork or the streets are
    none."""
    if len(streets):
        _PENDING.start(streets, _WHAT, street_lines, streets)


def map_street_lines(streets: gpd.GeoDataFrame) -> tuple[np.ndarray, str | None]:
    """:func:`~siteplanner._map_budget.street_lines` of ``streets``: the answer drawn ahead
    for this very table (waited for), else drawn now."""
    found, lines = _PENDING.take(streets)
    return lines if found and lines is not None else street_lines(streets)


def street_lines_stats(streets: gpd.GeoDataFrame) -> dict[str, Any] | None:
    """The second process's seconds and own memory, when it drew these streets (once)."""
    return _PENDING.stats(streets)


def drop_street_lines_ahead() -> None:
    """Stop every drawing not taken (a run that failed before its map)."""
    _PENDING.cancel()
