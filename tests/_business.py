"""A study for the money tests: the demo without its standard premises (each site sized for itself)."""

from __future__ import annotations

from pathlib import Path

from conftest import absolute_study_text


def money_study(tmp_path: Path, extra: str = "") -> Path:
    """The demo study, premises sized per site (no [floorplan]), plus ``extra`` TOML."""
    text = absolute_study_text().split("[floorplan]")[0]
    path = tmp_path / "study.toml"
    path.write_text(text + "\n[model]\nstability_draws = 0\n" + extra)
    return path
