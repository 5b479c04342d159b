"""Benchmark map.html at 2k, 20k and 100k candidates; prints JSON.

The studies are real H3 cells over growing squares, each taking the criteria of
the bundled city's candidate at the same place in the tiled demo extent
(``tests/_tiled.py``). Per size: the map's size in bytes, the seconds to write
it (median of --repeats), and in headless Chromium, offline, the milliseconds
the page's first what-if re-rank took (scores, top K with spacing, list,
markers and cells), measured in the page with ``performance.now()``, and the
seconds from navigation to the load event. The baseline in the same run is
the Python ranking path (:func:`siteplanner.rescore.rescore`) on the same
candidates, so the JavaScript's cost reads as a ratio to it.

Run: .venv/bin/python benchmarks/bench_map.py [--sizes 2000,20000,100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

_LAYER_NAMES = re.compile(r'^\s*("[^"\n]*") : (\w+_[0-9a-f]{20,}),\s*$', flags=re.M)
_WHATIF = "<script type='application/json' id='sp-whatif-data'>"


def map_parts(path: Path) -> dict[str, Any]:
    """Bytes of ``map.html`` by part: each what-if column, each GeoJSON layer (by its name in
    the layer list; the offline base's area and streets by position), the heat map, the
    inlined scripts and styles, and the rest."""
    html = Path(path).read_text(encoding="utf-8")
    names = {var: json.loads(name) for name, var in _LAYER_NAMES.findall(html)}
    parts: dict[str, Any] = {"total": len(html.encode())}
    layers: dict[str, int] = {}
    pos, unnamed = 0, iter(["base: study area", "base: streets"])
    while (i := html.find('_add({"features"', pos)) >= 0:
        j = html.find(");\n", i)
        var = html[html.rfind("\n", 0, i) + 1:i].strip()
        layers[names.get(var) or next(unnamed, var)] = j - i
        pos = j
    parts["layers"] = layers
    i = html.find("L.heatLayer(")
    parts["heat_map"] = html.find(");\n", i) - i if i >= 0 else 0
    start = html.find(_WHATIF) + len(_WHATIF)
    end = html.find("</script>", start)
    doc = json.loads(html[start:end])
    parts["whatif"] = {"total": end - start, **{k: len(json.dumps(v, separators=(",", ":")))
                                                 for k, v in doc.items()}}
    parts["scripts_styles"] = sum(len(s) for s in re.findall(
        r"<(?:script|style)>.*?</(?:script|style)>", html[:start], flags=re.S))
    parts["other"] = (parts["total"] - sum(layers.values()) - parts["heat_map"]
                      - parts["whatif"]["total"] - parts["scripts_styles"])
    return parts


def _page_figures(browser: Any, path: Path) -> dict[str, float]:
    page = browser.new_page()
    try:
        t0 = time.perf_counter()
        page.open(path)
        load_s = time.perf_counter() - t0 - 0.8  # Page.open keeps answering for 0.8 s after load
        first = page.js("window.spWhatif && window.spWhatif.first")
        return {"page_load_s": round(load_s, 3), "first_rerank_ms": round(float(first), 1)}
    finally:
        page.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,20000,100000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from _tiled import tiled_result
    from test_browser import Chromium

    from siteplanner.config import load_study
    from siteplanner.maps import write_map
    from siteplanner.pipeline import rank_sites
    from siteplanner.rescore import rank_inputs, rescore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        demo = rank_sites(load_study(ROOT / "data" / "helsinki" / "study.toml"), floorplans=False)
    browser = Chromium()
    out = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in (int(s) for s in args.sizes.split(",")):
                result = tiled_result(demo, size)
                path = Path(tmp) / f"map_{size}.html"
                writes = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    write_map(result, path)
                    writes.append(time.perf_counter() - t0)
                study = result.study
                inputs = rank_inputs(result.candidates, result.layers.own_branches, study.criteria,
                                     study.selection)
                weights = {n: study.criteria[n].weight for n in inputs.names}
                py = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    rescore(inputs, weights)
                    py.append((time.perf_counter() - t0) * 1000)
                pages = [_page_figures(browser, path) for _ in range(args.repeats)]
                js_ms = statistics.median(p["first_rerank_ms"] for p in pages)
                out.append({
                    "candidates": len(result.candidates),
                    "map_bytes": path.stat().st_size,
                    "map_parts_bytes": map_parts(path),
                    "write_map_s": round(statistics.median(writes), 3),
                    "page_first_rerank_ms": js_ms,
                    "page_load_s": statistics.median(p["page_load_s"] for p in pages),
                    "python_rescore_ms": round(statistics.median(py), 1),
                    "page_rerank_vs_python": round(js_ms / statistics.median(py), 2),
                })
    finally:
        browser.close()
    print(json.dumps({"benchmark": "map.html what-if", "repeats": args.repeats, "sizes": out}, indent=2))


if __name__ == "__main__":
    main()
