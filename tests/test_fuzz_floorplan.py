"""Fuzzing the floor planner: every input gives a plan that passes, or one clear error.

Random simple and non-simple polygons (rectangles, L shapes, random vertex
lists, degenerate and huge ones, NaN and infinite coordinates), entrances on and
off the wall, and arrivals from negative to infinite. The property: plan_floor
returns a plan that passes every hard constraint, or raises a
``SitePlannerError`` whose message is one line; nothing else escapes.

``SITEPLANNER_FUZZ_EXAMPLES`` sets the examples per property: 60 by default (each one
plans a floor, about a second, where the other fuzz files' examples take milliseconds:
200 took about 4 minutes, most of one test worker's share of the suite's 10-minute
budget); ``make fuzz`` runs 10,000.
"""

from __future__ import annotations

import math
import os
import warnings

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon, box

from siteplanner._errors import SitePlannerError
from siteplanner.floorplan import plan_floor

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("SITEPLANNER_FUZZ_EXAMPLES", "60"))
#: A small search budget: the property is about what escapes, not how good the layout is.
BUDGET = 12

coord = st.one_of(st.floats(-60, 60, allow_nan=False), st.sampled_from(
    [0.0, 1e-9, 1e18, -1e18, math.nan, math.inf]))
side = st.one_of(st.floats(0.0, 45.0), st.sampled_from([1e-6, 2.3, 1e9]))


@st.composite
def outlines(draw: st.DrawFn) -> Polygon:
    kind = draw(st.sampled_from(["rect", "L", "random", "degenerate"]))
    if kind == "rect":
        return box(0, 0, draw(side), draw(side))
    if kind == "L":
        w, h = draw(side), draw(side)
        a, b = draw(st.floats(0.1, 0.9)), draw(st.floats(0.1, 0.9))
        return Polygon([(0, 0), (w, 0), (w, b * h), (a * w, b * h), (a * w, h), (0, h)])
    pts = draw(st.lists(st.tuples(coord, coord), min_size=3, max_size=9))
    if kind == "degenerate":
        pts = [pts[0]] * 3
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN coordinates, on purpose
            return Polygon(pts)  # often self-intersecting: must be refused cleanly
    except (shapely.errors.GEOSException, ValueError):
        return Polygon()  # a ring shapely cannot close (a NaN first point): the empty floor


@st.composite
def entrances(draw: st.DrawFn, outline: Polygon) -> list[Point]:
    if draw(st.booleans()) and not outline.is_empty and math.isfinite(outline.length):
        ring = outline.exterior
        return [ring.interpolate(draw(st.floats(0, 1)), normalized=True)]
    return [Point(draw(coord), draw(coord))]


arrivals = st.one_of(st.floats(0.5, 200.0), st.sampled_from(
    [0.0, -3.0, 1e-9, 1e9, math.nan, math.inf]))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), demand=arrivals, seed=st.integers(0, 3), fit=st.booleans())
def test_any_floor_gives_a_passing_plan_or_one_clear_error(data: st.DataObject, demand: float,
                                                           seed: int, fit: bool) -> None:
    outline = data.draw(outlines())
    doors = data.draw(entrances(outline))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            plan = plan_floor(outline, doors, demand, seed=seed, fit=fit, budget=BUDGET)
        except SitePlannerError as e:
            assert "\n" not in str(e) and str(e).strip()
            return
    assert plan.ok
    assert shapely.union_all(plan.zones.geometry.values).symmetric_difference(
        plan.outline).area < 1e-3 * plan.outline.area
