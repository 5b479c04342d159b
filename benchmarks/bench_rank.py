"""Benchmark the ranking pipeline; prints JSON.

1. Seconds per stage for the bundled Helsinki demo (median of --repeats runs).
2. How the feature, score and select stages grow with the work: the real
   city's candidates and POIs (and its stops and banks) are tiled side by side
   to 1k ... 100k candidates against as many POIs, and timed against a named
   baseline in the same run: GeoPandas' own spatial join
   (``sjoin(predicate="dwithin")``) followed by a pandas group-by, computing the
   same kernel sums.

Run: .venv/bin/python benchmarks/bench_rank.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from siteplanner.config import load_study
from siteplanner.features import compute_criteria as _features
from siteplanner.features import kernel_sum
from siteplanner.model import score
from siteplanner.pipeline import rank_sites
from siteplanner.selection import select_top
from siteplanner.sources.pbf import _read_pbf

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "data" / "helsinki" / "study.toml"


def tile(gdf: gpd.GeoDataFrame, n_tiles: int, dx: float, dy: float) -> gpd.GeoDataFrame:
    """``n_tiles`` translated copies of ``gdf`` on a square grid."""
    side = int(np.ceil(np.sqrt(n_tiles)))
    parts = []
    for t in range(n_tiles):
        ox, oy = (t % side) * dx, (t // side) * dy
        g = gdf.copy()
        g.geometry = shapely.transform(gdf.geometry.values, lambda xy, ox=ox, oy=oy: xy + [ox, oy])
        g.index = [f"{i}-{t}" for i in gdf.index]
        parts.append(g)
    return gpd.GeoDataFrame(pd.concat(parts), geometry="geometry", crs=gdf.crs)


def sjoin_kernel(cands: gpd.GeoDataFrame, pts: gpd.GeoDataFrame, radius: float) -> pd.Series:
    """The peer-library way: a GeoPandas distance join, then a group-by."""
    pts = pts[["geometry"]].reset_index(drop=True)
    j = gpd.sjoin(cands[["geometry"]], pts, predicate="dwithin", distance=radius)
    d = j.geometry.distance(pts.geometry.iloc[j["index_right"].to_numpy()].set_axis(j.index))
    k = (1 - (d / radius) ** 2) ** 2
    return k.groupby(level=0).sum().reindex(cands.index, fill_value=0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    study = load_study(STUDY)

    def cold_run() -> dict[str, float]:
        _read_pbf.cache_clear()  # time the file read on every repeat, as a fresh process would
        return rank_sites(study).timings

    runs = [cold_run() for _ in range(repeats)]
    demo = {s: statistics.median(r[s] for r in runs) for s in runs[0]}
    result = rank_sites(study)
    layers, cands = result.layers, result.candidates[["site_id", "geometry", "cell"]]
    w, s, e, n = layers.area.total_bounds
    dx, dy = (e - w) + 50, (n - s) + 50

    sizes = [1_000, 10_000] if args.quick else [1_000, 3_000, 10_000, 30_000, 100_000]
    scaling = []
    for size in sizes:
        t = int(np.ceil(size / len(cands)))
        c = tile(cands, t, dx, dy).iloc[:size]
        lay = dataclasses.replace(
            layers,
            pois=tile(layers.pois, int(np.ceil(size / len(layers.pois))), dx, dy).iloc[:size],
            transit=tile(layers.transit, t, dx, dy),
            competitors=tile(layers.competitors, t, dx, dy),
            own_branches=tile(layers.own_branches, t, dx, dy),
        )
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            raw = _features(c, lay, study)
            t1 = time.perf_counter()
            scored = score(raw, study.criteria)
            table = gpd.GeoDataFrame(c.join(scored), geometry="geometry", crs=layers.crs)
            t2 = time.perf_counter()
            select_top(table, lay.own_branches, k=10, min_spacing_m=200, min_distance_to_own_m=200)
            t3 = time.perf_counter()
            times.append((t1 - t0, t2 - t1, t3 - t2))
        row = {
            "candidates": len(c), "pois": len(lay.pois),
            "features_s": round(statistics.median(x[0] for x in times), 3),
            "score_s": round(statistics.median(x[1] for x in times), 3),
            "select_s": round(statistics.median(x[2] for x in times), 3),
        }
        # the commercial criterion alone, ours vs the GeoPandas join, same data, same answer
        if size <= (10_000 if args.quick else 30_000):
            t0 = time.perf_counter()
            ours = kernel_sum(c, lay.pois, radius_m=250, name="commercial")
            t1 = time.perf_counter()
            base = sjoin_kernel(c, lay.pois, 250)
            t2 = time.perf_counter()
            assert np.allclose(ours.to_numpy(), base.to_numpy())
            row |= {"commercial_ours_s": round(t1 - t0, 3),
                    "commercial_geopandas_sjoin_s": round(t2 - t1, 3),
                    "speedup_vs_sjoin": round((t2 - t1) / (t1 - t0), 1)}
        scaling.append(row)
        print(json.dumps(row), flush=True) if args.quick else None

    print(json.dumps({
        "benchmark": "rank",
        "demo_candidates": len(result.candidates),
        "demo_seconds_per_stage_median": demo,
        "demo_total_s": round(sum(demo.values()), 3),
        "repeats": repeats,
        "scaling": scaling,
        "baseline": "geopandas.sjoin(predicate='dwithin') + groupby, commercial criterion",
    }, indent=2))


if __name__ == "__main__":
    main()
