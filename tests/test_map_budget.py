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
