"""The study loader under random TOML trees: every input loads or gets one line, nothing else escapes.

The trees are biased towards the real sections and keys, so most examples
reach the schema's checks rather than stopping at "unknown section". The
default run takes 200 examples per property; ``make fuzz`` sets
``SITEPLANNER_FUZZ_EXAMPLES=10000``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siteplanner._errors import SitePlannerError
from siteplanner.config import (
    CRITERIA,
    LAYER_KINDS,
    CandidateSettings,
    FloorplanSettings,
    HuffSettings,
    ModelSettings,
    NetworkSettings,
    SelectionSettings,
    Study,
    load_study,
)

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("SITEPLANNER_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
WORKDIR = Path(tempfile.mkdtemp(prefix="siteplanner-fuzz-"))


def keys_of(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


SECTION_KEYS = {
    "study": ["name", "brand", "osm", "place", "bbox", "crs", "seed"],
    "candidates": keys_of(CandidateSettings),
    "selection": keys_of(SelectionSettings),
    "network": keys_of(NetworkSettings),
    "huff": ["lambda", *keys_of(HuffSettings)],
    "model": keys_of(ModelSettings),
    "floorplan": keys_of(FloorplanSettings),
}
#: Values that sit on the edges the schema guards: bounds, types, markup, control bytes.
EDGES = [0, 1, -1, 5, 11, 13, 14, 2**32, 2**63, 10**400, 0.0, 4.7, -0.0, 1e308, 1e-320,
         math.inf, -math.inf, math.nan, True, False, "", " ", "Nordea", "top", "coverage",
         "pmedian", "auto", "learned", "EPSG:3067", "EPSG:4326", "EPSG:99999", "x.pbf", "1/3",
         "[/x]", "\x1b[31mred", "a\nb", "\u2028", "\x00", "ÅÄÖ 漢字", "none", "x" * 300]

scalars = st.one_of(
    st.sampled_from(EDGES),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
names = st.text(max_size=8)


def table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys) | names, values, max_size=len(keys) + 1)


def brand_value() -> st.SearchStrategy[Any]:
    return st.sampled_from(["Nordea", ["Nordea", "Aktia"], [], "", [" "], 5]) | values


study_table = st.fixed_dictionaries({"brand": brand_value()}, optional={
    k: values for k in SECTION_KEYS["study"] if k != "brand"})
criteria = st.dictionaries(st.sampled_from([*CRITERIA, "parking"]) | names,
                           table(["weight", "radius_m", "direction"]) | values, max_size=6)
layers = st.dictionaries(st.sampled_from([*LAYER_KINDS, "roads"]) | names,
                         values | table(["path", "lon_column", "lat_column", "count_column",
                                         "name_column", "locations", "counter_column",
                                         "time_column"]), max_size=3)
ahp = st.dictionaries(st.sampled_from(list(CRITERIA)) | names,
                      st.dictionaries(st.sampled_from(list(CRITERIA)) | names, values, max_size=3)
                      | values, max_size=3)
documents = st.fixed_dictionaries({}, optional={
    "study": study_table | values,
    **{sec: table(keys) | values for sec, keys in SECTION_KEYS.items() if sec != "study"},
    "criteria": criteria | values,
    "layers": layers | values,
    "ahp": ahp | values,
    "bogus": values,
})


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(x)}"
                           for k, x in v.items()) + "}"


def to_toml(doc: dict[str, Any]) -> str:
    """A document as TOML text: plain top-level values first, then one [table] per section."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for sec, body in doc.items():
        if isinstance(body, dict):
            lines.append(f"[{json.dumps(sec)}]")
            lines += [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def loads_or_says_one_line(call: Any) -> Study | None:
    try:
        return call()  # type: ignore[no-any-return]
    except SitePlannerError as e:
        msg = str(e)
        assert msg.strip(), "an empty message"
        assert len(msg.splitlines()) == 1, msg
        return None


@FUZZ
@given(doc=documents, bom=st.booleans())
def test_any_study_file_loads_or_gets_one_line(doc, bom):
    path = WORKDIR / "study.toml"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + to_toml(doc).encode("utf-8", "surrogatepass"))
    study = loads_or_says_one_line(lambda: load_study(path))
    if study is not None:
        assert study.brand and all(b.strip() for b in study.brand)
        total = sum(c.weight for c in study.criteria.values())
        assert math.isfinite(total) and total > 0
        assert list(study.criteria) == list(CRITERIA)


@FUZZ
@given(doc=documents)
def test_any_parsed_document_loads_or_gets_one_line(doc):
    loads_or_says_one_line(lambda: Study.from_dict(doc, base_dir=WORKDIR))


set_keys = st.sampled_from([f"{sec}.{k}" for sec, keys in SECTION_KEYS.items() for k in keys]
                           + [f"criteria.{c}.weight" for c in CRITERIA]
                           + [f"criteria.{c}.radius_m" for c in CRITERIA]
                           + [f"layers.{k}" for k in LAYER_KINDS] + ["bogus", "a.b.c", "study"])
set_values = st.sampled_from(["0", "-1", "inf", "nan", "1e308", "true", "none", "5,10", "[5, 10]",
                              "", " ", "x", "[/x]", "\x1b[2J", "4.7", "2", "{a = 1}"]) \
    | st.text(max_size=10)


@FUZZ
@given(items=st.lists(st.tuples(set_keys | st.text(max_size=8), set_values), max_size=4),
       brand=st.none() | st.lists(st.text(max_size=6), max_size=2))
def test_any_command_line_override_applies_or_gets_one_line(items, brand):
    base = Study(brand=("Nordea",))
    sets = [f"{k}={v}" for k, v in items]
    loads_or_says_one_line(lambda: base.with_overrides(sets=sets, brand=brand))
