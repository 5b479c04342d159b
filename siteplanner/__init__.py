"""siteplanner: where to open the next service branches, and how to lay out each floor."""

from importlib.metadata import PackageNotFoundError, version

from siteplanner._errors import ConfigError, CRSError, InputError, OutputError, SitePlannerError
from siteplanner.config import Study, load_study
from siteplanner.pipeline import RankResult, rank_sites

try:
    __version__ = version("siteplanner")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "CRSError",
    "ConfigError",
    "InputError",
    "OutputError",
    "RankResult",
    "SitePlannerError",
    "Study",
    "__version__",
    "load_study",
    "rank_sites",
]
