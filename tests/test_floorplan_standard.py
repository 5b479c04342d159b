"""The brand standard file: defaults with sources, user overrides, and rejected files."""

from __future__ import annotations

from pathlib import Path

import pytest

from siteplanner._errors import ConfigError
from siteplanner.floorplan import MANDATORY_ZONES, default_standard, load_standard

DATA = Path(__file__).parent / "data" / "floorplan"


def test_default_chart_puts_atms_at_the_door_and_the_vault_away() -> None:
    std = default_standard()
    assert std.rating("self_service", "entrance") == "A"
    assert std.rating("waiting", "service") == "A"
    assert std.rating("vault", "entrance") == "X"
    assert std.rating("restroom", "advisory") == "U"
    assert set(MANDATORY_ZONES) <= set(std.kinds)


def test_every_default_number_cites_a_source_or_says_it_is_an_assumption() -> None:
    text = (Path(__file__).parents[1] / "siteplanner" / "floorplan"
            / "default_standard.toml").read_text()
    for key in ("service_time_min = 4.0", "service_time_min = 2.2", "area_per_unit_m2 = 1.2",
                "turning_circle_m = 1.5", "base_m2 = 8.0"):
        block = text[text.index(key) - 400: text.index(key) + 120]
        assert "[" in block and "]" in block, key  # a [SOURCE] tag near the number


def test_a_brand_file_chooses_its_zones_and_overrides_caps() -> None:
    std = load_standard(DATA / "standard_small.toml")
    assert std.name == "compact"
    assert std.kinds == ("self_service", "waiting", "service", "back_office", "vault")
    assert std.channels["counter"].max_servers == 4
    assert "advisory" not in std.channels
    assert std.rating("back_office", "vault") == "A"  # chart from the default


def test_unknown_zone_kind_is_rejected_with_the_known_kinds() -> None:
    with pytest.raises(ConfigError, match="unknown zone kind 'cafe'.*self_service"):
        load_standard(DATA / "standard_unknown_zone.toml")


def test_unknown_rating_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'B' is not a closeness rating"):
        load_standard(DATA / "standard_bad_rating.toml")


def test_unknown_key_and_bad_toml_are_rejected(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("circulation_alowance = 0.2\n")
    with pytest.raises(ConfigError, match="circulation_alowance"):
        load_standard(typo)
    broken = tmp_path / "broken.toml"
    broken.write_text("[zones\n")
    with pytest.raises(ConfigError, match="not readable TOML"):
        load_standard(broken)
