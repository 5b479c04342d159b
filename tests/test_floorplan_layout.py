"""Layout: exact cuts on concave outlines, hard constraints, surplus, determinism, bad input."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import Point, Polygon, box

from siteplanner._errors import InputError
from siteplanner.floorplan import FloorPlan, default_standard, load_standard, plan_floor
from siteplanner.floorplan._check import shared_walls
from siteplanner.floorplan.layout import cut_area

DATA = Path(__file__).parent / "data" / "floorplan"
L_SHAPE = Polygon([(0, 0), (20, 0), (20, 8), (9, 8), (9, 16), (0, 16)])
U_SHAPE = Polygon([(0, 0), (24, 0), (24, 14), (17, 14), (17, 6), (7, 6), (7, 14), (0, 14)])


@pytest.mark.parametrize("poly", [L_SHAPE, U_SHAPE,
                                  Polygon([(0, 0), (16, 0), (20, 4), (20, 12), (0, 12)])])
@pytest.mark.parametrize("vertical", [True, False])
def test_cut_position_gives_the_exact_area_share_on_concave_outlines(
        poly: Polygon, vertical: bool) -> None:
    x0, y0, x1, y1 = poly.bounds
    for share in (0.07, 0.33, 0.5, 0.81):
        t = cut_area(poly, share, vertical=vertical)
        half = box(x0 - 1, y0 - 1, t, y1 + 1) if vertical else box(x0 - 1, y0 - 1, x1 + 1, t)
        assert poly.intersection(half).area == pytest.approx(share * poly.area, rel=1e-9)


@pytest.fixture(scope="module")
def l_plan() -> FloorPlan:
    return plan_floor(L_SHAPE, [Point(20, 4)], 80.0, seed=3)


def test_plan_passes_every_hard_constraint_on_an_l_shape(l_plan: FloorPlan) -> None:
    m = l_plan.metrics
    failed = {k: v["detail"] for k, v in m["constraints"].items() if not v["pass"]}
    assert not failed
    assert set(m["constraints"]) >= {"inside_outline", "no_overlap", "covers_outline",
                                     "area_within_tolerance", "self_service_at_entrance",
                                     "x_pairs_no_shared_wall", "turning_circle", "min_width"}
    assert m["area_error_max"] < 1e-5
    assert m["x_violations"] == []
    z = l_plan.zones
    assert shapely.union_all(z.geometry.values).symmetric_difference(L_SHAPE).area < 1e-4
    ss = z.set_index("zone").geometry["self_service"]
    assert ss.distance(Point(20, 4)) < 1e-6


def test_zone_kinds_have_stable_names_and_units(l_plan: FloorPlan) -> None:
    z = l_plan.zones.set_index("zone")
    # the seven programme zones, then the floor beyond what they may hold (1.5x their
    # programme) as one labelled surplus zone: flex floor, or circulation when the
    # public route runs through it
    assert list(z.index[:7]) == ["self_service", "waiting", "service", "advisory",
                                 "back_office", "vault", "restroom"]
    assert len(z) == 8 and z.index[7] in ("flex", "circulation")
    assert z.loc[z.index[7], "units"] == 0 and z.loc[z.index[7], "programme_m2"] == 0
    assert z.loc["service", "unit"] == "stations" and z.loc["service", "units"] >= 1
    assert z.loc["waiting", "unit"] == "seats"


def test_surplus_floor_goes_to_public_zones_in_proportion(l_plan: FloorPlan) -> None:
    z = l_plan.zones.set_index("zone")
    assert z["target_m2"].sum() == pytest.approx(L_SHAPE.area)
    assert l_plan.metrics["surplus_m2"] == pytest.approx(L_SHAPE.area - z["programme_m2"].sum())
    fixed = ["advisory", "back_office", "vault", "restroom"]
    assert np.allclose(z.loc[fixed, "target_m2"], z.loc[fixed, "programme_m2"])
    takers = ["waiting", "self_service", "service"]
    growth = z.loc[takers, "target_m2"] / z.loc[takers, "programme_m2"]
    assert np.allclose(growth, growth.iloc[0]) and growth.iloc[0] > 1.0
    # honest sizes: the takers grow at most to the standard's ratio, the rest is labelled
    assert growth.iloc[0] <= default_standard().max_zone_ratio + 1e-9
    surplus = z.index[~z.index.isin([*fixed, *takers])]
    assert set(surplus) <= {"flex", "circulation"}
    assert z.loc[surplus, "target_m2"].sum() == pytest.approx(
        L_SHAPE.area - z.loc[[*fixed, *takers], "target_m2"].sum())


def test_same_inputs_and_seed_give_the_same_layout(l_plan: FloorPlan) -> None:
    again = plan_floor(L_SHAPE, [Point(20, 4)], 80.0, seed=3)
    assert all(a.equals_exact(b, 0.0) for a, b in zip(l_plan.zones.geometry,
                                                      again.zones.geometry, strict=True))


def test_rotated_outline_gets_walls_along_its_own_axes() -> None:
    std = load_standard(DATA / "standard_small.toml")
    turned = affinity.rotate(box(0, 0, 18, 11), 30, origin=(0, 0))
    door = turned.exterior.interpolate(9.0)
    plan = plan_floor(turned, [door], 50.0, standard=std, seed=1)
    assert plan.ok, plan.metrics["constraints"]
    for g in plan.zones.geometry:
        c = shapely.get_coordinates(g)
        d = np.diff(c, axis=0)
        ang = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 90
        assert np.all((np.abs(ang - 30) < 1e-6) | (np.abs(ang - 60) < 1e-6)
                      | (np.hypot(*d.T) < 1e-6))


def test_outline_too_small_says_by_how_much_and_offers_a_fit() -> None:
    with pytest.raises(InputError, match=r"outline is \d+\.\d m² too small.*reduced programme "
                                         r"that fits is .*stations.*--fit"):
        plan_floor(box(0, 0, 10, 10), [Point(5, 0)], 120.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_floor(box(0, 0, 14, 10), [Point(7, 0)], 120.0, fit=True)
    assert plan.metrics["reduced_programme"] is True
    assert plan.zones["programme_m2"].sum() <= 140.0 + 1e-9


def test_entrance_off_the_wall_reports_its_distance() -> None:
    with pytest.raises(InputError, match=r"entrance \(10, 3\) is 3\.00 m from the outline wall"):
        plan_floor(box(0, 0, 20, 12), [Point(10, 3)], 60.0)


@pytest.mark.parametrize(("outline", "match"), [
    (Polygon([(0, 0), (10, 10), (10, 0), (0, 10)]), "not a simple polygon"),
    (Polygon(), "empty"),
    (box(0, 0, 20, 20).difference(box(5, 5, 8, 8)), "hole"),
])
def test_bad_outlines_are_rejected(outline: Polygon, match: str) -> None:
    with pytest.raises(InputError, match=match):
        plan_floor(outline, [Point(0, 1)], 60.0)


def test_default_turning_circle_fits_every_public_zone(l_plan: FloorPlan) -> None:
    circles = l_plan.metrics["largest_circle_m"]
    std = default_standard()
    for kind, d in circles.items():
        if std.spec(kind).public:
            assert d >= 1.5 - 0.02
    assert math.isfinite(l_plan.metrics["runtime_s"]["total"])


def test_shared_walls_survive_rotation(l_plan: FloorPlan) -> None:
    zones = list(l_plan.zones.geometry)
    turned = [affinity.rotate(z, 37, origin=(0, 0)) for z in zones]
    assert np.allclose(shared_walls(zones), shared_walls(turned), atol=1e-3)
    assert shared_walls(zones).max() > 1.0
