"""The residents and workers of an area's H3 cells, from its building footprints, without
a frame of every cell.

:func:`siteplanner.demand.residents_workers` takes a frame of the cells; a country's
area holds several times more cells than the demand keeps (Andorra x3: 678k cells, 9k
with people), and the frame of them all (an id string and a point each) was most of the
demand's time. Here the cells are their sorted integer ids
(:class:`~siteplanner.candidates.AreaCells`): each building's point is given its H3 cell
(``latlng_to_cell``, as there) and found among the ids by a binary search, and the sums
are the same function's (:func:`siteplanner.demand.cell_sums`), so every cell gets the
very same people.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from siteplanner.candidates import AreaCells
from siteplanner.demand import Densities, building_people, cell_sums, h3_cells_of

__all__ = ["people_of_cells"]


def people_of_cells(cells: AreaCells, buildings: gpd.GeoDataFrame, *,
                    landuse: gpd.GeoDataFrame | None = None,
                    densities: Densities | None = None) -> dict[str, np.ndarray]:
    """``residents``, ``workers`` and ``floor_area_m2`` of each of ``cells`` (arrays in the
    cells' order), from the footprints (any CRS) as :func:`~siteplanner.demand.residents_workers`
    counts them: a building counts in the cell that holds its point on surface."""
    people = building_people(buildings, crs=cells.crs, landuse=landuse, densities=densities)
    found = h3_cells_of(shapely.point_on_surface(people.geometry.values), cells.crs,
                        cells.resolution)
    n = len(cells.ids)
    at = np.minimum(np.searchsorted(cells.ids, found), max(n - 1, 0))
    hit = np.flatnonzero(cells.ids[at] == found) if n else np.empty(0, dtype=np.int64)
    return cell_sums(people, hit, at[hit], n)
