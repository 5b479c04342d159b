"""One study over many places: the areas, their cache keys and the one national ranking.

``siteplanner national`` runs the ranking pipeline once per area (see
:mod:`siteplanner.national_run` for the Dask driver). This module holds the
parts that compute:

- :func:`plan_areas` turns a study into its areas: one per administrative
  boundary at ``admin_level`` N of the study's extract (``--by
  admin_level=N``), or one per entry of ``[national] places`` (an OSM file,
  studied whole, or a boundary name in the study's extract). A boundary area
  is studied on the whole extract with ``[study] area = {name, admin_level}``,
  so its layers reach past its boundary and its candidates near the border
  count what lies across it.
- :func:`area_key` is the area's cache key: the SHA-256 of its inputs' SHA-256
  and the resolved settings, so a rerun skips an area whose data and settings
  did not change and redoes one whose did.
- :func:`national_ranking` makes the scores comparable across areas. Each
  area's own score is min-max normalised over that area's candidates, so a
  0.8 in a village and a 0.8 in the capital mean different things. The
  national ranking therefore re-scores the raw criteria of every candidate of
  every area with one min-max over their union (the formula of
  :mod:`siteplanner.model`, through :mod:`siteplanner.rescore`), then applies
  the study's spacing rule once, nationally: K sites in score order, none
  within ``min_spacing_m`` of another (across area borders too) nor within
  ``min_distance_to_own_m`` of any own branch of any area. Candidates flagged
  ``edge`` stay in the normalisation but, with ``candidates.edge =
  "exclude"``, out of the selection, as in one area's run. When every area's
  candidates carry an ``npv`` column (the business case), the national order
  is by NPV instead, with the same spacing rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from siteplanner._errors import ConfigError, InputError
from siteplanner._fs import safe_component, sha256
from siteplanner.config import Study, StudyArea
from siteplanner.rescore import rank_inputs, rescore, top_k

__all__ = ["MONEY_PREFIXES", "NATIONAL_COLUMNS", "AreaJob", "area_key", "boundary_names",
           "check_national_study", "national_ranking", "plan_areas"]

log = logging.getLogger(__name__)

#: ``national_sites.csv``'s fixed columns, in order; money columns follow when present.
NATIONAL_COLUMNS = ("rank", "area", "site_id", "address", "district", "lon", "lat", "score")
#: Candidate columns carried into the national table when the business case made them.
MONEY_PREFIXES = ("npv", "revenue", "cost", "capex", "opex", "payback")
_OSM_ENDINGS = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".xml")


@dataclass(frozen=True)
class AreaJob:
    """One area of a national run: its name, folder, study and cache key.

    A tile of a large area (:func:`tile_areas`) also names its ``parent`` area
    and its ``core``: ``(crs, west, south, east, north)``, the half-open square
    whose candidates the tile contributes (the rest of its study area is overlap).
    """

    area: str
    folder: str
    study: Study
    key: str
    parent: str | None = None
    core: tuple[str, float, float, float, float] | None = None


def check_national_study(study: Study) -> None:
    """Fail early when the study's rule cannot be ranked nationally."""
    if study.model.kind != "weighted" or study.selection.method != "top":
        msg = (f"national ranks with the weighted model and the top-K rule; this study uses "
               f"model.kind = {study.model.kind!r}, selection.method = {study.selection.method!r}: "
               "set --set model.kind=weighted --set selection.method=top")
        raise ConfigError(msg)


def boundary_names(osm: Path, admin_level: int, *, cache_dir: Path | None = None) -> list[str]:
    """The names of the extract's boundaries at ``admin_level``, sorted (one read, then cached).

    Raises
    ------
    InputError
        No boundary at that level (the message lists the levels present).
    """
    listing = _boundary_listing(osm, cache_dir)
    names = sorted({n for n, lv in listing if lv == admin_level and n})
    if not names:
        levels = ", ".join(str(x) for x in sorted({lv for _, lv in listing})) or "none"
        msg = (f"--by admin_level={admin_level}: {osm} has no named boundary at admin_level "
               f"{admin_level}; levels present: {levels}")
        raise InputError(msg)
    return names


