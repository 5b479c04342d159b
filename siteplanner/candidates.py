"""Candidate sites: H3 cells on buildable land in the study area, or the user's list of premises.

A cell is a candidate when its centre lies in the study area, on land where a
branch can stand, and near a walkable street:

* **near a street**: a walkable street passes within ``street_within_m`` of the
  cell centre. The default is the H3 cell's edge length at the resolution
  (H3's published average, ``h3.average_hexagon_edge_length``; 24.9 m at
  resolution 11), so a cell counts when a street crosses or touches it: a
  branch opens onto a street.
* **not on blocked land**: the centre lies in none of the data's water, rail,
  park or cemetery polygons (:data:`siteplanner.sources._osm.BLOCKED_LAND`).
  Sea is not a polygon in OSM (coastlines are lines), but sea cells lie far
  from any street and fall to the first rule.

Candidates are not restricted to building footprints: a city extract's
buildings rarely say which have a commercial ground floor, so that filter
would keep too few. Give the real premises as ``--layer candidates=FILE``
for that.

A candidate whose reach (the largest criterion radius) runs past the edge of
the data is flagged ``edge``: what it counts is cut off there, so it might win
only because the competitors beyond the edge are not in the file.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import warnings
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from siteplanner._aside import Aside, Pending, aside
from siteplanner._errors import InputError
from siteplanner._near_lines import near_lines
from siteplanner.addresses import site_addresses
from siteplanner.layers import Layers

log = logging.getLogger(__name__)

__all__ = ["SITE_COLUMNS", "AreaCells", "area_cells", "buildable", "centres_aside",
           "centres_aside_stats", "drop_centres_aside", "edge_flags", "edge_policy", "h3_candidates",
           "site_candidates", "site_cells", "street_distance_default", "user_candidates",
           "with_addresses", "with_cells"]


#: The candidate columns that go with each site into the ranked table.
SITE_COLUMNS = ("site_id", "geometry", "cell", "address", "district", "address_source", "address_m",
                "edge")


def edge_policy(table: pd.DataFrame, *, policy: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the ranked table into the candidates selection may pick and the edge ones it may not.

    With ``policy="exclude"`` the ``edge`` candidates are held back, with
    ``status`` saying why, and a warning counts them; with ``"keep"`` nothing is.
    """
    edge = table["edge"].to_numpy(dtype=bool)
    if policy != "exclude" or not edge.any():
        if edge.any():
            warnings.warn(f"{int(edge.sum())} of {len(table)} candidates ({edge.mean():.1%}) lie "
                          "within their reach of the edge of the data, where what they count is "
                          "cut off; they are flagged edge and may be selected "
                          "(candidates.edge = \"keep\")", UserWarning, stacklevel=2)
        return table, table.iloc[0:0]
    held = table[edge].copy()
    held["rank"] = pd.array([pd.NA] * len(held), dtype="Int64")
    held["status"] = "edge"
    held["status_detail"] = "its reach runs past the edge of the data"
    warnings.warn(f"{int(edge.sum())} of {len(table)} candidates ({edge.mean():.1%}) lie within "
                  "their reach of the edge of the data, where what they count is cut off; they "
                  "are left out of the selection (candidates.edge = \"keep\" allows them)",
                  UserWarning, stacklevel=2)
    if edge.all():
        msg = ("every candidate's reach runs past the edge of the data; use an extract that "
               "extends beyond the study area, a smaller area, or candidates.edge = \"keep\"")
        raise InputError(msg)
    return table[~edge], held


def street_distance_default(resolution: int) -> float:
    """The default ``street_within_m``: H3's average cell edge length at ``resolution``, metres."""
    return float(h3.average_hexagon_edge_length(resolution, unit="m"))


