"""``[floorplan] premises``: the study's outline when it has one, else the OSM building at the site."""

from __future__ import annotations

import warnings

import pytest

from siteplanner._errors import ConfigError
from siteplanner.config import FloorplanSettings
from siteplanner.pipeline import _premises_kind


def test_a_study_without_an_outline_plans_in_osm_buildings_by_default() -> None:
    settings = FloorplanSettings()
    assert settings.premises == "auto"
    assert _premises_kind(settings, has_buildings=True) == "osm"


def test_a_study_outline_wins_over_osm_buildings_by_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    outline = tmp_path / "unit.wkt"
    outline.write_text("POLYGON ((0 0, 20 0, 20 12, 0 12, 0 0))")
    settings = FloorplanSettings(outline=outline, entrances=((10.0, 0.0),))
    assert _premises_kind(settings, has_buildings=True) == "outline"


def test_no_outline_and_no_buildings_warns_and_draws_no_plan() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert _premises_kind(FloorplanSettings(), has_buildings=False) is None
    assert any("no floor plans" in str(w.message) and "outline" in str(w.message) for w in seen)


def test_premises_outline_without_an_outline_names_the_missing_key() -> None:
    with pytest.raises(ConfigError, match=r"outline.*is missing.*premises = \"auto\" or \"osm\""):
        FloorplanSettings(premises="outline")


@pytest.mark.slow
def test_premises_osm_plans_the_osm_building_even_when_the_study_has_an_outline(runner, tmp_path):
    # the demo study has the brand's outline; premises = "osm" must still read the buildings
    import json

    from conftest import STUDY

    from siteplanner.cli import app

    res = runner.invoke(app, ["rank", str(STUDY), "--out", str(tmp_path / "out"), "--set",
                              'floorplan.premises="osm"', "--set", "floorplan.sites=1"])
    assert res.exit_code == 0, res.output
    plans = json.loads((tmp_path / "out" / "run.json").read_text())["floorplans"]
    assert len(plans) == 1
    (summary,) = plans.values()
    assert summary["premises"].startswith("osm building "), summary
