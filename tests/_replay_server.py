"""A local HTTP server that answers osmnx like Nominatim and Overpass, from recordings.

osmnx is pointed at it through ``ox.settings.nominatim_url`` and
``ox.settings.overpass_url`` only; nothing in osmnx is patched. The server
matches each request the way the real services would:

- ``GET .../search?q=...`` (Nominatim): the recorded answer for that place
  name, or ``[]`` for a name it does not know.
- ``POST .../interpreter`` (Overpass; ``data=`` form field, or a GET query):
  the recorded walk-network answer for a ``way["highway"]...["foot"!~"no"]``
  query, the recorded features answer for an ``['amenity']`` query, the
  recorded buildings answer for a ``['building']`` query, each only if the
  query's ``poly:`` overlaps the recorded data; otherwise an answer with no
  elements.
- ``GET .../status``: an Overpass status page with free slots, so osmnx's
  rate-limit probe (``ox.settings.overpass_rate_limit``, left on) passes
  without a pause.

``fail_status`` makes it answer every request with that HTTP status, as an
overloaded server does. Every request is kept in :attr:`ReplayServer.requests` so a test can assert
what osmnx really sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

DATA = Path(__file__).resolve().parent / "data" / "osm"

STATUS = (
    "Connected as: 2130706433\n"
    "Current time: 2019-04-08T08:00:00Z\n"
    "Announced endpoint: none\n"
    "Rate limit: 2\n"
    "2 slots available now.\n"
    "Currently running queries (pid, space limit, time limit, start time):\n"
)


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    params: dict[str, str]


@dataclass
class ReplayServer:
    """The running server: its base URL and the requests it has answered."""

    url: str
    places: dict[str, list[dict[str, Any]]]
    walk: dict[str, Any]
    features: dict[str, Any]
    buildings: dict[str, Any]
    extent: tuple[float, float, float, float]
    requests: list[Request] = field(default_factory=list)
    #: When set, every request gets this HTTP status and a plain-text page.
    fail_status: int | None = None

    def seen(self, endpoint: str) -> list[Request]:
        """The requests whose path ends with ``endpoint`` (``search``, ``interpreter``)."""
        return [r for r in self.requests if r.path.rstrip("/").endswith(endpoint)]

    def overpass_answer(self, query: str) -> dict[str, Any]:
        base = self.walk
        empty = {k: v for k, v in base.items() if k != "elements"} | {"elements": []}
        if not _overlaps(_poly_bounds(query), self.extent):
            return empty
        if 'way["highway"]' in query and '["foot"!~"no"]' in query:
            return self.walk
        # osmnx writes feature tag keys with Python's repr: ['amenity']
        if re.search(r"""\[["']amenity["']\]""", query):
            return self.features
        if re.search(r"""\[["']building["']\]""", query):
            return self.buildings
        return empty


def _poly_bounds(query: str) -> tuple[float, float, float, float] | None:
    match = re.search(r"poly:'([-0-9. ]+)'", query) or re.search(r'poly:"([-0-9. ]+)"', query)
    if not match:
        return None
    nums = [float(x) for x in match.group(1).split()]
    lats, lons = nums[0::2], nums[1::2]
    return min(lons), min(lats), max(lons), max(lats)


def _overlaps(a: tuple[float, float, float, float] | None,
              b: tuple[float, float, float, float]) -> bool:
    return a is not None and a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _extent(response: dict[str, Any]) -> tuple[float, float, float, float]:
    lons = [e["lon"] for e in response["elements"] if e["type"] == "node"]
    lats = [e["lat"] for e in response["elements"] if e["type"] == "node"]
    return min(lons), min(lats), max(lons), max(lats)


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Keep test output quiet."""

        def do_GET(self) -> None:  # noqa: N802
            self._answer("GET", urlsplit(self.path).query)

        def do_POST(self) -> None:  # noqa: N802
            size = int(self.headers.get("Content-Length", "0"))
            self._answer("POST", self.rfile.read(size).decode("utf-8"))

        def _answer(self, method: str, query_string: str) -> None:
            path = urlsplit(self.path).path
            params = {k: v[0] for k, v in parse_qs(query_string).items()}
            server.requests.append(Request(method, path, params))
            body: object
            if server.fail_status is not None:
                self._send(server.fail_status, b"<html>Service Unavailable</html>", "text/html")
                return
            if path.endswith("/status"):
                self._send(200, STATUS.encode(), "text/plain")
                return
            if path.endswith("/search"):
                body = server.places.get(params.get("q", "").strip().lower(), [])
            elif path.endswith("/interpreter"):
                body = server.overpass_answer(params.get("data", ""))
            else:
                self._send(404, b"not found", "text/plain")
                return
            self._send(200, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, payload: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    """Serve the recorded Kluuvi answers on 127.0.0.1 for one test."""
    walk = json.loads((DATA / "overpass_walk.json").read_text(encoding="utf-8"))
    features = json.loads((DATA / "overpass_features.json").read_text(encoding="utf-8"))
    kluuvi = json.loads((DATA / "nominatim_kluuvi.json").read_text(encoding="utf-8"))
    state = ReplayServer(
        url="",
        places={"kluuvi, helsinki, finland": kluuvi},
        walk=walk,
        features=features,
        buildings=json.loads((DATA / "overpass_buildings.json").read_text(encoding="utf-8")),
        extent=_extent(walk),
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # a short poll lets shutdown() return at once rather than after the default half second
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
