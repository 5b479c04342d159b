"""Searching the layout genomes: exhaustive for small programmes, else seeded iterated local search."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from siteplanner.floorplan._check import TOUCH_M
from siteplanner.floorplan.layout import _TRIES, Genome, LayoutProblem, Leaf, _axis_walls

__all__ = ["Pruned", "search_all", "search_exhaustive", "search_layout", "search_pruned",
           "search_ranked"]

#: A cost below this breaks no hard rule (each broken rule costs 10, see layout.cost).
_FEASIBLE = 10.0
#: Layouts costed without improving a best that breaks no rule before the search stops: a
#: stagnation stop (iterated local search's usual one) of about one and a half full
#: neighbourhoods of a seven-zone layout (21 swaps + 6 flips). At 30 the first 40
#: benchmark outlines cost 2/3 of the layouts of a 120-layout budget, for a mean cost
#: 0.004 above the full budget's, but the demo study's plan at 60 arrivals per hour found
#: its best layout only after ~76 and fell from 0.84 to 0.57 adjacency satisfaction; 40
#: keeps it (a slower plan, 2.5 instead of 1.5 CPU s, for a layout a designer would keep).
_PATIENCE = 40


def _space_size(n: int) -> int:
    return math.factorial(n) * 2 ** (n - 1)


def search_all(n: int) -> list[Genome]:
    """Every genome of ``n`` zones: each order with each orientation of its cuts."""
    return list(_all_genomes(n))


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

    def __init__(self, problem: LayoutProblem, budget: int, patience: int = _PATIENCE) -> None:
        self.problem = problem
        self.left = budget
        self.seen: dict[Genome, float] = {}
        self.best = math.inf
        self.since = 0
        self.patience = patience

    def __call__(self, g: Genome) -> float:
        c = self.seen.get(g)
        if c is None:
            c = self.problem.cost(g)
            self.seen[g] = c
            self.left -= 1
            self.since += 1
            if c < self.best - 1e-12:
                self.best, self.since = c, 0
            if self.best < _FEASIBLE and self.since >= self.patience:
                self.left = 0  # stagnated on a layout that breaks no rule
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
    """The best genome of :func:`search_ranked` and its cost."""
    return search_ranked(problem, seed=seed, budget=budget)[0]


def search_ranked(problem: LayoutProblem, *, seed: int = 0, budget: int = 500,
                  patience: int = _PATIENCE, start: Genome | None = None
                  ) -> list[tuple[Genome, float]]:
    """Seeded iterated local search over genomes; exhaustive when the space fits the budget.

    Starts from the relationship-chart order (Systematic Layout Planning: the
    door first, then the zone closest to those placed), its mirror and random
    orders; descends by swaps and flips; then kicks the best and descends again
    until ``budget`` distinct layouts have been costed. Returns every costed
    genome, cheapest first (ties in the order they were costed), so the caller
    can check the full plan of the next best when the best one fails a check
    the cost cannot see. Once the best layout breaks no rule, the search stops
    after ``patience`` layouts bring no improvement. The same problem and seed
    always give the same list. ``start``, when given, is one more starting layout
    (a layout found before, searched again under another cost).
    """
    n = problem.n
    if n == 1:
        return [(((0,), ()), problem.cost(((0,), ())))]
    if _space_size(n) <= budget:
        every = [(g, problem.cost(g)) for g in _all_genomes(n)]
        return sorted(every, key=lambda gc: gc[1])
    rng = np.random.default_rng(seed)
    cost = _Budgeted(problem, budget, patience)
    chart = _chart_order(problem)
    starts: list[Genome] = [(o, f) for o in (chart, chart[::-1])
                            for f in ((0,) * (n - 1), (1,) * (n - 1))]
    starts += [(tuple(int(v) for v in rng.permutation(n)),
                tuple(int(v) for v in rng.integers(0, 2, n - 1))) for _ in range(4)]
    if start is not None and start not in starts:
        starts.insert(0, start)
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
    return sorted(cost.seen.items(), key=lambda gc: gc[1])


@dataclass
class Pruned:
    """What :func:`search_pruned` found: every layout keeping the zone rules, or why none does.

    ``kept`` holds one genome per distinct layout (the same zone polygons) whose
    cost breaks no hard rule, cheapest first. ``genomes`` of the
    ``n! * 2**(n-1)`` are decided (all when ``complete``): ``pruned`` of them
    with a part of the layout already breaking a zone rule, the rest decoded in
    full (``costed`` distinct layouts). ``zone_breaks`` counts, per zone kind,
    the genomes in which that zone's own rules (width, turning circle, one piece,
    door, fixtures) break: at least that many, since a part pruned on one side is
    not decoded on the other.
    """

    kept: list[tuple[Genome, float]]
    genomes: int
    pruned: int
    costed: int
    complete: bool
    zone_breaks: dict[str, int]
    cpu_s: float
    kept_genomes: int = 0


@dataclass
class _Part:
    """Zones of one subtree decoded alike by ``flips`` (each a tuple of that subtree's cut bits)."""

    leaves: dict[int, Leaf]
    flips: list[tuple[int, ...]]


@dataclass
class _Node:
    """Every decode of one piece for one ordered list of zones, over all its cut bits."""

    alive: list[_Part]
    breaks: np.ndarray  # per zone (all ``n``), genomes of this node in which its rules break
    pruned: int


class _OutOfTime(Exception):
    pass


class _Pruner:
    """Branch and bound over the decoder's slicing tree (see :func:`search_pruned`)."""

    def __init__(self, problem: LayoutProblem, deadline: float) -> None:
        self.p = problem
        self.deadline = deadline
        self.memo: dict[tuple[bytes, tuple[int, ...]], _Node] = {}
        self.egress: dict[bytes, bool] = {}

    def node(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...]) -> _Node:
        key = (rkey, items)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        if time.process_time() > self.deadline:
            raise _OutOfTime
        m = len(items)
        dead = self._dead(region, rkey, items)
        if dead:
            # every bit string breaks that zone's rules: nothing here needs decoding
            breaks = np.zeros(self.p.n)
            breaks[dead] = 2 ** (m - 1)
            return self._settle(key, [], breaks, 2 ** (m - 1), done=True)
        parts: dict[tuple[bytes, ...], _Part] = {}
        first = None
        if m >= len(_TRIES) and _TRIES[-1] == 1 and region.area > 0:
            first = [next(iter(self.p.ordered_cuts(region, rkey, items, f)), None) for f in (0, 1)]
        if first is None or None in first:
            # a small node keeps the least broken of several cuts: decode each bit string
            for flips in itertools.product((0, 1), repeat=m - 1):
                leaves, _ = self.p._decode(region, rkey, items, flips)
                parts.setdefault(_leaf_keys(leaves), _Part(leaves, [])).flips.append(flips)
            return self._settle(key, list(parts.values()), np.zeros(self.p.n), 0)
        breaks = np.zeros(self.p.n)
        pruned = 0
        alive: list[_Part] = []
        for f, (k, low, high) in enumerate(cast(list[tuple[int, Leaf, Leaf]], first)):
            sides = [(low, items[:k], 2 ** (m - k - 1)), (high, items[k:], 2 ** (k - 1))]
            # a side dead before decoding goes first, else one decoded before, else the
            # smaller: when the first side is dead, the other is not decoded
            rank = [(not self._dead(*piece, its), (piece[1], its) not in self.memo, len(its))
                    for piece, its, _ in sides]
            low_first = rank[0] <= rank[1]
            (piece, its, other), later = sides if low_first else sides[::-1]
            one = self.node(*piece, its)
            # a zone's own rules depend on its piece only: its breaks times the other side's bits
            breaks += one.breaks * other
            if not one.alive:
                pruned += one.pruned * other
                continue
            two = self.node(*later[0], later[1])
            breaks += two.breaks * later[2]
            pruned += one.pruned * other + two.pruned * later[2] - one.pruned * two.pruned
            left, right = (one, two) if low_first else (two, one)
            for a in left.alive:
                for b in right.alive:
                    leaves = {**a.leaves, **b.leaves}
                    bits = [(f, *x, *y) for x in a.flips for y in b.flips]
                    if self.bound(leaves) > 0:
                        pruned += len(bits)
                    else:
                        alive.append(_Part(leaves, bits))
        return self._settle(key, alive, breaks, pruned, done=True)

    def _settle(self, key: tuple[bytes, tuple[int, ...]], parts: list[_Part], breaks: np.ndarray,
                pruned: int, *, done: bool = False) -> _Node:
        alive = parts
        if not done:
            alive = []
            for part in parts:
                for k, (g, gk) in part.leaves.items():
                    if self.p._leaf_broken(k, g, gk) > 0:
                        breaks[k] += len(part.flips)
                if self.bound(part.leaves) > 0:
                    pruned += len(part.flips)
                else:
                    alive.append(part)
        out = self.memo[key] = _Node(alive, breaks, pruned)
        return out

    def _dead(self, region: BaseGeometry, rkey: bytes, items: tuple[int, ...]) -> list[int]:
        """Zones of ``items`` whose own rules break in any piece of ``region`` (before decoding).

        A zone's piece lies in ``region``: it holds no more of a door (the ATMs need
        ``min_shared_wall_m`` of one), and its box is no wider, so a zone whose
        minimum width (or a public zone's turning circle) exceeds the region's short
        side holds no disc that wide, and breaks its width or turning rule.
        """
        p = self.p
        out = [p.ss] if p.ss in items and not p._at_door((region, rkey)) else []
        if len(items) > 1 and region.area > 0:
            x0, y0, x1, y1 = region.bounds
            short = min(x1 - x0, y1 - y0)
            for k in items:
                if short < p.widths[k] or (p.public[k] and short < p.standard.turning_circle_m):
                    out.append(k)
        return sorted(set(out))

    def bound(self, leaves: dict[int, Leaf]) -> float:
        """Hard rules ``leaves`` break whatever the other zones are (each at least 1 when any).

        Every term is one of :meth:`LayoutProblem.cost`'s hard terms, which are
        non-negative, restricted to these zones: their own rules, an X pair or a
        cash room's wall behind the counter between two of them (a wall between
        two zones depends on those two only), public floor beyond the egress reach.
        """
        p = self.p
        ids = list(leaves)
        hard = sum(p._leaf_broken(k, *leaves[k]) for k in ids)
        if hard > 0:
            return hard
        if p.door_xy.size:
            for k in ids:
                if p.public[k] and self._beyond(leaves[k]):
                    return 1.0
        if len(ids) > 1 and (p.x[np.ix_(ids, ids)].any() or p.behind_counter):
            walls = _axis_walls([leaves[k][0] for k in ids])
            x = p.x[np.ix_(ids, ids)]
            hard += float((walls[x] > TOUCH_M).sum()) / 2
            if p.behind_counter and p.access.service in leaves:
                s = ids.index(p.access.service)
                sec = p.access.secure[ids]
                hard += float((walls[sec, s] > p.counter_len + TOUCH_M).sum())
        return hard

    def _beyond(self, leaf: Leaf) -> bool:
        hit = self.egress.get(leaf[1])
        if hit is None:
            xy = shapely.get_coordinates(leaf[0])
            d = np.sqrt(((xy[:, None, :] - self.p.door_xy[None, :, :]) ** 2).sum(axis=2))
            hit = self.egress[leaf[1]] = bool(d.min(axis=1).max() > self.p.standard.max_egress_m)
        return hit


