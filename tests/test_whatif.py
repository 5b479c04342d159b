# ruff: noqa: F811  (the browser fixture is imported from test_browser and requested by name)
"""The what-if: one ranking path in Python (rescore.py) and its mirror in map.html's JavaScript.

The browser tests open the demo's map in headless Chromium, offline, and check
that the page lists exactly what the CLI chooses for the same weights.
"""

from __future__ import annotations

import base64
import json
import warnings
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
from _tiled import tiled_result
from conftest import STUDY
from test_browser import CHROMIUM, _outside_requests, browser  # noqa: F401  (browser: the fixture)
from test_map import SCRIPT_END, TICKS, XSS, hostile_result, whatif_doc

from siteplanner._errors import InputError
from siteplanner.maps import write_map
from siteplanner.model import score
from siteplanner.rescore import _factors, rank_inputs, rescore
from siteplanner.selection import select_top

SCENARIOS = [
    {"foot_traffic": 0.1, "transit": 0.5},
    {"commercial": 0.6, "competition": 0.05},
    {"cannibalization": 0.4, "foot_traffic": 0.2, "transit": 0.1},
]

needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="headless Chromium not found: apt-get install chromium")


def _hash(weights: dict[str, float]) -> str:
    return "#weights=" + ",".join(f"{k}:{v}" for k, v in weights.items())


def _old_path(result, weights):
    """Scoring and selection as the pipeline's own stages do them (model.score + select_top)."""
    study = result.study
    crit = {n: replace(c, weight=weights.get(n, c.weight)) for n, c in study.criteria.items()}
    cands = result.candidates
    table = cands[["site_id", "geometry"]].join(cands[list(crit)]).join(score(cands[list(crit)], crit))
    sel = study.selection
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ranked = select_top(gpd.GeoDataFrame(table, geometry="geometry", crs=cands.crs),
                            result.layers.own_branches, k=sel.top_k, min_spacing_m=sel.min_spacing_m,
                            min_distance_to_own_m=sel.min_distance_to_own_m)
    return ranked[ranked["rank"].notna()].sort_values("rank")


def test_rescore_with_the_study_weights_gives_the_run_back(demo_result):
    again = demo_result.rescore()
    assert list(again["site_id"]) == list(demo_result.selected["site_id"])
    assert (again["score"].to_numpy() == demo_result.selected["score"].to_numpy()).all()
    assert list(again["previous_rank"]) == list(range(1, len(again) + 1))


@pytest.mark.parametrize("weights", SCENARIOS)
def test_rescore_chooses_what_scoring_and_select_top_choose(demo_result, weights):
    new = demo_result.rescore(weights)
    old = _old_path(demo_result, weights)
    assert list(new["site_id"]) == list(old["site_id"])
    assert (new["score"].to_numpy() == old["score"].to_numpy()).all()
    parts = new[[f"{n}_contribution" for n in demo_result.study.criteria]].sum(axis=1)
    assert (parts - new["score"]).abs().max() < 1e-12


def test_rescore_says_which_weights_it_cannot_use(demo_result):
    with pytest.raises(InputError, match="unknown criteria"):
        demo_result.rescore(parking=0.3)
    with pytest.raises(InputError, match="at least one > 0"):
        demo_result.rescore({n: 0.0 for n in demo_result.study.criteria})
    joint = replace(demo_result, study=replace(
        demo_result.study, selection=replace(demo_result.study.selection, method="pmedian")))
    with pytest.raises(InputError, match="run rank again"):
        joint.rescore(transit=0.4)


def test_the_report_sensitivity_is_the_same_ranking_path(demo_result):
    sens = demo_result.sensitivity
    base = list(demo_result.selected["site_id"])
    for row in sens.scenarios.to_dict("records"):
        weights = {row["criterion"]: row["weight"]}
        chosen = list(_old_path(demo_result, weights)["site_id"])
        assert row["kept"] == len(set(chosen) & set(base))
        assert row["entered"] == [s for s in chosen if s not in base]


def test_a_joint_method_run_sends_the_reader_to_the_cli(demo_result, tmp_path):
    study = demo_result.study
    joint = replace(demo_result, study=replace(study, selection=replace(study.selection,
                                                                       method="coverage")))
    write_map(joint, tmp_path / "map.html")
    html = (tmp_path / "map.html").read_text(encoding="utf-8")
    assert whatif_doc(html)["live"] is False
    assert "re-ranking it with other weights needs the CLI" in html
    assert "--select coverage" in html


