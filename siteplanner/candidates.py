"""Candidate sites: H3 cells inside the study area, or the user's list of premises."""

from __future__ import annotations

import warnings

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from siteplanner._errors import InputError

__all__ = ["h3_candidates", "user_candidates"]


def h3_candidates(area: gpd.GeoDataFrame, *, resolution: int) -> gpd.GeoDataFrame:
    """One candidate per H3 cell whose centre lies in the study area.

    Returns points at the cell centres in the area's CRS, indexed by
    ``site_id`` (the H3 cell id), with the cell polygon in ``cell``.
    """
    wgs = area.to_crs(4326).geometry.union_all()
    cells = sorted(h3.geo_to_cells(shapely.geometry.mapping(wgs), resolution))
    if not cells:
        msg = (f"the study area holds no H3 cell centre at resolution {resolution}; "
               "raise candidates.h3_resolution or give a larger area")
        raise InputError(msg)
    latlng = np.array([h3.cell_to_latlng(c) for c in cells])
    boundaries = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
                  for c in cells]
    pts = gpd.GeoSeries(gpd.points_from_xy(latlng[:, 1], latlng[:, 0]), crs=4326)
    gdf = gpd.GeoDataFrame(
        {"site_id": cells, "cell": gpd.GeoSeries(boundaries, crs=4326).to_crs(area.crs).values},
        geometry=pts.to_crs(area.crs).values, crs=area.crs,
    )
    return gdf.set_index("site_id", drop=False)


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
