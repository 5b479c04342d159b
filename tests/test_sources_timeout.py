"""A server that accepts connections but never answers is given up on after the read timeout."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from siteplanner._errors import InputError
from siteplanner.sources.overpass import read_online


@pytest.fixture
def silent_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)  # read nothing, answer nothing

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_silent_server_fails_after_the_read_timeout_and_says_how_long(silent_server, tmp_path,
                                                                      monkeypatch):
    import osmnx as ox

    monkeypatch.setattr(ox.settings, "nominatim_url", silent_server)
    monkeypatch.setattr(ox.settings, "overpass_url", silent_server)
    before = ox.settings.requests_timeout
    t0 = time.monotonic()
    with pytest.raises(InputError) as e:
        read_online(place="Kluuvi, Helsinki, Finland", cache_folder=tmp_path,
                    connect_timeout_s=1, read_timeout_s=1)
    waited = time.monotonic() - t0
    assert waited < 10
    msg = str(e.value)
    assert "\n" not in msg and silent_server in msg
    assert re.search(r"gave up after waiting [1-9] s", msg) and "read 1 s" in msg
    assert ox.settings.requests_timeout == before  # the caller's setting is put back