def buildable(cands: gpd.GeoDataFrame, *, streets: gpd.GeoDataFrame, blocked: gpd.GeoDataFrame,
              street_within_m: float) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Keep the candidates near a walkable street and off blocked land.

    Parameters
    ----------
    cands
        Candidate points in a projected CRS.
    streets
        Walkable street lines, same CRS; when empty, no street rule is applied.
    blocked
        Water, rail, park and cemetery polygons with ``kind``, same CRS.
    street_within_m
        How far a cell centre may be from a walkable street, metres.

    Returns
    -------
    kept, counts
        The candidates kept, and ``{"in_area", "near_street", "buildable"}``
        counts (``near_street``: also within the distance of a street).
    """
    pts = np.asarray(cands.geometry.values)
    keep, counts = _buildable_mask(shapely.get_x(pts), shapely.get_y(pts), streets=streets,
                                   blocked=blocked, street_within_m=street_within_m)
    return cands[keep], counts


def _buildable_mask(x: np.ndarray, y: np.ndarray, *, streets: gpd.GeoDataFrame,
                    blocked: gpd.GeoDataFrame, street_within_m: float
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`buildable` over the points' coordinates: the mask kept, and the counts."""
    near = np.ones(len(x), dtype=bool)
    if len(streets):
        near = near_lines(x, y, np.asarray(streets.geometry.values), street_within_m)
    keep = near.copy()
    idx = np.flatnonzero(near)
    if len(blocked) and len(idx):  # only the centres by a street can be kept
        inside = shapely.STRtree(np.asarray(blocked.geometry.values)).query(
            shapely.points(x[idx], y[idx]), predicate="within")[0]
        keep[idx[inside]] = False
    counts = {"in_area": len(x), "near_street": int(near.sum()), "buildable": int(keep.sum())}
    if not keep.any():
        msg = (f"no candidate cell lies within {street_within_m:.0f} m of a walkable street on "
               "open land in the study area; raise candidates.street_within_m or check the area")
        raise InputError(msg)
    return keep, counts


def edge_flags(cands: gpd.GeoDataFrame, extent: shapely.Geometry | None, *,
               reach_m: float) -> pd.Series:
    """True where a candidate's reach (a disc of ``reach_m`` metres) leaves the data's extent.

    ``extent`` is in the candidates' CRS; without one nothing is flagged.
    """
    if extent is None or shapely.is_empty(extent):
        return pd.Series(False, index=cands.index, name="edge")
    pts = np.asarray(cands.geometry.values)
    shapely.prepare(extent)
    out = ~shapely.contains(extent, pts) | (shapely.distance(pts, shapely.boundary(extent)) < reach_m)
    return pd.Series(out, index=cands.index, name="edge")


def h3_candidates(area: gpd.GeoDataFrame, *, resolution: int,
                  polygons: bool = True) -> gpd.GeoDataFrame:
    """One candidate per H3 cell whose centre lies in the study area.

    Returns points at the cell centres in the area's CRS, indexed by
    ``site_id`` (the H3 cell id), with the cell polygon in ``cell`` unless
    ``polygons=False`` (a country holds hundreds of thousands of cells, and
    counting buildings per cell needs only the ids: see
    :func:`siteplanner.demand.residents_workers`).
    """
    centres = _cell_centres(area, resolution=resolution)
    return with_cells(centres) if polygons else centres


@dataclasses.dataclass(eq=False)
class AreaCells:
    """An area's H3 cells: their sorted integer ids and projected centres, in one order.

    The frame of every cell (:meth:`frame`) is built only when asked: a country holds
    several times more cells than candidates, and the candidates and the demand read only
    the cells they keep (:func:`site_candidates`, :mod:`siteplanner._demand_stage`).
    """

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    crs: Any
    resolution: int
    _whole: gpd.GeoDataFrame | None = dataclasses.field(default=None, repr=False)

    def frame(self, rows: np.ndarray | None = None) -> gpd.GeoDataFrame:
        """The cells (all, or ``rows``: a mask or positions) as :func:`h3_candidates` returns
        them without polygons: points at the centres, indexed by ``site_id``."""
        if rows is not None:
            return _centres_frame(self.ids[rows], self.x[rows], self.y[rows], self.crs)
        if self._whole is None:
            self._whole = _centres_frame(self.ids, self.x, self.y, self.crs)
        return self._whole.copy()


