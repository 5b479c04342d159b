"""Filesystem helpers: safe path names, the output lock, the atomic folder swap, file hashes.

Apart from the leaves :mod:`siteplanner._errors` and :mod:`siteplanner._fs_guard`
(held signals, a full disk), this module imports nothing from the package, so
every stage and output module can use it.

How a run replaces its output folder ``OUT`` (:func:`atomic_outputs`):

1. take an exclusive lock on ``.siteplanner-OUT.lock`` beside ``OUT`` (a second run on
   the same folder fails at once, naming the folder and the other run's pid);
2. finish or undo a swap that a killed run left half done, and remove the temporary
   folders of dead runs (with one warning);
3. write every file into a new folder ``.siteplanner-OUT.new-PID-TOKEN`` beside ``OUT``,
   starting with a copy of the files the user added to ``OUT`` (those not listed in the
   previous run's manifest ``OUT/.siteplanner-manifest.json``);
4. write the new manifest (from here on the new folder is complete), then, with
   SIGINT and SIGTERM held back, rename ``OUT`` to ``.siteplanner-OUT.old-PID-TOKEN`` and
   the new folder to ``OUT``, and remove the old one.

A crash at any step leaves either the old folder or the new complete one as ``OUT``
(after step 4's first rename, ``OUT`` is briefly absent, and the next run rolls the
complete new folder forward), never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from siteplanner._errors import OutputError
from siteplanner._fs_guard import disk_errors, kill_hook, signals_held

__all__ = ["MANIFEST", "atomic_outputs", "check_writable", "output_lock", "safe_component",
           "sha256"]

#: The list of files a run wrote, kept inside its output folder.
MANIFEST = ".siteplanner-manifest.json"
_PREFIX = ".siteplanner-"
#: Files earlier versions wrote, taken as run-written in a folder that has no manifest.
_LEGACY_OUTPUTS = frozenset({"ranked_sites.csv", "sites.gpkg", "map.html", "report.html",
                             "run.json", "zones.geojson", "plan.svg", "plan.png", "plan.dxf",
                             "metrics.json"})
_LEGACY_FOLDERS = frozenset({"floorplans"})
_MAX_COMPONENT = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HASHED = re.compile(r"-[0-9a-f]{16}$")
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                       *(f"LPT{i}" for i in range(10))})

_registry_lock = threading.Lock()
#: Locks this process holds: lock file -> [fd, depth, owning thread].
_HELD: dict[Path, list[int]] = {}
#: Temporary folders being written by this process -> the output folder as the user named it.
_ACTIVE: dict[Path, Path] = {}


def safe_component(name: str) -> str:
    """Map a data string (a site id, a name) to one safe, deterministic path component.

    A name made only of ASCII letters, digits, ``.``, ``_`` and ``-`` (not starting
    with a dot, at most 80 characters, not a reserved device name) is kept as it is.
    Any other name has its unsafe characters replaced by ``_``, is cut to 80
    characters and gets ``-`` and 16 hex digits of its SHA-256, so two different
    names never share a folder. The result has no separator, no ``..``, no control
    character, and cannot be absolute.

    Examples
    --------
    >>> safe_component("8b1126d8e6b0fff")
    '8b1126d8e6b0fff'
    >>> safe_component("../../etc")
    '_.._etc-74ccf3c5b4c19a81'
    """
    text = str(name)
    safe = _UNSAFE.sub("_", text).lstrip(".")[:_MAX_COMPONENT].rstrip(".")
    if (safe == text and safe and not _HASHED.search(safe)
            and safe.partition(".")[0].upper() not in _RESERVED):
        return safe
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{safe or 'site'}-{digest}"


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


def _real(out_dir: Path) -> Path:
    real = Path(os.path.realpath(out_dir))
    if real.parent == real:
        msg = f"--out {out_dir}: the root folder cannot be an output folder; choose a subfolder"
        raise OutputError(msg)
    return real


def _tag(real: Path) -> str:
    """The output folder's name as used in the names of its lock and temporary folders."""
    name = real.name
    if len(name) > 100:
        name = name[:80] + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_PREFIX}{name}"


