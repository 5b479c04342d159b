"""Read an OpenStreetMap XML extract (``.osm``, ``.osm.bz2``, ``.osm.gz``) with osmnx.

osmnx's XML readers load the whole file twice over (an ElementTree of it, then
an Overpass-like JSON of it), and ``graph_from_xml`` makes an edge of every way
in the file, buildings included, and fails on clipped extracts whose ways
refer to nodes the file lacks. So the file is first streamed two or three times
(expat) into two small temporary XML files: one with only the walkable
highway ways, cut where they leave the extract, and the nodes they use; one
with only the elements :data:`OSM_FEATURE_FILTER` selects and what they are
built from. osmnx then reads those.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO, cast
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from siteplanner._errors import InputError
from siteplanner.sources._osm import (
    CONTEXT_FILTER,
    FEATURE_TAGS,
    OSM_FEATURE_FILTER,
    WALK_EXCLUDED_HIGHWAYS,
    OSMData,
    context_tables,
    normalise_features,
)

__all__ = ["feature_filter", "graph_tables", "read_osm_xml", "split_features"]

log = logging.getLogger(__name__)


def read_osm_xml(path: Path) -> OSMData:
    """Read features and the walking network from an OSM XML file.

    Parameters
    ----------
    path
        An ``.osm`` file, or one compressed as ``.osm.bz2`` / ``.osm.gz``.

    Returns
    -------
    OSMData
        Features as points, the walking network as undirected unique edges
        between OSM nodes, and the newest element timestamp as ``data_date``.

    Raises
    ------
    InputError
        If the file is missing, is not OSM XML, or holds no walkable streets.
    """
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file; check the path given to --osm"
        raise InputError(msg)
    with tempfile.TemporaryDirectory(prefix="siteplanner-osm-") as tmp:
        split = _split(path, Path(tmp))
        if split.walk_ways == 0:
            msg = (
                f"{path}: holds no walkable streets (highway ways with their nodes); "
                "use an extract that covers the study's streets"
            )
            raise InputError(msg)
        with warnings.catch_warnings():
            # osmnx warns about the ways it cannot build; those are reported below
            warnings.simplefilter("ignore", UserWarning)
            graph = ox.graph_from_xml(
                split.walk_path, bidirectional=True, simplify=False, retain_all=True,
            )
            try:
                raw = ox.features_from_xml(split.feature_path, tags=feature_filter())
            except InsufficientResponseError:
                raw = None
    if split.cut_ways:
        log.info("%s: %d ways leave the extract; cut where their nodes are missing",
                 path, split.cut_ways)
    nodes, edges = graph_tables(graph)
    features, context = split_features(raw)
    return OSMData(features=features, nodes=nodes, edges=edges, data_date=split.newest, **context)


def split_features(raw: gpd.GeoDataFrame | None) -> tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame]]:
    """Split what osmnx read with :func:`feature_filter` into features and context tables."""
    if raw is None:
        return empty_features(), context_tables(None)
    raw = raw.reset_index()
    wanted = np.zeros(len(raw), dtype=bool)
    for key, values in OSM_FEATURE_FILTER.items():
        if key in raw.columns:
            col = raw[key]
            wanted |= (col.notna() if values is True else col.isin(values)).to_numpy()
    feats = raw[wanted]
    features = normalise_features(feats, id_column="id") if len(feats) else empty_features()
    return features, context_tables(raw)


def graph_tables(graph: nx.MultiDiGraph) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Turn an unsimplified osmnx graph into the :class:`OSMData` node and edge tables.

    Each street segment appears once, whichever ways or directions osmnx
    made of it, with ``u < v`` and its geometry running from ``u`` to ``v``.
    Built from the graph's arrays rather than ``ox.graph_to_gdfs``, which
    makes a line per edge in a Python loop (0.88 s against 0.06 s, median of
    5, on the whole Helsinki extract's 13.8k directed walking edges).
    """
    crs = graph.graph.get("crs", 4326)
    ids = np.fromiter(graph.nodes, dtype=np.int64, count=len(graph))
    x = np.fromiter((x for _, x in graph.nodes(data="x")), dtype=float, count=len(ids))
    y = np.fromiter((y for _, y in graph.nodes(data="y")), dtype=float, count=len(ids))
    nodes = gpd.GeoDataFrame(
        geometry=shapely.points(x, y), index=pd.Index(ids, name="id"), crs=crs).to_crs(4326)

    rows = [(u, v, d.get("length", np.nan), _first(d.get("highway")), _first(d.get("name")),
             d.get("geometry")) for u, v, d in graph.edges(data=True)]
    e = pd.DataFrame(rows, columns=["u", "v", "length", "highway", "name", "geometry"])
    u = e["u"].to_numpy(dtype=np.int64)
    v = e["v"].to_numpy(dtype=np.int64)
    swap = u > v
    e["u"], e["v"] = np.where(swap, v, u), np.where(swap, u, v)
    e["swap"] = swap
    e = e[e["u"] != e["v"]].sort_values(["u", "v", "length"], kind="stable")
    e = e.drop_duplicates(subset=["u", "v"]).reset_index(drop=True)
    # unsimplified edges are straight between their nodes; keep any other shape
    at = pd.Index(ids)
    iu, iv = at.get_indexer(e["u"]), at.get_indexer(e["v"])
    straight = shapely.linestrings(
        np.stack([np.column_stack([x[iu], y[iu]]), np.column_stack([x[iv], y[iv]])], axis=1))
    given = e["geometry"].to_numpy(dtype=object, copy=True)
    has = pd.notna(given)
    given[has & e["swap"].to_numpy()] = shapely.reverse(given[has & e["swap"].to_numpy()])
    geom = np.where(has, given, straight)
    edges = gpd.GeoDataFrame(
        e[["u", "v", "length", "highway", "name"]].astype({"length": float}), geometry=geom, crs=crs,
    ).to_crs(4326)
    return nodes, edges


