"""The typed building blocks of the study schema and the one-line messages its errors become.

Settings are pydantic dataclasses whose fields use the strict types below: a
whole number is never a bool or a float, a number is finite and never a bool
or text, a switch is a real TOML boolean. Each type carries the words of what
it expects, so every error, from a study file, ``--set`` or Python, reads
``WHERE: KEY = VALUE: expected WHAT``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, TypeVar

from annotated_types import Ge, Gt, Le
from pydantic import AllowInfNan, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from siteplanner._errors import ConfigError

__all__ = [
    "SETTINGS_CONFIG",
    "Expect",
    "is_file",
    "one_line",
    "Problem",
    "expectation",
    "settings",
    "show",
    "validation_problems",
]

_C = TypeVar("_C")


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a field expects, in words (``"a whole number >= 1"``)."""

    text: str


class Problem(ValueError):
    """One invalid setting: ``key`` in the study's dotted form, ``text`` the message after ``WHERE: ``."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__(text)
        self.key = key
        self.text = text


def show(value: Any) -> str:
    """A value as TOML writes it, on one line and at most 60 characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=True)
    elif isinstance(value, float) and not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    elif isinstance(value, PathLike):
        text = json.dumps(str(value), ensure_ascii=True)
    else:
        text = repr(value).encode("ascii", "backslashreplace").decode()
    text = one_line(text)
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(text: str) -> str:
    """``text`` with every line break and control character written as an escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text_path(v: Any) -> Any:
    text = str(v) if isinstance(v, PathLike) else v
    if isinstance(text, str) and text.strip() and "\x00" not in text:
        return Path(text)
    msg = "not a path"
    raise ValueError(msg)


def _text(v: Any) -> Any:
    if isinstance(v, str) and v.strip() and v.isprintable():
        return v
    msg = "not text"
    raise ValueError(msg)


def is_file(path: Path) -> bool:
    """``path.is_file()`` that says ``False`` for names the system refuses (too long, say)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


_NUM = (Strict(), AllowInfNan(False))
Whole1 = Annotated[int, Strict(), Ge(1), Expect("a whole number >= 1")]
Whole0 = Annotated[int, Strict(), Ge(0), Expect("a whole number >= 0")]
Seed = Annotated[int, Strict(), Ge(0), Le(2**32 - 1), Expect("a whole number from 0 to 4294967295")]
H3Res = Annotated[int, Strict(), Ge(5), Le(13),
                  Expect("a whole number from 5 (city region) to 13 (a shop front); 11 suits a centre")]
Metres0 = Annotated[float, *_NUM, Ge(0), Expect("a number >= 0 (metres)")]
Metres = Annotated[float, *_NUM, Gt(0), Expect("a number > 0 (metres)")]
Minutes = Annotated[float, *_NUM, Gt(0), Expect("a number > 0 (minutes)")]
Seconds = Annotated[float, *_NUM, Gt(0), Expect("a number > 0 (seconds)")]
Weight = Annotated[float, *_NUM, Ge(0), Expect("a number >= 0 (weights are shares of their sum)")]
Positive = Annotated[float, *_NUM, Gt(0), Expect("a number > 0")]
WalkSpeed = Annotated[float, *_NUM, Gt(0), Le(20), Expect("a walking speed > 0 and <= 20 km/h (about 3-6)")]
Decay = Annotated[float, *_NUM, Gt(0), Le(5),
                  Expect("a number in (0, 5]; distance decay for walking trips is usually 1.5-2.5")]
PerHour = Annotated[float, *_NUM, Gt(0), Expect("a number > 0 (arrivals per hour)")]
Capacity = Annotated[float, *_NUM, Gt(0),
                     Expect("a number > 0: the demand one branch can serve, in the demand's units")]
Switch = Annotated[bool, Strict(), Expect("true or false")]
Text = Annotated[str, BeforeValidator(_text),
                 Expect("printable text that is not blank (no control characters)")]
FilePath = Annotated[Path, BeforeValidator(_text_path), Expect("a file path (text)")]
Coordinate = Annotated[float, *_NUM, Expect("a finite number")]

KeyNamer = Callable[[tuple[str, ...]], str]

