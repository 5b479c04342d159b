"""The study area: the real place, read from the administrative boundaries in the data.

A country or region extract carries its boundaries (``boundary=administrative``,
``admin_level`` 2 for a country, 4 for a region, 7-8 for municipalities in most
of Europe: see the OSM wiki's ``admin_level`` table). The study area is the
boundary chosen by name (``--area-name``) or by level (``[study] area =
{admin_level = 2}``), or the user's own polygon (``--layer area=FILE``). When
none is given, the outermost boundary (the lowest admin level) is the area if
it covers at least half of the data's extent (:data:`OUTERMOST_COVER`): a
country extract studies its country with no setting at all. Only otherwise is
the data's extent used, and then with a warning, because an extract's extent
is a clipping shape, not a place.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely

from siteplanner._errors import InputError
from siteplanner.brands import normalise

__all__ = ["StudyArea", "resolve_area"]


@dataclass(frozen=True)
class StudyArea:
    """The study area in EPSG:4326, with the name it is known by and where it came from.

    ``source`` is ``boundary`` (an administrative boundary in the data),
    ``user`` (the user's polygon), ``online`` (the place an online source
    geocoded) or ``extent`` (the data's extent, the fallback).
    ``admin_level`` is the boundary's level when ``source`` is ``boundary``.
    """

    geometry: shapely.Geometry
    name: str | None
    source: str
    admin_level: int | None = None


def resolve_area(*, boundaries: gpd.GeoDataFrame, extent: shapely.Geometry | None,
                 name: str | None = None, admin_level: int | None = None,
                 user: shapely.Geometry | None = None, user_path: str = "",
                 online: shapely.Geometry | None = None) -> StudyArea:
    """Choose the study area.

    Parameters
    ----------
    boundaries
        The data's administrative boundaries (``name``, ``admin_level``), EPSG:4326.
    extent
        The area the data covers, EPSG:4326 (None when there is no OSM data).
    name, admin_level
        The boundary to use, by name, by level, or both (a name at that level).
    user
        The user's area polygon, EPSG:4326; it wins over the boundaries.
    user_path
        The file behind ``user``, for messages.
    online
        The area an online source was asked for (a geocoded place or a bbox).

    Raises
    ------
    InputError
        A name not in the data (the message lists the names that are), a
        level with no boundary, or a user area that does not overlap the data.
    """
    if user is not None:
        if extent is not None and not shapely.intersects(user, extent):
            w, s, e, n = shapely.bounds(extent)
            msg = (f"layer area {user_path}: the area does not overlap the data, which covers "
                   f"({w:.4f}, {s:.4f}, {e:.4f}, {n:.4f}) in lon/lat; check the file's CRS "
                   "or give an OSM extract of that place")
            raise InputError(msg)
        return StudyArea(user, None, "user")
    if name is not None or admin_level is not None:
        return _boundary(boundaries, name=name, admin_level=admin_level)
    # With no choice made, the outermost boundary when it is the place the data covers
    # (a country extract), else the data's extent with a warning.
    if online is not None:
        return StudyArea(online, None, "online")
    if extent is None:
        msg = "no study area: give an OSM source (--osm/--place) or an area file (--layer area=FILE)"
        raise InputError(msg)
    outer = _outermost(boundaries, extent)
    if outer is not None:
        return outer
    hint = (f"; the data has boundaries: {_listing(boundaries)}; choose one with --area-name NAME "
            "or [study] area = {admin_level = N}") if len(boundaries) else (
            "; the data holds no administrative boundary, so give an area file "
            "(--layer area=FILE) to study a real place")
    warnings.warn(f"the study area is the extent of the data (the convex hull of its streets "
                  f"and places), not a real place{hint}", UserWarning, stacklevel=2)
    return StudyArea(extent, None, "extent")


#: The outermost boundary becomes the study area by itself only when it covers
#: this share of the data's extent: a country extract is its country, while a
#: city clip that happens to hold one district's boundary is not that district.
OUTERMOST_COVER = 0.5


def _outermost(boundaries: gpd.GeoDataFrame, extent: shapely.Geometry) -> StudyArea | None:
    """The boundary at the lowest admin level, when it covers most of the data (else None)."""
    if len(boundaries) == 0:
        return None
    level = int(boundaries["admin_level"].min())
    chosen = _boundary(boundaries, name=None, admin_level=level)
    # shares of areas in degrees are fine for a ratio over one extract
    cover = shapely.area(shapely.intersection(chosen.geometry, extent)) / max(shapely.area(extent), 1e-12)
    return chosen if cover >= OUTERMOST_COVER else None


def _boundary(boundaries: gpd.GeoDataFrame, *, name: str | None,
              admin_level: int | None) -> StudyArea:
    if len(boundaries) == 0:
        msg = ("the data holds no administrative boundary (boundary=administrative), so "
               "--area-name / study.area cannot be used; give an area file (--layer area=FILE) "
               "or a country or region extract")
        raise InputError(msg)
    b = boundaries
    if admin_level is not None:
        b = b[b["admin_level"] == admin_level]
        if len(b) == 0:
            levels = ", ".join(str(x) for x in sorted(boundaries["admin_level"].unique()))
            msg = (f"study.area: no boundary at admin_level {admin_level} in the data; "
                   f"levels present: {levels}")
            raise InputError(msg)
    if name is not None:
        key = normalise(name)
        hit = b[b["name"].fillna("").map(normalise) == key]
        if len(hit) == 0:
            where = f" at admin_level {admin_level}" if admin_level is not None else ""
            msg = (f"area name {name!r} is not a boundary in the data{where}; "
                   f"boundaries there: {_listing(boundaries)}")
            raise InputError(msg)
        # a name used at several levels (a parish and its town): the largest unit
        b = hit[hit["admin_level"] == hit["admin_level"].min()]
    level = int(b["admin_level"].min())
    b = b[b["admin_level"] == level]
    names = sorted(b["name"].dropna().astype(str).unique())
    label = names[0] if len(names) == 1 else (
        ", ".join(names) if len(names) <= 3 else f"{len(names)} areas at admin_level {level}")
    return StudyArea(shapely.union_all(b.geometry.values), label, "boundary", level)


def _listing(boundaries: gpd.GeoDataFrame) -> str:
    named = boundaries.dropna(subset=["name"])
    if len(named) == 0:
        return "none with a name"
    levels = named.groupby("name")["admin_level"].agg(lambda s: "/".join(map(str, sorted(set(s)))))
    order = pd.DataFrame({"name": levels.index, "lv": named.groupby("name")["admin_level"].min()
                          .to_numpy()}).sort_values(["lv", "name"])
    return ", ".join(f"{n} (level {levels[n]})" for n in order["name"])
