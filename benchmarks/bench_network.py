"""Walk-time matrix speed: WalkGraph.walk_minutes against networkx, and growth with graph size.

Prints JSON. Run: ``.venv/bin/python benchmarks/bench_network.py [--repeats 5]``.

- ``matrix_1000``: 1,000 origins (seeded, on the main piece) to every node, 10 min.
- ``baseline_networkx``: one ``nx.single_source_dijkstra_path_length`` per origin,
  same cutoff, on ``WalkGraph.to_networkx()`` (the osmnx-style MultiDiGraph),
  same run; ``speedup`` = baseline median / matrix median; the distances are checked equal.
- ``candidates_h3``: every H3 resolution-10 cell over the nodes' convex hull,
  snapped from its centre, to every node; and ``every_node`` as origins.
- ``scaling``: the Helsinki graph tiled 1x1, 2x2, 4x4 (translated copies stitched
  by a few short footways), 1,000 origins to every node.
- ``isochrones``: 10 sites x (5, 10) min catchments.

These time the forward many-to-many matrix (``walk_minutes``); the criteria no
longer use it for candidates: they search from the points with
``WalkGraph.reach``, which ``benchmarks/bench_national.py`` times at country scale.
All times are medians over the repeats, in seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import h3
import networkx as nx
import numpy as np
import pyrosm
import scipy
import shapely
from scipy.spatial import cKDTree

from siteplanner.network import WalkGraph

CUTOFF_MIN = 10.0
N_ORIGINS = 1000
SEED = 42


def median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def helsinki() -> WalkGraph:
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    nodes, edges = osm.get_network(network_type="walking", nodes=True)
    crs = nodes.estimate_utm_crs()
    return WalkGraph.from_gdfs(nodes.set_index("id").to_crs(crs), edges.to_crs(crs))


def tiled(graph: WalkGraph, k: int, *, gap_m: float = 40.0, links: int = 5) -> WalkGraph:
    """k x k translated copies, each stitched to its right and upper neighbour by short links."""
    if k == 1:
        return graph
    lo, hi = graph.xy.min(axis=0), graph.xy.max(axis=0)
    step = hi - lo + gap_m
    n = graph.n_nodes
    tiles = [(i, j) for i in range(k) for j in range(k)]
    shifts = np.array([[i * step[0], j * step[1]] for i, j in tiles])
    xy = np.concatenate([graph.xy + s for s in shifts])
    offset = np.arange(len(tiles)) * n
    u = np.concatenate([graph.edge_u + o for o in offset])
    v = np.concatenate([graph.edge_v + o for o in offset])
    length = np.tile(graph.edge_length, len(tiles))
    geom = np.concatenate([shapely.transform(graph.edge_geometry, lambda c, s=s: c + s) for s in shifts])
    # Links join the main piece's nodes nearest the facing edges of two tiles.
    main = np.flatnonzero(graph.in_largest)
    tree = cKDTree(graph.xy[main])
    link_u, link_v = [], []
    for t, (i, j) in enumerate(tiles):
        for axis, di, dj in ((0, 1, 0), (1, 0, 1)):
            if (i + di) >= k or (j + dj) >= k:
                continue
            other = tiles.index((i + di, j + dj))
            along = np.linspace(lo[1 - axis], hi[1 - axis], links + 2)[1:-1]
            side = np.empty((links, 2))
            side[:, axis], side[:, 1 - axis] = hi[axis], along
            facing = side.copy()
            facing[:, axis] = lo[axis]
            _, near = tree.query(side)
            _, far = tree.query(facing)
            link_u.append(main[near] + offset[t])
            link_v.append(main[far] + offset[other])
    lu, lv = np.concatenate(link_u), np.concatenate(link_v)
    ends = np.stack([xy[lu], xy[lv]], axis=1)
    link_len = np.hypot(*(ends[:, 1] - ends[:, 0]).T)
    link_geom = shapely.linestrings(ends.reshape(-1, 2), indices=np.repeat(np.arange(len(lu)), 2))
    return WalkGraph(
        np.arange(len(xy), dtype=np.int64),
        xy,
        np.r_[u, lu],
        np.r_[v, lv],
        np.r_[length, link_len],
        np.r_[geom, link_geom],
        crs=graph.crs,
        speed_kmh=graph.speed_kmh,
    )


def h3_candidates(graph: WalkGraph) -> gpd.GeoSeries:
    hull = gpd.GeoSeries([shapely.MultiPoint(graph.xy).convex_hull], crs=graph.crs).to_crs(4326)
    cells = h3.geo_to_cells(hull.iloc[0].__geo_interface__, 10)
    centres = np.array([h3.cell_to_latlng(c) for c in sorted(cells)])
    return gpd.GeoSeries(shapely.points(centres[:, 1], centres[:, 0]), crs=4326).to_crs(graph.crs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)

    build_s, graph = median_seconds(helsinki, 1)
    origins = rng.choice(np.flatnonzero(graph.in_largest), N_ORIGINS, replace=False)
    matrix_s, matrix = median_seconds(
        lambda: graph.walk_minutes(origins, cutoff_min=CUTOFF_MIN), args.repeats
    )

    G = graph.to_networkx()
    cutoff_m = CUTOFF_MIN * graph.metres_per_minute
    ids = graph.node_ids[origins]

    def networkx_rows() -> list[dict[int, float]]:
        return [
            nx.single_source_dijkstra_path_length(G, int(s), cutoff=cutoff_m, weight="length")
            for s in ids
        ]

    baseline_s, rows = median_seconds(networkx_rows, args.baseline_repeats)
    worst = 0.0
    for r, row in enumerate(rows):
        got = matrix.getrow(r)
        metres = got.data * graph.metres_per_minute
        mine = dict(zip(graph.node_ids[got.indices].tolist(), metres, strict=True))
        # Paths summed in another order may land a hair either side of the cutoff.
        edge = {i for i, d in (mine | row).items() if abs(d - cutoff_m) < 1e-6}
        assert mine.keys() - edge == row.keys() - edge, f"origin {ids[r]}: reached sets differ"
        worst = max(worst, max(abs(mine[i] - row[i]) for i in mine.keys() & row.keys()))

    cells = h3_candidates(graph)
    cells_s, cell_matrix = median_seconds(
        lambda: graph.walk_minutes(cells, cutoff_min=CUTOFF_MIN), args.repeats
    )
    every = np.flatnonzero(graph.in_largest)
    every_s, every_matrix = median_seconds(
        lambda: graph.walk_minutes(every, cutoff_min=CUTOFF_MIN), args.repeats
    )

    scaling: list[dict[str, Any]] = []
    for k in (1, 2, 4):
        big = tiled(graph, k)
        starts = rng.choice(np.flatnonzero(big.in_largest), N_ORIGINS, replace=False)
        secs, m = median_seconds(
            lambda b=big, s=starts: b.walk_minutes(s, cutoff_min=CUTOFF_MIN),  # type: ignore[misc]
            args.repeats,
        )
        scaling.append(
            {
                "tiles": f"{k}x{k}",
                "nodes": big.n_nodes,
                "junctions_searched": big._chains.n_junctions,
                "components": big.n_components,
                "seconds": round(secs, 4),
                "reachable_pairs": int(m.nnz),
            }
        )
    base = scaling[0]["seconds"]
    for row in scaling:
        row["time_vs_1x1"] = round(row["seconds"] / base, 2)
        row["nodes_vs_1x1"] = round(row["nodes"] / scaling[0]["nodes"], 2)

    sites = rng.choice(np.flatnonzero(graph.in_largest), 10, replace=False)
    iso_s, iso = median_seconds(lambda: graph.isochrones(sites, minutes=(5, 10)), args.repeats)

    print(
        json.dumps(
            {
                "graph": "pyrosm helsinki_pbf walking network",
                "nodes": graph.n_nodes,
                "edges": len(graph.edge_length),
                "cutoff_min": CUTOFF_MIN,
                "speed_kmh": graph.speed_kmh,
                "repeats": args.repeats,
                "build_graph_s": round(build_s, 4),
                "matrix_1000": {
                    "origins": N_ORIGINS,
                    "targets": "every node",
                    "median_s": round(matrix_s, 4),
                    "reachable_pairs": int(matrix.nnz),
                },
                "baseline_networkx": {
                    "method": "nx.single_source_dijkstra_path_length per origin, cutoff, "
                    "on the osmnx-style MultiDiGraph",
                    "repeats": args.baseline_repeats,
                    "median_s": round(baseline_s, 4),
                    "max_abs_diff_m": worst,
                },
                "speedup": round(baseline_s / matrix_s, 1),
                "candidates_h3": {
                    "resolution": 10,
                    "cells": len(cells),
                    "median_s": round(cells_s, 4),
                    "reachable_pairs": int(cell_matrix.nnz),
                },
                "every_node": {
                    "origins": len(every),
                    "median_s": round(every_s, 4),
                    "reachable_pairs": int(every_matrix.nnz),
                },
                "scaling": scaling,
                "isochrones_10_sites_2_times_s": round(iso_s, 4),
                "isochrone_rows": len(iso),
                "versions": {
                    "python": platform.python_version(),
                    "scipy": scipy.__version__,
                    "networkx": nx.__version__,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
