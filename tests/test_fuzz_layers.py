"""Fuzz the user-layer readers with random CSV and GeoJSON files.

Cells and coordinates mix ordinary values with NaN, infinities, huge numbers,
empty cells, unicode, Rich markup (``[/x]``), ANSI escapes and other
separators. Every file either reads into a GeoDataFrame in EPSG:4326 with
finite coordinates, or raises a :class:`SitePlannerError` whose message is one
line; nothing else escapes. ``SITEPLANNER_FUZZ_EXAMPLES`` sets the examples per
property (200 by default; ``make fuzz`` runs 10,000).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siteplanner._errors import SitePlannerError
from siteplanner.config import LAYER_KINDS, LayerFile
from siteplanner.sources.files import read_layer_file

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=int(os.environ.get("SITEPLANNER_FUZZ_EXAMPLES", "200")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize="SITEPLANNER_FUZZ_EXAMPLES" not in os.environ)

HOSTILE = ["[/x]", "[bold]x[/]", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "é", "東京", "",
           " ", "nan", "NaN", "inf", "-inf", "1e999", "-1e309", "1e308", "0x10", "24,94", "\n",
           '"', "\u202e", "\x00"]

numbers = st.one_of(
    st.floats(-180, 180), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf"), -float("inf")]))
cells = st.one_of(numbers.map(repr), st.sampled_from(HOSTILE), st.text(max_size=8))
column_names = st.one_of(st.sampled_from(["lon", "lat", "count", "name", "site_id"]),
                         st.sampled_from(HOSTILE), st.text(min_size=1, max_size=6))


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    cols = draw(st.lists(column_names, min_size=0, max_size=5))
    if draw(st.booleans()):
        cols = ["lon", "lat", *cols]
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    rows = draw(st.lists(st.lists(cells, min_size=len(cols), max_size=len(cols) + 1),
                         max_size=5))

    def line(values: list[str]) -> str:
        return sep.join(f'"{v}"' if sep in v and draw(st.booleans()) else v for v in values)

    body = "\n".join(line(r) for r in [cols, *rows])
    return body + draw(st.sampled_from(["", "\n", "\r\n"]))


positions = st.lists(numbers, min_size=2, max_size=3)


@st.composite
def geometries(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["Point", "LineString", "Polygon", "MultiPoint", "Bogus", None]))
    if kind is None:
        return None
    if kind in ("Point", "Bogus"):
        coords: Any = draw(positions)
    elif kind in ("LineString", "MultiPoint"):
        coords = draw(st.lists(positions, min_size=0, max_size=4))
    else:
        ring = draw(st.lists(positions, min_size=0, max_size=5))
        if ring and draw(st.booleans()):
            ring = [*ring, ring[0]]
        coords = [ring]
    return {"type": kind, "coordinates": coords}


@st.composite
def geojson_texts(draw: st.DrawFn) -> str:
    props = st.dictionaries(column_names, st.one_of(numbers, st.sampled_from(HOSTILE)),
                            max_size=3)
    features = draw(st.lists(st.fixed_dictionaries(
        {"type": st.just("Feature"), "properties": props, "geometry": geometries()}),
        max_size=4))
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if draw(st.booleans()):
        doc["crs"] = {"type": "name", "properties": {"name": draw(st.sampled_from(
            ["EPSG:4326", "EPSG:3857", "urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:99999", "[/x]"]))}}
    text = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # a truncated download
    return text


def _read(text: str, suffix: str, kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"layer{suffix}"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gdf = read_layer_file(LayerFile(kind=kind, path=path))
        except SitePlannerError as e:
            message = str(e)
            assert message and "\n" not in message and "\r" not in message, message
            return
    assert len(gdf) > 0 and gdf.crs is not None and gdf.crs.to_epsg() == 4326
    assert np.isfinite(shapely.get_coordinates(gdf.geometry.values)).all()


@FUZZ
@given(text=csv_texts(), kind=st.sampled_from(LAYER_KINDS))
def test_every_csv_reads_or_gives_one_clean_line(text: str, kind: str) -> None:
    _read(text, ".csv", kind)


@FUZZ
@given(text=geojson_texts(), kind=st.sampled_from(LAYER_KINDS))
def test_every_geojson_reads_or_gives_one_clean_line(text: str, kind: str) -> None:
    _read(text, ".geojson", kind)
