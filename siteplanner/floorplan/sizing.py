"""Sizing: servers from Erlang C, seats from the queue-length distribution, areas from the standard.

Erlang C (M/M/c) is computed through the Erlang B recursion
``B(k) = a B(k-1) / (k + a B(k-1))``, which never forms ``a**c / c!`` and so stays
exact for hundreds of servers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from siteplanner._errors import InputError
from siteplanner.floorplan.standard import CHANNELS, Standard, ZoneSpec

__all__ = [
    "Demand",
    "ServerSizing",
    "describe_programme",
    "erlang_c",
    "programme_area",
    "queue_length_pmf",
    "reduce_programme",
    "seats_for_queues",
    "size_programme",
    "size_servers",
]

SIZING_COLUMNS = [
    "unit", "units", "channel", "arrivals_per_hour", "service_time_min", "servers",
    "utilisation", "p_wait", "mean_wait_min", "service_level", "target_level",
    "target_wait_min", "queue_places", "mean_queue", "little_queue", "net_m2", "programme_m2",
]


@dataclass(frozen=True)
class Demand:
    """Peak-hour demand of one branch.

    Parameters
    ----------
    arrivals_per_hour
        Either the total peak-hour arrivals (split over the channels by the
        standard's ``[shares]``) or arrivals per channel (``counter``,
        ``advisory``, ``self_service``).
    service_time_min
        Mean service time per channel, minutes; the standard's value where absent.
    target
        Service-level target per channel as ``(share, wait_min)``, e.g. ``(0.8, 5.0)``
        for 80 % served within 5 min; the standard's value where absent.
    """

    arrivals_per_hour: float | Mapping[str, float]
    service_time_min: Mapping[str, float] = field(default_factory=dict)
    target: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def per_channel(self, standard: Standard) -> dict[str, float]:
        """Arrivals per channel served by ``standard``; validates the values."""
        served = [c for c in CHANNELS if c in standard.channels]
        if isinstance(self.arrivals_per_hour, Mapping):
            given = {str(k): v for k, v in self.arrivals_per_hour.items()}
            for k, v in given.items():
                if k not in CHANNELS:
                    msg = f"demand channel {k!r} is unknown; use one of {CHANNELS}"
                    raise InputError(msg)
                _check_rate(v, f"arrivals for channel {k!r}")
                if v > 0 and k not in served:
                    msg = (f"demand gives {v:g} arrivals/h for channel {k!r}, but the standard has "
                           f"no {k!r} zone; add it to [zones] or give that demand to another channel")
                    raise InputError(msg)
            rates = {c: float(given.get(c, 0.0)) for c in served}
            if sum(rates.values()) <= 0:
                msg = f"demand {given} has no arrivals; give a positive peak-hour arrival rate"
                raise InputError(msg)
            return rates
        total = _check_rate(self.arrivals_per_hour, "total arrivals")
        if total <= 0:
            msg = (f"total peak-hour arrivals must be positive, got {self.arrivals_per_hour!r}; "
                   "pass --arrivals N with N > 0")
            raise InputError(msg)
        weights = np.array([standard.shares.get(c, 0.0) for c in served])
        if weights.sum() <= 0:
            msg = f"standard {standard.name!r} gives no [shares] for the channels {served}"
            raise InputError(msg)
        return {c: total * w / weights.sum() for c, w in zip(served, weights, strict=True)}


def _check_rate(value: object, what: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        msg = f"{what} must be a finite number, got {value!r}"
        raise InputError(msg)
    if value < 0:
        msg = f"{what} must not be negative, got {value!r}"
        raise InputError(msg)
    return float(value)


@dataclass(frozen=True)
class ServerSizing:
    """Result of sizing one M/M/c queue."""

    servers: int
    offered_load: float
    utilisation: float
    p_wait: float
    service_level: float
    mean_wait_min: float
    mean_queue: float


def _erlang_b_upto(c_max: int, a: float) -> np.ndarray:
    """Erlang B blocking for 0..c_max servers by the stable recursion."""
    b = np.empty(c_max + 1)
    b[0] = 1.0
    for k in range(1, c_max + 1):
        b[k] = a * b[k - 1] / (k + a * b[k - 1])
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C).

    Parameters
    ----------
    servers
        Number of servers ``c``.
    offered_load
        ``a = arrival rate * mean service time`` in Erlangs; must be below ``c``.
    """
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    b = _erlang_b_upto(servers, offered_load)[servers]
    return float(servers * b / (servers - offered_load * (1.0 - b)))


