"""Read the drivable road network, only when a study drives (``"drive"`` in ``[network] modes``).

An ``.osm.pbf`` extract is read with pyrosm's ``network_type="driving"``
(roads a car may use, with ``highway`` and ``maxspeed``); an online study
asks osmnx for ``network_type="drive"`` over its area. Both come back as
node and edge tables in EPSG:4326, like the walking network of
:class:`~siteplanner.sources._osm.OSMData`. An extract's tables are kept in
siteplanner's read cache (:func:`siteplanner.sources._readcache.store_frames`), so a
rerun of an unchanged extract reads them without pyrosm.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from siteplanner._errors import ModeError

__all__ = ["ROAD_COLUMNS", "drive_source_problem", "read_drive_network"]

#: The columns of the road edges: ends, metres, class, posted limit, name, shape.
ROAD_COLUMNS = ("u", "v", "length", "highway", "maxspeed", "name", "geometry")

_FIX = 'or set [network] modes = ["walk"]'


def read_drive_network(*, osm: Path | None, online_area: Any = None,
                       cache_folder: Path | None = None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The roads a car may use: (nodes indexed by OSM id, edges with :data:`ROAD_COLUMNS`).

    Parameters
    ----------
    osm
        The study's OSM file (``.osm.pbf``), or None.
    online_area
        The polygon (EPSG:4326) of an online study, read through osmnx.
    cache_folder
        osmnx's answer cache for the online read.

    Raises
    ------
    ModeError
        When the data holds no drivable roads, or its format has no drive
        reader (OSM XML), naming the fix.
    """
    problem = drive_source_problem(osm=osm, online=online_area is not None)
    if problem:
        raise ModeError(problem)
    if osm is not None:
        st = Path(osm).stat()
        nodes, edges = _read_pbf_roads(str(Path(osm).resolve()), st.st_size, st.st_mtime_ns)
    else:
        from siteplanner.sources.overpass import read_online_roads

        graph = read_online_roads(online_area, cache_folder=cache_folder)
        nodes, edges = _empty_roads() if graph is None else _graph_roads(graph)
    if len(edges) == 0 or len(nodes) == 0:
        where = osm if osm is not None else "the online area"
        msg = f"network.modes: 'drive' has no road network in {where}: it holds no drivable roads; {_FIX}"
        raise ModeError(msg)
    return nodes, edges


def drive_source_problem(*, osm: Path | None, online: bool) -> str | None:
    """Why the data cannot give a drive network (one line with the fix), or None when it can.

    Checked before the run starts, so a study that cannot drive fails at once.
    """
    if osm is not None and not str(osm).lower().endswith(".pbf"):
        return (f"network.modes: 'drive' has no road network in {osm} (the drive network is read "
                "from .osm.pbf extracts or online); convert it with "
                f"'osmium cat {Path(osm).name} -o study.osm.pbf' {_FIX}")
    if osm is None and not online:
        return ("network.modes: 'drive' has no road network in the data (no OSM source); give "
                f"--osm FILE.osm.pbf or --place NAME {_FIX}")
    return None


@functools.lru_cache(maxsize=2)
def _read_pbf_roads(path: str, _size: int, _mtime_ns: int) -> tuple[gpd.GeoDataFrame,
                                                                   gpd.GeoDataFrame]:
    from siteplanner.sources import _readcache

    kept = _readcache.load_frames(Path(path), _size, _mtime_ns, "drive")
    if kept is not None and set(kept) == {"nodes", "edges"}:
        return kept["nodes"], kept["edges"]
    nodes, edges = _parse_pbf_roads(path)
    _readcache.store_frames(Path(path), _size, _mtime_ns, "drive", {"nodes": nodes, "edges": edges})
    return nodes, edges


def _parse_pbf_roads(path: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    import pyrosm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = pyrosm.OSM(path).get_network(network_type="driving", nodes=True)
    if network is None:
        return _empty_roads()
    nodes, edges = network
    nodes = nodes.set_index("id")[["geometry"]]
    nodes.index = nodes.index.astype("int64")
    edges = _road_table(edges)
    nodes.attrs, edges.attrs = {}, {}  # pyrosm's notes of how it read them: read by no one
    return nodes, edges


def _graph_roads(graph: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    import osmnx as ox

    nodes, edges = ox.convert.graph_to_gdfs(graph)
    nodes = nodes[["geometry"]].rename_axis("id").to_crs(4326)
    return nodes, _road_table(edges.reset_index().to_crs(4326))


def _road_table(edges: pd.DataFrame) -> gpd.GeoDataFrame:
    out = edges.copy()
    for col in ("maxspeed", "name"):
        if col not in out:
            out[col] = None
    return gpd.GeoDataFrame(out[list(ROAD_COLUMNS)].reset_index(drop=True), geometry="geometry")


def _empty_roads() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    nodes = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326))
    edges = gpd.GeoDataFrame({c: [] for c in ROAD_COLUMNS if c != "geometry"},
                             geometry=gpd.GeoSeries([], crs=4326))
    return nodes, edges
