"""Residents and workers per demand cell, from buildings or the user's census or raster.

A bank sizes a branch by the people it can serve. This module estimates them
for every H3 demand cell:

* **From OSM buildings** (:func:`building_people`, :func:`residents_workers`).
  Gross floor area = footprint × storeys; storeys come from
  ``building:levels``, else ``height`` / storey height
  (:data:`STOREY_HEIGHT_M`), else a default by building type
  (:data:`DEFAULT_LEVELS`). Each building's floor area is split by use
  (:func:`classify_use`): residential floor area / :data:`M2_PER_RESIDENT` gives
  residents, non-residential floor area / the employment density of its use
  (:data:`M2_PER_WORKER`) gives workers. Buildings are assigned to the cell
  holding their centroid.
* **Overrides**: census polygons with counts, areally interpolated onto the
  cells with PySAL ``tobler`` (:func:`census_counts`, extra ``census``), or a
  population raster such as WorldPop or GHSL summed per cell with
  ``exactextract`` (:func:`raster_counts`, extra ``raster``).

Densities and their sources (none is fitted to any bundled place; see
docs/demand.md):

* 40 m² of *usable* dwelling floor per resident: EU dwellings average about
  95 m² of usable floor for 2.3 people (Eurostat, EU-SILC 2012 ad hoc module on
  housing conditions; ODYSSEE-MURE "Floor area per capita" indicator: ~40 m²
  per person in the EU, 2019); England 39 m² (English Housing Survey
  2019-20: mean usable floor 94 m², 2.4 people per household).
* Employment densities from the HCA *Employment Density Guide*, 3rd edition
  (Homes and Communities Agency, UK, 2015): general office 12 m² NIA per
  full-time-equivalent worker (range 8-13); high-street retail 15-20 (17.5 used);
  light industry / general industrial 36-47 m² GIA (40 used); general warehouse
  70-95 m² GEA (80 used); mid-scale hotel 1 FTE per 3 bedrooms (at 50 m² gross
  per bedroom, a planning rule of thumb for mid-scale hotels: 150 m² per worker);
  education and health use the office figure, which the guide applies to
  "public sector office-type" uses (an assumption, stated here).
* Usable (net internal) area is taken as 80 % of the gross external floor
  area that footprint × storeys measures (RICS *Code of Measuring Practice*,
  6th ed. 2007, defines GEA/GIA/NIA; 75-85 % net-to-gross is the range the HCA
  guide quotes for offices).
* Untyped buildings (``building=yes``) with no use from their own tags or the
  ``landuse`` polygon they stand in are split 75 % residential / 25 % office:
  residential buildings hold about 75 % of the EU's floor area (European
  Commission, *EU Buildings Factsheets*, Building Stock Observatory, 2016).

Tourist accommodation (``building=hotel``, ``tourism=hotel|hostel|motel|
guest_house|apartment|chalet``) holds **no residents**: a census counts usual
residents, and guests are visitors. Its staff are workers at the hotel
density; its guests reach the street and show up in foot traffic.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from siteplanner._errors import CRSError, InputError
from siteplanner.sources.buildings import FOOTPRINT_M2

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_WEIGHTS",
    "DEMAND_UNIT",
    "M2_PER_RESIDENT",
    "M2_PER_WORKER",
    "NET_TO_GROSS",
    "STOREY_HEIGHT_M",
    "UNTYPED_RESIDENTIAL_SHARE",
    "Densities",
    "building_people",
    "cell_sums",
    "census_counts",
    "classify_use",
    "combined_demand",
    "criteria_correlation",
    "demand_layer",
    "h3_cells_of",
    "raster_counts",
    "read_census",
    "residents_workers",
]

log = logging.getLogger(__name__)

#: The unit of the combined demand and of every market figure built on it.
DEMAND_UNIT = "people per day"

#: Floor-to-floor height in metres (CTBUH *Height Calculator*: 3.1 m residential,
#: 3.9 m office); 3.1 m is used for every use when only ``height`` is tagged.
STOREY_HEIGHT_M = 3.1

#: Usable (net internal) share of gross floor area (RICS; see the module notes).
NET_TO_GROSS = 0.8

#: Share of an untyped building's floor taken as residential (EU Building Stock Observatory).
UNTYPED_RESIDENTIAL_SHARE = 0.75

#: m² of usable dwelling floor per resident (Eurostat / ODYSSEE-MURE / EHS; module notes).
M2_PER_RESIDENT = 40.0

#: m² of usable floor per full-time worker by use (HCA Employment Density Guide 2015).
M2_PER_WORKER: dict[str, float] = {
    "office": 12.0, "retail": 17.5, "industrial": 40.0, "warehouse": 80.0, "hotel": 150.0,
    "education": 12.0, "health": 12.0,
}

#: Storeys assumed when a building has neither ``building:levels`` nor ``height``:
#: the usual form of each type (a house has two storeys, a shed one). These are
#: stated assumptions, not fitted; ``yes`` (untyped) takes 2.
DEFAULT_LEVELS: dict[str, float] = {
    "house": 2, "detached": 2, "semidetached_house": 2, "terrace": 2, "bungalow": 1,
    "farm": 2, "cabin": 1, "static_caravan": 1, "residential": 3, "apartments": 4,
    "dormitory": 3, "hotel": 4, "commercial": 2, "office": 3, "retail": 1, "supermarket": 1,
    "industrial": 1, "warehouse": 1, "school": 2, "university": 3, "college": 3,
    "kindergarten": 1, "hospital": 3, "public": 2, "civic": 2, "government": 3,
}
_DEFAULT_LEVELS_OTHER = 2.0

#: Default weights of the three parts of the combined demand (people per day).
#: Residents and workers are each present on a working day; passers-by enter
#: only when foot traffic is measured in people per day (a proxy has no unit).
DEFAULT_WEIGHTS = {"residents": 1.0, "workers": 1.0, "foot_traffic": 1.0}

_RESIDENTIAL = {"house", "detached", "semidetached_house", "terrace", "bungalow", "apartments",
                "residential", "dormitory", "farm", "cabin", "static_caravan", "houseboat",
                "semi", "flats"}
_USE_OF_TYPE = {
    "commercial": "office", "office": "office", "public": "office", "civic": "office",
    "government": "office", "retail": "retail", "supermarket": "retail", "kiosk": "retail",
    "industrial": "industrial", "factory": "industrial", "manufacture": "industrial",
    "warehouse": "warehouse", "hotel": "hotel", "school": "education",
    "university": "education", "college": "education", "kindergarten": "education",
    "hospital": "health", "mixed_use": "mixed",
}
#: Structures where nobody lives or works day to day.
_NO_PEOPLE = {"garage", "garages", "shed", "roof", "carport", "hut", "parking", "greenhouse",
              "barn", "service", "transformer_tower", "bunker", "ruins", "construction",
              "farm_auxiliary", "stable", "cowshed", "sty", "storage_tank", "water_tower",
              "church", "chapel", "cathedral", "mosque", "temple", "synagogue", "shrine",
              "toilets", "bridge", "tent", "container", "silo", "boathouse", "no"}
_TOURISM_STAYS = {"hotel", "hostel", "motel", "guest_house", "apartment", "chalet"}
_USE_OF_LANDUSE = {"residential": "residential", "commercial": "office", "retail": "retail",
                   "industrial": "industrial", "education": "education"}
_USE_OF_TAG = {"residential": "residential", "commercial": "office", "office": "office",
               "retail": "retail", "industrial": "industrial", "mixed": "mixed"}
_NUMBER = re.compile(r"(\d+(?:[.,]\d+)?)")


@dataclass(frozen=True)
class Densities:
    """The conversion from floor area to people (defaults: module notes)."""

    m2_per_resident: float = M2_PER_RESIDENT
    m2_per_worker: dict[str, float] = field(default_factory=lambda: dict(M2_PER_WORKER))
    net_to_gross: float = NET_TO_GROSS
    storey_height_m: float = STOREY_HEIGHT_M
    untyped_residential_share: float = UNTYPED_RESIDENTIAL_SHARE


def _first_number(values: pd.Series) -> np.ndarray:
    """The first number in each tag value (``"3"``, ``"2.5"``, ``"3;4"``, ``"12 m"``), else NaN."""
    text = values.astype("string").str.extract(_NUMBER, expand=False).str.replace(",", ".")
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)


def classify_use(buildings: gpd.GeoDataFrame, *,
                 landuse: gpd.GeoDataFrame | None = None) -> pd.Series:
    """Use of each building: residential, office, retail, industrial, warehouse, hotel,
    education, health, mixed, untyped or none.

    Order of evidence: tourist accommodation (``tourism`` or ``building=hotel``),
    ``building:use``, the building type, the building's own ``shop`` /
    ``office`` / ``amenity`` tags, then the ``landuse`` polygon holding its
    centroid. What is still unknown is ``untyped``.
    """
    n = len(buildings)

    def tag(name: str) -> pd.Series:
        col = buildings[name] if name in buildings else pd.Series(None, index=buildings.index)
        return col.astype("string").str.strip().str.lower()

    btype = tag("building").fillna("yes")
    use = btype.map(lambda t: "residential" if t in _RESIDENTIAL else
                    ("none" if t in _NO_PEOPLE else _USE_OF_TYPE.get(t, "untyped")))
    use = use.astype(object).to_numpy().copy()
    untyped = use == "untyped"
    by_tag = tag("building:use").map(_USE_OF_TAG).astype(object).to_numpy()
    take = untyped & pd.notna(by_tag)
    use[take] = by_tag[take]
    untyped = use == "untyped"
    shop, office = tag("shop").notna().to_numpy(), tag("office").notna().to_numpy()
    use[untyped & shop] = "retail"
    use[untyped & ~shop & office] = "office"
    untyped = use == "untyped"
    if landuse is not None and len(landuse) and untyped.any():
        lu = landuse.to_crs(buildings.crs)
        centroids = shapely.point_on_surface(buildings.geometry.values[untyped])
        b_idx, l_idx = lu.sindex.query(centroids, predicate="within")
        lu_use = lu["landuse"].astype("string").str.lower().map(_USE_OF_LANDUSE).to_numpy(dtype=object)
        hit = pd.notna(lu_use[l_idx])
        rows = np.flatnonzero(untyped)[b_idx[hit]]
        use[rows] = lu_use[l_idx[hit]]
    stays = tag("tourism").isin(_TOURISM_STAYS).to_numpy() | (btype == "hotel").to_numpy()
    use[stays] = "hotel"
    return pd.Series(use if n else np.array([], dtype=object), index=buildings.index, name="use")


def building_people(buildings: gpd.GeoDataFrame, *, crs: Any,
                    landuse: gpd.GeoDataFrame | None = None,
                    densities: Densities | None = None) -> gpd.GeoDataFrame:
    """Residents and workers of each building (people), with how they were estimated.

    Parameters
    ----------
    buildings
        Footprints with the OSM tags of :func:`siteplanner.sources.buildings.read_buildings`.
    crs
        A projected, metric CRS to measure footprints in.
    landuse
        Optional ``landuse`` polygons giving untyped buildings a use.
    densities
        The conversion; defaults as documented in the module notes.

    Returns
    -------
    GeoDataFrame
        In ``crs``: ``use``, ``levels``, ``levels_source`` (tag, height or
        default), ``floor_area_m2`` (gross), ``residents``, ``workers``.
    """
    d = densities or Densities()
    b = buildings.to_crs(crs)
    if b.crs is None or not b.crs.is_projected:
        msg = f"building_people: crs={crs!r} is not projected; use a metric CRS such as UTM"
        raise CRSError(msg)
    use = classify_use(b, landuse=landuse).to_numpy(dtype=object)
    btype = (b["building"] if "building" in b else pd.Series(None, index=b.index))
    btype = btype.astype("string").str.lower().fillna("yes")
    levels = _first_number(b["building:levels"]) if "building:levels" in b else np.full(len(b), np.nan)
    height = _first_number(b["height"]) if "height" in b else np.full(len(b), np.nan)
    levels = np.where((levels >= 1) & (levels <= 200), levels, np.nan)
    from_height = np.where(height > 0, np.maximum(np.round(height / d.storey_height_m), 1), np.nan)
    default = btype.map(DEFAULT_LEVELS).fillna(_DEFAULT_LEVELS_OTHER).to_numpy(dtype=float)
    source = np.where(np.isfinite(levels), "tag", np.where(np.isfinite(from_height), "height",
                                                           "default"))
    lv = np.where(np.isfinite(levels), levels, np.where(np.isfinite(from_height), from_height,
                                                        default))
    area = (b[FOOTPRINT_M2].to_numpy(dtype=float) if FOOTPRINT_M2 in b
            else shapely.area(b.geometry.values))
    gross = area * lv
    net = gross * d.net_to_gross
    res_share = np.select([use == "residential", use == "untyped", use == "mixed"],
                          [1.0, d.untyped_residential_share, 1.0 - 1.0 / np.maximum(lv, 1.0)], 0.0)
    res_share = np.where(use == "none", 0.0, res_share)
    residents = net * res_share / d.m2_per_resident
    worker_use = np.where(np.isin(use, ["untyped", "mixed"]), np.where(use == "mixed", "retail",
                                                                       "office"), use)
    per_worker = pd.Series(worker_use).map(d.m2_per_worker).to_numpy(dtype=float)
    non_res = np.where(use == "none", 0.0, 1.0 - res_share)
    workers = np.where(np.isfinite(per_worker), net * non_res / per_worker, 0.0)
    return gpd.GeoDataFrame(
        {"use": use, "levels": lv, "levels_source": source, "floor_area_m2": gross,
         "residents": residents, "workers": workers},
        geometry=b.geometry.values, crs=b.crs, index=b.index)


def _h3_resolution(cells: pd.DataFrame) -> int | None:
    """The H3 resolution of cells indexed by H3 cell ids (one resolution), else None."""
    import h3

    if not len(cells) or not all(isinstance(i, str) and h3.is_valid_cell(i) for i in cells.index[:50]):
        return None
    res = {h3.get_resolution(i) for i in cells.index[:50]}
    return res.pop() if len(res) == 1 else None


def _cell_polygons(cells: gpd.GeoDataFrame) -> np.ndarray:
    if "cell" in cells:
        return np.asarray(gpd.GeoSeries(cells["cell"]).values)
    if cells.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        return np.asarray(cells.geometry.values)
    if _h3_resolution(cells) is not None:
        from siteplanner.candidates import with_cells

        return np.asarray(with_cells(cells.assign(site_id=cells.index))["cell"].values)
    msg = "demand cells need polygons: give the H3 cells of siteplanner.candidates.h3_candidates"
    raise InputError(msg)


def _cell_of_points(cells: gpd.GeoDataFrame, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point index, cell row) for each point that falls in one of ``cells``.

    Cells indexed by H3 ids take the point's H3 cell (``h3.latlng_to_cell``: H3's own
    rule, one cell per point); other cells are polygons, and a point on a shared edge
    goes to the first.
    """
    res = _h3_resolution(cells)
    if res is None:
        p_idx, c_idx = shapely.STRtree(_cell_polygons(cells)).query(points, predicate="within")
        p_idx, first = np.unique(p_idx, return_index=True)
        return p_idx, c_idx[first]
    ids = pd.Index([f"{c:x}" for c in h3_cells_of(points, cells.crs, res).tolist()])
    row = cells.index.get_indexer(ids)  # the cells' ids as h3 writes them
    hit = np.flatnonzero(row >= 0)
    return hit, row[hit]


