"""Fuzz the allocation models' input checks with random matrices and weights.

``MaxCoverage``, ``PMedian`` and ``MaxCapture.from_cost_matrix`` get dense and
sparse cost matrices of random shape holding NaN, infinities, negative and huge
values, weights and parameters of every kind. Each either builds a model that
solves, or raises a :class:`SitePlannerError` with a one-line message; nothing
else escapes. ``SITEPLANNER_FUZZ_EXAMPLES`` sets the examples per property
(200 by default; ``make fuzz`` runs 10,000).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from siteplanner._errors import SitePlannerError
from siteplanner.selection import MaxCapture, MaxCoverage, PMedian

pytestmark = pytest.mark.fuzz

FUZZ = settings(max_examples=int(os.environ.get("SITEPLANNER_FUZZ_EXAMPLES", "200")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize="SITEPLANNER_FUZZ_EXAMPLES" not in os.environ)

#: Costs as a user could pass them: ordinary, unreachable, broken and extreme.
values = st.one_of(
    st.floats(0, 60),
    st.sampled_from([0.0, np.inf, -np.inf, np.nan, -1.0, 1e308, -1e308, 5e-324, 1e-300]),
    st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def matrices(draw: st.DrawFn, rows: int | None = None) -> Any:
    """A dense or sparse matrix, mostly 2-D, sometimes of the wrong shape or kind."""
    shape_kind = draw(st.sampled_from(["2d"] * 6 + ["1d", "3d", "ragged", "text", "none"]))
    if shape_kind == "text":
        return draw(st.sampled_from(["abc", [["1", "x"]], {"a": 1}]))
    if shape_kind == "none":
        return None
    if shape_kind == "ragged":
        return [[1.0, 2.0], [3.0]]
    n = rows if rows is not None and draw(st.booleans()) else draw(st.integers(0, 5))
    m = draw(st.integers(0, 5))
    shape: tuple[int, ...] = {"2d": (n, m), "1d": (m,), "3d": (n, m, 2)}[shape_kind]
    arr = draw(hnp.arrays(np.float64, shape, elements=values))
    if shape_kind == "2d" and draw(st.booleans()):
        return sp.csr_array(np.where(np.isfinite(arr) | draw(st.booleans()), arr, 0.0))
    return arr


@st.composite
def vectors(draw: st.DrawFn, n: int) -> Any:
    kind = draw(st.sampled_from(["ok"] * 4 + ["shape", "text", "scalar"]))
    if kind == "text":
        return ["a"] * n
    if kind == "scalar":
        return draw(values)
    size = n if kind == "ok" else draw(st.integers(0, 6))
    return draw(hnp.arrays(np.float64, (size,), elements=values))


ks = st.one_of(st.integers(-2, 6), st.sampled_from([True, 2.5, np.int64(2), "2", None, 10**30]))
scalars = st.one_of(values, st.sampled_from(["5", None, True]))


def _check(build: Any) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's overflow warnings are not the property
            model = build()
            model.solve(method="heuristic")
    except SitePlannerError as e:
        text = str(e)
        assert text and "\n" not in text, text
    # anything else escapes and fails the property


def _shape_of(cost: Any) -> tuple[int, int]:
    shape = getattr(cost, "shape", ())
    return (int(shape[0]), int(shape[1])) if len(shape) == 2 else (3, 3)


def _demand(data: st.DataObject) -> tuple[Any, int, int, Any]:
    """A cost matrix, its rows and columns, and weights (of one value per row, mostly)."""
    cost = data.draw(matrices())
    n, m = _shape_of(cost)
    return cost, n, m, data.draw(vectors(n))


@FUZZ
@given(data=st.data())
def test_max_coverage_input_checks(data: st.DataObject) -> None:
    cost, n, m, w = _demand(data)
    k, max_cost = data.draw(ks), data.draw(scalars)
    fixed = data.draw(st.one_of(st.none(), matrices(rows=n)))
    capacity = data.draw(st.one_of(st.none(), vectors(m)))
    _check(lambda: MaxCoverage.from_cost_matrix(cost, w, k=k, max_cost=max_cost, fixed=fixed,
                                                capacity=capacity))


@FUZZ
@given(data=st.data())
def test_pmedian_input_checks(data: st.DataObject) -> None:
    cost, n, m, w = _demand(data)
    k = data.draw(ks)
    max_cost = data.draw(st.one_of(st.none(), scalars))
    unreachable = data.draw(st.one_of(st.none(), scalars))
    cover_all = data.draw(st.booleans())
    capacity = data.draw(st.one_of(st.none(), vectors(m)))
    exclude = data.draw(st.one_of(st.none(), st.lists(st.integers(-2, 7), max_size=3)))
    _check(lambda: PMedian.from_cost_matrix(cost, w, k=k, max_cost=max_cost, cover_all=cover_all,
                                            unreachable_cost=unreachable, capacity=capacity,
                                            exclude=exclude))


@FUZZ
@given(data=st.data())
def test_max_capture_input_checks(data: st.DataObject) -> None:
    cost, n, m, w = _demand(data)
    k = data.draw(ks)
    comp = data.draw(matrices(rows=n))
    rule = data.draw(st.sampled_from(["nearest", "huff", "huff", "gravity"]))
    beta, floor = data.draw(scalars), data.draw(scalars)
    attract = data.draw(st.one_of(st.none(), vectors(m)))
    _check(lambda: MaxCapture.from_cost_matrix(cost, w, k=k, competitor_cost=comp, rule=rule,
                                               beta=beta, cost_floor=floor,
                                               attractiveness=attract))