def _listed(page) -> list[str]:
    return page.js("Array.from(document.querySelectorAll('#whatif-ranking li'))"
                   ".map(l => l.getAttribute('data-site-id'))")


def _cli_top(runner, tmp: Path, weights: dict[str, float]) -> list[str]:
    from siteplanner.cli import app

    sets = [a for k, v in weights.items() for a in ("--set", f"criteria.{k}.weight={v}")]
    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(tmp), "--no-report", *sets])
    assert res.exit_code == 0, res.output
    return list(pd.read_csv(tmp / "ranked_sites.csv", dtype={"site_id": str})["site_id"])


@needs_chromium
def test_the_page_lists_exactly_what_the_cli_chooses(browser, demo_out, demo_result, runner,
                                                     tmp_path):
    page = browser.new_page()
    try:
        page.open(demo_out / "map.html")
        assert _listed(page) == list(demo_result.selected["site_id"])
        for i, weights in enumerate(SCENARIOS):
            cli = _cli_top(runner, tmp_path / f"s{i}", weights)
            assert cli != list(demo_result.selected["site_id"]), "a scenario that changes nothing"
            page.js(f"location.hash = {json.dumps(_hash(weights))}")
            page.pump(0.3)
            assert _listed(page) == cli, weights
            markers = page.js("Array.from(document.querySelectorAll('.site-marker'))"
                              ".map(e => e.textContent)")
            assert markers == [str(r) for r in range(1, len(cli) + 1)]
        # a scenario link opens on its scenario
        page.send("Page.navigate", url=(demo_out / "map.html").resolve().as_uri() + _hash(SCENARIOS[0]))
        page.pump(1.5)
        assert _listed(page) == _cli_top(runner, tmp_path / "s0", SCENARIOS[0])
        assert page.errors == [] and _outside_requests(page) == []
    finally:
        page.close()


@needs_chromium
def test_moving_a_slider_reranks_and_writes_the_scenario_into_the_address(browser, demo_out,
                                                                          demo_result):
    page = browser.new_page()
    try:
        page.open(demo_out / "map.html")
        before = _listed(page)
        page.js("""(() => { const s = document.querySelector('input[data-criterion="transit"]');
                   s.value = '0.7'; s.dispatchEvent(new Event('input')); })()""")
        page.pump(0.3)
        after = _listed(page)
        assert after != before
        assert after == list(demo_result.rescore(transit=0.7)["site_id"])
        assert "transit:0.7" in page.js("location.hash")
        moves = page.js("Array.from(document.querySelectorAll('#whatif-ranking .wi-move'))"
                        ".map(e => e.textContent)")
        assert any(m == "new" or m.startswith(("▲", "▼")) for m in moves)
        assert "criteria.transit.weight=0.7" in page.js("document.getElementById('sp-cli').textContent")
        page.js("document.getElementById('sp-reset').click()")
        page.pump(0.2)
        assert _listed(page) == before and "weights=" not in page.js("location.hash")
        assert page.js("window.spWhatif.runs") >= 3
        assert page.errors == [] and _outside_requests(page) == []
    finally:
        page.close()


@needs_chromium
def test_numbered_markers_do_not_hide_each_other_at_the_opening_zoom(browser, demo_out):
    page = browser.new_page()
    try:
        page.open(demo_out / "map.html")
        boxes = page.js("Array.from(document.querySelectorAll('.site-marker')).map(e => {"
                        " const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })")
        assert len(boxes) >= 2
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlap = min(a[2], b[2]) - max(a[0], b[0]) > 1 and min(a[3], b[3]) - max(a[1], b[1]) > 1
                assert not overlap, (a, b)
    finally:
        page.close()