def h3_cells_of(points: np.ndarray, crs: Any, resolution: int) -> np.ndarray:
    """The integer id of the H3 cell holding each point (in ``crs``): H3's own rule
    (``latlng_to_cell``), one cell per point."""
    import h3.api.numpy_int as h3_int
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(
        shapely.get_x(points), shapely.get_y(points))
    return np.fromiter((h3_int.latlng_to_cell(y, x, resolution)
                        for x, y in zip(lon, lat, strict=True)), dtype=np.uint64, count=len(lon))


def residents_workers(cells: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, *,
                      landuse: gpd.GeoDataFrame | None = None,
                      densities: Densities | None = None) -> pd.DataFrame:
    """Residents and workers per demand cell from building footprints.

    Parameters
    ----------
    cells
        The demand cells in the study's projected CRS, with their polygon in
        ``cell`` (as :func:`siteplanner.candidates.h3_candidates` returns them)
        or as the geometry.
    buildings
        OSM building footprints (any CRS), see
        :func:`siteplanner.sources.buildings.read_buildings`.
    landuse, densities
        As in :func:`building_people`.

    Returns
    -------
    DataFrame
        On the cells' index: ``residents`` and ``workers`` (people), and
        ``floor_area_m2`` (gross floor area of the buildings counted). A
        building counts in the cell that holds its centroid.
    """
    people = building_people(buildings, crs=cells.crs, landuse=landuse, densities=densities)
    b_idx, c_idx = _cell_of_points(cells, shapely.point_on_surface(people.geometry.values))
    return pd.DataFrame(cell_sums(people, b_idx, c_idx, len(cells)), index=cells.index)


