"""Choosing sites: the ranked-with-spacing rule and location-allocation models."""

from siteplanner.selection.spacing import select_top

__all__ = ["select_top"]
