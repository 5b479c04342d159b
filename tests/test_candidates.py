"""H3 candidate cells: the ids and centres are H3's own."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import shapely

from siteplanner.candidates import h3_candidates


def test_cell_ids_and_centres_are_h3s_own():
    """Every cell whose centre is in the area, spelled and placed exactly as h3 does it."""
    area_wgs = shapely.Polygon([(1.50, 42.50), (1.53, 42.50), (1.535, 42.52), (1.51, 42.525)])
    area = gpd.GeoDataFrame(geometry=[area_wgs], crs=4326).to_crs(3035)
    got = h3_candidates(area, resolution=10, polygons=False)
    hull = h3.geo_to_cells(shapely.geometry.mapping(area_wgs.convex_hull), 10)
    want = sorted(c for c in hull if area_wgs.contains(shapely.Point(h3.cell_to_latlng(c)[::-1])))
    assert list(got["site_id"]) == want
    centres = gpd.GeoSeries(got.geometry.values, crs=3035).to_crs(4326)
    latlng = np.array([h3.cell_to_latlng(c) for c in want])
    assert np.allclose(centres.y, latlng[:, 0], atol=1e-9)
    assert np.allclose(centres.x, latlng[:, 1], atol=1e-9)


def test_cells_of_a_concave_area_in_two_parts_are_those_h3_fills():
    """An L-shaped area and an island apart from it (the convex hulls of the parts, filled,
    overlap nothing outside): the cells are those H3's own polygon fill gives the area."""
    ell = shapely.Polygon([(1.50, 42.50), (1.56, 42.50), (1.56, 42.51), (1.51, 42.51),
                           (1.51, 42.55), (1.50, 42.55)])
    island = shapely.Polygon([(1.60, 42.56), (1.62, 42.56), (1.61, 42.575)])
    area_wgs = shapely.MultiPolygon([ell, island])
    area = gpd.GeoDataFrame(geometry=[area_wgs], crs=4326).to_crs(3035)
    got = h3_candidates(area, resolution=10, polygons=False)
    want = sorted(h3.geo_to_cells(shapely.geometry.mapping(area_wgs), 10))
    assert len(want) > 500
    assert list(got["site_id"]) == want
