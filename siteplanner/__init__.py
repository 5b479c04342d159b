"""siteplanner: where to open the next service branches, and how to lay out each floor.

The public names below are imported on first use (PEP 562), so ``import
siteplanner`` and the command line's start and ``--help`` do not load
geopandas, scikit-learn or folium before a command needs them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from siteplanner._errors import ConfigError, CRSError, InputError, OutputError, SitePlannerError

if TYPE_CHECKING:
    from siteplanner.config import Study, load_study
    from siteplanner.floorplan import Demand, FloorPlan, plan_floor
    from siteplanner.io import write_rank_outputs
    from siteplanner.network import WalkGraph
    from siteplanner.pipeline import RankResult, rank_sites
    from siteplanner.selection import MaxCapture, MaxCoverage, PMedian, select_top

try:
    __version__ = version("siteplanner")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

#: Where each lazily imported public name lives.
_LAZY = {
    "Study": "siteplanner.config", "load_study": "siteplanner.config",
    "Demand": "siteplanner.floorplan", "FloorPlan": "siteplanner.floorplan",
    "plan_floor": "siteplanner.floorplan", "write_rank_outputs": "siteplanner.io",
    "WalkGraph": "siteplanner.network", "RankResult": "siteplanner.pipeline",
    "rank_sites": "siteplanner.pipeline", "MaxCapture": "siteplanner.selection",
    "MaxCoverage": "siteplanner.selection", "PMedian": "siteplanner.selection",
    "select_top": "siteplanner.selection",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        msg = f"module 'siteplanner' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CRSError",
    "ConfigError",
    "Demand",
    "FloorPlan",
    "InputError",
    "MaxCapture",
    "MaxCoverage",
    "OutputError",
    "PMedian",
    "RankResult",
    "SitePlannerError",
    "Study",
    "WalkGraph",
    "__version__",
    "load_study",
    "plan_floor",
    "rank_sites",
    "select_top",
    "write_rank_outputs",
]
