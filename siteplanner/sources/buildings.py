"""Building footprints and land use from an OpenStreetMap extract.

:func:`read_buildings` returns one polygon per building with the tags the
demand model reads (:data:`BUILDING_TAGS`); :func:`read_landuse` the
``landuse`` polygons that give an untyped building (``building=yes``) its
likely use. ``.osm.pbf`` files are read with pyrosm, ``.osm`` / ``.osm.bz2``
with osmnx's offline ``features_from_xml``. Everything is returned in WGS84;
:mod:`siteplanner.demand` projects it, or :func:`footprint_points` reduces the
footprints to what the demand reads of them (tags, area, a point) piece by piece.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from siteplanner._errors import InputError

__all__ = ["BUILDING_TAGS", "FOOTPRINT_M2", "Packed", "footprint_points", "pyrosm_buildings",
           "read_buildings", "read_landuse", "split_buildings"]

#: Tags kept on every building (missing ones are empty).
BUILDING_TAGS = ("building", "building:levels", "height", "building:use", "amenity", "shop",
                 "office", "tourism")


def read_buildings(path: Path | str) -> gpd.GeoDataFrame:
    """Building footprints of an OSM extract: polygons in EPSG:4326 with :data:`BUILDING_TAGS`.

    Parameters
    ----------
    path
        A ``.osm.pbf``, ``.osm`` or ``.osm.bz2`` file.

    Returns
    -------
    GeoDataFrame
        One row per building way or relation (points and lines dropped), with
        the tag columns as strings (missing values as ``None``).
    """
    p = Path(path)
    raw = _read(p, {"building": True}, kind="buildings")
    if raw is None or len(raw) == 0:
        return _empty(BUILDING_TAGS)
    return _tidy(raw, BUILDING_TAGS, p)


def read_landuse(path: Path | str) -> gpd.GeoDataFrame:
    """``landuse`` polygons of an OSM extract (EPSG:4326), with a ``landuse`` column."""
    p = Path(path)
    raw = _read(p, {"landuse": True}, kind="landuse")
    if raw is None or len(raw) == 0:
        return _empty(("landuse",))
    return _tidy(raw, ("landuse",), p)


@dataclass(frozen=True)
class Packed:
    """Polygons held as WKB until a stage needs them: a tenth of their memory as shapely objects.

    A study's building footprints and land use are read with the rest of the
    extract but used only by the demand (the select stage) and the floor plans;
    held as shapely polygons through the stages between, they cost about 90 MB
    on a 100k-candidate city, as WKB (exact: float64 coordinates) about 20 MB.
    """

    #: The tag columns and ``osm_id``, on a 0..n-1 index.
    columns: pd.DataFrame
    #: One WKB ``bytes`` per row.
    wkb: np.ndarray

    @classmethod
    def of(cls, gdf: gpd.GeoDataFrame) -> Packed:
        """Pack the rows of :func:`read_buildings` / :func:`read_landuse` (EPSG:4326)."""
        return cls(pd.DataFrame(gdf.drop(columns=gdf.geometry.name)),
                   shapely.to_wkb(gdf.geometry.values))

    def __len__(self) -> int:
        return len(self.wkb)

    def frame(self) -> gpd.GeoDataFrame:
        """The polygons back, equal (``GeoDataFrame.equals``) to the frame that was packed."""
        return gpd.GeoDataFrame(self.columns.copy(), geometry=shapely.from_wkb(self.wkb), crs=4326)

    def frames(self, rows: int = 20_000) -> Iterator[gpd.GeoDataFrame]:
        """:meth:`frame` in pieces of ``rows`` rows (their index the rows' positions), for
        a reader that reduces each piece before unpacking the next."""
        for i in range(0, max(len(self.wkb), 1), rows):  # an empty table is one empty piece
            yield gpd.GeoDataFrame(self.columns.iloc[i:i + rows].copy(),
                                   geometry=shapely.from_wkb(self.wkb[i:i + rows]), crs=4326)


def pyrosm_buildings(osm: Any, path: Path) -> tuple[Packed, Packed]:
    """Buildings and land use from a pyrosm ``OSM`` the caller has already read from.

    A reader that parsed the file for its other tables reads these from the same
    parse (0.3 CPU s on a 100k-candidate city, against 2.3 s and a 270 MB peak for
    parsing it twice more in the select stage); the result is what
    :func:`read_buildings` and :func:`read_landuse` return for ``path``, packed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built, land = osm.get_buildings(), osm.get_landuse()
    b = _tidy(built, BUILDING_TAGS, path) if built is not None and len(built) else _empty(BUILDING_TAGS)
    del built
    lu = _tidy(land, ("landuse",), path) if land is not None and len(land) else _empty(("landuse",))
    return Packed.of(b), Packed.of(lu)


#: The column of :func:`footprint_points` holding each footprint's area (m², study CRS).
FOOTPRINT_M2 = "footprint_m2"


def footprint_points(pieces: Iterable[gpd.GeoDataFrame], *, crs: Any) -> gpd.GeoDataFrame:
    """What the demand reads of building footprints, piece by piece: the tags, the area
    and a point inside each footprint, in ``crs``.

    :func:`siteplanner.demand.building_people` measures a footprint's area and places it in a cell
    and a land use by a point on its surface, both in the study CRS; this does
    both for one piece of footprints at a time and keeps only the results (a
    point and a number instead of a polygon, its projected copy freed with the
    piece), so the demand gives the same people for a fraction of the memory.

    Parameters
    ----------
    pieces
        Footprints (any CRS) as :func:`siteplanner.sources.buildings.read_buildings`
        returns them, e.g. :meth:`Packed.frames`.
    crs
        The study's projected CRS.

    Returns
    -------
    GeoDataFrame
        The pieces' rows in order (index ``0..n-1``), their columns without the
        polygon, :data:`FOOTPRINT_M2`, and the point as the geometry, in ``crs``.
    """
    parts = []
    for piece in pieces:
        projected = piece.to_crs(crs)
        geoms = projected.geometry.values
        table = pd.DataFrame(projected.drop(columns=projected.geometry.name))
        table[FOOTPRINT_M2] = shapely.area(geoms)
        parts.append(gpd.GeoDataFrame(table, geometry=shapely.point_on_surface(geoms),
                                      crs=projected.crs))
        del projected, geoms
    if not parts:
        msg = "footprint_points: no pieces given; pass at least one (possibly empty) table"
        raise InputError(msg)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=parts[0].crs)