def cell_sums(people: pd.DataFrame, b_idx: np.ndarray, c_idx: np.ndarray,
              n: int) -> dict[str, np.ndarray]:
    """``residents``, ``workers`` and ``floor_area_m2`` of :func:`building_people`'s
    buildings ``b_idx`` summed into the ``n`` cells ``c_idx`` (building order)."""
    out = {col: np.bincount(c_idx, weights=people[col].to_numpy()[b_idx], minlength=n)
           for col in ("residents", "workers", "floor_area_m2")}
    log.info("demand: %s of %s buildings fall in the %s demand cells", f"{len(b_idx):,}",
             f"{len(people):,}", f"{n:,}")
    return out


_COUNT_COLUMNS = ("population", "residents", "workers", "count", "pop", "total")


def _count_column(layer: gpd.GeoDataFrame, column: str | None, path: str) -> str:
    if column is not None:
        if column not in layer:
            msg = (f"{path}: no column {column!r} (columns: {', '.join(map(str, layer.columns))}); "
                   "name the count column of the population layer")
            raise InputError(msg)
        return column
    found = [c for c in _COUNT_COLUMNS if c in layer]
    if not found:
        msg = (f"{path}: no count column (looked for {', '.join(_COUNT_COLUMNS)}); add one with "
               "people per polygon or name it with column=")
        raise InputError(msg)
    return found[0]


