"""Where a site is, in words: its street address and its district.

``address`` is the nearest OSM address (``addr:street`` + ``addr:housenumber``
on a building, an entrance or an address node) within ``max_address_m`` of
the site whose street is a walkable street near the site (:data:`STREET_CHECK_M`),
else the name of the nearest named street. ``district`` names the
smallest administrative boundary holding the site below the study area's own
level and the one above it (a quarter and its parish), preceded by the nearest ``place=*`` node
(a village, suburb or neighbourhood) that lies in the same boundary; without
boundaries in the data, the nearest place node alone.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from siteplanner.brands import normalise

__all__ = ["STREET_CHECK_M", "site_addresses"]

#: A house number's ``addr:street`` must name a walkable street within this
#: distance of the site (metres), else the street is used instead: about two
#: minutes on foot at the default 4.8 km/h walking speed, so the address a planner
#: reads is one they can find from the site.
STREET_CHECK_M = 150.0

#: Sites per street query in :func:`_street_nearby`, so its pairs stay within tens of MB.
_SITE_CHUNK = 4096


def site_addresses(points: gpd.GeoSeries, *, addresses: gpd.GeoDataFrame,
                   streets: gpd.GeoDataFrame, boundaries: gpd.GeoDataFrame,
                   places: gpd.GeoDataFrame, max_address_m: float,
                   area_level: int | None = None) -> pd.DataFrame:
    """Address and district of each point.

    Parameters
    ----------
    points
        Site locations in a projected CRS (metres).
    addresses
        ``street``, ``housenumber`` points; streets ``name`` lines; boundaries
        ``name``, ``admin_level`` polygons; places ``name``, ``place`` points;
        all in the CRS of ``points``.
    max_address_m
        How far a house number may be from the site and still be its address.
    area_level
        The study area's own admin level, whose boundary is not a district.

    Returns
    -------
    pd.DataFrame
        On ``points``' index: ``address``, ``address_source`` (``house number``
        or ``street``), ``address_m`` (metres from the site to the address or
        street) and ``district`` (None where nothing is known).
    """
    geoms = np.asarray(points.values)
    n = len(geoms)
    address = np.full(n, None, dtype=object)
    source = np.full(n, None, dtype=object)
    dist = np.full(n, np.nan)
    named = streets[streets["name"].notna()] if "name" in streets else streets.iloc[0:0]
    if len(named):
        lines = np.asarray(named.geometry.values)
        idx, d = shapely.STRtree(lines).query_nearest(geoms, return_distance=True, all_matches=False)
        address[idx[0]] = _first_name(named["name"].to_numpy()[idx[1]])
        source[idx[0]] = "street"
        dist[idx[0]] = d
    if len(addresses):
        pts = np.asarray(addresses.geometry.values)
        idx, d = shapely.STRtree(pts).query_nearest(geoms, max_distance=max_address_m,
                                                    return_distance=True, all_matches=False)
        ok = _street_nearby(geoms[idx[0]], addresses["street"].to_numpy(dtype=object)[idx[1]],
                            named, within_m=STREET_CHECK_M)
        site, at = idx[0][ok], idx[1][ok]
        text = (addresses["street"].astype(str) + " " + addresses["housenumber"].astype(str)).to_numpy()
        address[site] = text[at]
        source[site] = "house number"
        dist[site] = d[ok]
    return pd.DataFrame({"address": address, "address_source": source,
                         "address_m": np.round(dist, 1),
                         "district": _districts(geoms, boundaries, places, area_level)},
                        index=points.index)


def _normalised(values: np.ndarray) -> np.ndarray:
    """``normalise`` of each value, computed once per distinct value (streets repeat)."""
    memo: dict[Any, str] = {}
    return np.array([memo[v] if v in memo else memo.setdefault(v, normalise(v)) for v in values],
                    dtype=object)


def _street_nearby(sites: np.ndarray, streets: np.ndarray, named: gpd.GeoDataFrame, *,
                   within_m: float) -> np.ndarray:
    """True where a walkable street of that name (normalised) runs within ``within_m`` of the site."""
    ok = np.zeros(len(sites), dtype=bool)
    if len(named) == 0 or len(sites) == 0:
        return ok
    tree = shapely.STRtree(np.asarray(named.geometry.values))
    names = _normalised(_first_name(named["name"].to_numpy()))
    wanted = _normalised(streets)
    # by chunks of sites: in a dense city every site has hundreds of street segments
    # within reach, and a country's pairs at once would take gigabytes
    for start in range(0, len(sites), _SITE_CHUNK):
        i, j = tree.query(sites[start:start + _SITE_CHUNK], predicate="dwithin", distance=within_m)
        i += start
        ok[i[names[j] == wanted[i]]] = True
    return ok


def _first_name(values: np.ndarray) -> np.ndarray:
    # osmnx lists the names of merged ways; keep the first
    return np.array([v[0] if isinstance(v, list) and v else v for v in values], dtype=object)


def _districts(geoms: np.ndarray, boundaries: gpd.GeoDataFrame, places: gpd.GeoDataFrame,
               area_level: int | None) -> np.ndarray:
    n = len(geoms)
    unit = np.full(n, -1)
    b = boundaries[boundaries["name"].notna()]
    if area_level is not None:
        b = b[b["admin_level"] > area_level]
    b = b.reset_index(drop=True)
    if len(b):
        # each boundary prepared once for all the points (a tree of the points queried by
        # the polygons), not each point against unprepared polygons: the same pairs
        poly, pt = shapely.STRtree(geoms).query(np.asarray(b.geometry.values), predicate="contains")
        by_pt = np.lexsort((poly, pt))
        pt, poly = pt[by_pt], poly[by_pt]
        hits = pd.DataFrame({"pt": pt, "poly": poly, "level": b["admin_level"].to_numpy()[poly],
                             "area": shapely.area(np.asarray(b.geometry.values))[poly]})
        # the most local unit: the highest level, then the smallest polygon
        ordered = hits.sort_values(["pt", "level", "area"], ascending=[True, False, True])
        ordered["name"] = b["name"].to_numpy(dtype=object)[ordered["poly"].to_numpy()]
        best = ordered.drop_duplicates("pt")
        unit[best["pt"].to_numpy()] = best["poly"].to_numpy()
        # the unit and the one above it (a quarter and its parish), each name once
        chain = ordered.drop_duplicates(["pt", "name"]).groupby("pt").head(2)
        first = ~chain["pt"].duplicated().to_numpy()  # at most two per site: join them whole-column
        unit_of = chain[first].set_index("pt")["name"]
        above = chain[~first].set_index("pt")["name"].reindex(unit_of.index)
        names = unit_of.where(above.isna(), unit_of + ", " + above)
    unit_name = np.full(n, None, dtype=object)
    if len(b):
        unit_name[names.index.to_numpy()] = names.to_numpy()
    place_name = np.full(n, None, dtype=object)
    local = places[places["place"] != "city"]
    places = local if len(local) else places  # a city's node names no part of it
    if len(places):
        pts = np.asarray(places.geometry.values)
        idx = shapely.STRtree(pts).query_nearest(geoms, all_matches=False)
        near = places["name"].to_numpy(dtype=object)[idx[1]]
        if len(b):
            # a place counts only inside the site's own unit (no village across a border)
            # tested once per distinct (unit, place): a country's sites share a few thousand
            u = unit[idx[0]]
            pair, inverse = np.unique(np.column_stack([u, idx[1]]), axis=0, return_inverse=True)
            same = shapely.contains(np.asarray(b.geometry.values)[pair[:, 0]], pts[pair[:, 1]])
            ok = (u >= 0) & same[inverse.ravel()]
        else:
            ok = np.ones(len(idx[0]), dtype=bool)
        place_name[idx[0][ok]] = near[ok]
    both = pd.DataFrame({"p": place_name, "u": unit_name})
    # the unit's own name, split once per distinct name (a country's sites share a few hundred)
    first_unit = both["u"].map({u: u.split(", ")[0] for u in set(unit_name[both["u"].notna()])})
    joined = np.where(both["p"].notna() & both["u"].notna() & (both["p"] != first_unit),
                      both["p"].astype(str) + ", " + both["u"].astype(str),
                      both["u"].where(both["u"].notna(), both["p"]))
    return np.asarray(joined, dtype=object)
