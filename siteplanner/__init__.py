"""siteplanner: where to open the next service branches, and how to lay out each floor."""

from importlib.metadata import PackageNotFoundError, version

from siteplanner._errors import ConfigError, CRSError, InputError, OutputError, SitePlannerError
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
