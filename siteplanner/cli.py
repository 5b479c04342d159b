"""The ``siteplanner`` command line: thin commands over the Python API.

Library code raises :class:`SitePlannerError` with a message that says what to
fix; here it becomes one line on stderr and exit code 1 (a traceback only
with ``--debug``). A failed run writes nothing into the output folder.

Text from data (names, ids, paths, messages quoting a file) is never read as
Rich console markup, and its control characters (ANSI escapes among them) are
shown as ``\\xNN`` instead of reaching the terminal. SIGINT and SIGTERM stop a
run cleanly: its temporary folder is removed, the output folder is left as it
was, and the exit code is 130 or 143.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from siteplanner import datasets
from siteplanner._errors import ConfigError, SitePlannerError

__all__ = ["app", "main"]

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Where to open the next branches, and how to lay out each floor.")
err = Console(stderr=True)
out = Console()

_STATE = {"debug": False}

DEMO_STUDY = Path(str(datasets.helsinki().study))


#: C0 and C1 control characters and the bidirectional overrides that reorder a line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _plain(text: object) -> str:
    """``text`` with every control character shown as ``\\xNN`` (or ``\\uNNNN``)."""
    return _CONTROL.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                   else f"\\u{ord(m.group()):04x}"), str(text))


def _line(label: str, style: str, text: object) -> Text:
    """One console line: a styled label, then data shown as it is (never read as markup)."""
    return Text.assemble((label, style), " ", _plain(text))


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that every cleanup on the way out runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def guarded(fn: F) -> F:
    """Turn a SitePlannerError into one clean line and exit 1, unless --debug.

    SIGINT exits 130 and SIGTERM 143 (128 + the signal), after the cleanups ran.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _STATE["debug"]
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default" if debug else "ignore", DeprecationWarning)
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except SitePlannerError as e:
            if debug:
                raise
            err.print(_line("error:", "bold red", e), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except (KeyboardInterrupt, _Terminated) as e:
            name = "SIGTERM" if isinstance(e, _Terminated) else "SIGINT"
            err.print(_line("stopped:", "bold red", f"{name}; no partial output was left in the "
                            "output folder"), highlight=False, soft_wrap=True)
            raise typer.Exit(143 if name == "SIGTERM" else 130) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


class _StageProgress(logging.Handler):
    """Shows what a long stage is doing under the stage bar, from the library's log records.

    Library code prints nothing: it logs at INFO (``"candidates: 35,931 of 227,355
    cells ..."``), and a record with ``extra={"progress": (done, total)}`` moves a
    bar with its counts (``write: sites.gpkg layer 3 of 10``). Without ``-v`` those
    records go only here, not to the terminal.
    """

    def __init__(self, progress: Any, task: Any) -> None:
        super().__init__(logging.INFO)
        self.progress, self.task = progress, task
        self.logger = logging.getLogger("siteplanner")
        self.saved = (self.logger.level, self.logger.propagate)

    def emit(self, record: logging.LogRecord) -> None:
        done_total = getattr(record, "progress", None)
        text = Text(f"  {record.getMessage()}", style="dim")
        if done_total is None:
            self.progress.update(self.task, description=text, total=None, visible=True)
        else:
            done, total = done_total
            self.progress.update(self.task, description=text, completed=done, total=total,
                                 visible=True)

    def __enter__(self) -> _StageProgress:
        if not self.logger.isEnabledFor(logging.INFO):  # quiet: the records come only here
            self.logger.setLevel(logging.INFO)
            self.logger.propagate = False
        self.logger.addHandler(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


def _show_warning(message: Warning | str, category: type[Warning], *_a: Any, **_k: Any) -> None:
    if issubclass(category, UserWarning):
        err.print(_line("warning:", "yellow", message), highlight=False, soft_wrap=True)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
          verbose: Annotated[int, typer.Option("-v", "--verbose", count=True,
                                               help="More log output.")] = 0) -> None:
    _STATE["debug"] = debug
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)