def _boundary_listing(osm: Path, cache_dir: Path | None) -> list[tuple[str, int]]:
    """(name, admin_level) of every boundary in ``osm``; kept beside the area cache by the file's hash."""
    from siteplanner.sources import read_osm_file

    path = cache_dir / f"boundaries-{_file_sha(osm)[:24]}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        return [(str(n), int(lv)) for n, lv in json.loads(path.read_text(encoding="utf-8"))]
    b = read_osm_file(osm).boundaries
    listing = [(str(n), int(lv)) for n, lv in zip(b["name"].fillna(""), b["admin_level"], strict=True)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(listing), encoding="utf-8")
        tmp.replace(path)
    return listing


def plan_areas(study: Study, *, admin_level: int | None = None,
               cache_dir: Path | None = None) -> list[AreaJob]:
    """The areas of a national run, in name order, each with its study and cache key.

    Parameters
    ----------
    study
        The national study; its ``[national] places`` are used when ``admin_level`` is None.
    admin_level
        Split the study's extract into its boundaries at this level.
    cache_dir
        Where the boundary listing of an extract is kept between runs.

    Large areas are split into tiles afterwards (:func:`siteplanner.national_tiles.tile_areas`).
    """
    check_national_study(study)
    studies = _area_studies(study, admin_level=admin_level, cache_dir=cache_dir)
    jobs: dict[str, AreaJob] = {}
    for name, s in studies:
        folder = safe_component(name)
        if folder in jobs:
            msg = f"national.places: {name!r} is listed twice; list each place once"
            raise ConfigError(msg)
        jobs[folder] = AreaJob(name, folder, s, area_key(s))
    return sorted(jobs.values(), key=lambda j: j.area)


def _area_studies(study: Study, *, admin_level: int | None,
                  cache_dir: Path | None) -> list[tuple[str, Study]]:
    if admin_level is not None:
        if study.osm is None:
            msg = "--by admin_level=N splits the study's OSM extract: set [study] osm or give --osm FILE"
            raise ConfigError(msg)
        names = boundary_names(study.osm, admin_level, cache_dir=cache_dir)
        studies = [(n, study.replace(area=StudyArea(name=n, admin_level=admin_level), name=n))
                   for n in names]
    elif study.national.places:
        studies = [_place_study(study, p, cache_dir) for p in study.national.places]
    else:
        msg = ("national needs areas: give --by admin_level=N (e.g. 7 for Andorra's parishes) or "
               "list them in the study: [national] places = [\"FILE.osm.pbf\" or \"BOUNDARY NAME\", ...]")
        raise ConfigError(msg)
    return studies


def _place_study(study: Study, place: str, cache_dir: Path | None) -> tuple[str, Study]:
    if place.lower().endswith(_OSM_ENDINGS):
        path = Path(place)
        if not path.is_file():
            msg = f"national.places: {path} not found; check the path (relative to the study file)"
            raise InputError(msg)
        name = path.name.split(".")[0]
        return name, study.replace(osm=path, area=None, name=name)
    if study.osm is None:
        msg = (f"national.places: {place!r} is a boundary name, which needs the study's extract: "
               "set [study] osm, or list OSM files (.osm.pbf, .osm, .osm.bz2)")
        raise ConfigError(msg)
    listing = _boundary_listing(study.osm, cache_dir)
    levels = sorted({lv for n, lv in listing if n == place})
    if not levels:
        known = ", ".join(sorted({n for n, _ in listing if n})) or "none"
        msg = f"national.places: {place!r} is not a boundary in {study.osm}; boundaries there: {known}"
        raise InputError(msg)
    # a name used at several levels (a parish and its town): the largest unit, as study.area does
    return place, study.replace(area=StudyArea(name=place, admin_level=levels[0]), name=place)


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha(path: Path) -> str:
    st = Path(path).stat()
    memo = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _SHA_MEMO:
        _SHA_MEMO[memo] = sha256(Path(path))
    return _SHA_MEMO[memo]


