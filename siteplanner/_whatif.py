"""The what-if panel's data: every candidate once, as compact columns, for the page's JavaScript.

The page (``templates/whatif.js``) re-scores and re-selects the candidates
with :mod:`siteplanner.rescore`'s arithmetic. What it needs travels as one
JSON document in a ``<script type="application/json">`` element, its numbers
as base64 typed arrays (no per-candidate keys):

- the criteria, per column: raw float64 while the study is within the size
  budget (:data:`EXACT_BYTES`), so the page's scores are the CLI's to the last
  bit; past it, a column of at most 256 distinct values as an 8-bit index into
  its normalised values (still exact), any other as its normalised values in
  16-bit integers (the panel says which columns are rounded so);
- positions in the study CRS as whole centimetres (of a large H3 study: its
  cell's parent two resolutions up, the offset that child digit has on
  average over the study, and the cell's own 8-bit residual in centimetres,
  see :func:`_families`). Whether two sites are within ``min_spacing_m`` is
  decided on them, and the few pairs near the spacing whose answer differs
  from the full-precision one (:func:`scipy.spatial.cKDTree.query_pairs`) are
  sent as exceptions, so the page's spacing test is the CLI's exactly;
- the candidates within ``min_distance_to_own_m`` of an own branch, one bit each
  (they do not depend on the weights);
- H3 ids as two 32-bit halves, or for a large study each parent's id and a
  64-bit mask of which of its children are candidates (rows are in id order,
  so a parent's children are consecutive rows in digit order); other ids and
  addresses as text, addresses through an 8/16/32-bit index.

Rows are in site-id order, so the page breaks score ties by row number as
the CLI breaks them by site id.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
#: Points per block of the spacing-exception search (bounds its pairs' memory).
FLIP_BLOCK = 4096
_H3 = re.compile(r"^[0-9a-f]{15,16}$")
_U64 = np.uint64


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()


def _halves(v: np.ndarray) -> list[str]:
    """uint64 values as two base64 uint32 columns, high and low."""
    return [_b64((v >> _U64(32)).astype(np.uint32)), _b64((v & _U64(0xFFFFFFFF)).astype(np.uint32))]


def _spacing_flips(xy: np.ndarray, cm: np.ndarray, r: float, *, tol_m: float) -> list[int]:
    """Pair keys ``i * n + j`` (i < j) where the centimetre test disagrees with full precision.

    Only pairs within ``tol_m`` of the spacing can disagree (it bounds how far
    ``cm`` moves a distance); for those the full-precision answer is the one
    :func:`siteplanner.rescore.top_k` gets from the KD-tree.
    """
    if r <= 0 or len(xy) < 2:
        return []
    tree = cKDTree(xy)
    n = len(xy)
    keys = []
    # The pairs within r + tol_m, a block of points at a time: all at once they are
    # tens of millions at 100k candidates (+440 MB for one run of Andorra tripled).
    for start in range(0, n, FLIP_BLOCK):
        rows = np.arange(start, min(start + FLIP_BLOCK, n))
        near = cKDTree(xy[rows]).sparse_distance_matrix(tree, r + tol_m, output_type="ndarray")
        # the KD-tree's own distances first pick the few pairs near the band (a hair wider,
        # so rounding keeps every pair the test below takes), then the test on those alone
        near = near[np.abs(near["v"] - r) <= tol_m + 1e-6 * r]
        a, b = rows[near["i"]], near["j"].astype(np.int64)
        keep = a < b
        a, b = a[keep], b[keep]
        d = np.hypot(*(xy[a] - xy[b]).T)
        edge = np.abs(d - r) <= tol_m
        a, b = a[edge], b[edge]
        balls = tree.query_ball_point(xy[a], r)
        exact = np.array([bool(np.any(np.asarray(ball) == j))
                          for ball, j in zip(balls, b, strict=True)], dtype=bool)
        dq = cm[a] - cm[b]
        quant = (dq[:, 0] * dq[:, 0] + dq[:, 1] * dq[:, 1]).astype(np.float64) <= (r * 100) ** 2
        keys.append((a.astype(np.int64) * n + b)[exact != quant])
    return [int(k) for k in np.sort(np.concatenate(keys))]


def _geo_fit(xy_m: np.ndarray, origin: np.ndarray, crs: Any) -> dict[str, list[float]]:
    """A quadratic from study kilometres east and north of ``origin`` to degrees, for drawing."""
    from pyproj import Transformer

    # the coordinates alone (as GeoSeries.to_crs transforms them), no points made
    lon_deg, lat_deg = Transformer.from_crs(crs, 4326, always_xy=True).transform(xy_m[:, 0],
                                                                                 xy_m[:, 1])
    x, y = (xy_m[:, 0] - origin[0]) / 1e3, (xy_m[:, 1] - origin[1]) / 1e3
    design = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])
    lat = np.linalg.lstsq(design, np.asarray(lat_deg), rcond=None)[0]
    lon = np.linalg.lstsq(design, np.asarray(lon_deg), rcond=None)[0]
    return {"lat": [float(v) for v in lat], "lon": [float(v) for v in lon]}


def _shape(cell: Any, centre: Any) -> list[list[float]]:
    ring = np.asarray(shapely.get_coordinates(shapely.simplify(cell, 0.5)))[:-1]
    return np.round(ring - [centre.x, centre.y], 2).tolist()


def _h3_ints(site_ids: np.ndarray) -> np.ndarray | None:
    """The ids as H3 integers, when every one is an H3 id written as H3 writes it."""
    if not len(site_ids) or not all(map(_H3.match, site_ids)):
        return None
    ints = [int(s, 16) for s in site_ids]
    if not all(f"{i:x}" == s for i, s in zip(ints, site_ids, strict=True)):  # as H3 writes them
        return None
    return np.array(ints, dtype=_U64)


@dataclass(frozen=True)
class _Families:
    """A large H3 study's cells as children of their parents two resolutions up.

    H3 writes a cell as its resolution, base cell and one 3-bit digit per
    resolution (unused digits 7), so a cell is its parent's id with the last
    two digits (``digit``, 6 bits) set and the resolution raised by 2; sorted
    ids keep a parent's children together, in digit order.
    """

    res: int
    parents: np.ndarray  # uint64, sorted
    idx: np.ndarray  # row -> parent
    digit: np.ndarray  # row -> the two child digits, 0..63

    @property
    def shift(self) -> int:
        return 3 * (15 - self.res)

    def masks(self) -> np.ndarray:
        m = np.zeros(len(self.parents), dtype=_U64)
        np.bitwise_or.at(m, self.idx, _U64(1) << self.digit.astype(_U64))
        return m


def _families(v: np.ndarray | None) -> _Families | None:
    """``v`` (sorted H3 ints) as :class:`_Families`, when they are one resolution >= 7 (the two
    child digits then sit in the low 32 bits the page works on) and rebuild exactly."""
    if v is None or len(v) <= MAX_CELLS:
        return None
    res_of = ((v >> _U64(52)) & _U64(0xF)).astype(np.int64)
    res = int(res_of[0])
    if res < 7 or (res_of != res).any():
        return None
    shift, res_bits = _U64(3 * (15 - res)), _U64(0xF) << _U64(52)
    low = _U64(63) << shift
    parent = ((v | low) & ~res_bits) | (_U64(res - 2) << _U64(52))
    parents, idx = np.unique(parent, return_inverse=True)
    digit = ((v >> shift) & _U64(63)).astype(np.int64)
    fam = _Families(res=res, parents=parents, idx=idx, digit=digit)
    again = (((parents[idx] & ~low) & ~res_bits) | (digit.astype(_U64) << shift)
             | (_U64(res) << _U64(52)))
    in_order = bool((np.diff(idx) >= 0).all() and (np.diff(digit)[np.diff(idx) == 0] > 0).all())
    return fam if in_order and (again == v).all() else None


def _ids(v: np.ndarray | None, fam: _Families | None, site_ids: np.ndarray) -> dict[str, Any]:
    if fam is not None:
        return {"fam": {"parents": _halves(fam.parents), "masks": _halves(fam.masks()),
                        "res": fam.res, "shift": fam.shift}}
    if v is not None:
        return {"h3": _halves(v)}
    return {"list": [str(s) for s in site_ids]}


def _text_column(values: Any) -> dict[str, Any] | None:
    if values is None:
        return None
    text = np.array(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                     for v in values], dtype=object)
    uniq, idx = np.unique(text, return_inverse=True)
    width = 1 if len(uniq) <= 256 else 2 if len(uniq) <= 65536 else 4
    return {"values": [str(u) for u in uniq], "w": width,
            "idx": _b64(idx.astype({1: np.uint8, 2: np.uint16, 4: np.uint32}[width]))}


def _criteria(inputs: RankInputs, order: np.ndarray) -> tuple[list[dict[str, str]], list[str]]:
    """Each criterion column as the page reads it, and the names of those rounded to 16 bits."""
    if inputs.raw.nbytes <= EXACT_BYTES:
        return [{"t": "f64", "v": _b64(inputs.raw[order, c])} for c in range(len(inputs.names))], []
    norm = inputs.normalised[order]
    cols, rounded = [], []
    for c, name in enumerate(inputs.names):
        values, idx = np.unique(norm[:, c], return_inverse=True)
        if len(values) <= 256:  # exact: an index into the column's own normalised values
            cols.append({"t": "d8", "v": _b64(idx.astype(np.uint8)), "d": _b64(values)})
        else:
            cols.append({"t": "u16", "v": _b64(np.round(norm[:, c] * 65535).astype(np.uint16))})
            rounded.append(name)
    return cols, rounded


def _positions(xy: np.ndarray, origin: np.ndarray, fam: _Families | None,
               parent_cm: np.ndarray | None) -> tuple[dict[str, Any], np.ndarray, float]:
    """Positions as the page rebuilds them, those whole centimetres, and how far (m) they
    can move a distance between two sites (it bounds the spacing exceptions)."""
    cm_exact = (xy - origin) * 100
    if fam is None or parent_cm is None:
        cm = np.round(cm_exact).astype(np.int64)
        return {"x": _b64(cm[:, 0].astype(np.int32)), "y": _b64(cm[:, 1].astype(np.int32))}, cm, 0.05
    off = cm_exact - parent_cm[fam.idx]
    table = np.zeros((64, 2))
    counts = np.bincount(fam.digit, minlength=64)
    for axis in (0, 1):
        table[:, axis] = np.bincount(fam.digit, weights=off[:, axis], minlength=64) / np.maximum(counts, 1)
    table = np.floor(table + 0.5).astype(np.int64)
    resid = off - table[fam.digit]
    unit = max(1, math.ceil(float(np.abs(resid).max()) / 127.0))
    q = np.floor(resid / unit + 0.5).astype(np.int64)
    cm = parent_cm[fam.idx] + table[fam.digit] + q * unit
    return ({"rel": {"tx": table[:, 0].tolist(), "ty": table[:, 1].tolist(), "unit": unit,
                     "x": _b64(q[:, 0].astype(np.int8)), "y": _b64(q[:, 1].astype(np.int8))}},
            cm, 0.05 * unit)


def _aggregate(fam: _Families | None, origin: np.ndarray,
               crs: Any) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """H3 parents (about 49 cells each) for drawing a large study at low zoom, and their
    centres in whole centimetres from ``origin``."""
    import h3

    if fam is None:
        return None, None
    uniq = [format(int(p), "x") for p in fam.parents]
    latlng = np.array([h3.cell_to_latlng(p) for p in uniq])
    pts = gpd.GeoSeries(gpd.points_from_xy(latlng[:, 1], latlng[:, 0]), crs=4326).to_crs(crs)
    pcm = np.floor((np.column_stack([pts.x, pts.y]) - origin) * 100 + 0.5).astype(np.int64)
    mid = len(uniq) // 2
    ring = shapely.Polygon([(b, a) for a, b in h3.cell_to_boundary(uniq[mid])])
    ring_m = gpd.GeoSeries([ring], crs=4326).to_crs(crs).iloc[0]
    edge = h3.average_hexagon_edge_length(fam.res, unit="m")
    lat0 = float(latlng[:, 0].mean())
    # full cells from the zoom at which a cell is 8 px across (Web Mercator metres per pixel)
    zoom = math.ceil(math.log2(8 * 156543.03 * math.cos(math.radians(lat0)) / (2 * edge)))
    return ({"n": len(uniq), "x": _b64(pcm[:, 0].astype(np.int32)),
             "y": _b64(pcm[:, 1].astype(np.int32)),
             "hex": _shape(ring_m, pts.iloc[mid]), "zoom": int(zoom)}, pcm)


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
    sid = inputs.site_ids[order]
    h3_ints = _h3_ints(sid)
    fam = _families(h3_ints)
    agg, parent_cm = _aggregate(fam, origin, cands.crs)
    where, cm, tol_m = _positions(xy, origin, fam, parent_cm)
    crit, rounded = _criteria(inputs, order)
    base_rows = [int(row_of[cands.index.get_loc(i)]) for i in result.selected.index]
    names = list(inputs.names)
    weights = [float(study.criteria[nm].weight) for nm in names]
    centre = int(np.argmin(((xy - xy.mean(axis=0)) ** 2).sum(axis=1)))
    cell_col = cands["cell"].to_numpy()[order] if "cell" in cands else None
    hexagon = (_shape(cell_col[centre], cands.geometry.to_numpy()[order][centre])
               if cell_col is not None else [[-10, -10], [10, -10], [10, 10], [-10, 10]])
    return {
        "n": len(order), "names": names, "labels": [nm.replace("_", " ") for nm in names],
        "signs": [float(s) for s in inputs.signs], "weights": weights,
        "sliderMax": max(1.0, 2 * max(weights)), "sliderStep": max(1.0, 2 * max(weights)) / 100,
        "k": inputs.k, "spacing": inputs.min_spacing_m, "spacing_cm2": (inputs.min_spacing_m * 100) ** 2,
        "live": study.selection.method == "top" and study.model.kind == "weighted",
        "enc": "f64" if crit and crit[0]["t"] == "f64" else "u16" if rounded else "exact",
        "rounded": rounded, "crit": crit, "ids": _ids(h3_ints, fam, sid),
        "addr": _text_column(cands["address"].to_numpy()[order] if "address" in cands else None),
        **where, "geo": _geo_fit(xy, origin, cands.crs),
        "own": _b64(np.packbits(inputs.near_own[order], bitorder="little")),
        "flip": _spacing_flips(xy, cm, inputs.min_spacing_m, tol_m=tol_m), "base": base_rows,
        "popups": {str(row_of[cands.index.get_loc(i)]): popups[str(s)]
                   for i, s in zip(result.selected.index, result.selected["site_id"].astype(str),
                                   strict=True) if str(s) in popups},
        "hex": hexagon, "agg": agg,
        "maxCells": 40_000, "ramp": ramp,
        "study": str(study.source_file) if study.source_file else "", "cliOptions": _cli_options(study),
    }


def whatif_json(data: Mapping[str, Any]) -> str:
    """``data`` as JSON that cannot end its ``<script>`` element (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
