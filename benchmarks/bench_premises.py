"""Benchmark the floor planner on real OSM premises of the bundled cities; prints JSON.

The sites are real service branches of each bundled extract (OSM ``amenity`` of
bank, post_office, pharmacy, clinic or doctors, topped up with shops when a city
has fewer than ``--n``), the first ``--n`` by OSM id. Each is planned the way a
run with ``[floorplan] premises = "osm"`` plans it: ``plan_sites`` with the
default standard and ``--arrivals`` customers per hour, in the building at the
site (the whole footprint, or a street-facing unit of it) with the door on the
street side. Streets are the extract's ``--network`` edges (driving, as the
tests use), everything in the city's UTM zone.

Per site: the outcome (planned; refused, with the class of the one-line
reason; or an exception other than siteplanner's own InputError, a bug), the
premises kind and area, CPU seconds, hard constraints failed (plan_floor refuses
rather than return such a plan, so any is a bug), cashiers and staff rooms cut
off from the cash room (reported, not yet enforced), and programme zones above
the standard's ``max_zone_ratio`` (1.5 x). The baseline is the time to read the
city's buildings and streets once, as a run must before it can plan any site.
CPU seconds (``time.process_time``) are the fairer figure on a shared machine.

    .venv/bin/python benchmarks/bench_premises.py [--n 30] [--cities helsinki,andorra]
        [--arrivals 40] [--network driving] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point

from siteplanner import datasets
from siteplanner._errors import InputError
from siteplanner.config import FloorplanSettings
from siteplanner.floorplan.premises import premises_at
from siteplanner.floorplan.sites import plan_sites
from siteplanner.floorplan.sizing import Demand, programme_area, size_programme
from siteplanner.floorplan.standard import Standard, default_standard
from siteplanner.sources.buildings import read_buildings

CITIES = {"helsinki": datasets.helsinki, "andorra": datasets.andorra}
#: OSM amenities that are service branches with a counter (the planner's kind of floor).
BRANCHES = ("bank", "post_office", "pharmacy", "clinic", "doctors")

#: Refusal classes, by a phrase of the message (the first that matches wins).
REASONS = (
    ("no_building_at_site", "no building within"),
    ("no_wall_for_door", "too short for a door"),
    ("no_streets", "streets table holds no lines"),
    ("above_max_outline", "above the standard's max_outline_m2"),
    ("too_narrow", "no layout can meet the minimum widths"),
    ("beyond_egress_reach", "no layout meets the egress rule"),
    ("too_small", "too small: it has"),
    ("no_valid_layout", "meets every hard constraint"),
    ("outline_not_simple", "is not a simple polygon"),
    ("outline_has_holes", "hole(s)"),
    ("entrance_off_wall", "from the outline wall"),
    ("demand_over_max_servers", "raise max_servers"),
)


def _reason(message: str) -> str:
    for name, phrase in REASONS:
        if phrase in message:
            return name
    return "other: " + message.splitlines()[0][:80]


def _broken(message: str) -> list[str]:
    """The constraints a layout refusal's best try broke (``best try: rule: why; ...``)."""
    m = re.search(r"best try: (.*?)\);", message)
    return sorted({part.split(":")[0].strip() for part in m.group(1).split(";")}) if m else []


def _read(name: str, network: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, float]]:
    """The city's buildings and streets in its UTM zone, and the CPU and wall time to read them."""
    from pyrosm import OSM

    pbf = CITIES[name]().osm
    t0, c0 = time.perf_counter(), time.process_time()
    buildings = read_buildings(pbf)
    crs = buildings.estimate_utm_crs()
    buildings = buildings.to_crs(crs)
    c1 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streets = OSM(str(pbf)).get_network(network).to_crs(crs)
    c2 = time.process_time()
    times = {"buildings_cpu_s": c1 - c0, "streets_cpu_s": c2 - c1, "cpu_s": c2 - c0,
             "wall_s": time.perf_counter() - t0, "buildings": len(buildings),
             "streets": len(streets)}
    return buildings, streets, times


def _sites(name: str, n: int, crs: Any) -> gpd.GeoDataFrame:
    """The first ``n`` service branches by OSM id (``node/123``), topped up with shops."""
    from pyrosm import OSM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = OSM(str(CITIES[name]().osm))
        found = [osm.get_pois(custom_filter={"amenity": list(BRANCHES)})]
        if found[0] is None or len(found[0]) < n:
            found.append(osm.get_pois(custom_filter={"shop": True}))
    frames = []
    for kind, pois in zip(("amenity", "shop"), found, strict=False):
        if pois is None or pois.empty:
            continue
        frames.append(gpd.GeoDataFrame({
            "osm_id": pois["osm_type"].astype(str) + "/" + pois["id"].astype("int64").astype(str),
            "type": pois["osm_type"].astype(str), "num": pois["id"].astype("int64"),
            "what": pois[kind].astype(str), "rank_of": 0 if kind == "amenity" else 1},
            geometry=pois.geometry.to_crs(crs).centroid, crs=crs))
    sites = pd.concat(frames, ignore_index=True).drop_duplicates("osm_id")
    sites = sites.sort_values(["rank_of", "type", "num"]).head(n)
    return gpd.GeoDataFrame(sites, geometry="geometry", crs=crs).reset_index(drop=True)


