"""Zone layout inside a real outline: an area-exact slicing tree plus a seeded local search.

A layout is a *genome*: an order of the zones and one orientation bit per cut.
Decoding it cuts the outline recursively: each cut picks the split of the ordered
list and the axis (nearest half the area and across the longer side first; the
bit flips the axis) that keep both sides wide enough for their zones, or lays the
zones of a too-thin side side by side in a band against a wall; its position is solved exactly
on the real, possibly concave piece, because the area left of a line ``x = t``
is a piecewise quadratic in ``t`` whose pieces come from the polygon's edges.
Every zone therefore gets its target area to floating-point precision, and
zones tile the outline by construction. The search then only has to find the
order and orientations that satisfy the relationship chart and the hard
constraints (entrance, X pairs, widths, turning circles, one piece per zone).

Why this rather than a grid or a free-form optimiser: the areas are exact by
construction rather than penalised, the walls are straight, every result is
checkable, and the search space is small enough (``n! * 2**(n-1)``) to search
exhaustively for small programmes, which also gives the benchmark its optimum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan import _backing
from siteplanner.floorplan._check import (
    TOUCH_M,
    WIDTH_KEEP,
    door_cover,
    door_segments,
    relationship_weights,
    route_walls,
    satisfaction,
    turning_ok,
    wide_part,
    width_kept,
)
from siteplanner.floorplan._cuts import (
    GRID,
    _area_profile,
    _band,
    _is_rect,
    _key,
    _reflex_lines,
    _split,
    _stepped,
    cut_area,
)
from siteplanner.floorplan.access import access_breaks, access_masks
from siteplanner.floorplan.fixtures import fits
from siteplanner.floorplan.standard import Standard

__all__ = ["GRID", "Genome", "LayoutProblem", "cut_area"]

_PENALTY = 10.0  # per broken hard constraint; satisfaction lies in [0, 1]
_MARGIN = 0.01  # metres of slack over a minimum width, so the exact width check passes
_MEAN_DEPTH = 0.9  # a piece whose area over its long side is below this share of a width is a sliver
# Cuts whose subtrees are decoded at a node of 1, 2, ... zones before settling for the least
# broken: small rooms near the leaves need the choice; near the root the search over orders
# gives it, and backtracking there multiplies the work.
_TRIES = (1, 3, 3, 2, 1)

Genome = tuple[tuple[int, ...], tuple[int, ...]]


Leaf = tuple[BaseGeometry, bytes]


@dataclass
class LayoutProblem:
    """Everything the search needs, in the layout frame (axes along the main walls)."""

    outline: Polygon
    kinds: tuple[str, ...]
    targets: np.ndarray
    entrances: tuple[Point, ...]
    standard: Standard
    #: Planned units per zone (stations, ATMs, seats, desks, rooms): their fixtures must fit.
    units: tuple[int, ...] = ()
    _cache: dict[tuple[object, ...], tuple[dict[int, Leaf], float]] = field(
        default_factory=dict, repr=False)
    _zone_cache: dict[tuple[int, bytes], tuple[float, float]] = field(
        default_factory=dict, repr=False)
    _cuts: dict[tuple[object, ...], tuple[Leaf, Leaf] | None] = field(
        default_factory=dict, repr=False)
    _profiles: dict[tuple[bytes, bool], tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)
    _fit_cache: dict[tuple[bytes, float], bool] = field(default_factory=dict, repr=False)
    _door_cache: dict[bytes, float] = field(default_factory=dict, repr=False)
    _neck_cache: dict[tuple[bytes, float], int] = field(default_factory=dict, repr=False)
    _shape_fit: dict[tuple[str, int, bytes], bool] = field(default_factory=dict, repr=False)
    _wide_cache: dict[bytes, BaseGeometry] = field(default_factory=dict, repr=False)
    _exposures: dict[tuple[object, ...], float] = field(default_factory=dict, repr=False)
    evaluations: int = 0

    def __post_init__(self) -> None:
        self.n = len(self.kinds)
        self.route_w = self.standard.route_width_m
        self.doors = door_segments(self.outline, self.entrances, self.standard.door_width_m)
        self.w, self.we, self.x, self.xe = relationship_weights(self.kinds, self.standard)
        specs = [self.standard.spec(k) for k in self.kinds]
        self.public = np.array([s.public for s in specs])
        self.access = access_masks(self.kinds, self.standard)
        # a secure room sharing a wall with public floor breaks the security rule like an X pair
        # ... except, when there is no staff room to open it from, along the service zone,
        # where the counters' staff side may cover it
        rooms = (self.access.passable & ~self.access.public).any()
        svc = (np.arange(len(self.kinds)) == self.access.service) & ~rooms
        self.x = self.x | (self.access.secure_public & ~(svc[:, None] | svc[None, :]))
        n_counters = self.units[self.access.service] if self.access.service >= 0 and self.units \
            else 0
        self.counter_len = n_counters * self.standard.fixtures.counter_module_m
        self.behind_counter = bool(svc.any())
        self.xe = self.xe | self.access.secure
        if not self.units:
            self.units = (0,) * len(self.kinds)
        self.widths = np.array([s.min_width_m for s in specs])
        # the narrowest a piece may be for each zone: its minimum width, and the turning
        # circle for public zones, plus a centimetre so the exact check has room
        self.need = np.maximum(self.widths, np.where(self.public, self.standard.turning_circle_m,
                                                     0.0)) + _MARGIN
        self.ss = self.kinds.index("self_service")
        self.outline_key = _key(self.outline)
        self.door_xy = np.array([[p.x, p.y] for p in self.entrances]).reshape(-1, 2)
        self._outer_ring = shapely.buffer(shapely.boundary(self.outline), 1e-4, cap_style="flat")

    def decode(self, genome: Genome) -> list[BaseGeometry]:
        """Zone geometries, in ``kinds`` order, for one genome."""
        return [g for g, _ in self._leaves(genome)]

    def _leaves(self, genome: Genome) -> list[Leaf]:
        order, flips = genome
        out, _ = self._decode(self.outline, self.outline_key, tuple(order), tuple(flips))
        return [out[k] for k in range(self.n)]

    def layout_key(self, genome: Genome) -> tuple[bytes, ...]:
        """The same for two genomes exactly when they decode to the same zone polygons."""
        return tuple(key for _, key in self._leaves(genome))

    def _decode(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...],
                flips: tuple[int, ...]) -> tuple[dict[int, Leaf], float]:
        """Leaves of one subtree and how many local rules they break.

        Tries the cuts in :meth:`_candidates` order and keeps the first whose
        subtree breaks nothing (else the least broken among ``_TRIES``), so a
        piece too thin for a zone is never cut when a cut that fits exists.
        """
        if len(items) == 1:
            return {items[0]: (region, rkey)}, self._leaf_broken(items[0], region, rkey)
        key = (rkey, items, flips)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        best: tuple[dict[int, Leaf], float] | None = None
        if region.is_empty or not region.area > 0:
            # an earlier fallback cut left nothing here: every zone in it is broken
            best = {k: (region, rkey) for k in items}, 3.0 * len(items)
            self._cache[key] = best
            return best
        guard = [i for i in items if self.access.secure[i]]
        staff_only = not self.public[list(items)].any()
        for tries, (k, low, high) in enumerate(self.ordered_cuts(region, rkey, items, flips[0])):
            left, bad = self._decode(*low, items[:k], flips[1:k])
            if best is not None and bad >= best[1]:
                continue
            right, bad_r = self._decode(*high, items[k:], flips[k:])
            bad += bad_r
            if guard:
                bad += self._exposure({**left, **right}, guard, region, staff_only)
            if best is None or bad < best[1]:
                best = ({**left, **right}, bad)
            if best[1] == 0 or tries + 1 >= _TRIES[min(len(items), len(_TRIES)) - 1]:
                break
        assert best is not None
        self._cache[key] = best
        return best

    def ordered_cuts(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...], flip: int
                     ) -> Iterable[tuple[int, Leaf, Leaf]]:
        """The cuts :meth:`_decode` tries for ``items`` on ``region``, in its order (lazily).

        A node of ``len(items) >= 5`` zones keeps the first (``_TRIES``), whatever its
        subtrees break, which is what lets an exhaustive search split there.
        """
        cuts: Iterable[tuple[int, Leaf, Leaf]] = self._candidates(region, rkey, items, flip)
        if self.ss in items and self._at_door((region, rkey)):
            # the ATMs belong at the door: cuts leaving the door on their side go first
            cuts = self._door_first(cuts, items.index(self.ss))
        if not _is_rect(region):
            cuts = self._neck_free_first(region, rkey, items, cuts, bool(flip))
        guard = self.access.secure[list(items)].any()
        staff_only = not self.public[list(items)].any()
        if guard and staff_only and self.access.secure[[items[0], items[-1]]].any():
            # a cash room wrapped by the staff rooms of its group: in a corner of the piece
            cuts = itertools.chain(self._corner_bands(region, rkey, items), cuts)
        return cuts

    def _door_first(self, cuts: Iterable[tuple[int, Leaf, Leaf]], pos: int
                    ) -> Iterator[tuple[int, Leaf, Leaf]]:
        """The cuts leaving the door on the ATMs' side first, each group in its order.

        Lazily (a stable sort by one bit): the decoder mostly stops at the first
        cut that fits, so the cuts after it are never made.
        """
        later: list[tuple[int, Leaf, Leaf]] = []
        for c in cuts:
            if self._at_door(c[1] if pos < c[0] else c[2]):
                yield c
            else:
                later.append(c)
        yield from later

    def _candidates(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...], flip: int
                    ) -> Iterator[tuple[int, Leaf, Leaf]]:
        """Cuts of ``region`` for the ordered ``items``, the likeliest to fit first.

        First straight cuts across the whole piece, splitting the list nearest
        half the area first and across the longer side (``flip`` swaps the axis);
        then bands: the zones on one side of the split laid side by side in a
        rectangle against a wall, as deep as they all allow, so small rooms are not
        cut as slivers across a large piece. The first split is the fallback when
        nothing fits.
        """
        areas = self.targets[list(items)]
        cum = np.cumsum(areas)
        ks = sorted(range(1, len(items)), key=lambda k: (abs(cum[k - 1] - cum[-1] / 2.0), k))
        x0, y0, x1, y1 = region.bounds
        pref = (x1 - x0 >= y1 - y0) != bool(flip)
        fallback = None
        yielded = False
        thin: list[tuple[int, bool, bool]] = []
        for k in ks:
            for vertical in (pref, not pref):
                cut = self._cut(region, rkey, ("cut", float(cum[k - 1] / cum[-1]), vertical))
                if cut is None:
                    continue
                if fallback is None:
                    fallback = (k, *cut)
                low_ok, high_ok = self._fits(cut[0], items[:k]), self._fits(cut[1], items[k:])
                if low_ok and high_ok:
                    yielded = True
                    yield (k, *cut)
                # a side too thin as a full-width strip may still fit as a band
                thin += [(k, vertical, at_low) for at_low, ok in ((True, low_ok), (False, high_ok))
                         if not ok]
        for k, vertical, at_low in thin:
            band = items[:k] if at_low else items[k:]
            rest = items[k:] if at_low else items[:k]
            depth = self._band_depth(band)
            if depth is None:
                continue
            area = float(self.targets[list(band)].sum())
            span = y1 - y0 if vertical else x1 - x0
            # as square as the band allows, or as long as leaves the rest of the piece
            # beside it wide enough for its zones
            long = area / max(span - float(self.need[list(rest)].max()), 1e-9)
            depths = [d for d in dict.fromkeys((depth, long))
                      if area / d <= span and d >= float(self.need[list(band)].max())]
            # the self-service band may also sit on a door, where the issue wants it
            for depth, end in itertools.product(depths, (0, 1, 2) if self.ss in band else (0, 1)):
                cut = self._cut(region, rkey, ("band", area, depth, vertical, at_low, end))
                if cut is None:
                    continue
                low, high = cut if at_low else cut[::-1]
                if self._fits(low, items[:k]) and self._fits(high, items[k:]):
                    yielded = True
                    yield k, low, high
        if not yielded and fallback is not None:
            yield fallback

    def _neck_free_first(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...],
                         cuts: Iterable[tuple[int, Leaf, Leaf]], step_first: bool
                         ) -> Iterator[tuple[int, Leaf, Leaf]]:
        """On a concave piece, cuts that leave no zone a neck go first.

        Stepped cuts through the reflex corners go before the plain ones when the
        genome's bit says so (on a concave piece it picks the kind of cut rather
        than the axis), or when every plain cut leaves a neck. Each group comes
        fewest necks first; lazily, so the caller, which mostly stops at the
        first cut that fits, pays for the neck tests (and the cuts) it looks at.
        """
        def necks(c: tuple[int, Leaf, Leaf]) -> int:
            return self._necks(c[1], items[:c[0]]) + self._necks(c[2], items[c[0]:])

        rest: list[tuple[int, Leaf, Leaf]] = []
        if not step_first:
            free = False
            for c in cuts:
                if necks(c) == 0:
                    free = True
                    yield c
                else:
                    rest.append(c)
            if free:
                yield from sorted(rest, key=necks)
                return
        else:
            rest = list(cuts)
        yield from self._stepped_cuts(region, rkey, items, necks)
        yield from sorted(rest, key=necks)

    def _stepped_cuts(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...],
                      necks: Callable[[tuple[int, Leaf, Leaf]], int]
                      ) -> Iterator[tuple[int, Leaf, Leaf]]:
        """Stepped cuts through the reflex corners that fit, neck-free ones first as found."""
        cum = np.cumsum(self.targets[list(items)])
        ks = sorted(range(1, len(items)), key=lambda k: (abs(cum[k - 1] - cum[-1] / 2.0), k))
        depth = float(self.need[list(items)].max())
        later: list[tuple[int, Leaf, Leaf]] = []
        for k in ks[:2]:
            area = float(cum[k - 1] / cum[-1]) * region.area
            for t, vertical in _reflex_lines(region):
                for end in (0, 1):
                    cut = self._cut(region, rkey, ("step", area, t, vertical, depth, end))
                    if cut is not None and self._fits(cut[0], items[:k]) \
                            and self._fits(cut[1], items[k:]):
                        if necks((k, *cut)) == 0:
                            yield (k, *cut)
                        else:
                            later.append((k, *cut))
        yield from sorted(later, key=necks)

    def _necks(self, piece: Leaf, items: tuple[int, ...]) -> int:
        """1 when a concave piece has a neck narrower than its widest-needing zone."""
        if _is_rect(piece[0]):
            return 0
        need = float(self.need[list(items)].max())
        hit = self._neck_cache.get((piece[1], need))
        if hit is None:
            kept = float(width_kept([piece[0]], np.array([need]))[0])
            hit = self._neck_cache[(piece[1], need)] = int(kept < WIDTH_KEEP)
        return hit

    def _corner_bands(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...]
                      ) -> list[tuple[int, Leaf, Leaf]]:
        """The secure zone at the start or end of ``items`` as a band in each corner."""
        out: list[tuple[int, Leaf, Leaf]] = []
        for k, at_start in ((1, True), (len(items) - 1, False)):
            s = items[0] if at_start else items[-1]
            if not self.access.secure[s]:
                continue
            depth = self._band_depth((s,))
            if depth is None:
                continue
            for vertical in (True, False):
                for at_low in (True, False):
                    for end in (0, 1):
                        cut = self._cut(region, rkey, ("band", float(self.targets[s]), depth,
                                                       vertical, at_low, end))
                        if cut is not None:
                            out.append((k, *cut) if at_start else (k, cut[1], cut[0]))
        return out

    def _exposure(self, leaves: dict[int, Leaf], guard: list[int], region: BaseGeometry,
                  staff_only: bool) -> float:
        """How much of the secure zones' walls may face public floor (a soft rule, 0-1 each).

        Walls to public zones of the same piece count; in a piece of staff rooms
        only, so do the walls on the piece's own edge that are not outer walls.
        """
        key = (tuple((i, leaves[i][1]) for i in sorted(leaves)), staff_only and _key(region))
        hit = self._exposures.get(key)
        if hit is not None:
            return hit
        outer = self._outer_ring
        total = 0.0
        for s in guard:
            sb = shapely.boundary(leaves[s][0])
            face = 0.0
            for i, (g, _) in leaves.items():
                if self.public[i]:
                    face += float(shapely.length(shapely.intersection(
                        sb, shapely.buffer(shapely.boundary(g), 1e-4, cap_style="flat"))))
            if staff_only:
                edge = shapely.difference(shapely.boundary(region), outer)
                face += float(shapely.length(shapely.intersection(
                    sb, shapely.buffer(edge, 1e-4, cap_style="flat"))))
            if face > TOUCH_M:
                total += 0.5 + 0.5 * min(face / self.standard.min_shared_wall_m, 1.0)
        self._exposures[key] = total
        return total

    def _band_depth(self, band: tuple[int, ...]) -> float | None:
        """Depth of a band holding ``band`` side by side: each room at least its width
        deep and at least its width long; as square as that allows."""
        idx = list(band)
        lo = float(self.need[idx].max())
        hi = float((self.targets[idx] / self.need[idx]).min())
        if lo > hi:
            return None
        return min(hi, max(lo, math.sqrt(float(self.targets[idx].sum()) / len(idx))))

    def _cut(self, region: BaseGeometry, rkey: bytes, how: tuple[object, ...]
             ) -> tuple[Leaf, Leaf] | None:
        key = (rkey, *how)
        if key in self._cuts:
            return self._cuts[key]
        if region.geom_type not in ("Polygon", "MultiPolygon") or not region.area > 0:
            return None
        pieces: tuple[BaseGeometry, BaseGeometry] | None
        if how[0] == "cut":
            _, share, vertical = how
            profile = None
            if not _is_rect(region):
                pkey = (rkey, bool(vertical))
                profile = self._profiles.get(pkey)
                if profile is None:
                    profile = self._profiles[pkey] = _area_profile(region, bool(vertical))
            pieces = _split(region, float(share), bool(vertical), profile)  # type: ignore[arg-type]
        elif how[0] == "step":
            _, area, t, vertical, depth, end = how
            pieces = _stepped(region, cast(float, area), cast(float, t), bool(vertical),
                              cast(float, depth), cast(int, end))
        else:
            _, area, depth, vertical, at_low, end = how
            pieces = _band(region, float(area), float(depth), bool(vertical),  # type: ignore[arg-type]
                           bool(at_low), int(end), self.door_xy)  # type: ignore[call-overload]
        out = None if pieces is None else ((pieces[0], _key(pieces[0])),
                                           (pieces[1], _key(pieces[1])))
        self._cuts[key] = out
        return out

    def _fits(self, piece: Leaf, items: tuple[int, ...]) -> bool:
        """Cheap necessary test: one piece whose box and mean depth hold the widest zone."""
        need = float(self.need[list(items)].max())
        hit = self._fit_cache.get((piece[1], need))
        if hit is None:
            geom = piece[0]
            hit = geom.geom_type == "Polygon" and not geom.is_empty
            if hit:
                x0, y0, x1, y1 = geom.bounds
                short, long = sorted((x1 - x0, y1 - y0))
                hit = short >= need and geom.area / long >= need * _MEAN_DEPTH
            self._fit_cache[(piece[1], need)] = hit
        return hit

    def _door_len(self, piece: Leaf) -> float:
        """Longest stretch of an entrance door the piece holds, metres."""
        hit = self._door_cache.get(piece[1])
        if hit is None:
            hit = self._door_cache[piece[1]] = float(
                door_cover([piece[0]], self.doors).max(initial=0.0))
        return hit

    def _at_door(self, piece: Leaf) -> bool:
        return self._door_len(piece) >= self.standard.min_shared_wall_m

    def _leaf_broken(self, k: int, geom: BaseGeometry, gkey: bytes) -> float:
        key = (k, gkey)
        hit = self._zone_cache.get(key)
        if hit is None:
            hit = self._zone_cache[key] = self._zone_check(k, geom)
        return hit[0]

    def _zone_check(self, k: int, geom: BaseGeometry) -> tuple[float, float]:
        """Broken local rules of one zone (width, turning circle, one piece) and aspect excess."""
        if _is_rect(geom):
            # a rectangle meets a width, or holds a circle, exactly when its short side does
            x0, y0, x1, y1 = geom.bounds
            short, long = sorted((x1 - x0, y1 - y0))
            kept = 1.0 if short >= self.widths[k] else short / self.widths[k] * WIDTH_KEEP
            turn = not self.public[k] or short >= self.standard.turning_circle_m
            single, aspect = True, long / short if short > 0 else math.inf
        else:
            kept = float(width_kept([geom], self.widths[[k]])[0])
            # a zone swept by a disc of its width holds any smaller circle
            turn = (not self.public[k] or (kept > 0 and self.widths[k] >= self.standard.turning_circle_m)
                    or bool(turning_ok([geom], self.standard.turning_circle_m)[0]))
            single = geom.geom_type == "Polygon"
            x0, y0, x1, y1 = geom.bounds
            # the box in the layout frame is a good enough aspect ratio inside the search
            short, long = sorted((x1 - x0, y1 - y0))
            aspect = long / short if short > 0 else math.inf
        # a broken rule costs 1 plus how badly it is broken, so the search can tell a
        # nearly wide enough zone from a sliver
        narrow = 0.0 if kept >= WIDTH_KEEP else 1.0 + (WIDTH_KEEP - kept)
        broken = narrow + float(not turn) + float(not single)
        # the door rules are local to a leaf too: the ATMs hold a door, an X zone none
        at_door = self._door_len((geom, _key(geom)))
        min_wall = self.standard.min_shared_wall_m
        if k == self.ss and at_door < min_wall:
            broken += 1.0 + (min_wall - at_door) / min_wall
        if self.xe[k] and at_door > 1e-6:
            broken += 1.0 + min(at_door / min_wall, 1.0)
        if broken == 0 and self.units[k]:
            broken += float(not self._fixtures_fit(k, geom))
        return broken, max(0.0, aspect - 2.0)

    def _egress_excess(self, zones: Sequence[BaseGeometry]) -> float:
        """A broken rule when a public zone's corner is beyond ``max_egress_m`` of every door.

        The straight line is the shortest any walk can be, so a corner of public
        floor that far from the doors surely breaks the egress rule; the search
        keeps the public zones within reach of the door (the far end of a large
        floor goes to the staff rooms). The farthest point of a polygon from a
        point is one of its vertices.
        """
        limit = self.standard.max_egress_m
        pub = np.flatnonzero(self.public)
        if not pub.size or not self.door_xy.size:
            return 0.0
        xy = shapely.get_coordinates(np.asarray([zones[int(i)] for i in pub], dtype=object))
        d = np.sqrt(((xy[:, None, :] - self.door_xy[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        over = float(d.max()) - limit
        return 0.0 if over <= 0 else 1.0 + min(over / limit, 1.0)

    def _fixtures_fit(self, k: int, geom: BaseGeometry) -> bool:
        """:func:`fits`, memoised on the zone's shape wherever it lies.

        Placing fixtures in an empty zone (no doors or neighbours yet) does not
        depend on where the zone is, so equal shapes at other places of the
        floor (common: the same cut at another position in the order) are
        answered once.
        """
        c = shapely.get_coordinates(geom)
        key = (self.kinds[k], self.units[k], np.round(c - c.min(axis=0), 6).tobytes())
        hit = self._shape_fit.get(key)
        if hit is None:
            hit = self._shape_fit[key] = fits(geom, self.kinds[k], self.units[k], self.standard)
        return hit

    def _wide(self, geom: BaseGeometry, gkey: bytes) -> BaseGeometry:
        hit = self._wide_cache.get(gkey)
        if hit is None:
            hit = self._wide_cache[gkey] = wide_part(geom, self.route_w)
        return hit

    def _zone_terms(self, leaves: Sequence[Leaf]) -> tuple[np.ndarray, np.ndarray]:
        """Per zone: broken local constraints (width, turning, pieces) and aspect excess."""
        terms = []
        for k, (geom, gkey) in enumerate(leaves):
            key = (k, gkey)
            hit = self._zone_cache.get(key)
            if hit is None:
                hit = self._zone_cache[key] = self._zone_check(k, geom)
            terms.append(hit)
        arr = np.array(terms)
        return arr[:, 0], arr[:, 1]

    def cost(self, genome: Genome) -> float:
        """Lower is better: broken hard constraints dominate, then unmet closeness."""
        return self.cost_leaves(self._leaves(genome))

    def cost_leaves(self, leaves: Sequence[Leaf]) -> float:
        """:meth:`cost` of decoded zones (in ``kinds`` order): it depends on nothing else."""
        self.evaluations += 1
        zones = [g for g, _ in leaves]
        walls = _axis_walls(zones)
        cover = door_cover(zones, self.doors)
        broken, aspect = self._zone_terms(leaves)
        min_wall = self.standard.min_shared_wall_m
        hard = broken.sum()
        x_walls = walls[self.x]
        hard += float(((x_walls > TOUCH_M) * (1.0 + np.minimum(x_walls / min_wall, 1.0))).sum() / 2)
        # the public zones join only where a route-wide body passes both sides of the wall
        wide = [self._wide(g, key) if self.public[k] else g for k, (g, key) in enumerate(leaves)]
        hard += access_breaks(route_walls(zones, walls, self.public, self.route_w, wide),
                              self.access, self.standard)
        if self.behind_counter:
            hard += _backing.behind_counter_breaks(walls, self.access, self.counter_len)
        hard += self._egress_excess(zones)
        sat = satisfaction(walls, cover, self.w, self.we, min_wall)
        unbacked = _backing.unbacked_service(walls, self.access, self.standard.door_width_m,
                                            self.counter_len)
        return _PENALTY * hard + (1.0 - sat) + unbacked + 0.01 * float(aspect.sum())


def _axis_walls(zones: Sequence[BaseGeometry]) -> np.ndarray:
    """Shared wall lengths for zones whose shared walls are all axis-parallel (the layout frame).

    Equivalent to :func:`shared_walls` there, at a fraction of the cost: collinear
    edges of two zones on the same cut line overlap by ``min(hi) - max(lo)``.
    """
    n = len(zones)
    coords, index = shapely.get_coordinates(
        shapely.get_rings(np.asarray(zones, dtype=object)), return_index=True)
    ring_zone = np.repeat(np.arange(n), shapely.get_num_interior_rings(
        np.asarray(zones, dtype=object)) + shapely.get_num_geometries(
        np.asarray(zones, dtype=object)))
    same = index[:-1] == index[1:]
    a, b = coords[:-1][same], coords[1:][same]
    owner = ring_zone[index[:-1][same]]
    walls = np.zeros((n, n))
    for axis in (0, 1):
        on = np.abs(a[:, axis] - b[:, axis]) < GRID / 2
        pos = a[on, axis]
        lo = np.minimum(a[on, 1 - axis], b[on, 1 - axis])
        hi = np.maximum(a[on, 1 - axis], b[on, 1 - axis])
        who = owner[on]
        line = np.abs(pos[:, None] - pos[None, :]) < GRID / 2
        overlap = np.minimum(hi[:, None], hi[None, :]) - np.maximum(lo[:, None], lo[None, :])
        pair = line & (who[:, None] != who[None, :]) & (overlap > 0)
        r, c = np.nonzero(pair)
        np.add.at(walls, (who[r], who[c]), overlap[r, c])
    return walls
