"""The .pbf read cache: a later read of an unchanged extract is siteplanner's own compact
tables from disk, equal to a fresh read, and never an error or a stale answer."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from pandas.testing import assert_frame_equal, assert_index_equal

from siteplanner.sources import _readcache, pbf
from siteplanner.sources._osm import OSMData

ROOT = Path(__file__).resolve().parents[1]
HELSINKI = ROOT / "data" / "helsinki" / "helsinki.osm.pbf"
ANDORRA = ROOT / "siteplanner" / "data" / "andorra" / "andorra-2022-02.osm.pbf"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A read cache of this test's own, turned on; no read held from earlier tests."""
    monkeypatch.setenv("SITEPLANNER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(_readcache.ENV_OFF, raising=False)
    before = pbf.keep_reads(False)
    yield tmp_path / "cache" / "reads"
    pbf.keep_reads(before)


@pytest.fixture(scope="module")
def helsinki() -> OSMData:
    """A fresh parse of the bundled Helsinki extract (pyrosm, no cache)."""
    st = HELSINKI.stat()
    return pbf._read_pbf(str(HELSINKI.resolve()), st.st_size, st.st_mtime_ns)


@pytest.fixture
def parses(helsinki: OSMData, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``pbf._read_pbf`` replaced by one that hands out the Helsinki parse (a new
    ``OSMData`` on the same tables each time) and records the paths it was asked for."""
    calls: list[str] = []

    def parse(path: str, _size: int, _mtime_ns: int) -> OSMData:
        calls.append(path)
        return dataclasses.replace(helsinki)

    monkeypatch.setattr(pbf, "_read_pbf", parse)
    return calls


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    path = tmp_path / "kluuvi.osm.pbf"
    shutil.copyfile(HELSINKI, path)
    return path


def _same_frame(a: pd.DataFrame, b: pd.DataFrame, name: str) -> None:
    assert type(a) is type(b), name
    assert list(a.columns) == list(b.columns), name
    assert_index_equal(a.index, b.index, exact=True)
    if "geometry" in a.columns:
        assert a.geometry.name == b.geometry.name and a.crs.srs == b.crs.srs, name
        wkb_a, wkb_b = shapely.to_wkb(a.geometry.values), shapely.to_wkb(b.geometry.values)
        assert (wkb_a == wkb_b).all(), name  # every coordinate bit for bit
        assert a.equals(b), name
        a, b = pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
    assert_frame_equal(a, b, check_exact=True)
    for c in a.columns:
        assert a[c].dtype == b[c].dtype, (name, c)
        if a[c].dtype == np.dtype(object):  # None stays None (not NaN), str stays str
            assert [type(x) for x in a[c]] == [type(x) for x in b[c]], (name, c)


def _same(a: OSMData, b: OSMData) -> None:
    for name in _readcache.TABLES:
        _same_frame(getattr(a, name), getattr(b, name), name)
    for name in _readcache.PACKED:
        x, y = getattr(a, name), getattr(b, name)
        _same_frame(x.columns, y.columns, name)
        assert x.wkb.dtype == y.wkb.dtype and list(x.wkb) == list(y.wkb), name
    assert a.data_date == b.data_date
    assert shapely.to_wkb(a.extent) == shapely.to_wkb(b.extent)


@pytest.mark.parametrize("path", [HELSINKI, ANDORRA], ids=["helsinki", "andorra"])
def test_a_cached_read_equals_a_fresh_one_table_by_table(path, cache, helsinki) -> None:
    st = path.stat()
    fresh = helsinki if path == HELSINKI else pbf._read_pbf(str(path.resolve()), st.st_size,
                                                            st.st_mtime_ns)
    assert _readcache.load(path.resolve(), st.st_size, st.st_mtime_ns) is None
    _readcache.store(path.resolve(), st.st_size, st.st_mtime_ns, fresh)
    hit = _readcache.load(path.resolve(), st.st_size, st.st_mtime_ns)
    assert hit is not None and hit is not fresh
    _same(fresh, hit)
    assert len(hit.nodes) > 1000 and hit.nodes.index.name == "id" and len(hit.buildings) > 400


def test_a_second_read_of_an_unchanged_file_does_not_parse_it(extract, cache, monkeypatch) -> None:
    import pyrosm

    n, parsed = pbf.read_count(), pbf.parse_count()
    first = pbf.read_pbf(extract)
    assert pbf.parse_count() == parsed + 1 and len(list(cache.glob("*.spread"))) == 1
    del first
    gc.collect()
    assert str(extract.resolve()) not in pbf.held_reads()

    def no_pyrosm(*_a, **_k):
        raise AssertionError("pyrosm read the file again")

    monkeypatch.setattr(pyrosm, "OSM", no_pyrosm)
    second = pbf.read_pbf(extract)
    assert pbf.read_count() == n + 2 and pbf.parse_count() == parsed + 1
    assert len(second.nodes) > 1000 and second.data_date is not None


def test_touching_the_file_reads_it_again_and_replaces_its_entry(extract, cache, parses) -> None:
    pbf.read_pbf(extract)
    (old,) = cache.glob("*.spread")
    gc.collect()
    st = extract.stat()
    os.utime(extract, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    pbf.read_pbf(extract)
    assert len(parses) == 2
    (new,) = cache.glob("*.spread")
    assert new != old
    gc.collect()
    pbf.read_pbf(extract)
    assert len(parses) == 2
    assert _readcache.clear(extract) == 1 and not list(cache.glob("*.spread"))


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "garbage"])
def test_a_damaged_entry_is_read_again_and_rewritten(extract, cache, parses, helsinki,
                                                     damage) -> None:
    pbf.read_pbf(extract)
    gc.collect()
    (entry,) = cache.glob("*.spread")
    blob = bytearray(entry.read_bytes())
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "flipped":  # one bit inside the street nodes' coordinates
        blob[len(blob) // 3] ^= 0x10
    elif damage == "empty":
        blob = bytearray()
    else:
        blob = bytearray(os.urandom(4096))
    entry.write_bytes(bytes(blob))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = pbf.read_pbf(extract)
    assert len(parses) == 2
    _same(helsinki, data)
    del data
    gc.collect()
    st = extract.stat()
    assert _readcache.load(extract.resolve(), st.st_size, st.st_mtime_ns) is not None


def test_an_unwritable_cache_folder_means_no_cache_and_no_warning(extract, tmp_path, parses,
                                                                  monkeypatch, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("SITEPLANNER_CACHE", str(blocker))
    monkeypatch.delenv(_readcache.ENV_OFF, raising=False)
    before = pbf.keep_reads(False)
    try:
        with warnings.catch_warnings(), caplog.at_level(logging.INFO):
            warnings.simplefilter("error")
            assert len(pbf.read_pbf(extract).nodes) > 1000
            gc.collect()
            assert len(pbf.read_pbf(extract).nodes) > 1000
    finally:
        pbf.keep_reads(before)
    assert len(parses) == 2 and caplog.records == []


def test_the_opt_out_parses_every_time_and_keeps_nothing(extract, cache, parses,
                                                         monkeypatch) -> None:
    monkeypatch.setenv(_readcache.ENV_OFF, "1")
    pbf.read_pbf(extract)
    gc.collect()
    pbf.read_pbf(extract)
    assert len(parses) == 2 and not cache.exists()


def test_a_change_to_the_reader_is_a_miss(extract, cache, parses, monkeypatch) -> None:
    """New filters or columns (the reader's code) never serve the tables cut the old way."""
    pbf.read_pbf(extract)
    gc.collect()
    key = _readcache._code_key()
    monkeypatch.setattr(_readcache, "_code_key", lambda: {**key, "code": "another reader"})
    pbf.read_pbf(extract)
    assert len(parses) == 2


def test_the_folder_keeps_the_newest_entries(tmp_path, cache, helsinki, monkeypatch) -> None:
    monkeypatch.setattr(_readcache, "MAX_ENTRIES", 2)
    copies = []
    for i in range(3):
        copy = tmp_path / f"copy{i}.osm.pbf"
        shutil.copyfile(HELSINKI, copy)
        st = copy.stat()
        _readcache.store(copy, st.st_size, st.st_mtime_ns, helsinki)
        entry = _readcache._entry(copy, _readcache._file_key(copy, st.st_size, st.st_mtime_ns))
        os.utime(entry, (1e9 + i, 1e9 + i))  # written in this order, whatever the clock
        copies.append((copy, st))
    assert len(list(cache.glob("*.spread"))) == 2
    assert [_readcache.load(c, st.st_size, st.st_mtime_ns) is None for c, st in copies] == \
        [True, False, False]  # the oldest went


def test_two_writers_of_one_entry_leave_one_whole_entry(extract, cache, helsinki) -> None:
    st = extract.stat()
    writers = [threading.Thread(target=_readcache.store,
                                args=(extract, st.st_size, st.st_mtime_ns, helsinki))
               for _ in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert [p.suffix for p in cache.iterdir()] == [".spread"]
    assert _readcache.load(extract, st.st_size, st.st_mtime_ns) is not None


def test_the_drive_network_is_kept_beside_the_read_and_reread_without_pyrosm(
        extract, cache, monkeypatch) -> None:
    """A driving study's roads come from the same extract: a second read of them (a new
    process: the in-process memo cleared) is the kept tables, equal to pyrosm's, and
    keeping them leaves the extract's own entry in place."""
    import pyrosm

    from siteplanner.sources import drive

    pbf.read_pbf(extract)
    drive._read_pbf_roads.cache_clear()
    nodes, edges = drive.read_drive_network(osm=extract)
    assert len(list(cache.glob("*.spread"))) == 2  # the read's and the roads', side by side
    st = extract.stat()
    assert _readcache.load(extract.resolve(), st.st_size, st.st_mtime_ns) is not None

    def no_pyrosm(*_a, **_k):
        raise AssertionError("pyrosm read the roads again")

    monkeypatch.setattr(pyrosm, "OSM", no_pyrosm)
    drive._read_pbf_roads.cache_clear()
    nodes2, edges2 = drive.read_drive_network(osm=extract)
    _same_frame(nodes, nodes2, "nodes")
    _same_frame(edges, edges2, "edges")
    assert len(edges2) > 100 and edges2["highway"].notna().all() and nodes2.index.name == "id"
    assert _readcache.clear(extract.resolve()) == 2 and not list(cache.glob("*.spread"))
    drive._read_pbf_roads.cache_clear()
