"""A real ``.osm.pbf`` made of N translated copies of a real extract (benchmarks only).

``bench_national.py --only end_to_end_tiled`` needs a national-size place that is a
*file*, so that reading it can be timed as a user's run reads it. This writes one:

- the copies sit side by side in a grid of ``rows x cols`` (``rows = isqrt(N)``, as
  ``bench_national.tiled_layers`` lays its tiles), each shifted in lon/lat by a whole
  step: the bounds of the source's street nodes plus a 40 m gap. Copy 0 is the source
  itself. Andorra x3 is one row (its latitude band unchanged); Helsinki x156 is 12 rows,
  about 0.2 degrees (20 km) north of the source, where a degree of longitude is 0.55 %
  shorter, so the northern copies' east-west lengths in metres shrink by that much;
- every node, way and relation id is offset by ``copy x step`` (the step a power of ten
  above the source's largest id of that type), and ways and relations refer to their own
  copy's members, so the copies never collide and the file stays sorted by type and id;
- adjacent copies are stitched into one walking network (siteplanner snaps candidates to
  the largest connected piece, so islands would distort the run): for each fifth of every
  shared side, the closest pair of facing nodes of the two copies' main walking networks
  is joined by a ``highway=footway`` way, if within ``MAX_LINK_M``; a side's overall
  closest pair is always joined, so the whole grid is one network.

Run ``python benchmarks/tile_pbf.py SOURCE N OUT`` to write one file and print a JSON
summary; ``tiled_pbf`` caches the file by the source's SHA-256 and N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import osmium
from osmium.osm import mutable
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["Source", "grid", "read_source", "tile_pbf", "tiled_pbf"]

GAP_M = 40.0  # between copies, as bench_national.tiled_layers
LINKS_PER_SIDE = 5
MAX_LINK_M = 1000.0
#: Ways pyrosm's walking network leaves out (its ``walking`` filter), so no link ends on one.
NOT_WALKABLE = frozenset({"motorway", "motorway_link", "cycleway", "proposed", "construction",
                          "abandoned", "platform", "raceway", "bus_guideway", "escape", "bus_stop",
                          "elevator", "razed", "rest_area", "services", "corridor", "no"})
M_PER_DEG_LAT = 111_320.0  # metres a degree of latitude (and of longitude at the equator)


@dataclass
class Source:
    """One extract in memory: nodes as arrays, ways and relations as Python lists."""

    node_id: np.ndarray
    lonlat: np.ndarray  # (n, 2) degrees
    node_tags: dict[int, dict[str, str]]  # position -> tags, tagged nodes only
    ways: list[tuple[int, list[int], dict[str, str]]]
    relations: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]]
    walk_main: np.ndarray  # positions of the nodes of the largest walking piece
    bounds: tuple[float, float, float, float]  # w, s, e, n of the street nodes


def _id_step(ids: list[int] | np.ndarray) -> int:
    top = int(max(ids, default=0))
    return 10 ** max(1, math.ceil(math.log10(top + 1)))


def read_source(path: Path) -> Source:
    """Read every node, way and relation of ``path``, and its main walking network."""
    ids: list[int] = []
    coords: list[tuple[float, float]] = []
    node_tags: dict[int, dict[str, str]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    rels: list[tuple[int, list[tuple[str, int, str]], dict[str, str]]] = []
    for obj in osmium.FileProcessor(str(path)):
        if isinstance(obj, osmium.osm.Node):
            if len(obj.tags):
                node_tags[len(ids)] = {t.k: t.v for t in obj.tags}
            ids.append(obj.id)
            coords.append((obj.location.lon, obj.location.lat))
        elif isinstance(obj, osmium.osm.Way):
            ways.append((obj.id, [n.ref for n in obj.nodes], {t.k: t.v for t in obj.tags}))
        elif isinstance(obj, osmium.osm.Relation):
            rels.append((obj.id, [(m.type, m.ref, m.role) for m in obj.members],
                         {t.k: t.v for t in obj.tags}))
    node_id = np.asarray(ids, dtype=np.int64)
    lonlat = np.asarray(coords, dtype=float)
    main, bounds = _walk_main(node_id, lonlat, ways)
    return Source(node_id, lonlat, node_tags, ways, rels, main, bounds)


def _walk_main(node_id: np.ndarray, lonlat: np.ndarray,
               ways: list[tuple[int, list[int], dict[str, str]]]) -> tuple[np.ndarray, Any]:
    """The positions of the largest walking piece's nodes, and every street node's bounds."""
    order = np.argsort(node_id)
    u: list[int] = []
    v: list[int] = []
    street: list[int] = []
    for _, refs, tags in ways:
        if "highway" not in tags:
            continue
        street.extend(refs)
        if tags["highway"] in NOT_WALKABLE or tags.get("foot") == "no" or tags.get("area") == "yes":
            continue
        u.extend(refs[:-1])
        v.extend(refs[1:])

    def positions(refs: list[int]) -> np.ndarray:
        at = np.searchsorted(node_id[order], refs)
        at = np.clip(at, 0, len(order) - 1)
        found = node_id[order][at] == np.asarray(refs, dtype=np.int64)
        return np.where(found, order[at], -1)

    pu, pv, ps = positions(u), positions(v), positions(street)
    ok = (pu >= 0) & (pv >= 0)
    n = len(node_id)
    graph = sparse.coo_matrix((np.ones(int(ok.sum())), (pu[ok], pv[ok])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    walk_nodes = np.unique(np.r_[pu[ok], pv[ok]])
    largest = np.bincount(label[walk_nodes]).argmax()
    main = walk_nodes[label[walk_nodes] == largest]
    st = lonlat[ps[ps >= 0]]
    return main, (*st.min(axis=0), *st.max(axis=0))


def grid(copies: int) -> tuple[int, int]:
    """Rows and columns for ``copies`` tiles, as ``bench_national.grid_for`` lays them."""
    rows = max(1, math.isqrt(copies))
    return rows, math.ceil(copies / rows)


def _steps(src: Source) -> tuple[float, float]:
    w, s, e, n = src.bounds
    mid = math.radians((s + n) / 2)
    return (e - w + GAP_M / (M_PER_DEG_LAT * math.cos(mid)), n - s + GAP_M / M_PER_DEG_LAT)


def _metres(lonlat: np.ndarray, lat0: float) -> np.ndarray:
    return np.column_stack([lonlat[:, 0] * M_PER_DEG_LAT * math.cos(math.radians(lat0)),
                            lonlat[:, 1] * M_PER_DEG_LAT])


def _side_links(src: Source, shift_a: np.ndarray, shift_b: np.ndarray,
                axis: int) -> list[tuple[int, int, float]]:
    """Footway ends (positions in copy a, in copy b, metres) across one shared side.

    ``axis`` 0: b lies east of a; 1: b lies north of a.
    """
    lat0 = (src.bounds[1] + src.bounds[3]) / 2
    main = src.walk_main
    a_xy = _metres(src.lonlat[main] + shift_a, lat0)
    b_xy = _metres(src.lonlat[main] + shift_b, lat0)
    dist, at = cKDTree(b_xy).query(a_xy, workers=-1)
    lo, hi = a_xy[:, 1 - axis].min(), a_xy[:, 1 - axis].max()
    band = np.minimum(((a_xy[:, 1 - axis] - lo) / max(hi - lo, 1e-9) * LINKS_PER_SIDE).astype(int),
                      LINKS_PER_SIDE - 1)
    best = int(np.argmin(dist))
    picks = {best}
    for k in range(LINKS_PER_SIDE):
        members = np.flatnonzero(band == k)
        if len(members):
            i = int(members[np.argmin(dist[members])])
            if dist[i] <= MAX_LINK_M:
                picks.add(i)
    return [(int(main[i]), int(main[at[i]]), float(dist[i])) for i in sorted(picks)]


def tile_pbf(source: Path, copies: int, out: Path) -> dict[str, Any]:
    """Write ``copies`` translated copies of ``source`` to ``out``; returns a summary."""
    start = time.perf_counter()
    src = read_source(source)
    rows, cols = grid(copies)
    dx, dy = _steps(src)
    cells = [(i, j) for i in range(cols) for j in range(rows)][:copies]
    shifts = np.array([(i * dx, j * dy) for i, j in cells])
    n_step = _id_step(src.node_id)
    w_step = _id_step([w[0] for w in src.ways])
    r_step = _id_step([r[0] for r in src.relations])
    offset = {"n": n_step, "w": w_step, "r": r_step}
    where = {cell: t for t, cell in enumerate(cells)}
    links: list[tuple[int, int, int, int, float]] = []  # copy a, pos a, copy b, pos b, m
    for t, (i, j) in enumerate(cells):
        for axis, (ni, nj) in ((0, (i + 1, j)), (1, (i, j + 1))):
            other = where.get((ni, nj))
            if other is not None:
                links += [(t, a, other, b, m)
                          for a, b, m in _side_links(src, shifts[t], shifts[other], axis)]
    w, s, e, n = (src.lonlat.min(axis=0).tolist() + (src.lonlat.max(axis=0) + shifts.max(axis=0))
                  .tolist())
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(w, s), osmium.osm.Location(e, n)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part.osm.pbf")
    with osmium.SimpleWriter(str(tmp), header=header, overwrite=True) as writer:
        for t in range(copies):
            moved = src.lonlat + shifts[t]
            base = t * n_step
            for k, nid in enumerate(src.node_id.tolist()):
                writer.add_node(mutable.Node(location=(moved[k, 0], moved[k, 1]), id=nid + base,
                                             tags=src.node_tags.get(k, {})))
        for t in range(copies):
            nb, wb = t * n_step, t * w_step
            for wid, refs, tags in src.ways:
                writer.add_way(mutable.Way(id=wid + wb, nodes=[r + nb for r in refs], tags=tags))
        link_base = copies * w_step
        for k, (ta, a, tb, b, _) in enumerate(links):
            writer.add_way(mutable.Way(
                id=link_base + k + 1,
                nodes=[int(src.node_id[a]) + ta * n_step, int(src.node_id[b]) + tb * n_step],
                tags={"highway": "footway", "note": "tile_pbf link between copies"}))
        for t in range(copies):
            for rid, members, tags in src.relations:
                writer.add_relation(mutable.Relation(
                    id=rid + t * r_step, members=[(k, ref + t * offset[k], role)
                                                  for k, ref, role in members], tags=tags))
    tmp.replace(out)
    lengths = [m for *_, m in links]
    return {"source": source.name, "copies": copies, "grid": [rows, cols], "file": str(out),
            "mb": round(out.stat().st_size / 1e6, 2), "nodes": copies * len(src.node_id),
            "ways": copies * len(src.ways) + len(links), "relations": copies * len(src.relations),
            "links": len(links), "link_m_median": round(float(np.median(lengths)), 1) if links else None,
            "link_m_max": round(max(lengths), 1) if links else None,
            "lat_span_deg": round(float(shifts[:, 1].max()), 4),
            "tile_s": round(time.perf_counter() - start, 2)}


def tiled_pbf(source: Path, copies: int, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The tiled file in ``cache`` (written once per source content and N), and its summary."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    out = cache / f"{source.name.split('.')[0]}-x{copies}-{digest}.osm.pbf"
    meta = out.with_name(out.name + ".json")
    if out.exists() and meta.exists():
        return out, {**json.loads(meta.read_text()), "cached": True}
    summary = tile_pbf(source, copies, out)
    meta.write_text(json.dumps(summary))
    return out, {**summary, "cached": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("copies", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(json.dumps(tile_pbf(args.source, args.copies, args.out)))


if __name__ == "__main__":
    main()
