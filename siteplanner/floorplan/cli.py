"""The ``siteplanner floorplan`` command (registered by the lead's app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from shapely.geometry import Point

from siteplanner._errors import ConfigError, InputError
from siteplanner.floorplan.export import read_outline, write_plan
from siteplanner.floorplan.plan import FloorPlan, plan_floor
from siteplanner.floorplan.sizing import Demand
from siteplanner.floorplan.standard import CHANNELS, default_standard, load_standard

__all__ = ["floorplan_command", "sizing_table"]


def _point(text: str) -> Point:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        msg = f"--entrance {text!r} must be two numbers 'X,Y' in the outline's metres"
        raise InputError(msg) from None
    return Point(x, y)


def _channel_values(items: list[str], option: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in CHANNELS or not value:
            msg = f"{option} {item!r} must be CHANNEL=VALUE with CHANNEL one of {CHANNELS}"
            raise ConfigError(msg)
        try:
            out[name] = [float(v) for v in value.split(",")]
        except ValueError:
            msg = f"{option} {item!r}: {value!r} is not a number"
            raise ConfigError(msg) from None
    return out


def sizing_table(plan: FloorPlan) -> Table:
    """A rich table of the sizing a planner can read."""
    t = Table(title="Zone sizing", show_lines=False)
    for col in ("zone", "arrivals/h", "servers", "exp. wait", "P(wait)", "served in target",
                "utilisation", "units", "programme m²", "allotted m²", "laid out m²"):
        t.add_column(col, justify="left" if col == "zone" else "right")
    s = plan.sizing
    area = dict(zip(plan.zones["zone"], plan.zones["area_m2"], strict=True))
    for zone, r in s.iterrows():
        queued = r["channel"] == r["channel"]  # NaN for zones without a queue
        t.add_row(
            str(zone),
            f"{r['arrivals_per_hour']:.0f}" if queued else "",
            f"{int(r['servers'])}" if queued else "",
            f"{r['mean_wait_min']:.1f} min" if queued else "",
            f"{r['p_wait']:.0%}" if queued else "",
            (f"{r['service_level']:.0%} ≤ {r['target_wait_min']:g} min "
             f"(target {r['target_level']:.0%})") if queued else "",
            f"{r['utilisation']:.0%}" if queued else "",
            f"{int(r['units'])} {r['unit']}",
            f"{r['programme_m2']:.1f}",
            f"{r['target_m2']:.1f}",
            f"{area[str(zone)]:.1f}",
        )
    return t


def floorplan_command(
    outline: Annotated[Path, typer.Option("--outline", help="Floor outline: GeoJSON or WKT, "
                                          "local metres.")],
    entrance: Annotated[list[str], typer.Option("--entrance", help="Entrance X,Y on the outline "
                                                "wall; repeat for several.")],
    arrivals: Annotated[float, typer.Option("--arrivals", help="Total peak-hour arrivals, split "
                                            "by the standard's [shares] unless "
                                            "--channel-arrivals is given.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    standard: Annotated[Path | None, typer.Option("--standard", help="Brand standard TOML.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the layout search.")] = 0,
    channel_arrivals: Annotated[list[str] | None, typer.Option(
        "--channel-arrivals", help="CHANNEL=N arrivals/h, e.g. counter=60; repeatable.")] = None,
    service_time: Annotated[list[str] | None, typer.Option(
        "--service-time", help="CHANNEL=MIN mean service time; repeatable.")] = None,
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="CHANNEL=SHARE,MIN service-level target, e.g. counter=0.8,5.")] = None,
    fit: Annotated[bool, typer.Option("--fit", help="If the outline is too small, lay out the "
                                      "reduced programme that fits instead of failing.")] = False,
) -> None:
    """Size the service, waiting and self-service zones and lay them out in the outline."""
    std = load_standard(standard) if standard is not None else default_standard()
    poly = read_outline(outline)
    doors = [_point(e) for e in entrance]
    per = {k: v[0] for k, v in _channel_values(channel_arrivals or [], "--channel-arrivals").items()}
    times = {k: v[0] for k, v in _channel_values(service_time or [], "--service-time").items()}
    targets = {}
    for k, v in _channel_values(target or [], "--target").items():
        if len(v) != 2:
            msg = f"--target {k}=... needs SHARE,MIN such as 0.8,5"
            raise ConfigError(msg)
        targets[k] = (v[0], v[1])
    demand = Demand(per if per else arrivals, service_time_min=times, target=targets)
    if per and abs(sum(per.values()) - arrivals) > 1e-6 * max(arrivals, 1):
        msg = (f"--channel-arrivals sum to {sum(per.values()):g} but --arrivals is {arrivals:g}; "
               "make them agree")
        raise InputError(msg)
    plan = plan_floor(poly, doors, demand, standard=std, seed=seed, fit=fit)
    write_plan(plan, out)
    # the table has eleven columns; below about 140 characters rich would elide them
    console = Console(width=max(Console().width, 150))
    console.print(sizing_table(plan))
    m = plan.metrics
    failed = [k for k, v in m["constraints"].items() if not v["pass"]]
    console.print(f"adjacency satisfaction {m['adjacency_satisfaction']:.0%}, mean area error "
                  f"{m['area_error_mean']:.2%}, "
                  + ("all hard constraints pass" if not failed else f"FAILED: {failed}"))
    if plan.security_note:
        console.print(f"security: {plan.security_note} (metrics.json: counters_cut_off, "
                      "staff_rooms_cut_off)",
                      markup=False, highlight=False)
    console.print(f"wrote {out}/: zones.geojson, plan.svg, plan.png, plan.dxf, metrics.json")
