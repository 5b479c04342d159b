"""A large study's map stays small: streets, heat points and stops within their budgets."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from siteplanner import _map_budget as mb
from siteplanner.footfall import foot_traffic_points
from siteplanner.maps import build_map


def _vertices(lines: np.ndarray) -> int:
    return int(shapely.get_num_coordinates(lines).sum())


def test_all_streets_are_drawn_within_the_budget(demo_result):
    streets = demo_result.layers.streets
    lines, left_out = mb.street_lines(streets)
    assert left_out is None
    drawn = shapely.length(lines).sum()
    assert drawn == pytest.approx(streets.length.sum(), rel=0.01), "1 m simplification keeps length"


def test_over_budget_the_footways_go_first_and_the_main_roads_stay(demo_result):
    streets = demo_result.layers.streets
    full, _ = mb.street_lines(streets)
    budget = _vertices(full) // 2
    lines, left_out = mb.street_lines(streets, budget=budget)
    assert left_out is not None and left_out.startswith("without footways and paths")
    assert _vertices(lines) <= budget
    main = streets[streets["highway"].isin(["primary", "secondary", "tertiary"])]
    covered = shapely.buffer(lines[0], 1.5)
    assert main.geometry.within(covered).mean() > 0.95, "the main roads are still drawn"
    foot = streets[streets["highway"] == "footway"]
    assert foot.geometry.within(covered).mean() < 0.5


def test_heat_points_past_the_budget_are_summed_without_losing_weight(demo_result):
    pts, _ = foot_traffic_points(demo_result.layers)
    xy = np.column_stack([pts.geometry.x, pts.geometry.y])
    w = pts["count"].to_numpy(dtype=float)
    same, same_w, cell = mb.heat_points(xy, w, budget=len(xy))
    assert cell is None and same is xy
    budget = max(len(xy) // 10, 5)
    out, out_w, cell = mb.heat_points(xy, w, budget=budget)
    assert cell is not None and cell > 1 and len(out) <= budget
    assert out_w.sum() == pytest.approx(w.sum())
    # the weighted centre of the whole heat map does not move
    np.testing.assert_allclose((out * out_w[:, None]).sum(0) / out_w.sum(),
                               (xy * w[:, None]).sum(0) / w.sum(), atol=1e-6)


def test_past_the_stop_budget_only_stops_near_the_chosen_sites_are_drawn(demo_result):
    transit = demo_result.layers.transit
    sites = demo_result.selected.to_crs(transit.crs)
    kept, near = mb.stops_near(transit, sites, budget=len(transit))
    assert not near and len(kept) == len(transit)
    kept, near = mb.stops_near(transit, sites.head(1), budget=10, within_m=300)
    assert near and 0 < len(kept) <= 10
    d = kept.geometry.distance(sites.geometry.iloc[0])
    assert (d <= 300 + 1e-6).all()
    # the nearest are the ones kept
    all_d = transit.geometry.distance(sites.geometry.iloc[0])
    assert d.max() <= all_d[~transit.index.isin(kept.index)].min() + 1e-6


def test_outlines_are_simplified_to_metres_and_keep_their_area(demo_result):
    catch = demo_result.catchments
    out = mb.simplified(catch, extent=demo_result.layers.area.total_bounds)
    before = shapely.get_num_coordinates(catch.geometry.to_numpy()).sum()
    after = shapely.get_num_coordinates(out.geometry.to_numpy()).sum()
    assert after < before
    np.testing.assert_allclose(out.area, catch.area, rtol=0.02)
    assert out.geometry.is_valid.all()


def test_the_map_says_what_it_left_out(demo_result, monkeypatch):
    monkeypatch.setattr(mb, "STREET_VERTICES", 2_000)
    monkeypatch.setattr(mb, "HEAT_POINTS", 50)
    monkeypatch.setattr(mb, "STOP_POINTS", 5)
    html = build_map(demo_result).get_root().render()
    assert "Study area and streets (offline base, without footways and paths" in html
    assert "m grid" in html
    assert "of a chosen site" in html


def test_outlines_over_their_vertex_budget_get_coarser_and_the_layer_says_so(demo_result,
                                                                             monkeypatch):
    catch = demo_result.catchments
    extent = demo_result.layers.area.total_bounds
    city = mb.simplified(catch, extent=extent)
    assert city.attrs["simplified_m"] == 2.0
    budget = int(shapely.get_num_coordinates(city.geometry.to_numpy()).sum()) // 3
    out = mb.simplified(catch, extent=extent, budget=budget)
    assert shapely.get_num_coordinates(out.geometry.to_numpy()).sum() <= budget
    assert out.attrs["simplified_m"] > 2.0 and out.geometry.is_valid.all()
    np.testing.assert_allclose(out.area, catch.area, rtol=0.1)  # still the same walk areas
    monkeypatch.setattr(mb, "ZONE_VERTICES", budget)
    html = build_map(demo_result).get_root().render()
    assert f"Catchments (walk time, outlines to {out.attrs['simplified_m']:,.0f} m)" in html


def _merged(geoms: np.ndarray) -> np.ndarray:
    return shapely.get_parts(shapely.line_merge(shapely.multilinestrings(shapely.get_parts(geoms))))


def _awkward_streets() -> np.ndarray:
    """What a street layer can hold besides plain segments: a segment drawn twice, one of
    zero length, a loop back to a junction, a ring on its own, a -0.0 coordinate and a
    winding path of many vertices between two junctions."""
    wind = [(100.0 + 10 * i, 50.0 + (8 if i % 2 else 0)) for i in range(12)]
    return np.array([
        shapely.LineString([(0, 0), (10, 0)]), shapely.LineString([(0, 0), (10, 0)]),
        shapely.LineString([(10, 0), (10, 0)]), shapely.LineString([(10, 0), (20, 5), (20, -5), (10, 0)]),
        shapely.LineString([(-0.0, 0), (0, 30)]), shapely.LineString([(0, 30), (40, 30)]),
        shapely.LineString([(60, 60), (70, 60), (70, 70), (60, 60)]),
        shapely.LineString([(40, 30), wind[0]]), shapely.LineString(wind),
        shapely.LineString([wind[-1], (300, 50)]), shapely.LineString([wind[-1], (300, 80)]),
    ], dtype=object)


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 8.0])
def test_the_street_bound_never_exceeds_what_merging_keeps(demo_result, tolerance):
    """The bound that lets a class that cannot fit go unmerged is a true lower bound, and
    counts each open line of the merge (two end vertices) as GEOS's merger makes them."""
    streets = demo_result.layers.streets
    group = mb._group_of(streets["highway"])
    geoms = streets.geometry.to_numpy()
    for sample in [*(geoms[group == g] for g in np.unique(group)), geoms, _awkward_streets()]:
        bound = mb._vertices_at_least(sample, tolerance)
        merged = _merged(sample)
        open_lines = int((~shapely.is_closed(merged)).sum())
        assert 2 * open_lines <= bound <= _vertices(mb._lines(sample, tolerance))


def test_street_classes_left_out_are_those_merging_every_class_would_leave(demo_result):
    """Whatever the budget, the map leaves out the same classes (and draws the same lines)
    as merging each class to count it did."""
    streets = demo_result.layers.streets
    tolerance = mb._tolerance(streets.total_bounds, 1.0)
    group = mb._group_of(streets["highway"])
    geoms = streets.geometry.to_numpy()
    sizes = [_vertices(mb._lines(geoms[group == g], tolerance))
             for g in range(len(mb.DROP_ORDER) + 1)]
    for budget in (500, 2_000, 4_000, 6_000, 20_000):
        lines, left_out = mb.street_lines(streets, budget=budget)
        used, keep_from = sizes[-1], len(mb.DROP_ORDER)
        while keep_from > 0 and used + sizes[keep_from - 1] <= budget:
            used += sizes[keep_from - 1]
            keep_from -= 1
        want = (None if keep_from == 0 else
                "without " + ", ".join(label for label, _ in mb.DROP_ORDER[:keep_from]))
        assert left_out == want, budget
        assert _vertices(lines) == (_vertices(mb._lines(geoms, tolerance)) if keep_from == 0 else used)
