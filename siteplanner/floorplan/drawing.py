"""The plan drawing (SVG and PNG): zones tinted and hatched by access, fixtures, doors, the route.

Drawn on a :class:`matplotlib.figure.Figure` of its own: no pyplot state, no
backend switch and no global ``rcParams`` change (the SVG hash salt that makes
the file reproducible is set inside :func:`matplotlib.rc_context`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from siteplanner.floorplan.plan import FloorPlan

__all__ = ["ACCESS_HATCH", "COLOURS", "draw_plan"]

#: Fill colours per zone kind (colour-blind-safe Okabe-Ito palette) and DXF colour indices.
COLOURS = {
    "self_service": ("#E69F00", 30),
    "waiting": ("#56B4E9", 4),
    "service": ("#009E73", 3),
    "advisory": ("#F0E442", 2),
    "back_office": ("#999999", 8),
    "vault": ("#D55E00", 1),
    "restroom": ("#CC79A7", 6),
    "flex": ("#F2F2F2", 9),
    "circulation": ("#E0E0E0", 9),
}
#: Hatching per access class: public floor plain, staff floor hatched, secure cross-hatched.
ACCESS_HATCH = {"public": None, "staff": "//", "secure": "xx"}
#: The staff side of a counter whose cashier has no staff-only way to the cash room.
CUT_OFF = "#F08080"
#: Door colours by kind.
DOOR_COLOURS = {"passage": "#FFFFFF", "door": "#0072B2", "controlled": "#CC0000",
                "entrance": "#CC0000"}
#: A zone label may overhang its zone by this much (its box's padding), metres.
_LABEL_SLACK_M = 0.05
#: The gap between the outline and the labels called out beside it, a share of the plan's size.
_CALLOUT_GAP = 0.04
_FIXTURE_FACE = {"counter": "#4D4D4D", "atm": "#000000", "seat": "#6E6E6E",
                 "wheelchair_place": "#FFFFFF", "desk": "#8C6D46", "chair": "#B0B0B0",
                 "safe": "#3A3A3A"}


def _polys(ax: Axes, geom: BaseGeometry | None, **style: Any) -> None:
    if geom is None or geom.is_empty:
        return
    for part in shapely.get_parts(geom):
        if part.geom_type != "Polygon":
            continue
        xs, ys = part.exterior.xy
        ax.fill(xs, ys, **style)


def _label(row: Any) -> str:
    name = str(row.zone).replace("_", " ")
    n = int(row.units)
    unit = str(row.unit)
    if n == 1 and unit.endswith("s") and not unit.endswith("ss"):
        unit = unit[:-1]
    tail = f"\n{n} {unit}" if n else ""
    return f"{name}\n{row.area_m2:.1f} m² · {row.access}{tail}"


def _zones(ax: Axes, plan: FloorPlan) -> None:
    for row in plan.zones.itertuples(index=False):
        colour = COLOURS.get(str(row.zone), ("#DDDDDD", 7))[0]
        _polys(ax, row.geometry, facecolor=colour, edgecolor="black", linewidth=1.2, alpha=0.85,
               hatch=ACCESS_HATCH.get(str(row.access)), zorder=1)


def _fixtures(ax: Axes, plan: FloorPlan) -> None:
    fx = plan.fixtures
    if fx is None or not len(fx):
        return
    for row in fx.itertuples(index=False):
        if row.part == "clearance":
            _polys(ax, row.geometry, facecolor="none", edgecolor="#555555", linewidth=0.5,
                   linestyle=(0, (2, 2)), zorder=3)
        elif row.part == "staff_side" and getattr(row, "cut_off", False):
            _polys(ax, row.geometry, facecolor=CUT_OFF, edgecolor="#8B0000", linewidth=1.0,
                   hatch="//", alpha=0.8, zorder=3)
        elif row.part == "staff_side":
            _polys(ax, row.geometry, facecolor="#BBBBBB", edgecolor="#555555", linewidth=0.4,
                   hatch="//", alpha=0.6, zorder=3)
        else:
            _polys(ax, row.geometry, facecolor=_FIXTURE_FACE.get(str(row.fixture), "#444444"),
                   edgecolor="black", linewidth=0.5, zorder=4)


def _route(ax: Axes, plan: FloorPlan) -> None:
    route = plan.route
    if route is None:
        return
    reached = route.reached
    for part in shapely.get_parts(reached):
        if part.geom_type == "Polygon":
            xs, ys = part.exterior.xy
            ax.plot(xs, ys, color="#0072B2", linewidth=0.8, linestyle=":", zorder=5)
    if route.egress_path is not None:
        xs, ys = route.egress_path.xy
        ax.plot(xs, ys, color="#0072B2", linewidth=1.8, zorder=6)
        ax.annotate(f"egress {route.egress_m:.1f} m", (xs[0], ys[0]), textcoords="offset points",
                    xytext=(4, -10), fontsize=8, color="#0072B2")


def _doors(ax: Axes, plan: FloorPlan) -> None:
    for d in plan.doors:
        xs, ys = d.geometry.xy
        colour = DOOR_COLOURS.get(d.kind, "#000000")
        ax.plot(xs, ys, color=colour, linewidth=4 if d.kind != "passage" else 2.5,
                solid_capstyle="butt", zorder=7)
    for k, p in enumerate(plan.entrances):
        ax.plot(p.x, p.y, marker="v", markersize=14, color="#CC0000", markeredgecolor="black",
                zorder=8)
        ax.annotate(f"entrance {k + 1}", (p.x, p.y), textcoords="offset points",
                    xytext=(8, 8), fontsize=9, color="#CC0000", weight="bold")


def _legend(ax: Axes, plan: FloorPlan) -> None:
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Artist] = [Patch(facecolor="white", edgecolor="black", hatch=h,
                                   label=f"{a} floor") for a, h in ACCESS_HATCH.items()]
    handles += [Line2D([], [], color=DOOR_COLOURS[k], linewidth=4, label=label)
                for k, label in (("door", "staff door"), ("controlled", "controlled door"),
                                 ("entrance", "entrance"))]
    handles += [Line2D([], [], color="#0072B2", linestyle=":", label="public route (0.9 m clear)"),
                Line2D([], [], color="#0072B2", linewidth=1.8, label="egress path")]
    if plan.cashiers_cut_off:
        handles.append(Patch(facecolor=CUT_OFF, edgecolor="#8B0000", hatch="//",
                             label="cut off from cash room"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)


def scale_length(width: float) -> float:
    """A round scale-bar length near a fifth of the drawing width, metres."""
    raw = max(width / 5.0, 1.0)
    base = 10 ** np.floor(np.log10(raw))
    return float(max(m * base for m in (1, 2, 5) if m * base <= raw))


def _callouts(fig: Figure, ax: Axes, plan: FloorPlan, labels: list[tuple[Text, Any]]) -> list[str]:
    """Move each zone label its zone cannot hold (a 6 m² vault under a three-line label)
    out beside the plan, right of the outline in the order of the zones' heights, with a
    leader line to the zone; the zones called out."""
    fig.draw_without_rendering()
    inv = ax.transData.inverted()
    out = []
    for text, row in labels:
        (bx0, by0), (bx1, by1) = inv.transform(text.get_window_extent().get_points())
        if not row.geometry.buffer(_LABEL_SLACK_M).contains(shapely.box(bx0, by0, bx1, by1)):
            out.append((text, row, by1 - by0))
    if not out:
        return []
    x0, y0, x1, y1 = (plan.outline if plan.premises is None else plan.premises).bounds
    gap = _CALLOUT_GAP * max(x1 - x0, y1 - y0)
    # the heights of the called-out labels, stacked down from each one's own zone's height
    out.sort(key=lambda o: -o[0].get_position()[1])
    top = np.inf
    for text, _row, height in out:
        ax_, ay = text.get_position()
        y = min(ay, top - height / 2 - gap / 4)
        top = y - height / 2
        text.set_visible(False)
        ax.text(x1 + gap, y, text.get_text(), ha="left", va="center",
                fontsize=text.get_fontsize(), zorder=9,
                bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "none", "pad": 1.5})
        # the leader runs under the other zones' labels
        ax.plot([ax_, x1 + gap], [ay, y], color="black", linewidth=0.7, zorder=8.5)
    return [str(row.zone) for _t, row, _h in out]


def _figure(plan: FloorPlan) -> tuple[Figure, list[str]]:
    """The plan's figure, and the zones whose labels are called out beside it."""
    from matplotlib.figure import Figure

    x0, y0, x1, y1 = (plan.outline if plan.premises is None else plan.premises).bounds
    w, h = x1 - x0, y1 - y0
    fig = Figure(figsize=(12, 10 * max(h, 1) / max(w, 1) * 0.9 + 1.2))
    ax = fig.add_subplot()
    if plan.premises is not None:
        # the premises beyond the unit the branch is planned in
        rest = plan.premises.difference(plan.outline)
        _polys(ax, rest, facecolor="#F4F4F4", edgecolor="#777777", linewidth=1.0,
               linestyle="--", hatch="..", zorder=0)
        xs, ys = plan.premises.exterior.xy
        ax.plot(xs, ys, color="#777777", linewidth=1.5, linestyle="--", zorder=5)
        spot = shapely.get_point(shapely.maximum_inscribed_circle(rest, 0.01), 0)
        ax.text(spot.x, spot.y, f"rest of the premises\n{rest.area:.1f} m² · not planned",
                ha="center", va="center", fontsize=8, color="#444444", zorder=9,
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.5})
    _zones(ax, plan)
    _fixtures(ax, plan)
    _route(ax, plan)
    labels = []
    for row in plan.zones.itertuples(index=False):
        anchor = shapely.get_point(shapely.maximum_inscribed_circle(row.geometry, 0.01), 0)
        labels.append((ax.text(anchor.x, anchor.y, _label(row), ha="center", va="center",
                               fontsize=8, zorder=9, bbox={"facecolor": "white", "alpha": 0.75,
                                                           "edgecolor": "none", "pad": 1.5}),
                       row))
    xs, ys = plan.outline.exterior.xy
    ax.plot(xs, ys, color="black", linewidth=2.5, zorder=6)
    _doors(ax, plan)
    bar = scale_length(w)
    bx, by = x0, y0 - 0.08 * max(h, w)
    ax.plot([bx, bx + bar], [by, by], color="black", linewidth=4, solid_capstyle="butt")
    ax.text(bx + bar / 2, by - 0.02 * max(h, w), f"{bar:g} m", ha="center", va="top", fontsize=9)
    m = plan.metrics
    status = "all hard constraints pass" if m["all_constraints_pass"] else "HARD CONSTRAINTS FAIL"
    if plan.cashiers_cut_off:  # on a line of its own: the title is as wide as the plan
        status += (f";\n{plan.cashiers_cut_off} of {m['fixtures'].get('counter', 0)} cashiers "
                   "cut off from the cash room (no staff-only way to it)")
    for room in plan.staff_rooms_cut_off:
        status += f";\n{room.replace('_', ' ')} cut off from the cash room (no staff-only way to it)"
    unit = m.get("unit_of_premises")
    of = f" (a unit of the {unit['premises_m2']:.0f} m² premises)" if unit else ""
    ax.set_title(f"Branch floor plan: {m['outline_m2']:.0f} m²{of}, programme "
                 f"{m['programme_m2']:.0f} m², adjacency {m['adjacency_satisfaction']:.0%}, "
                 f"egress {m['egress_m']:.1f} m, {status}", fontsize=11)
    _legend(ax, plan)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    called = _callouts(fig, ax, plan, labels)
    if called:
        # room for the callouts right of the outline (the axes keep the plan's limits else)
        fig.draw_without_rendering()
        right = max(ax.transData.inverted().transform(a.get_window_extent().get_points())[1, 0]
                    for a in ax.texts if a.get_visible())
        ax.set_xlim(right=max(ax.get_xlim()[1], right + _CALLOUT_GAP * max(w, h)))
        fig.tight_layout()
    return fig, called


def draw_plan(plan: FloorPlan, svg: Path, png: Path) -> None:
    """Draw ``plan`` into ``svg`` and ``png``."""
    from matplotlib import rc_context

    fig, _ = _figure(plan)
    with rc_context({"svg.hashsalt": "siteplanner", "hatch.linewidth": 0.6}):
        fig.savefig(svg, format="svg", metadata={"Date": None}, bbox_inches="tight")
        fig.savefig(png, format="png", dpi=150, metadata={"Software": None}, bbox_inches="tight")