#: The last few areas' cells: a run asks for the same area's cells twice (the candidates,
#: then the demand over the whole area), and a country's take a second.
_CENTRES: dict[tuple[bytes, str, int], AreaCells] = {}
_CENTRES_KEPT = 2
#: Cells being found in a second process (:func:`centres_aside`), by the same key.
_PENDING: Pending[tuple[bytes, str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = Pending()


def _key(area: gpd.GeoDataFrame, resolution: int) -> tuple[bytes, str, int]:
    return (shapely.to_wkb(area.geometry.union_all()), str(area.crs), resolution)


def centres_aside(area: gpd.GeoDataFrame, *, resolution: int) -> None:
    """Start finding the area's cells and their centres in a second process
    (:mod:`siteplanner._aside`), so the caller's next work overlaps it; the first
    :func:`area_cells` (or :func:`h3_candidates`, :func:`site_candidates`) of the area
    collects them. Where the run cannot fork this does nothing, and they are found when
    first asked."""
    key = _key(area, resolution)
    if key not in _CENTRES:
        _PENDING.start(key, "finding the area's H3 cells", _area_centre_arrays, area, resolution)


def centres_aside_stats(area: gpd.GeoDataFrame, *, resolution: int) -> dict[str, Any] | None:
    """The second process's seconds and own memory, when it found these cells since the
    last ask (each run's record says it once); else None."""
    return _PENDING.stats(_key(area, resolution))


def drop_centres_aside() -> None:
    """Stop the cells still being found aside (a run that failed before reading them)."""
    _PENDING.cancel()


def area_cells(area: gpd.GeoDataFrame, *, resolution: int) -> AreaCells:
    """The H3 cells whose centre lies in the study area (kept for the next ask)."""
    key = _key(area, resolution)
    if key not in _CENTRES:
        while len(_CENTRES) >= _CENTRES_KEPT:
            _CENTRES.pop(next(iter(_CENTRES)))
        found, arrays = _PENDING.take(key)
        ids, x, y = arrays if found and arrays is not None else _area_centre_arrays(area, resolution)
        cells = AreaCells(ids, x, y, area.crs, resolution)
        _CENTRES[key] = cells
    return _CENTRES[key]


def _cell_centres(area: gpd.GeoDataFrame, *, resolution: int) -> gpd.GeoDataFrame:
    return area_cells(area, resolution=resolution).frame()


def _area_centre_arrays(area: gpd.GeoDataFrame,
                        resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted integer ids of the area's cells and their centres in the area's CRS."""
    from pyproj import Transformer

    ids, latlng = _centre_arrays(area.to_crs(4326).geometry.union_all(), resolution)
    x, y = Transformer.from_crs(4326, area.crs, always_xy=True).transform(latlng[:, 1], latlng[:, 0])
    return ids, np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _centre_arrays(wgs: shapely.Geometry, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted integer ids of the cells whose centre lies in ``wgs`` (lon/lat), and
    their centres (lat, lon)."""
    import h3.api.numpy_int as h3_int

    # H3 fills the convex hull of each part of the area (few edges, so fast), then one
    # vectorised shapely test keeps the cells whose centre lies in the area itself: the
    # same cells as filling the area, whose every cell is tested against all of a country
    # border's edges. The fill is H3 4.x's compact one (``polygonToCellsExperimental``,
    # cells whose centre is in the shape, as ``polygonToCells``): it descends from coarse
    # cells wholly inside, 15x faster on a country's hull. Integer ids sort as their hex
    # strings do (one resolution: one length).
    ids = _hull_cells(wgs, resolution)
    latlng = np.fromiter(itertools.chain.from_iterable(map(h3_int.cell_to_latlng, ids.tolist())),
                         dtype=float, count=2 * len(ids)).reshape(-1, 2)
    shapely.prepare(wgs)
    inside = shapely.contains_xy(wgs, latlng[:, 1], latlng[:, 0])
    ids, latlng = ids[inside], latlng[inside]
    if not len(ids):
        msg = (f"the study area holds no H3 cell centre at resolution {resolution}; "
               "raise candidates.h3_resolution or give a larger area")
        raise InputError(msg)
    return ids, latlng


def _centres_frame(ids: np.ndarray, x: np.ndarray, y: np.ndarray, crs: Any) -> gpd.GeoDataFrame:
    cells = np.array([f"{c:x}" for c in ids.tolist()], dtype=object)  # as h3.int_to_str writes it
    gdf = gpd.GeoDataFrame({"site_id": cells}, geometry=gpd.points_from_xy(x, y), crs=crs)
    return gdf.set_index("site_id", drop=False)


def _hull_cells(wgs: shapely.Geometry, resolution: int) -> np.ndarray:
    """The sorted integer ids of the cells whose centre lies in the convex hull of a part of
    ``wgs`` (lon/lat), each once: hulls may overlap."""
    import h3.api.numpy_int as h3_int

    hulls = [h3.geo_to_h3shape(shapely.geometry.mapping(hull))
             for hull in shapely.convex_hull(shapely.get_parts(wgs)) if shapely.area(hull) > 0]
    ids = np.sort(np.concatenate([np.empty(0, dtype=np.uint64), *(
        h3_int.h3shape_to_cells_experimental(hull, resolution, contain="center")
        for hull in hulls)]).astype(np.uint64, copy=False))
    return ids[np.r_[True, ids[1:] != ids[:-1]]] if len(ids) else ids


def with_cells(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add each H3 candidate's cell polygon as ``cell`` (built only for the cells kept)."""
    from pyproj import Transformer

    rings = list(map(h3.cell_to_boundary, gdf["site_id"].tolist()))
    to_crs = Transformer.from_crs(4326, gdf.crs, always_xy=True)
    polys = np.empty(len(rings), dtype=object)
    sizes = np.fromiter(map(len, rings), dtype=int, count=len(rings))
    flat = itertools.chain.from_iterable
    for size in np.unique(sizes):  # hexagons, and the twelve pentagons of the globe
        pick = np.flatnonzero(sizes == size)
        latlng = np.fromiter(flat(flat(rings[i] for i in pick)), dtype=float,
                             count=2 * size * len(pick)).reshape(len(pick), size, 2)
        x, y = to_crs.transform(latlng[:, :, 1], latlng[:, :, 0])  # one call, lon/lat order
        # closed rings as one ragged array: GEOS builds them without a copy per ring
        ring = np.stack([x, y], axis=-1)
        closed = np.concatenate([ring, ring[:, :1]], axis=1).reshape(-1, 2)
        offsets = (np.arange(0, len(closed) + 1, size + 1), np.arange(len(pick) + 1))
        polys[pick] = shapely.from_ragged_array(shapely.GeometryType.POLYGON, closed, offsets)
    out = gdf.copy()
    out["cell"] = gpd.GeoSeries(polys, index=gdf.index, crs=gdf.crs).values
    return out


def site_candidates(layers: Layers, *, resolution: int, reach_m: float,
                    street_within_m: float | None = None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The study's candidates, buildable, flagged ``edge``, with address and district.

    H3 cells at ``resolution`` on buildable land (see the module docstring),
    or the user's premises when the layers hold them (not filtered: the user
    knows where the premises are).

    Returns
    -------
    cands, report
        The candidates, and the counts and settings for run.json.
    """
    cands, report, words = site_cells(layers, resolution=resolution, reach_m=reach_m,
                                      street_within_m=street_within_m)
    return with_addresses(cands, report, words), report


def site_cells(layers: Layers, *, resolution: int, reach_m: float,
               street_within_m: float | None = None
               ) -> tuple[gpd.GeoDataFrame, dict[str, Any], Aside[pd.DataFrame]]:
    """:func:`site_candidates` but the addresses: the candidates flagged ``edge``, the
    report, and their addresses being found (in a second process where the run can fork:
    :mod:`siteplanner._aside`), which :func:`with_addresses` joins. The pipeline joins them
    only once the network and the features are measured, which read the sites' places only.
    """
    default_m = street_distance_default(resolution)
    within = default_m if street_within_m is None else street_within_m
    report: dict[str, Any] = {}
    addresses = functools.partial(site_addresses, addresses=layers.addresses, streets=layers.streets,
                                  boundaries=layers.boundaries, places=layers.places,
                                  max_address_m=default_m, area_level=layers.area_level)
    words: Aside[pd.DataFrame] | None = None
    if layers.candidates is not None:
        cands = user_candidates(layers.candidates, layers.area)
        report["source"] = "user premises"
    else:
        cells = area_cells(layers.area, resolution=resolution)
        keep, counts = _buildable_mask(cells.x, cells.y, streets=layers.streets,
                                       blocked=layers.blocked, street_within_m=within)
        kept = cells.frame(keep)  # the frame of the cells kept only
        log.info("candidates: %s of %s cells by a street, on open land", f"{len(kept):,}",
                 f"{len(cells.ids):,}")
        log.info("candidates: addresses and districts of %s sites", f"{len(kept):,}")
        # the addresses need only the sites' points: a second process finds them while this
        # one draws the cells and then measures the network and the features (all hold the
        # GIL; siteplanner._aside); the score stage joins them
        words = aside("finding the sites' addresses", addresses, kept.geometry)
        try:
            cands = with_cells(kept)
        except BaseException:
            words.cancel()
            raise
        report.update(source=f"H3 cells at resolution {resolution}", cells_in_area=counts["in_area"],
                      near_street=counts["near_street"], candidates=counts["buildable"],
                      street_within_m=round(within, 1),
                      street_within_source=("H3 average cell edge length" if street_within_m is None
                                            else "study setting"))
    try:
        edge = edge_flags(cands, layers.extent, reach_m=reach_m)
    except BaseException:
        if words is not None:
            words.cancel()
        raise
    report.update(edge=int(edge.sum()), edge_share=round(float(edge.mean()), 4),
                  edge_reach_m=reach_m)
    if words is None:
        log.info("candidates: addresses and districts of %s sites", f"{len(cands):,}")
        words = Aside("finding the sites' addresses", addresses, cands.geometry, fork=False)
    return cands.join(edge), report, words


def with_addresses(cands: gpd.GeoDataFrame, report: dict[str, Any],
                   words: Aside[pd.DataFrame]) -> gpd.GeoDataFrame:
    """The candidates of :func:`site_cells` with their addresses (waited for), and the count
    with a house number (and the second process's figures, when one found them) in
    ``report``."""
    found = words.result()
    if words.forked:
        report["addresses_second_process"] = words.stats
    report["with_house_number"] = int((found["address_source"] == "house number").sum())
    return cands.join(found)


def user_candidates(cands: gpd.GeoDataFrame, area: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The user's candidate premises that lie in the study area, with a ``site_id``."""
    if "site_id" in cands:
        ids = cands["site_id"].astype(str)
    elif "id" in cands:
        ids = cands["id"].astype(str)
    else:
        width = len(str(len(cands)))
        ids = pd.Series([f"C{i:0{width}d}" for i in range(1, len(cands) + 1)], index=cands.index)
    if ids.duplicated().any():
        msg = f"layer candidates: site_id {ids[ids.duplicated()].iloc[0]!r} is used twice; make ids unique"
        raise InputError(msg)
    gdf = cands.assign(site_id=ids.to_numpy()).set_index("site_id", drop=False)
    inside = gdf.within(area.geometry.union_all())
    if not inside.any():
        msg = "layer candidates: no candidate lies inside the study area; check the file or the area"
        raise InputError(msg)
    if not inside.all():
        warnings.warn(f"layer candidates: {int((~inside).sum())} candidates outside the study "
                      "area are left out", UserWarning, stacklevel=2)
    gdf = gdf[inside]
    gdf["cell"] = gdf.geometry.buffer(15.0)
    return gdf
