"""Zone layout inside a real outline: an area-exact slicing tree plus a seeded local search.

A layout is a *genome*: an order of the zones and one orientation bit per cut.
Decoding it cuts the outline recursively: the ordered list is split where the
cumulative target area is nearest to half; the cut runs across the longer side
of the current piece (the bit flips that), and its position is solved exactly
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan._check import (
    TOUCH_M,
    WIDTH_KEEP,
    aspect_ratios,
    door_cover,
    door_segments,
    relationship_weights,
    satisfaction,
    turning_ok,
    width_kept,
)
from siteplanner.floorplan.standard import Standard

__all__ = ["Genome", "LayoutProblem", "cut_area", "search_exhaustive", "search_layout"]

GRID = 1e-6  # metres; cut positions and vertices are snapped to it so shared walls coincide
_PENALTY = 10.0  # per broken hard constraint; satisfaction lies in [0, 1]

Genome = tuple[tuple[int, ...], tuple[int, ...]]


def _edges(geom: BaseGeometry, vertical: bool) -> np.ndarray:
    """Edges ``(x0, y0, x1, y1)`` of every ring, oriented so the formula below is positive."""
    rings = shapely.get_rings(shapely.orient_polygons(geom))
    parts = []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        if not vertical:
            c = c[:, ::-1]
        parts.append(np.hstack([c[:-1], c[1:]]))
    return np.vstack(parts)


def _area_below(e: np.ndarray, t: np.ndarray, sign: float) -> np.ndarray:
    """Area of the polygon with coordinate ``u <= t`` for each ``t`` (edges in (u, v) form)."""
    x0, y0, x1, y1 = e.T
    lo = np.minimum(x0, x1)
    hi = np.maximum(x0, x1)
    dx = x1 - x0
    slope = np.divide(y1 - y0, dx, out=np.zeros_like(dx), where=dx != 0)
    end = np.clip(t[:, None], lo, hi)
    y_lo = y0 + slope * (lo - x0)
    y_end = y0 + slope * (end - x0)
    integral = (end - lo) * (y_lo + y_end) / 2.0
    # -∮ v du over the clipped boundary; the cut line itself has du = 0
    return sign * (-np.sign(dx) * integral).sum(axis=1)


def cut_area(geom: BaseGeometry, share: float, *, vertical: bool) -> float:
    """Position ``t`` of the line (``x = t`` or ``y = t``) leaving ``share`` of the area below it.

    Exact up to rounding: the area below ``t`` is quadratic between consecutive
    vertex coordinates, so the crossing interval is found on the breakpoints and
    the quadratic through its ends and midpoint is solved.
    """
    e = _edges(geom, vertical)
    # swapping x and y mirrors the polygon, which reverses the sign of the formula
    sign = 1.0 if vertical else -1.0
    knots = np.unique(np.concatenate([e[:, 0], e[:, 2]]))
    a_knots = _area_below(e, knots, sign)
    goal = share * a_knots[-1]
    k = int(np.clip(np.searchsorted(a_knots, goal), 1, knots.size - 1))
    t0, t1 = knots[k - 1], knots[k]
    a0, a1 = a_knots[k - 1], a_knots[k]
    am = float(_area_below(e, np.array([(t0 + t1) / 2.0]), sign)[0])
    c = 2.0 * (a1 + a0) - 4.0 * am
    b = (a1 - a0) - c
    rhs = goal - a0
    disc = max(b * b + 4.0 * c * rhs, 0.0)
    denom = b + math.sqrt(disc)
    u = 2.0 * rhs / denom if denom > 0 else 0.0
    return float(t0 + np.clip(u, 0.0, 1.0) * (t1 - t0))


def _split(geom: BaseGeometry, share: float, vertical: bool) -> tuple[BaseGeometry, BaseGeometry]:
    t = round(cut_area(geom, share, vertical=vertical) / GRID) * GRID
    x0, y0, x1, y1 = geom.bounds
    pad = 1.0
    # clip_by_rect is several times faster than a general overlay; a cut of a simple
    # polygon by a half-plane box is exactly its case
    if vertical:
        low = shapely.clip_by_rect(geom, x0 - pad, y0 - pad, t, y1 + pad)
        high = shapely.clip_by_rect(geom, t, y0 - pad, x1 + pad, y1 + pad)
    else:
        low = shapely.clip_by_rect(geom, x0 - pad, y0 - pad, x1 + pad, t)
        high = shapely.clip_by_rect(geom, x0 - pad, t, x1 + pad, y1 + pad)
    parts = shapely.set_precision(np.array([low, high]), GRID)
    return _polygonal(parts[0]), _polygonal(parts[1])


def _polygonal(g: BaseGeometry) -> BaseGeometry:
    """Drop the points and lines an intersection may leave along the cut."""
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
    return polys[0] if len(polys) == 1 else shapely.multipolygons(polys)


def _bounds_key(g: BaseGeometry) -> tuple[object, ...]:
    return tuple(round(v / GRID) for v in g.bounds)


@dataclass
class LayoutProblem:
    """Everything the search needs, in the layout frame (axes along the main walls)."""

    outline: Polygon
    kinds: tuple[str, ...]
    targets: np.ndarray
    entrances: tuple[Point, ...]
    standard: Standard
    _cache: dict[tuple[object, ...], dict[int, tuple[BaseGeometry, tuple[object, ...]]]] = field(
        default_factory=dict, repr=False)
    _zone_cache: dict[tuple[int, tuple[object, ...]], tuple[float, float]] = field(
        default_factory=dict, repr=False)
    _cuts: dict[tuple[object, ...], tuple[BaseGeometry, BaseGeometry]] = field(
        default_factory=dict, repr=False)
    evaluations: int = 0

    def __post_init__(self) -> None:
        self.n = len(self.kinds)
        self.doors = door_segments(self.outline, self.entrances, self.standard.door_width_m)
        self.w, self.we, self.x, self.xe = relationship_weights(self.kinds, self.standard)
        specs = [self.standard.zones[k] for k in self.kinds]
        self.public = np.array([s.public for s in specs])
        self.widths = np.array([s.min_width_m for s in specs])
        self.ss = self.kinds.index("self_service")

    def decode(self, genome: Genome) -> list[BaseGeometry]:
        """Zone geometries, in ``kinds`` order, for one genome."""
        return [g for g, _ in self._leaves(genome)]

    def _leaves(self, genome: Genome) -> list[tuple[BaseGeometry, tuple[object, ...]]]:
        order, flips = genome
        out = self._decode(self.outline, _bounds_key(self.outline), order, flips)
        return [out[k] for k in range(self.n)]

    def _decode(self, region: BaseGeometry, rkey: tuple[object, ...], items: tuple[int, ...],
                flips: tuple[int, ...]) -> dict[int, tuple[BaseGeometry, tuple[object, ...]]]:
        # Every region is the outline clipped to an axis-parallel rectangle, and so is
        # named by its own bounding box: a cheap key that also merges identical regions
        # reached through different cut sequences.
        if len(items) == 1:
            return {items[0]: (region, rkey)}
        key = (rkey, items, flips)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        areas = self.targets[list(items)]
        cum = np.cumsum(areas)
        k = int(np.argmin(np.abs(cum[:-1] - cum[-1] / 2.0))) + 1
        x0, y0, x1, y1 = region.bounds
        vertical = (x1 - x0 >= y1 - y0) != bool(flips[0])
        share = float(cum[k - 1] / cum[-1])
        low, high = self._split(region, rkey, share, vertical)
        if low.geom_type != "Polygon" or high.geom_type != "Polygon":
            # a cut across a concave neck splits a piece in two; the other way may not
            alt = self._split(region, rkey, share, not vertical)
            if alt[0].geom_type == "Polygon" and alt[1].geom_type == "Polygon":
                low, high = alt
        out = {**self._decode(low, _bounds_key(low), items[:k], flips[1:k]),
               **self._decode(high, _bounds_key(high), items[k:], flips[k:])}
        self._cache[key] = out
        return out

    def _split(self, region: BaseGeometry, rkey: tuple[object, ...], share: float,
               vertical: bool) -> tuple[BaseGeometry, BaseGeometry]:
        key = (rkey, round(share, 12), vertical)
        hit = self._cuts.get(key)
        if hit is None:
            hit = self._cuts[key] = _split(region, share, vertical)
        return hit

    def _zone_terms(self, leaves: Sequence[tuple[BaseGeometry, tuple[object, ...]]]
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Per zone: broken local constraints (width, turning, pieces) and aspect excess."""
        keys = [(k, rkey) for k, (_, rkey) in enumerate(leaves)]
        todo = [k for k, key in enumerate(keys) if key not in self._zone_cache]
        if todo:
            geoms = [leaves[k][0] for k in todo]
            kept = width_kept(geoms, self.widths[todo])
            turn = turning_ok(geoms, self.standard.turning_circle_m) | ~self.public[todo]
            single = shapely.get_type_id(np.asarray(geoms, dtype=object)) == 3
            aspect = aspect_ratios(geoms)
            for idx, k in enumerate(todo):
                # a broken rule costs 1 plus how badly it is broken, so the search
                # can tell a nearly wide enough zone from a sliver
                narrow = 0.0 if kept[idx] >= WIDTH_KEEP else 1.0 + (WIDTH_KEEP - kept[idx])
                broken = narrow + float(~turn[idx]) + float(~single[idx])
                self._zone_cache[keys[k]] = (broken, max(0.0, float(aspect[idx]) - 2.0))
        terms = np.array([self._zone_cache[key] for key in keys])
        return terms[:, 0], terms[:, 1]

    def cost(self, genome: Genome) -> float:
        """Lower is better: broken hard constraints dominate, then unmet closeness."""
        self.evaluations += 1
        leaves = self._leaves(genome)
        zones = [g for g, _ in leaves]
        walls = _axis_walls(zones)
        cover = door_cover(zones, self.doors)
        broken, aspect = self._zone_terms(leaves)
        min_wall = self.standard.min_shared_wall_m
        hard = broken.sum()
        at_door = cover[self.ss].max(initial=0.0)
        if at_door < min_wall:
            hard += 1.0 + (min_wall - at_door) / min_wall
        x_walls = walls[self.x]
        hard += float(((x_walls > TOUCH_M) * (1.0 + np.minimum(x_walls / min_wall, 1.0))).sum() / 2)
        x_door = cover.max(axis=1, initial=0.0)[self.xe]
        hard += float(((x_door > 1e-6) * (1.0 + np.minimum(x_door / min_wall, 1.0))).sum())
        sat = satisfaction(walls, cover, self.w, self.we, min_wall)
        return _PENALTY * hard + (1.0 - sat) + 0.01 * float(aspect.sum())


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


