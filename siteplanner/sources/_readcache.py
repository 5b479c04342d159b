"""siteplanner's own cache of a ``.pbf`` read: the compact tables, not pyrosm's.

:func:`siteplanner.sources.pbf.read_pbf` keeps what it read of an extract (the
:class:`~siteplanner.sources._osm.OSMData` tables, already cut to the columns
siteplanner reads) under ``$SITEPLANNER_CACHE/reads`` (default
``~/.cache/siteplanner/reads``), and a later read of the same unchanged file, in any
process, is served from there without pyrosm. pyrosm's own result cache turns its
GeoParquet back into whole frames (every tag column, the nodes' JSON tags parsed) before
siteplanner cuts them; on a 100k-candidate city that warm read was the run's memory peak.

An entry is one file: each column of each table an Arrow IPC stream of its own (so a
column's bytes are freed once it is converted, and the read holds one column's bytes
at a time beyond its result), a CRC-32 of each, and a JSON footer with the key, the
dtypes, indexes, CRSs, the data date and the extent. Points are stored as x / y
(``shapely.points`` back), other geometries as WKB (exact: float64 coordinates).

The key is the file's resolved path, size, ``mtime_ns`` and the SHA-256 of its first
and last MiB, with :data:`FORMAT`, the versions of siteplanner and of the libraries the
read goes through, and the SHA-256 of the modules that make the tables (their filters
and columns): a change to any of them is a miss, never a stale hit.

Entries are written to a temporary name and renamed into place (two national workers
may write the same one); one that cannot be read (truncated, corrupt, an older format)
is a miss, and the file is read again and the entry rewritten. A cache folder that
cannot be written means no cache, silently. The folder keeps the newest
:data:`MAX_ENTRIES` entries within :data:`MAX_BYTES`; ``SITEPLANNER_NO_READ_CACHE=1``
turns the cache off.

The drive network a driving study reads from the same extract
(:func:`siteplanner.sources.drive.read_drive_network`) is kept the same way, as an entry
of its own kind (:func:`load_frames`, :func:`store_frames`): a warm rerun of a country
that drives reads neither table through pyrosm, nor imports it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import secrets
import struct
import time
import zlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from pyproj import CRS

from siteplanner.sources._osm import OSMData
from siteplanner.sources.buildings import Packed

__all__ = ["ENV_OFF", "FORMAT", "KINDS", "MAX_BYTES", "MAX_ENTRIES", "cache_root", "clear",
           "enabled", "folder", "load", "load_frames", "store", "store_frames"]

log = logging.getLogger(__name__)

#: The entry layout's version: raise it when the layout or what it stores changes.
FORMAT = 1
#: The most entries the folder keeps (the newest used), and the most bytes they may take.
MAX_ENTRIES = 32
MAX_BYTES = 4 << 30
#: Set to 1 (or true/yes) to read every extract with pyrosm and keep nothing.
ENV_OFF = "SITEPLANNER_NO_READ_CACHE"

#: The OSMData tables stored, in the order they are read back.
TABLES = ("features", "nodes", "edges", "boundaries", "places", "addresses", "blocked")
PACKED = ("buildings", "landuse")
#: What an entry holds: the read's :class:`OSMData` ("osm"), or another reader's named
#: tables (:func:`store_frames`; "drive": the roads a car may use).
KINDS = ("osm", "drive")
_SUFFIX = ".spread"
_MAGIC = b"SPREAD\x00\x01"
_TAIL = struct.Struct("<Q8s")  # the footer's length, then the magic again
_EDGE_BYTES = 1 << 20  # the file's head and tail hashed into the key
#: The modules whose code decides the tables (their filters, columns and this layout).
_CODE = ("pbf.py", "_osm.py", "buildings.py", "drive.py", "_readcache.py")


def cache_root() -> Path:
    """siteplanner's cache root: ``$SITEPLANNER_CACHE`` or ``~/.cache/siteplanner``."""
    return Path(os.environ.get("SITEPLANNER_CACHE") or Path.home() / ".cache" / "siteplanner")