def empty_features() -> gpd.GeoDataFrame:
    """A features table with the :class:`OSMData` columns and no rows."""
    cols: dict[str, list[str]] = {"osm_id": [], **{k: [] for k in FEATURE_TAGS}}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326).astype(
        {k: object for k in cols})


def feature_filter() -> dict[str, bool | str | list[str]]:
    """:data:`OSM_FEATURE_FILTER` and :data:`CONTEXT_FILTER` as one osmnx ``tags`` argument."""
    tags: dict[str, bool | str | list[str]] = dict(OSM_FEATURE_FILTER)
    for key, values in CONTEXT_FILTER.items():
        have = tags.get(key)
        if have is True or not isinstance(values, list):
            tags[key] = True
        else:
            tags[key] = sorted({*(have if isinstance(have, list) else []), *values})
    return tags


def _first(value: object) -> object:
    # a simplified graph joins ways into one edge and lists their tags
    return value[0] if isinstance(value, list) and value else value


def _is_walkable(tags: dict[str, str]) -> bool:
    highway = tags.get("highway")
    return (
        highway is not None
        and highway not in WALK_EXCLUDED_HIGHWAYS
        and tags.get("foot") != "no"
        and tags.get("access") != "private"
    )


@functools.cache
def _wanted() -> tuple[tuple[str, bool | frozenset[str]], ...]:
    return tuple((k, v if isinstance(v, bool) else frozenset(v)) for k, v in feature_filter().items())


def _is_feature(tags: dict[str, str]) -> bool:
    for key, wanted in _wanted():
        value = tags.get(key)
        if value is not None and (wanted is True or (isinstance(wanted, frozenset) and value in wanted)):
            return True
    return False


_KINDS = frozenset({"node", "way", "relation"})


@dataclass
class _Element:
    kind: str
    attrib: dict[str, str]
    tags: dict[str, str]
    refs: list[int] = field(default_factory=list)
    members: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.attrib["id"])


@dataclass
class _Split:
    walk_path: Path
    feature_path: Path
    walk_ways: int = 0
    cut_ways: int = 0
    newest: str | None = None


@contextmanager
def _open_binary(path: Path) -> Iterator[IO[bytes]]:
    suffix = path.suffix.lower()
    f: IO[bytes]
    if suffix == ".bz2":
        f = bz2.open(path, "rb")
    elif suffix == ".gz":
        f = cast(IO[bytes], gzip.open(path, "rb"))
    else:
        f = path.open("rb")
    with f:
        yield f


