"""Benchmark the ranking pipeline; prints JSON.

0. A whole small country as a user runs it: ``siteplanner rank --osm
   andorra-2022-02.osm.pbf --brand MoraBanc --no-report`` as a subprocess
   (wall and CPU seconds, median of --repeats), against the time to read the
   data measured in the same run: pyrosm reading the extract's walking network
   and POIs (the floor; median of --repeats). Also the seconds per stage the
   run recorded in run.json, and ``siteplanner --help`` (start-up and imports).
1. Seconds per stage for the bundled Helsinki demo (median of --repeats runs).
2. How the feature, score and select stages grow with the work: the real
   city's candidates and POIs (and its stops and banks) are tiled side by side
   to 1k ... 100k candidates against as many POIs, and timed against a named
   baseline in the same run: GeoPandas' own spatial join
   (``sjoin(predicate="dwithin")``) followed by a pandas group-by, computing the
   same kernel sums.

Run: .venv/bin/python benchmarks/bench_rank.py [--quick] [--country-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
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
from siteplanner.sources.pbf import keep_reads

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "data" / "helsinki" / "study.toml"
COUNTRY = ROOT / "siteplanner" / "data" / "andorra" / "andorra-2022-02.osm.pbf"
CLI = Path(sys.executable).with_name("siteplanner")


def read_floor(pbf: Path) -> tuple[float, float]:
    """Wall and CPU seconds for pyrosm to read the extract's walking network and POIs."""
    import pyrosm

    from siteplanner.sources._osm import OSM_FEATURE_FILTER

    w0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(str(pbf))
        osm.get_pois(custom_filter=OSM_FEATURE_FILTER)
        osm.get_network(network_type="walking", nodes=True)
    return time.perf_counter() - w0, time.process_time() - c0


def timed_subprocess(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def country_run(pbf: Path, repeats: int) -> dict[str, object]:
    """The CLI end to end on a whole country against the read floor, in one run."""
    def med(xs: list[float]) -> float:
        return round(statistics.median(xs), 3)

    read_floor(pbf)  # warm pyrosm's own result cache, which the CLI's reads use too
    floors = [read_floor(pbf) for _ in range(repeats)]
    helps = [timed_subprocess([str(CLI), "--help"]) for _ in range(repeats)]
    runs, stages = [], []
    out = Path(tempfile.mkdtemp(prefix="bench_rank_"))
    try:
        for _ in range(repeats):
            runs.append(timed_subprocess([str(CLI), "rank", "--osm", str(pbf), "--brand", "MoraBanc",
                                          "--no-report", "--out", str(out / "run")]))
            record = json.loads((out / "run" / "run.json").read_text())
            stages.append(record["seconds_per_stage"])
        candidates = record["candidates"]["count"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    floor_wall, cli_wall = med([f[0] for f in floors]), med([r[0] for r in runs])
    return {
        "command": f"siteplanner rank --osm {pbf.name} --brand MoraBanc --no-report --out OUT",
        "candidates": candidates,
        "read_floor_s": floor_wall,
        "read_floor_cpu_s": med([f[1] for f in floors]),
        "cli_wall_s": cli_wall,
        "cli_cpu_s": med([r[1] for r in runs]),
        "ratio_wall_to_floor": round(cli_wall / floor_wall, 2),
        "stages_in_run_s": sum(med([st[k] for st in stages]) for k in stages[0]),
        "seconds_per_stage_median": {k: med([st[k] for st in stages]) for k in stages[0]},
        "help_wall_s": med([h[0] for h in helps]),
        "help_cpu_s": med([h[1] for h in helps]),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "repeats": repeats,
    }


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
    ap.add_argument("--country-only", action="store_true",
                    help="only the whole-country CLI run against the read floor")
    ap.add_argument("--osm", type=Path, default=COUNTRY, help="the country's .osm.pbf")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    country = country_run(args.osm, max(repeats, 3))
    print(json.dumps({"benchmark": "rank", "country": country}, indent=2), flush=True)
    if args.country_only:
        return
    study = load_study(STUDY)

    def cold_run() -> dict[str, float]:
        keep_reads(False)  # time the file read on every repeat, as a fresh process would
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
        "country": country,
        "demo_candidates": len(result.candidates),
        "demo_seconds_per_stage_median": demo,
        "demo_total_s": round(sum(demo.values()), 3),
        "repeats": repeats,
        "scaling": scaling,
        "baseline": "geopandas.sjoin(predicate='dwithin') + groupby, commercial criterion",
    }, indent=2))


if __name__ == "__main__":
    main()
