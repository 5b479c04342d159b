"""What guards the output swap of :mod:`siteplanner._fs`: held signals, a full disk, the test kill hook.

Like :mod:`siteplanner._fs`, this leaf imports nothing from the package but
:mod:`siteplanner._errors`.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from siteplanner._errors import OutputError

__all__ = ["disk_errors", "kill_hook", "signals_held"]

_DISK_FULL = re.compile(r"no space left|disk is full|disk full|quota exceeded", re.IGNORECASE)
_KILL_HOOK = "SITEPLANNER_TEST_KILL_AT"


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block: they arrive when it is done.

    Blocking the signals in this thread is not enough: a signal sent to the
    process may be taken by any other thread (a progress display, a GDAL or
    BLAS worker), whose C handler then makes the main thread raise at once.
    So the Python handlers are swapped for ones that only note the signal,
    which is sent again once the block is over.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    handlers = {sig: signal.signal(sig, lambda signum, _frame: held.append(signum))
                for sig in wanted}
    masked = hasattr(signal, "pthread_sigmask")
    if masked:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(wanted))
    try:
        yield
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # pending ones are noted now
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(held):
            os.kill(os.getpid(), signum)


def kill_hook(step: str) -> None:
    """Under test only: ``SITEPLANNER_TEST_KILL_AT=STEP[:SIGNAL]`` kills the run at STEP."""
    spec = os.environ.get(_KILL_HOOK)
    if not spec:
        return
    want, _, sig = spec.partition(":")
    if want == step:
        os.kill(os.getpid(), getattr(signal, f"SIG{sig or 'KILL'}"))


def _is_disk_full(e: BaseException) -> bool:
    seen: BaseException | None = e
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if _DISK_FULL.search(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _space_left(folder: Path) -> bool:
    """False when the file system holding ``folder`` has (almost) no space or inodes left."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return True
    return st.f_bavail * st.f_frsize >= 1 << 20 and (st.f_files == 0 or st.f_favail > 0)


@contextmanager
def disk_errors(out_dir: Path, probe: Path | None = None) -> Iterator[None]:
    """A full disk becomes one clean line.

    ENOSPC, a writer's "No space left" / "disk is full" text, or, as writers such as
    GDAL's GeoPackage driver report a full disk as some later failure ("no such
    table"), any error while the file system of ``probe`` has under 1 MiB left.
    """
    try:
        yield
    except Exception as e:
        if _is_disk_full(e) or (probe is not None and not _space_left(probe)):
            msg = (f"--out {out_dir}: disk full while writing the outputs; free some space or "
                   "choose another --out (the previous output is unchanged)")
            raise OutputError(msg) from None
        raise
