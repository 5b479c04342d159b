"""Download a study area's OpenStreetMap data online through osmnx (Nominatim, Overpass).

osmnx talks to the servers named in ``ox.settings.nominatim_url`` and
``ox.settings.overpass_url`` and keeps every answer in its cache folder, so a
second run of the same study sends no request. Those URLs are left as the
caller set them; only the cache and the timeouts are set, for the call alone.

Timeouts: osmnx sends ``settings.requests_timeout`` to requests for every call
(Nominatim, the Overpass status and query) and writes it into the Overpass
query as the server's own ``[timeout:N]``. requests takes a ``(connect,
read)`` pair there (requests' "Timeouts" documentation), so the pair is set and
the query's server timeout is written separately, equal to the read timeout:
the server gives up on a query when the client would. Defaults:
:data:`CONNECT_TIMEOUT_S` and :data:`READ_TIMEOUT_S`.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from shapely.geometry import MultiPolygon, Polygon, box

from siteplanner._errors import ConfigError, InputError
from siteplanner.config import parse_bbox
from siteplanner.sources._osm import OSMData
from siteplanner.sources.buildings import split_buildings
from siteplanner.sources.xml import feature_filter, graph_tables, split_features

if TYPE_CHECKING:
    import geopandas as gpd
    import networkx as nx

__all__ = ["CONNECT_TIMEOUT_S", "READ_TIMEOUT_S", "read_online", "read_online_roads"]

#: Seconds to wait for a server to accept the connection: requests' documentation
#: advises "slightly larger than a multiple of 3, the default TCP packet
#: retransmission window", so three SYN retransmissions fit.
CONNECT_TIMEOUT_S = 9.05
#: Seconds to wait for an answer once connected. Overpass's own default query
#: timeout is 180 s (Overpass QL guide, "timeout:"); a study area's queries
#: (a city or a small country) take seconds, so 60 s is a third of that,
#: and a server that accepts but never answers is given up on in a minute.
READ_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)

_OFFLINE = "or work offline with --osm FILE"


def read_online(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    cache_folder: Path | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> tuple[OSMData, Polygon | MultiPolygon]:
    """Download features and the walking network of a place or a bounding box.

    Parameters
    ----------
    place
        A place name Nominatim resolves to an area, e.g. ``"Kluuvi, Helsinki, Finland"``.
    bbox
        ``(west, south, east, north)`` in degrees, instead of ``place``.
    cache_folder
        Where osmnx keeps the answers; osmnx's own ``settings.cache_folder``
        when None.
    connect_timeout_s, read_timeout_s
        How long to wait for a server to accept a connection, and then for
        each part of its answer, in seconds.

    Returns
    -------
    data, area
        The data in the common shape (``data_date`` is Overpass's
        ``timestamp_osm_base``), and the study area polygon in EPSG:4326.

    Raises
    ------
    ConfigError
        If neither or both of ``place`` and ``bbox`` are given, or the bbox is invalid.
    InputError
        If the place is not found, a server cannot be reached or refuses, or
        the area holds no streets.
    """
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    if (place is None) == (bbox is None):
        msg = "give a place name (--place NAME) or a bounding box (--bbox W,S,E,N), one of them"
        raise ConfigError(msg)
    with _settings(cache_folder, (connect_timeout_s, read_timeout_s)):
        if place is not None:
            area = _geocode(place)
            where = f"place {place!r}"
        else:
            # the study file's check, so --bbox and study.toml say the same
            area = box(*parse_bbox(bbox, "bbox"))
            where = f"bbox {','.join(f'{c:g}' for c in area.bounds)}"
        with _server_errors(ox.settings.overpass_url, where):
            graph = _walk_graph_online(area, where)
            try:
                raw = ox.features_from_polygon(area, tags=feature_filter())
            except InsufficientResponseError:
                log.warning("Overpass returned no shops, banks or stops in %s", where)
                raw = None
            built = _buildings_online(area, where)
        date = _overpass_date(area)
    nodes, edges = graph_tables(graph)
    features, context = split_features(raw)
    buildings, landuse = split_buildings(built, f"Overpass ({ox.settings.overpass_url})")
    return OSMData(features=features, nodes=nodes, edges=edges, data_date=date, extent=area,
                   buildings=buildings, landuse=landuse, **context), area


def _walk_graph_online(area: Polygon | MultiPolygon, where: str) -> nx.MultiDiGraph:
    """The walking network of ``area`` from Overpass, unsimplified; a clear error when empty."""
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    try:
        graph = ox.graph_from_polygon(area, network_type="walk", simplify=False, retain_all=True)
    except InsufficientResponseError:
        msg = (f"Overpass ({ox.settings.overpass_url}) has no walkable streets in "
               f"{where}; check the area, or give a larger one")
        raise InputError(msg) from None
    if len(graph) == 0:
        msg = f"the walking network of {where} is empty; give a larger area"
        raise InputError(msg)
    return graph


def _buildings_online(area: Polygon | MultiPolygon, where: str) -> gpd.GeoDataFrame | None:
    """Building footprints and land use, one query: what the demand model turns into people.

    Without them an online study's demand would fall back to shop density, so
    they are read with the streets; osmnx caches the answer like the others.
    """
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    try:
        return ox.features_from_polygon(area, tags={"building": True, "landuse": True})
    except InsufficientResponseError:
        log.warning("Overpass returned no buildings in %s: demand falls back to foot traffic",
                    where)
        return None


def read_online_roads(area: Polygon | MultiPolygon, *, cache_folder: Path | None = None,
                      connect_timeout_s: float = CONNECT_TIMEOUT_S,
                      read_timeout_s: float = READ_TIMEOUT_S) -> nx.MultiDiGraph | None:
    """The drivable roads of ``area`` (osmnx ``network_type="drive"``), or None when it has none.

    Read only for a study that drives; osmnx caches the answer with the walk's.
    """
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    with _settings(cache_folder, (connect_timeout_s, read_timeout_s)), \
            _server_errors(ox.settings.overpass_url, "the study area"):
        try:
            graph = ox.graph_from_polygon(area, network_type="drive", simplify=False,
                                          retain_all=True)
        except InsufficientResponseError:
            return None
    return graph if len(graph) else None


def _geocode(place: str) -> Polygon | MultiPolygon:
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    url = ox.settings.nominatim_url
    with _server_errors(url, f"place {place!r}"):
        try:
            gdf = ox.geocode_to_gdf(place)
        except InsufficientResponseError:
            msg = (f"place {place!r} was not found by Nominatim ({url}); check the name, "
                   "add the city and country (e.g. 'Kluuvi, Helsinki, Finland'), or give --bbox")
            raise InputError(msg) from None
        except TypeError:
            # osmnx raises TypeError when no result has an outline
            gdf = None
    geom = None if gdf is None else gdf.geometry.iloc[0]
    if not isinstance(geom, Polygon | MultiPolygon):
        msg = (f"place {place!r} is a point, not an area, for Nominatim ({url}); name a "
               "district or city, or give --bbox W,S,E,N")
        raise InputError(msg)
    return geom


@contextmanager
def _settings(cache_folder: Path | None, timeout: tuple[float, float]) -> Iterator[None]:
    """Switch osmnx's cache on and set the timeouts for the call; put back the caller's settings."""
    import osmnx as ox

    s = ox.settings
    before = (s.use_cache, s.cache_folder, s.requests_timeout, s.overpass_settings)
    s.use_cache = True
    if cache_folder is not None:
        s.cache_folder = str(cache_folder)
    s.requests_timeout = timeout  # type: ignore[assignment]  # requests takes (connect, read)
    if "{timeout}" in s.overpass_settings:
        s.overpass_settings = s.overpass_settings.replace("{timeout}", f"{timeout[1]:.0f}")
    try:
        yield
    finally:
        s.use_cache, s.cache_folder, s.requests_timeout, s.overpass_settings = before


@contextmanager
def _server_errors(url: str, where: str) -> Iterator[None]:
    """Turn the ways a server call fails into one-line :class:`InputError` messages."""
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError, ResponseStatusCodeError

    t0 = time.monotonic()
    try:
        yield
    except requests.Timeout as e:
        waited = time.monotonic() - t0
        timeout = ox.settings.requests_timeout
        limit = (f"connect {timeout[0]:g} s, read {timeout[1]:g} s"
                 if isinstance(timeout, tuple) else f"{timeout:g} s")
        msg = (f"{url} did not answer for {where}: gave up after waiting {waited:.0f} s "
               f"({type(e).__name__}; timeouts {limit}); check the server URL or retry later, "
               f"{_OFFLINE}")
        raise InputError(msg) from None
    except requests.ConnectionError as e:
        msg = (f"cannot reach {url} for {where} ({type(e).__name__}, after "
               f"{time.monotonic() - t0:.0f} s): check the network connection and the server "
               f"URL, {_OFFLINE}")
        raise InputError(msg) from None
    except (requests.HTTPError, ResponseStatusCodeError) as e:
        msg = f"{url} refused the request for {where} ({_one_line(e)}); retry later, {_OFFLINE}"
        raise InputError(msg) from None
    except InsufficientResponseError as e:
        msg = f"{url} gave an unusable answer for {where} ({_one_line(e)}); {_OFFLINE}"
        raise InputError(msg) from None


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _overpass_date(area: Polygon | MultiPolygon) -> str | None:
    """``timestamp_osm_base`` of the cached Overpass features answer(s) for ``area``.

    osmnx does not hand back the response itself, so this finds it in the
    cache under the key osmnx filed it (the request as a GET URL).
    """
    import osmnx as ox
    from osmnx import _http, _overpass

    url = ox.settings.overpass_url.rstrip("/") + "/interpreter"
    stamps = []
    try:
        for coords in _overpass._make_overpass_polygon_coord_strs(area):
            query = _overpass._create_overpass_features_query(coords, feature_filter())
            key = requests.Request("GET", url, params=OrderedDict(data=query)).prepare().url
            cached = _http._check_cache(str(key))
            if cached is not None:
                base = json.loads(cached.read_text(encoding="utf-8")).get("osm3s", {})
                stamps.append(base.get("timestamp_osm_base"))
    except (AttributeError, TypeError, ValueError, OSError) as e:
        # private osmnx helpers: if a new osmnx moved them, the date is unknown
        log.warning("cannot find the Overpass data date in the osmnx cache: %s", e)
        return None
    stamps = [s for s in stamps if isinstance(s, str) and s]
    return max(stamps) if stamps else None
