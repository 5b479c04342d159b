"""Choosing sites: the ranked-with-spacing rule and location-allocation models."""

from siteplanner.selection.allocation import MaxCapture, MaxCoverage, PMedian
from siteplanner.selection.spacing import select_top

__all__ = ["MaxCapture", "MaxCoverage", "PMedian", "select_top"]
