"""The leadership report: one self-contained HTML page that prints to A4.

The report renders a :class:`~siteplanner.record.RunRecord` and the run's
tables, from a live :class:`~siteplanner.pipeline.RankResult` or from a
finished run's folder (``run.json``, ``sites.gpkg``, ``ranked_sites.csv`` and
any ``floorplans/<site_id>/`` drawings), so ``siteplanner report OUT_DIR``
rebuilds it without running the pipeline. Nothing here scores, selects or
reads OSM data: every figure comes from the run. The page is the jinja2
template ``templates/report.html.j2`` with autoescaping, so every string from
data is escaped; charts are images inside the page (:mod:`siteplanner._charts`);
an SVG floor plan is shown through ``<img>``, where the browser runs none of
its scripts.
"""

from __future__ import annotations

import base64
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner import _charts
from siteplanner._display import (
    COMPETITOR_COLOUR,
    IMPACT_FIELDS,
    OWN_COLOUR,
    SITE_COLOUR,
    access_facts,
    criteria_of,
    format_value,
    signed,
)
from siteplanner._errors import InputError, OutputError
from siteplanner._fs import atomic_outputs, safe_component
from siteplanner.layers import LayerSource
from siteplanner.record import RunRecord
from siteplanner.stability import Sensitivity

__all__ = ["ReportInput", "build_report", "rebuild_report", "report_input", "write_report"]

log = logging.getLogger(__name__)

_CRITERION_WORDS = {
    "foot_traffic": "how many people walk past (pedestrian activity nearby)",
    "transit": "how well served the spot is by bus, tram, metro and rail stops",
    "commercial": "how many shops, cafés, offices and services are close by",
    "competition": "how many competitor banks are within reach (fewer is better)",
    "cannibalization": "how close the brand's own branches are (further is better)",
}
_DRIVER_WORDS = {"foot_traffic": "foot traffic", "transit": "transit access",
                 "commercial": "shops and services nearby"}
_SOURCE_LABELS = {"area": "study area", "streets": "streets", "transit": "transit stops",
                  "competitors": "competitor branches", "own_branches": "own branches",
                  "pois": "shops and services", "foot_traffic": "foot traffic",
                  "candidates": "candidate sites"}
_MODELS = {"npv": ("budgeted NPV model (total NPV within the capex budget, cannibalisation "
                   "between new sites counted pairwise)", "MaxNPV"),
           "coverage": ("maximal covering location model (MCLP)", "MaxCoverage"),
           "pmedian": ("p-median model", "PMedian"),
           "capture": ("maximum capture model (Huff rule)", "MaxCapture")}


@dataclass
class ReportInput:
    """What the report renders: the run's record, its layers, and where its floor plans are."""

    record: RunRecord
    scene: _charts.Scene
    floorplans_dir: Path | None = None
    criteria: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.criteria = dict(self.record.study.get("criteria") or {})

    @property
    def study(self) -> dict[str, Any]:
        return self.record.study

    @property
    def selection(self) -> dict[str, Any]:
        return dict(self.study.get("selection") or {})

    @property
    def method(self) -> str:
        return str(self.selection.get("method", "top"))

    @property
    def learned(self) -> bool:
        return (self.study.get("model") or {}).get("kind") == "learned"

    @property
    def sensitivity(self) -> Sensitivity | None:
        doc = self.record.figures.get("sensitivity")
        return Sensitivity.from_record(doc) if isinstance(doc, Mapping) else None

    @property
    def study_name(self) -> str:
        """The study's name, else its place or data file, as :attr:`Study.display_name` gives it."""
        s = self.study
        osm = Path(str(s["osm"])).name.split(".")[0].replace("_", " ").replace("-", " ") \
            if s.get("osm") else None
        return str(s.get("name") or s.get("place") or osm or "siteplanner study")

    @property
    def brand(self) -> str:
        return " / ".join(self.study.get("brand") or ()) or "the brand"


