"""Read an OpenStreetMap .osm.pbf extract with pyrosm."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import pandas as pd

from siteplanner._errors import InputError
from siteplanner.sources._osm import (
    CONTEXT_FILTER,
    OSM_FEATURE_FILTER,
    OSMData,
    context_tables,
    normalise_features,
)

__all__ = ["read_pbf"]


def read_pbf(path: Path) -> OSMData:
    """Read features and the walking network from a ``.osm.pbf`` file.

    pyrosm builds the walking network from the ways in the file even when the
    extract is clipped (ways pointing at nodes outside it), where osmnx's XML
    reader fails. Repeated reads of an unchanged file in one process (a
    notebook re-running a study, what-if runs) reuse the first read; callers
    treat the result as read-only.
    """
    try:
        st = path.stat()
    except OSError:
        msg = f"{path}: cannot read the OSM file; check the path"
        raise InputError(msg) from None
    return _read_pbf(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_pbf(path_str: str, _size: int, _mtime_ns: int) -> OSMData:
    import pyrosm

    path = Path(path_str)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path))
            feats = osm.get_pois(custom_filter=OSM_FEATURE_FILTER)
            network = osm.get_network(network_type="walking", nodes=True)
            boundaries = osm.get_boundaries()
            context = osm.get_data_by_custom_criteria(
                custom_filter={k: v for k, v in CONTEXT_FILTER.items() if k != "boundary"},
                keep_relations=True)
    except Exception as e:  # pyrosm raises bare exceptions on corrupt input
        msg = f"{path}: cannot read as an OSM .pbf extract ({type(e).__name__}: {e}); check the file"
        raise InputError(msg) from None
    if feats is None or network is None:
        msg = f"{path}: the extract holds no streets or tagged places; use a city extract"
        raise InputError(msg)
    nodes, edges = network
    for frame in (feats, nodes, edges, boundaries, context):
        # pyrosm notes its filter in attrs, which pandas deep-copies on every
        # operation: ~0.3 s of CPU over a country's tables, for nothing used here.
        if frame is not None:
            frame.attrs = {}
    nodes = nodes.set_index("id")[["geometry"]]
    nodes.index = nodes.index.astype("int64")
    stamps = pd.concat([feats.get("timestamp", pd.Series(dtype=float)),
                        edges.get("timestamp", pd.Series(dtype=float))]).dropna()
    if "name" not in edges:
        edges["name"] = None
    edges = edges[["u", "v", "length", "highway", "name", "geometry"]].copy()
    date = None
    if len(stamps):
        newest = pd.to_datetime(stamps.max(), unit="s", utc=True)
        date = newest.isoformat().replace("+00:00", "Z")
    return OSMData(
        features=normalise_features(feats, id_column="id"),
        nodes=nodes,
        edges=edges.reset_index(drop=True),
        data_date=date,
        **context_tables(context, boundaries=boundaries),
    )