def _sizing(c: int, a: float, service_time_min: float, wait_min: float, pw: float) -> ServerSizing:
    if a <= 0:
        return ServerSizing(c, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    rho = a / c
    sl = 1.0 - pw * math.exp(-(c - a) * wait_min / service_time_min)
    return ServerSizing(
        servers=c,
        offered_load=a,
        utilisation=rho,
        p_wait=pw,
        service_level=sl,
        mean_wait_min=pw * service_time_min / (c - a),
        mean_queue=pw * rho / (1.0 - rho),
    )


def size_servers(
    arrivals_per_hour: float,
    service_time_min: float,
    *,
    target_level: float,
    target_wait_min: float,
    max_occupancy: float = 1.0,
    min_servers: int = 1,
    max_servers: int | None = None,
    what: str = "queue",
) -> ServerSizing:
    """Fewest servers that meet a service-level target in an M/M/c queue.

    The service level is ``P(wait <= t) = 1 - C(c, a) exp(-(c - a) t / s)``; the
    utilisation ``a / c`` is kept below 1 and at most ``max_occupancy``.

    Raises
    ------
    InputError
        When more than ``max_servers`` would be needed.
    """
    a = arrivals_per_hour / 60.0 * service_time_min
    c0 = max(min_servers, 1)
    if a > 0:
        # load below 1 and at most max_occupancy: c > a and c >= a / max_occupancy
        c0 = max(c0, math.floor(a) + 1, math.ceil(a / max_occupancy - 1e-12))
    cap = max_servers if max_servers is not None else max(c0, int(4 * a) + 50)
    if c0 > cap:
        raise _too_much(what, arrivals_per_hour, service_time_min, target_level,
                        target_wait_min, cap, c0)
    b = _erlang_b_upto(cap, a) if a > 0 else np.ones(cap + 1)
    for c in range(c0, cap + 1):
        if a <= 0:
            return _sizing(c, a, service_time_min, target_wait_min, 0.0)
        bc = b[c]
        pw = float(c * bc / (c - a * (1.0 - bc)))
        s = _sizing(c, a, service_time_min, target_wait_min, pw)
        if s.service_level >= target_level and s.utilisation <= max_occupancy and s.utilisation < 1:
            return s
    raise _too_much(what, arrivals_per_hour, service_time_min, target_level, target_wait_min,
                    cap, cap + 1)


def _too_much(what: str, lam: float, s: float, level: float, wait: float, cap: int,
              need: int) -> InputError:
    msg = (f"{what}: {lam:g} arrivals/h at {s:g} min each need more than {cap} servers "
           f"(max_servers in the standard) to serve {level:.0%} within {wait:g} min; "
           "lower the demand, relax the target or raise max_servers")
    return InputError(msg)


def queue_length_pmf(servers: int, offered_load: float, *, tail: float = 1e-12) -> np.ndarray:
    """Distribution of the number waiting (not in service) in an M/M/c queue.

    ``P(Lq = 0) = 1 - C rho`` and ``P(Lq = n) = C (1 - rho) rho**n`` for ``n >= 1``,
    truncated where the remaining tail is below ``tail``.
    """
    if offered_load <= 0:
        return np.array([1.0])
    rho = offered_load / servers
    pw = erlang_c(servers, offered_load)
    if pw <= tail:
        return np.array([1.0])
    n_max = max(1, math.ceil(math.log(tail / pw) / math.log(rho)))
    n = np.arange(1, n_max + 1)
    pmf = np.concatenate([[1.0 - pw * rho], pw * (1.0 - rho) * rho**n])
    return pmf


def seats_for_queues(queues: list[tuple[int, float]], overflow: float) -> tuple[int, float]:
    """Fewest ``k`` with ``P(total queue > k) <= overflow`` over independent M/M/c queues.

    Returns ``k`` and the mean total queue from the distribution (for the Little check).
    """
    pmf = np.array([1.0])
    for c, a in queues:
        pmf = np.convolve(pmf, queue_length_pmf(c, a))
    survival = 1.0 - np.cumsum(pmf)  # survival[k] = P(Q > k)
    k = int(np.argmax(survival <= overflow + 1e-15))
    return k, float(np.dot(np.arange(pmf.size), pmf))


def _zone_net(spec: ZoneSpec, units: int, extra_m2: float) -> float:
    return spec.base_m2 + spec.area_per_unit_m2 * max(units - spec.base_units, 0) + extra_m2


def _waiting_extra(spec: ZoneSpec, seats: int) -> float:
    places = max(1, math.ceil(seats / spec.seats_per_wheelchair_place))
    return places * spec.wheelchair_place_m2


def size_programme(demand: Demand, standard: Standard) -> pd.DataFrame:
    """Size every zone of the standard for ``demand``.

    Returns
    -------
    DataFrame
        One row per zone kind (index ``zone``) with the servers, waits,
        utilisation, seats and areas; ``programme_m2`` includes circulation.
    """
    rates = demand.per_channel(standard)
    rows: dict[str, dict[str, object]] = {}
    seat_queues: list[tuple[int, float]] = []
    little = 0.0
    for name, ch in standard.channels.items():
        s_time = float(demand.service_time_min.get(name, ch.service_time_min))
        level, wait = demand.target.get(name, (ch.target_level, ch.target_wait_min))
        if s_time <= 0 or not 0 < level < 1 or wait < 0:
            msg = (f"channel {name!r}: service time {s_time:g} min, target {level:g} within "
                   f"{wait:g} min; need a positive time and a target share between 0 and 1")
            raise InputError(msg)
        sz = size_servers(rates[name], s_time, target_level=level, target_wait_min=wait,
                          max_occupancy=standard.max_occupancy, min_servers=ch.min_servers,
                          max_servers=ch.max_servers, what=f"channel {name!r}")
        queue_places = 0
        if ch.zone == "self_service":
            queue_places, _ = seats_for_queues([(sz.servers, sz.offered_load)],
                                               standard.seat_overflow_probability)
        else:
            seat_queues.append((sz.servers, sz.offered_load))
            little += rates[name] / 60.0 * sz.mean_wait_min
        rows[ch.zone] = {
            "channel": name, "arrivals_per_hour": rates[name], "service_time_min": s_time,
            "servers": sz.servers, "units": sz.servers, "utilisation": sz.utilisation,
            "p_wait": sz.p_wait, "mean_wait_min": sz.mean_wait_min,
            "service_level": sz.service_level, "target_level": level, "target_wait_min": wait,
            "queue_places": queue_places, "mean_queue": sz.mean_queue,
            "little_queue": rates[name] / 60.0 * sz.mean_wait_min,
        }
    seats, mean_q = seats_for_queues(seat_queues, standard.seat_overflow_probability)
    rows["waiting"] = {"units": max(seats, standard.zones["waiting"].min_units),
                       "queue_places": seats, "mean_queue": mean_q, "little_queue": little}
    staff = sum(int(r["servers"]) for z, r in rows.items()  # type: ignore[call-overload]
                if z in ("service", "advisory"))
    if "back_office" in standard.zones:
        rows["back_office"] = {"units": staff}
    for kind in ("vault", "restroom"):
        if kind in standard.zones:
            rows[kind] = {"units": max(1, standard.zones[kind].base_units)}
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(list(standard.kinds))
    table.index.name = "zone"
    table["unit"] = [standard.zones[k].unit for k in table.index]
    table["units"] = table["units"].astype(int)
    table["queue_places"] = table["queue_places"].fillna(0).astype(int)
    _apply_areas(table, standard)
    return table.reindex(columns=SIZING_COLUMNS)


def _apply_areas(table: pd.DataFrame, standard: Standard) -> None:
    net = []
    for kind, row in table.iterrows():
        spec = standard.zones[str(kind)]
        units = int(row["units"])
        extra = 0.0
        if kind == "waiting":
            extra = _waiting_extra(spec, units)
        elif kind == "self_service":
            extra = int(row["queue_places"]) * spec.queue_place_m2
        net.append(_zone_net(spec, units, extra))
    table["net_m2"] = net
    table["programme_m2"] = [n * (1 + standard.circulation_of(str(k)))
                             for k, n in zip(table.index, net, strict=True)]


def programme_area(table: pd.DataFrame) -> float:
    """Total programme (gross) area of a sizing table, m²."""
    return float(table["programme_m2"].sum())


def reduce_programme(table: pd.DataFrame, available_m2: float,
                     standard: Standard) -> pd.DataFrame | None:
    """A smaller programme that fits ``available_m2``, or None when even the minimum does not.

    Removes one unit at a time from the largest reducible zone (stations, desks,
    ATMs, seats; the back office follows the staff count), never going below each
    zone's minimum. Service levels of the result are not met; it is what fits.
    """
    t = table.copy()
    minimum = {k: (standard.zones[k].min_units if k == "waiting" else
                   standard.channels[str(t.at[k, "channel"])].min_servers)
               for k in ("service", "advisory", "self_service", "waiting") if k in t.index}
    while programme_area(t) > available_m2 + 1e-9:
        reducible = [k for k, lo in minimum.items() if int(t.at[k, "units"]) > lo]
        if not reducible:
            return None
        k = max(reducible, key=lambda z: float(t.at[z, "programme_m2"]))
        t.at[k, "units"] = int(t.at[k, "units"]) - 1
        if k != "waiting":
            t.at[k, "servers"] = t.at[k, "units"]
        if "back_office" in t.index:
            t.at["back_office", "units"] = int(sum(int(t.at[z, "units"])
                                                   for z in ("service", "advisory")
                                                   if z in t.index))
        _apply_areas(t, standard)
    return t


def describe_programme(table: pd.DataFrame) -> str:
    """One-line summary such as ``service 3 stations, waiting 8 seats (96.2 m²)``."""
    parts = [f"{k} {int(r['units'])} {r['unit']}" for k, r in table.iterrows()]
    return ", ".join(parts) + f" ({programme_area(table):.1f} m²)"
