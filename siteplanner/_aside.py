"""Run one function in a forked child process while the caller goes on: the second core.

Some of a run's work holds the GIL for seconds at a time (pyogrio writing a GeoPackage
through GDAL, measured: a thread beside it gains nothing), so overlapping it with the
rest of the run needs a process. :func:`aside` forks: the child starts with the caller's
tables already in memory (copy-on-write: nothing is pickled on the way in), runs the
function, and sends back its result (pickled) or its exception, and the warnings it gave
(issued again in the caller, where a run records them), through a pipe;
:meth:`Aside.result` waits for it. The child never touches the console: its log records
are dropped (a progress bar is the parent's), and it leaves with ``os._exit``, so no
``atexit`` hook or buffered stream of the parent's runs twice.

The function runs in the caller's own process instead when there is no ``fork``
(Windows), when the machine gives the process one CPU, when ``SITEPLANNER_NO_FORK=1``, or
when the caller is not the main thread: a Dask worker runs its tasks in threads beside
its own (a fork copies only the caller's thread, and a lock another holds would stay
held in the child), and a national run's workers already keep every core busy. Nor
does it fork when the child would take the run past its memory budget (all its processes
together; :func:`budget_mib`, ``SITEPLANNER_MEMORY_MIB``): a large city's run keeps to one
process where two would not fit.

A fork's child holds every page of the caller's that the caller writes or frees after the
fork (they are no longer shared), so a child that runs long beside a large caller costs
up to the caller's whole heap again. Work that needs only a small part of the caller's
tables can run in a *fresh* interpreter instead (:meth:`Pending.start_fresh`,
``Aside(..., fresh_mib=N)``): its function and arguments are pickled to a new Python
process started with ``posix_spawn``, which shares none of the caller's heap and is
expected to reach ``N`` MiB (:func:`fresh_mib`).
A child that dies without an answer (killed, out of memory) is an error naming how it
ended (an :class:`~siteplanner._errors.OutputError`); the caller's outputs are written to
a temporary folder and swapped in whole (:func:`siteplanner.io.atomic_outputs`), so a
failure leaves an earlier good output as it was.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import signal
import struct
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from siteplanner._errors import InputError, OutputError

__all__ = ["CHILD_SHARE", "DEFAULT_BUDGET_MIB", "ENV_BUDGET", "ENV_OFF", "FRESH_BASE_MIB", "Aside",
           "Pending", "aside", "budget_mib", "can_fork", "forking", "fresh_mib"]

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")

#: Set to 1 (or true/yes) to run every function in the caller's process.
ENV_OFF = "SITEPLANNER_NO_FORK"
_LEN = struct.Struct("<Q")


#: The run's memory budget in MiB, all its processes together: a second process is
#: started only while the budget holds room for it (:func:`_room`). The default is
#: issue #15's goal for a 100k-candidate country on one machine, 1.5 GiB; at most half
#: the memory the system has available.
ENV_BUDGET = "SITEPLANNER_MEMORY_MIB"
DEFAULT_BUDGET_MIB = 1536
#: A child's own memory as a share of its parent's when it forks: measured up to 0.36
#: (run.json ``second_process`` on Andorra x3 and Helsinki x156: the street centrality of
#: 867k nodes held 434 MiB of its own beside a 1.2 GiB parent), rounded up.
CHILD_SHARE = 0.4
#: The children started and not yet ended, with the memory of its own each is expected to
#: reach (:data:`CHILD_SHARE` of its parent's resident memory when it forked): a child that
#: has just started holds little of its own yet.
_LIVE: dict[int, float] = {}
#: A fresh interpreter's memory (MiB) once it has imported numpy and scipy: its PSS measured
#: here at 64 MiB (Python 3.11, numpy 2, scipy 1.17), rounded up. (Pandas would add 80: the
#: functions run fresh take and give arrays.)
FRESH_BASE_MIB = 70.0
#: How much nicer than the run a fresh interpreter runs: its work is long and only
#: overlaps the run's, so the run's own processes (and the forks it waits for) take a
#: core first and it takes what they leave (Linux's weights: about 1 to 10 at 10).
FRESH_NICE = 10


def fresh_mib(blob_bytes: int, work_mib: float = 0.0) -> float:
    """What a fresh interpreter is expected to reach: :data:`FRESH_BASE_MIB`, its pickled
    arguments twice (the bytes read and the objects made of them), and the function's own
    ``work_mib``. (The street centrality of Helsinki x156's 378k junctions: 163 MiB
    expected, a peak of 131 MiB PSS, 147 resident, measured.)"""
    return FRESH_BASE_MIB + 2.0 * blob_bytes / 2**20 + work_mib


def budget_mib() -> float:
    """The memory budget: ``SITEPLANNER_MEMORY_MIB`` (default :data:`DEFAULT_BUDGET_MIB`),
    at most half of the system's available memory.

    Raises
    ------
    InputError
        When the variable is set to anything but a positive number of MiB.
    """
    raw = os.environ.get(ENV_BUDGET, "").strip()
    try:
        budget = float(raw) if raw else float(DEFAULT_BUDGET_MIB)
    except ValueError:
        budget = float("nan")
    if not budget > 0 or budget == float("inf"):
        msg = (f"{ENV_BUDGET}={raw!r} is not a number of MiB; set it to the memory a run may "
               f"take, e.g. {ENV_BUDGET}=3000, or unset it for {DEFAULT_BUDGET_MIB}")
        raise InputError(msg)
    available = _meminfo_mib("MemAvailable")
    return budget if available is None else min(budget, available / 2)


def _room(what: str, need_mib: float | None = None, *, quiet: bool = False) -> bool:
    """Whether a child fits the budget beside this process and the live children: their
    proportional memory (PSS) now, plus what each live child is still expected to take of
    its own, plus what the new one will: ``need_mib`` (a fresh interpreter's,
    :func:`fresh_mib`), else :data:`CHILD_SHARE` of this process's resident memory (a
    fork's). Without ``/proc`` (no PSS to read) there is no budget to hold."""
    mine = _rollup_mib(os.getpid())
    if mine is None:
        return True
    held = mine["Pss"]
    for pid, expected in list(_LIVE.items()):
        child = _rollup_mib(pid)
        if child is not None:
            held += child["Pss"] + max(0.0, expected - child["Private"])
    new = CHILD_SHARE * mine["Rss"] if need_mib is None else need_mib
    need, budget = held + new, budget_mib()
    if need <= budget:
        return True
    if not quiet:  # a caller with another way to run it aside says nothing yet
        log.info("%s in this process: a second process would take the run to about %.0f "
                 "MiB, past its %.0f MiB budget (%s)", what, need, budget, ENV_BUDGET)
    return False


