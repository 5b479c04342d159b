"""Study area, buildable land, addresses, brands and transit modes on the Helsinki extract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from siteplanner import datasets
from siteplanner.brands import brand_groups, match_brand, normalise
from siteplanner.candidates import site_candidates
from siteplanner.layers import build_layers, classify_transit
from siteplanner.sources.pbf import read_pbf


@pytest.fixture(scope="module")
def osm():
    return read_pbf(datasets.helsinki().osm)


@pytest.fixture(scope="module")
def layers(osm):
    with pytest.warns(UserWarning, match="extent of the data"):
        return build_layers(brand=("Nordea",), osm=osm)


def test_city_clip_without_boundaries_falls_back_to_its_extent_with_a_warning(layers):
    assert layers.area_source == "extent" and layers.area_name is None
    assert len(layers.boundaries) == 0


def test_candidates_avoid_water_parks_and_rail_and_stay_near_streets(layers):
    cands, rep = site_candidates(layers, resolution=11, reach_m=600)
    blocked = shapely.union_all(layers.blocked.geometry.values)
    assert not shapely.within(cands.geometry.values, blocked).any()
    assert rep["cells_in_area"] > rep["near_street"] > rep["candidates"] == len(cands)
    d = shapely.distance(cands.geometry.values, shapely.union_all(layers.streets.geometry.values))
    assert d.max() <= rep["street_within_m"]
    # the extract is a 1 km clip: every 600 m reach runs past its edge
    assert cands["edge"].all()


def test_sites_get_house_number_addresses_and_districts(layers):
    cands, rep = site_candidates(layers, resolution=11, reach_m=600)
    assert cands["address"].notna().all() and cands["district"].notna().all()
    numbered = cands[cands["address_source"] == "house number"]
    assert len(numbered) > len(cands) / 2
    assert (numbered["address_m"] <= rep["street_within_m"]).all()
    # a house number's street is a real street of the extract
    names = set(layers.streets["name"].dropna())
    streets = numbered["address"].str.rsplit(" ", n=1).str[0]
    assert streets.isin(names).mean() > 0.9
    assert {"Kluuvi", "Kaartinkaupunki"} <= set(cands["district"])


def test_real_transit_tags_give_their_modes(osm):
    t = classify_transit(osm.features)
    counts = t["mode"].value_counts()
    assert counts["metro"] >= 30 and counts["tram"] >= 30 and counts["bus"] >= 50
    assert counts["rail"] >= 1
    metro = t[t["mode"] == "metro"]
    assert (metro["railway"].eq("subway_entrance") | metro["station"].eq("subway")
            | metro["subway"].eq("yes")).all()


def test_train_station_entrance_tagged_subway_entrance_is_not_metro():
    tags = pd.DataFrame({"railway": ["subway_entrance", "subway_entrance", "station", "station"],
                         "train": ["yes", None, "yes", None], "subway": [None, None, None, "yes"],
                         "station": [None, None, None, "subway"]})
    for k in ("highway", "public_transport", "tram", "bus", "light_rail", "amenity"):
        tags[k] = None
    modes = classify_transit(tags).groupby("mode").size().to_dict()
    assert modes == {"metro": 2, "rail": 1}


def test_brand_spellings_match_whole_names_not_substrings():
    banks = pd.DataFrame({"brand": [None] * 5, "operator": [None] * 5,
                          "name": ["BNP Paribas", "BNP-Paribas", "BNP Parisbas", "bnp paribas",
                                   "BNP Paribas Fortis Holding"]})
    with pytest.warns(UserWarning, match="BNP Parisbas"):
        own = match_brand(banks, brand=("BNP Paribas",), labels=banks["name"])
    assert own.tolist() == [True, True, False, True, False]
    groups = brand_groups(banks["name"])
    assert any({"BNP Paribas", "BNP-Paribas", "BNP Parisbas"} <= set(g) for g in groups)
    assert normalise("Crèdit Andorrà") == normalise("Crédit  ANDORRA") == "credit andorra"


def test_short_brands_are_not_grouped_by_similarity():
    assert brand_groups(["OP", "POP", "Nordea", "Nordnet"]) == [["Nordea"], ["Nordnet"], ["OP"],
                                                                ["POP"]]


def test_wikidata_decides_for_tagged_banks_and_names_for_the_rest():
    banks = pd.DataFrame({"brand": ["Nordea", "Nordea", None], "operator": [None] * 3,
                          "name": ["Nordea", "Nordea", "Nordea"],
                          "brand:wikidata": ["Q1123823", "Q999", None]})
    own = match_brand(banks, brand=("Nordea",), wikidata=("Q1123823",))
    assert own.tolist() == [True, False, True]
    assert np.asarray(own).dtype == bool
