"""Running a national study on Dask: one task per area, retried once, cached, resumable.

:func:`run_national` plans the areas (:func:`siteplanner.national.plan_areas`),
skips those whose result is already stored under their key
(``OUT/.cache/<key>/``), and submits one Dask task per remaining area
(:func:`run_area`: the pipeline of ``siteplanner rank`` with ``--no-report``)
with ``retries=1``. The cluster is a ``distributed.LocalCluster`` of
``workers`` processes, one thread each, each with a stated memory limit, or an
existing cluster at ``scheduler``. A worker reads an extract once and keeps
it for every later area (:func:`siteplanner.sources.pbf.keep_reads`, which
a one-study ``rank`` leaves off), so splitting one extract into N areas reads
it once per worker, not N times.

The worker sends each area's outputs back as one archive, and the client
writes ``OUT/areas/<area>/`` from it atomically as soon as the area finishes,
then stores it in the cache: a run stopped half way keeps every finished
area, and the rerun finds them cached. An area that fails twice (bad data, a
worker killed under it) is reported and the other areas go on.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from siteplanner._errors import ConfigError, InputError, SitePlannerError
from siteplanner._fs import atomic_outputs
from siteplanner.config import CRITERIA, Study
from siteplanner.national import MONEY_PREFIXES, AreaJob, national_ranking, plan_areas
from siteplanner.national_tiles import merge_tile, overlap_m, tile_areas

__all__ = ["AreaRow", "NationalRun", "cluster_client", "run_area", "run_national"]

log = logging.getLogger(__name__)

#: Test-only: ``AREA=SECONDS[=MARKER_DIR]`` makes that area's first attempt sleep, so a test can
#: kill the worker running it; the marker folder records each attempt's process id.
SLEEP_HOOK = "SITEPLANNER_TEST_NATIONAL_SLEEP"
#: How long a scheduler address may take to answer before the run stops with an error.
CONNECT_TIMEOUT = "5s"


@dataclass
class AreaRow:
    """One line of ``areas.csv``."""

    area: str
    folder: str
    key: str
    status: str  # done | cached | failed
    seconds: float = 0.0
    candidates: int = 0
    sites: int = 0
    error: str = ""


@dataclass
class NationalRun:
    """What a national run did: the areas, the national ranking, the cluster and the timings."""

    study: Study
    rows: list[AreaRow]
    sites: pd.DataFrame
    ranking: dict[str, Any]
    cluster: dict[str, Any]
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- the worker side

def run_area(job: AreaJob) -> dict[str, Any]:
    """One area's pipeline on a worker: its outputs as an archive, its candidates for the national ranking."""
    from siteplanner.io import write_rank_outputs
    from siteplanner.pipeline import rank_sites
    from siteplanner.sources.pbf import keep_reads, read_count

    keep_reads()  # this worker's later areas read the same extract: read it once
    _sleep_hook(job.area)
    t0 = time.perf_counter()
    result = rank_sites(job.study, floorplans=False)
    with tempfile.TemporaryDirectory(prefix="siteplanner-area-") as d:
        folder = Path(d) / "out"
        write_rank_outputs(result, folder, report=False)
        archive = _pack(folder)
    cands = result.candidates
    wgs = cands.geometry.to_crs(4326)
    keep = [c for c in ("address", "district", "edge", *CRITERIA) if c in cands]
    keep += [c for c in cands.columns if c.startswith(MONEY_PREFIXES)]
    table = pd.DataFrame({"area": job.area, "site_id": cands["site_id"].astype(str).to_numpy(),
                          "lon": wgs.x.to_numpy(), "lat": wgs.y.to_numpy(),
                          "area_rank": cands["rank"].astype("Float64").to_numpy(),
                          **{c: cands[c].to_numpy() for c in keep}})
    own = result.layers.own_branches.geometry.to_crs(4326)
    outline = result.layers.area.to_crs(4326).geometry.union_all().simplify(0.0005)
    return {"archive": archive, "sites": table.to_parquet(index=False),
            "own": pd.DataFrame({"lon": own.x.to_numpy(), "lat": own.y.to_numpy()}).to_parquet(index=False),
            "meta": {"area": job.area, "seconds": round(time.perf_counter() - t0, 3),
                     "candidates": len(cands), "sites": len(result.selected),
                     "warnings": list(result.warnings), "outline_wkt": outline.wkt,
                     "worker_pid": os.getpid(), "worker_extract_reads": read_count()}}


def _sleep_hook(area: str) -> None:
    spec = os.environ.get(SLEEP_HOOK, "")
    name, _, rest = spec.partition("=")
    if not spec or name != area:
        return
    seconds, _, marker = rest.partition("=")
    first = True
    if marker:
        first = not any(Path(marker).iterdir())
        (Path(marker) / f"attempt-{os.getpid()}").write_text(area, encoding="utf-8")
    if first:
        time.sleep(float(seconds))


