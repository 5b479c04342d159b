"""Search terms for the counter line's back: what the service zone's walls give its cashiers.

The counters' staff side is staff floor only if staff reach it from the back of house.
A service zone with no door-wide wall to a staff room staff walk through, or to the cash
room, leaves its whole line cut off from the cash room however the counters stand, and
no placement inside the zone can mend that; the layout search can, by preferring layouts
whose service zone backs onto the back of house. Both terms read only the shared-wall
matrix the cost already has, so they cost next to nothing per layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import numpy as np

from siteplanner.floorplan._check import TOUCH_M
from siteplanner.floorplan.access import AccessMasks

__all__ = ["HARD_COST", "HARD_SHARE_WEIGHT", "UNBACKED_WEIGHT", "as_hard_rule",
           "behind_counter_breaks", "unbacked_service", "without_term"]

#: Cost of a service zone with no door-wide wall to the back of house, and the factor on the
#: share of the counter line its walls there cannot hold. Soft: half the adjacency term's
#: range, so the search trades some closeness for it, far below one broken hard rule (10),
#: so a programme whose layouts cannot back the line is still planned. On the first 40
#: benchmark outlines 1.0 for the bare no-wall test alone cut off more plans (the search's
#: path moved) and refused one more.
UNBACKED_WEIGHT = 0.5

#: Off while :func:`without_term` runs (a plan searched again without the term).
_ON: ContextVar[bool] = ContextVar("siteplanner_floorplan_backing", default=True)
#: On while :func:`as_hard_rule` runs (the search for another layout of a plan whose
#: cashiers are cut off, :mod:`siteplanner.floorplan._relayout`).
_HARD_ON: ContextVar[bool] = ContextVar("siteplanner_floorplan_backing_hard", default=False)
#: What a broken hard rule costs the layout search (``layout._PENALTY``).
HARD_COST = 10.0
#: Under :func:`as_hard_rule`, the factor on the share of the line the walls to the back
#: of house cannot hold: twice the whole adjacency term's range, so that search gives up
#: closeness for the line's back (its plan replaces one that is kept when it finds none
#: better). Not a published figure; a weight between the soft term and a broken rule.
HARD_SHARE_WEIGHT = 2.0


@contextlib.contextmanager
def without_term() -> Iterator[None]:
    """Search without :func:`unbacked_service`: the term moves the stopped-early search's
    path, and on a few outlines (the benchmark's #88) that path meets no passing layout
    where the search without it does, so a refusal that no complete search proves is
    searched again without it (:func:`siteplanner.floorplan.plan.plan_floor`)."""
    token = _ON.set(False)
    try:
        yield
    finally:
        _ON.reset(token)


@contextlib.contextmanager
def as_hard_rule() -> Iterator[None]:
    """Search with a service zone that shares no door-wide wall with the back of house
    counted as a broken hard rule, and the share of the counter line its walls there
    cannot hold weighted :data:`HARD_SHARE_WEIGHT`. Only for the search for another
    layout of a plan whose cashiers are cut off, whose layouts replace that plan only when
    they pass with fewer cut off, so no outline is refused for it."""
    token = _HARD_ON.set(True)
    try:
        yield
    finally:
        _HARD_ON.reset(token)


def unbacked_service(walls: np.ndarray, access: AccessMasks, door_m: float,
                     counter_len: float) -> float:
    """How badly the service zone's walls to the back of house fail the counter line.

    :data:`UNBACKED_WEIGHT` when the service zone shares no ``door_m`` wall with a
    staff room staff walk through or a secure room, else that weight times the share
    of the ``counter_len`` m line longer than those walls (0 when they can hold it).
    Programmes without a service zone, or with no room behind it to back onto
    (restrooms do not count), score 0. Under :func:`as_hard_rule` (with or without the
    term) no door-wide wall also costs :data:`HARD_COST`, and the share weighs
    :data:`HARD_SHARE_WEIGHT`.
    """
    s = access.service
    hard = _HARD_ON.get()
    if s < 0 or not (hard or (UNBACKED_WEIGHT > 0 and _ON.get())):
        return 0.0
    back = (access.passable | access.secure) & ~access.public
    back[s] = False
    if not back.any():
        return 0.0
    backing = walls[s, back]
    broken = HARD_COST if hard else 0.0
    if not bool((backing >= door_m - TOUCH_M).any()):
        return UNBACKED_WEIGHT + broken
    if counter_len <= 0:
        return 0.0
    # the share of the line the walls to the back of house cannot hold: its stations there
    # stand in pockets the staff floor must join along the customers' side
    held = float(backing[backing >= door_m - TOUCH_M].sum())
    short = max(0.0, 1.0 - held / counter_len)
    return (HARD_SHARE_WEIGHT if hard else UNBACKED_WEIGHT) * short


def behind_counter_breaks(walls: np.ndarray, access: AccessMasks, counter_len: float) -> float:
    """Cash rooms whose wall to the service zone runs past the counter line, facing customers."""
    behind = walls[access.secure, access.service]
    return float((behind > counter_len + TOUCH_M).sum())
