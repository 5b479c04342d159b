"""Errors siteplanner raises for problems a user can fix.

Every message names the file, field or value at fault and says how to fix it.
The CLI prints the message as one line and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CRSError",
    "InputError",
    "ModeError",
    "OutputError",
    "SitePlannerError",
]


class SitePlannerError(Exception):
    """Base class: a problem with the user's input, study or environment."""


class InputError(SitePlannerError, ValueError):
    """An input file or value cannot be used as given."""


class CRSError(InputError):
    """A layer has no coordinate reference system, or the wrong one."""


class ConfigError(InputError):
    """The study file or a command-line setting is invalid."""


class ModeError(InputError):
    """A travel mode of ``[network] modes`` has no network in the data, or no share."""


class OutputError(SitePlannerError, OSError):
    """An output cannot be written."""