def _leaf_keys(leaves: dict[int, Leaf]) -> tuple[bytes, ...]:
    return tuple(leaves[k][1] for k in sorted(leaves))


def search_pruned(problem: LayoutProblem, *, cpu_s: float = math.inf) -> Pruned:
    """Every layout that keeps the zone rules, by branch and bound over the decoder's tree.

    A node of five or more zones keeps the first cut the decoder offers
    (``_TRIES``), and that cut depends only on the piece, the ordered zones and
    its own bit; its two subtrees then decode independently, on their own
    bits. So the layouts of a node are the pairs of its sides' layouts, and a
    side whose zones already break a hard rule (:meth:`_Pruner.bound`) prunes
    every pairing with it: no other zone can repair it, since the cost adds
    non-negative terms. Smaller nodes pick among several cuts by what their
    subtrees break, so they are decoded bit string by bit string (at most 8).
    Sides are memoised per piece and ordered zones, and bit strings decoding to
    the same polygons are one layout, costed once. Stops (``complete`` false)
    past ``cpu_s`` CPU seconds.
    """
    start = time.process_time()
    n = problem.n
    pr = _Pruner(problem, start + cpu_s)
    seen: dict[tuple[bytes, ...], tuple[Genome, float, int]] = {}
    breaks = np.zeros(n)
    genomes = pruned = 0
    complete = True
    try:
        for order in itertools.permutations(range(n)):
            node = pr.node(problem.outline, problem.outline_key, order)
            breaks += node.breaks
            pruned += node.pruned
            genomes += 2 ** (n - 1)
            for part in node.alive:
                lk = _leaf_keys(part.leaves)
                hit = seen.get(lk)
                if hit is None:
                    c = problem.cost_leaves([part.leaves[k] for k in range(n)])
                    hit = ((order, part.flips[0]), c, 0)
                seen[lk] = (hit[0], hit[1], hit[2] + len(part.flips))
    except _OutOfTime:
        complete = False
    kept = sorted(((g, c) for g, c, _ in seen.values() if c < _FEASIBLE), key=lambda gc: gc[1])
    return Pruned(kept=kept, genomes=genomes, pruned=pruned, costed=len(seen), complete=complete,
                  zone_breaks={problem.kinds[k]: int(v) for k, v in enumerate(breaks) if v},
                  cpu_s=time.process_time() - start,
                  kept_genomes=sum(m for _, c, m in seen.values() if c < _FEASIBLE))
