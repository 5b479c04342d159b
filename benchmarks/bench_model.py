"""Benchmark the learned models, stability and clustering; prints JSON.

Two cities:

1. **bundled**: the real Helsinki centre (990 H3 candidates, 17 real banks).
2. **tiled**: the same city's candidates, cells, POIs, stops, street nodes and
   banks copied side by side (translated) to about 100k candidates.

For each: fit and predict seconds (median of ``--repeats``) of

* the foot-traffic calibrator (Poisson GLM). Helsinki has no public counter
  data here, so counts are planted on the real geometry: 40 counters per city
  copy whose daily mean follows transit and junction density (the relationship
  in ``tests/test_learn.py``). Its spatial-block CV scores sit beside the
  named baseline, the **OSM proxy alone** (rescaled by a line fitted on the
  same folds);
* the presence site model on the real banks, cross-validated against the
  **hand-weighted score** of the study and a random ranking;
* the weight-stability Monte Carlo, opportunity zones and territories.

Speed ratios are against named baselines in the same run: for the model fits,
plain scikit-learn (``LinearRegression`` on the proxy; ``LogisticRegression``
on the raw criteria) without the explanation layer.

Run: .venv/bin/python benchmarks/bench_model.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sklearn.linear_model import LinearRegression, LogisticRegression
from threadpoolctl import threadpool_limits

from siteplanner.calibration import FootTrafficCalibrator, calibrate_foot_traffic, osm_features
from siteplanner.clustering import opportunity_zones, territories
from siteplanner.config import load_study
from siteplanner.features import compute_criteria as _features
from siteplanner.layers import Layers
from siteplanner.learned import SiteModel, learned_scores, presence_labels
from siteplanner.pipeline import rank_sites
from siteplanner.stability import weight_stability

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "data" / "helsinki" / "study.toml"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4), out


def translate(gdf: gpd.GeoDataFrame, offsets: np.ndarray, columns: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """Copies of ``gdf``, the t-th moved by ``offsets[t]``; geometry columns in ``columns`` move too."""
    n, t = len(gdf), len(offsets)
    out = gdf.iloc[np.tile(np.arange(n), t)].copy()
    shift = np.repeat(offsets, n, axis=0)
    for col in ("geometry", *columns):
        geoms = np.asarray(gpd.GeoSeries(gdf[col]).values)[np.tile(np.arange(n), t)]
        coords, idx = shapely.get_coordinates(geoms, return_index=True)
        out[col] = shapely.set_coordinates(geoms.copy(), coords + shift[idx])
    out.index = [f"{i}-{k}" for k in range(t) for i in gdf.index]
    return gpd.GeoDataFrame(out, geometry="geometry", crs=gdf.crs)


def tile_city(cands: gpd.GeoDataFrame, layers: Layers, n_target: int) -> tuple[gpd.GeoDataFrame, Layers]:
    """About ``n_target`` candidates: copies of the city on a square grid, 200 m apart."""
    n_tiles = int(np.ceil(n_target / len(cands)))
    side = int(np.ceil(np.sqrt(n_tiles)))
    w, s, e, n = cands["cell"].total_bounds if "cell" in cands else cands.total_bounds
    dx, dy = e - w + 200.0, n - s + 200.0
    offsets = np.array([((k % side) * dx, (k // side) * dy) for k in range(n_tiles)])
    tiled = translate(cands, offsets, columns=("cell",))
    tiled["site_id"] = tiled.index
    moved = {name: translate(getattr(layers, name), offsets)
             for name in ("transit", "competitors", "own_branches", "pois", "street_nodes")}
    return tiled, dataclasses.replace(layers, **moved)


def planted_counts(cands: gpd.GeoDataFrame, layers: Layers, per_tile: int, n_tiles: int,
                   seed: int) -> gpd.GeoDataFrame:
    """Counters at random candidates whose counts follow transit and junctions (see module doc)."""
    rng = np.random.default_rng(seed)
    at = rng.choice(len(cands), per_tile * n_tiles, replace=False)
    X = np.log1p(osm_features(cands.iloc[at], layers))
    z = (X - X.mean()) / X.std(ddof=0)
    mu = 3000.0 * np.exp(0.6 * z["transit_400"] + 0.3 * z["street_nodes_100"] - 0.2 * z["offices_250"])
    return gpd.GeoDataFrame({"count": rng.poisson(mu.to_numpy())},
                            geometry=cands.geometry.iloc[at].to_numpy(), crs=cands.crs)


def bench_city(name: str, cands: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers, study: Any,
               *, n_tiles: int, repeats: int, draws: int) -> dict[str, Any]:
    out: dict[str, Any] = {"candidates": len(cands)}
    sel = study.selection
    rule = {"k": sel.top_k * n_tiles, "min_spacing_m": sel.min_spacing_m,
            "min_distance_to_own_m": sel.min_distance_to_own_m}

    # Foot-traffic calibration.
    counts = planted_counts(cands, layers, 40, n_tiles, seed=study.seed)
    Xcount = osm_features(counts, layers)
    y = counts["count"].to_numpy(dtype=float)
    with threadpool_limits(limits=1):
        fit_s, model = timed(lambda: FootTrafficCalibrator().fit(Xcount, y), repeats)
        base_fit_s, _ = timed(lambda: LinearRegression().fit(Xcount[["proxy"]], y), repeats)
        feat_s, Xc = timed(lambda: osm_features(cands, layers), repeats)
        pred_s, _ = timed(lambda: model.predict(Xc), repeats)
    cal_s, cal = timed(lambda: calibrate_foot_traffic(counts, cands, layers,
                                                      random_state=study.seed), 1)
    out["foot_traffic_calibration"] = {
        "counters": len(counts), "fit_s": fit_s, "baseline_fit_s (LinearRegression on proxy)": base_fit_s,
        "fit_ratio_vs_baseline": round(fit_s / max(base_fit_s, 1e-9), 1),
        "features_at_candidates_s": feat_s, "predict_s": pred_s, "end_to_end_with_cv_s": cal_s,
        "cv": cal.report["cv"], "model": cal.report["model"], "proxy_baseline": cal.report["proxy_baseline"],
    }

    # Presence model on the real (or tiled real) banks.
    feats = ["foot_traffic", "transit", "commercial"]
    banks = gpd.GeoDataFrame(geometry=pd.concat([layers.own_branches.geometry,
                                                 layers.competitors.geometry], ignore_index=True),
                             crs=layers.crs)
    yp = presence_labels(cands, banks).to_numpy()
    Xp = raw[feats]
    with threadpool_limits(limits=1):
        sfit_s, site = timed(lambda: SiteModel("presence").fit(Xp, yp), repeats)
        lfit_s, _ = timed(lambda: LogisticRegression(max_iter=1000).fit(Xp.to_numpy(), yp), repeats)
        spred_s, _ = timed(lambda: (site.predict(Xp), site.contributions(Xp)), repeats)
    full_s, learned = timed(lambda: learned_scores(cands, raw, layers, criteria=study.criteria,
                                                   random_state=study.seed), 1)
    out["presence_model"] = {
        "bank_cells": int(yp.sum()), "fit_s": sfit_s,
        "baseline_fit_s (LogisticRegression, no scaling or parts)": lfit_s,
        "fit_ratio_vs_baseline": round(sfit_s / max(lfit_s, 1e-9), 1),
        "predict_with_contributions_s": spred_s, "end_to_end_with_cv_and_importance_s": full_s,
        "cv": learned.report["cv"], "importance": learned.report["importance"],
    }

    # Stability, zones, territories.
    stab_s, (_, summary) = timed(lambda: weight_stability(cands, raw, study.criteria, layers.own_branches,
                                                          n_draws=draws, seed=study.seed, **rule), 1)
    out["weight_stability"] = {"draws": draws, "seconds": stab_s, "per_draw_s": round(stab_s / draws, 4),
                               "selected_mean_stability": summary["selected_mean_stability"],
                               "n_fragile": summary["n_fragile"]}
    scored = cands.assign(score=learned.table["score"].to_numpy())
    zone_s, zones = timed(lambda: opportunity_zones(scored), repeats)
    seeds = layers.own_branches[["geometry"]].assign(label="own")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        terr_s, terr = timed(lambda: territories(cands, demand=raw["foot_traffic"], seeds=seeds), 1)
    out["opportunity_zones"] = {"seconds": zone_s, "zones": zones.report["n_zones"]}
    out["territories"] = {"seconds": terr_s, **{k: v for k, v in terr.report.items() if k != "offsets_m"}}
    print(f"{name}: done", flush=True, file=__import__("sys").stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k tiled candidates instead of 100k")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    study = load_study(STUDY)
    result = rank_sites(study)
    cands = result.candidates[["site_id", "geometry", "cell"]]
    layers = result.layers
    raw = result.candidates[list(study.criteria)]
    report: dict[str, Any] = {"machine_note": "medians of --repeats runs; fits single-threaded"}
    report["bundled"] = bench_city("bundled", cands, raw, layers, study, n_tiles=1,
                                   repeats=args.repeats, draws=200)
    n_target = 10_000 if args.quick else 100_000
    big, big_layers = tile_city(cands, layers, n_target)
    n_tiles = int(np.ceil(n_target / len(cands)))
    t0 = time.perf_counter()
    big_raw = _features(big, big_layers, study)
    report["tiled"] = {"tiles": n_tiles, "raw_criteria_s": round(time.perf_counter() - t0, 3),
                       **bench_city("tiled", big, big_raw, big_layers, study, n_tiles=n_tiles,
                                    repeats=args.repeats, draws=20)}
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
