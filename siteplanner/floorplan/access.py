"""Access classes, doors and the security rule.

Every zone is ``public`` (customers walk in), ``staff`` or ``secure`` (cash). The
rule a bank's security officer checks first, as hard constraints:

- a secure zone never shares a wall with public floor, nor holds the entrance;
- staff reach every secure zone through staff space only (a door from a staff room);
- the counter line is the only public/staff interface apart from controlled doors,
  which are drawn; no door leads from public floor into a secure zone.

The service zone is public floor with the counters' staff side inside it: that
strip behind the counter line is staff floor (``counter_staff`` below), so a
staff room opening onto it is reached without crossing public floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from siteplanner.floorplan.standard import Standard

__all__ = ["AccessMasks", "Door", "access_breaks", "access_masks", "check_access",
           "counter_pockets", "cut_off_pockets", "plan_doors", "pocket_name", "pockets_cut_off",
           "shared_line", "staff_rooms_cut_off"]

COUNTER_STAFF = "counter_staff"
#: Gap (m) below which two stretches of the counters' staff floor are one pocket.
_JOIN_M = 0.005


@dataclass(frozen=True)
class AccessMasks:
    """Per-zone access flags of one programme, for the search and the checks."""

    access: tuple[str, ...]
    public: np.ndarray
    staff: np.ndarray
    secure: np.ndarray
    #: zones staff walk through: staff rooms other than restrooms, and the counter's staff side
    passable: np.ndarray
    secure_public: np.ndarray
    service: int


def access_masks(kinds: Sequence[str], standard: Standard) -> AccessMasks:
    """Access flags of ``kinds`` under ``standard``."""
    access = tuple(standard.access(k) for k in kinds)
    public = np.array([a == "public" for a in access])
    secure = np.array([a == "secure" for a in access])
    staff = np.array([a == "staff" for a in access])
    service = list(kinds).index("service") if "service" in kinds else -1
    passable = staff & np.array([k != "restroom" for k in kinds])
    if service >= 0:
        passable[service] = True
    return AccessMasks(access, public, staff, secure, passable,
                       (secure[:, None] & public[None, :]) | (public[:, None] & secure[None, :]),
                       service)


def _components(adj: np.ndarray) -> int:
    if adj.shape[0] == 0:
        return 0
    return int(connected_components(csr_matrix(adj), directed=False)[0])


def access_breaks(walls: np.ndarray, m: AccessMasks, standard: Standard) -> float:
    """Broken access rules of a layout from its shared-wall matrix (the search's cost).

    Counts secure rooms without a door-wide wall to a staff room, staff rooms that
    open from no staff floor (nor, for staff rooms one walks through, from public
    floor through a controlled door), and the extra pieces the public floor falls
    into when its zones are joined only by walls at least ``route_width_m`` long.
    """
    door = walls >= standard.internal_door_m
    broken = 0.0
    staff_only = m.passable & ~m.public
    # a cash room opens from a staff room, or from behind the counter line
    behind = np.arange(len(m.access)) == m.service
    for i in np.flatnonzero(m.secure):
        broken += float(not (door[i] & (staff_only | behind)).any())
    # a room staff do not walk through (a WC) opens from a staff room; onto the counter's
    # staff side only when there is no such room, since the counter line may not run along it
    rooms = staff_only if staff_only.any() else m.passable
    for i in np.flatnonzero(m.staff):
        reach = (m.passable | m.public) if m.passable[i] else rooms
        broken += float(not (door[i] & reach).any())
    pub = np.flatnonzero(m.public)
    if pub.size > 1:
        broken += _components(walls[np.ix_(pub, pub)] >= standard.route_width_m) - 1
    return broken


def shared_line(a: BaseGeometry, b: BaseGeometry, *, tol: float = 1e-4) -> LineString | None:
    """The longest straight piece of wall two zones share, or None."""
    common = shapely.intersection(shapely.boundary(a),
                                  shapely.buffer(shapely.boundary(b), tol, cap_style="flat"))
    best: LineString | None = None
    for part in shapely.get_parts(common):
        if part.geom_type not in ("LineString", "LinearRing"):
            continue
        c = shapely.get_coordinates(part)
        d = np.diff(c, axis=0)
        keep = np.hypot(d[:, 0], d[:, 1]) > 1e-9
        c = np.vstack([c[:1], c[1:][keep]])
        d = np.diff(c, axis=0)
        if not len(d):
            continue
        # split where the direction turns; each run is one straight wall
        ang = np.arctan2(d[:, 1], d[:, 0])
        turn = np.flatnonzero(np.abs(np.angle(np.exp(1j * np.diff(ang)))) > 1e-3) + 1
        for run in np.split(np.arange(len(d)), turn):
            seg = LineString([c[run[0]], c[run[-1] + 1]])
            if seg.length > tol and (best is None or seg.length > best.length):
                best = seg
    return best


def _centred(line: LineString, width: float) -> LineString:
    """A door ``width`` long centred on a wall segment (the whole wall when shorter)."""
    if line.length <= width:
        return line
    mid = line.length / 2.0
    return substring(line, mid - width / 2.0, mid + width / 2.0)


@dataclass(frozen=True)
class Door:
    """An opening between two zones (or a zone and the street).

    ``kind`` is ``passage`` (open, public to public), ``door`` (staff to staff),
    ``controlled`` (access-controlled: into staff floor from public, or into a
    secure room) or ``entrance``.
    """

    kind: str
    a: str
    b: str
    geometry: LineString


def plan_doors(zones: Sequence[BaseGeometry], kinds: Sequence[str], walls: np.ndarray,
               counter_staff: BaseGeometry | None, standard: Standard) -> list[Door]:
    """Doors and passages between zones under the access rules.

    Public zones open to each other along shared walls of at least the route
    width; staff rooms get a door to each staff room or the counter's staff side
    they share a door-wide wall with; secure rooms get controlled doors, from
    staff floor only; one controlled door leads from public floor into the
    staff rooms, on the longest such wall. Every other wall is solid.
    """
    m = access_masks(kinds, standard)
    n = len(kinds)
    doors: list[Door] = []
    w_door = standard.internal_door_m
    for i in range(n):
        for j in range(i + 1, n):
            a, b = (i, j) if m.access[i] <= m.access[j] else (j, i)
            if walls[i, j] < w_door:
                continue
            line = shared_line(zones[i], zones[j])
            if line is None:
                continue
            if m.public[i] and m.public[j]:
                if walls[i, j] >= standard.route_width_m:
                    doors.append(Door("passage", kinds[a], kinds[b], line))
            elif not m.public[i] and not m.public[j]:
                if (m.secure[i] and not m.passable[j]) or (m.secure[j] and not m.passable[i]):
                    continue  # a secure room opens only from staff floor one walks through
                kind = "controlled" if m.secure[i] or m.secure[j] else "door"
                doors.append(Door(kind, kinds[a], kinds[b], _centred(line, w_door)))
    doors += _counter_doors(zones, kinds, m, counter_staff, standard)
    doors += _staff_entry(zones, kinds, m, walls, doors, standard)
    return doors


def _counter_doors(zones: Sequence[BaseGeometry], kinds: Sequence[str], m: AccessMasks,
                   counter_staff: BaseGeometry | None, standard: Standard) -> list[Door]:
    """Doors from staff rooms onto the counter's staff side (staff floor in the service zone)."""
    if counter_staff is None or counter_staff.is_empty:
        return []
    out = []
    # one door onto each pocket of the staff side a room shares a door-wide wall with:
    # a room between two runs of the counter line joins them
    pockets = shapely.intersection(counter_staff, counter_pockets(counter_staff))
    for i in np.flatnonzero(~m.public).tolist():
        for pocket in pockets:
            line = shared_line(zones[i], pocket)
            if line is not None and line.length >= standard.internal_door_m:
                kind = "controlled" if m.secure[i] else "door"
                out.append(Door(kind, COUNTER_STAFF, kinds[i],
                                _centred(line, standard.internal_door_m)))
    return out


def counter_pockets(counter_staff: BaseGeometry | None) -> np.ndarray:
    """The separate stretches of the counters' staff floor, numbered west to east.

    Stretches closer than :data:`_JOIN_M` are one: a strip grown on from the counter
    line meets it at float noise, and runs turning a corner meet at the corner.
    """
    if counter_staff is None or counter_staff.is_empty:
        return np.empty(0, dtype=object)
    pockets = shapely.get_parts(shapely.buffer(counter_staff, _JOIN_M, join_style="mitre"))
    lo = shapely.bounds(pockets)
    return pockets[np.lexsort((lo[:, 1], lo[:, 0]))]


def _staff_entry(zones: Sequence[BaseGeometry], kinds: Sequence[str], m: AccessMasks,
                 walls: np.ndarray, doors: Sequence[Door], standard: Standard) -> list[Door]:
    """Controlled doors from public floor into the staff rooms one walks through.

    One on the longest such wall; then one more into each group of staff rooms
    (rooms joined by staff doors) that neither that door nor the counters' staff
    side reaches: a back office at the far end of the public floor from the rest of
    the staff rooms is entered through its own controlled door, as the search
    allows, rather than left unreached.
    """
    out: list[Door] = []
    entry = _entry_door(zones, kinds, m, walls, np.flatnonzero(m.passable & m.staff), standard)
    if entry is None:
        return out
    out.append(entry)
    staff = [k for k, p in zip(kinds, m.public, strict=True) if not p] + [COUNTER_STAFF]
    idx = {k: i for i, k in enumerate(staff)}
    adj = np.eye(len(staff), dtype=bool)
    for d in [*doors, *out]:
        if d.a in idx and d.b in idx:
            adj[idx[d.a], idx[d.b]] = adj[idx[d.b], idx[d.a]] = True
    _, label = connected_components(csr_matrix(adj), directed=False)
    reached = {label[idx[COUNTER_STAFF]], label[idx[entry.b]]}
    for group in sorted(set(label.tolist()) - reached):
        rooms = [i for i in np.flatnonzero(m.passable & m.staff).tolist()
                 if label[idx[kinds[i]]] == group]
        door = _entry_door(zones, kinds, m, walls, np.asarray(rooms, dtype=int), standard)
        if door is not None:
            out.append(door)
    return out


def _entry_door(zones: Sequence[BaseGeometry], kinds: Sequence[str], m: AccessMasks,
                walls: np.ndarray, rooms: np.ndarray, standard: Standard) -> Door | None:
    """A controlled door on the longest wall between ``rooms`` and public floor (not the
    service zone, where the counter line is the interface), or None."""
    best, where = 0.0, None
    for i in rooms.tolist():
        for j in np.flatnonzero(m.public).tolist():
            if kinds[j] != "service" and walls[i, j] > best:
                best, where = float(walls[i, j]), (int(i), int(j))
    if where is None or best < standard.internal_door_m:
        return None
    line = shared_line(zones[where[0]], zones[where[1]])
    if line is None:
        return None
    return Door("controlled", kinds[where[1]], kinds[where[0]],
                _centred(line, standard.internal_door_m))


def _result(ok: bool, detail: str) -> dict[str, Any]:
    return {"pass": bool(ok), "detail": detail}


def cut_off_pockets(counter_staff: BaseGeometry | None, doors: Sequence[Door],
                    kinds: Sequence[str], standard: Standard, *,
                    stations: BaseGeometry | None = None) -> list[str]:
    """The stretches of the counters' staff floor with cashiers in them (``stations``:
    the counters' own staff sides; default all of it) from which no staff-only way leads
    to every secure zone, as ``"service: counter staff floor k of n"``.

    A cashier whose staff side has no door towards the cash room would carry the cash
    across the customers' floor; so would one on a counter line split over several walls,
    in a pocket of its own with public floor between it and the rest. Each pocket is a
    node of its own in the staff graph, joined by the doors onto it (each door belongs to
    the pocket it opens onto); every pocket with a counter station must reach every
    secure zone through staff floor. A whole counter line in one pocket is one node.
    """
    pockets, cut = pockets_cut_off(counter_staff, doors, kinds, standard, stations)
    return [pocket_name(p, len(pockets)) for p in cut]


def pocket_name(p: int, n: int) -> str:
    """How :func:`cut_off_pockets` names the ``p``-th (from 0) of ``n`` pockets."""
    return f"service: counter staff floor {p + 1} of {n}"


def _staff_graph(pockets: np.ndarray, doors: Sequence[Door], rooms: Sequence[str]
                 ) -> np.ndarray:
    """Component labels of the staff graph: ``rooms`` (the zones staff and secure), then
    each of the counters' staff-floor ``pockets``, joined by the doors between them (a
    door onto the staff side belongs to the pocket nearest it)."""
    idx = {k: i for i, k in enumerate(rooms)}
    n = len(rooms) + len(pockets)
    adj = np.eye(n, dtype=bool)
    for d in doors:
        if d.a in idx and d.b in idx:
            adj[idx[d.a], idx[d.b]] = adj[idx[d.b], idx[d.a]] = True
        elif COUNTER_STAFF in (d.a, d.b) and len(pockets):
            room = d.b if d.a == COUNTER_STAFF else d.a
            if room in idx:
                at = len(rooms) + int(np.argmin(shapely.distance(pockets, d.geometry)))
                adj[idx[room], at] = adj[at, idx[room]] = True
    _, label = connected_components(csr_matrix(adj), directed=False)
    return np.asarray(label)


def pockets_cut_off(counter_staff: BaseGeometry | None, doors: Sequence[Door], kinds: Sequence[str],
             standard: Standard, stations: BaseGeometry | None) -> tuple[np.ndarray, list[int]]:
    """The counters' staff-floor pockets (:func:`counter_pockets`) and the indices of those
    :func:`cut_off_pockets` names."""
    secure = [k for k in kinds if standard.access(k) == "secure"]
    pockets = counter_pockets(counter_staff)
    if not len(pockets) or not secure:
        return pockets, []
    rooms = [k for k in kinds if standard.access(k) != "public"]
    label = _staff_graph(pockets, doors, rooms)
    wanted = {label[rooms.index(k)] for k in secure}
    cashiers = (np.ones(len(pockets), dtype=bool) if stations is None
                else shapely.intersects(pockets, stations))
    return pockets, [p for p in range(len(pockets))
                     if cashiers[p] and not wanted <= {label[len(rooms) + p]}]


def staff_rooms_cut_off(counter_staff: BaseGeometry | None, doors: Sequence[Door],
                        kinds: Sequence[str], standard: Standard) -> list[str]:
    """The staff rooms staff work in (every staff zone but the restroom: the back office,
    a reserve) from which no staff-only way leads to every secure zone.

    ``staff_reach_secure`` asks only that each staff and secure zone be entered from staff
    floor or a controlled door; a back office entered from the customers' floor, with the
    cash room behind a counter line it has no door onto, passes it, and its staff would
    carry cash across the customers' floor. Pockets of the counters' staff side are nodes
    of their own, as in :func:`cut_off_pockets`."""
    m = access_masks(kinds, standard)
    if not m.secure.any():
        return []
    rooms = [k for k in kinds if standard.access(k) != "public"]
    label = _staff_graph(counter_pockets(counter_staff), doors, rooms)
    wanted = {label[rooms.index(k)] for k, s in zip(kinds, m.secure, strict=True) if s}
    return [k for k, st, ps in zip(kinds, m.staff, m.passable, strict=True)
            if st and ps and not wanted <= {label[rooms.index(k)]}]


def check_access(kinds: Sequence[str], walls: np.ndarray, doors: Sequence[Door],
                 entrance_cover: np.ndarray, has_counter: bool, standard: Standard, *,
                 behind_counter: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """The security rule as hard constraints, each with its detail line.

    ``behind_counter`` (per zone, metres) is the stretch of each zone's wall to the
    service zone that the counters' staff side covers: staff floor, not public.
    """
    m = access_masks(kinds, standard)
    if behind_counter is not None and m.service >= 0:
        walls = walls.copy()
        open_wall = np.maximum(walls[:, m.service] - behind_counter, 0.0)
        walls[:, m.service] = walls[m.service, :] = open_wall
    acc = dict(zip(kinds, m.access, strict=True)) | {COUNTER_STAFF: "staff", "street": "public"}
    secure, public = np.flatnonzero(m.secure).tolist(), np.flatnonzero(m.public).tolist()
    touching = [f"{kinds[i]}/{kinds[j]} {walls[i, j]:.2f} m" for i in secure
                for j in public if walls[i, j] > 1e-3]
    touching += [f"{kinds[i]}/entrance" for i in secure
                 if entrance_cover[i].max(initial=0.0) > 1e-6]
    bad_doors = [f"{d.kind} {d.a}/{d.b}" for d in doors
                 if ({acc[d.a], acc[d.b]} != {"public"} and "public" in {acc[d.a], acc[d.b]}
                     and (d.kind != "controlled" or "secure" in {acc[d.a], acc[d.b]}))
                 or ("secure" in {acc[d.a], acc[d.b]} and d.kind != "controlled")]
    if "service" in kinds and not has_counter:
        bad_doors.append("no counter line in the service zone")
    # staff graph: staff and secure rooms plus the counter's staff side, joined by doors
    nodes = [k for k in kinds if acc[k] != "public"] + [COUNTER_STAFF]
    idx = {k: i for i, k in enumerate(nodes)}
    adj = np.zeros((len(nodes), len(nodes)), dtype=bool)
    entry = np.zeros(len(nodes), dtype=bool)
    entry[idx[COUNTER_STAFF]] = has_counter
    for d in doors:
        if d.a in idx and d.b in idx:
            adj[idx[d.a], idx[d.b]] = adj[idx[d.b], idx[d.a]] = True
        elif d.kind == "controlled" and {acc[d.a], acc[d.b]} == {"public", "staff"}:
            entry[idx[d.b if d.b in idx else d.a]] = True
    _, label = connected_components(csr_matrix(adj), directed=False)
    reached = np.isin(label, label[entry])
    # a secure room is reached through staff floor only: doors in from non-secure staff nodes
    unreached = [k for k in nodes if not reached[idx[k]]]
    return {
        "secure_no_public_wall": _result(not touching, "secure zones touching public floor: "
                                         f"{touching}" if touching else
                                         "no secure zone shares a wall with public floor"),
        "staff_reach_secure": _result(not unreached, f"staff floor not reached without crossing "
                                      f"public floor: {unreached}" if unreached else
                                      "every staff and secure zone is reached through staff "
                                      "floor"),
        "counter_only_interface": _result(not bad_doors, f"public/staff openings other than the "
                                          f"counter and controlled doors: {bad_doors}" if bad_doors
                                          else "public meets staff only at the counter line and "
                                          "controlled doors"),
    }