# --------------------------------------------------------------------------- the lock

@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock on ``out_dir`` for the block.

    Another process (or thread) holding it makes this fail at once with an
    :class:`OutputError` naming the folder. Re-entrant in the holding thread.
    On taking the lock, a swap a killed run left half done is finished or undone
    and the temporary folders of dead runs are removed (:func:`recover`).
    Parent folders it had to create are removed again when they are left empty.
    """
    check_writable(out_dir)
    real = _real(out_dir)
    lock = real.parent / f"{_tag(real)}.lock"
    me = threading.get_ident()
    with _registry_lock:
        held = _HELD.get(lock)
        if held is not None and held[2] == me:
            held[1] += 1
    if held is not None and held[2] == me:
        try:
            yield
        finally:
            held[1] -= 1
        return
    created = _make_parents(real.parent, out_dir)
    try:
        fd = _acquire(lock, out_dir)
        with _registry_lock:
            _HELD[lock] = [fd, 1, me]
        try:
            recover(out_dir)
            yield
        finally:
            with _registry_lock:
                del _HELD[lock]
            _release(lock, fd)
    finally:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: a run put its output there


def _make_parents(parent: Path, out_dir: Path) -> list[Path]:
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            msg = f"--out {out_dir}: cannot create {folder} ({e.strerror}); choose another folder"
            raise OutputError(msg) from None
        created.append(folder)
    return created


def _acquire(lock: Path, out_dir: Path) -> int:
    """Open and lock ``lock``; retry when the file was replaced while we waited for it."""
    if sys.platform == "win32":  # no fcntl: runs on one folder are not serialised there
        return -1
    import fcntl

    for _ in range(100):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            msg = f"--out {out_dir}: cannot create the lock file {lock} ({e.strerror})"
            raise OutputError(msg) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            msg = (f"--out {out_dir}: another siteplanner run{who} is writing this folder; "
                   "wait for it to finish or choose another --out")
            raise OutputError(msg) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)  # the holder removed the file as it let go: lock the new one
    msg = f"--out {out_dir}: cannot take the lock {lock}; remove it if no run is writing"
    raise OutputError(msg)


def _release(lock: Path, fd: int) -> None:
    if fd < 0:
        return
    lock.unlink(missing_ok=True)  # while still holding it, so no one locks a removed file
    os.close(fd)


# --------------------------------------------------------------------------- recovery

_TEMP = re.compile(r"\.(new|old)-(\d+)-[0-9a-f]+$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out_dir: Path) -> None:
    """Finish or undo a killed run's swap of ``out_dir`` and remove dead runs' temp folders.

    Call with the folder's lock held. When ``out_dir`` is missing, a dead run's complete
    new folder (it has a manifest) is renamed into place, else its old folder is renamed
    back. Folders of live runs are never touched.
    """
    real = _real(out_dir)
    tag = _tag(real)
    stale: list[tuple[str, Path]] = []
    try:
        entries = list(real.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(tag):
            continue
        m = _TEMP.fullmatch(entry.name[len(tag):])
        if m and entry.is_dir() and not _pid_alive(int(m.group(2))):
            stale.append((m.group(1), entry))
    if not stale:
        return
    restored = ""
    if not os.path.lexists(real):
        new = sorted((p for kind, p in stale if kind == "new" and (p / MANIFEST).is_file()),
                     key=lambda p: p.stat().st_mtime)
        old = sorted((p for kind, p in stale if kind == "old"), key=lambda p: p.stat().st_mtime)
        pick = new[-1] if new else old[-1] if old else None
        if pick is not None:
            os.rename(pick, real)
            restored = (" and put the interrupted run's complete output in place" if new
                        else " and put the previous output back in place")
            stale = [(k, p) for k, p in stale if p != pick]
    for _, p in stale:
        shutil.rmtree(p, ignore_errors=True)
    msg = (f"--out {out_dir}: removed {len(stale)} temporary folder(s) left by an interrupted "
           f"siteplanner run{restored}")
    warnings.warn(msg, UserWarning, stacklevel=3)


# --------------------------------------------------------------------------- the swap

@contextmanager
def atomic_outputs(out_dir: Path, *, keep_outputs: bool = False) -> Iterator[Path]:
    """Yield a new folder to write into; on success it replaces ``out_dir`` as a whole.

    Parameters
    ----------
    out_dir
        The output folder. Files the user added to it (those the previous run's
        manifest does not list) are copied into the new folder first; a file this
        run writes under the same name replaces the user's, with a warning.
    keep_outputs
        Keep the previous run's outputs too, for a run that adds to them (rebuilding
        ``report.html``): the files written are moved into ``out_dir`` one by one.

    Raises
    ------
    OutputError
        The folder is locked by another run, the disk is full, or it cannot be written;
        ``out_dir`` is then as it was before.
    """
    out_dir = Path(out_dir)
    outer = _enclosing(out_dir)
    if outer is not None:
        with _nested(out_dir, outer) as tmp:
            yield tmp
        return
    check_writable(out_dir)
    real = _real(out_dir)
    with output_lock(out_dir), disk_errors(out_dir):
        _refuse_foreign(real, out_dir, keep_outputs=keep_outputs)
        tmp = real.parent / f"{_tag(real)}.new-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        with _registry_lock:
            _ACTIVE[tmp] = out_dir
        try:
            with disk_errors(out_dir, probe=tmp):
                previous = _read_manifest(real)
                carried = {} if keep_outputs else _carry_over(real, tmp, previous)
                kill_hook("start")
                yield tmp
                kill_hook("written")
                if keep_outputs and real.is_dir():
                    _update_in_place(real, tmp, previous)
                else:
                    _swap(real, tmp, _written(tmp, carried, out_dir), out_dir)
        finally:
            with _registry_lock:
                _ACTIVE.pop(tmp, None)
            shutil.rmtree(tmp, ignore_errors=True)


def _enclosing(out_dir: Path) -> Path | None:
    """The temporary folder of this process that ``out_dir`` lies in, if any."""
    if not _ACTIVE:
        return None
    real = Path(os.path.realpath(out_dir))
    with _registry_lock:
        for tmp in _ACTIVE:
            if real == tmp or tmp in real.parents:
                return tmp
    return None


@contextmanager
def _nested(out_dir: Path, outer: Path) -> Iterator[Path]:
    """Inside another run's new folder: write a part and merge it in (the outer swap is atomic)."""
    part = outer / f"{_PREFIX}part-{secrets.token_hex(4)}"
    with disk_errors(_ACTIVE.get(outer, out_dir), probe=outer):
        part.mkdir()
        try:
            yield part
            out_dir.mkdir(parents=True, exist_ok=True)
            _merge(part, out_dir)
        finally:
            shutil.rmtree(part, ignore_errors=True)


