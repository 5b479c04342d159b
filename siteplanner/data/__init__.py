"""Bundled real data: read it through :mod:`siteplanner.datasets`."""
