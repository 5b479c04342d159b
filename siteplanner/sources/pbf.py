"""Read an OpenStreetMap .osm.pbf extract with pyrosm."""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

import pandas as pd

from siteplanner._errors import InputError
from siteplanner._memory import release_freed_memory
from siteplanner.sources._osm import (
    CONTEXT_FILTER,
    OSM_FEATURE_FILTER,
    OSMData,
    context_tables,
    normalise_features,
)
from siteplanner.sources.buildings import pyrosm_buildings

__all__ = ["held_reads", "keep_reads", "parse_count", "read_count", "read_pbf"]


def read_pbf(path: Path) -> OSMData:
    """Read features and the walking network from a ``.osm.pbf`` file.

    pyrosm builds the walking network from the ways in the file even when the
    extract is clipped (ways pointing at nodes outside it), where osmnx's XML
    reader fails. A read of an unchanged file is reused while anything still
    holds it (a notebook's ``OSMData``, another study of the same file), and by
    every later read once :func:`keep_reads` is on (a national run's worker);
    callers treat the result as read-only. The building footprints and land use
    the demand reads come from the same parse, packed (:class:`~siteplanner.sources.buildings.Packed`).
    What a parse gives is also kept on disk (:mod:`siteplanner.sources._readcache`), so a
    later process reads an unchanged file from there, without pyrosm.
    """
    try:
        st = path.stat()
    except OSError:
        msg = f"{path}: cannot read the OSM file; check the path"
        raise InputError(msg) from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _LOCK:
        data = _HELD.get(key)
    if data is None:
        from siteplanner.sources import _readcache

        data = _readcache.load(Path(key[0]), st.st_size, st.st_mtime_ns)
        parsed = data is None
        if data is None:
            data = _read_pbf(*key)
            _readcache.store(Path(key[0]), st.st_size, st.st_mtime_ns, data)
        with _LOCK:
            _READS[0] += 1
            _PARSES[0] += parsed
            _HELD[key] = data
    with _LOCK:
        if _KEEP[0]:
            _KEPT[key] = data
            _KEPT.move_to_end(key)
            while len(_KEPT) > KEPT_READS:
                _KEPT.popitem(last=False)
    return data


#: How many extracts :func:`keep_reads` keeps (the newest used), per process.
KEPT_READS = 4

_LOCK = threading.Lock()
#: Every read still referenced somewhere: a one-study run frees its tables once the
#: pipeline drops them (after its layers stage), a national worker keeps them in ``_KEPT``.
_HELD: weakref.WeakValueDictionary[tuple[str, int, int], OSMData] = weakref.WeakValueDictionary()
_KEPT: OrderedDict[tuple[str, int, int], OSMData] = OrderedDict()
_KEEP = [False]
_READS = [0]
_PARSES = [0]


def keep_reads(keep: bool = True) -> bool:
    """Keep every read extract in this process (the newest :data:`KEPT_READS`) for later reads.

    A national run's worker turns it on: its areas read one extract, so the
    worker reads it once. Off (the default, and a one-study ``rank``), a read
    lives only as long as its caller holds it, so the run's raw tables (about
    0.9 GB for a 100k-candidate city) are freed once its layers are built.
    Turning it off forgets what was kept. Returns the previous setting.
    """
    with _LOCK:
        before, _KEEP[0] = _KEEP[0], keep
        if not keep:
            _KEPT.clear()
    return before


def read_count() -> int:
    """How many times this process has read an extract, with pyrosm or from the read
    cache (reuses of a read it still holds not counted)."""
    return _READS[0]


def parse_count() -> int:
    """How many of :func:`read_count`'s reads parsed the file with pyrosm (missed the read cache)."""
    return _PARSES[0]


def held_reads() -> list[str]:
    """The files whose read this process still holds (kept, or referenced by a caller)."""
    with _LOCK:
        return sorted({k[0] for k in _HELD.keys()})


#: The only tags of the walking network's edges that siteplanner reads (layers: the
#: street class and name). pyrosm makes every other one a column, and keeps the rest as
#: JSON repeated on each of a way's segments: most of a large file's network table.
EDGE_TAGS = ("highway", "name")


def _read_pbf(path_str: str, _size: int, _mtime_ns: int) -> OSMData:
    import pyrosm

    path = Path(path_str)
    # Each table is cut to what siteplanner reads as soon as it arrives, and its raw form
    # dropped before the next is read: the raw tables of a 100k-candidate city (JSON
    # tags, metadata, dozens of tag columns) held together were most of the run's peak.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path))
            raw = osm.get_pois(custom_filter=OSM_FEATURE_FILTER)
            if raw is None:
                msg = f"{path}: the extract holds no streets or tagged places; use a city extract"
                raise InputError(msg)
            stamps = [_newest(raw)]
            feats = normalise_features(_bare(raw), id_column="id")
            del raw
            release_freed_memory()
            network = osm.get_network(network_type="walking", nodes=True,
                                      tags_to_keep=list(EDGE_TAGS))
            if network is None:
                msg = f"{path}: the extract holds no streets or tagged places; use a city extract"
                raise InputError(msg)
            nodes, edges = _network(network[0], network[1], stamps)
            del network
            release_freed_memory()
            boundaries = osm.get_boundaries()
            if boundaries is not None:
                boundaries = _bare(boundaries)
            raw = osm.get_data_by_custom_criteria(
                custom_filter={k: v for k, v in CONTEXT_FILTER.items() if k != "boundary"},
                keep_relations=True)
            context = context_tables(_bare(raw) if raw is not None else None,
                                     boundaries=boundaries)
            del raw, boundaries
            release_freed_memory()
            buildings, landuse = pyrosm_buildings(osm, path)
    except InputError:
        raise
    except Exception as e:  # pyrosm raises bare exceptions on corrupt input
        msg = f"{path}: cannot read as an OSM .pbf extract ({type(e).__name__}: {e}); check the file"
        raise InputError(msg) from None
    newest = [t for t in stamps if t is not None]
    date = None
    if newest:
        stamp = pd.to_datetime(max(newest), unit="s", utc=True)
        date = stamp.isoformat().replace("+00:00", "Z")
    return OSMData(features=feats, nodes=nodes, edges=edges, data_date=date, buildings=buildings,
                   landuse=landuse, **context)


def _bare(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without pyrosm's element metadata and its filter notes.

    pyrosm notes its filter in attrs, which pandas deep-copies on every operation
    (~0.3 s of CPU over a country's tables, for nothing used here).
    """
    frame.attrs = {}
    return frame.drop(columns=[c for c in _METADATA if c in frame.columns])


#: pyrosm's per-element metadata: only the timestamps are read (the data's date), first.
_METADATA = ("visible", "version", "changeset", "timestamp", "lon", "lat")


def _newest(frame: pd.DataFrame) -> float | None:
    """The newest element timestamp (seconds since 1970) in a pyrosm table, if any."""
    if "timestamp" not in frame.columns:
        return None
    t = pd.to_numeric(frame["timestamp"], errors="coerce").max()
    return None if pd.isna(t) else float(t)


def _network(nodes: pd.DataFrame, edges: pd.DataFrame,
             stamps: list[float | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The walking network's nodes (OSM id index, geometry) and edges (the columns layers read)."""
    stamps.append(_newest(edges))
    nodes = nodes.set_index("id")[["geometry"]]
    nodes.attrs = {}
    nodes.index = nodes.index.astype("int64")
    if "name" not in edges:
        edges["name"] = None
    edges = edges[["u", "v", "length", *EDGE_TAGS, "geometry"]].copy()
    edges.attrs = {}
    return nodes, edges.reset_index(drop=True)