def _merge(src: Path, dest: Path) -> None:
    for entry in src.iterdir():
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir():
            _merge(entry, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


def _refuse_foreign(real: Path, out_dir: Path, *, keep_outputs: bool) -> None:
    """A folder that holds someone's other files is never swapped out as a whole."""
    cwd = Path.cwd().resolve()
    if not keep_outputs and (real == cwd or real in cwd.parents):
        msg = (f"--out {out_dir}: the output folder would contain the current folder; "
               "choose a new subfolder for the outputs")
        raise OutputError(msg)
    if not real.is_dir() or (real / MANIFEST).is_file() or keep_outputs:
        return
    names = {p.name for p in real.iterdir()}
    if names & {"run.json", "metrics.json"} or not names - _LEGACY_OUTPUTS - _LEGACY_FOLDERS:
        return  # an earlier version's output folder
    other = sorted(names - _LEGACY_OUTPUTS - _LEGACY_FOLDERS)[0]
    msg = (f"--out {out_dir}: the folder holds files siteplanner did not write (e.g. {other!r}) "
           "and a run replaces its output folder as a whole; choose a new or empty folder")
    raise OutputError(msg)


def _read_manifest(real: Path) -> set[str] | None:
    """The files the previous run wrote, or None for a folder without a (readable) manifest."""
    try:
        doc = json.loads((real / MANIFEST).read_text(encoding="utf-8"))
        files = doc["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else None


def _is_run_written(rel: str, previous: set[str] | None) -> bool:
    if previous is not None:
        return rel in previous
    parts = rel.split("/")
    return parts[-1] in _LEGACY_OUTPUTS and (len(parts) == 1 or parts[0] == "floorplans"
                                             and len(parts) == 3 and parts[-1] != "report.html")


def _carry_over(real: Path, tmp: Path, previous: set[str] | None) -> dict[str, tuple[int, int]]:
    """Copy the user's files from ``real`` into ``tmp``; return each one's (mtime, size)."""
    carried: dict[str, tuple[int, int]] = {}
    if not real.is_dir():
        return carried
    for root, dirs, files in os.walk(real):
        here = Path(root)
        rel_root = here.relative_to(real)
        links = [d for d in dirs if (here / d).is_symlink()]
        for name in (*files, *links):
            rel = (rel_root / name).as_posix()
            src = here / name
            if rel == MANIFEST or _is_run_written(rel, previous):
                continue
            if not (src.is_symlink() or stat.S_ISREG(src.stat().st_mode)):
                continue  # sockets, fifos: nothing a run's output folder should hold
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest, follow_symlinks=False)
            st = dest.lstat()
            carried[rel] = (st.st_mtime_ns, st.st_size)
        if not dirs and not files and rel_root != Path("."):
            (tmp / rel_root).mkdir(parents=True, exist_ok=True)
    return carried


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != MANIFEST)