@needs_chromium
def test_hostile_names_stay_text_in_the_whatif_list_and_popups(browser, demo_result, tmp_path):
    path = tmp_path / "xss.html"
    write_map(hostile_result(demo_result), path)
    page = browser.new_page()
    try:
        page.open(path)
        first = page.js("document.querySelector('#whatif-ranking li')")
        assert first is not None
        assert page.js("document.querySelector('#whatif-ranking li').getAttribute('data-site-id')") \
            == SCRIPT_END
        assert SCRIPT_END in page.js("document.getElementById('whatif-ranking').innerText")
        # open the popups of the study's sites and of a site a scenario brings in
        page.js("document.querySelectorAll('#whatif-ranking li').forEach(l => l.click())")
        page.js(f"location.hash = {json.dumps(_hash(SCENARIOS[0]))}")
        page.pump(0.3)
        page.js("document.querySelectorAll('#whatif-ranking li').forEach(l => l.click())")
        page.js("""(() => { const m = window[Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))];
                   m.eachLayer(l => { if (l.getTooltip && l.getTooltip()) l.openTooltip(); }); })()""")
        page.pump(0.3)
        text = page.js("document.documentElement.innerText")
        assert XSS in text and TICKS in text
        assert page.js("document.querySelectorAll('img[src=\"x\"]').length") == 0
        assert page.dialogs == [] and page.errors == []
        assert _outside_requests(page) == []
    finally:
        page.close()