def report_input(source: Any, *, floorplans_dir: Path | None = None,
                 record: RunRecord | None = None) -> ReportInput:
    """Collect the report's inputs from a :class:`RankResult` or a run's output folder."""
    if isinstance(source, str | os.PathLike):
        return _from_outputs(Path(source))
    layers = source.layers
    scene = _charts.Scene(selected=source.selected, candidates=source.candidates,
                          own_branches=layers.own_branches, competitors=layers.competitors,
                          transit=layers.transit, streets=layers.streets, area=layers.area,
                          catchments=source.catchments)
    return ReportInput(record or RunRecord.from_result(source), scene, floorplans_dir)


def _from_outputs(out_dir: Path) -> ReportInput:
    gpkg = out_dir / "sites.gpkg"
    record = RunRecord.read(out_dir / "run.json")
    if not gpkg.is_file():
        msg = (f"{gpkg}: not found; give the output folder of a `siteplanner rank` run "
               "(it holds ranked_sites.csv, sites.gpkg and run.json)")
        raise InputError(msg)
    tables = _read_gpkg(gpkg)
    for needed in ("candidates", "selected"):
        if needed not in tables:
            msg = f"{gpkg}: layer {needed!r} is missing; rerun `siteplanner rank` to write it"
            raise InputError(msg)
    crs = record.crs
    cands = tables["candidates"].to_crs(crs)
    selected = cands[cands["rank"].notna()].sort_values("rank").copy()
    selected["rank"] = selected["rank"].astype(int)
    selected = _with_csv_columns(selected, out_dir / "ranked_sites.csv")
    cands = cands.set_index(cands["site_id"].astype(str), drop=False)
    selected = selected.set_index(selected["site_id"].astype(str), drop=False)
    cands["cell"] = _h3_cells(cands, crs)

    def layer(name: str, empty: bool = True) -> gpd.GeoDataFrame | None:
        g = tables.get(name)
        if g is None:
            return gpd.GeoDataFrame(geometry=[], crs=crs) if empty else None
        return g.to_crs(crs)

    scene = _charts.Scene(selected=selected, candidates=cands, own_branches=layer("own_branches"),
                          competitors=layer("competitors"), transit=layer("transit"),
                          streets=layer("streets", False), area=layer("area", False),
                          catchments=layer("catchments", False))
    return ReportInput(record, scene, out_dir / "floorplans")


def _read_gpkg(gpkg: Path) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of a run's ``sites.gpkg``, with a one-line error for a broken file."""
    import pyogrio

    try:
        names = [n for n, _ in pyogrio.list_layers(gpkg)]
        return {n: gpd.read_file(gpkg, layer=n, engine="pyogrio") for n in names}
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as e:
        msg = f"{gpkg}: cannot be read as a GeoPackage ({e}); rerun `siteplanner rank` to write it"
        raise InputError(msg) from None


def _with_csv_columns(selected: gpd.GeoDataFrame, csv: Path) -> gpd.GeoDataFrame:
    """Add the per-site columns that only ``ranked_sites.csv`` carries (impact, stability)."""
    if not csv.is_file():
        return selected
    table = pd.read_csv(csv, dtype={"site_id": str})
    extra = [c for c in table.columns if c not in selected.columns]
    if not extra or "site_id" not in table:
        return selected
    merged = selected.merge(table[["site_id", *extra]], on="site_id", how="left")
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=selected.crs)


def _h3_cells(cands: gpd.GeoDataFrame, crs: Any) -> gpd.GeoSeries:
    """Candidate cells for the mini-maps: the H3 hexagon when the id is an H3 cell, else a disc."""
    import h3
    import shapely

    ids = cands["site_id"].astype(str).to_numpy()
    valid = np.array([h3.is_valid_cell(s) for s in ids], dtype=bool)
    polys = np.array(cands.geometry.buffer(12.0).to_crs(4326).values, dtype=object)
    if valid.any():
        rings = [[(lng, lat) for lat, lng in h3.cell_to_boundary(s)] for s in ids[valid]]
        polys[valid] = shapely.polygons(rings)
    return gpd.GeoSeries(polys, index=cands.index, crs=4326).to_crs(crs)


