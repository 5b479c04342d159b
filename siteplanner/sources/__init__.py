"""Where the data comes from: OSM files (pbf, xml), osmnx online, and the user's own files."""

from __future__ import annotations

from pathlib import Path

from siteplanner._errors import InputError
from siteplanner.sources._osm import OSMData

__all__ = ["OSMData", "read_osm_file"]


def read_osm_file(path: Path) -> OSMData:
    """Read an OpenStreetMap extract: ``.osm.pbf`` through pyrosm, ``.osm`` / ``.osm.bz2`` through osmnx."""
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: OSM file not found; check study.osm or --osm"
        raise InputError(msg)
    name = path.name.lower()
    if name.endswith(".pbf"):
        from siteplanner.sources.pbf import read_pbf

        return read_pbf(path)
    if name.endswith((".osm", ".osm.bz2", ".xml")):
        from siteplanner.sources.xml import read_osm_xml

        return read_osm_xml(path)
    msg = f"{path}: unknown OSM format; use .osm.pbf, .osm or .osm.bz2"
    raise InputError(msg)
