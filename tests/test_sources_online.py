"""Going online through osmnx, against a local server replaying Nominatim and Overpass.

osmnx is pointed at the server through ``ox.settings`` alone. Its rate-limit
probe stays on: the server answers ``/status`` with free slots.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import osmnx as ox
import pytest
from _replay_server import DATA, ReplayServer, replay_server  # noqa: F401
from shapely.geometry import shape

from siteplanner._errors import ConfigError, InputError
from siteplanner.sources.overpass import read_online

KLUUVI = "Kluuvi, Helsinki, Finland"
#: The outline the recorded Nominatim answer gives Kluuvi: the box the fixtures cover.
OUTLINE = shape(json.loads((DATA / "nominatim_kluuvi.json").read_text(encoding="utf-8"))
                [0]["geojson"])
RECORDED_BOX = OUTLINE.bounds
SETTINGS = ("overpass_url", "nominatim_url", "use_cache", "cache_folder",
            "overpass_rate_limit", "requests_timeout")


@pytest.fixture
def osmnx_settings() -> Iterator[None]:
    """Put back every osmnx setting a test changes, and the socket resolver.

    osmnx replaces ``socket.getaddrinfo`` to pin the Overpass host to one
    address; the original comes back here so other tests are not affected.
    """
    saved = {name: getattr(ox.settings, name) for name in SETTINGS}
    resolver = socket.getaddrinfo
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(ox.settings, name, value)
        socket.getaddrinfo = resolver


class _NoCourtesyPause:
    """osmnx's ``time`` for Nominatim, less the 1 s pause its usage policy asks of the real server."""

    @staticmethod
    def sleep(seconds: float) -> None:
        if seconds > 1:
            time.sleep(seconds)


@pytest.fixture
def no_courtesy_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """A local server has no rate limit to respect."""
    import osmnx._nominatim

    monkeypatch.setattr(osmnx._nominatim, "time", _NoCourtesyPause)


@pytest.fixture
def online(osmnx_settings: None, no_courtesy_pause: None,
           replay_server: ReplayServer) -> ReplayServer:  # noqa: F811
    ox.settings.nominatim_url = replay_server.url + "/nominatim/"
    ox.settings.overpass_url = replay_server.url + "/api"
    ox.settings.requests_timeout = 10
    return replay_server


def test_place_reads_area_features_and_network(online: ReplayServer, tmp_path: Path) -> None:
    ox.settings.use_cache = False
    ox.settings.cache_folder = "elsewhere"
    data, area = read_online(place=KLUUVI, cache_folder=tmp_path)
    assert (ox.settings.use_cache, ox.settings.cache_folder) == (False, "elsewhere")
    assert list(tmp_path.glob("*.json")), "the answers went to the cache folder given"

    assert area.equals(OUTLINE)
    search = online.seen("search")
    assert len(search) == 1 and search[0].params["q"] == KLUUVI
    assert search[0].params["polygon_geojson"] == "1"
    posts = [r for r in online.seen("interpreter") if r.method == "POST"]
    assert len(posts) == 3, "the walk network, the features and the buildings"
    assert online.seen("status"), "osmnx's rate-limit probe reached the server"

    f = data.features
    assert (f["amenity"] == "bank").sum() == 1
    assert (f["highway"] == "bus_stop").sum() >= 10
    assert (f["railway"] == "tram_stop").sum() >= 3
    assert f.within(area.buffer(1e-4)).all()
    nodes, edges = data.nodes, data.edges
    assert nodes.within(area.buffer(1e-6)).all(), "osmnx trims the network to the area"
    assert len(nodes) >= 400 and (edges["u"] < edges["v"]).all()
    assert set(edges["u"]).union(edges["v"]) <= set(nodes.index)
    graph = nx.Graph(zip(edges["u"], edges["v"], strict=True))
    assert len(max(nx.connected_components(graph), key=len)) >= 0.8 * len(nodes)
    assert edges["length"].between(0, 500).all()
    assert data.data_date == "2019-04-08T07:38:42Z"
    # the demand model's buildings come with the data, tags and all
    b = data.buildings
    assert b is not None and data.landuse is not None
    assert len(b) >= 15 and b.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert b["building"].notna().all() and b["building:levels"].notna().any()
    assert len(data.landuse) >= 1 and data.landuse["landuse"].notna().all()

    # the same study again: everything comes from osmnx's cache
    before = len(online.requests)
    again, area_again = read_online(place=KLUUVI, cache_folder=tmp_path)
    assert len(online.requests) == before
    assert area_again.equals(area)
    assert again.edges[["u", "v"]].equals(edges[["u", "v"]])
    assert again.data_date == data.data_date


def test_bbox_reads_without_geocoding(online: ReplayServer, tmp_path: Path) -> None:
    west, south, east, north = 24.940, 60.170, 24.944, 60.172
    data, area = read_online(bbox=(west, south, east, north), cache_folder=tmp_path)
    assert area.bounds == (west, south, east, north)
    assert not online.seen("search")
    assert len(data.edges) >= 100
    bounds = data.nodes.total_bounds
    assert bounds[0] >= west and bounds[2] <= east and bounds[1] >= south and bounds[3] <= north
    assert (data.features["amenity"] == "bank").any()


def test_unknown_place_says_it_was_not_found(online: ReplayServer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'Atlantis, Finland' was not found by Nominatim"):
        read_online(place="Atlantis, Finland", cache_folder=tmp_path)
    assert not online.seen("interpreter")


def test_place_that_is_a_point_asks_for_an_area(online: ReplayServer, tmp_path: Path) -> None:
    station = dict(online.places["kluuvi, helsinki, finland"][0])
    station.update(name="Helsinki Central Station", type="station",
                   geojson={"type": "Point", "coordinates": [24.9414, 60.1713]})
    online.places["helsinki central station"] = [station]
    with pytest.raises(InputError, match="is a point, not an area.*--bbox"):
        read_online(place="Helsinki Central Station", cache_folder=tmp_path)


def test_server_error_says_retry_or_go_offline(online: ReplayServer, tmp_path: Path) -> None:
    online.fail_status = 503
    with pytest.raises(InputError, match=r"refused the request for place.*retry later.*--osm FILE"):
        read_online(place=KLUUVI, cache_folder=tmp_path)
    assert online.seen("search")


def test_bbox_without_data_says_no_streets(online: ReplayServer, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no walkable streets in bbox 25.1,60.3,25.11,60.31"):
        read_online(bbox=(25.1, 60.3, 25.11, 60.31), cache_folder=tmp_path)
    assert online.seen("interpreter")


def test_server_down_points_to_the_offline_option(osmnx_settings: None, no_courtesy_pause: None,
                                                  tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ox.settings.nominatim_url = f"http://127.0.0.1:{port}/"
    ox.settings.overpass_url = f"http://127.0.0.1:{port}/api"
    with pytest.raises(InputError, match=r"cannot reach .*network.*--osm FILE"):
        read_online(place=KLUUVI, cache_folder=tmp_path)
    # a dead Overpass too, with osmnx's status probe off: it would wait 60 s first
    ox.settings.overpass_rate_limit = False
    with pytest.raises(InputError, match=r"cannot reach .*/api for bbox.*--osm FILE"):
        read_online(bbox=RECORDED_BOX, cache_folder=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({}, "one of them"),
        ({"place": KLUUVI, "bbox": RECORDED_BOX}, "one of them"),
        ({"bbox": (24.95, 60.17, 24.94, 60.18)}, "west < east"),
        ({"bbox": (24.94, 95.0, 24.95, 96.0)}, "south < north"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        read_online(**kwargs)  # type: ignore[arg-type]