# --------------------------------------------------------------------------- words

def _num(v: Any, kind: str = "number") -> str:
    try:
        return format_value(v, kind)
    except (TypeError, ValueError):
        return str(v)


def _has(df: pd.DataFrame, col: str) -> bool:
    return col in df and bool(df[col].notna().any())


def _drivers(row: Mapping[str, Any], names: Sequence[str], n: int = 2) -> list[str]:
    parts = sorted(((float(row[f"{c}_contribution"]), c) for c in names), reverse=True)
    return [_DRIVER_WORDS.get(c, c.replace("_", " ")) for v, c in parts[:n] if v > 0]


def _rule_sentence(data: ReportInput) -> str:
    """What kept the sites apart, for the rule the run really applied."""
    sel, brand = data.selection, data.brand
    own = float(sel.get("min_distance_to_own_m", 0))
    if data.method == "top":
        return (f"Every site keeps at least {float(sel.get('min_spacing_m', 0)):.0f} m from the "
                f"others and {own:.0f} m from an existing {brand} branch. ")
    words, _ = _MODELS.get(data.method, (data.method, ""))
    return (f"The set was chosen jointly by a {words}, with the existing {brand} branches kept "
            f"open; no candidate within {own:.0f} m of one was eligible, and no spacing rule "
            "between new sites was applied: the model's objective keeps them apart. ")


def _money_sentence(data: ReportInput, k: int) -> str:
    """How many of the sites pay and their total NPV (the economics stage's figures)."""
    econ = data.record.figures.get("economics")
    if not isinstance(econ, Mapping):
        return ""
    cur, paying = str(econ.get("currency", "")), int(econ.get("sites_paying", 0))
    years, rate = econ.get("horizon_years"), float(econ.get("discount_rate", 0))
    text = (f"{paying} of the {k} sites pay: their total NPV is {cur} "
            f"{float(econ.get('npv_of_paying_sites', 0)):,.0f} over {years} years at {rate:.0%}"
            f" (all {k} together: {cur} {float(econ.get('total_npv', 0)):,.0f}; capex "
            f"{cur} {float(econ.get('total_capex', 0)):,.0f}). ")
    target = int(data.selection.get("top_k", k))
    if paying < target:
        text += (f"The market carries {paying} more {data.brand} branches here, fewer than the "
                 f"{target} asked for. ")
    return text


def _answer(data: ReportInput, records: list[dict[str, Any]], names: Sequence[str]) -> str:
    brand, k = data.brand, len(records)
    if not k:
        econ = data.record.figures.get("economics") or {}
        if econ.get("dropped"):
            return (f"No site pays at the study's economics, so the study proposes no new {brand} "
                    "branch; see the NPV hurdle and the sites it dropped under 'Other figures'.")
        return f"No site met the selection rules, so the study proposes no new {brand} branch."
    best = records[0]
    why = _drivers(best, names)
    text = _money_sentence(data, k)
    text += (f"Open the next {brand} branches at the {k} sites below, in rank order. "
            f"The best, site #1 ({best['site_id']}), scores {float(best['score']):.3f}"
            + (f", above all for its {' and '.join(why)}" if why else "") + ". ")
    text += _rule_sentence(data)
    sens = data.sensitivity
    if sens is not None and len(sens.scenarios):
        worst = int(sens.scenarios["kept"].min())
        text += (f"When any one weight moves by ±{sens.change:.0%}, at least {worst} "
                 f"of the {k} sites stay in the top {k}. ")
    text += ("Foot traffic is measured counts." if data.record.foot_traffic == "measured" else
             "Foot traffic is a proxy built from shops, services and transit stops in "
             "OpenStreetMap, not measured counts: confirm the leading sites on the ground.")
    return text


