"""H3 candidate cells: the ids and centres are H3's own, and the near-street test is GEOS's."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from siteplanner._near_lines import _vertices, near_lines
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


# ------------------------------------------------------------- the near-street test
_coord = st.floats(-500, 500, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.lists(st.tuples(_coord, _coord), min_size=2, max_size=5), min_size=1,
                      max_size=12),
       points=st.lists(st.tuples(_coord, _coord), min_size=1, max_size=300),
       distance=st.floats(0.5, 120))
def test_the_near_street_grid_answers_as_geos_dwithin(lines, points, distance) -> None:
    """Any lines (long, short, multi-part, degenerate) and any points: the grid rules out
    only points GEOS also finds farther than the distance, so the answer is GEOS's."""
    geoms = np.array([shapely.LineString(c) for c in lines] +
                     [shapely.MultiLineString([lines[0], lines[-1]])], dtype=object)
    xy = np.array(points, dtype=float)
    want = np.zeros(len(xy), dtype=bool)
    want[shapely.STRtree(geoms).query(shapely.points(xy), predicate="dwithin",
                                      distance=distance)[0]] = True
    assert np.array_equal(near_lines(xy[:, 0], xy[:, 1], geoms, distance), want)


def test_the_near_street_grid_on_a_real_network_and_its_points_along_long_pieces() -> None:
    """The bundled Andorra's streets and a dense grid of points over them: GEOS's answer,
    with most points ruled out before GEOS; no two consecutive points of a piece lie
    farther apart than the step."""
    from siteplanner import datasets
    from siteplanner.sources import pbf

    data = pbf.read_pbf(datasets.andorra().osm)
    streets = data.edges.to_crs(3035).geometry.values
    x0, y0, x1, y1 = shapely.total_bounds(streets)
    gx, gy = np.meshgrid(np.linspace(x0, x1, 400), np.linspace(y0, y1, 300))
    x, y = gx.ravel(), gy.ravel()
    want = np.zeros(len(x), dtype=bool)
    want[shapely.STRtree(streets).query(shapely.points(x, y), predicate="dwithin",
                                        distance=25.0)[0]] = True
    assert 0.02 < want.mean() < 0.5
    assert np.array_equal(near_lines(x, y, streets, 25.0), want)
    line = np.array([shapely.LineString([(0, 0), (100, 0), (100, 7)])], dtype=object)
    v = _vertices(line, 30.0)
    assert len(v) == 3 + 3  # 100 m in 4 pieces of 25 m: three points more; 7 m: none
    assert set(map(tuple, v.round(6))) >= {(25.0, 0.0), (50.0, 0.0), (75.0, 0.0)}
