"""The viewer page in a real browser (Playwright driving headless Chromium) on the tiny real interactive run:
the page opened with its token works (click, brush, save), a page of another site cannot drive the viewer.

Skipped, with the reason, when the ``playwright`` package or ``/usr/bin/chromium`` is missing (CI installs
Debian's chromium: see ``.ci/run``; Playwright cannot download its own browsers on our machines).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clinseg.data.dataset import load_dataset
from clinseg.interactive.network import InteractiveNetwork
from clinseg.interactive.viewer import ViewerServer, ViewerSession, serve
from tests.interactive._viewer_helpers import request, shared_interactive_run, state

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    run, image = shared_interactive_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("browser_out")
    session = ViewerSession(InteractiveNetwork.from_run(run, device="cpu"), image, run_dir=run,
                            prediction_dir=out / "pred", dataset_dir=out / "corrected")
    running = serve(session)
    yield running
    running.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _png(server: ViewerServer, src: str) -> bytes:
    status, _, png = request(server, "GET", src, token=None)  # the page's image address holds the token
    assert status == 200, png
    return png


def _wait_status(page: object, text: str) -> None:
    page.wait_for_function("t => document.getElementById('status').textContent.includes(t)", arg=text,
                           timeout=15000)


def _click_voxel(page: object, row: int, col: int, rows: int, cols: int, **options: object) -> None:
    """Click the centre of pixel (row, col) of the shown slice (``rows`` x ``cols`` voxels)."""
    box = page.locator("#slice").bounding_box()
    page.click("#slice", position={"x": (col + 0.5) * box["width"] / cols, "y": (row + 0.5) * box["height"] / rows},
               **options)


def test_clicking_segments_and_saving_writes_the_dataset(server: ViewerServer, browser: object,
                                                         tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    refused: list[str] = []  # every request of the page carries the token: none may be refused
    page.on("response", lambda response: refused.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    page.goto(server.url)
    _wait_status(page, "A: 0 voxels")
    assert page.text_content("#prediction-path").endswith("pred/scan/A.nii.gz")
    assert page.text_content("#dataset-path").endswith("corrected")
    assert page.input_value("#slider") == "3"  # opens on the middle axial slice of 6
    src_before = page.get_attribute("#slice", "src")
    assert src_before.endswith(f"&token={server.token}")
    png_before = _png(server, src_before)

    _click_voxel(page, 7, 9, 16, 16)  # left click: foreground on axial slice 3
    _wait_status(page, "A: 256 voxels")
    assert state(server)["fg"] == [[3, 7, 9]]
    src_after = page.get_attribute("#slice", "src")
    assert src_after != src_before and _png(server, src_after) != png_before
    page.wait_for_function("() => { const i = document.getElementById('slice'); "
                           "return i.complete && i.naturalWidth === 128; }")

    _click_voxel(page, 1, 1, 16, 16, button="right")  # right click: background
    _wait_status(page, "1 background")
    _click_voxel(page, 2, 14, 16, 16, modifiers=["Shift"])  # shift+click: background too
    _wait_status(page, "2 background")
    assert state(server)["bg"] == [[3, 1, 1], [3, 2, 14]]
    page.click("#undo")
    _wait_status(page, "1 background")

    page.select_option("#axis", "1")  # coronal: rows are Z flipped (6), columns X (16), slice = y = 8
    assert page.input_value("#slider") == "8"
    _click_voxel(page, 1, 4, 6, 16)
    _wait_status(page, "2 foreground")
    assert state(server)["fg"][-1] == [4, 8, 4]  # z = 6 - 1 - row
    assert "A: 512 voxels" in page.text_content("#status")

    page.select_option("#structure", "B")
    _wait_status(page, "B: 0 voxels")
    page.select_option("#axis", "0")
    page.check("#brush")
    page.fill("#radius", "2")
    box = page.locator("#slice").bounding_box()
    page.mouse.move(box["x"] + 8.5 * box["width"] / 16, box["y"] + 8.5 * box["height"] / 16)
    page.mouse.down()
    page.mouse.up()
    _wait_status(page, "B: 13 voxels")  # a disc of radius 2 in one slice: 1 + 4 + 4 + 4 voxels
    page.screenshot(path=str(tmp_path / "viewer.png"))

    dataset = server.session.default_dataset_dir()
    page.click("#save-corrections")
    page.wait_for_function("() => document.getElementById('message').textContent.startsWith('saved')",
                           timeout=15000)
    assert (dataset / "imagesTr" / "scan_0000.nii.gz").is_file()
    ds = load_dataset(dataset)
    assert ds.case("scan").annotated == {"A", "B"}
    page.click("#save")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('B.nii.gz')")
    assert server.session.default_prediction_path("B").is_file()
    assert errors == [] and refused == []
    page.close()


class _ForeignPage(BaseHTTPRequestHandler):
    """Another web site the person has open (here on another local port): it tries to drive the viewer."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>elsewhere</title><p>another site</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_another_web_page_cannot_drive_the_viewer(server: ViewerServer, browser: object) -> None:
    foreign = ThreadingHTTPServer(("127.0.0.1", 0), _ForeignPage)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{foreign.server_address[1]}/")
        before = state(server)
        click = '{"z": 3, "y": 7, "x": 7, "foreground": true}'
        # A "simple" cross-site request (no CORS preflight): sent by the browser, refused by the viewer.
        page.evaluate("""async ([url, body]) => { await fetch(url, {method: "POST", mode: "no-cors",
            headers: {"Content-Type": "text/plain"}, body}); }""", [server.origin + "/api/click", click])
        # Even a page that learnt the token cannot send it: a JSON POST with a custom header needs a CORS
        # preflight, which the viewer never grants (and the POST's foreign Origin would be refused, 403).
        status = page.evaluate("""async ([url, token, body]) => { try { const r = await fetch(url, {
            method: "POST", headers: {"Content-Type": "application/json", "X-Clinseg-Token": token}, body});
            return r.status; } catch (e) { return "blocked"; } }""",
                               [server.origin + "/api/click", server.token, click])
        assert status == "blocked"  # the preflight failed: the POST was never sent
        assert state(server)["fg"] == before["fg"] and state(server)["mask_hash"] == before["mask_hash"]
    finally:
        page.close()
        foreign.shutdown()
        foreign.server_close()