def _sources(data: ReportInput) -> list[dict[str, Any]]:
    rows = []
    for key, doc in data.record.layers.items():
        src = LayerSource.parse(str(doc.get("source", "none")))
        where = {"osm": "OpenStreetMap", "user": f"your file {src.path}",
                 "proxy": "proxy model from OpenStreetMap", "none": "none"}[src.kind]
        rows.append({"label": _SOURCE_LABELS.get(key, key), "measured": src.measured,
                     "where": where})
    return rows


# --------------------------------------------------------------------------- sections

def _top_table(data: ReportInput, records: list[dict[str, Any]], names: Sequence[str],
               lat: np.ndarray, lon: np.ndarray) -> dict[str, Any]:
    sel, sens = data.scene.selected, data.sensitivity
    impact_cols = [c for c in IMPACT_FIELDS if c != "stability" and _has(sel, c)]
    firm = ("stability" if _has(sel, "stability") else
            f"kept under ±{sens.change:.0%} weights" if sens is not None else None)
    head = [("rank", True), ("site", False), ("lat, lon", True), ("score", True),
            ("main reasons", False), ("nearest own branch", True)]
    head += [(IMPACT_FIELDS[c][0], True) for c in impact_cols]
    money = [c for c in ("capex", "npv", "payback_years") if _has(sel, c)]
    cur = str((data.record.figures.get("economics") or {}).get("currency", ""))
    head += [({"capex": f"capex ({cur})", "npv": f"NPV ({cur})",
               "payback_years": "payback (years)"}[c], True) for c in money]
    head += [(firm, True)] if firm else []
    rows = []
    for i, r in enumerate(records):
        sid, near = str(r["site_id"]), r.get("nearest_own_m")
        cells = [(str(int(r["rank"])), True, None), (_place_words(r), False, f"#site-{sid}"),
                 (f"{lat[i]:.5f}, {lon[i]:.5f}", True, None), (f"{float(r['score']):.3f}", True, None),
                 (", ".join(_drivers(r, names)) or "–", False, None),
                 (f"{_num(near)} m" if near is not None else "", True, None)]
        cells += [(_num(r.get(c)), True, None) for c in impact_cols]
        cells += [(f"{float(r[c]):,.0f}" if c != "payback_years" else _num(r.get(c)), True, None)
                  if r.get(c) is not None and not pd.isna(r.get(c)) else ("–", True, None)
                  for c in money]
        if firm:
            stab = r.get("stability") if _has(sel, "stability") else \
                sens.kept_share.get(sid, float("nan")) if sens is not None else None
            cells.append((_num(stab, "share"), True, None))
        rows.append([{"text": t, "num": n, "link": link} for t, n, link in cells])
    return {"head": [{"text": t, "num": n} for t, n in head], "rows": rows}


def _card(data: ReportInput, r: Mapping[str, Any], geom: Any, names: Sequence[str],
          lat: float, lon: float) -> dict[str, Any]:
    sid, sens = str(r["site_id"]), data.sensitivity
    place = [("score", f"{float(r['score']):.3f}"), ("at", f"{lat:.5f}, {lon:.5f}"), ("site id", sid)]
    near = r.get("nearest_own_m")
    if near is not None and math.isfinite(float(near)):
        place.append(("nearest own branch", f"{float(near):.0f} m"))
    kept = sens.kept_share.get(sid) if sens is not None and "stability" not in r else None
    if kept is not None and math.isfinite(float(kept)):
        place.append((f"chosen in the ±{sens.change:.0%} weight scenarios",  # type: ignore[union-attr]
                      f"{float(kept):.0%}"))
    demand = [(label, _num(r.get(col), kind)) for col, (label, kind) in IMPACT_FIELDS.items()
              if r.get(col) is not None and not (isinstance(r[col], float) and math.isnan(r[col]))]
    plan_uri, plan_note = _floorplan(data, sid)
    return {
        "site_id": sid, "rank": int(r["rank"]), "place": _place_words(r),
        "facts": [line for line in (place, demand, access_facts(r)) if line],
        "breakdown": _charts.breakdown_chart(r, names),
        "mini_map": _charts.mini_map(data.scene, r, geom),
        "plan_uri": plan_uri, "plan_note": plan_note,
        "parts": [(n.replace("_", " "), _num(r.get(n)), signed(r[f"{n}_contribution"]))
                  for n in names],
    }


