"""Choosing sites: the ranked-with-spacing rule and location-allocation models."""

from siteplanner.selection.spacing import select_top

__all__ = ["select_top"]
from siteplanner.selection.allocation import MaxCapture, MaxCoverage, PMedian  # noqa: E402

__all__ += ["MaxCapture", "MaxCoverage", "PMedian"]