def folder() -> Path:
    """Where the reads are kept: ``reads/`` under :func:`cache_root`."""
    return cache_root() / "reads"


def enabled() -> bool:
    """Whether the read cache is on (``SITEPLANNER_NO_READ_CACHE`` unset, 0 or false)."""
    return os.environ.get(ENV_OFF, "").strip().lower() in ("", "0", "false", "no", "off")


class _Unsupported(Exception):
    """A table holds something this layout does not restore exactly: the read is not kept."""


# ------------------------------------------------------------------ key

@lru_cache(maxsize=1)
def _code_key() -> dict[str, Any]:
    """What besides the file decides the tables: the layout, the versions, the reader's code."""
    code = hashlib.sha256()
    here = Path(__file__)
    for name in _CODE:
        try:
            code.update(here.with_name(name).read_bytes())
        except OSError:  # no sources (a zipped install): the versions alone
            code.update(name.encode())
    versions: dict[str, str | None] = {}
    for dist in ("siteplanner", "pyrosm", "pandas", "geopandas", "shapely", "pyarrow", "pyproj"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return {"format": FORMAT, "code": code.hexdigest(), "versions": versions}


def _file_key(path: Path, size: int, mtime_ns: int, kind: str = "osm") -> dict[str, Any]:
    edges = hashlib.sha256()
    with path.open("rb") as f:
        edges.update(f.read(_EDGE_BYTES))
        if size > _EDGE_BYTES:
            f.seek(max(size - _EDGE_BYTES, _EDGE_BYTES))
            edges.update(f.read(_EDGE_BYTES))
    return {"path": str(path), "size": size, "mtime_ns": mtime_ns, "edges": edges.hexdigest(),
            **({} if kind == "osm" else {"kind": kind}), **_code_key()}


def _entry(path: Path, key: dict[str, Any]) -> Path:
    """The entry's file: named by the extract's path and the entry's kind, then by the
    whole key, so a newer entry of a file can replace its older ones of that kind."""
    text = json.dumps(key, sort_keys=True).encode()
    return folder() / (_prefix(path, key.get("kind", "osm")) + hashlib.sha256(text).hexdigest()[:16]
                       + _SUFFIX)


def _prefix(path: Path, kind: str = "osm") -> str:
    named = str(path) if kind == "osm" else f"{path}\x00{kind}"
    return hashlib.sha256(named.encode("utf-8", "surrogatepass")).hexdigest()[:16] + "-"


def clear(path: Path) -> int:
    """Forget every kept read of ``path``, of every kind (its next read parses it: a first
    run, for a benchmark); returns how many entries went."""
    gone = 0
    try:
        for kind in KINDS:
            for entry in folder().glob(_prefix(Path(path).resolve(), kind) + "*" + _SUFFIX):
                entry.unlink(missing_ok=True)
                gone += 1
    except OSError:
        pass
    return gone


# ------------------------------------------------------------------ read

def load(path: Path, size: int, mtime_ns: int) -> OSMData | None:
    """The cached read of ``path`` at this size and mtime, or None (off, a miss, unreadable)."""
    return _load(path, size, mtime_ns, "osm", _osm_data)


def load_frames(path: Path, size: int, mtime_ns: int, kind: str) -> dict[str, gpd.GeoDataFrame] | None:
    """The tables another reader kept of ``path`` as ``kind`` (:func:`store_frames`), in
    the order it gave them, or None (off, a miss, unreadable)."""
    return _load(path, size, mtime_ns, kind,
                 lambda footer, column: {name: _frame(meta, column)
                                         for name, meta in footer["tables"].items()})


def _load(path: Path, size: int, mtime_ns: int, kind: str, build: Any) -> Any:
    if not enabled():
        return None
    try:
        key = _file_key(path, size, mtime_ns, kind)
        entry = _entry(path, key)
        if not entry.is_file():
            return None
        # the collector would scan the growing tables for cycles about every 700
        # geometries made (there are none): half a 100k-candidate city's read, off
        collecting = gc.isenabled()
        gc.disable()
        try:
            data = _read_entry(entry, key, build)
        finally:
            if collecting:
                gc.enable()
    except Exception as e:  # a bad entry is a miss, whatever broke in it
        log.debug("read cache: %s not used (%s: %s)", path, type(e).__name__, e)
        return None
    try:
        os.utime(entry)  # the newest used is the last pruned
    except OSError:
        pass
    return data


def _read_entry(entry: Path, key: dict[str, Any], build: Any) -> Any:
    with entry.open("rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise ValueError("not a read-cache entry")
        f.seek(-_TAIL.size, os.SEEK_END)
        footer_len, magic = _TAIL.unpack(f.read(_TAIL.size))
        if magic != _MAGIC:
            raise ValueError("truncated")
        f.seek(-_TAIL.size - footer_len, os.SEEK_END)
        footer = json.loads(f.read(footer_len))
        if footer["key"] != key:
            raise ValueError("another key")

        def column(spec: dict[str, Any]) -> pa.Array:
            f.seek(spec["at"])
            blob = f.read(spec["bytes"])
            if len(blob) != spec["bytes"] or zlib.crc32(blob) != spec["crc"]:
                raise ValueError("corrupt column")
            with pa.ipc.open_stream(blob) as reader:
                table = reader.read_all()
            del blob
            return table.column(0).combine_chunks()

        return build(footer, column)


def _osm_data(footer: dict[str, Any], column: Any) -> OSMData:
    tables: dict[str, Any] = {}
    for name in TABLES:
        tables[name] = _frame(footer["tables"][name], column)
    for name in PACKED:
        meta = footer["tables"][name]
        columns = _plain(meta, column)
        tables[name] = Packed(columns, column(meta["wkb"]).to_numpy(zero_copy_only=False))
    extent = footer["extent"]
    return OSMData(**tables, data_date=footer["data_date"],
                   extent=None if extent is None else shapely.from_wkb(bytes.fromhex(extent)))


def _frame(meta: dict[str, Any], column: Any) -> gpd.GeoDataFrame:
    frame = _plain(meta, column)
    geom = meta["geometry"]
    if geom["as"] == "wkb":
        values = shapely.from_wkb(column(geom["wkb"]).to_numpy(zero_copy_only=False))
    else:
        xy = np.stack([_values(column(geom["x"]), "float64"), _values(column(geom["y"]), "float64")],
                      axis=1)
        if geom["as"] == "points":
            values = shapely.points(xy)
        else:
            counts = _values(column(geom["counts"]), "int32")
            values = shapely.linestrings(xy, indices=np.repeat(np.arange(len(counts)), counts))
        del xy
    crs = None if geom["crs"] is None else _crs(geom["crs"])
    frame.insert(geom["position"], geom["name"], gpd.GeoSeries(values, index=frame.index, crs=crs))
    return gpd.GeoDataFrame(frame, geometry=geom["name"], crs=crs)


@lru_cache(maxsize=8)
def _crs(srs: str) -> CRS:
    """The CRS of its ``srs``, parsed once (a PROJJSON text takes 15 ms each time)."""
    return CRS.from_user_input(srs)


def _plain(meta: dict[str, Any], column: Any) -> pd.DataFrame:
    """A table's columns but the geometry, on its index."""
    ix = meta["index"]
    if ix["kind"] == "range":
        index: pd.Index = pd.RangeIndex(ix["start"], ix["stop"], ix["step"], name=ix["name"])
    else:
        index = pd.Index(_values(column(ix["values"]), ix["dtype"]), name=ix["name"],
                         dtype=object if ix["dtype"] == "object" else None)
    cols = {c["name"]: pd.Series(_values(column(c), c["dtype"]), index=index, copy=False,
                                 dtype=object if c["dtype"] == "object" else None)
            for c in meta["columns"]}
    return pd.DataFrame(cols, index=index, copy=False)


def _values(arr: pa.Array, dtype: str) -> Any:
    if dtype == "object":  # strings and None, as the readers leave them
        return arr.to_numpy(zero_copy_only=False)
    if dtype.startswith("string:"):
        _, storage, na = dtype.split(":")
        kind = pd.StringDtype(storage, na_value=np.nan if na == "nan" else pd.NA)
        return pd.Series(arr.to_pandas(), copy=False).astype(kind).array
    return np.array(arr.to_numpy(zero_copy_only=False), dtype=dtype)  # a copy: writable


# ------------------------------------------------------------------ write

def store(path: Path, size: int, mtime_ns: int, data: OSMData) -> None:
    """Keep ``data`` (what :func:`siteplanner.sources.pbf._read_pbf` read from ``path``)
    for later reads; a folder that cannot be written, or a table this layout does not
    restore exactly, leaves nothing (and says so only in the debug log)."""
    _store(path, size, mtime_ns, "osm", lambda column: _osm_meta(data, column))


def store_frames(path: Path, size: int, mtime_ns: int, kind: str,
                 frames: dict[str, gpd.GeoDataFrame]) -> None:
    """Keep another reader's tables of ``path`` as ``kind`` (one of :data:`KINDS`), for
    :func:`load_frames`; as :func:`store`, nothing is left when they cannot be kept."""
    if kind not in KINDS or kind == "osm":
        raise ValueError(f"read cache: unknown kind {kind!r}")
    _store(path, size, mtime_ns, kind,
           lambda column: {"tables": {name: _frame_meta(frame, column)
                                      for name, frame in frames.items()}})


def _store(path: Path, size: int, mtime_ns: int, kind: str, meta: Any) -> None:
    if not enabled():
        return
    tmp: Path | None = None
    try:
        key = _file_key(path, size, mtime_ns, kind)
        entry = _entry(path, key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with tmp.open("wb") as f:
            _write_entry(f, key, meta)
        os.replace(tmp, entry)
        tmp = None
        _prune(entry)
    except Exception as e:  # keeping the read must never fail it
        log.debug("read cache: %s not kept (%s: %s)", path, type(e).__name__, e)
    finally:
        if tmp is not None:
            try:
                tmp.unlink()
            except OSError:
                pass


def _write_entry(f: Any, key: dict[str, Any], meta: Any) -> None:
    """The magic, each column's stream (``meta(column)`` writes them and returns the
    footer's description of the tables), the footer, its length and the magic again."""
    f.write(_MAGIC)

    def column(values: Any) -> dict[str, Any]:
        arr = values if isinstance(values, pa.Array) else pa.array(values)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, pa.schema([("v", arr.type)])) as writer:
            writer.write_batch(pa.record_batch([arr], names=["v"]))
        blob = sink.getvalue()
        spec = {"at": f.tell(), "bytes": blob.size, "crc": zlib.crc32(blob)}
        f.write(blob)
        return spec

    footer = json.dumps({"key": key, **meta(column), "written": time.time()}).encode()
    f.write(footer)
    f.write(_TAIL.pack(len(footer), _MAGIC))


def _osm_meta(data: OSMData, column: Any) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    for name in TABLES:
        tables[name] = _frame_meta(getattr(data, name), column)
    for name in PACKED:
        packed = getattr(data, name)
        if not isinstance(packed, Packed):
            raise _Unsupported(f"{name} is not packed")
        tables[name] = {**_plain_meta(packed.columns, column),
                        "wkb": column(pa.array(packed.wkb, type=pa.large_binary()))}
    extent = None if data.extent is None else shapely.to_wkb(data.extent).hex()
    return {"tables": tables, "data_date": data.data_date, "extent": extent}


def _frame_meta(frame: gpd.GeoDataFrame, column: Any) -> dict[str, Any]:
    if not isinstance(frame, gpd.GeoDataFrame) or frame.attrs:
        raise _Unsupported("not a plain GeoDataFrame")
    name = frame.geometry.name
    geoms = frame.geometry.values
    crs = None if frame.crs is None else frame.crs.srs
    geom: dict[str, Any] = {"name": name, "position": list(frame.columns).index(name), "crs": crs}
    arr = np.asarray(geoms)
    kinds = np.unique(shapely.get_type_id(arr))
    if len(arr) and len(kinds) == 1 and kinds[0] in (0, 1) and not shapely.has_z(arr).any() \
            and not shapely.is_empty(arr).any():
        # points and lines as their coordinates: four times quicker both ways than WKB
        # (a 100k-candidate city's million street segments), and as exact
        xy = shapely.get_coordinates(arr)
        geom.update({"as": "points" if kinds[0] == 0 else "lines",
                     "x": column(np.ascontiguousarray(xy[:, 0])),
                     "y": column(np.ascontiguousarray(xy[:, 1]))})
        del xy
        if kinds[0] == 1:
            geom["counts"] = column(shapely.get_num_coordinates(arr).astype("int32"))
    else:
        geom.update({"as": "wkb", "wkb": column(pa.array(shapely.to_wkb(arr), type=pa.large_binary()))})
    return {**_plain_meta(pd.DataFrame(frame.drop(columns=name)), column), "geometry": geom}


def _plain_meta(frame: pd.DataFrame, column: Any) -> dict[str, Any]:
    ix = frame.index
    if type(ix) is pd.RangeIndex:
        index: dict[str, Any] = {"kind": "range", "start": ix.start, "stop": ix.stop,
                                 "step": ix.step, "name": ix.name}
    elif type(ix) is pd.Index and ix.nlevels == 1:
        dtype = _dtype(pd.Series(ix))
        index = {"kind": "values", "dtype": dtype, "name": ix.name, "values": column(_arrow(ix, dtype))}
    else:
        raise _Unsupported(f"index {type(ix).__name__}")
    if not all(isinstance(c, str) for c in frame.columns) or frame.columns.has_duplicates:
        raise _Unsupported("column names")
    cols = []
    for c in frame.columns:
        s = frame[c]
        dtype = _dtype(s)
        cols.append({"name": c, "dtype": dtype, **column(_arrow(s, dtype))})
    return {"index": index, "columns": cols}


def _dtype(s: pd.Series) -> str:
    """The column's dtype as the entry records it; what the layout does not restore raises."""
    d = s.dtype
    if isinstance(d, pd.StringDtype):
        return f"string:{d.storage}:{'nan' if isinstance(d.na_value, float) else 'NA'}"
    if d == np.dtype(object):
        v = s.to_numpy()
        none = np.equal(v, None)  # type: ignore[call-overload]  # elementwise ``is None``
        strings = pd.api.types.infer_dtype(v[~none], skipna=False) in ("string", "empty")
        if not strings:
            raise _Unsupported(f"{s.name}: object values other than strings and None")
        return "object"
    if d.kind in "biuf" and not isinstance(d, pd.api.extensions.ExtensionDtype):
        return str(d)
    raise _Unsupported(f"{s.name}: dtype {d}")


def _arrow(s: Any, dtype: str) -> pa.Array:
    if dtype.startswith("string:pyarrow"):  # already Arrow: no Python strings made
        return pa.array(s, type=pa.large_string())
    if dtype == "object" or dtype.startswith("string:"):
        return pa.array(np.asarray(s, dtype=object), type=pa.large_string(), from_pandas=True)
    return pa.array(np.asarray(s))


def _prune(kept: Path) -> None:
    """Drop the file's older entries, crashed writers' leftovers, and the oldest entries
    past :data:`MAX_ENTRIES` / :data:`MAX_BYTES` (``kept``, just written, stays)."""
    prefix = kept.name.split("-")[0] + "-"  # the extract's part: see _entry
    now = time.time()
    entries = []
    for p in kept.parent.iterdir():
        try:
            st = p.stat()
            if p.name.endswith(".tmp") and now - st.st_mtime > 3600:
                p.unlink()
            elif p.suffix == _SUFFIX and p != kept:
                if p.name.startswith(prefix):
                    p.unlink()
                else:
                    entries.append((st.st_mtime, st.st_size, p))
        except OSError:
            continue
    total, count = kept.stat().st_size, 1
    for _, nbytes, p in sorted(entries, reverse=True):
        total, count = total + nbytes, count + 1
        if count > MAX_ENTRIES or total > MAX_BYTES:
            try:
                p.unlink()
            except OSError:
                pass