def split_buildings(raw: gpd.GeoDataFrame | None,
                    source: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Buildings and land use from one answer to a ``building`` + ``landuse`` features query.

    ``raw`` is what osmnx's ``features_from_*`` returns for
    ``tags={"building": True, "landuse": True}`` (None when nothing matched);
    ``source`` names it in messages. An element tagged with both is a building.
    """
    if raw is None or len(raw) == 0:
        return _empty(BUILDING_TAGS), _empty(("landuse",))
    is_building = (raw["building"].notna() if "building" in raw
                   else pd.Series(False, index=raw.index))
    is_landuse = (raw["landuse"].notna() if "landuse" in raw
                  else pd.Series(False, index=raw.index)) & ~is_building
    path = Path(source)
    return (_tidy(raw[is_building.to_numpy()], BUILDING_TAGS, path) if is_building.any()
            else _empty(BUILDING_TAGS),
            _tidy(raw[is_landuse.to_numpy()], ("landuse",), path) if is_landuse.any()
            else _empty(("landuse",)))


def _empty(tags: tuple[str, ...]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({t: pd.Series(dtype=object) for t in tags},
                            geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def _read(path: Path, tags: dict[str, Any], *, kind: str) -> gpd.GeoDataFrame | None:
    if not path.is_file():
        msg = f"{path}: OSM file not found; check the path to the extract"
        raise InputError(msg)
    name = path.name.lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name.endswith(".pbf"):
                import pyrosm

                osm = pyrosm.OSM(str(path))
                return osm.get_buildings() if kind == "buildings" else osm.get_landuse()
            if name.endswith((".osm", ".osm.bz2", ".xml")):
                import osmnx as ox
                from osmnx._errors import InsufficientResponseError

                try:
                    return ox.features_from_xml(path, tags=tags)
                except InsufficientResponseError:
                    return None
    except InputError:
        raise
    except Exception as e:  # the readers raise bare exceptions on corrupt input
        msg = f"{path}: cannot read {kind} ({type(e).__name__}: {e}); check the OSM file"
        raise InputError(msg) from None
    msg = f"{path}: unknown OSM format; use .osm.pbf, .osm or .osm.bz2"
    raise InputError(msg)


def _tidy(raw: gpd.GeoDataFrame, tags: tuple[str, ...], path: Path) -> gpd.GeoDataFrame:
    """Polygons only, the wanted tags as object columns (pyrosm's JSON ``tags`` unpacked)."""
    # the element's OSM id ("way/123"): pyrosm's id and osm_type columns, osmnx's index
    if "id" in raw and "osm_type" in raw:
        ids = (raw["osm_type"].astype(str) + "/" + raw["id"].astype(str)).to_numpy()
    else:
        ids = np.array([f"{t}/{i}" if raw.index.nlevels == 2 else str(t)
                        for t, i in zip(raw.index.get_level_values(0),
                                        raw.index.get_level_values(-1), strict=True)], dtype=object)
    raw = raw.reset_index(drop=True)
    extra = _unpack_tags(raw, tags)
    cols = {}
    for t in tags:
        col = raw[t] if t in raw else extra.get(t, pd.Series(None, index=raw.index, dtype=object))
        cols[t] = col.astype(object).where(col.notna(), None)
    cols["osm_id"] = pd.Series(ids, index=raw.index, dtype=object)
    gdf = gpd.GeoDataFrame(cols, geometry=raw.geometry.values, crs=raw.crs or 4326)
    if gdf.crs is None or not gdf.crs.equals(4326):
        gdf = gdf.to_crs(4326)
    polygonal = gdf.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    gdf = gdf[polygonal & gdf.is_valid.to_numpy() & ~gdf.is_empty.to_numpy()]
    return gdf.reset_index(drop=True)


def _unpack_tags(raw: pd.DataFrame, tags: tuple[str, ...]) -> dict[str, pd.Series]:
    """Tags that pyrosm left inside its JSON ``tags`` column."""
    missing = [t for t in tags if t not in raw]
    if not missing or "tags" not in raw:
        return {}
    import json

    def parse(s: Any) -> dict[str, Any]:
        if isinstance(s, dict):
            return s
        if isinstance(s, str) and s:
            try:
                out = json.loads(s)
            except ValueError:
                return {}
            return out if isinstance(out, dict) else {}
        return {}

    parsed = raw["tags"].map(parse)
    return {t: parsed.map(lambda d, t=t: d.get(t)) for t in missing}