@pytest.fixture(scope="module")
def big_map(demo_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "map.html"
    big = tiled_result(demo_result, 100_000)
    write_map(big, path)
    return big, path


def test_a_100k_candidate_study_gives_a_map_under_5_mb(big_map):
    big, path = big_map
    assert len(big.candidates) > 95_000
    assert path.stat().st_size < 5_000_000
    doc = whatif_doc(path.read_text(encoding="utf-8"))
    assert doc["n"] == len(big.candidates) and doc["agg"] is not None


@needs_chromium
def test_a_100k_candidate_map_renders_with_parents_then_full_cells(browser, big_map):
    big, path = big_map
    page = browser.new_page()
    try:
        page.open(path)
        page.pump(2.0)
        assert page.errors == []
        assert page.js("window.spWhatif.runs") >= 1
        assert _listed(page) == list(big.selected["site_id"])
        assert page.js("document.querySelectorAll('.leaflet-overlay-pane canvas').length") >= 1
        cells = page.js("window.spWhatif.cells")
        assert cells["aggregated"] and 0 < cells["drawn"] < len(big.candidates) / 20
        zoom = whatif_doc(path.read_text(encoding="utf-8"))["agg"]["zoom"]
        page.js(f"(() => {{ const m = window[Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))];"
                f" m.setView(m.getCenter(), {zoom}, {{animate: false}}); }})()")
        page.pump(1.0)
        cells = page.js("window.spWhatif.cells")
        assert not cells["aggregated"] and 0 < cells["drawn"] < len(big.candidates)
        # every candidate's id and position, as the page rebuilds them, are the Python decoder's
        ids, cm = decode_positions(whatif_doc(path.read_text(encoding="utf-8")))
        assert page.js("window.spWhatif.ids.join(',')") == ",".join(ids)
        assert page.js("Array.from(window.spWhatif.X).join(',')") == ",".join(map(str, cm[:, 0]))
        assert page.js("Array.from(window.spWhatif.Y).join(',')") == ",".join(map(str, cm[:, 1]))
        assert page.errors == [] and _outside_requests(page) == []
    finally:
        page.close()


# ---- the compact columns of a large study, decoded as whatif.js decodes them
def _arr(s: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<"))


def decode_positions(doc: dict) -> tuple[list[str], np.ndarray]:
    """The page's ids and whole-centimetre positions (rows in id order), as whatif.js rebuilds them."""
    fam = doc["ids"]["fam"]
    masks = (_arr(fam["masks"][0], "u4").astype(np.uint64) << np.uint64(32)) | _arr(fam["masks"][1], "u4")
    bits = (masks[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    parent, digit = np.nonzero(bits)  # row order: parents in order, each one's digits ascending
    parents = ((_arr(fam["parents"][0], "u4").astype(np.uint64) << np.uint64(32))
               | _arr(fam["parents"][1], "u4"))
    shift = np.uint64(fam["shift"])
    v = ((parents[parent] & ~(np.uint64(63) << shift) & ~(np.uint64(15) << np.uint64(52)))
         | (digit.astype(np.uint64) << shift) | (np.uint64(fam["res"]) << np.uint64(52)))
    rel, agg = doc["rel"], doc["agg"]
    cm = np.column_stack([
        _arr(agg[a], "i4")[parent].astype(np.int64) + np.asarray(rel["t" + a], dtype=np.int64)[digit]
        + _arr(rel[a], "i1").astype(np.int64) * rel["unit"] for a in ("x", "y")])
    return [format(int(x), "x") for x in v], cm


def decode_criteria(doc: dict) -> np.ndarray:
    """The page's normalised criteria (rows in id order x criteria)."""
    cols = []
    for col in doc["crit"]:
        if col["t"] == "u16":
            cols.append(_arr(col["v"], "u2") / 65535)
        elif col["t"] == "d8":
            cols.append(_arr(col["d"], "f8")[_arr(col["v"], "u1")])
        else:
            x = _arr(col["v"], "f8")
            cols.append((x - x.min()) / (x.max() - x.min()))
    return np.column_stack(cols)


def test_a_large_study_sends_every_h3_id_exactly_as_parents_and_child_masks(big_map):
    big, path = big_map
    doc = whatif_doc(path.read_text(encoding="utf-8"))
    ids, _ = decode_positions(doc)
    assert ids == sorted(big.candidates["site_id"].astype(str))
    res = h3.get_resolution(ids[0])
    parents = {format(int(p), "x") for p in
               (_arr(doc["ids"]["fam"]["parents"][0], "u4").astype(np.uint64) << np.uint64(32))
               | _arr(doc["ids"]["fam"]["parents"][1], "u4")}
    assert parents == {h3.cell_to_parent(s, res - 2) for s in ids}
    # about 16 bytes a parent, where full ids were 8 bytes a candidate
    assert len(json.dumps(doc["ids"])) < 0.1 * 8 * len(ids) * 4 / 3


def test_large_study_positions_are_within_half_their_unit_and_the_spacing_test_is_exact(big_map):
    big, path = big_map
    doc = whatif_doc(path.read_text(encoding="utf-8"))
    ids, cm = decode_positions(doc)
    cands = big.candidates.set_index(big.candidates["site_id"].astype(str)).loc[ids]
    xy = np.column_stack([cands.geometry.x, cands.geometry.y])
    origin = np.floor(xy.min(axis=0))
    unit = doc["rel"]["unit"]
    assert np.abs(cm - (xy - origin) * 100).max() <= unit / 2 + 1e-6
    # the page's test (whole centimetres, then the exceptions) is the KD-tree's on every pair near it
    r, n, flips = doc["spacing"], len(ids), set(doc["flip"])
    from scipy.spatial import cKDTree
    pairs = cKDTree(xy).query_pairs(r + 1.0, output_type="ndarray")
    a, b = pairs.min(axis=1), pairs.max(axis=1)
    exact = np.hypot(*(xy[a] - xy[b]).T) <= r
    d = cm[a] - cm[b]
    page = (d[:, 0] ** 2 + d[:, 1] ** 2) <= doc["spacing_cm2"]
    page ^= np.isin(a.astype(np.int64) * n + b, list(flips))
    assert len(pairs) > 1000 and (page == exact).all()


@pytest.mark.parametrize("weights", [{}, *SCENARIOS])
def test_large_study_criteria_rank_as_rescore_does_to_within_their_rounding(big_map, weights):
    big, path = big_map
    doc = whatif_doc(path.read_text(encoding="utf-8"))
    assert doc["rounded"] and all(c["t"] in ("u16", "d8") for c in doc["crit"])
    study = big.study
    inputs = rank_inputs(big.candidates, big.layers.own_branches, study.criteria, study.selection)
    w = {n: study.criteria[n].weight for n in inputs.names} | weights
    page_norm = np.empty_like(inputs.normalised)
    page_norm[np.argsort(inputs.tie_order, kind="stable")] = decode_criteria(doc)
    exact, page = rescore(inputs, w), rescore(inputs, w, normalised=page_norm)
    assert np.abs(page_norm - inputs.normalised).max() <= 0.5 / 65535 + 1e-12
    bound = sum(abs(f) for f in _factors(inputs, w)) / 65535
    for a, b in zip(exact.chosen, page.chosen, strict=True):  # only near-ties may swap
        assert a == b or abs(exact.scores[a] - exact.scores[b]) <= bound
    assert list(exact.site_ids) == list(big.rescore(w)["site_id"])
