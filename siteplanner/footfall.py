"""Foot traffic: the user's measured counts, or a proxy built from OpenStreetMap.

The proxy says where people walk from what draws them: every shop, café,
office or service is a destination worth weight 1, and every transit stop
brings riders worth its mode weight (:data:`siteplanner.features.MODE_WEIGHTS`).
The foot-traffic criterion is then the kernel density of those weights around
each candidate. It ranks streets the way counters tend to (busy where
destinations and stations cluster), but it is a proxy: every output says so,
and measured counts replace it when given.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from siteplanner.features import MODE_WEIGHTS
from siteplanner.layers import Layers

__all__ = ["foot_traffic_points"]


def foot_traffic_points(layers: Layers) -> tuple[gpd.GeoDataFrame, bool]:
    """The points behind the foot-traffic criterion and whether they are measured."""
    if layers.foot_traffic_measured:
        return layers.foot_traffic, True
    pois = layers.pois[["geometry"]].assign(count=1.0, source="poi")
    stops = layers.transit[["geometry"]].assign(
        count=layers.transit["mode"].map(MODE_WEIGHTS).fillna(1.0).to_numpy(), source="transit")
    proxy = pd.concat([pois, stops], ignore_index=True)
    return gpd.GeoDataFrame(proxy, geometry="geometry", crs=layers.crs), False