def _space_size(n: int) -> int:
    return math.factorial(n) * 2 ** (n - 1)


def _all_genomes(n: int) -> Iterator[Genome]:
    for order in itertools.permutations(range(n)):
        for flips in itertools.product((0, 1), repeat=n - 1):
            yield order, flips


def search_exhaustive(problem: LayoutProblem) -> tuple[Genome, float]:
    """Best genome over every order and orientation (``n! * 2**(n-1)`` layouts)."""
    best: Genome | None = None
    best_cost = math.inf
    for g in _all_genomes(problem.n):
        c = problem.cost(g)
        if c < best_cost:
            best, best_cost = g, c
    assert best is not None
    return best, best_cost


def _chart_order(problem: LayoutProblem) -> tuple[int, ...]:
    """Systematic Layout Planning order: start at the door, add the zone closest to those placed."""
    placed: list[int] = []
    pull = problem.we.copy()
    while len(placed) < problem.n:
        free = [k for k in range(problem.n) if k not in placed]
        nxt = max(free, key=lambda k: (pull[k], -k))
        placed.append(nxt)
        pull = pull + problem.w[nxt]
    return tuple(placed)


def _neighbours(g: Genome) -> list[Genome]:
    """Every order with two zones swapped, and every single orientation flip."""
    order, flips = g
    n = len(order)
    out: list[Genome] = []
    for a, b in itertools.combinations(range(n), 2):
        o = list(order)
        o[a], o[b] = o[b], o[a]
        out.append((tuple(o), flips))
    for f in range(n - 1):
        fl = list(flips)
        fl[f] ^= 1
        out.append((order, tuple(fl)))
    return out