def _run_rank(study_path: Path | None, *, out_dir: Path, osm: Path | None = None,
              place: str | None = None, bbox: str | None = None, brand: list[str] | None = None,
              layer: list[str] | None = None, top: int | None = None,
              select: str | None = None, solver: str | None = None, model: str | None = None,
              sets: list[str] | None = None, report: bool = True,
              area_name: str | None = None, name: str | None = None, budget: str | None = None,
              min_npv: str | None = None, policy: str | None = None) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from siteplanner._fs import check_writable
    from siteplanner.config import load_study
    from siteplanner.io import write_rank_outputs
    from siteplanner.pipeline import STAGES, rank_sites

    # no study file: the package's defaults, which belong to no city (see siteplanner.config)
    base = load_study(study_path) if study_path is not None else load_study(
        None, brand=tuple(brand or ()), osm=osm, place=place)
    named = [f"study.name={name}"] if name is not None else []
    study = base.with_overrides(
        sets=[*(sets or []), *named], brand=brand, top_k=top, osm=osm, place=place, bbox=bbox, layers=layer,
        select=select, solver=solver, model=model, area_name=area_name, budget=budget,
        min_npv=min_npv, policy=policy)
    check_writable(out_dir)
    names = [name for name, _ in STAGES]

    def on_stage(name: str) -> None:
        progress.update(task, description=name, completed=names.index(name))
        progress.update(detail, description="", completed=0, total=None, visible=False)

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task("starting", total=len(names) + 1)
        detail = progress.add_task("", total=None, visible=False)
        with _StageProgress(progress, detail):
            result = rank_sites(study, on_stage=on_stage, floorplans=report)
            progress.update(task, description="write", completed=len(names))
            progress.update(detail, visible=False)
            t0 = time.perf_counter()
            files = write_rank_outputs(result, out_dir, report=report)
            written_s = time.perf_counter() - t0
    for w in result.warnings:
        err.print(_line("warning:", "yellow", w), highlight=False, soft_wrap=True)
    out.print(_sites_table(result))
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in {**result.timings, "write": written_s}.items())
    out.print(f"stages: {timing}", markup=False, highlight=False)
    out.print(Text(_plain(f"wrote {', '.join(str(f) for f in files)}")), soft_wrap=True)


def _sites_table(result: Any) -> Table:
    """The chosen sites for the console: where each is, its score and what it wins, with units."""
    unit = (result.extras.get("demand") or {}).get("unit", "people per day")
    table = Table(title=Text(_plain(
        f"{result.study.display_name}: top {len(result.selected)} sites "
        f"(foot traffic: {'measured' if result.foot_traffic_measured else 'proxy'})")))
    sel = result.selected
    extra = [(c, label, fmt) for c, label, fmt in (
        ("net_new_demand", "net new", "{:,.0f}"), ("cannibalized", "cannib.", "{:,.0f}"),
        ("npv", "NPV", "{:,.1f}m"), ("stability", "stable", "{:.2f}")) if c in sel]
    below = (result.extras.get("stability") or {}).get("fragile_below")
    fragile_note = (f" (* fragile: under {below:.0%})" if below is not None and "fragile" in sel
                    and sel["fragile"].fillna(False).astype(bool).any() else "")
    table.caption = Text(_plain(
        f"own m: metres to the nearest own branch; net new / cannib.: demand won / taken from "
        f"own branches (Huff), {unit}; NPV in millions of {result.study.economics.currency}; stable: share "
        f"of weight draws keeping the site in the top K{fragile_note}"))
    table.add_column("rank", justify="right")
    table.add_column("site", min_width=16, max_width=20)
    for col in ("score", "own m", *(label for _, label, _ in extra)):
        table.add_column(col, justify="right", no_wrap=True)
    for _, row in sel.iterrows():
        cells = [fmt.format(row[c] / 1e6 if c == "npv" else row[c])
                 + ("*" if c == "stability" and row.get("fragile") else "")
                 for c, _, fmt in extra]
        where = ", ".join(str(row[c]) for c in ("address", "district")
                          if isinstance(row.get(c), str) and row[c].strip()) or str(row["site_id"])
        table.add_row(*(Text(_plain(c)) for c in (
            str(row["rank"]), where, f"{row['score']:.3f}", f"{row['nearest_own_m']:.0f}", *cells)))
    return table


