"""The features stage alone, on the state the network stage leaves, A/B against another tree.

Usage (from ``benchmarks/``)::

    ../.venv/bin/python bench_features.py prepare PLACE STATE.pkl
    ../.venv/bin/python bench_features.py ab STATE.pkl --before SRC [--repeats 3]
        [--after SRC]

``prepare`` runs the pipeline's stages up to ``network`` once (``PLACE`` is ``demo``, ``andorra``
(the bundled one), or a ``.osm.pbf`` path with ``--brand``) and pickles the state. ``ab``
then runs ``features_stage`` on it in fresh processes, the package taken from ``--before``
and ``--after`` (folders holding ``siteplanner/``; this checkout when left out), interleaved
before/after, and prints JSON: CPU seconds of the stage (the child's own ``getrusage``), its
peak RSS (``VmHWM``, reset once the state is unpickled) and the RSS it starts from, their
medians, and whether ``raw`` and ``access`` are equal (``DataFrame.equals``) in every run.

The state is pickled by this checkout; both trees must read it (the pipeline's state
classes unchanged between them).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = "RESULT "


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        line = next(x for x in f if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak() -> None:
    """Reset the kernel's high-water mark (``VmHWM``) to the current RSS (Linux 4.0+), so the
    next reading is the stage's own peak, not the unpickling's."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def prepare(place: str, path: str, brand: str | None) -> dict[str, Any]:
    """Run load..network on ``place`` and pickle the state to ``path``."""
    from siteplanner import datasets, pipeline
    from siteplanner.config import load_study

    if place == "demo":
        study = load_study(datasets.helsinki().study)
    elif place == "andorra":
        study = load_study(None, brand=(brand or "MoraBanc",), osm=datasets.andorra().osm)
    else:
        study = load_study(None, brand=(brand,), osm=Path(place))
    state = pipeline.RankState(study=study, plan_floors=False)
    start = _cpu()
    for name, stage in pipeline.STAGES:
        if name == "features":
            break
        stage(state)
    pipeline._addressed(state)  # the addresses found aside (a job, not pickled) joined now
    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=5)
    return {"place": place, "cpu_s": round(_cpu() - start, 2), "candidates": len(state.cands)}


def run(path: str, out: str) -> dict[str, Any]:
    """``features_stage`` on the pickled state; ``raw`` and ``access`` pickled to ``out``."""
    import siteplanner
    from siteplanner import pipeline
    from siteplanner._memory import release_freed_memory

    with open(path, "rb") as f:
        state = pickle.load(f)
    release_freed_memory()
    _reset_peak()
    before = _status_mib("VmRSS")
    start, wall = _cpu(), time.perf_counter()
    pipeline.features_stage(state)
    cpu, wall = _cpu() - start, time.perf_counter() - wall
    peak = _status_mib("VmHWM")
    with open(out, "wb") as f:
        pickle.dump((state.raw, state.access), f, protocol=5)
    return {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "peak_mib": round(peak, 1),
            "rss_before_stage_mib": round(before, 1), "package": siteplanner.__file__}


def _child(src: Path, args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, __file__, *args], env=env, check=True,
                          capture_output=True, text=True)
    line = [x for x in done.stdout.splitlines() if x.startswith(RESULT)][-1]
    return json.loads(line.removeprefix(RESULT))


def ab(path: str, before: Path, after: Path, repeats: int) -> dict[str, Any]:
    import pandas as pd

    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    equal = []
    with tempfile.TemporaryDirectory() as d:
        for r in range(repeats):
            for label, src in (("before", before), ("after", after)):
                runs[label].append(_child(src, ["--child", "run", path, f"{d}/{label}.pkl"]))
            with open(f"{d}/before.pkl", "rb") as f:
                b = pickle.load(f)
            with open(f"{d}/after.pkl", "rb") as f:
                a = pickle.load(f)
            equal.append(all(isinstance(x, pd.DataFrame) and x.equals(y) for x, y in zip(b, a, strict=True)))
            print(f"repeat {r + 1}: {runs['before'][-1]} / {runs['after'][-1]}", file=sys.stderr)
    med = {label: {k: statistics.median(x[k] for x in rs) for k in rs[0] if k != "package"}
           for label, rs in runs.items()}
    return {"state": path, "runs": runs, "median": med, "equal": equal,
            "cpu_ratio": round(med["before"]["cpu_s"] / med["after"]["cpu_s"], 3)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, what, *rest = sys.argv
        result = run(*rest) if what == "run" else prepare(rest[0], rest[1], rest[2] or None)
        print(RESULT + json.dumps(result))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["prepare", "ab"])
    p.add_argument("args", nargs="+")
    p.add_argument("--brand", default="")
    p.add_argument("--before", type=Path)
    p.add_argument("--after", type=Path, default=ROOT)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if a.what == "prepare":
        print(json.dumps(_child(a.after, ["--child", "prepare", *a.args, a.brand])))
    else:
        if a.before is None:
            p.error("ab needs --before SRC (a folder holding the siteplanner package to compare)")
        print(json.dumps(ab(a.args[0], a.before, a.after, a.repeats), indent=1))


if __name__ == "__main__":
    main()