def _kick(g: Genome, rng: np.random.Generator) -> Genome:
    """A random jump out of a local optimum: a segment reversal, a move and two flips."""
    order, flips = list(g[0]), list(g[1])
    n = len(order)
    a, b = sorted(int(v) for v in rng.choice(n, size=2, replace=False))
    order[a:b + 1] = order[a:b + 1][::-1]
    i, j = (int(v) for v in rng.choice(n, size=2, replace=False))
    order.insert(j, order.pop(i))
    for f in rng.integers(0, n - 1, size=2):
        flips[int(f)] ^= 1
    return tuple(order), tuple(flips)


class _Budgeted:
    """Memoised cost with an evaluation budget (revisits are free)."""

    def __init__(self, problem: LayoutProblem, budget: int) -> None:
        self.problem = problem
        self.left = budget
        self.seen: dict[Genome, float] = {}

    def __call__(self, g: Genome) -> float:
        c = self.seen.get(g)
        if c is None:
            c = self.problem.cost(g)
            self.seen[g] = c
            self.left -= 1
        return c


def _descend(g: Genome, cost: _Budgeted, rng: np.random.Generator) -> tuple[Genome, float]:
    """First-improvement local search in random neighbour order, within the budget."""
    current = cost(g)
    improved = True
    while improved and cost.left > 0:
        improved = False
        moves = _neighbours(g)
        for k in rng.permutation(len(moves)):
            if cost.left <= 0:
                break
            c = cost(moves[int(k)])
            if c < current - 1e-12:
                g, current, improved = moves[int(k)], c, True
                break
    return g, current


