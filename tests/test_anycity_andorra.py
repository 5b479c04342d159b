"""A study of a whole country from its own boundary: the bundled Andorra extract."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from siteplanner import datasets
from siteplanner._errors import InputError
from siteplanner.config import Study
from siteplanner.layers import build_layers
from siteplanner.pipeline import rank_sites
from siteplanner.sources.pbf import read_pbf

PARISHES = {"Andorra la Vella", "Canillo", "Encamp", "Escaldes-Engordany", "La Massana", "Ordino",
            "Sant Julià de Lòria"}


def _study(**study: object) -> Study:
    # resolution 9 (~200 m cells) keeps the whole country to a few thousand candidates
    return Study.from_dict({
        "study": {"name": "Andorra", "brand": ["MoraBanc"], "osm": str(datasets.andorra().osm),
                  **study},
        "candidates": {"h3_resolution": 9},
        "model": {"stability_draws": 0, "clusters": False, "territories": False}})


@pytest.fixture(scope="module")
def andorra():
    return rank_sites(_study(area={"admin_level": 2}))


@pytest.fixture(scope="module")
def osm():
    return read_pbf(datasets.andorra().osm)


@pytest.mark.slow
def test_country_study_keeps_candidates_inside_the_country(andorra, osm):
    country = osm.boundaries[osm.boundaries["admin_level"] == 2].geometry.iloc[0]
    pts = andorra.candidates.to_crs(4326).geometry.values
    outside = ~shapely.contains(country, pts)
    assert outside.mean() <= 0.01
    assert andorra.layers.area_name == "Andorra"
    assert andorra.layers.area_source == "boundary"


@pytest.mark.slow
def test_every_chosen_site_names_a_real_nearby_street_and_its_parish(andorra):
    sel = andorra.selected
    assert len(sel) == 10
    streets = andorra.layers.streets
    named = streets[streets["name"].notna()]
    for _, row in sel.iterrows():
        near = named[named.distance(row.geometry) <= 150]
        assert any(str(n) in row["address"] for n in near["name"]), row["address"]
        assert row["district"].split(", ")[-1] in PARISHES, row["district"]


@pytest.mark.slow
def test_candidates_stand_near_streets_and_run_json_counts_them(andorra):
    rep = andorra.extras["candidates"]
    assert rep["cells_in_area"] > rep["near_street"] >= rep["candidates"] == len(andorra.candidates)
    # mountains: over a third of the country's cells are far from any walkable street
    assert rep["candidates"] < 0.7 * rep["cells_in_area"]
    d = shapely.distance(andorra.candidates.geometry.values,
                         shapely.union_all(andorra.layers.streets.geometry.values))
    assert np.all(d <= rep["street_within_m"] + 1e-6)


@pytest.mark.slow
def test_edge_candidates_are_flagged_near_the_data_border_and_never_selected(andorra):
    c = andorra.candidates
    assert c["edge"].sum() == andorra.extras["candidates"]["edge"] >= 1
    assert not andorra.selected["edge"].any()
    assert (c.loc[c["edge"], "status"].str.startswith("edge")).all()
    extent = andorra.layers.extent
    d = shapely.distance(c.loc[c["edge"]].geometry.values, shapely.boundary(extent))
    assert np.all(d < andorra.extras["candidates"]["edge_reach_m"])
    assert any("edge of the data" in w for w in andorra.warnings)


@pytest.mark.slow
def test_near_duplicate_spellings_of_the_brand_are_warned(andorra):
    text = " ".join(andorra.warnings)
    assert "Morabank" in text and "study.aliases" in text


def test_area_name_picks_a_parish(osm):
    layers = build_layers(brand=("MoraBanc",), osm=osm, area_name="ordino")
    parish = osm.boundaries[osm.boundaries["name"] == "Ordino"].geometry.iloc[0]
    assert layers.area_name == "Ordino" and layers.area_level == 7
    assert shapely.equals(layers.area.to_crs(4326).geometry.iloc[0].normalize(), parish.normalize()) \
        or abs(layers.area.to_crs(4326).geometry.iloc[0].area - parish.area) < 1e-9


def test_unknown_area_name_lists_the_boundaries_in_the_data(osm):
    with pytest.raises(InputError) as e:
        build_layers(brand=("MoraBanc",), osm=osm, area_name="Atlantis")
    msg = str(e.value)
    assert "\n" not in msg and "'Atlantis'" in msg
    assert "Andorra (level 2)" in msg and "Ordino (level 7)" in msg


def test_admin_level_with_no_boundary_says_which_levels_exist(osm):
    with pytest.raises(InputError, match=r"no boundary at admin_level 4.*levels present: 2, 7, 8"):
        build_layers(brand=("MoraBanc",), osm=osm, admin_level=4)


def test_user_area_not_overlapping_the_data_is_refused(osm):
    far = gpd.GeoDataFrame(geometry=[shapely.box(24.9, 60.1, 25.0, 60.2)], crs=4326)
    with pytest.raises(InputError, match="does not overlap the data"):
        build_layers(brand=("MoraBanc",), osm=osm, user={"area": far}, user_paths={"area": "a.geojson"})


def test_brand_with_no_match_lists_found_brands_grouped(osm):
    with pytest.raises(InputError) as e:
        build_layers(brand=("Bank of Atlantis",), osm=osm, admin_level=2)
    msg = str(e.value)
    assert "Crèdit Andorrà / Crédit Andorra" in msg and "AndBanc / Andbank" in msg


def test_aliases_make_the_other_spellings_own_branches(osm):
    plain = build_layers(brand=("MoraBanc",), osm=osm, admin_level=2)
    more = build_layers(brand=("MoraBanc",), osm=osm, admin_level=2, aliases=("Morabank",))
    assert len(more.own_branches) == len(plain.own_branches) + 1


def test_country_without_railway_has_no_rail_or_metro_stops(osm):
    layers = build_layers(brand=("MoraBanc",), osm=osm, admin_level=2)
    modes = set(layers.transit["mode"])
    assert "bus" in modes and not modes & {"rail", "metro"}


@pytest.mark.slow
def test_a_run_with_no_study_file_is_titled_after_the_country_and_stays_inside_it(runner, tmp_path,
                                                                                 osm):
    from siteplanner.cli import app

    out = tmp_path / "out"
    res = runner.invoke(app, ["rank", "--osm", str(datasets.andorra().osm), "--brand", "MoraBanc",
                              "--set", "candidates.h3_resolution=9", "--set",
                              "model.stability_draws=0", "--no-report", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Andorra: top 10 sites" in res.stdout
    assert "Helsinki" not in res.output
    run = __import__("json").loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["study"]["name"] == "Andorra"
    # nothing of the demo's study leaks in: the package defaults, not Helsinki's
    assert run["study"]["selection"]["min_spacing_m"] == 400.0
    cands = gpd.read_file(out / "sites.gpkg", layer="candidates")
    country = osm.boundaries[osm.boundaries["admin_level"] == 2].geometry.iloc[0]
    assert (~shapely.contains(country, cands.geometry.values)).mean() <= 0.01
    sel = gpd.read_file(out / "sites.gpkg", layer="selected")
    assert sel["address"].notna().all() and sel["district"].notna().all()


@pytest.mark.slow
def test_a_study_with_no_outline_plans_its_top_sites_in_their_own_osm_buildings(andorra):
    # no [floorplan] outline: premises = "auto" takes each site's OSM footprint
    plans = andorra.floorplans
    assert len(plans) == 3
    for sid, sp in plans.items():
        assert sp.summary["premises"].startswith("osm building "), (sid, sp.summary)
        assert sp.plan is not None and sp.plan.ok, (sid, sp.summary)
        assert sp.plan.metrics["premises_source"] == sp.summary["premises"]
