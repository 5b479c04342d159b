"""The demand the selection and the market read: the study area's H3 cells that hold people.

The select stage builds it (:func:`demand_points`) from the foot traffic the features stage
measured and the people of the buildings in each cell. From footprints alone (no census,
raster or counters) only the cells with residents or workers can hold demand: the people
are counted over the area's cells as integer ids (:mod:`siteplanner._cell_people`) and the
frame is built for those cells only, not for every cell of the area (a country's are
several times its candidates). The layer is the one built over every cell.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner import features as feat
from siteplanner._cell_people import people_of_cells
from siteplanner._state import RankState
from siteplanner.candidates import AreaCells, area_cells, h3_candidates
from siteplanner.config import Study
from siteplanner.demand import demand_layer, read_census
from siteplanner.footfall import foot_traffic_points
from siteplanner.layers import Layers

__all__ = ["buildings", "demand_points", "footprint_points_of", "landuse_of"]


def buildings(s: RankState) -> gpd.GeoDataFrame | None:
    """The OSM building footprints (WGS84), read once per run and kept on the state: those
    the source read with the rest of its data (a ``.pbf`` read, an online study), else from
    the study's file."""
    from siteplanner.sources.buildings import read_buildings

    if s.buildings is None:
        held, osm = (s.osm.buildings if s.osm is not None else None), s.study.osm
        if osm is not None and osm.is_file():
            s.buildings = _unpacked(held) if held is not None else read_buildings(osm)
        elif held is not None and len(held):
            s.buildings = _unpacked(held)
    return s.buildings


def footprint_points_of(s: RankState, crs: Any) -> gpd.GeoDataFrame | None:
    """What the demand reads of the footprints (tags, area, a point inside; ``crs``), reduced
    piece by piece: from the read's packed copy, else from :func:`buildings`' polygons."""
    from siteplanner.sources.buildings import Packed, footprint_points

    held = s.osm.buildings if s.osm is not None else None
    if isinstance(held, Packed) and s.study.osm is not None and s.study.osm.is_file():
        return footprint_points(held.frames(), crs=crs)
    full = buildings(s)
    if full is None:
        return None
    return footprint_points((full.iloc[i:i + 20_000] for i in range(0, max(len(full), 1), 20_000)),
                            crs=crs)


def landuse_of(s: RankState) -> gpd.GeoDataFrame | None:
    """``landuse`` polygons (WGS84), from the same source as :func:`buildings`."""
    from siteplanner.sources.buildings import read_landuse

    held, osm = (s.osm.landuse if s.osm is not None else None), s.study.osm
    if held is not None:
        return _unpacked(held)
    return read_landuse(osm) if osm is not None and osm.is_file() else None


def _unpacked(table: Any) -> gpd.GeoDataFrame:
    """A held table of polygons as a GeoDataFrame (a ``.pbf`` read holds them packed)."""
    from siteplanner.sources.buildings import Packed

    return table.frame() if isinstance(table, Packed) else table


def demand_points(cands: gpd.GeoDataFrame, raw: pd.DataFrame, layers: Layers, study: Study,
                  footprints: gpd.GeoDataFrame | None,
                  landuse: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """The H3 cells of the study area that hold people, with people per day: the demand.

    Demand covers the whole area, not only the buildable candidates: people
    live and work where no branch can stand. Cells with no one in them are
    left out of the market. Buildings come from the study's OSM file, or with
    the data of an online study. Without buildings, census or raster the demand
    falls back to the foot-traffic value over the candidates, with a warning.

    From footprints alone (no census, raster or counters) only the cells with people
    can hold demand, and only their frame is built (:func:`_people_cells`); the
    layer is the same as over every cell of the area.
    """
    d = study.demand
    if footprints is None and d.census is None and d.raster is None:
        return _kept(_layer(cands, raw["foot_traffic"], layers, study, footprints, landuse))
    if d.census is None and d.raster is None and not layers.foot_traffic_measured \
            and footprints is not None and len(footprints):
        area = area_cells(layers.area, resolution=study.candidates.h3_resolution)
        found = _people_cells(area, people_of_cells(area, footprints, landuse=landuse), raw,
                              layers, study)
        if found is not None:
            return found
    cells = h3_candidates(layers.area, resolution=study.candidates.h3_resolution,
                          polygons=d.census is not None or d.raster is not None)
    foot = raw["foot_traffic"].reindex(cells.index)
    if layers.foot_traffic_measured:
        pts, _ = foot_traffic_points(layers)
        foot = feat.foot_traffic(cells, pts, radius_m=study.criteria["foot_traffic"].radius_m,
                                 measured=True)
    return _kept(_layer(cells, foot, layers, study, footprints, landuse))


def _people_cells(area: AreaCells, people: dict[str, np.ndarray], raw: pd.DataFrame,
                  layers: Layers, study: Study) -> gpd.GeoDataFrame | None:
    """The demand over the cells with residents or workers (the only ones whose demand can
    be above 0 from footprints alone); None when none has any demand (the layer is then
    every cell's, as :func:`demand_points` builds it)."""
    rows = (people["residents"] > 0) | (people["workers"] > 0)
    if not rows.any():
        return None
    cells = area.frame(rows)
    counted = pd.DataFrame({k: v[rows] for k, v in people.items()}, index=cells.index)
    out = _layer(cells, raw["foot_traffic"].reindex(cells.index), layers, study, None, None,
                 people=counted)
    return _kept(out) if (out["demand"] > 0).any() else None


def _layer(cells: gpd.GeoDataFrame, foot: pd.Series, layers: Layers, study: Study,
           footprints: gpd.GeoDataFrame | None, landuse: gpd.GeoDataFrame | None, *,
           people: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    d = study.demand
    census = (read_census(d.census), str(d.census)) if d.census is not None else None
    return demand_layer(
        cells, foot_traffic=foot.fillna(0.0), foot_traffic_measured=layers.foot_traffic_measured,
        buildings=footprints, landuse=landuse if footprints is not None else None,
        census=census, raster=d.raster, people=people,
        weights={"residents": d.residents_weight, "workers": d.workers_weight,
                 "foot_traffic": d.foot_traffic_weight})


def _kept(out: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The cells with demand (all of them when none has any), with the market's ``weight``."""
    keep = out[out["demand"] > 0] if (out["demand"] > 0).any() else out
    keep = keep.copy()
    keep.attrs = out.attrs
    keep["weight"] = keep["demand"]
    return keep