def _place_words(r: Mapping[str, Any]) -> str:
    """Where a site is for people: its address and district, else its id."""
    parts = [str(r[c]) for c in ("address", "district")
             if isinstance(r.get(c), str) and r[c].strip()]
    return ", ".join(parts) or str(r["site_id"])


def _floorplan(data: ReportInput, sid: str) -> tuple[str | None, str | None]:
    """A data URI of the site's floor plan, or a note when its file cannot be read."""
    if data.floorplans_dir is None:
        return None, None
    folder = data.floorplans_dir / safe_component(sid)
    svg, zones = folder / "plan.svg", folder / "zones.geojson"
    if svg.is_file():
        return "data:image/svg+xml;base64," + base64.b64encode(svg.read_bytes()).decode("ascii"), None
    if zones.is_file():
        try:
            return _charts.zones_drawing(gpd.read_file(zones, engine="pyogrio")), None
        except Exception as e:  # a broken plan file must not stop the report
            log.warning("report: cannot draw %s (%s)", zones, e)
            return None, f"The floor plan in {zones} could not be read."
    return None, None


def _method(data: ReportInput, names: Sequence[str]) -> dict[str, Any]:
    sel, learned = data.selection, data.learned
    crit = data.criteria
    total = sum(float(c.get("weight", 0)) for c in crit.values()) or 1.0
    rows = [{"name": n.replace("_", " "), "words": _CRITERION_WORDS.get(n, "a criterion of the study"),
             "effect": "adds" if crit[n].get("direction") == "benefit" else "subtracts",
             "weight": "learned" if learned else f"{float(crit[n]['weight']) / total:.0%}",
             "reach": f"{float(crit[n]['radius_m']):.0f} m"} for n in names if n in crit]
    paras = ["The study area is covered with small hexagonal cells (H3), each a candidate site. "
             "For every candidate we measure the criteria below within walking distance."]
    if learned:
        model = data.record.figures.get("learned_model") or {}
        paras.append(
            f"The scores were learned, not weighted by hand: a {model.get('kind', 'learned')} model "
            f"({model.get('method', '')}) fitted to {model.get('n_train', 'the')} existing sites "
            "gives each candidate a score whose parts, one per criterion, add up exactly to it. "
            "Its cross-validation against the hand-weighted score is under 'Other figures'.")
    else:
        paras.append("Each criterion is rescaled so the weakest candidate gets 0 and the strongest "
                     "1. The score is the weighted sum: criteria that help add their share, "
                     "criteria that hurt subtract it. The parts add up exactly to the score, so "
                     "every site shows why it ranks where it does.")
    return {"paragraphs": paras, "criteria": rows,
            "weight_header": "weight" if not learned else "weight", "after": [_selection_words(data, sel)]}


def _selection_words(data: ReportInput, sel: Mapping[str, Any]) -> str:
    if data.method == "top":
        return (f"Sites are then taken in score order, skipping any within "
                f"{float(sel.get('min_spacing_m', 0)):.0f} m of a site already chosen or within "
                f"{float(sel.get('min_distance_to_own_m', 0)):.0f} m of an existing branch, until "
                f"{sel.get('top_k')} are chosen. Scores compare candidates within this study only.")
    words, cls = _MODELS.get(data.method, (data.method, data.method))
    info = data.record.figures.get("selection_model") or {}
    gap = info.get("gap")
    gap_words = "proven optimal" if gap == 0 else (f"within {float(gap):.2%} of its proven bound"
                                                   if gap is not None else "with no proven bound")
    return (f"The {sel.get('top_k')} sites were then chosen together by a {words} ({cls}, "
            f"--select {data.method}), keeping the existing branches open: its objective is "
            f"{info.get('objective', '–')} {info.get('units', '')}, against "
            f"{info.get('existing_only_objective', '–')} with the existing branches alone. "
            f"Method: {info.get('method', '–')}, {gap_words}. The score orders the chosen sites "
            "but did not pick them, and no spacing rule was applied between them.")