#: Settings refuse unknown keys and are validated whether built from TOML or in Python.
SETTINGS_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=False)


@typing.dataclass_transform(frozen_default=True, field_specifiers=(Field,))
def settings(section: str, *, key_name: KeyNamer | None = None) -> Callable[[type[_C]], type[_C]]:
    """Make a class a frozen, validated settings dataclass for ``[section]``.

    Building one in Python with a bad value raises :class:`ConfigError` naming
    the key, the same message a study file gets; ``key_name`` spells a field's
    location as the study file does.
    """

    def wrap(cls: type[_C]) -> type[_C]:
        dc: Any = _pydantic_dataclass(frozen=True, config=SETTINGS_CONFIG)(cls)
        init = dc.__init__

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as e:
                p = validation_problems(e, dc, prefix=section, key_name=key_name)[0]
                msg = f"{cls.__name__}: {p.text}"
                raise ConfigError(msg) from None
            except Problem as p:
                msg = one_line(f"{cls.__name__}: {p.text}")
                raise ConfigError(msg) from None

        dc.__init__ = checked_init
        dc.__section__ = section
        return typing.cast(type[_C], dc)

    return wrap


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """The bare type and its Annotated metadata."""
    meta: list[Any] = []
    while typing.get_origin(tp) is Annotated:
        meta += list(tp.__metadata__)
        tp = tp.__origin__
    return tp, meta


def _container(tp: Any) -> Any:
    """The type with Annotated and Optional taken off, to step into."""
    tp, _ = _strip(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _container(args[0])
    return tp


def expectation(root: Any, path: tuple[str | int, ...]) -> str | None:
    """The :class:`Expect` text of the field at ``path`` under the settings class ``root``."""
    tp: Any = root
    for part in path:
        tp = _container(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if dataclasses.is_dataclass(tp) and isinstance(part, str):
            tp = typing.get_type_hints(tp, include_extras=True).get(part)
        elif origin is dict:
            tp = args[1]
        elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            tp = args[0]
        elif origin is tuple and isinstance(part, int) and part < len(args):
            tp = args[part]
        else:
            return None
        if tp is None:
            return None
    return _find_expect(tp)


def _find_expect(tp: Any) -> str | None:
    tp, meta = _strip(tp)
    for m in meta:
        if isinstance(m, Expect):
            return m.text
    for a in typing.get_args(tp):
        if a is not type(None):
            hit = _find_expect(a)
            if hit:
                return hit
    return None


def fields_of(root: Any, path: tuple[str, ...]) -> list[str] | None:
    """The field names of the settings class at ``path`` (for "known settings here are ...")."""
    tp: Any = root
    for part in path:
        tp = _container(tp)
        if dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(part)
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _container(tp)
    return [f.name for f in dataclasses.fields(tp)] if dataclasses.is_dataclass(tp) else None


def validation_problems(err: ValidationError, root: Any, *, prefix: str = "",
                        key_name: KeyNamer | None = None) -> list[Problem]:
    """Turn pydantic's errors into :class:`Problem` s, one line each, keys in TOML form."""

    def dotted(parts: tuple[str, ...]) -> str:
        if key_name is not None:
            return key_name(parts)
        return ".".join(p for p in (prefix, *parts) if p)

    out: list[Problem] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        names = tuple(str(p) for p in loc if isinstance(p, str))
        ctx = e.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, Problem):
            key = dotted((*names, *([inner.key] if inner.key else [])))
            out.append(Problem(key, inner.text.replace("{key}", key)))
            continue
        key = dotted(names)
        if e["type"] == "unexpected_keyword_argument":
            known = fields_of(root, names[:-1]) or []
            head = dotted(names[:-1])
            listed = ", ".join(f"{head}.{k}" if head else k for k in sorted(known))
            out.append(Problem(key, f"unknown setting {key}; known settings here are {listed}"))
        elif e["type"] in ("missing", "missing_keyword_only_argument", "missing_argument"):
            what = expectation(root, loc) or "a value"
            out.append(Problem(key, f"{key} is missing: give {what}"))
        else:
            what = expectation(root, loc) or e["msg"].lower()
            out.append(Problem(key, f"{key} = {show(e['input'])}: expected {what}"))
    return out
