"""Shared check of the premises tests: the entrance faces the street."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point

from siteplanner.floorplan.premises import Premises


def faces_street(p: Premises, streets: gpd.GeoDataFrame) -> bool:
    """A step out of the entrance brings one nearer a street than a step in."""
    door = p.entrances[0]
    ring = shapely.orient_polygons(p.outline).exterior
    s = ring.project(door)
    a, b = (np.array(ring.interpolate(s + d).coords[0]) for d in (-0.05, 0.05))
    out = np.array([b[1] - a[1], a[0] - b[0]]) / np.hypot(*(b - a))
    at = np.array(door.coords[0])
    step_out, step_in = (p.to_crs(Point(*(at + k * out))) for k in (1.0, -1.0))
    return bool(streets.distance(step_out).min() <= streets.distance(step_in).min())
