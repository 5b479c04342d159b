"""Egress on large or long premises: a proof when public floor cannot be in reach, else a reserve."""

from __future__ import annotations

import pytest
from shapely.geometry import Point, box

from siteplanner._errors import InputError
from siteplanner.floorplan import default_standard, plan_floor
from siteplanner.floorplan.plan import _as_reserve, _beyond_egress, allot, premises_verdict
from siteplanner.floorplan.sizing import Demand, size_programme
from siteplanner.floorplan.standard import RESERVE


def test_public_floor_out_of_the_doors_reach_is_refused_with_the_proof() -> None:
    # a 4.5 m wide, 80 m long unit with its door at one end: only 135 m² lie within
    # 30 m of the door, less than the public zones of a busy branch need
    with pytest.raises(InputError, match=r"public zones \(self_service, waiting, service"
                                         r".* m²\) need more floor than the 13\d m² .* within "
                                         r"30 m of a door"):
        plan_floor(box(0, 0, 80, 4.5), [Point(0, 2.25)], 200.0)


def test_surplus_beyond_the_egress_reach_becomes_a_staff_reserve() -> None:
    std = default_standard()
    outline = box(0, 0, 40, 12)  # 480 m², the far end 40 m from a door at one end
    sizing = size_programme(Demand(60.0), std)
    programme = sizing["programme_m2"]
    assert _beyond_egress(outline, [Point(0, 6)], std)
    assert not _beyond_egress(outline, [Point(20, 0)], std)
    a = _as_reserve(allot(programme, outline.area, std), programme, std)
    # the public zones keep their programme; every other square metre is the reserve
    assert a.targets.drop(RESERVE).to_numpy() == pytest.approx(programme.to_numpy())
    assert a.targets[RESERVE] == pytest.approx(outline.area - programme.sum())
    assert a.reserve_m2 == a.targets[RESERVE] and a.flex_m2 == 0.0
    assert std.access(RESERVE) == "staff"
    verdict = premises_verdict(outline.area, programme.sum(), a.reserve_m2, std, reserve=True)
    assert verdict["verdict"] == "too_large" and "staff reserve" in verdict["advice"]
