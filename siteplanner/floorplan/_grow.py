"""Grow a zone whose fixtures did not fit, within the standard's allowance, from the surplus.

A zone at its programme area holds its fixtures only when its walls run the
right way: ATMs and counters stand against straight walls along the layout's
axes, so a self-service zone cut in a chamfered corner at exactly its programme
can miss one ATM's wall length. The standard lets a zone take up to
``max_zone_ratio`` (1.5x, see ``docs/floorplan.md``) of its programme; the area
comes from floor that is surplus anyway: the staff reserve, the flex zone, or
the surplus the other zones took, each kept at least a usable room.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from siteplanner.floorplan.fixtures import FIXTURE_OF
from siteplanner.floorplan.standard import FLEX, RESERVE, Standard

__all__ = ["grow_short", "short_zones"]

_MIN_GAIN_M2 = 0.5  # growth below this is no real change to a zone's walls


def short_zones(placed: Mapping[str, int], units: Mapping[str, int]) -> list[str]:
    """Zones (of ``units``) whose fixtures the plan placed fewer of than planned."""
    return [k for k, n in units.items() if k in FIXTURE_OF and n > 0
            and placed.get(FIXTURE_OF[k], 0) < n]


def grow_short(targets: pd.Series, programme: pd.Series, short: Sequence[str], host: str,
               flex_m2: float, standard: Standard) -> tuple[pd.Series, float] | None:
    """Targets with the ``short`` zones grown towards ``max_zone_ratio`` x their programme.

    Parameters
    ----------
    targets, programme
        Target and programme areas per zone, m² (``targets`` may hold the reserve).
    short
        Zones whose fixtures did not fit.
    host, flex_m2
        The zone laid out with the flex floor, and the flex floor it holds, m².

    Returns
    -------
    The new targets (same total) and the flex floor left, m²; None when no
    surplus can be moved or the zones are at their allowance already.
    """
    t = targets.astype(float).copy()
    ratio = standard.max_zone_ratio
    deficit = pd.Series({z: max(0.0, float(programme[z]) * ratio - float(t[z])) for z in short
                         if z in t.index}, dtype=float)
    need = float(deficit.sum())
    if need < _MIN_GAIN_M2:
        return None
    usable = max(standard.spec(FLEX).min_width_m, standard.turning_circle_m) ** 2
    flex = flex_m2
    got = 0.0
    # (zone, m² it can give, whether that is the flex floor the zone holds)
    donors: list[tuple[str, float, bool]] = []
    if RESERVE in t.index:
        donors.append((RESERVE, float(t[RESERVE]) - usable, False))
    if flex > 0:
        donors.append((host, flex - usable, True))
    for k in standard.surplus_to:
        if k in t.index and k not in short:
            held = float(t[k]) - float(programme[k]) - (flex if k == host else 0.0)
            donors.append((k, held, False))
    for name, room, is_flex in donors:
        take = min(max(room, 0.0), need - got)
        if take <= 0:
            continue
        t[name] -= take
        flex -= take if is_flex else 0.0
        got += take
    if got < _MIN_GAIN_M2:
        return None
    t[deficit.index] += got * deficit / need
    return t, flex
