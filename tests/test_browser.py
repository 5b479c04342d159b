"""The shared map and report in a real browser: headless Chromium, no network.

Chromium (Debian's ``chromium`` package) is driven through the DevTools
protocol with ``websocket-client``. Every request that is not for a file on
disk or a data URI is recorded and failed, as on a machine with no network:
only map tiles may ask. Where Chromium is missing, these tests skip and say so.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from test_map import TICKS, XSS, hostile_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not found: apt-get install chromium")

TILE_HOSTS = ("tile.openstreetmap.org",)


class Page:
    """One Chromium tab over the DevTools protocol, offline."""

    def __init__(self, browser: Chromium, ws_url: str) -> None:
        import websocket

        self.browser = browser
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Fetch.enable", patterns=[{"urlPattern": "*"}])

    def _handle(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        params = msg.get("params", {})
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            self.requests.append(url)
            if url.startswith(("file:", "data:")):
                self._send_nowait("Fetch.continueRequest", requestId=params["requestId"])
            else:
                self._send_nowait("Fetch.failRequest", requestId=params["requestId"],
                                  errorReason="InternetDisconnected")
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(params.get("message", ""))
            self._send_nowait("Page.handleJavaScriptDialog", accept=True)
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params.get("exceptionDetails", {}))[:400])
        elif method:
            self.events.append(msg)

    def _send_nowait(self, method: str, **params: Any) -> int:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        return self._id

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        mid = self._send_nowait(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})  # type: ignore[no-any-return]
            self._handle(msg)

    def wait_for(self, method: str, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(e.get("method") == method for e in self.events):
                return
            self.ws.settimeout(max(0.1, end - time.monotonic()))
            self._handle(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def pump(self, seconds: float) -> None:
        """Keep answering the browser for a while (requests, dialogs)."""
        import websocket

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ws.settimeout(max(0.05, end - time.monotonic()))
            try:
                self._handle(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break
        self.ws.settimeout(30)

    def open(self, path: Path) -> None:
        self.events.clear()
        self.send("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        self.pump(0.8)

    def js(self, expr: str) -> Any:
        res = self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"{expr!r} threw: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        return png

    def close(self) -> None:
        self.ws.close()


class Chromium:
    """Headless Chromium with a new empty profile, as the machine notes prescribe."""

    def __init__(self, *, width: int = 1280, height: int = 860) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="sp-chromium-"))
        self.proc = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not port_file.is_file() or len(port_file.read_text().split()) < 2:
            if time.monotonic() > end or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])

    def new_page(self) -> Page:
        from urllib.request import Request, urlopen

        req = Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urlopen(req, timeout=10) as r:
            target = json.load(r)
        return Page(self, target["webSocketDebuggerUrl"])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def _not_blank(png: bytes) -> float:
    """The share of pixels that differ from the most common colour."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(a, axis=0, return_counts=True)
    return 1 - counts.max() / len(a)


@pytest.fixture(scope="module")
def browser():
    try:
        b = Chromium()
    except RuntimeError as e:
        pytest.skip(f"headless Chromium could not start: {e}")
    yield b
    b.close()


@pytest.fixture(scope="module")
def hostile_files(demo_result, tmp_path_factory):
    """The demo's map and report with hostile names (the demo run's own files are in demo_out)."""
    from siteplanner.maps import write_map
    from siteplanner.report import write_report

    out = tmp_path_factory.mktemp("browser")
    hostile = hostile_result(demo_result, k=3)
    write_map(hostile, out / "xss_map.html")
    write_report(hostile, out / "xss_report.html")
    return out


def _outside_requests(page: Page) -> list[str]:
    return [u for u in page.requests if not u.startswith(("file:", "data:"))
            and not any(h in u for h in TILE_HOSTS)]


