"""The viewer page in a real browser (Playwright driving headless Chromium) on the tiny real interactive run:
the page opened with its token works (click, brush, save), a page of another site cannot drive the viewer;
an image stored with a flipped axis looks and clicks like the original; window/level presets and drag,
overlay opacity, legend, zoom and pan, orientation letters; empty corrections refused; the redirect page.

Skipped, with the reason, when the ``playwright`` package or ``/usr/bin/chromium`` is missing (CI installs
Debian's chromium: see ``.ci/run``; Playwright cannot download its own browsers on our machines).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clinseg.data.dataset import load_dataset
from clinseg.interactive.network import InteractiveNetwork
from clinseg.interactive.viewer import ViewerServer, ViewerSession, serve
from clinseg.io import read_image, write_image
from tests.interactive._viewer_helpers import (
    FLIP_X,
    GEOM,
    request,
    shared_interactive_run,
    state,
    world,
    write_restored,
)

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


# -- issue 22: orientation, window/level, overlays, zoom and pan, empty corrections, the redirect page ---------
@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ViewerServer, ViewerServer]]:
    """The same patient stored twice: as the run's image is, and with its x axis flipped (array flipped, a -1
    on x in the direction)."""
    run, image = shared_interactive_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("browser_pair")
    network = InteractiveNetwork.from_run(run, device="cpu")
    flipped = write_restored(image, out / "flipped_0000.nii.gz", *FLIP_X)
    servers = [serve(ViewerSession(network, path, run_dir=run, prediction_dir=out / name, dataset_dir=out / name))
               for name, path in (("plain", image), ("flipped", flipped))]
    yield servers[0], servers[1]
    for running in servers:
        running.shutdown()


@pytest.fixture(scope="module")
def ct_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    """A CT-like image in Hounsfield units: air (-1000), a block of soft tissue (40) holding bone (1200)."""
    run, _ = shared_interactive_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("browser_ct")
    ct = np.full(GEOM.shape, -1000.0, np.float32)
    ct[:, 2:14, 2:14] = 40.0
    ct[:, 6:10, 6:10] = 1200.0
    write_image(ct, GEOM, out / "ct_0000.nii.gz")
    session = ViewerSession(InteractiveNetwork.from_run(run, device="cpu"), out / "ct_0000.nii.gz", run_dir=run,
                            prediction_dir=out / "pred", dataset_dir=out / "corrected")
    running = serve(session)
    yield running
    running.shutdown()


def _open(browser: object, server: ViewerServer) -> tuple[object, list[str]]:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(server.url)
    _wait_status(page, ": 0 voxels")
    return page, problems


def _shown(page: object, server: ViewerServer) -> bytes:
    """The PNG the page shows now (its image address, fetched again: rendering is deterministic)."""
    return _png(server, page.get_attribute("#slice", "src"))


def _markers(page: object) -> list[str]:
    return [page.text_content(f"#mark-{side}") for side in ("top", "bottom", "left", "right")]


def _at(page: object, row: float, col: float, rows: int, cols: int) -> tuple[float, float]:
    """Screen position of the centre of pixel (row, col) of the shown slice."""
    box = page.locator("#slice").bounding_box()
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows


def _pixel(png: bytes, row: int, col: int, factor: int = 8) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(png)).getpixel((col * factor + factor // 2, row * factor + factor // 2))[:3]


def test_a_flipped_image_looks_and_clicks_like_the_original(pair: tuple[ViewerServer, ViewerServer],
                                                            browser: object) -> None:
    plain, flipped = pair
    pages = [_open(browser, server) for server in pair]
    raw = read_image(plain.session.image_path).array  # an MR-like image: the 1st-99th percentile window
    low, high = np.percentile(raw, [1, 99])
    for page, _ in pages:
        assert page.eval_on_selector_all("#preset option", "os => os.map(o => o.value)") == ["auto", "custom"]
        assert page.input_value("#preset") == "auto"
        assert float(page.input_value("#win-width")) == pytest.approx(high - low, rel=1e-3)
        assert float(page.input_value("#win-level")) == pytest.approx((high + low) / 2, rel=1e-3)
    for axis, markers in (("0", ["A", "P", "R", "L"]), ("1", ["S", "I", "R", "L"]), ("2", ["S", "I", "A", "P"])):
        for page, _ in pages:
            page.select_option("#axis", axis)
            assert _markers(page) == markers
        assert _shown(pages[0][0], plain) == _shown(pages[1][0], flipped), axis  # pixel for pixel
    assert "run to R, P, S" in pages[1][0].text_content("#stored")
    assert "run to L, P, S" in pages[0][0].text_content("#stored")

    for (page, _), server in zip(pages, pair):  # the same screen position in both pages
        page.select_option("#axis", "0")
        page.mouse.click(*_at(page, 6, 4, 16, 16))
        _wait_status(page, "1 foreground")
    points = [state(server)["fg"][0] for server in pair]
    assert points == [[3, 6, 4], [3, 6, 11]]  # the same voxel of the patient: x counted from the other side
    np.testing.assert_allclose(world(flipped.session.geometry, tuple(points[1])),
                               world(plain.session.geometry, tuple(points[0])))

    for (page, _), server in zip(pages, pair):  # a brush stroke in the coronal view, at the same place
        page.select_option("#structure", "B")
        _wait_status(page, "B: 0 voxels")
        page.select_option("#axis", "1")
        page.check("#brush")
        page.fill("#radius", "1")
        page.mouse.move(*_at(page, 2, 3, 6, 16))
        page.mouse.down()
        page.mouse.move(*_at(page, 2, 5, 6, 16), steps=4)
        page.mouse.up()
        _wait_status(page, "B: 11 voxels")  # discs of radius 1 along row 2 (z 3), columns 3..5: 7 + 2 * 3
    np.testing.assert_array_equal(flipped.session.mask("B"), plain.session.mask("B")[:, :, ::-1])
    assert plain.session.mask("B")[3, 8, 2:7].all()
    for axis in ("1", "0", "2"):
        for page, _ in pages:
            page.select_option("#axis", axis)
        assert _shown(pages[0][0], plain) == _shown(pages[1][0], flipped), axis
    for page, problems in pages:
        assert problems == []
        page.close()


def test_window_presets_and_mouse_drag_on_a_ct(ct_server: ViewerServer, browser: object) -> None:
    page, problems = _open(browser, ct_server)
    options = page.eval_on_selector_all("#preset option", "os => os.map(o => o.value)")
    assert options == ["soft tissue", "bone", "lung", "brain", "custom"]  # CT-like: presets, no auto
    assert page.input_value("#preset") == "soft tissue"
    assert (page.input_value("#win-width"), page.input_value("#win-level")) == ("400", "40")
    assert "&width=400&level=40&" in page.get_attribute("#slice", "src")
    png = _shown(page, ct_server)
    assert _pixel(png, 0, 0) == (0, 0, 0) and _pixel(png, 3, 3) == (127, 127, 127)  # air; (40 + 160) / 400

    page.select_option("#preset", "bone")
    page.wait_for_function("() => document.getElementById('slice').src.includes('&width=1800&level=400&')")
    png = _shown(page, ct_server)
    assert _pixel(png, 3, 3) == (76, 76, 76) and _pixel(png, 8, 8) == (240, 240, 240)  # (40|1200 + 500) / 1800

    x, y = _at(page, 8, 8, 16, 16)  # Ctrl+drag: 128 px right widens the window by 2 ** 0.5, 64 px down
    page.keyboard.down("Control")  # raises the level by a quarter of the width it started from
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 64, y + 32, steps=3)
    page.mouse.move(x + 128, y + 64, steps=3)
    page.mouse.up()
    page.keyboard.up("Control")
    page.wait_for_function("() => document.getElementById('slice').src.includes('&width=2546&level=850&')")
    assert (page.input_value("#win-width"), page.input_value("#win-level")) == ("2546", "850")
    assert page.input_value("#preset") == "custom"
    assert state(ct_server)["fg"] == [] and state(ct_server)["bg"] == []  # the drag clicked nothing

    page.fill("#win-width", "100")
    page.fill("#win-level", "0")
    page.press("#win-level", "Enter")
    page.wait_for_function("() => document.getElementById('slice').src.includes('&width=100&level=0&')")
    png = _shown(page, ct_server)
    assert _pixel(png, 3, 3) == (229, 229, 229)  # (40 + 50) / 100 * 255 = 229.5
    page.select_option("#preset", "lung")
    page.wait_for_function("() => document.getElementById('slice').src.includes('&width=1500&level=-600&')")
    assert problems == []
    page.close()


def test_overlays_legend_zoom_and_pan(ct_server: ViewerServer, browser: object) -> None:
    page, problems = _open(browser, ct_server)
    items = page.eval_on_selector_all("#legend li", "ls => ls.map(l => [l.dataset.structure, l.className, "
                                      "getComputedStyle(l.querySelector('.swatch')).backgroundColor])")
    assert items == [["A", "active", "rgb(0, 160, 255)"], ["B", "", "rgb(255, 150, 0)"]]
    page.check("#brush")
    page.fill("#radius", "2")
    page.mouse.click(*_at(page, 8, 8, 16, 16))  # A: a disc of radius 2 around (8, 8) on the bone (1200 HU)
    _wait_status(page, "A: 13 voxels")
    page.uncheck("#brush")
    page.click("#legend li[data-structure=B]")  # the legend selects, too
    _wait_status(page, "B: 0 voxels")
    assert page.get_attribute("#legend li[data-structure=B]", "class") == "active"
    assert page.get_attribute("#legend li[data-structure=A]", "class") == "touched"
    assert page.input_value("#structure") == "B"

    page.eval_on_selector("#opacity", "e => { e.value = 100; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function("() => document.getElementById('slice').src.includes('&opacity=1&')")
    png = _shown(page, ct_server)  # A is not active: half of the opacity, over bone (white in soft tissue)
    assert _pixel(png, 8, 8) == (128, 208, 255)  # 0.5 * 255 + 0.5 * (0, 160, 255), rounded to even
    assert _pixel(png, 6, 8) == (0, 160, 255) and _pixel(png, 3, 3) == (127, 127, 127)  # A's contour; no mask
    page.eval_on_selector("#opacity", "e => { e.value = 0; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function("() => document.getElementById('slice').src.includes('&opacity=0&')")
    png = _shown(page, ct_server)
    assert _pixel(png, 8, 8) == (255, 255, 255) and _pixel(png, 6, 8) == (0, 160, 255)  # opacity 0: outlines
    assert page.text_content("#opacity-label") == "0 %"

    before = page.locator("#slice").bounding_box()
    page.click("#zoom-in")
    assert page.text_content("#zoom-label") == "125 %"
    after = page.locator("#slice").bounding_box()
    assert after["width"] == pytest.approx(1.25 * before["width"], abs=0.5)
    assert after["x"] + after["width"] / 2 == pytest.approx(before["x"] + before["width"] / 2, abs=0.5)  # centred
    page.mouse.click(*_at(page, 7, 9, 16, 16))  # a click on the zoomed image lands on its voxel
    _wait_status(page, "1 foreground")
    assert state(ct_server)["fg"] == [[3, 7, 9]]

    x, y = _at(page, 8, 8, 16, 16)
    page.mouse.move(x, y)
    page.mouse.down(button="middle")  # pan
    page.mouse.move(x - 40, y + 30, steps=4)
    page.mouse.up(button="middle")
    panned = page.locator("#slice").bounding_box()
    assert (panned["x"] - after["x"], panned["y"] - after["y"]) == (pytest.approx(-40, abs=0.5),
                                                                    pytest.approx(30, abs=0.5))
    assert state(ct_server)["fg"] == [[3, 7, 9]] and state(ct_server)["bg"] == []  # panning clicked nothing
    page.mouse.click(*_at(page, 4, 12, 16, 16), button="right")
    _wait_status(page, "1 background")
    assert state(ct_server)["bg"] == [[3, 4, 12]]

    x, y = _at(page, 2, 2, 16, 16)  # Ctrl+wheel zooms at the cursor: the voxel under it stays there
    page.mouse.move(x, y)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_function("() => document.getElementById('zoom-label').textContent === '156 %'")
    assert _at(page, 2, 2, 16, 16) == (pytest.approx(x, abs=0.5), pytest.approx(y, abs=0.5))
    page.click("#zoom-fit")
    assert page.text_content("#zoom-label") == "100 %" and page.locator("#slice").bounding_box() == before
    page.select_option("#axis", "2")
    assert _markers(page) == ["S", "I", "A", "P"]
    page.click("#undo")
    _wait_status(page, "1 foreground / 0 background")
    page.click("#undo")
    _wait_status(page, "0 foreground / 0 background")
    page.click("#legend li[data-structure=A]")
    _wait_status(page, "A: 13 voxels")
    page.click("#undo")
    _wait_status(page, "A: 0 voxels")
    assert problems == []
    page.close()


def test_an_empty_correction_is_refused_with_a_message(ct_server: ViewerServer, browser: object) -> None:
    page, problems = _open(browser, ct_server)
    page.click("#save-corrections")
    page.wait_for_function("() => document.getElementById('message').className === 'error'")
    assert "nothing to save: no structure has a click or a brush stroke" in page.text_content("#message")
    page.check("#brush")
    for strokes, button in ((1, "left"), (2, "right")):  # paint a disc, then erase it: touched, and empty
        page.mouse.click(*_at(page, 8, 8, 16, 16), button=button)
        _wait_status(page, f"{strokes} strokes")
    assert "A: 0 voxels" in page.text_content("#status") and "touched: A" in page.text_content("#status")
    page.click("#save-corrections")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('is empty')")
    assert page.text_content("#message").startswith("nothing to save: the touched structure A is empty")
    assert not ct_server.session.default_dataset_dir().exists()
    assert [p for p in problems if not p.startswith("400 ")] == []  # the refusal is the only error answer
    page.click("#undo")
    page.click("#undo")
    _wait_status(page, "0 strokes")
    page.close()


def test_the_redirect_page_opens_the_viewer(ct_server: ViewerServer, browser: object) -> None:
    opened: list[str] = []
    redirect = ct_server.open_browser(opener=opened.append)
    try:
        assert opened[0].startswith("file:///") and ct_server.token not in opened[0]
        page = browser.new_page()
        page.goto(opened[0])
        page.wait_for_url(ct_server.url, timeout=15000)
        _wait_status(page, "A: 0 voxels")  # the page works: it holds the token from the redirect
        page.close()
    finally:
        from clinseg.interactive.viewer.launch import remove_redirect_page

        remove_redirect_page(redirect)
        ct_server.redirect_page = None