@app.command()
@guarded
def rank(
    study: Annotated[Path | None, typer.Argument(
        help="Study TOML file; without one the package defaults are used (give --osm and --brand).")
    ] = None,
    osm: Annotated[Path | None, typer.Option("--osm", help="OSM file: .osm.pbf, .osm, .osm.bz2.")] = None,
    place: Annotated[str | None, typer.Option("--place", help="Place name, fetched online.")] = None,
    bbox: Annotated[str | None, typer.Option("--bbox", help="W,S,E,N in degrees, online.")] = None,
    brand: Annotated[list[str] | None, typer.Option("--brand", help="Own brand name.")] = None,
    area_name: Annotated[str | None, typer.Option(
        "--area-name", help="Study the data's administrative boundary of this name.")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The study's name in titles (default: the area's own name).")] = None,
    layer: Annotated[list[str] | None, typer.Option("--layer", help="KIND=FILE user layer.")] = None,
    top: Annotated[int | None, typer.Option("--top", help="Number of sites (K).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/rank"),
    select: Annotated[str | None, typer.Option(
        "--select", help="top (score order with spacing) | coverage | pmedian | capture | npv.")
    ] = None,
    budget: Annotated[str | None, typer.Option(
        "--budget", help="Total capex allowed for --select npv, in the study's currency.")] = None,
    min_npv: Annotated[str | None, typer.Option(
        "--min-npv", help="NPV hurdle: drop the sites whose NPV is below it (any --select).")
    ] = None,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="report (list the siting-rule checks) | strict (drop failing sites).")
    ] = None,
    solver: Annotated[str | None, typer.Option(
        "--solver", help="For joint rules: auto | exact | heuristic.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="weighted (the study's weights) | learned (fitted to existing banks).")
    ] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="Override: criteria.NAME.weight=W, criteria.NAME.radius_m=R, selection.F=V.")
    ] = None,
    report: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write report.html and the study's floor plans; "
        "--no-report is faster and `siteplanner report OUT` builds the report later.")] = True,
) -> None:
    """Rank candidate branch sites and write the table, layers, map, report and run.json."""
    from siteplanner._fs import output_lock

    with output_lock(out_dir):  # a second run on the same folder fails now, not after the work
        _run_rank(study, out_dir=out_dir, osm=osm, place=place, bbox=bbox, brand=brand,
                  layer=layer, top=top, select=select, solver=solver, model=model, sets=sets,
                  report=report, area_name=area_name, name=name, budget=budget,
                  min_npv=min_npv, policy=policy)


@app.command()
@guarded
def demo(out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/demo")
         ) -> None:
    """Run the bundled Helsinki study into out/demo/."""
    from siteplanner._fs import output_lock

    with output_lock(out_dir):
        _run_rank(DEMO_STUDY, out_dir=out_dir)


@app.command()
@guarded
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new study.toml.")] = Path("."),
    osm: Annotated[Path, typer.Option("--osm", help="The place's OSM extract.")] = Path(""),
    brand: Annotated[str | None, typer.Option("--brand", help="Your own brand's name.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing study.toml.")] = False,
) -> None:
    """Write a commented study.toml for a new place: the brands and boundaries found, the defaults."""
    from siteplanner.scaffold import write_study

    if not str(osm):
        msg = "init needs --osm FILE: the place's OpenStreetMap extract (.osm.pbf, .osm, .osm.bz2)"
        raise ConfigError(msg)
    path = write_study(folder, osm, brand=brand, force=force)
    out.print(Text(_plain(f"wrote {path}; edit its brand and area, then run: "
                          f"siteplanner rank {path}")), soft_wrap=True)


@app.command()
@guarded
def report(out_dir: Annotated[Path, typer.Argument(help="The --out folder of a rank run.")]) -> None:
    """Rebuild report.html from a run's outputs (e.g. after adding floor plans)."""
    from siteplanner.report import rebuild_report

    out.print(Text(_plain(f"wrote {rebuild_report(out_dir)}")), soft_wrap=True)


def _admin_level(by: str) -> int:
    key, _, value = by.partition("=")
    if key.strip() != "admin_level" or not value.strip().isdigit():
        msg = f"--by {by}: expected admin_level=N, e.g. --by admin_level=7 (OSM's admin_level)"
        raise ConfigError(msg)
    return int(value)


def _area_line(row: Any) -> None:
    style = {"done": "green", "cached": "cyan", "failed": "bold red"}.get(row.status, "")
    detail = (f"{row.seconds:.1f} s, {row.candidates} candidates, {row.sites} sites"
              if row.status != "failed" else row.error)
    err.print(_line(f"{row.status}:", style, f"{row.area} ({detail})"), highlight=False, soft_wrap=True)


