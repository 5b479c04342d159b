"""The map's streets, drawn ahead in a second process while the run selects its sites.

The map's offline base draws the study's streets merged, simplified and cut to their
vertex budget (:func:`siteplanner._map_budget.street_lines`): half a second of a
country's write stage (Andorra x3), though it reads nothing but the streets, which the
layers stage has made. :func:`street_lines_ahead` starts it in a second process
(:mod:`siteplanner._aside`) once the sites are scored, when the second core is otherwise
idle through the selection, and :func:`map_street_lines` takes its answer when the map
is drawn, or draws them there when none was started (one process, a Dask worker).

The work is kept by the street table it reads (by identity, through a weak reference): a
table that goes takes its work with it, and the map of another table draws its own.
"""

from __future__ import annotations

import weakref
from typing import Any

import geopandas as gpd
import numpy as np

from siteplanner._aside import Aside, can_fork
from siteplanner._map_budget import street_lines

__all__ = ["drop_street_lines_ahead", "map_street_lines", "street_lines_ahead",
           "street_lines_stats"]

_WHAT = "drawing the map's streets"
#: The work started, by the street table's id: (a weak reference to it, the work).
_AHEAD: dict[int, tuple[weakref.ref[gpd.GeoDataFrame], Aside[tuple[np.ndarray, str | None]]]] = {}
#: The second process's figures, by the street table's id (with a weak reference to the
#: table, so that another table given the same id later gets none), once its answer was taken.
_STATS: dict[int, tuple[weakref.ref[gpd.GeoDataFrame], dict[str, Any]]] = {}


def street_lines_ahead(streets: gpd.GeoDataFrame) -> None:
    """Start :func:`~siteplanner._map_budget.street_lines` of ``streets`` in a second
    process for the map drawn later; nothing where the run cannot fork or the streets are
    none."""
    key = id(streets)
    if not len(streets) or key in _AHEAD or not can_fork(_WHAT):
        return
    job = Aside(_WHAT, street_lines, streets, fork=True)
    _AHEAD[key] = (weakref.ref(streets, lambda _ref: _drop(key)), job)


def map_street_lines(streets: gpd.GeoDataFrame) -> tuple[np.ndarray, str | None]:
    """:func:`~siteplanner._map_budget.street_lines` of ``streets``: the answer drawn ahead
    for this very table (waited for), else drawn now."""
    entry = _AHEAD.pop(id(streets), None)
    if entry is not None:
        ref, job = entry
        if ref() is streets:
            lines = job.result()
            if job.forked:
                _STATS[id(streets)] = weakref.ref(streets), job.stats
            return lines
        job.cancel()
    return street_lines(streets)


def street_lines_stats(streets: gpd.GeoDataFrame) -> dict[str, Any] | None:
    """The second process's seconds and own memory, when it drew these streets (once)."""
    entry = _STATS.pop(id(streets), None)
    return entry[1] if entry is not None and entry[0]() is streets else None


def drop_street_lines_ahead() -> None:
    """Stop every drawing not taken (a run that failed before its map)."""
    for key in list(_AHEAD):
        _drop(key)
    _STATS.clear()


def _drop(key: int) -> None:
    entry = _AHEAD.pop(key, None)
    if entry is not None:
        entry[1].cancel()
