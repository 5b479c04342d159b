"""The floorplan command: files written atomically, readable outputs, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import ezdxf
import pytest
import typer
from typer.testing import CliRunner

from siteplanner._errors import ConfigError, InputError, SitePlannerError
from siteplanner.floorplan import size_servers
from siteplanner.floorplan.cli import floorplan_command

DATA = Path(__file__).parent / "data" / "floorplan"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    a.command("floorplan")(floorplan_command)
    a.command("other")(lambda: None)  # two commands, so "floorplan" is a subcommand as in the app
    return a


def _run(app: typer.Typer, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["floorplan", *args])


@pytest.fixture(scope="module")
def written(app: typer.Typer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("fp") / "plan"
    res = _run(app, "--outline", str(DATA / "l_shape.geojson"), "--entrance", "20,4",
               "--arrivals", "80", "--seed", "2", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out, res.output


def test_writes_every_output_and_prints_the_sizing(written: tuple[Path, str]) -> None:
    out, text = written
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".siteplanner-manifest.json", "zones.geojson", "plan.svg", "plan.png", "plan.dxf", "metrics.json"])
    assert "Zone sizing" in text and "stations" in text and "seats" in text
    assert "all hard constraints pass" in text
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_geojson_has_one_feature_per_zone_with_areas_and_units(written: tuple[Path, str]) -> None:
    data = json.loads((written[0] / "zones.geojson").read_text())
    # zone features carry their units; fixture, clearance and furniture features name their zone
    zones = [f["properties"] for f in data["features"] if "units" in f["properties"]]
    assert {z["zone"] for z in zones} >= {"self_service", "waiting", "service"}
    for z in zones:
        assert abs(z["area_m2"] - z["target_m2"]) <= 0.1 * z["target_m2"]
        # the surplus zone (flex floor or circulation) has no planned units by design
        surplus = z["zone"] in ("flex", "circulation")
        assert isinstance(z["units"], int) and (z["units"] == 0 if surplus else z["units"] >= 1)
    assert sum(z["area_m2"] for z in zones) == pytest.approx(232.0, abs=0.01)


def test_geojson_holds_every_fixture_door_and_access_class(written: tuple[Path, str]) -> None:
    data = json.loads((written[0] / "zones.geojson").read_text())
    props = [f["properties"] for f in data["features"]]
    zones = {p["zone"]: p for p in props if "units" in p}
    assert {p["access"] for p in zones.values()} <= {"public", "staff", "secure"}
    assert zones["vault"]["access"] == "secure" and zones["waiting"]["access"] == "public"
    fixtures = [p for p in props if "fixture" in p]
    assert {p["fixture"] for p in fixtures} <= {"counter", "atm", "kiosk", "seat", "desk", "safe"}
    counts = {k: sum(p["fixture"] == k for p in fixtures) for k in ("counter", "atm", "seat")}
    assert counts == {"counter": zones["service"]["units"], "atm": zones["self_service"]["units"],
                      "seat": zones["waiting"]["units"]}
    assert all(p["zone"] in zones for p in fixtures)
    doors = [p for p in props if "door" in p]
    assert {"controlled", "entrance"} <= {p["door"] for p in doors}
    assert any(p.get("route") == "egress" and p["length_m"] > 0 for p in props)


def test_drawing_leaves_matplotlib_state_alone(written: tuple[Path, str]) -> None:
    import matplotlib
    from shapely.geometry import Point, box

    from siteplanner.floorplan.drawing import draw_plan
    from siteplanner.floorplan.plan import plan_floor

    before, backend = dict(matplotlib.rcParams), matplotlib.get_backend()
    plan = plan_floor(box(0, 0, 20, 12), [Point(20, 6)], 50.0, seed=0)
    out = written[0].parent / "again"
    out.mkdir()
    draw_plan(plan, out / "plan.svg", out / "plan.png")
    assert dict(matplotlib.rcParams) == before and matplotlib.get_backend() == backend
    svg = (out / "plan.svg").read_text()
    assert "<pattern" in svg  # staff and secure floor are hatched
    assert "egress" in svg and "controlled door" in svg


def test_metrics_and_drawings_are_complete(written: tuple[Path, str]) -> None:
    out = written[0]
    m = json.loads((out / "metrics.json").read_text())
    assert m["all_constraints_pass"] and 0.0 <= m["adjacency_satisfaction"] <= 1.0
    for key in ("area_error", "x_violations", "aspect_ratio", "constraints", "runtime_s"):
        assert key in m
    svg = (out / "plan.svg").read_text()
    assert "self service" in svg and "entrance 1" in svg
    assert (out / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = ezdxf.readfile(out / "plan.dxf")
    layers = {layer.dxf.name for layer in doc.layers}
    assert {"ZONE_SELF_SERVICE", "ZONE_WAITING", "ZONE_SERVICE", "OUTLINE"} <= layers
    used = {e.dxf.layer for e in doc.modelspace()}
    assert {"ZONES", "FIXTURES", "DOORS", "CIRCULATION", "DIMENSIONS"} <= used
    assert doc.units == ezdxf.units.M


@pytest.mark.parametrize(("args", "kind", "match"), [
    (["--outline", str(DATA / "bowtie.wkt"), "--entrance", "0,5", "--arrivals", "50"],
     InputError, "not a simple polygon"),
    (["--outline", str(DATA / "empty.wkt"), "--entrance", "0,5", "--arrivals", "50"],
     InputError, "empty"),
    (["--outline", str(DATA / "outline.csv"), "--entrance", "0,5", "--arrivals", "50"],
     InputError, "neither GeoJSON nor WKT"),
    (["--outline", str(DATA / "missing.geojson"), "--entrance", "0,5", "--arrivals", "50"],
     InputError, "does not exist"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "10,5", "--arrivals", "50"],
     InputError, "5.00 m from the outline wall"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5", "--arrivals", "0"],
     InputError, "must be positive"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5", "--arrivals=-3"],
     InputError, "must not be negative"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5", "--arrivals", "300",
      "--standard", str(DATA / "standard_small.toml")], InputError, "max_servers"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5", "--arrivals", "160"],
     InputError, "m² too small.*reduced programme"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5", "--arrivals", "50",
      "--standard", str(DATA / "standard_unknown_zone.toml")], ConfigError, "unknown zone kind"),
    (["--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5", "--arrivals", "50",
      "--standard", str(DATA / "standard_bad_rating.toml")], ConfigError, "closeness rating"),
])
def test_bad_input_raises_one_clear_error_and_writes_nothing(
        app: typer.Typer, tmp_path: Path, args: list[str], kind: type[SitePlannerError],
        match: str) -> None:
    out = tmp_path / "out"
    res = _run(app, *args, "--out", str(out))
    assert res.exit_code != 0
    assert isinstance(res.exception, kind), res.output
    assert "\n" not in str(res.exception)
    assert re.search(match, str(res.exception)), str(res.exception)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_per_channel_arrivals_and_targets_change_the_sizing(app: typer.Typer,
                                                            tmp_path: Path) -> None:
    res = _run(app, "--outline", str(DATA / "chamfered.wkt"), "--entrance", "0,5",
               "--arrivals", "60", "--channel-arrivals", "counter=40",
               "--channel-arrivals", "self_service=20", "--target", "counter=0.9,2",
               "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "o" / "zones.geojson").read_text())
    units = {f["properties"]["zone"]: f["properties"]["units"] for f in m["features"]
             if "units" in f["properties"]}
    expected = size_servers(40.0, 4.0, target_level=0.9, target_wait_min=2.0, max_occupancy=0.85)
    assert units["service"] == expected.servers == 5
    assert units["advisory"] == 1  # no advisory demand given: the standard's minimum
    assert units["self_service"] == size_servers(20.0, 2.2, target_level=0.8, target_wait_min=2.0,
                                                 max_occupancy=0.85).servers


#: Benchmark outline #113 (a U, 274 m², a cash room and a WC, no back office, 13 stations):
#: the service zone's one wall to the back of house is the cash room's, and the stations
#: the line cannot stand there are cut off from it on the other walls.
OUTLINE_113 = ([(0.0, 0.0), (17.32212727565065, 12.389174133618976),
                (10.12820280439185, 22.44747777505484), (4.9509445843010145, 18.74458651910739),
                (9.237397032318196, 12.751412634813232), (2.2697861968492177, 7.768021013089154),
                (-2.0166662511679645, 13.761194897383312), (-7.1939244712588, 10.058303641435863)],
               (-3.2577787540782768, 4.55491686575967), 274.52704557402285)


def _bench_plan(outline: tuple, zones: list[str], seed: int):  # type: ignore[type-arg]  # noqa: ANN202
    """A benchmark outline (coordinates, door, arrivals) planned with ``zones`` at its seed."""
    import warnings

    from shapely.geometry import Point, Polygon

    from siteplanner.floorplan import default_standard, plan_floor

    coords, door, arrivals = outline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return plan_floor(Polygon(coords), [Point(door)], arrivals, seed=seed,
                          standard=default_standard().with_zones(zones))


@pytest.fixture(scope="module")
def cut_off_plan():  # noqa: ANN201
    return _bench_plan(OUTLINE_113, ["vault", "restroom"], 113)


def test_cashiers_cut_off_from_the_cash_room_are_shown_on_every_output(cut_off_plan, tmp_path: Path,
                                                                      app: typer.Typer,
                                                                      monkeypatch: pytest.MonkeyPatch
                                                                      ) -> None:  # noqa: ANN001
    from siteplanner.floorplan import cli as cli_module
    from siteplanner.floorplan.export import write_plan

    plan = cut_off_plan
    assert plan.ok  # every hard constraint passes; the security review would still object
    n = plan.cashiers_cut_off
    assert 0 < n < 13
    fx = plan.fixtures
    flagged = fx[fx["cut_off"]]
    assert set(flagged["fixture"]) == {"counter"}
    assert sorted(set(flagged["index"])) == sorted(plan.metrics["counters_cut_off"])
    assert plan.security_note.startswith(f"{n} of 13 counter stations have no staff-only way")

    write_plan(plan, tmp_path / "p")
    feats = json.loads((tmp_path / "p" / "zones.geojson").read_text())["features"]
    cut = [f["properties"] for f in feats if f["properties"].get("cut_off_from_cash_room")]
    assert sum(p.get("fixture") == "counter" for p in cut) == n
    assert sum(p.get("staff_side") == "counter" for p in cut) == n
    layer = ezdxf.readfile(tmp_path / "p" / "plan.dxf").modelspace().query(
        'LWPOLYLINE[layer=="CASHIERS_CUT_OFF"]')
    assert len(layer) >= n
    svg = (tmp_path / "p" / "plan.svg").read_text()
    assert "cashiers cut off from the cash room (no staff-only way to it)" in svg

    # the command prints it under the constraints line (the plan above, not searched again)
    monkeypatch.setattr(cli_module, "plan_floor", lambda *a, **k: plan)
    coords, door, _ = OUTLINE_113
    (tmp_path / "o.wkt").write_text("POLYGON ((" + ", ".join(f"{x} {y}" for x, y in
                                                            [*coords, coords[0]]) + "))")
    res = _run(app, "--outline", str(tmp_path / "o.wkt"), "--entrance", f"{door[0]},{door[1]}",
               "--arrivals", "274", "--out", str(tmp_path / "cli"))
    assert res.exit_code == 0, res.output
    assert f"security: {n} of 13 counter stations have no staff-only way to the cash room" in \
        " ".join(res.output.split())


#: Benchmark outline #64 (``bench_floorplan.py``; vault, back office and restroom): its two
#: counter lines back onto the back office and onto the reserve the vault opens from, and
#: no staff-only way joins the back office to the reserve.
OUTLINE_64 = ([(0.0, 0.0), (-19.350023680703863, 19.451456126955026),
               (-25.96866793452044, 19.468758180403988), (-31.77866351192964, 9.778352395509627),
               (-31.790782535730372, 5.14239935807322), (-11.45200476166054, -15.302993891896005)],
              (-23.245174909886355, 19.46163859215101), 352.36363636347505)


@pytest.fixture(scope="module")
def plan_64():  # noqa: ANN201
    return _bench_plan(OUTLINE_64, ["vault", "back_office", "restroom"], 64)


def test_a_back_office_cut_off_from_the_cash_room_is_shown_on_every_output(plan_64, tmp_path: Path
                                                                          ) -> None:  # noqa: ANN001
    from siteplanner.floorplan.export import write_plan

    plan = plan_64
    assert plan.ok  # staff_reach_secure passes: the back office opens onto a counter's staff side
    assert plan.staff_rooms_cut_off == ["back_office"]
    # no door joins the back office to the secure side of the plan but across public floor
    secure_side = {"vault", "reserve"}
    assert not any({d.a, d.b} & secure_side and {d.a, d.b} & {"back_office"} for d in plan.doors)
    assert "the back office has no staff-only way to the cash room" in plan.security_note

    write_plan(plan, tmp_path / "p")
    feats = json.loads((tmp_path / "p" / "zones.geojson").read_text())["features"]
    cut = [f["properties"]["zone"] for f in feats
           if f["properties"].get("cut_off_from_cash_room") and "access" in f["properties"]
           and "fixture" not in f["properties"] and "staff_side" not in f["properties"]]
    assert cut == ["back_office"]
    assert "back office cut off from the cash room" in (tmp_path / "p" / "plan.svg").read_text()
    assert json.loads((tmp_path / "p" / "metrics.json").read_text())["staff_rooms_cut_off"] == [
        "back_office"]


def test_every_zone_label_sits_in_its_zone_or_is_called_out_beside_the_plan(plan_64) -> None:  # noqa: ANN001
    # a vault of a few square metres in a 600 m² plan cannot hold its three-line label:
    # drawn on top of its neighbours it hid them and the vault's walls; it goes beside the
    # plan with a leader
    import numpy as np
    import shapely
    from shapely.geometry import Point, box

    from siteplanner.floorplan.drawing import _figure, _label

    plan = plan_64
    fig, called = _figure(plan)
    ax = fig.axes[0]
    fig.draw_without_rendering()
    inv = ax.transData.inverted()
    texts = {t.get_text(): t for t in ax.texts if t.get_visible()}
    lines = [np.asarray(line.get_xydata()) for line in ax.lines]
    assert {"vault", "restroom"} <= set(called)
    for row in plan.zones.itertuples(index=False):
        text = texts[_label(row)]  # each zone's label is drawn once, and shown
        (x0, y0), (x1, y1) = inv.transform(text.get_window_extent().get_points())
        label = box(x0, y0, x1, y1)
        if row.zone not in called:
            assert row.geometry.buffer(0.05).contains(label), row.zone
            continue
        assert not label.intersects(plan.outline), row.zone  # beside the plan, over nothing
        # a leader from inside the zone to the label
        assert any(row.geometry.contains(Point(xy[0])) and
                   shapely.distance(Point(xy[-1]), label) < 0.1 for xy in lines if len(xy) == 2)