def _premises_of(site: Point, arrivals: float, std: Standard, buildings: gpd.GeoDataFrame,
                 streets: gpd.GeoDataFrame) -> dict[str, Any]:
    """The premises plan_sites laid out (or tried to) at a refused site, for the record.

    The target area is plan_sites' own: the programme plus half the zone allowance.
    """
    target = programme_area(size_programme(Demand(arrivals), std)) \
        * (1.0 + (std.max_zone_ratio - 1.0) / 2.0)
    try:
        p = premises_at(site, buildings.set_index("osm_id", drop=False), streets,
                        target_m2=target, max_ratio=std.max_zone_ratio)
    except Exception:  # the refusal (or the bug) is already recorded from plan_sites
        return {"premises": None, "premises_m2": None}
    return {"premises": p.source, "premises_m2": round(p.area_m2, 1), "building": str(p.building)}


def _plan_site(row: Any, crs: Any, settings: FloorplanSettings, std: Standard, seed: int,
               buildings: gpd.GeoDataFrame, streets: gpd.GeoDataFrame) -> dict[str, Any]:
    """Plan one site through plan_sites, as a run does; what came of it."""
    selected = gpd.GeoDataFrame({"site_id": [row.osm_id], "rank": [1]}, geometry=[row.geometry],
                                crs=crs)
    rec: dict[str, Any] = {"osm_id": row.osm_id, "what": row.what}
    c0 = time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sp = plan_sites(selected, settings, seed=seed, buildings=buildings,
                            streets=streets)[row.osm_id]
    except Exception as exc:  # anything plan_sites lets through is not a clean refusal
        rec["cpu_s"] = round(time.process_time() - c0, 3)
        kind = "refused" if isinstance(exc, InputError) else "exception"
        rec.update(outcome=kind, error=f"{type(exc).__name__}: {exc}",
                   where=traceback.format_tb(exc.__traceback__)[-1].strip().splitlines()[0])
        if kind == "refused":
            rec["reason"] = _reason(str(exc))
        rec.update(_premises_of(row.geometry, settings.arrivals_per_hour, std, buildings, streets))
        return rec
    rec["cpu_s"] = round(time.process_time() - c0, 3)
    if sp.plan is None:
        msg = str(sp.summary.get("error", ""))
        rec.update(outcome="refused", reason=_reason(msg), error=msg.splitlines()[0][:400])
        if rec["reason"] == "no_valid_layout":
            rec["best_try_broke"] = _broken(msg)
        rec.update(_premises_of(row.geometry, settings.arrivals_per_hour, std, buildings, streets))
        return rec
    m = sp.plan.metrics
    p = sp.premises
    rec.update(outcome="planned", premises=p.source if p is not None else None,
               premises_m2=round(p.area_m2, 1) if p is not None else None,
               building=str(p.building) if p is not None else None,
               zones=int(len(sp.plan.zones)), reduced_programme=bool(m.get("reduced_programme")),
               violations=sorted(k for k, c in m["constraints"].items() if not c["pass"]),
               all_constraints_pass=bool(m["all_constraints_pass"]),
               cashiers_cut_off=sp.plan.cashiers_cut_off,
               counter_pockets_cut_off=len(m.get("counter_pockets_cut_off") or []),
               zones_over_max_ratio={k: round(float(r), 3)
                                     for k, r in m["zone_programme_ratio"].items()
                                     if r > std.max_zone_ratio + 1e-6})
    if "staff_rooms_cut_off" in m:
        rec["staff_rooms_cut_off"] = len(m["staff_rooms_cut_off"] or [])
    return rec


def _problems(rec: dict[str, Any]) -> list[str]:
    """What is wrong at a site, beyond a clean refusal: bugs first, then reported issues."""
    out = []
    if rec["outcome"] == "exception":
        out.append(f"exception {rec['error'][:300]} (at {rec['where']})")
    if rec["outcome"] != "planned":
        return out
    if rec["violations"] or not rec["all_constraints_pass"]:
        out.append(f"hard constraints failed: {', '.join(rec['violations']) or '?'}")
    if rec["cashiers_cut_off"]:
        out.append(f"{rec['cashiers_cut_off']} cashier(s) cut off from the cash room")
    if rec["counter_pockets_cut_off"]:
        out.append(f"{rec['counter_pockets_cut_off']} counter pocket(s) cut off")
    if rec.get("staff_rooms_cut_off"):
        out.append(f"{rec['staff_rooms_cut_off']} staff room(s) cut off")
    if rec["reduced_programme"]:
        # a unit is cut at 1.25 x the programme: a reduced one there means it did not lay out
        out.append(f"reduced programme laid out in the {rec['premises_m2']} m² {rec['premises']}")
    if rec["zones_over_max_ratio"]:
        out.append("zones over max_zone_ratio: " + ", ".join(
            f"{k} {v:g}x" for k, v in rec["zones_over_max_ratio"].items()))
    return out


