"""What the shared map draws of a large study, so the page stays small enough to send.

A city's map can draw every street, every foot-traffic point and every stop;
a country's cannot: at 100k candidates those layers alone were 30 MB of
page. Each layer gets a budget in drawn vertices or points, and past it the
map draws less, in the order a planner loses least, and says so in the
layer's name:

* **Streets** (:func:`street_lines`): merged into lines and simplified (1 m in a
  city, more in a wide extract), then, past :data:`STREET_VERTICES`, whole
  street classes are left out, footways first and main roads last
  (:data:`DROP_ORDER`). The streets stay in ``sites.gpkg``.
* **The foot-traffic heat map** (:func:`heat_points`): past :data:`HEAT_POINTS`
  the points are summed on a square grid whose cell is sized to the budget,
  each cell drawn at its weighted centre: a heat map blurs them together at
  any zoom where the grid would show.
* **Transit stops** (:func:`stops_near`): past :data:`STOP_POINTS`, only the
  stops within :data:`STOPS_NEAR_M` of a chosen site are drawn (the ones a
  reader of the map checks), the nearest first up to the budget; all of them
  stay in ``sites.gpkg``.
* **Catchments, clusters and territories** (:func:`simplified`): outlines drawn
  to 2 m in a city, coarser in a wide study (as the streets), topology kept;
  past :data:`ZONE_VERTICES` in one layer the tolerance doubles until it fits
  (territories and clusters made of H3 cells lose their cell-edge zigzag
  first), and the layer's name gives the tolerance.

The budgets are sized so these layers together stay within about 2.5 MB at
roughly 22 bytes a vertex of GeoJSON, leaving room for the what-if columns
(about 20 bytes a candidate at 100k, see :mod:`siteplanner._whatif`) under
the 5 MB a mail attachment may be.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["DROP_ORDER", "HEAT_POINTS", "STOPS_NEAR_M", "STOP_POINTS", "STREET_VERTICES",
           "ZONE_VERTICES", "heat_points", "simplified", "stops_near", "street_lines"]

#: Street vertices drawn at most (~1.1 MB of page).
STREET_VERTICES = 50_000
#: Outline vertices of one catchment, cluster or territory layer drawn at most (~0.2 MB).
ZONE_VERTICES = 8_000
#: Foot-traffic heat-map points drawn at most (~0.4 MB).
HEAT_POINTS = 15_000
#: Transit stops drawn at most before only those near the chosen sites are kept.
STOP_POINTS = 3_000
#: A stop within this many metres of a chosen site is drawn on a large map.
STOPS_NEAR_M = 2_000.0
#: Street detail dropped: 1 m in a city; past STREETS_CITY_KM2 of data the tolerance
#: grows with the extract's width, up to 8 m (a country is opened far out).
STREETS_CITY_KM2 = 25.0
#: OSM ``highway`` classes in the order they leave a map over its street budget, each
#: group with the name the layer gives it; a class not named goes with the first group,
#: and the main roads (motorway, trunk, primary) are never left out.
DROP_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("footways and paths", ("footway", "path", "steps", "pedestrian", "corridor", "bridleway",
                            "cycleway", "track", "elevator", "platform", "crossing",
                            "sidewalk")),
    ("service roads", ("service",)),
    ("residential streets", ("living_street", "residential", "unclassified", "road")),
    ("tertiary roads", ("tertiary", "tertiary_link")),
    ("secondary roads", ("secondary", "secondary_link")),
)
_MAIN_ROADS = ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link")


def _tolerance(bounds: np.ndarray, city_m: float) -> float:
    """Detail dropped, metres: ``city_m`` up to STREETS_CITY_KM2 of extent, then growing
    with the extent's width, up to 8 times as much."""
    w, s, e, n = bounds
    km2 = max((e - w) * (n - s) / 1e6, 0.0)
    if km2 <= STREETS_CITY_KM2:
        return city_m
    return city_m * min(8.0, float(np.sqrt(km2 / STREETS_CITY_KM2)))


def simplified(gdf: gpd.GeoDataFrame, *, extent: np.ndarray,
               budget: int | None = None) -> gpd.GeoDataFrame:
    """``gdf`` (projected, metres) with outlines simplified for the map (topology kept):
    2 m within a city's extent, coarser over a wide one (``extent``: the study's bounds),
    and coarser again, doubling, until at most ``budget`` vertices remain
    (:data:`ZONE_VERTICES` by default) or three doublings running remove none (topology keeps every
    ring, holes included, at four vertices or more). The tolerance used, in metres, is in
    ``attrs["simplified_m"]``."""
    budget = ZONE_VERTICES if budget is None else budget
    geoms = gdf.geometry.to_numpy()
    tolerance = _tolerance(extent, 2.0)
    out_geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    count, tried, stalled = int(shapely.get_num_coordinates(out_geoms).sum()), tolerance, 0
    while count > budget and stalled < 3:  # a cell-edge zigzag may need two doublings to go
        tried *= 2
        coarser = shapely.simplify(geoms, tried, preserve_topology=True)
        fewer = int(shapely.get_num_coordinates(coarser).sum())
        stalled = stalled + 1 if fewer >= count else 0
        if fewer < count:
            tolerance, out_geoms, count = tried, coarser, fewer
    out = gdf.copy()
    out.geometry = out_geoms
    out.attrs["simplified_m"] = tolerance
    return out


