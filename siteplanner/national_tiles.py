"""Large areas of a national run split into square tiles with overlap, one Dask task each.

A boundary area larger than ``tile_km2`` (``siteplanner national --tile-km2``)
is cut by a grid of squares of that size, laid on the area's bounds in its
UTM zone. Each square that meets the area is a tile:

- its **core** is the square (half-open: west and south edges in, east and
  north out), so each point of the area lies in exactly one core;
- its **study area** is the area within the square grown by the overlap, so
  the tile's candidates near the core's edge are scored, spaced and given
  their market with what lies across it. The overlap is the largest of the
  criteria radii and the longest catchment walk (``network.catchment_minutes``
  at ``walk_speed_kmh``): nothing a core candidate counts or catches lies
  further away. The data is the whole extract in every tile.

A tile's study area is written as a GeoJSON file beside the cache (content
addressed) and given as the study's ``area`` layer, so the tile's cache key
follows its outline. The national ranking takes from each tile only the
candidates in its core (see :func:`in_core`) and re-scores them all with one
min-max (:func:`siteplanner.national.national_ranking`), so the merged
ranking does not depend on where the tile edges fall except through what the
per-tile stages compute from the tile's own candidates.

Memory: the Andorra run (468 km², 35,931 candidates at H3 resolution 11) peaks
at about 0.8 GB, so one tile per worker stays within the issue's 1.5 GB when
tiles hold no more than about that many candidates; choose ``tile_km2`` for
the resolution and the density of the place.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from siteplanner._errors import ConfigError
from siteplanner._fs import safe_component
from siteplanner.config import LayerFile, Study
from siteplanner.national import AreaJob, area_key

__all__ = ["in_core", "merge_tile", "overlap_m", "tile_areas"]


def overlap_m(study: Study) -> float:
    """The tiles' overlap in metres: the largest criterion radius or catchment walk."""
    walk = max(study.network.catchment_minutes) * study.network.walk_speed_kmh * 1000.0 / 60.0
    return float(max([walk, *(c.radius_m for c in study.criteria.values())]))


def tile_areas(jobs: list[AreaJob], *, tile_km2: float, cache_dir: Path | None) -> list[AreaJob]:
    """Each job whose boundary area exceeds ``tile_km2`` replaced by its tiles, in order."""
    if not (math.isfinite(tile_km2) and tile_km2 > 0):
        msg = f"--tile-km2 {tile_km2}: give a positive area in km², e.g. 500"
        raise ConfigError(msg)
    if cache_dir is None:
        msg = "tiling needs a cache folder for the tiles' outlines; give --out"
        raise ConfigError(msg)
    out: list[AreaJob] = []
    for job in jobs:
        area = _boundary_area(job.study)
        if area is None or float(area.area.sum()) / 1e6 <= tile_km2:
            out.append(job)
            continue
        for n, (core, outline) in enumerate(_tiles(area, tile_km2=tile_km2,
                                                   overlap=overlap_m(job.study)), start=1):
            path = _write_outline(outline, cache_dir)
            name = f"{job.area} tile {n}"
            layers = {**job.study.layers, "area": LayerFile(kind="area", path=path)}
            s = job.study.replace(area=None, layers=layers, name=name)
            out.append(AreaJob(name, safe_component(name), s, area_key(s), parent=job.area,
                               core=(area.crs.to_string(), *core)))
    return out


def _boundary_area(study: Study) -> gpd.GeoDataFrame | None:
    """The study's boundary area in its UTM zone, or None (a whole-file place is not tiled)."""
    if study.area is None or study.osm is None:
        return None
    from siteplanner.area import resolve_area

    b = _boundaries(Path(study.osm))
    found = resolve_area(boundaries=b, extent=None, name=study.area.name,
                         admin_level=study.area.admin_level)
    gdf = gpd.GeoDataFrame(geometry=[found.geometry], crs=4326)
    return gdf.to_crs(gdf.estimate_utm_crs())


_BOUNDARIES: dict[str, gpd.GeoDataFrame] = {}


def _boundaries(osm: Path) -> gpd.GeoDataFrame:
    from siteplanner.sources import read_osm_file

    key = str(osm.resolve())
    if key not in _BOUNDARIES:
        _BOUNDARIES[key] = read_osm_file(osm).boundaries
    return _BOUNDARIES[key]


def _tiles(area: gpd.GeoDataFrame, *, tile_km2: float,
           overlap: float) -> list[tuple[tuple[float, float, float, float], Any]]:
    """(core W,S,E,N in the area's CRS, study outline in WGS84) of each tile meeting the area."""
    side = math.sqrt(tile_km2) * 1000.0
    shape = area.geometry.union_all()
    w, s, e, n = shape.bounds
    nx, ny = max(1, math.ceil((e - w) / side)), max(1, math.ceil((n - s) / side))
    # the grid is centred on the area, so the tiles are as even as the squares allow
    x0, y0 = (w + e) / 2 - nx * side / 2, (s + n) / 2 - ny * side / 2
    shapely.prepare(shape)
    found = []
    for j in range(ny):
        for i in range(nx):
            core = (x0 + i * side, y0 + j * side, x0 + (i + 1) * side, y0 + (j + 1) * side)
            if not shapely.intersects(shape, shapely.box(*core)):
                continue
            grown = shapely.intersection(shape, shapely.box(*core).buffer(overlap, join_style="mitre"))
            wgs = gpd.GeoSeries([grown], crs=area.crs).to_crs(4326).iloc[0]
            found.append((core, wgs))
    return found


def _write_outline(outline: Any, cache_dir: Path) -> Path:
    text = gpd.GeoDataFrame({"name": ["tile"]}, geometry=[outline], crs=4326).to_json()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    path = cache_dir / "tiles" / f"{digest}.geojson"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.write_text(text, encoding="utf-8")
        part.replace(path)
    return path


def in_core(sites: pd.DataFrame, core: tuple[str, float, float, float, float]) -> np.ndarray:
    """True for the sites (``lon``, ``lat``) whose point lies in the tile's half-open core."""
    crs, w, s, e, n = core
    pts = gpd.GeoSeries(gpd.points_from_xy(sites["lon"], sites["lat"]), crs=4326).to_crs(crs)
    x, y = pts.x.to_numpy(), pts.y.to_numpy()
    return (x >= w) & (x < e) & (y >= s) & (y < n)


def merge_tile(table: pd.DataFrame, job: AreaJob) -> pd.DataFrame:
    """A tile's candidates for the national ranking: those in its core, under the parent's name."""
    if job.core is None:
        return table
    keep = table[in_core(table, job.core)].copy()
    keep["tile"] = job.area
    keep["area"] = job.parent
    return keep