def area_key(study: Study) -> str:
    """The area's cache key: SHA-256 of its input files' SHA-256 and its resolved settings.

    Paths are replaced by their files' hashes, so moving the data does not
    invalidate the cache and editing it does; the package version is part of
    the key, so an upgrade recomputes.
    """
    doc = study.to_dict()
    doc.pop("source_file", None)
    doc.pop("national", None)  # the list of places is not one area's setting
    if study.osm is not None:
        doc["osm"] = _file_sha(study.osm)
    for kind, spec in study.layers.items():
        doc["layers"][kind]["path"] = _file_sha(spec.path)
        if spec.locations is not None:
            doc["layers"][kind]["locations"] = _file_sha(spec.locations)
    try:
        doc["siteplanner"] = version("siteplanner")
    except PackageNotFoundError:
        doc["siteplanner"] = None
    text = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def national_ranking(sites: pd.DataFrame, own: pd.DataFrame, study: Study, *,
                     k: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The K best sites across every area, on scores comparable across areas.

    Parameters
    ----------
    sites
        Every candidate of every area: ``area``, ``site_id``, ``lon``, ``lat``
        (WGS84), ``edge``, one column per criterion (raw values), ``address``
        and ``district`` where known, money columns where the business case made them.
    own
        The brand's own branches of every area (``lon``, ``lat``).
    study
        The national study (criteria, weights, spacing rule, edge policy).
    k
        The number of sites to choose nationally.

    Returns
    -------
    (pandas.DataFrame, dict)
        The chosen sites in rank order (:data:`NATIONAL_COLUMNS`, then
        ``area_rank``, each criterion's national contribution and any money
        columns), and how they were ranked (for ``national.json``).
    """
    if len(sites) == 0:
        return pd.DataFrame(columns=list(NATIONAL_COLUMNS)), {"method": "none", "candidates": 0}
    # a candidate two overlapping places share counts once, in the first area by name
    sites = sites.sort_values(["area", "site_id"], kind="stable").drop_duplicates("site_id")
    pts = gpd.GeoDataFrame(sites.reset_index(drop=True), crs=4326,
                           geometry=gpd.points_from_xy(sites["lon"], sites["lat"]))
    crs = pts.estimate_utm_crs()
    pts = pts.to_crs(crs).set_index(pts["site_id"].astype(str).to_numpy())
    own_pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(own["lon"], own["lat"]), crs=4326).to_crs(crs)
    sel = dataclasses.replace(study.selection, top_k=k)
    inputs = rank_inputs(pts, own_pts, study.criteria, sel)
    held = (pts["edge"].to_numpy(dtype=bool) if study.candidates.edge == "exclude"
            else np.zeros(len(pts), dtype=bool))
    inputs = dataclasses.replace(inputs, near_own=inputs.near_own | held)
    weights = {n: study.criteria[n].weight for n in inputs.names}
    res = rescore(inputs, weights)
    npv = "npv" in pts and bool(pts["npv"].notna().any())
    chosen = top_k(inputs, np.nan_to_num(pts["npv"].to_numpy(dtype=float), nan=-np.inf)) if npv \
        else res.chosen
    table = _national_table(pts, inputs, res.scores, chosen, weights)
    how = {"method": "npv" if npv else "min-max over all areas' candidates",
           "candidates": len(pts), "held_edge": int(held.sum()), "crs": crs.to_string(),
           "weights": weights, "top_k": k, "min_spacing_m": sel.min_spacing_m,
           "min_distance_to_own_m": sel.min_distance_to_own_m, "own_branches": len(own_pts)}
    return table, how


def _national_table(pts: gpd.GeoDataFrame, inputs: Any, scores: np.ndarray, chosen: np.ndarray,
                    weights: dict[str, float]) -> pd.DataFrame:
    rows = pts.iloc[chosen]
    total = sum(weights.values())
    n = inputs.normalised[chosen]
    out = pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1),
        "area": rows["area"].to_numpy(),
        "site_id": rows["site_id"].astype(str).to_numpy(),
        "address": rows["address"].to_numpy() if "address" in rows else "",
        "district": rows["district"].to_numpy() if "district" in rows else "",
        "lon": rows["lon"].round(6).to_numpy(),
        "lat": rows["lat"].round(6).to_numpy(),
        "score": np.round(scores[chosen], 6),
    })
    for c in sorted(c for c in rows.columns if c.startswith(MONEY_PREFIXES)):
        out[c] = rows[c].to_numpy()
    if "area_rank" in rows:
        out["area_rank"] = pd.array(rows["area_rank"].round().to_numpy(dtype=float), dtype="Int64")
    for c, name in enumerate(inputs.names):
        out[f"{name}_contribution"] = np.round(inputs.signs[c] * weights[name] / total * n[:, c], 6)
    return out
