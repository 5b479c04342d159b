"""Floor-zone planner: size a branch's zones from demand and lay them out in its outline.

>>> from shapely.geometry import Point, box
>>> from siteplanner.floorplan import plan_floor
>>> plan = plan_floor(box(0, 0, 20, 12), [Point(10, 0)], 60.0, seed=0)
>>> sorted(plan.zones["zone"])[:3]
['advisory', 'back_office', 'restroom']
"""

from __future__ import annotations

from siteplanner.floorplan.export import read_outline, write_plan
from siteplanner.floorplan.plan import FloorPlan, plan_floor
from siteplanner.floorplan.sizing import Demand, erlang_c, size_programme, size_servers
from siteplanner.floorplan.standard import (
    MANDATORY_ZONES,
    ZONE_KINDS,
    Standard,
    default_standard,
    load_standard,
)

__all__ = [
    "MANDATORY_ZONES",
    "ZONE_KINDS",
    "Demand",
    "FloorPlan",
    "Standard",
    "default_standard",
    "erlang_c",
    "load_standard",
    "plan_floor",
    "read_outline",
    "size_programme",
    "size_servers",
    "write_plan",
]
