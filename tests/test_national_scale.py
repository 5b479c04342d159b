"""Writing a run at a country's scale: the streets kept in sites.gpkg, in bulk."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from siteplanner import io
from siteplanner._charts import MINI_MAP_RADIUS_M


def _grid_streets(n: int) -> gpd.GeoDataFrame:
    """n short east-west street segments on a 50 m grid (a real grid's spacing)."""
    side = int(np.ceil(np.sqrt(n)))
    x, y = np.meshgrid(np.arange(side) * 50.0, np.arange(side) * 50.0)
    x, y = x.ravel()[:n], y.ravel()[:n]
    lines = shapely.linestrings(np.stack([np.stack([x, y], -1), np.stack([x + 40, y], -1)], 1))
    return gpd.GeoDataFrame(geometry=lines, crs=32631)


def test_a_large_network_keeps_the_streets_the_mini_maps_draw():
    streets = _grid_streets(io.STREETS_KEPT_WHOLE + 5000)
    site = gpd.GeoDataFrame({"site_id": ["a"]}, geometry=[shapely.Point(3000, 3000)], crs=32631)
    kept = io._report_streets(streets, site, None, all_streets=False)
    assert 0 < len(kept) < len(streets) / 10
    view = shapely.box(3000 - MINI_MAP_RADIUS_M, 3000 - MINI_MAP_RADIUS_M,
                       3000 + MINI_MAP_RADIUS_M, 3000 + MINI_MAP_RADIUS_M)
    # every street a mini-map would draw is kept, and no far one
    assert len(kept) == int(streets.intersects(view).sum())
    assert len(io._report_streets(streets, site, None, all_streets=True)) == len(streets)
    small = _grid_streets(1000)
    assert len(io._report_streets(small, site, None, all_streets=False)) == 1000
