"""The street nodes projected as coordinates are the very points GeoPandas would give."""

from __future__ import annotations

import geopandas as gpd
import shapely

from siteplanner import datasets
from siteplanner.layers import _points_to_crs
from siteplanner.sources import pbf


def test_projected_nodes_equal_geopandas_to_crs_and_other_geometries_fall_back() -> None:
    data = pbf.read_pbf(datasets.helsinki().osm)
    nodes = data.nodes
    target = nodes.estimate_utm_crs()
    got, want = _points_to_crs(nodes, target), nodes.to_crs(target)
    assert len(got) > 1000 and got.equals(want)
    assert list(got.columns) == list(want.columns) and got.crs == want.crs
    assert got.geometry.name == want.geometry.name and got.index.equals(want.index)
    lines = data.edges.iloc[:50]
    assert _points_to_crs(lines, target).equals(lines.to_crs(target))  # not points: GeoPandas
    mixed = gpd.GeoDataFrame(geometry=[shapely.Point(24.9, 60.2), shapely.Point()], crs=4326)
    assert _points_to_crs(mixed, target).equals(mixed.to_crs(target))  # an empty point too