def _rollup_mib(pid: int) -> dict[str, float] | None:
    """A process's ``Rss``, ``Pss`` and ``Private`` (clean and dirty) memory in MiB, from
    ``/proc/PID/smaps_rollup``; None off Linux or for a process gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            kib = {k.rstrip(":"): int(v) for k, v, *_ in (line.split() for line in f)
                   if k.endswith(":") and v.isdigit()}
    except (OSError, ValueError):
        return None
    if "Pss" not in kib or "Rss" not in kib:
        return None
    return {"Rss": kib["Rss"] / 1024, "Pss": kib["Pss"] / 1024,
            "Private": (kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0)) / 1024}


def _proc_mib(path: str, prefix: str) -> float | None:
    """The sum (MiB) of the kB figures of a ``/proc`` file's lines starting with ``prefix``;
    None when the file cannot be read (not Linux, a process gone) or has no such line."""
    try:
        with open(path, encoding="ascii") as f:
            kib = [int(line.split()[1]) for line in f if line.startswith(prefix)]
    except (OSError, ValueError, IndexError):
        return None
    return sum(kib) / 1024 if kib else None


def _pss_mib(pid: int) -> float | None:
    rollup = _rollup_mib(pid)
    return None if rollup is None else rollup["Pss"]


def _meminfo_mib(field: str) -> float | None:
    return _proc_mib("/proc/meminfo", field + ":")


def can_fork(what: str, need_mib: float | None = None, *, quiet: bool = False) -> bool:
    """Whether :func:`aside` would fork now for ``what`` (:func:`forking`, and room in the
    memory budget for a fork, or for a fresh interpreter of ``need_mib``): a caller that
    only gains by overlapping asks first, and otherwise does the work where it always did.
    ``quiet``: no log line when there is no room (the caller tries another way)."""
    return forking() and _room(what, need_mib, quiet=quiet)


def forking() -> bool:
    """Whether :func:`aside` forks here: ``os.fork`` exists, the caller is the main thread,
    two CPUs or more are ours, and ``SITEPLANNER_NO_FORK`` is unset, 0 or false."""
    if not hasattr(os, "fork") or threading.current_thread() is not threading.main_thread():
        return False
    if os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no", "off"):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus >= 2


class Aside(Generic[T]):
    """A function's run in a child process (or, when not forking, its finished run)."""

    def __init__(self, what: str, fn: Callable[..., T], *args: Any, fork: bool | None = None,
                 fresh_mib: float | None = None, job: bytes | None = None) -> None:
        """Run ``fn(*args)``: in a second process when ``fork`` says so, or (None) when
        :func:`can_fork`; forked, or with ``fresh_mib`` in a fresh interpreter expected to
        reach that many MiB (``fn`` and ``args`` are pickled to it; ``job``: already
        pickled, as :meth:`Pending.start_fresh` does to size it)."""
        self.what = what
        #: The child's own figures, once it has answered: ``seconds`` it ran, and the
        #: memory it held that the parent does not share, ``own_mib`` (its private pages at
        #: the end, read from ``/proc/self/smaps_rollup``; None off Linux).
        self.stats: dict[str, float | None] = {}
        self._pid = 0
        self._fd = -1
        self._done: tuple[bool, Any] | None = None
        self.forked = can_fork(what, fresh_mib) if fork is None else fork
        if not self.forked:
            try:
                self._done = (True, fn(*args))
            except Exception as e:  # raised from result(), as the child's would be
                self._done = (False, e)
            return
        blob = b""
        if fresh_mib is None:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: run, answer, leave
                os.close(r)
                _child(w, fn, args)
            os.close(w)
            parent = _rollup_mib(os.getpid())
            expected = CHILD_SHARE * parent["Rss"] if parent is not None else 0.0
            self._job_fd = -1
        else:
            blob = job if job is not None else pickle.dumps((fn, args),
                                                            protocol=pickle.HIGHEST_PROTOCOL)
            pid, r, self._job_fd = _spawn()
            expected = fresh_mib
        self._pid, self._fd = pid, r
        _LIVE[pid] = expected
        # the answer is read as soon as it is written: a child blocked on a full pipe would
        # live on, and every page this process writes meanwhile would exist twice
        self._chunks: list[bytes] = []
        self._status = 0
        self._reader = threading.Thread(target=self._drain, args=(blob,), name=f"aside-{pid}",
                                        daemon=True)
        self._reader.start()

    def _drain(self, job: bytes) -> None:
        if self._job_fd >= 0:  # a fresh interpreter's job, written while it starts
            try:
                with os.fdopen(self._job_fd, "wb") as f:
                    f.write(_LEN.pack(len(job)))
                    f.write(job)
            except OSError:  # it died before reading: its exit is reported
                pass
        with os.fdopen(self._fd, "rb") as f:  # reading a pipe lets go of the GIL
            while chunk := f.read(1 << 20):
                self._chunks.append(chunk)
        # the pipe closed: the child has answered or ended; reaped at once, so an answer
        # nobody collects leaves no zombie behind
        _, self._status = os.waitpid(self._pid, 0)
        _LIVE.pop(self._pid, None)

    def result(self) -> T:
        """The function's return value; its exception, raised here; an error when the
        child ended without an answer."""
        if self._done is None:
            self._done = self._wait()
        ok, value = self._done
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Kill the child (its answer is no longer wanted) and reap it."""
        if self._done is None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._done = self._wait()

    def __del__(self) -> None:
        # an answer no one collected (its caller dropped it): no child is left behind
        if getattr(self, "_done", True) is None and self._pid:
            try:
                self.cancel()
            except Exception:  # noqa: BLE001, S110  # the interpreter may be shutting down
                pass

    def close(self) -> None:
        """Wait for the child and drop its answer (the caller failed: its folder goes)."""
        if self._done is None:
            self._done = self._wait()

    def _wait(self) -> tuple[bool, Any]:
        self._reader.join()  # the pipe read to its end and the child reaped
        status = self._status
        blob = b"".join(self._chunks)
        self._chunks = []
        if len(blob) >= _LEN.size and _LEN.unpack_from(blob)[0] == len(blob) - _LEN.size:
            ok, value, self.stats, said = pickle.loads(blob[_LEN.size:])
            for message, category in said:  # the child's warnings, where the caller records them
                warnings.warn(message, category, stacklevel=3)
            return ok, value
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {os.WTERMSIG(status)}"
        else:
            how = f"exited with status {os.waitstatus_to_exitcode(status)}"
        return False, OutputError(f"the second process {self.what} {how} before it finished "
                                  f"(out of memory?); rerun, or set {ENV_OFF}=1 to run in one "
                                  "process")


class Pending(Generic[K, T]):
    """Work started aside under a key, taken by the first caller that needs it.

    ``weak=True`` keys by the object itself (its identity, so a table that cannot be hashed
    serves too), held by a weak reference: an object that goes takes its work, killed if
    still running, and its figures with it, and another object given its id later finds
    none. The figures of work taken (:attr:`Aside.stats`) are kept for the run's record,
    read once (:meth:`stats`).
    """

    def __init__(self, *, weak: bool = False) -> None:
        self._weak = weak
        self._jobs: dict[Any, Aside[T]] = {}
        self._stats: dict[Any, dict[str, Any]] = {}
        self._refs: dict[int, weakref.ref[Any]] = {}

    def _slot(self, key: K, *, held: bool = False) -> Any:
        """Where ``key``'s work is kept: the key, or (weak) its id while the id is this very
        object's; None for an object not held (``held``: hold it now)."""
        if not self._weak:
            return key
        slot = id(key)
        ref = self._refs.get(slot)
        if ref is not None and ref() is key:
            return slot
        if not held:
            return None
        self._refs[slot] = weakref.ref(key, functools.partial(self._gone, slot))
        return slot

    def _gone(self, slot: int, _ref: object) -> None:
        self._refs.pop(slot, None)
        self._stats.pop(slot, None)
        job = self._jobs.pop(slot, None)
        if job is not None:
            job.cancel()

    def __contains__(self, key: K) -> bool:
        return self._slot(key) in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def start(self, key: K, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        """``fn(*args, **kwargs)`` in a second process under ``key``, unless work runs for
        it already or the run cannot fork (:func:`can_fork`): then nothing, and the caller
        computes it where it always did when it needs it."""
        if key not in self and can_fork(what):
            self._jobs[self._slot(key, held=True)] = Aside(
                what, functools.partial(fn, *args, **kwargs), fork=True)

    def start_fresh(self, key: K, what: str, work_mib: float, fn: Callable[..., T], *args: Any,
                    **kwargs: Any) -> None:
        """As :meth:`start`, in a fresh interpreter (:func:`fresh_mib`: ``fn`` and ``args``
        pickled to it, expected to take ``work_mib`` MiB for the work itself): for work that
        reads a small part of this process's tables beside a large one."""
        if key in self:
            return
        call = functools.partial(fn, *args, **kwargs)
        blob = pickle.dumps((call, ()), protocol=pickle.HIGHEST_PROTOCOL)
        need = fresh_mib(len(blob), work_mib)
        if not can_fork(what, need):
            return
        try:
            job = Aside(what, call, fork=True, fresh_mib=need, job=blob)
        except OSError as e:  # no interpreter to start (an embedded Python): the caller's work
            log.info("%s in this process: no fresh interpreter started (%s)", what, e)
            return
        self._jobs[self._slot(key, held=True)] = job

    def take(self, key: K) -> tuple[bool, T | None]:
        """``(True, answer)`` of the work started under ``key`` (its error raised here),
        or ``(False, None)`` when none was."""
        slot = self._slot(key)
        job = self._jobs.pop(slot, None)
        if job is None:
            return False, None
        value = job.result()
        if job.forked:
            self._stats[slot] = job.stats
        return True, value

    def stats(self, key: K) -> dict[str, Any] | None:
        """The seconds and own memory of the work taken under ``key``, once; else None."""
        return self._stats.pop(self._slot(key), None)

    def cancel(self) -> None:
        """Stop every piece of work not taken (a run that failed before reading it)."""
        while self._jobs:
            self._jobs.popitem()[1].cancel()


def aside(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Aside[T]:
    """Start ``fn(*args, **kwargs)`` in a child process (``what`` it does, for an error:
    "writing sites.gpkg"); :meth:`Aside.result` waits for its answer."""
    return Aside(what, functools.partial(fn, *args, **kwargs))


def _spawn() -> tuple[int, int, int]:
    """A fresh interpreter running :func:`_serve`: its pid, the answer's read end and the
    job's write end. It finds this process's modules where this process does (its
    ``sys.path``); its console output goes nowhere."""
    job_r, job_w = os.pipe()
    ans_r, ans_w = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
    code = f"import siteplanner._aside as a; a._serve({job_r}, {ans_w}, {FRESH_NICE})"
    os.set_inheritable(job_r, True)
    os.set_inheritable(ans_w, True)
    try:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    finally:
        os.close(job_r)
        os.close(ans_w)
    return pid, ans_r, job_w


def _serve(job_r: int, ans_w: int, nice: int = 0) -> None:
    """A fresh interpreter's work: read the pickled function and arguments, run, answer
    (at ``nice`` more than its parent's niceness)."""
    try:
        os.nice(nice)
    except OSError:  # a limit on niceness: it runs as its parent does
        pass
    try:
        with os.fdopen(job_r, "rb") as f:
            (n,) = _LEN.unpack(f.read(_LEN.size))
            fn, args = pickle.loads(f.read(n))
    except BaseException:  # noqa: BLE001  # a job cut short: the parent reports the exit
        os._exit(1)
    _child(ans_w, fn, args)


def _child(w: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    code = 0
    try:
        logging.disable(logging.CRITICAL)  # the console and its progress bar are the parent's
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                answer: tuple[bool, Any] = (True, fn(*args))
            except BaseException as e:  # noqa: BLE001  # every failure goes back to the parent
                answer = (False, e)
        stats: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 3),
                                 "own_mib": _own_mib()}
        said = [(str(w.message), w.category) for w in caught]
        try:
            blob = pickle.dumps((*answer, stats, said), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001  # an unpicklable answer: its words, at least
            blob = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}"), stats, []))
        with os.fdopen(w, "wb") as f:
            f.write(_LEN.pack(len(blob)))
            f.write(blob)
    except BaseException:  # noqa: BLE001  # a broken pipe: the parent reports the exit
        code = 1
    finally:
        os._exit(code)


def _own_mib() -> float | None:
    """This process's private memory (MiB): the pages a fork's child no longer shares."""
    rollup = _rollup_mib(os.getpid())
    return None if rollup is None else round(rollup["Private"], 1)
