"""A large study made from the real city: H3 cells over a bigger square, each taking the
criteria of the demo candidate at the same place within the tiled demo extent.

Used by the map tests and ``benchmarks/bench_map.py``; the demo's own branches and
competitors are tiled the same way, and the selection is the pipeline's own.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from siteplanner.candidates import h3_candidates
from siteplanner.model import score
from siteplanner.selection import select_top


def _tile_points(gdf: gpd.GeoDataFrame, x0: float, y0: float, w: float, h: float,
                 nx: int, ny: int) -> gpd.GeoDataFrame:
    parts = []
    for i in range(nx):
        for j in range(ny):
            g = gdf.copy()
            g["geometry"] = shapely.transform(gdf.geometry.values, lambda p, i=i, j=j: p + [i * w, j * h])
            parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=gdf.crs)


def tiled_result(demo: Any, n_candidates: int) -> Any:
    """A RankResult with about ``n_candidates`` real H3 cells, the demo tiled under them."""
    cands = demo.candidates
    x0, y0, x1, y1 = cands.total_bounds
    w, h = x1 - x0, y1 - y0
    area_m2 = n_candidates * h3_cell_area(cands)
    side = math.sqrt(area_m2)
    nx, ny = max(1, math.ceil(side / w)), max(1, math.ceil(side / h))
    square = gpd.GeoDataFrame(geometry=[shapely.box(x0, y0, x0 + side, y0 + side)], crs=cands.crs)
    big = h3_candidates(square, resolution=demo.study.candidates.h3_resolution)
    xy = np.column_stack([big.geometry.x, big.geometry.y])
    wrapped = np.column_stack([x0 + np.mod(xy[:, 0] - x0, w), y0 + np.mod(xy[:, 1] - y0, h)])
    _, j = cKDTree(np.column_stack([cands.geometry.x, cands.geometry.y])).query(wrapped)
    names = list(demo.study.criteria)
    raw = pd.DataFrame(cands[names].to_numpy()[j], columns=names, index=big.index)
    layers = demo.layers
    own = _tile_points(layers.own_branches, x0, y0, w, h, nx, ny)
    comp = _tile_points(layers.competitors, x0, y0, w, h, nx, ny)
    table = big[["site_id", "geometry", "cell"]].join(raw).join(score(raw, demo.study.criteria))
    sel = demo.study.selection
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ranked = select_top(gpd.GeoDataFrame(table, geometry="geometry", crs=cands.crs), own,
                            k=sel.top_k, min_spacing_m=sel.min_spacing_m,
                            min_distance_to_own_m=sel.min_distance_to_own_m)
    selected = ranked[ranked["rank"].notna()].sort_values("rank")
    return replace(demo, candidates=ranked, selected=selected, catchments=None, clusters=None,
                   territories=None, sensitivity=None, floorplans={}, foot_traffic_points=None,
                   layers=replace(layers, own_branches=own, competitors=comp, area=square,
                                  transit=layers.transit.iloc[:0]))


def h3_cell_area(cands: gpd.GeoDataFrame) -> float:
    """Mean area of the demo's cells in square metres."""
    return float(gpd.GeoSeries(cands["cell"].values, crs=cands.crs).area.mean())