def _lines(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Segments merged into street lines, each simplified on its own (one collection at
    once is quadratic), as one multi-line: no per-feature overhead in the page."""
    if not len(geoms):
        return np.array([], dtype=object)
    merged = shapely.line_merge(shapely.multilinestrings(_single_parts(geoms)))
    return np.array([shapely.multilinestrings(shapely.simplify(shapely.get_parts(merged),
                                                               tolerance))], dtype=object)


def _vertices_at_least(geoms: np.ndarray, tolerance: float) -> int:
    """A lower bound on ``_vertices(_lines(geoms, tolerance))``, found without merging.

    The merge joins lines end to end through every point where exactly two line ends
    meet (GEOS's line merger), so its lines are the chains of that graph (found here
    as its connected components), leaving out lines of one distinct point as it does.
    Simplifying keeps each chain's two end vertices, and a third when a vertex lies
    farther than ``tolerance`` from the segment between them (Douglas-Peucker, which
    the topology-keeping simplifier only adds to). Closed chains count nothing.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    xy, line = shapely.get_coordinates(geoms, return_index=True)
    if not len(xy):
        return 0
    xy = xy + 0.0  # -0.0 is 0.0, as to GEOS
    _, line = np.unique(line, return_inverse=True)  # 0..m-1 over the non-empty lines
    first = np.flatnonzero(np.r_[True, line[1:] != line[:-1]])
    last = np.r_[first[1:], len(line)] - 1
    moved = np.r_[(xy[1:] != xy[:-1]).any(axis=1), False]
    moved[last] = False
    kept = np.add.reduceat(moved, first) > 0  # two distinct points at least
    first, last = first[kept], last[kept]
    m = len(first)
    if not m:
        return 0
    ends = np.concatenate([xy[first], xy[last]])
    order = np.lexsort((ends[:, 1], ends[:, 0]))
    step = (ends[order[1:]] != ends[order[:-1]]).any(axis=1)
    node = np.empty(len(ends), dtype=np.int64)
    node[order] = np.r_[0, np.cumsum(step)]
    degree = np.bincount(node)
    seg = np.r_[np.arange(m), np.arange(m)]  # end k belongs to kept line k % m
    by_node = np.argsort(node, kind="stable")
    pair = by_node[degree[node[by_node]] == 2].reshape(-1, 2)  # the two ends at such a point
    graph = coo_matrix((np.ones(len(pair)), (seg[pair[:, 0]], seg[pair[:, 1]])), shape=(m, m))
    _, chain = connected_components(graph, directed=False)
    term = np.flatnonzero(degree[node] != 2)  # the chain ends, two per open chain
    if not len(term):
        return 0
    term = term[np.argsort(chain[seg[term]], kind="stable")]
    owner = chain[seg[term[0::2]]]
    a, b = ends[term[0::2]], ends[term[1::2]]
    at = np.full(int(chain.max()) + 1, -1)
    at[owner] = np.arange(len(owner))
    row_of_line = np.full(int(line.max()) + 1, -1)
    row_of_line[np.flatnonzero(kept)] = at[chain]
    row = row_of_line[line]
    on = row >= 0  # the vertices of open chains
    xy, row = xy[on], row[on]
    p, d = a[row], b[row] - a[row]
    length2 = (d * d).sum(axis=1)
    t = np.clip(((xy - p) * d).sum(axis=1) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    off = np.hypot(*(xy - p - t[:, None] * d).T)
    far = np.zeros(len(owner), dtype=bool)
    # a hair over the tolerance, so rounding never counts a vertex the simplifier drops
    far[row[off > tolerance * (1 + 1e-9) + 1e-9]] = True
    return 2 * len(owner) + int(far.sum())


def _vertices(lines: np.ndarray) -> int:
    return int(shapely.get_num_coordinates(lines).sum()) if len(lines) else 0


def _single_parts(geoms: np.ndarray) -> np.ndarray:
    """``shapely.get_parts(geoms)``, without copying a network's segments when each is one
    line already (a street graph's edges are: the copy was a fifth of the street layer)."""
    if (shapely.get_type_id(geoms) == shapely.GeometryType.LINESTRING).all():
        return geoms
    return shapely.get_parts(geoms)


def _group_of(highway: pd.Series) -> np.ndarray:
    """The DROP_ORDER group of each street (0 = dropped first; len(DROP_ORDER) = kept)."""
    known = {cls: i for i, (_, classes) in enumerate(DROP_ORDER) for cls in classes}
    known |= {cls: len(DROP_ORDER) for cls in _MAIN_ROADS}
    values = highway.to_numpy(dtype=object)
    try:  # a few distinct classes: look each up once
        codes, uniq = pd.factorize(values)
    except TypeError:  # osmnx lists the classes of merged ways; keep the first
        first = highway.map(lambda v: v[0] if isinstance(v, list) and v else v)
        return first.map(known).fillna(0).to_numpy(dtype=int)
    of_uniq = np.array([known.get(v, 0) for v in uniq] + [0], dtype=int)  # -1 (missing): 0
    return of_uniq[codes]


def street_lines(streets: gpd.GeoDataFrame, *,
                 budget: int | None = None) -> tuple[np.ndarray, str | None]:
    """The offline base's streets within ``budget`` vertices, and what was left out.

    Returns the lines (one multi-line, in the CRS of ``streets``, metres) and
    None when every street is drawn, or a phrase such as ``"without footways
    and paths, service roads"`` for the layer's name.
    """
    budget = STREET_VERTICES if budget is None else budget
    if not len(streets):
        return np.array([], dtype=object), None
    tolerance = _tolerance(streets.total_bounds, 1.0)
    geoms = streets.geometry.to_numpy()
    if "highway" not in streets or int(shapely.get_num_coordinates(geoms).sum()) <= budget:
        return _lines(geoms, tolerance), None
    group = _group_of(streets["highway"])
    # Groups are merged from the main roads down, each only while what is kept fits: the
    # minor classes that never fit (a country's footways) are never merged, nor held.
    keep_from = len(DROP_ORDER)  # the main roads are always drawn
    kept_groups = [_lines(geoms[group == keep_from], tolerance)]
    used = _vertices(kept_groups[0])
    while keep_from > 0:
        this = geoms[group == keep_from - 1]
        if used + _vertices_at_least(this, tolerance) > budget:  # cannot fit: not merged
            break
        nxt = _lines(this, tolerance)
        used += _vertices(nxt)
        if used > budget:
            break
        kept_groups.append(nxt)
        keep_from -= 1
    if keep_from == 0:
        return _lines(geoms, tolerance), None
    kept = [p[0] for p in kept_groups[::-1] if len(p)]
    lines = (np.array([shapely.multilinestrings(shapely.get_parts(np.array(kept)))], dtype=object)
             if kept else np.array([], dtype=object))
    return lines, "without " + ", ".join(label for label, _ in DROP_ORDER[:keep_from])


def heat_points(xy: np.ndarray, weights: np.ndarray, *,
                budget: int | None = None) -> tuple[np.ndarray, np.ndarray, float | None]:
    """At most about ``budget`` heat-map points: the points, or their sums on a grid.

    ``xy`` are projected coordinates (metres). Returns the points, their
    weights, and the grid cell in metres (None when the points are drawn as they are). ``budget`` defaults to
    :data:`HEAT_POINTS` (and likewise :data:`STREET_VERTICES`, :data:`STOP_POINTS`).
    """
    budget = HEAT_POINTS if budget is None else budget
    if len(xy) <= budget:
        return xy, weights, None
    span = np.ptp(xy, axis=0)
    # occupied cells grow at most with the area over the cell's area: start from that
    # and widen the cell until the occupied ones fit the budget
    cell = max(float(np.sqrt(max(span[0] * span[1], 1.0) / budget)), 1.0)
    while True:
        key = np.floor(xy / cell).astype(np.int64)
        frame = pd.DataFrame({"kx": key[:, 0], "ky": key[:, 1], "w": weights,
                              "wx": weights * xy[:, 0], "wy": weights * xy[:, 1],
                              "x": xy[:, 0], "y": xy[:, 1]})
        sums = frame.groupby(["kx", "ky"], sort=False).agg(
            w=("w", "sum"), wx=("wx", "sum"), wy=("wy", "sum"), x=("x", "mean"), y=("y", "mean"))
        if len(sums) <= budget:
            break
        cell *= 1.25
    w = sums["w"].to_numpy()
    pos = w > 0
    cx = np.where(pos, sums["wx"].to_numpy() / np.where(pos, w, 1.0), sums["x"].to_numpy())
    cy = np.where(pos, sums["wy"].to_numpy() / np.where(pos, w, 1.0), sums["y"].to_numpy())
    return np.column_stack([cx, cy]), w, cell


def stops_near(transit: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, *,
               budget: int | None = None, within_m: float = STOPS_NEAR_M,
               ) -> tuple[gpd.GeoDataFrame, bool]:
    """The stops to draw: all of them within ``budget``, else those near a chosen site.

    Both frames are in one projected CRS. Past the budget, the stops within
    ``within_m`` metres of a site are kept, the nearest first, at most
    ``budget`` of them. Returns the stops and whether they were cut.
    """
    budget = STOP_POINTS if budget is None else budget
    if len(transit) <= budget or not len(sites):
        return transit, False
    tree = shapely.STRtree(sites.geometry.to_numpy())
    stops = transit.geometry.to_numpy()
    idx, dist = tree.query_nearest(stops, max_distance=within_m, return_distance=True,
                                   all_matches=False)
    near = pd.Series(dist, index=idx[0]).groupby(level=0).min().sort_values(kind="stable")
    keep = np.sort(near.index.to_numpy()[:budget])
    return transit.iloc[keep], True