def _elements(path: Path, split: _Split) -> Iterator[_Element]:
    """Stream the nodes, ways and relations of an OSM XML file, one at a time.

    expat's callbacks build no element tree, which makes this several times
    faster than ``ElementTree.iterparse`` on the millions of ``<nd>`` and
    ``<tag>`` children of a city extract; memory holds one chunk at a time.
    """
    done: list[_Element] = []
    current: _Element | None = None
    root: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal current
        if not root:
            root.append(name)
            if name != "osm":
                msg = (f"{path}: the XML root is <{name}>, not <osm>; "
                       "give an OpenStreetMap .osm or .osm.bz2 file")
                raise InputError(msg)
        elif name in _KINDS:
            current = _Element(name, attrs, {})
            stamp = attrs.get("timestamp")
            if stamp and (split.newest is None or stamp > split.newest):
                split.newest = stamp
        elif current is None:
            if name == "meta" and split.newest is None:
                split.newest = attrs.get("osm_base") or None
        elif name == "nd":
            current.refs.append(int(attrs["ref"]))
        elif name == "tag":
            current.tags[attrs["k"]] = attrs["v"]
        elif name == "member":
            current.members.append((attrs["type"], int(attrs["ref"]), attrs.get("role", "")))

    def end(name: str) -> None:
        nonlocal current
        if current is not None and name == current.kind:
            done.append(current)
            current = None

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        with _open_binary(path) as f:
            while chunk := f.read(1 << 20):
                parser.Parse(chunk, False)
                yield from done
                done.clear()
            parser.Parse(b"", True)
            yield from done
    except InputError:
        raise
    except expat.ExpatError as e:
        msg = f"{path}: not valid OSM XML ({e}); give an .osm or .osm.bz2 file"
        raise InputError(msg) from None
    except (OSError, EOFError, KeyError, ValueError) as e:
        # a corrupt archive, or a node/way without its id, ref or tag key
        msg = (f"{path}: cannot be read as OSM XML ({type(e).__name__}: {e}); "
               "check that the file is complete and not corrupt")
        raise InputError(msg) from None


def _split(path: Path, folder: Path) -> _Split:
    """Write the walkable ways and the wanted features of ``path`` to two small files."""
    split = _Split(walk_path=folder / "walk.osm", feature_path=folder / "features.osm")

    # First pass: which nodes and ways the two outputs need.
    walk_refs: set[int] = set()
    feature_refs: set[int] = set()
    member_ways: set[int] = set()
    for el in _elements(path, split):
        if el.kind == "way":
            if _is_walkable(el.tags):
                walk_refs.update(el.refs)
            if _is_feature(el.tags):
                feature_refs.update(el.refs)
        elif el.kind == "relation" and _is_feature(el.tags):
            for kind, ref, _ in el.members:
                (member_ways if kind == "way" else feature_refs).add(ref)
    if member_ways:
        # a relation's outline ways come before it in the file, so a second look
        for el in _elements(path, split):
            if el.kind == "way" and el.id in member_ways:
                feature_refs.update(el.refs)

    # Last pass: write them out.
    present: set[int] = set()
    walk_ways: list[_Element] = []
    with ExitStack() as stack:
        walk = stack.enter_context(split.walk_path.open("w", encoding="utf-8"))
        feats = stack.enter_context(split.feature_path.open("w", encoding="utf-8"))
        for out in (walk, feats):
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                      '<osm version="0.6" generator="siteplanner">\n')
        for el in _elements(path, split):
            if el.kind == "node":
                if el.id in walk_refs:
                    present.add(el.id)
                    _write(walk, el)
                if el.id in feature_refs or _is_feature(el.tags):
                    _write(feats, el)
            elif el.kind == "way":
                if _is_walkable(el.tags):
                    walk_ways.append(el)
                if el.id in member_ways or _is_feature(el.tags):
                    _write(feats, el)
            elif _is_feature(el.tags):
                _write(feats, el)
        # ways are written once every node is known, so file order does not matter
        next_id = -1
        for way in walk_ways:
            runs = _present_runs(way.refs, present)
            split.cut_ways += not (len(runs) == 1 and len(runs[0]) == len(way.refs))
            for i, run in enumerate(runs):
                # a way cut by the extract's edge becomes one way per stretch inside
                piece_id = way.id if i == 0 else next_id
                next_id -= i > 0
                _write(walk, _Element("way", {"id": str(piece_id)}, way.tags, run))
                split.walk_ways += 1
        for out in (walk, feats):
            out.write("</osm>\n")
    return split


def _present_runs(refs: list[int], present: set[int]) -> list[list[int]]:
    """The stretches of a way's node list whose nodes are all in the file."""
    runs: list[list[int]] = [[]]
    for ref in refs:
        if ref in present:
            runs[-1].append(ref)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if len(r) >= 2]


def _write(out: TextIO, el: _Element) -> None:
    keep = ("id", "lat", "lon") if el.kind == "node" else ("id",)
    attrs = " ".join(f"{k}={quoteattr(el.attrib[k])}" for k in keep if k in el.attrib)
    body = "".join(f'<nd ref="{r}"/>' for r in el.refs)
    body += "".join(f"<member type={quoteattr(t)} ref=\"{r}\" role={quoteattr(role)}/>"
                    for t, r, role in el.members)
    body += "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in el.tags.items())
    out.write(f"<{el.kind} {attrs}>{body}</{el.kind}>\n")