def test_map_initialises_offline_with_k_numbered_sites_and_the_layer_list(
        browser, demo_out, demo_result, tmp_path):
    page = browser.new_page()
    try:
        page.open(demo_out / "map.html")
        assert page.js("typeof L === 'object' && L.version") == "1.9.4"
        markers = page.js("Array.from(document.querySelectorAll('.site-marker'))"
                          ".map(e => e.textContent)")
        k = len(demo_result.selected)
        assert markers == [str(i) for i in range(1, k + 1)]
        overlays = page.js("Array.from(document.querySelectorAll("
                           "'.leaflet-control-layers-overlays label')).map(e => e.textContent.trim())")
        for name in ("Study area and streets (offline base)", "Candidate score (H3 cells)",
                     "Selected sites (numbered by rank)", "Competitors", "Own branches (Nordea)",
                     "Transit: tram"):
            assert name in overlays, overlays
        assert any(o.startswith("Foot traffic") for o in overlays)
        # the score cells are drawn on Leaflet's canvas renderer, not as SVG paths
        assert page.js("document.querySelectorAll('.leaflet-overlay-pane canvas').length") >= 1
        assert page.js("document.querySelectorAll('#whatif-ranking li').length") == k
        assert page.js("document.querySelector('.leaflet-control-scale') !== null")
        assert "OpenStreetMap contributors" in page.js("document.body.innerText")
        png = page.screenshot(tmp_path / "map.png")
        assert _not_blank(png) > 0.2, "the map screenshot is nearly one colour"
        page.js("document.querySelector('.site-marker').click()")
        popup = page.js("document.querySelector('.leaflet-popup-content').innerText")
        assert "Site #1" in popup and "foot traffic" in popup
        assert page.errors == []
        assert _outside_requests(page) == []
        # Switching a layer off really removes it from the map.
        page.js("Array.from(document.querySelectorAll('.leaflet-control-layers-overlays label'))"
                ".find(l => l.textContent.includes('Selected sites')).querySelector('input').click()")
        assert page.js("document.querySelectorAll('.site-marker').length") == 0
    finally:
        page.close()


def test_hostile_names_show_as_text_and_run_nothing(browser, hostile_files):
    page = browser.new_page()
    try:
        for name in ("xss_map.html", "xss_report.html"):
            page.open(hostile_files / name)
            if name == "xss_map.html":
                # Open every tooltip and the popups, where names are shown.
                page.js("""(() => {
                    const m = window[Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))];
                    m.eachLayer(l => { if (l.getTooltip && l.getTooltip()) l.openTooltip(); });
                    document.querySelectorAll('.site-marker').forEach(e => e.click()); })()""")
                page.js("document.querySelector('.site-marker').click()")
                page.pump(0.5)
            text = page.js("document.documentElement.innerText + document.title")
            assert XSS in text, name
            assert TICKS in text, name
            assert page.js("document.querySelectorAll('img[src=\"x\"]').length") == 0, name
            assert page.dialogs == [], f"{name} ran a script from the data: {page.dialogs}"
            assert page.errors == [], name
            assert _outside_requests(page) == [], name
    finally:
        page.close()


def test_report_renders_offline_with_a_card_per_site(browser, demo_out, demo_result, tmp_path):
    page = browser.new_page()
    try:
        page.open(demo_out / "report.html")
        k = len(demo_result.selected)
        assert page.js("document.querySelectorAll('section.site-card').length") == k
        assert page.js("document.querySelectorAll('table.top-k tbody tr').length") == k
        # the run's floor plans are drawn on the top sites' cards
        assert page.js("document.querySelectorAll('img.plan').length") == demo_result.study.floorplan.sites
        broken = page.js("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                         ".length")
        assert broken == 0
        png = page.screenshot(tmp_path / "report.png")
        assert _not_blank(png) > 0.05
        pdf = base64.b64decode(page.send("Page.printToPDF", paperWidth=8.27, paperHeight=11.69)["data"])
        assert pdf[:4] == b"%PDF" and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 2
        assert page.requests and _outside_requests(page) == []
    finally:
        page.close()
