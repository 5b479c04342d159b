"""Filesystem helpers: the writability check, atomic outputs and file hashes.

Apart from the leaf :mod:`siteplanner._errors`, this module imports nothing
from the package, so every stage and output module can use it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from siteplanner._errors import OutputError

__all__ = ["atomic_outputs", "check_writable", "safe_component", "sha256"]


def check_writable(out_dir: Path) -> None:
    """Fail early, before any work, when ``out_dir`` cannot be created or written."""
    probe_dir = out_dir
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        msg = f"--out {out_dir}: {probe_dir} is a file, not a folder; choose another output folder"
        raise OutputError(msg)
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        msg = f"--out {out_dir}: {probe_dir} is not writable; choose a folder you can write to"
        raise OutputError(msg)


@contextmanager
def atomic_outputs(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success move its files into ``out_dir``."""
    check_writable(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".siteplanner-", dir=out_dir.parent))
    except OSError as e:
        msg = f"--out {out_dir}: cannot create the output folder ({e.strerror}); choose another"
        raise OutputError(msg) from None
    try:
        yield tmp
        for f in sorted(tmp.iterdir()):
            dest = out_dir / f.name
            if f.is_dir() and dest.is_dir():
                shutil.rmtree(dest)
            os.replace(f, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256(path: Path) -> str:
    """The file's SHA-256 as hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(name: str, *, max_length: int = 64) -> str:
    """``name`` (a site id, a label: data) as one safe file or folder name.

    Only letters, digits, ``.``, ``_`` and ``-`` are kept, leading dots are
    dropped (no ``..``, no hidden files) and the length is bounded; a name that
    had to change gets a short hash of the original, so two different names
    never share a folder. The same name always gives the same result.
    """
    text = str(name)
    clean = _UNSAFE.sub("_", text)[:max_length].lstrip(".") or "_"
    if clean != text:
        clean = f"{clean}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"
    return clean