def _check_counts(values: pd.Series, path: str, column: str) -> np.ndarray:
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna().to_numpy() | ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        msg = (f"{path}: column {column!r} holds {values.iloc[row]!r} at row {row + 1}, not a "
               "number; give a count of people in every row")
        raise InputError(msg)
    arr = num.to_numpy(dtype=float)
    if (arr < 0).any():
        row = int(np.flatnonzero(arr < 0)[0])
        msg = (f"{path}: column {column!r} is negative ({arr[row]:g}) at row {row + 1}; counts of "
               "people are >= 0")
        raise InputError(msg)
    return arr


def read_census(path: str | Path) -> gpd.GeoDataFrame:
    """Census polygons from a GeoPackage, GeoJSON, Shapefile or GeoParquet file."""
    p = Path(path)
    if not p.is_file():
        msg = f"{p}: census layer not found; check demand.census in the study"
        raise InputError(msg)
    try:
        gdf = gpd.read_parquet(p) if p.suffix.lower() == ".parquet" else gpd.read_file(p)
    except Exception as e:  # pyogrio raises its own kinds
        msg = f"{p}: cannot read the census layer ({type(e).__name__}: {e}); give polygons with counts"
        raise InputError(msg) from None
    if not gdf.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        msg = f"{p}: the census layer must hold polygons (areas with a count of people each)"
        raise InputError(msg)
    return gdf