def search_layout(problem: LayoutProblem, *, seed: int = 0,
                  budget: int = 500) -> tuple[Genome, float]:
    """Seeded iterated local search over genomes; exhaustive when the space fits the budget.

    Starts from the relationship-chart order (Systematic Layout Planning: the
    door first, then the zone closest to those placed), its mirror and random
    orders; descends by swaps and flips; then kicks the best and descends again
    until ``budget`` distinct layouts have been costed. The same problem and
    seed always give the same genome.
    """
    n = problem.n
    if n == 1:
        return ((0,), ()), problem.cost(((0,), ()))
    if _space_size(n) <= budget:
        return search_exhaustive(problem)
    rng = np.random.default_rng(seed)
    cost = _Budgeted(problem, budget)
    chart = _chart_order(problem)
    starts: list[Genome] = [(o, f) for o in (chart, chart[::-1])
                            for f in ((0,) * (n - 1), (1,) * (n - 1))]
    starts += [(tuple(int(v) for v in rng.permutation(n)),
                tuple(int(v) for v in rng.integers(0, 2, n - 1))) for _ in range(4)]
    ranked = sorted(starts, key=lambda g: (cost(g), starts.index(g)))
    best, best_cost = _descend(ranked[0], cost, rng)
    for g in ranked[1:3]:
        cand, c = _descend(g, cost, rng)
        if c < best_cost:
            best, best_cost = cand, c
    while cost.left > 0:
        cand, c = _descend(_kick(best, rng), cost, rng)
        if c <= best_cost:
            best, best_cost = cand, c
    return best, best_cost
