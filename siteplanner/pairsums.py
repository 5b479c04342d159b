"""Per-candidate sums over the (candidate, point, metres) pairs of point layers, each layer
searched once for every consumer.

The features stage asks the same layers for pairs many times: the POIs at 150 m for the
foot-traffic proxy, at 400 m for ``commercial`` and again at 400 m for the counts people
read; the stops at 150 m, 400 m and at the transit count's walk. Each ask is a
:class:`PairSum`: a kernel sum or a count over the pairs within its radius.
:class:`SharedPairs` is told every ask up front and answers them all from one pass over
each layer, chunk by chunk, at the largest radius asked: on a street network the pairs
within a smaller radius are exactly those of the larger pass with ``d < radius``, with the
same metres in the same order (a bounded search finds the same shortest walks whatever
its bound), so every sum is the one a pass of its own would give, bit for bit. Memory
stays that of one chunk's pairs plus one array per ask.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np

from siteplanner.proximity import Proximity, pairs_by_chunk

__all__ = ["PairSum", "SharedPairs", "pair_sums"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PairSum:
    """One per-candidate sum over the pairs of a point layer within ``radius_m`` metres.

    Attributes
    ----------
    points
        The layer (study CRS). Asks on the same layer share its searches.
    radius_m
        Pairs with a walk of less than this many metres count.
    weights
        Per point, for a kernel sum; 1 each when ``None``.
    kernel
        ``True``: each pair adds its point's weight times the quartic kernel
        ``(1 - (d / radius_m)^2)^2`` (see :mod:`siteplanner.features`); ``False``: each
        pair adds 1 (a count).
    within_min, metres_per_minute
        When given, only pairs with ``d / metres_per_minute <= within_min`` count (a walk
        in minutes, tested as the transit count states it).
    """

    points: gpd.GeoDataFrame
    radius_m: float
    weights: np.ndarray | None = None
    kernel: bool = True
    within_min: float | None = None
    metres_per_minute: float = 1.0

    def key(self) -> Hashable:
        """What makes two asks the same sum: the layer (by identity) and every option."""
        w = None if self.weights is None else hashlib.blake2b(
            np.ascontiguousarray(self.weights, dtype=float).tobytes(), digest_size=16).digest()
        return (id(self.points), float(self.radius_m), w, self.kernel, self.within_min,
                float(self.metres_per_minute))

    def zeros(self, n: int) -> np.ndarray:
        return np.zeros(n) if self.kernel else np.zeros(n, dtype=np.int64)

    def add(self, out: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> None:
        """Add one chunk's pairs (all within ``radius_m``) to ``out``."""
        if self.within_min is not None:
            keep = d / self.metres_per_minute <= self.within_min
            i, j, d = i[keep], j[keep], d[keep]
        if not self.kernel:
            out += np.bincount(i, minlength=len(out))
            return
        k = (1.0 - (d / self.radius_m) ** 2) ** 2
        if self.weights is not None:  # unweighted: k as it is, not k * 1.0 from a fresh ones array
            k *= np.asarray(self.weights, float)[j]
        out += np.bincount(i, weights=k, minlength=len(out))


def _group(proximity: Proximity, ask: PairSum) -> Hashable:
    """Asks answered by one pass: the same layer, and the same radius unless the
    proximity's pairs at a radius are a filter of those at a larger one."""
    if getattr(proximity, "nested_radii", False):
        return id(ask.points)
    return id(ask.points), float(ask.radius_m)


def _run(proximity: Proximity, n: int, asks: Sequence[PairSum]) -> list[np.ndarray]:
    """The sums of ``asks`` (one group of :func:`_group`) from one pass at their largest radius."""
    outs = [a.zeros(n) for a in asks]
    points = asks[0].points
    if not len(points) or not n:
        return outs
    radius = max(a.radius_m for a in asks)
    for i, j, d in pairs_by_chunk(proximity, points, radius):  # bounded memory
        for a, out in zip(asks, outs, strict=True):
            if a.radius_m < radius:
                keep = d < a.radius_m
                a.add(out, i[keep], j[keep], d[keep])
            else:
                a.add(out, i, j, d)
    return outs


def _unique(asks: Iterable[PairSum]) -> list[PairSum]:
    return list({a.key(): a for a in asks}.values())


def pair_sums(proximity: Proximity, n: int, asks: Sequence[PairSum]) -> list[np.ndarray]:
    """Per ask, its sum at each of the ``n`` candidates ``proximity`` measures from.

    A :class:`SharedPairs` answers from its shared passes; any other proximity gets one
    pass per layer (per layer and radius for straight lines) for the asks given.
    """
    if isinstance(proximity, SharedPairs):
        return proximity.sums(asks)
    groups: dict[Hashable, list[PairSum]] = {}
    for a in _unique(asks):
        groups.setdefault(_group(proximity, a), []).append(a)
    done = {a.key(): out for g in groups.values() for a, out in zip(g, _run(proximity, n, g), strict=True)}
    return [done[a.key()].copy() for a in asks]


class SharedPairs:
    """A proximity that answers every expected :class:`PairSum` from one pass per layer.

    Parameters
    ----------
    proximity
        The run's distances (:class:`~siteplanner.proximity.NetworkWalk` or
        :class:`~siteplanner.proximity.StraightLine`); its ``pairs`` and ``nearest`` are
        passed through.
    n_candidates
        How many candidates ``proximity`` measures from.
    expected
        Every sum the consumers will ask for. The first ask on a layer runs the pass for
        all of that layer's expected sums; an ask not expected gets a pass of its own
        (right, only slower).
    """

    def __init__(self, proximity: Proximity, n_candidates: int, expected: Iterable[PairSum]) -> None:
        self.proximity = proximity
        self.kind = proximity.kind
        #: The street graph of a network proximity (the foot-traffic proxy reads it), else None.
        self.graph = getattr(proximity, "graph", None)
        self._n = n_candidates
        self._pending: dict[Hashable, list[PairSum]] = {}
        for a in _unique(expected):
            self._pending.setdefault(_group(proximity, a), []).append(a)
        self._done: dict[Hashable, np.ndarray] = {}
        #: Passes over a layer run so far (one per layer when every ask was expected).
        self.passes = 0

    def pairs(self, points: gpd.GeoDataFrame,
              radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.proximity.pairs(points, radius_m)

    def nearest(self, points: gpd.GeoDataFrame, radius_m: float) -> np.ndarray:
        """The wrapped proximity's ``nearest`` (metres to each candidate's nearest point)."""
        return self.proximity.nearest(points, radius_m)  # type: ignore[attr-defined, no-any-return]

    def sums(self, asks: Sequence[PairSum]) -> list[np.ndarray]:
        """Per ask, its sum at each candidate (a copy: the caller may change it)."""
        for a in asks:
            if a.key() in self._done:
                continue
            todo = self._pending.pop(_group(self.proximity, a), [])
            if all(t.key() != a.key() for t in todo):
                if not todo:
                    log.debug("pair sum of %d points at %.0f m not expected: a pass of its own",
                              len(a.points), a.radius_m)
                todo.append(a)
            self.passes += 1
            self._done |= {t.key(): out for t, out in
                           zip(todo, _run(self.proximity, self._n, todo), strict=True)}
        return [self._done[a.key()].copy() for a in asks]
