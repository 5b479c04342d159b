"""Choosing sites: the ranked-with-spacing rule and location-allocation models."""

from siteplanner.selection.capture import MaxCapture
from siteplanner.selection.coverage import MaxCoverage
from siteplanner.selection.pmedian import PMedian
from siteplanner.selection.spacing import select_top

__all__ = ["MaxCapture", "MaxCoverage", "PMedian", "select_top"]