def census_counts(cells: gpd.GeoDataFrame, census: gpd.GeoDataFrame, *,
                  column: str | None = None, path: str | Path = "census layer") -> pd.Series:
    """People per cell from census polygons, areally interpolated with PySAL ``tobler``.

    Each polygon's count is shared among the cells in proportion to the area
    of overlap (``tobler.area_weighted.area_interpolate``, an extensive
    variable), so the cells' total equals the covered part of the census.

    Parameters
    ----------
    cells
        Demand cells in the study CRS with their polygon in ``cell``.
    census
        Polygons with a count column (any CRS).
    column
        The count column; default the first of ``population``, ``residents``,
        ``workers``, ``count``, ``pop``, ``total``.
    path
        Where the layer came from, for messages.
    """
    where = str(path)
    col = _count_column(census, column, where)
    counts = _check_counts(census[col], where, col)
    if census.crs is None:
        msg = f"{where}: the census layer has no CRS; set it (EPSG:4326 for lon/lat)"
        raise CRSError(msg)
    try:
        from tobler.area_weighted import area_interpolate
    except ImportError:  # pragma: no cover - depends on the environment
        msg = "census layers need PySAL tobler: pip install 'siteplanner[census]'"
        raise InputError(msg) from None
    target = gpd.GeoDataFrame({"_i": np.arange(len(cells))}, geometry=_cell_polygons(cells),
                              crs=cells.crs)
    source = gpd.GeoDataFrame({"_n": counts}, geometry=census.geometry.values,
                              crs=census.crs).to_crs(cells.crs)
    if not source.geometry.union_all().intersects(target.geometry.union_all()):
        msg = (f"{where}: the census polygons do not overlap the study area; check the file's "
               "CRS and that it covers the study's place")
        raise InputError(msg)
    est = area_interpolate(source_df=source, target_df=target, extensive_variables=["_n"])
    return pd.Series(est["_n"].to_numpy(dtype=float), index=cells.index, name=col)