def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder)
            if p.is_file() and not rel.parts[0].startswith("."):
                tar.add(p, arcname=str(rel))
    return buf.getvalue()


def _unpack(archive: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        tar.extractall(dest, filter="data")


# --------------------------------------------------------------------------- the cluster

@contextmanager
def cluster_client(*, workers: int | None = None, scheduler: str | None = None,
                   memory_limit: str | int | None = None) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A Dask client on a new LocalCluster of ``workers`` processes, or on the cluster at ``scheduler``.

    The LocalCluster's workers have one thread each (the pipeline is one
    Python thread) and ``memory_limit`` each (default: the machine's memory
    divided by ``workers``, Dask's own default); a worker past it is
    restarted by its nanny and its area retried. Yields the client and a
    description of the cluster for ``national.json``.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            msg = (f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT} "
                   f"({type(e).__name__}); start one with `dask scheduler` or check the address")
            raise InputError(msg) from None
        try:
            yield client, _describe(client, "scheduler", scheduler)
        finally:
            client.close()
        return
    n = workers if workers is not None else max(1, min(os.cpu_count() or 1, 4))
    if n < 1:
        msg = f"--workers {n}: give at least 1 worker process (or --scheduler ADDRESS)"
        raise ConfigError(msg)
    limit = memory_limit if memory_limit is not None else _default_memory(n)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=limit,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client, _describe(client, "local", cluster.scheduler_address)