def _written(tmp: Path, carried: dict[str, tuple[int, int]], out_dir: Path) -> list[str]:
    """The files of ``tmp`` this run wrote (carried files it replaced included, with a warning)."""
    written, replaced = [], []
    for rel in _files(tmp):
        if rel in carried:
            st = (tmp / rel).lstat()
            if (st.st_mtime_ns, st.st_size) == carried[rel]:
                continue
            replaced.append(rel)
        written.append(rel)
    if replaced:
        msg = (f"--out {out_dir}: this run replaced {len(replaced)} file(s) you had added "
               f"under the same name: {', '.join(replaced[:3])}")
        warnings.warn(msg, UserWarning, stacklevel=4)
    return written


def _write_manifest(folder: Path, files: list[str]) -> None:
    doc = {"written_by": "siteplanner", "files": sorted(files)}
    part = folder / (MANIFEST + ".part")
    with part.open("w", encoding="utf-8") as f:
        f.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, folder / MANIFEST)


def _swap(real: Path, tmp: Path, written: list[str], out_dir: Path) -> None:
    """Make ``tmp`` the output folder: manifest, then two renames with signals held back."""
    if real.is_dir():
        os.chmod(tmp, stat.S_IMODE(real.stat().st_mode))
    _write_manifest(tmp, written)
    kill_hook("manifest")
    old: Path | None = None
    # the old folder is removed while signals are still held: a signal held back arrives
    # as the block ends and would otherwise interrupt the removal and leave it behind
    with signals_held():
        try:
            if os.path.lexists(real):
                old = tmp.with_name(tmp.name.replace(".new-", ".old-"))
                os.rename(real, old)
                kill_hook("moved")
            try:
                os.rename(tmp, real)
            except OSError as e:
                if old is not None:
                    os.rename(old, real)
                msg = (f"--out {out_dir}: cannot move the new outputs into place ({e.strerror}); "
                       "the previous output is unchanged")
                raise OutputError(msg) from None
            _fsync_dir(real.parent)
            kill_hook("swapped")
        finally:
            if old is not None and not os.path.lexists(tmp):
                shutil.rmtree(old, ignore_errors=True)


def _update_in_place(real: Path, tmp: Path, previous: set[str] | None) -> None:
    """Move each written file into ``real`` (each rename is atomic); list them as run-written."""
    written = _files(tmp)
    if previous is None:  # an earlier version's folder: its known outputs are run-written
        previous = {f for f in _files(real) if _is_run_written(f, None)}
    known = previous | set(written)
    _write_manifest(real, sorted(f for f in known if (real / f).exists() or f in written))
    with signals_held():
        _merge(tmp, real)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256(path: Path) -> str:
    """The file's SHA-256 as hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