def _summary(recs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [r["cpu_s"] for r in recs]
    planned = [r for r in recs if r["outcome"] == "planned"]
    refused = [r for r in recs if r["outcome"] == "refused"]
    reasons: dict[str, int] = {}
    for r in refused:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    kinds: dict[str, int] = {}
    for r in recs:
        kinds[str(r.get("premises"))] = kinds.get(str(r.get("premises")), 0) + 1
    areas = [r["premises_m2"] for r in recs if r.get("premises_m2") is not None]
    return {
        "sites": len(recs),
        "planned": len(planned),
        "refused": len(refused),
        "exceptions": sum(r["outcome"] == "exception" for r in recs),
        "refusal_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "premises_kinds": kinds,
        "premises_m2": {"median": float(np.median(areas)), "min": float(np.min(areas)),
                        "max": float(np.max(areas))} if areas else None,
        "plans_with_violations": sum(not r["all_constraints_pass"] for r in planned),
        "plans_reduced_programme": sum(r["reduced_programme"] for r in planned),
        "plans_with_cashiers_cut_off": sum(bool(r["cashiers_cut_off"]) for r in planned),
        "plans_with_counter_pockets_cut_off": sum(bool(r["counter_pockets_cut_off"])
                                                  for r in planned),
        "plans_with_staff_rooms_cut_off": sum(bool(r.get("staff_rooms_cut_off"))
                                              for r in planned),
        "plans_with_zones_over_max_ratio": sum(bool(r["zones_over_max_ratio"]) for r in planned),
        "cpu_s": {"median": float(np.median(cpu)), "p95": float(np.quantile(cpu, 0.95)),
                  "max": float(np.max(cpu)), "total": float(np.sum(cpu))} if cpu else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30, help="sites per city")
    ap.add_argument("--cities", default="helsinki,andorra",
                    help=f"comma-separated, of {', '.join(CITIES)}")
    ap.add_argument("--arrivals", type=float, default=40.0,
                    help="peak-hour customer arrivals at every site (the tests' 40)")
    ap.add_argument("--network", default="driving", help="pyrosm network type of the streets")
    ap.add_argument("--seed", type=int, default=0, help="plan_sites' seed")
    args = ap.parse_args()
    names = [c.strip() for c in args.cities.split(",") if c.strip()]
    unknown = [c for c in names if c not in CITIES]
    if unknown:
        ap.error(f"unknown cities {unknown}; choose from {sorted(CITIES)}")
    std = default_standard()
    settings = FloorplanSettings(premises="osm", sites=1, arrivals_per_hour=args.arrivals)
    cities: dict[str, Any] = {}
    every: list[dict[str, Any]] = []
    for name in names:
        buildings, streets, read = _read(name, args.network)
        sites = _sites(name, args.n, buildings.crs)
        recs = []
        for row in sites.itertuples():
            rec = _plan_site(row, buildings.crs, settings, std, args.seed, buildings, streets)
            rec["city"] = name
            recs.append(rec)
            print(f"{name} {rec['osm_id']} {rec['what']} {rec['outcome']}"
                  f" {rec.get('reason', '')} {rec.get('premises')} {rec.get('premises_m2')} m²"
                  f" {rec['cpu_s']:.2f} CPU s", file=sys.stderr, flush=True)
        summary = _summary(recs)
        planning = summary["cpu_s"]["total"] if summary["cpu_s"] else 0.0
        cities[name] = {**summary, "read_baseline": {k: round(v, 3) if isinstance(v, float) else v
                                                     for k, v in read.items()},
                        "planning_cpu_over_read_cpu": planning / read["cpu_s"],
                        "site_kinds": sites["what"].value_counts().to_dict()}
        every += recs
    problems = [{"city": r["city"], "osm_id": r["osm_id"], "premises": r.get("premises"),
                 "premises_m2": r.get("premises_m2"), "problems": p}
                for r in every if (p := _problems(r))]
    out = {
        "arrivals_per_hour": args.arrivals,
        "network": args.network,
        "seed": args.seed,
        "standard": std.name,
        "overall": _summary(every),
        "cities": cities,
        "problem_sites": problems,
        "refused_sites": [{k: r.get(k) for k in ("city", "osm_id", "reason", "premises",
                                                   "premises_m2", "best_try_broke", "error")}
                          for r in every if r["outcome"] == "refused"],
        "sites": every,
    }
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
