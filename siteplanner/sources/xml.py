"""Read an OpenStreetMap XML extract (``.osm``, ``.osm.bz2``, ``.osm.gz``) with osmnx.

osmnx's XML readers load the whole file twice over (an ElementTree of it, then
an Overpass-like JSON of it), and ``graph_from_xml`` makes an edge of every way
in the file, buildings included, and fails on clipped extracts whose ways
refer to nodes the file lacks. So the file is first streamed once or twice
(``iterparse``) into two small temporary XML files: one with only the walkable
highway ways, cut where they leave the extract, and the nodes they use; one
with only the elements :data:`OSM_FEATURE_FILTER` selects and what they are
built from. osmnx then reads those.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO, cast
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from siteplanner._errors import InputError
from siteplanner.sources._osm import (
    FEATURE_TAGS,
    OSM_FEATURE_FILTER,
    WALK_EXCLUDED_HIGHWAYS,
    OSMData,
    normalise_features,
)

__all__ = ["graph_tables", "read_osm_xml"]

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
    features = empty_features() if raw is None else normalise_features(
        raw.reset_index(), id_column="id")
    return OSMData(features=features, nodes=nodes, edges=edges, data_date=split.newest)


def graph_tables(graph: nx.MultiDiGraph) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Turn an unsimplified osmnx graph into the :class:`OSMData` node and edge tables.

    Each street segment appears once, whichever ways or directions osmnx
    made of it, with ``u < v`` and its geometry running from ``u`` to ``v``.
    """
    import osmnx as ox

    node_gdf, edge_gdf = ox.graph_to_gdfs(graph, fill_edge_geometry=True)
    nodes = node_gdf[["geometry"]].to_crs(4326)
    nodes.index = nodes.index.astype("int64").rename("id")
    e = edge_gdf.reset_index()
    u = e["u"].to_numpy(dtype=np.int64)
    v = e["v"].to_numpy(dtype=np.int64)
    swap = u > v
    geom = e.geometry.to_numpy()
    geom[swap] = shapely.reverse(geom[swap])
    edges = gpd.GeoDataFrame(
        {
            "u": np.where(swap, v, u),
            "v": np.where(swap, u, v),
            "length": e["length"].to_numpy(dtype=float),
            "highway": e["highway"].map(_first).to_numpy(dtype=object),
        },
        geometry=geom,
        crs=edge_gdf.crs,
    ).to_crs(4326)
    edges = edges[edges["u"] != edges["v"]]
    edges = edges.sort_values(["u", "v", "length"], kind="stable")
    edges = edges.drop_duplicates(subset=["u", "v"]).reset_index(drop=True)
    return nodes, edges


def empty_features() -> gpd.GeoDataFrame:
    """A features table with the :class:`OSMData` columns and no rows."""
    cols: dict[str, list[str]] = {"osm_id": [], **{k: [] for k in FEATURE_TAGS}}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=4326), crs=4326).astype(
        {k: object for k in cols})


def feature_filter() -> dict[str, bool | str | list[str]]:
    """:data:`OSM_FEATURE_FILTER` typed as osmnx's ``tags`` argument wants it."""
    return dict(OSM_FEATURE_FILTER)


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


def _is_feature(tags: dict[str, str]) -> bool:
    for key, wanted in OSM_FEATURE_FILTER.items():
        value = tags.get(key)
        if value is not None and (wanted is True or (isinstance(wanted, list) and value in wanted)):
            return True
    return False


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
    """Stream the nodes, ways and relations of an OSM XML file, one at a time."""
    try:
        with _open_binary(path) as f:
            events = ET.iterparse(f, events=("start", "end"))
            _, root = next(events)
            if root.tag != "osm":
                msg = (f"{path}: the XML root is <{root.tag}>, not <osm>; "
                       "give an OpenStreetMap .osm or .osm.bz2 file")
                raise InputError(msg)
            for event, elem in events:
                if event != "end":
                    continue
                if elem.tag in ("node", "way", "relation"):
                    stamp = elem.get("timestamp")
                    if stamp and (split.newest is None or stamp > split.newest):
                        split.newest = stamp
                    yield _Element(
                        kind=elem.tag,
                        attrib=dict(elem.attrib),
                        tags={str(t.get("k")): str(t.get("v")) for t in elem.iter("tag")},
                        refs=[int(str(nd.get("ref"))) for nd in elem.iter("nd")],
                        members=[(str(m.get("type")), int(str(m.get("ref"))), m.get("role", ""))
                                 for m in elem.iter("member")],
                    )
                    # drop what has been read so memory stays flat on big files
                    root.clear()
                elif elem.tag == "meta" and split.newest is None:
                    split.newest = elem.get("osm_base") or None
    except (ET.ParseError, StopIteration) as e:
        msg = f"{path}: not valid OSM XML ({e or 'empty file'}); give an .osm or .osm.bz2 file"
        raise InputError(msg) from None
    except (OSError, EOFError, UnicodeDecodeError) as e:
        msg = f"{path}: cannot be read ({e}); check that the file is complete and not corrupt"
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
