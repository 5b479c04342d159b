"""The what-if panel's data: every candidate once, as compact columns, for the page's JavaScript.

The page (``templates/whatif.js``) re-scores and re-selects the candidates
with :mod:`siteplanner.rescore`'s arithmetic. What it needs travels as one
JSON document in a ``<script type="application/json">`` element, its numbers
as base64 typed arrays (no per-candidate keys):

- the raw criteria as float64, so the page's scores are the CLI's to the last
  bit; a study too large for the size budget (:data:`EXACT_BYTES`) sends the
  normalised criteria as 16-bit integers instead and the panel says so;
- positions in the study CRS as whole centimetres. Whether two sites are
  within ``min_spacing_m`` is decided on them, and the few pairs within
  5 cm of the spacing whose answer differs from the full-precision one
  (:func:`scipy.spatial.cKDTree.query_pairs`) are sent as exceptions, so the
  page's spacing test is the CLI's exactly;
- the candidates within ``min_distance_to_own_m`` of an own branch, one bit each
  (they do not depend on the weights);
- H3 ids as two 32-bit halves, other ids and addresses as text.

Rows are in site-id order, so the page breaks score ties by row number as
the CLI breaks them by site id.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy.spatial import cKDTree

from siteplanner.config import Study
from siteplanner.rescore import RankInputs, rank_inputs

__all__ = ["EXACT_BYTES", "MAX_CELLS", "whatif_data", "whatif_json"]

#: Send raw float64 criteria while they take at most this many bytes (about 3 MB of text).
EXACT_BYTES = 2_200_000
#: Above this many candidates, cells are drawn as their H3 parents until zoomed in.
MAX_CELLS = 15_000
_TOL_M = 0.05
_H3 = re.compile(r"^[0-9a-f]{15,16}$")


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()


def _spacing_flips(xy: np.ndarray, cm: np.ndarray, r: float) -> list[int]:
    """Pair keys ``i * n + j`` (i < j) where the centimetre test disagrees with full precision.

    Only pairs within :data:`_TOL_M` of the spacing can disagree; for those the
    full-precision answer is the one :func:`siteplanner.rescore.top_k` gets
    from the KD-tree.
    """
    if r <= 0 or len(xy) < 2:
        return []
    tree = cKDTree(xy)
    near = tree.query_pairs(r + _TOL_M, output_type="ndarray")
    if not len(near):
        return []
    a, b = near[:, 0], near[:, 1]
    d = np.hypot(*(xy[a] - xy[b]).T)
    edge = np.abs(d - r) <= _TOL_M
    a, b = a[edge], b[edge]
    balls = tree.query_ball_point(xy[a], r)
    exact = np.array([bool(np.any(np.asarray(ball) == j)) for ball, j in zip(balls, b, strict=True)],
                     dtype=bool)
    dq = cm[a] - cm[b]
    quant = (dq[:, 0] * dq[:, 0] + dq[:, 1] * dq[:, 1]).astype(np.float64) <= (r * 100) ** 2
    n = len(xy)
    return [int(k) for k in (a.astype(np.int64) * n + b)[exact != quant]]


def _geo_fit(xy_m: np.ndarray, origin: np.ndarray, crs: Any) -> dict[str, list[float]]:
    """A quadratic from study kilometres east and north of ``origin`` to degrees, for drawing."""
    wgs = gpd.GeoSeries(gpd.points_from_xy(xy_m[:, 0], xy_m[:, 1]), crs=crs).to_crs(4326)
    x, y = (xy_m[:, 0] - origin[0]) / 1e3, (xy_m[:, 1] - origin[1]) / 1e3
    design = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    lat = np.linalg.lstsq(design, wgs.y.to_numpy(), rcond=None)[0]
    lon = np.linalg.lstsq(design, wgs.x.to_numpy(), rcond=None)[0]
    return {"lat": [float(v) for v in lat], "lon": [float(v) for v in lon]}


def _shape(cell: Any, centre: Any) -> list[list[float]]:
    ring = np.asarray(shapely.get_coordinates(shapely.simplify(cell, 0.5)))[:-1]
    return np.round(ring - [centre.x, centre.y], 2).tolist()


def _ids(site_ids: np.ndarray) -> dict[str, Any]:
    if len(site_ids) and all(_H3.match(s) and format(int(s, 16), "x") == s for s in site_ids):
        v = np.array([int(s, 16) for s in site_ids], dtype=np.uint64)
        return {"h3": [_b64((v >> np.uint64(32)).astype(np.uint32)),
                       _b64((v & np.uint64(0xFFFFFFFF)).astype(np.uint32))]}
    return {"list": [str(s) for s in site_ids]}


def _text_column(values: Any) -> dict[str, Any] | None:
    if values is None:
        return None
    text = np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                     for v in values], dtype=object)
    uniq, idx = np.unique(text, return_inverse=True)
    return {"values": [str(u) for u in uniq], "idx": _b64(idx.astype(np.uint32))}


def _aggregate(cands: gpd.GeoDataFrame, order: np.ndarray, origin: np.ndarray,
               crs: Any) -> dict[str, Any] | None:
    """H3 parents (about 49 cells each) for drawing a large study at low zoom."""
    import h3

    ids = cands["site_id"].astype(str).to_numpy()[order]
    if len(ids) <= MAX_CELLS or not all(_H3.match(s) for s in ids[:50]):
        return None
    res = h3.get_resolution(ids[0])
    pres = max(res - 2, 0)
    parents = [h3.cell_to_parent(s, pres) for s in ids]
    uniq, idx = np.unique(np.array(parents), return_inverse=True)
    latlng = np.array([h3.cell_to_latlng(p) for p in uniq])
    pts = gpd.GeoSeries(gpd.points_from_xy(latlng[:, 1], latlng[:, 0]), crs=4326).to_crs(crs)
    pxy = np.column_stack([pts.x, pts.y]) - origin
    mid = len(uniq) // 2
    ring = shapely.Polygon([(b, a) for a, b in h3.cell_to_boundary(uniq[mid])])
    ring_m = gpd.GeoSeries([ring], crs=4326).to_crs(crs).iloc[0]
    edge = h3.average_hexagon_edge_length(res, unit="m")
    lat0 = float(latlng[:, 0].mean())
    # full cells from the zoom at which a cell is 8 px across (Web Mercator metres per pixel)
    zoom = math.ceil(math.log2(8 * 156543.03 * math.cos(math.radians(lat0)) / (2 * edge)))
    return {"n": len(uniq), "wide": len(uniq) > 65535,
            "parent": _b64(idx.astype(np.uint32 if len(uniq) > 65535 else np.uint16)),
            "x": _b64(np.round(pxy[:, 0] * 100).astype(np.int32)),
            "y": _b64(np.round(pxy[:, 1] * 100).astype(np.int32)),
            "hex": _shape(ring_m, pts.iloc[mid]), "zoom": int(zoom)}


def _cli_options(study: Study) -> list[str]:
    opts = []
    if study.selection.method != "top":
        opts.append(f"--select {study.selection.method}")
    if study.model.kind != "weighted":
        opts.append(f"--model {study.model.kind}")
    return opts


def whatif_data(result: Any, *, popups: Mapping[str, str], ramp: list[str]) -> dict[str, Any]:
    """The panel's JSON document for a :class:`~siteplanner.pipeline.RankResult`.

    ``popups`` maps the run's chosen site ids to their (escaped) popup HTML;
    ``ramp`` is the score colour ramp, low to high.
    """
    study = result.study
    cands = result.candidates
    inputs: RankInputs = rank_inputs(cands, result.layers.own_branches, study.criteria,
                                     study.selection)
    order = np.argsort(inputs.tie_order, kind="stable")  # rows in site-id order
    row_of = np.empty(len(order), dtype=np.int64)
    row_of[order] = np.arange(len(order))
    xy = inputs.xy[order]
    origin = np.floor(xy.min(axis=0))
    cm = np.round((xy - origin) * 100).astype(np.int64)
    exact = inputs.raw.nbytes <= EXACT_BYTES
    crit = inputs.raw[order] if exact else np.round(inputs.normalised[order] * 65535)
    base_rows = [int(row_of[cands.index.get_loc(i)]) for i in result.selected.index]
    names = list(inputs.names)
    weights = [float(study.criteria[nm].weight) for nm in names]
    centre = int(np.argmin(((xy - xy.mean(axis=0)) ** 2).sum(axis=1)))
    sid = inputs.site_ids[order]
    cell_col = cands["cell"].to_numpy()[order] if "cell" in cands else None
    hexagon = (_shape(cell_col[centre], cands.geometry.to_numpy()[order][centre])
               if cell_col is not None else [[-10, -10], [10, -10], [10, 10], [-10, 10]])
    return {
        "n": len(order), "names": names, "labels": [nm.replace("_", " ") for nm in names],
        "signs": [float(s) for s in inputs.signs], "weights": weights,
        "sliderMax": max(1.0, 2 * max(weights)), "sliderStep": max(1.0, 2 * max(weights)) / 100,
        "k": inputs.k, "spacing": inputs.min_spacing_m, "spacing_cm2": (inputs.min_spacing_m * 100) ** 2,
        "live": study.selection.method == "top" and study.model.kind == "weighted",
        "enc": "f64" if exact else "u16",
        "crit": [_b64(crit[:, c].astype(np.float64 if exact else np.uint16)) for c in range(len(names))],
        "ids": _ids(sid), "addr": _text_column(cands["address"].to_numpy()[order]
                                               if "address" in cands else None),
        "x": _b64(cm[:, 0].astype(np.int32)), "y": _b64(cm[:, 1].astype(np.int32)),
        "geo": _geo_fit(xy, origin, cands.crs),
        "own": _b64(np.packbits(inputs.near_own[order], bitorder="little")),
        "flip": _spacing_flips(xy, cm, inputs.min_spacing_m), "base": base_rows,
        "popups": {str(row_of[cands.index.get_loc(i)]): popups[str(s)]
                   for i, s in zip(result.selected.index, result.selected["site_id"].astype(str),
                                   strict=True) if str(s) in popups},
        "hex": hexagon, "agg": _aggregate(cands, order, origin, cands.crs),
        "maxCells": 40_000, "ramp": ramp,
        "study": str(study.source_file) if study.source_file else "", "cliOptions": _cli_options(study),
    }


def whatif_json(data: Mapping[str, Any]) -> str:
    """``data`` as JSON that cannot end its ``<script>`` element (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