def _firmness(data: ReportInput, k: int) -> dict[str, Any]:
    sens, stab = data.sensitivity, data.record.figures.get("stability") or {}
    paras: list[str] = []
    if stab:
        what = ("bootstrap refits of the learned model" if data.learned
                else "Monte Carlo draws of the weights around the study's")
        paras.append(f"The stability column comes from {stab.get('n_draws', 'the')} {what}: the "
                     "share of them in which each site is still chosen.")
    scen: list[dict[str, Any]] = []
    if sens is not None and len(sens.scenarios):
        paras.append(f"Each weight was lowered and raised by {sens.change:.0%} in turn, the "
                     "candidates scored again and the sites chosen again by the same rules. The "
                     f"table counts how many of today's top {k} are still chosen.")
        scen = [{"criterion": str(s.criterion).replace("_", " "), "change": f"{s.change:+.0%}",
                 "kept": s.kept, "same_rank": s.same_rank, "entered": ", ".join(s.entered) or "–"}
                for s in sens.scenarios.itertuples()]
    if not paras:
        paras.append(f"The set was chosen jointly (--select {data.method}); its sensitivity to the "
                     "weights is not estimated here. Compare runs with other weights "
                     "(--set criteria.NAME.weight=W) to see how it moves.")
    return {"paragraphs": paras, "scenarios": scen}


def _business(data: ReportInput) -> dict[str, Any]:
    """The compliance table (a mark per site and rule) and the NPV tornado, from run.json."""
    policy = data.record.figures.get("policy") or {}
    rows = policy.get("compliance") or []
    rules = list(dict.fromkeys(str(r["rule"]) for r in rows))
    sites: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        sites.setdefault(str(r["site_id"]), {})[str(r["rule"])] = r
    table = [{"site_id": sid, "marks": [
        {"ok": bool(by[rule]["passes"]),
         "text": f"{_num(by[rule]['value'])} / {_num(by[rule]['threshold'])}"} if rule in by
        else {"ok": None, "text": ""} for rule in rules]} for sid, by in sites.items()]
    sens = data.record.figures.get("npv_sensitivity")
    dropped = policy.get("dropped") or {}
    return {"rules": [r.replace("_", " ") for r in rules], "sites": table,
            "mode": policy.get("mode", "report"),
            "dropped": [f"{sid}: {why}" for sid, why in dropped.items()],
            "tornado": _charts.tornado_chart(sens) if isinstance(sens, Mapping) else None,
            "change": f"{float(sens['change']):.0%}" if isinstance(sens, Mapping) else ""}