def _default_memory(n: int) -> int:
    import psutil

    return int(psutil.virtual_memory().total // n)


def _describe(client: Any, kind: str, address: str) -> dict[str, Any]:
    info = client.scheduler_info()
    ws = list(info.get("workers", {}).values())
    return {"kind": kind, "address": address, "workers": len(ws),
            "threads": sum(int(w.get("nthreads", 0)) for w in ws),
            "memory_limit_bytes": sorted({int(w.get("memory_limit") or 0) for w in ws}),
            "retries": 1}


# --------------------------------------------------------------------------- the client side

def run_national(study: Study, *, out_dir: Path, admin_level: int | None = None, top_k: int | None = None,
                 workers: int | None = None, scheduler: str | None = None,
                 memory_limit: str | int | None = None, tile_km2: float | None = None,
                 on_area: Callable[[AreaRow], None] | None = None) -> NationalRun:
    """Run ``study`` over its areas into ``out_dir`` and rank the best sites nationally.

    Parameters
    ----------
    study
        The national study (its selection's ``top_k`` is each area's K).
    out_dir
        The output folder: ``areas/<area>/`` and ``.cache/`` are written here.
    admin_level
        Split the extract by its boundaries at this level; else ``[national] places``.
    top_k
        The national K (default: the study's ``selection.top_k``).
    workers, scheduler, memory_limit
        The cluster (see :func:`cluster_client`).
    tile_km2
        Split each boundary area larger than this (km²) into tiles with overlap,
        one task each (:mod:`siteplanner.national_tiles`); None: areas whole.
    on_area
        Called with each area's row as it finishes (the CLI prints it).
    """
    if workers is not None and workers < 1 and scheduler is None:
        msg = f"--workers {workers}: give at least 1 worker process (or --scheduler ADDRESS)"
        raise ConfigError(msg)
    with ExitStack() as stack:
        # a scheduler that does not answer is said at once, before any area is planned
        client = stack.enter_context(cluster_client(scheduler=scheduler)) if scheduler else None
        return _run(study, out_dir=out_dir, admin_level=admin_level, top_k=top_k, on_area=on_area,
                    tile_km2=tile_km2,
                    connected=client, cluster_options={"workers": workers, "memory_limit": memory_limit})


def _run(study: Study, *, out_dir: Path, admin_level: int | None, top_k: int | None,
         tile_km2: float | None, on_area: Callable[[AreaRow], None] | None,
         connected: tuple[Any, dict[str, Any]] | None,
         cluster_options: dict[str, Any]) -> NationalRun:
    t0 = time.perf_counter()
    cache = out_dir / ".cache"
    jobs = plan_areas(study, admin_level=admin_level, cache_dir=cache)
    if tile_km2 is not None:
        jobs = tile_areas(jobs, tile_km2=tile_km2, cache_dir=cache)
    k = top_k if top_k is not None else study.selection.top_k
    rows: dict[str, AreaRow] = {}
    state = _read_state(cache)
    todo = []
    for job in jobs:
        if (cache / job.key / "meta.json").is_file():
            rows[job.folder] = _restore(job, out_dir, cache, state)
            _report(on_area, rows[job.folder])
        else:
            todo.append(job)
    planned = time.perf_counter() - t0
    cluster: dict[str, Any] = {"kind": "none (every area cached)"}
    if todo and connected is not None:
        client, cluster = connected
        _compute(client, todo, out_dir, cache, state, rows, on_area)
    elif todo:
        with cluster_client(**cluster_options) as (client, cluster):
            _compute(client, todo, out_dir, cache, state, rows, on_area)
    computed = time.perf_counter() - t0 - planned
    t1 = time.perf_counter()
    sites, own, areas = _gather(jobs, rows, cache)
    table, how = national_ranking(sites, own, study, k=k)
    ordered = [rows[j.folder] for j in jobs]
    split: dict[str, Any] = {"by": f"admin_level={admin_level}"} if admin_level is not None else {
        "by": "places", "places": list(study.national.places)}
    if tile_km2 is not None:
        split.update(tile_km2=tile_km2, tiles=sum(j.core is not None for j in jobs),
                     overlap_m=max((overlap_m(j.study) for j in jobs), default=0.0))
    return NationalRun(study=study, rows=ordered, sites=table, ranking=how, cluster=cluster, areas=areas,
                       split=split, timings={"plan": round(planned, 3), "areas": round(computed, 3),
                                             "national_ranking": round(time.perf_counter() - t1, 3)})


def _report(on_area: Callable[[AreaRow], None] | None, row: AreaRow) -> None:
    if on_area is not None:
        on_area(row)


def _compute(client: Any, todo: list[AreaJob], out_dir: Path, cache: Path, state: dict[str, str],
             rows: dict[str, AreaRow], on_area: Callable[[AreaRow], None] | None) -> None:
    from distributed import as_completed

    futures = {client.submit(run_area, job, retries=1, pure=False, key=f"area-{job.folder}-{job.key[:16]}"
                             f"-{os.getpid()}-{time.time_ns()}"): job for job in todo}
    for fut in as_completed(futures):
        job = futures[fut]
        try:
            done = fut.result()
        except SitePlannerError as e:
            row = AreaRow(job.area, job.folder, job.key, "failed", error=str(e))
        except Exception as e:  # a killed worker, a bug in one area: the others go on
            row = AreaRow(job.area, job.folder, job.key, "failed", error=_one_line(e))
        else:
            _store(job, done, out_dir, cache, state)
            m = done["meta"]
            row = AreaRow(job.area, job.folder, job.key, "done", m["seconds"], m["candidates"], m["sites"])
        fut.release()
        rows[job.folder] = row
        _report(on_area, row)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or "no message"
    return f"{type(e).__name__}: {text}"[:500]


def _store(job: AreaJob, done: dict[str, Any], out_dir: Path, cache: Path, state: dict[str, str]) -> None:
    """Write the area's folder (atomically), then its cache entry, then the folder's key."""
    with atomic_outputs(out_dir / "areas" / job.folder) as tmp:
        _unpack(done["archive"], tmp)
    entry = cache / job.key
    part = cache / f"{job.key}.part-{os.getpid()}"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    (part / "outputs.tar").write_bytes(done["archive"])
    (part / "sites.parquet").write_bytes(done["sites"])
    (part / "own.parquet").write_bytes(done["own"])
    (part / "meta.json").write_text(json.dumps(done["meta"], indent=1), encoding="utf-8")
    if entry.exists():
        shutil.rmtree(entry)
    part.rename(entry)
    state[job.folder] = job.key
    _write_state(cache, state)


def _restore(job: AreaJob, out_dir: Path, cache: Path, state: dict[str, str]) -> AreaRow:
    """A cached area: its folder is put back from the cache when it holds another key's outputs."""
    meta = json.loads((cache / job.key / "meta.json").read_text(encoding="utf-8"))
    folder = out_dir / "areas" / job.folder
    if state.get(job.folder) != job.key or not (folder / "run.json").is_file():
        with atomic_outputs(folder) as tmp:
            _unpack((cache / job.key / "outputs.tar").read_bytes(), tmp)
        state[job.folder] = job.key
        _write_state(cache, state)
    return AreaRow(job.area, job.folder, job.key, "cached", meta["seconds"], meta["candidates"],
                   meta["sites"])


def _read_state(cache: Path) -> dict[str, str]:
    path = cache / "areas.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _write_state(cache: Path, state: dict[str, str]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    part = cache / f"areas.json.part-{os.getpid()}"
    part.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    part.replace(cache / "areas.json")


def _gather(jobs: list[AreaJob], rows: dict[str, AreaRow],
            cache: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]]]:
    """Every finished area's candidates, own branches and meta, from the cache."""
    sites, own, areas = [], [], {}
    for job in jobs:
        if rows[job.folder].status == "failed":
            continue
        entry = cache / job.key
        sites.append(merge_tile(pd.read_parquet(entry / "sites.parquet"), job))
        own.append(pd.read_parquet(entry / "own.parquet"))
        areas[job.folder] = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    if not sites:
        return pd.DataFrame(), pd.DataFrame({"lon": [], "lat": []}), areas
    return (pd.concat(sites, ignore_index=True),
            pd.concat(own, ignore_index=True).drop_duplicates(), areas)