def raster_counts(cells: gpd.GeoDataFrame, raster: str | Path) -> pd.Series:
    """People per cell from a population raster (GeoTIFF of people per pixel).

    Each cell sums the pixels it covers, weighted by the covered fraction of
    each pixel (``exactextract``'s ``sum``), so a raster coarser than the
    cells is shared among them by area. Nodata pixels count as zero.
    """
    path = Path(raster)
    try:
        import rasterio
        from exactextract import exact_extract
    except ImportError:  # pragma: no cover - depends on the environment
        msg = "population rasters need rasterio and exactextract: pip install 'siteplanner[raster]'"
        raise InputError(msg) from None
    if not path.is_file():
        msg = f"{path}: population raster not found; check the path"
        raise InputError(msg)
    try:
        with rasterio.open(path) as src:
            crs, bounds = src.crs, src.bounds
            sample = src.read(1, masked=True)
    except rasterio.errors.RasterioIOError as e:
        msg = f"{path}: cannot read as a raster ({e}); give a GeoTIFF of people per pixel"
        raise InputError(msg) from None
    if crs is None:
        msg = f"{path}: the raster has no CRS; set it (gdal_edit.py -a_srs EPSG:XXXX) and retry"
        raise CRSError(msg)
    if np.ma.count(sample) and float(sample.min()) < 0:
        msg = (f"{path}: the raster holds negative people counts ({float(sample.min()):g}); "
               "fix its values or its nodata value")
        raise InputError(msg)
    target = gpd.GeoDataFrame({"_i": np.arange(len(cells))}, geometry=_cell_polygons(cells),
                              crs=cells.crs).to_crs(crs)
    box = shapely.box(*bounds)
    if not target.geometry.union_all().intersects(box):
        msg = f"{path}: the raster does not overlap the study area; check its extent and CRS"
        raise InputError(msg)
    res = exact_extract(str(path), target, "sum", include_cols=["_i"], output="pandas")
    values = res.sort_values("_i")["sum"].to_numpy(dtype=float)
    return pd.Series(np.nan_to_num(values), index=cells.index, name="population")


def combined_demand(parts: pd.DataFrame, *, foot_traffic_measured: bool,
                    weights: dict[str, float] | None = None) -> pd.Series:
    """The demand the market splits: people per day at each cell.

    ``demand = w_r * residents + w_w * workers + w_f * foot_traffic``, where
    ``foot_traffic`` enters only when measured (counts of passers-by per day);
    a proxy is an index with no unit and cannot be added to people, so it
    then enters the score only. Weights default to :data:`DEFAULT_WEIGHTS`.
    """
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    unknown = sorted(set(w) - set(DEFAULT_WEIGHTS))
    if unknown:
        msg = f"demand weights: unknown part(s) {unknown}; use {sorted(DEFAULT_WEIGHTS)}"
        raise InputError(msg)
    bad = {k: v for k, v in w.items() if not (np.isfinite(v) and v >= 0)}
    if bad:
        msg = f"demand weights: {bad} must be finite numbers >= 0"
        raise InputError(msg)
    total = w["residents"] * parts["residents"] + w["workers"] * parts["workers"]
    if foot_traffic_measured and "foot_traffic" in parts:
        total = total + w["foot_traffic"] * parts["foot_traffic"]
    out = total.rename("demand").astype(float)
    out.attrs["unit"] = DEMAND_UNIT
    return out


