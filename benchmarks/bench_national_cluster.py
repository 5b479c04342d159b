"""Benchmark ``siteplanner national`` on a LocalCluster; prints JSON.

Andorra (the bundled extract) by parish (admin_level 7: 7 areas), each area at
H3 resolution 9 with no stability draws, run as a user runs it (the CLI, in a
fresh process, into an empty output folder):

1. wall seconds with 1 worker and with 2 workers (median of ``--repeats``);
2. the scaling ratio (1-worker seconds / 2-worker seconds; 2.0 is perfect on
   two free cores);
3. the rerun with every area cached, against the same 2-worker run: the
   peer is the first run itself.

Run: .venv/bin/python benchmarks/bench_national_cluster.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from siteplanner import datasets

BIN = Path(sys.executable).parent
FAST = ["--set", "candidates.h3_resolution=9", "--set", "model.stability_draws=0"]


def run(out: Path, workers: int) -> float:
    cmd = [str(BIN / "siteplanner"), "national", str(datasets.andorra().study), "--by", "admin_level=7",
           "--top", "20", "--workers", str(workers), "--out", str(out), *FAST]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-national-"))
    try:
        times: dict[int, list[float]] = {1: [], 2: []}
        reruns: list[float] = []
        for i in range(args.repeats):
            for workers in (1, 2):
                out = root / f"w{workers}-{i}"
                times[workers].append(run(out, workers))
                if workers == 2:
                    reruns.append(run(out, workers))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print(json.dumps({
            "data": "Andorra 2022-02 by parish (admin_level 7, 7 areas), H3 res 9, no stability draws",
            "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "repeats": args.repeats,
            "seconds_1_worker": {"median": round(one, 2), "runs": [round(t, 2) for t in times[1]]},
            "seconds_2_workers": {"median": round(two, 2), "runs": [round(t, 2) for t in times[2]]},
            "scaling_1_to_2_workers": round(one / two, 2),
            "rerun_all_cached_seconds": {"median": round(statistics.median(reruns), 2),
                                         "runs": [round(t, 2) for t in reruns]},
            "rerun_speedup_vs_2_workers": round(two / statistics.median(reruns), 1),
        }, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
