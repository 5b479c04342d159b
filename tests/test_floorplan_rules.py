"""Each hard rule of a branch floor, on a case built to break it, and the honest-size rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from siteplanner.floorplan import FloorPlan, default_standard, plan_floor
from siteplanner.floorplan._backing import (
    HARD_COST,
    HARD_SHARE_WEIGHT,
    UNBACKED_WEIGHT,
    as_hard_rule,
    unbacked_service,
    without_term,
)
from siteplanner.floorplan._fallback import LayoutRefused, unless_unproven
from siteplanner.floorplan.access import access_masks
from siteplanner.floorplan.assemble import assemble, check_fixtures
from siteplanner.floorplan.fixtures import FIXTURE_OF, Fixture, place_fixtures
from siteplanner.floorplan.route import check_route

L_SHAPE = Polygon([(0, 0), (20, 0), (20, 8), (9, 8), (9, 16), (0, 16)])
IDENTITY = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def l_plan() -> FloorPlan:
    return plan_floor(L_SHAPE, [Point(20, 4)], 80.0, seed=3)


def _assembled(zones: dict[str, Polygon], units: dict[str, int], door: Point):  # type: ignore[no-untyped-def]
    std = default_standard()
    kinds = list(zones)
    geoms = [zones[k] for k in kinds]
    outline = shapely.union_all(geoms)
    area = np.array([g.area for g in geoms])
    return assemble(geoms, kinds, area, area, [units.get(k, 0) for k in kinds], outline,
                    outline, [door], [door], IDENTITY, std)


# a 20 x 10 m hall: ATMs at the door (x = 20), waiting, service, and the staff rooms
HALL = {
    "self_service": box(16, 0, 20, 5),
    "waiting": box(8, 0, 16, 5),
    "service": box(8, 5, 20, 10),
    "back_office": box(0, 5, 8, 10),
}


def test_a_secure_zone_next_to_waiting_breaks_the_security_rule() -> None:
    beside_waiting = {**HALL, "vault": box(4, 0, 8, 5), "restroom": box(0, 0, 4, 5)}
    done = _assembled(beside_waiting, {"self_service": 2, "waiting": 4, "service": 3,
                                       "back_office": 3, "vault": 1}, Point(20, 2.5))
    rule = done.metrics["constraints"]["secure_no_public_wall"]
    assert not rule["pass"] and "vault/waiting" in rule["detail"]
    assert not done.metrics["all_constraints_pass"]
    # the same vault moved behind the back office, away from the public hall, passes
    inside = {**HALL, "back_office": box(0, 5, 8, 10), "vault": box(0, 0, 4, 5),
              "restroom": box(4, 0, 8, 5)}
    ok = _assembled(inside, {"self_service": 2, "waiting": 4, "service": 3,
                             "back_office": 3, "vault": 1}, Point(20, 2.5))
    assert ok.metrics["constraints"]["secure_no_public_wall"]["pass"]


@pytest.mark.parametrize(("width", "passes"), [(0.8, False), (1.3, True)])
def test_a_corridor_narrower_than_the_clear_width_cuts_the_route(width: float,
                                                                 passes: bool) -> None:
    std = default_standard()
    # hall at the door, a corridor, and a waiting room beyond it with its seats
    hall = box(0, 0, 6, 6)
    corridor = box(6, 2, 12, 2 + width)
    waiting = box(12, 0, 18, 6)
    seats = place_fixtures(waiting, "waiting", 6, std, wheelchair_places=1)
    door = LineString([(0, 2), (0, 4)])
    checks, route = check_route({"self_service": hall, "circulation": corridor,
                                 "waiting": waiting}, seats, None, [door], std)
    assert checks["clear_width_past_fixtures"]["pass"] is passes
    assert checks["route_reaches_public_zones"]["pass"] is passes
    if not passes:
        assert "waiting" in checks["route_reaches_public_zones"]["detail"]
        assert "seat in waiting" in checks["clear_width_past_fixtures"]["detail"]
    else:
        assert np.isfinite(route.egress_m) and route.egress_m > 12.0


def test_an_atm_whose_clear_space_leaves_its_zone_is_caught() -> None:
    std = default_standard()
    zone = box(0, 0, 4, 3)
    atms = place_fixtures(zone, "self_service", 1, std)
    assert check_fixtures(atms, {"self_service": zone}, {"self_service": 1})[
        "fixtures_inside_zone"]["pass"]
    # an ATM standing 1.5 m out from the wall: its 1.5 m clear space runs 0.75 m past the zone
    out = Fixture("atm", "self_service", box(1.6, 1.5, 2.4, 2.25), box(1.25, 2.25, 2.75, 3.75))
    rule = check_fixtures([out], {"self_service": zone}, {"self_service": 1})[
        "fixtures_inside_zone"]
    assert not rule["pass"] and "atm in self_service" in rule["detail"]
    atm = atms[0]
    # and two ATMs on one spot overlap
    twice = check_fixtures([atm, atm], {"self_service": zone}, {"self_service": 2})
    assert not twice["fixtures_no_overlap"]["pass"]


def test_fixture_counts_equal_the_planned_units(l_plan: FloorPlan) -> None:
    fx = l_plan.fixtures
    assert fx is not None
    bodies = fx[fx["part"] == "body"]
    for zone, units in l_plan.zones.set_index("zone")["units"].items():
        kind = FIXTURE_OF.get(str(zone))
        if kind is None:
            continue
        assert int(((bodies["fixture"] == kind) & (bodies["zone"] == zone)).sum()) == units, zone
    assert l_plan.metrics["constraints"]["fixtures_match_programme"]["pass"]
    # every body with its clearance inside its own zone, and no two bodies overlapping
    zones = l_plan.zones.set_index("zone").geometry
    for row in fx.itertuples():
        assert zones[row.zone].buffer(1e-4, join_style="mitre").covers(row.geometry)


def test_no_zone_exceeds_its_allowance_unless_the_surplus_is_labelled() -> None:
    std = default_standard()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a floor above the typical range warns
        plan = plan_floor(box(0, 0, 24, 14), [Point(12, 0)], 40.0, seed=0)
    assert plan.ok, {k: v for k, v in plan.metrics["constraints"].items() if not v["pass"]}
    z = plan.zones.set_index("zone")
    programme_zones = z[z["programme_m2"] > 0]
    assert (programme_zones["area_m2"] <= std.max_zone_ratio * programme_zones["programme_m2"]
            * (1 + std.area_tolerance)).all()
    surplus = z[z["programme_m2"] == 0]
    assert len(surplus) == 1 and set(surplus.index) <= {"flex", "circulation"}
    assert surplus["area_m2"].sum() > 0.25 * plan.outline.area
    verdict = plan.metrics["premises"]
    assert verdict["verdict"] == "too_large" and "would fit without it" in verdict["advice"]
    assert plan.metrics["constraints"]["zone_size_honest"]["pass"]


def test_a_cash_room_longer_than_the_counter_line_sits_in_a_staff_pocket() -> None:
    # no staff room: the vault opens from behind the counters, and its wall to the
    # service zone (7 m) is longer than the one station's staff side (1.8 m)
    zones = {
        "self_service": box(16, 0, 20, 5),
        "waiting": box(0, 0, 16, 5),
        "service": Polygon([(0, 5), (20, 5), (20, 10), (4, 10), (4, 7), (0, 7)]),
        "vault": box(0, 7, 4, 10),
    }
    done = _assembled(zones, {"self_service": 2, "waiting": 4, "service": 1, "vault": 1},
                      Point(20, 2.5))
    c = done.metrics["constraints"]
    strips = [f for f in done.fixtures if f.kind == "staff_strip"]
    counters = [f for f in done.fixtures if f.kind == "counter"]
    assert len(counters) == 1 and strips
    vault_wall = shapely.intersection(zones["vault"].boundary,
                                      zones["service"].boundary.buffer(1e-4))
    # the counter's staff side alone leaves most of the cash room's wall facing customers
    assert counters[0].staff_side.buffer(1e-4).intersection(vault_wall).length < 2.0
    # the staff side grown along the rest of the wall covers all of it: staff floor, walled off
    assert done.counter_staff is not None
    assert done.counter_staff.buffer(1e-4).intersection(vault_wall).length == \
        pytest.approx(vault_wall.length, abs=1e-3)
    assert c["secure_no_public_wall"]["pass"], c["secure_no_public_wall"]["detail"]
    assert c["staff_reach_secure"]["pass"], c["staff_reach_secure"]["detail"]
    # the strip is not public floor: the route runs outside it
    assert done.route.floor.intersection(strips[0].staff_side).area < 1e-6


def test_a_counter_pocket_with_no_staff_way_to_the_cash_room_breaks_the_security_rule() -> None:
    # the counter line split over two walls: its staff side is two pockets with the
    # customers' floor between them, and the vault opens onto the first only. A cashier
    # in the second would carry cash across public floor.
    from siteplanner.floorplan.access import COUNTER_STAFF, Door, cut_off_pockets

    std = default_standard()
    kinds = ["self_service", "waiting", "service", "vault", "back_office"]
    pockets = shapely.MultiPolygon([box(0, 0, 5.4, 1.2), box(8, 0, 13.4, 1.2)])
    vault_door = Door("controlled", COUNTER_STAFF, "vault", LineString([(1, 0), (2, 0)]))
    assert cut_off_pockets(pockets, [vault_door], kinds, std) == [
        "service: counter staff floor 2 of 2"]
    # a staff room opening onto both pockets, with a door into the vault, joins them
    doors = [vault_door,
             Door("door", COUNTER_STAFF, "back_office", LineString([(3, 0), (4, 0)])),
             Door("door", COUNTER_STAFF, "back_office", LineString([(10, 0), (11, 0)])),
             Door("controlled", "back_office", "vault", LineString([(0, -3), (0, -4)]))]
    assert cut_off_pockets(pockets, doors, kinds, std) == []
    # one pocket opening into the vault is fine; a whole counter line with no staff door
    # towards the cash room is cut off too (its cashiers would cross the customers' floor
    # to a back office entered from the public side)
    assert cut_off_pockets(box(0, 0, 5.4, 1.2), [vault_door], kinds, std) == []
    public_way = Door("controlled", "waiting", "back_office", LineString([(0, 5), (0, 6)]))
    assert cut_off_pockets(box(0, 0, 5.4, 1.2), [public_way, doors[-1]], kinds, std) == [
        "service: counter staff floor 1 of 1"]
    # with no secure zone there is nothing to reach
    assert cut_off_pockets(pockets, [], ["self_service", "waiting", "service"], std) == []


def test_a_back_office_whose_only_way_to_the_cash_room_crosses_the_customers_floor_is_named() -> None:
    # two counter lines: the left backs the back office, the right the reserve, which opens
    # into the vault. Every zone is entered from staff floor, so staff_reach_secure passes,
    # yet the back office's staff would carry cash across the customers' floor
    from siteplanner.floorplan.access import COUNTER_STAFF, Door, staff_rooms_cut_off

    std = default_standard()
    kinds = ["self_service", "waiting", "service", "back_office", "reserve", "vault", "restroom"]
    pockets = shapely.MultiPolygon([box(0, 0, 5.4, 1.2), box(8, 0, 13.4, 1.2)])
    doors = [Door("door", COUNTER_STAFF, "back_office", LineString([(1, 1.2), (2, 1.2)])),
             Door("door", COUNTER_STAFF, "reserve", LineString([(10, 1.2), (11, 1.2)])),
             Door("controlled", "reserve", "vault", LineString([(13, 4), (13, 5)])),
             Door("door", "waiting", "restroom", LineString([(6, 8), (7, 8)]))]
    # the restroom is no one's workplace, so it is not named
    assert staff_rooms_cut_off(pockets, doors, kinds, std) == ["back_office"]
    # a door between the back office and the reserve gives it a staff-only way
    joined = [*doors, Door("door", "back_office", "reserve", LineString([(6, 3), (7, 3)]))]
    assert staff_rooms_cut_off(pockets, joined, kinds, std) == []
    # one counter line joining both rooms does too
    one = [Door("door", COUNTER_STAFF, "back_office", LineString([(1, 1.2), (2, 1.2)])),
           *doors[1:3]]
    assert staff_rooms_cut_off(box(0, 0, 13.4, 1.2), one, kinds, std) == []
    # a back office entered only from the customers' floor is cut off
    public = [Door("door", "waiting", "back_office", LineString([(0, 5), (0, 6)])), *doors[1:3]]
    assert staff_rooms_cut_off(pockets, public, kinds, std) == ["back_office"]
    # with no secure zone there is nothing to reach
    assert staff_rooms_cut_off(pockets, doors[:2], kinds[:5], std) == []


def test_a_staff_room_opens_onto_each_pocket_of_a_split_counter_line() -> None:
    # the back office runs along both runs of a counter line split by customers' floor:
    # one door onto each run's staff side, so both runs' cashiers reach the back office
    from siteplanner.floorplan._check import shared_walls
    from siteplanner.floorplan.access import COUNTER_STAFF, cut_off_pockets, plan_doors

    std = default_standard()
    kinds = ["waiting", "service", "back_office", "vault"]
    zones = [box(14, 0, 20, 6), box(0, 0, 14, 6), box(0, 6, 14, 10), box(14, 6, 20, 10)]
    staff = shapely.MultiPolygon([box(0, 4.8, 5.4, 6), box(8, 4.8, 13.4, 6)])
    doors = plan_doors(zones, kinds, shared_walls(zones), staff, std)
    onto = [d for d in doors if d.a == COUNTER_STAFF and d.b == "back_office"]
    assert len(onto) == 2
    assert {round(d.geometry.centroid.x) for d in onto} == {3, 11}
    assert cut_off_pockets(staff, doors, kinds, std) == []


def test_the_counters_back_onto_the_back_office_so_cashiers_reach_the_cash_room() -> None:
    # the service zone's longest wall is an outer wall (14 m); the back office holds 8 m of
    # the wall opposite. Along the outer wall the line's staff side touched no staff room,
    # so its cashiers would cross the customers' floor to the vault; backed onto the back
    # office, they open into it
    zones = {"self_service": box(14, 0, 18, 10), "waiting": box(8, 0, 14, 4),
             "service": box(0, 4, 14, 10), "back_office": box(0, 0, 8, 4),
             "vault": box(0, -3, 4, 0)}
    done = _assembled(zones, {"self_service": 2, "waiting": 4, "service": 3, "back_office": 3,
                              "vault": 1}, Point(18, 5))
    assert done.metrics["all_constraints_pass"]
    assert done.metrics["counter_pockets_cut_off"] == []
    staff = [f.staff_side for f in done.fixtures if f.kind == "counter"]
    assert len(staff) == 3
    assert all(s.bounds[1] == pytest.approx(4.0) for s in staff)  # against the back office
    assert ("door", "counter_staff", "back_office") in {(d.kind, d.a, d.b) for d in done.doors}


def test_a_counter_line_keeps_clear_only_the_corners_it_turns() -> None:
    # a line on the bottom and right walls of a 10 x 6 m zone turns the corner they share:
    # there a station must stand a staff side's depth (1.2 m) clear, so staff floor joins
    # the two runs; the bottom wall's other end, where no station stands round the corner,
    # may hold one (with ``every``, as before, every wall's ends are kept clear)
    from siteplanner.floorplan.fixtures import _clear_of_turns, _edges, _wall_modules

    zone = box(0.0, 0.0, 10.0, 6.0)
    edges = _edges(zone)
    edge, start, _ = _wall_modules(zone, 1.8, 3.6, None)
    bottom = int(np.flatnonzero((edges[:, 1] == 0) & (edges[:, 3] == 0))[0])
    right = int(np.flatnonzero((edges[:, 0] == 10) & (edges[:, 2] == 10))[0])
    on_bottom, on_right = np.flatnonzero(edge == bottom), np.flatnonzero(edge == right)
    west = int(on_bottom[np.argmin(start[on_bottom])])  # flush with the free corner
    east = int(on_bottom[np.argmax(start[on_bottom])])  # flush with the corner turned
    taken = [west, int(on_right[len(on_right) // 2])]
    clear = _clear_of_turns(edges, edge, start, taken, 1.8, 1.2)
    assert clear[west] and not clear[east]
    assert clear[on_bottom[start[on_bottom] + 1.8 <= 10.0 - 1.2 + 1e-9]].all()
    every = _clear_of_turns(edges, edge, start, taken, 1.8, 1.2, every=True)
    assert not every[west] and not every[east]


def test_the_search_charges_a_counter_line_its_walls_to_the_back_of_house_cannot_hold() -> None:
    kinds = ("self_service", "waiting", "service", "back_office", "vault", "restroom")
    masks = access_masks(kinds, default_standard())
    walls = np.zeros((6, 6))
    walls[2, 5] = walls[5, 2] = 6.0  # a WC wall backs nothing: staff do not walk through it
    assert unbacked_service(walls, masks, 1.8, 9.0) == UNBACKED_WEIGHT
    walls[2, 3] = walls[3, 2] = 1.5  # shorter than a door
    assert unbacked_service(walls, masks, 1.8, 9.0) == UNBACKED_WEIGHT
    walls[2, 3] = walls[3, 2] = 3.0  # holds a third of a 9 m line
    assert unbacked_service(walls, masks, 1.8, 9.0) == pytest.approx(UNBACKED_WEIGHT * 2 / 3)
    walls[2, 4] = walls[4, 2] = 6.0  # the cash room's wall holds the rest
    assert unbacked_service(walls, masks, 1.8, 9.0) == 0.0


def test_the_search_for_a_backed_layout_counts_a_service_zone_off_the_back_of_house_as_a_broken_rule(
) -> None:
    kinds = ("self_service", "waiting", "service", "back_office", "vault")
    masks = access_masks(kinds, default_standard())
    walls = np.zeros((5, 5))
    with as_hard_rule():
        assert unbacked_service(walls, masks, 1.8, 9.0) == HARD_COST + UNBACKED_WEIGHT
        with without_term():  # the backed search runs under the second search's mode too
            assert unbacked_service(walls, masks, 1.8, 9.0) == HARD_COST + UNBACKED_WEIGHT
        walls[2, 3] = walls[3, 2] = 3.0  # a door-wide wall: the share is left, above closeness
        assert unbacked_service(walls, masks, 1.8, 9.0) == pytest.approx(HARD_SHARE_WEIGHT * 2 / 3)
        assert HARD_SHARE_WEIGHT > 1.0  # the adjacency term's whole range
    # and off again after: the share weighs the soft term's weight
    assert unbacked_service(walls, masks, 1.8, 9.0) == pytest.approx(UNBACKED_WEIGHT * 2 / 3)


def test_a_refusal_no_complete_search_proves_is_searched_again_without_the_backed_line_term() -> None:
    masks = access_masks(("self_service", "waiting", "service", "back_office"), default_standard())
    unbacked = np.zeros((4, 4))  # the service zone shares no wall with the back office
    seen: list[float] = []

    def search(proven: bool) -> str:
        seen.append(unbacked_service(unbacked, masks, 1.8, 9.0))
        if seen[-1] > 0:  # refused while the term is on
            raise LayoutRefused("no layout meets every hard constraint", proven=proven)
        return "a plan"

    assert unless_unproven(lambda: search(False)) == "a plan"
    assert seen == [UNBACKED_WEIGHT, 0.0]
    seen.clear()
    with pytest.raises(LayoutRefused):  # a complete search's proof holds without the term
        unless_unproven(lambda: search(True))
    assert seen == [UNBACKED_WEIGHT]
    assert unbacked_service(unbacked, masks, 1.8, 9.0) == UNBACKED_WEIGHT  # on again after


def test_the_cheap_searches_come_first_and_the_exhaustive_fallback_last() -> None:
    """Without the fallback, with the term and then without it; only when both refuse is
    the search run with its fallback (with the term, then without it when unproven), and
    the cheap mode is off again after."""
    from siteplanner.floorplan._fallback import quick

    masks = access_masks(("self_service", "waiting", "service", "back_office"), default_standard())
    unbacked = np.zeros((4, 4))
    calls: list[tuple[bool, float]] = []

    def search() -> str:
        calls.append((quick(), unbacked_service(unbacked, masks, 1.8, 9.0)))
        if calls[-1] != (False, 0.0):  # only the full search without the term plans
            raise LayoutRefused("no layout meets every hard constraint", proven=False)
        return "a plan"

    assert unless_unproven(search) == "a plan"
    assert calls == [(True, UNBACKED_WEIGHT), (True, 0.0), (False, UNBACKED_WEIGHT), (False, 0.0)]
    assert not quick()


def test_a_long_counter_line_sends_its_overflow_to_a_wall_staff_floor_can_join() -> None:
    # 14 stations (25.2 m of line) in a 14 x 9.7 m service zone whose 14 m wall to the back
    # office holds 7: the placement sent the overflow to the right-hand wall (3, joined by
    # a strip) and the wall to the waiting zone (4), whose run no strip could reach past the
    # right-hand run's modules: 4 cashiers cut off from the vault. With the overflow sent to
    # the left-hand wall first, the right-hand wall is free for a strip joining the top run
    zones = {"self_service": box(10, 9.7, 14, 14), "waiting": box(0, 9.7, 10, 14),
             "service": box(0, 0, 14, 9.7), "advisory": box(-8, 0, 0, 9.7),
             "back_office": box(0, -8, 14, 0), "vault": box(0, -11, 4, -8)}
    done = _assembled(zones, {"self_service": 2, "waiting": 8, "service": 14, "advisory": 4,
                              "back_office": 3, "vault": 1}, Point(12, 14))
    assert done.metrics["all_constraints_pass"]
    assert done.metrics["fixtures"]["counter"] == 14  # not one station fewer
    assert done.metrics["counter_pockets_cut_off"] == []


def test_a_counter_line_starting_in_the_back_offices_corner_opens_into_it_through_its_end() -> None:
    # outline #17's layout (in its layout frame): a 16.5 x 4.6 m service zone whose one wall
    # to the back office is its 4.6 m end. The backed line put one station on that end wall
    # and eight along the outer wall, whose run no strip could join past the first station's
    # customer side: 8 cashiers cut off from the vault. All nine along the outer wall from
    # the back office's corner hold the line in one run whose staff side ends on the back
    # office's wall, a door's width of it
    zones = {"self_service": box(9.154238, -3.068527, 15.805401, -0.058527),
             "waiting": box(13.442104, 2.812254, 16.564985, 7.432988),
             "service": box(-3.016323, 2.812254, 13.442104, 7.432988),
             "advisory": Polygon([(-3.016323, -0.058527), (-3.016323, 2.812254),
                                  (16.564985, 2.812254), (16.564985, -3.068527),
                                  (15.805401, -3.068527), (15.805401, -0.058527)]),
             "back_office": Polygon([(-16.564985, 4.863941), (-13.995938, 4.863941),
                                     (-13.995938, 7.432988), (-3.016323, 7.432988),
                                     (-3.016323, -0.058527), (-16.564985, -0.058527)]),
             "vault": box(-16.564985, 4.863941, -13.995938, 7.432988)}
    done = _assembled(zones, {"self_service": 4, "waiting": 8, "service": 9, "advisory": 5,
                              "back_office": 14, "vault": 1},
                      Point(12.867282, -3.068527))
    assert done.metrics["all_constraints_pass"]
    assert done.metrics["fixtures"]["counter"] == 9  # not one station fewer
    assert done.metrics["counter_pockets_cut_off"] == []
    staff = [f.staff_side for f in done.fixtures if f.kind == "counter"]
    assert all(s.bounds[3] == pytest.approx(7.432988) for s in staff)  # one run, on the outer wall
    assert any(d.kind == "door" and {d.a, d.b} == {"counter_staff", "back_office"}
               for d in done.doors)