def demand_layer(cells: gpd.GeoDataFrame, *, foot_traffic: pd.Series, foot_traffic_measured: bool,
                 buildings: gpd.GeoDataFrame | None = None,
                 landuse: gpd.GeoDataFrame | None = None,
                 census: tuple[gpd.GeoDataFrame, str] | None = None,
                 raster: str | Path | None = None,
                 weights: dict[str, float] | None = None,
                 people: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """The ``demand`` layer: one row per cell with residents, workers, foot traffic and demand.

    Residents come from ``raster`` when given, else ``census`` (a layer and its
    path), else the buildings; workers always from the buildings. Without
    buildings (or an override) residents and workers are missing and demand
    falls back to the foot-traffic value, with a warning. ``attrs["sources"]``
    says where each part came from and ``attrs["unit"]`` the unit of ``demand``.
    ``people`` is :func:`residents_workers` of these cells and buildings, counted
    already (then ``buildings`` is not read).
    """
    import warnings

    n = len(cells)
    sources: dict[str, str] = {}
    parts = pd.DataFrame(index=cells.index)
    if people is None and buildings is not None and len(buildings):
        people = residents_workers(cells, buildings, landuse=landuse)
    if people is not None:
        parts["residents"], parts["workers"] = people["residents"], people["workers"]
        sources["residents"] = sources["workers"] = "OSM buildings (floor area / density)"
    if raster is not None:
        parts["residents"] = raster_counts(cells, raster).to_numpy()
        sources["residents"] = f"population raster {raster}"
    elif census is not None:
        layer, where = census
        parts["residents"] = census_counts(cells, layer, path=where).to_numpy()
        sources["residents"] = f"census polygons {where} (tobler area interpolation)"
    parts["foot_traffic"] = foot_traffic.reindex(cells.index).to_numpy(dtype=float)
    sources["foot_traffic"] = "measured counts" if foot_traffic_measured else "network proxy"
    if "residents" not in parts:
        warnings.warn("no buildings, census or raster: demand falls back to the foot-traffic "
                      "value and has no unit of people", UserWarning, stacklevel=2)
        demand = parts["foot_traffic"].rename("demand")
        unit = "foot-traffic index"
    else:
        if "workers" not in parts:
            parts["workers"] = np.zeros(n)
            sources["workers"] = "none (no buildings)"
        demand = combined_demand(parts, foot_traffic_measured=foot_traffic_measured,
                                 weights=weights)
        unit = DEMAND_UNIT
    out = gpd.GeoDataFrame(parts.assign(demand=demand.to_numpy()), geometry=cells.geometry.values,
                           crs=cells.crs, index=cells.index)
    out.attrs.update(sources=sources, unit=unit,
                     weights={**DEFAULT_WEIGHTS, **(weights or {})})
    return out


def criteria_correlation(raw: pd.DataFrame, weights: dict[str, float], *,
                         threshold: float = 0.9) -> dict[str, Any]:
    """Correlation between the criteria, for run.json; warns on near-duplicate weighted pairs.

    Parameters
    ----------
    raw
        Raw criterion values per candidate (columns = criteria).
    weights
        Weight per criterion; pairs of criteria that both weigh more than 0
        and correlate (Pearson) above ``threshold`` raise a warning, since the
        score then counts one signal twice.

    Returns
    -------
    dict
        ``pearson`` and ``spearman`` as {"a~b": r}, and ``near_duplicates``.
    """
    import warnings

    cols = [c for c in raw.columns if raw[c].nunique() > 1]
    pearson = raw[cols].corr(method="pearson")
    spearman = raw[cols].corr(method="spearman")
    out: dict[str, Any] = {"pearson": {}, "spearman": {}, "near_duplicates": []}
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            key = f"{a}~{b}"
            out["pearson"][key] = round(float(pearson.loc[a, b]), 4)
            out["spearman"][key] = round(float(spearman.loc[a, b]), 4)
            if weights.get(a, 0) > 0 and weights.get(b, 0) > 0 and pearson.loc[a, b] > threshold:
                out["near_duplicates"].append(key)
                warnings.warn(f"criteria {a} and {b} correlate at {pearson.loc[a, b]:.2f} "
                              f"(over {threshold}); the score counts one signal twice, lower "
                              "one of their weights", UserWarning, stacklevel=2)
    return out
