"""Reading OSM XML extracts (.osm, .osm.bz2) into the common OSM shape."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from siteplanner._errors import InputError
from siteplanner.sources._osm import WALK_EXCLUDED_HIGHWAYS, OSMData
from siteplanner.sources.xml import read_osm_xml

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "osm" / "kluuvi.osm.bz2"


@pytest.fixture(scope="module")
def kluuvi() -> OSMData:
    return read_osm_xml(FIXTURE)


def _osm(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n{body}\n</osm>\n'


def _node(i: int, lon: float, lat: float, tags: str = "") -> str:
    return f'<node id="{i}" lat="{lat}" lon="{lon}">{tags}</node>'


def _way(i: int, refs: list[int], tags: dict[str, str]) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    kvs = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{i}">{nds}{kvs}</way>'


def _pairs(data: OSMData) -> set[tuple[int, int]]:
    return set(zip(data.edges["u"].tolist(), data.edges["v"].tolist(), strict=True))


def test_extract_reads_a_connected_walking_network(kluuvi: OSMData) -> None:
    nodes, edges = kluuvi.nodes, kluuvi.edges
    assert nodes.crs.to_epsg() == 4326 and edges.crs.to_epsg() == 4326
    assert nodes.index.dtype == np.int64
    assert set(edges["u"]).union(edges["v"]) <= set(nodes.index)
    # undirected and unique: each street segment once, u < v
    assert (edges["u"] < edges["v"]).all()
    assert not edges.duplicated(["u", "v"]).any()
    assert (edges.geom_type == "LineString").all()
    graph = nx.Graph(zip(edges["u"], edges["v"], strict=True))
    largest = max(nx.connected_components(graph), key=len)
    assert len(largest) >= 0.8 * len(nodes) >= 400
    assert edges["highway"].notna().all()
    assert not set(edges["highway"]) & WALK_EXCLUDED_HIGHWAYS
    assert kluuvi.data_date == "2019-04-08T07:38:42Z"


def test_edge_geometry_runs_from_u_to_v(kluuvi: OSMData) -> None:
    start = kluuvi.nodes.geometry.loc[kluuvi.edges["u"]].to_numpy()
    first = kluuvi.edges.geometry.map(lambda g: g.coords[0])
    assert np.allclose(np.array(first.tolist()), np.array([(p.x, p.y) for p in start]))


def test_edge_lengths_match_the_pbf_for_the_same_segments(
    kluuvi: OSMData, helsinki_osm: OSMData,
) -> None:
    pbf = helsinki_osm.edges
    a, b = pbf["u"].to_numpy(np.int64), pbf["v"].to_numpy(np.int64)
    pbf = pd.DataFrame({"u": np.minimum(a, b), "v": np.maximum(a, b), "pbf": pbf["length"]})
    both = kluuvi.edges.merge(pbf.drop_duplicates(["u", "v"]), on=["u", "v"])
    assert len(both) >= 0.9 * len(kluuvi.edges)
    # pyrosm rounds to the millimetre
    assert np.abs(both["length"] - both["pbf"]).max() < 0.002
    assert both["length"].sum() > 5_000


def test_extract_has_transit_stops_and_a_bank(kluuvi: OSMData) -> None:
    f = kluuvi.features
    assert f.crs.to_epsg() == 4326 and (f.geom_type == "Point").all()
    banks = f[f["amenity"] == "bank"]
    assert len(banks) == 1 and banks["name"].iloc[0] == "Nordea"
    assert (f["highway"] == "bus_stop").sum() >= 10
    assert (f["railway"] == "tram_stop").sum() >= 3
    assert (f["railway"] == "station").any()
    assert f["osm_id"].is_unique


def test_buildings_and_closed_ways_make_no_edges(tmp_path: Path) -> None:
    path = tmp_path / "mixed.osm"
    path.write_text(_osm("\n".join([
        _node(1, 24.940, 60.170), _node(2, 24.941, 60.170), _node(3, 24.942, 60.170),
        _node(4, 24.943, 60.170), _node(5, 24.940, 60.171), _node(6, 24.941, 60.171),
        _node(7, 24.941, 60.172), _node(8, 24.944, 60.170), _node(9, 24.945, 60.170),
        _way(10, [1, 2, 3], {"highway": "footway"}),
        _way(11, [5, 6, 7, 5], {"building": "yes", "amenity": "bank", "name": "Aktia"}),
        _way(12, [3, 4], {"highway": "motorway"}),
        _way(13, [3, 8], {"highway": "cycleway", "foot": "no"}),
        _way(14, [8, 9], {"highway": "service", "access": "private"}),
    ])), encoding="utf-8")
    data = read_osm_xml(path)
    assert _pairs(data) == {(1, 2), (2, 3)}
    assert set(data.nodes.index) == {1, 2, 3}
    assert data.features["name"].tolist() == ["Aktia"]
    assert data.data_date is None


def test_multipolygon_place_is_read_from_its_untagged_outline(tmp_path: Path) -> None:
    path = tmp_path / "relation.osm"
    member = '<member type="way" ref="20" role="outer"/>'
    tags = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in
                   {"type": "multipolygon", "shop": "mall", "name": "Forum"}.items())
    path.write_text(_osm("\n".join([
        _node(1, 24.940, 60.170), _node(2, 24.941, 60.170), _node(3, 24.941, 60.171),
        _node(4, 24.940, 60.171),
        _way(10, [1, 2], {"highway": "footway"}),
        _way(20, [1, 2, 3, 4, 1], {}),
        f'<relation id="30">{member}{tags}</relation>',
    ])), encoding="utf-8")
    data = read_osm_xml(path)
    forum = data.features[data.features["name"] == "Forum"]
    assert forum["osm_id"].tolist() == ["30"]
    assert forum.geometry.iloc[0].within(box(24.940, 60.170, 24.941, 60.171))


def test_clipped_way_is_cut_where_its_nodes_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "clipped.osm"
    path.write_text(_osm("\n".join([
        _node(1, 24.940, 60.170), _node(2, 24.941, 60.170),
        _node(3, 24.943, 60.170), _node(4, 24.944, 60.170),
        # node 99 lies outside the extract; 98 and 97 too
        _way(10, [97, 1, 2, 99, 3, 4, 98], {"highway": "residential"}),
    ])), encoding="utf-8")
    data = read_osm_xml(path)
    # the stretch through the missing node is not bridged by a straight edge
    assert _pairs(data) == {(1, 2), (3, 4)}
    assert data.edges["length"].between(50, 60).all()


def test_gzip_extract_reads_like_bz2(tmp_path: Path, kluuvi: OSMData) -> None:
    path = tmp_path / "kluuvi.osm.gz"
    path.write_bytes(gzip.compress(bz2.decompress(FIXTURE.read_bytes())))
    assert _pairs(read_osm_xml(path)) == _pairs(kluuvi)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.osm", None, "no such file"),
        ("notes.osm", "just some text, not XML\n", "not valid OSM XML"),
        ("page.osm", "<html><body>Not found</body></html>", "not <osm>"),
        ("cut.osm", "<osm><node id='1' lat='60' lon='24'/>", "not valid OSM XML"),
        ("broken.osm.bz2", "plain text with a .bz2 name", "cannot be read"),
        ("empty.osm", "", "not valid OSM XML"),
        ("nostreets.osm", _osm(_node(1, 24.94, 60.17, '<tag k="amenity" v="bank"/>')),
         "no walkable streets"),
    ],
)
def test_bad_files_raise_input_error_naming_the_file(
    tmp_path: Path, name: str, content: str | None, says: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=says) as err:
        read_osm_xml(path)
    assert str(path) in str(err.value)
