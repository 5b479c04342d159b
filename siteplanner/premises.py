"""The brand's standard premises checked before a run: an outline that can be planned, doors on its wall.

This check lives here, not in :mod:`siteplanner.config`, so the study schema
never imports the floor planner: the settings stay at the bottom of the flow.
The pipeline runs it first, so a bad outline fails in seconds, not after the
ranking.
"""

from __future__ import annotations

from shapely.geometry import Point

from siteplanner._errors import ConfigError, InputError
from siteplanner.config import FloorplanSettings
from siteplanner.floorplan.export import read_outline
from siteplanner.floorplan.plan import validate_entrances, validate_outline

__all__ = ["check_premises"]


def check_premises(settings: FloorplanSettings, *, where: str = "study") -> None:
    """Raise :class:`ConfigError` when the premises of ``settings`` cannot be planned.

    ``where`` names the study file in the message. Nothing is checked when
    the study draws no floor plans (no ``outline``).
    """
    if settings.outline is None:
        return
    try:
        poly = validate_outline(read_outline(settings.outline), source=str(settings.outline))
        validate_entrances([Point(x, y) for x, y in settings.entrances], poly)
    except InputError as e:
        msg = f"{where}: floorplan: {e}"
        raise ConfigError(msg) from None