def _flatten(d: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, v in d.items():
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(v, Mapping) and depth < 1:
            rows += _flatten(v, f"{prefix}{key} › ", depth + 1)
        elif isinstance(v, str | int | float | bool) or v is None:
            rows.append((name, v))
    return rows


def _extras(figures: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's other named figures (market impact, validation scores, ...), at most 40."""
    shown = {k: v for k, v in figures.items()
             if k not in ("sensitivity", "floorplans", "policy", "npv_sensitivity")}
    return [(k, _num(v) if isinstance(v, int | float) and not isinstance(v, bool) else str(v))
            for k, v in _flatten(shown)[:40]]


# --------------------------------------------------------------------------- page

def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("siteplanner", "templates"),
                              autoescape=True, trim_blocks=False, lstrip_blocks=False,
                              undefined=jinja2.StrictUndefined)


def build_report(source: Any, *, floorplans_dir: Path | None = None,
                 record: RunRecord | None = None) -> str:
    """The report as one HTML document.

    Parameters
    ----------
    source
        A :class:`~siteplanner.pipeline.RankResult`, a run's output folder, or
        a :class:`ReportInput`.
    floorplans_dir
        Where ``<site_id>/plan.svg`` or ``<site_id>/zones.geojson`` floor
        plans are, for a live result (a run's folder uses its ``floorplans/``).
    record
        The run's record when the caller already made it (a live result).
    """
    data = source if isinstance(source, ReportInput) else report_input(
        source, floorplans_dir=floorplans_dir, record=record)
    sel, rec = data.scene.selected, data.record
    names, k = criteria_of(sel), len(sel)
    lat, lon = _wgs84(sel) if k else (np.array([]), np.array([]))
    records = sel.drop(columns=[c for c in ("geometry", "cell") if c in sel]).to_dict("records")
    context = {
        "study_name": data.study_name, "brand": data.brand,
        "k": k, "data_date": (rec.osm_data_date or "unknown")[:10], "created": rec.created[:10],
        "answer": _answer(data, records, names), "sources": _sources(data), "warnings": rec.warnings,
        "overview": _charts.overview_map(data.scene), "table": _top_table(data, records, names, lat, lon),
        "colours": {"site": SITE_COLOUR, "competitor": COMPETITOR_COLOUR, "own": OWN_COLOUR},
        "cards": [_card(data, r, sel.geometry.iloc[i], names, lat[i], lon[i])
                  for i, r in enumerate(records)],
        "mini_map_radius": f"{_charts.MINI_MAP_RADIUS_M:.0f}",
        "has_catchments": data.scene.catchments is not None,
        "method": _method(data, names), "extras": _extras(rec.figures), "firmness": _firmness(data, k),
        "business": _business(data),
        "user_files": sorted({str(d.get("source", ""))[5:] for d in rec.layers.values()
                              if str(d.get("source", "")).startswith("user:")}),
        "inputs": [{"path": str(i.get("path", "")), "bytes": _num(i.get("bytes", "")),
                    "sha": str(i.get("sha256", ""))[:16]} for i in rec.inputs],
        "packages": [f"{p} {v}" for p, v in rec.packages.items() if v],
    }
    return str(_environment().get_template("report.html.j2").render(**context))


def _wgs84(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    g = gdf.geometry.to_crs(4326)
    return g.y.to_numpy(), g.x.to_numpy()


def write_report(source: Any, path: Path, *, floorplans_dir: Path | None = None,
                 record: RunRecord | None = None) -> Path:
    """Write :func:`build_report` to ``path`` atomically and return ``path``.

    ``source`` is a :class:`RankResult` or a run's output folder. For a
    result, floor plans are looked for in ``path``'s folder under
    ``floorplans/`` unless ``floorplans_dir`` is given.
    """
    path = Path(path)
    if floorplans_dir is None and not isinstance(source, str | os.PathLike):
        floorplans_dir = path.parent / "floorplans"
    text = build_report(source, floorplans_dir=floorplans_dir, record=record)
    try:
        with atomic_outputs(path.parent, keep_outputs=True) as tmp:
            (tmp / path.name).write_text(text, encoding="utf-8")
    except OutputError:
        raise
    except OSError as e:
        msg = f"{path}: cannot write the report ({e.strerror}); choose a writable output folder"
        raise OutputError(msg) from None
    return path


def rebuild_report(out_dir: Path) -> Path:
    """Rebuild ``OUT_DIR/report.html`` from a run's outputs (``siteplanner report OUT_DIR``)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        msg = f"{out_dir}: no such folder; give the --out folder of a `siteplanner rank` run"
        raise InputError(msg)
    return write_report(out_dir, out_dir / "report.html")