@app.command()
@guarded
def national(
    study: Annotated[Path, typer.Argument(help="Study TOML file (its [national] places, or --by).")],
    by: Annotated[str | None, typer.Option(
        "--by", help="admin_level=N: one area per boundary at that level of the study's extract.")] = None,
    top: Annotated[int | None, typer.Option("--top", help="Number of sites nationally (K).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/national"),
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Start a local Dask cluster of N worker processes.")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Use the Dask cluster at tcp://HOST:PORT.")] = None,
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", help="Memory per local worker, e.g. 2GiB (default: the machine's / N).")] = None,
    tile_km2: Annotated[float | None, typer.Option(
        "--tile-km2", help="Split each area above this many km² into tiles with overlap.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override, as for rank.")] = None,
) -> None:
    """Run the study over many areas on Dask and rank the best sites across all of them."""
    from siteplanner._fs import output_lock
    from siteplanner.config import load_study
    from siteplanner.national_outputs import write_national_outputs
    from siteplanner.national_run import run_national

    level = _admin_level(by) if by is not None else None
    if workers is not None and workers < 1:
        msg = f"--workers {workers}: give at least 1 worker process (or --scheduler ADDRESS)"
        raise ConfigError(msg)
    base = load_study(study).with_overrides(sets=sets or [], top_k=top)
    with output_lock(out_dir):
        run = run_national(base, out_dir=out_dir, admin_level=level, top_k=top, workers=workers,
                           scheduler=scheduler, memory_limit=memory_limit, tile_km2=tile_km2,
                           on_area=_area_line)
        files = write_national_outputs(run, out_dir)
    table = Table(title=Text(_plain(f"{run.study.display_name}: top {len(run.sites)} sites nationally")))
    for col in ("rank", "area", "site_id", "score"):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left", no_wrap=True)
    for r in run.sites.itertuples(index=False):
        table.add_row(*(Text(_plain(c)) for c in (r.rank, r.area, r.site_id, f"{r.score:.3f}")))
    out.print(table)
    out.print(Text(_plain(f"wrote {', '.join(str(f) for f in files)} and {out_dir / 'areas'}")),
              soft_wrap=True)
    failed = [r.area for r in run.rows if r.status == "failed"]
    if failed:
        err.print(_line("error:", "bold red", f"{len(failed)} of {len(run.rows)} areas failed "
                        f"({', '.join(failed)}); see {out_dir / 'areas.csv'}"),
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)


#: ``siteplanner floorplan``'s line in ``--help``: the first line of the floor planner's
#: ``floorplan_command`` docstring (a test keeps the two equal).
FLOORPLAN_HELP = "Size the service, waiting and self-service zones and lay them out in the outline."


def _register_floorplan() -> None:
    """Add ``siteplanner floorplan``, whose options the floor planner declares.

    Its module (and with it geopandas) is imported only when the command
    runs, so ``siteplanner --help`` and the other commands start without it:
    the arguments go on, unparsed, to a one-command app built from it.
    """
    if not (Path(__file__).parent / "floorplan" / "cli.py").is_file():
        return  # the floor planner is an optional part of a checkout

    @app.command("floorplan", help=FLOORPLAN_HELP, add_help_option=False,
                 context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def floorplan(ctx: typer.Context) -> None:
        from siteplanner.floorplan.cli import floorplan_command

        planner = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        planner.command(help=floorplan_command.__doc__)(guarded(floorplan_command))
        planner(args=ctx.args, prog_name=f"{ctx.find_root().info_name or 'siteplanner'} floorplan")


_register_floorplan()


def main() -> None:
    """Console-script entry point.

    Once the command has returned (every output written and closed), the process
    ends without the interpreter's teardown, which frees every module and array
    one object at a time: 0.6 to 1.3 s after a national-scale ``rank`` with
    nothing left to do (``benchmarks/bench_rank.py``). The ``atexit`` handlers
    still run, and with other threads alive the normal exit waits for them.
    """
    try:
        app()
    except SystemExit as e:
        _exit_now(e.code)
    _exit_now(0)


def _exit_now(code: object) -> NoReturn:
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if threading.active_count() > 1 or run_exit_handlers is None:
        sys.exit(code)  # type: ignore[arg-type]
    if not isinstance(code, int):  # sys.exit(None) is 0; sys.exit("text") prints it, exits 1
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    run_exit_handlers()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
