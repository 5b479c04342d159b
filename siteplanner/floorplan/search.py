"""Searching the layout genomes: exhaustive for small programmes, else seeded iterated local search."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from siteplanner.floorplan.layout import Genome, LayoutProblem

__all__ = ["search_all", "search_exhaustive", "search_layout", "search_ranked"]

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
                  patience: int = _PATIENCE) -> list[tuple[Genome, float]]:
    """Seeded iterated local search over genomes; exhaustive when the space fits the budget.

    Starts from the relationship-chart order (Systematic Layout Planning: the
    door first, then the zone closest to those placed), its mirror and random
    orders; descends by swaps and flips; then kicks the best and descends again
    until ``budget`` distinct layouts have been costed. Returns every costed
    genome, cheapest first (ties in the order they were costed), so the caller
    can check the full plan of the next best when the best one fails a check
    the cost cannot see. Once the best layout breaks no rule, the search stops
    after ``patience`` layouts bring no improvement. The same problem and seed
    always give the same list.
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
