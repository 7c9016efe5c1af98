"""The viewer's HTTP API without a browser (plain urllib), on the tiny real interactive run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinseg.interactive.network import InteractiveNetwork
from clinseg.interactive.viewer import ViewerServer, ViewerSession, serve
from tests.interactive._viewer_helpers import shared_interactive_run


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    run, image = shared_interactive_run(tmp_path_factory)
    session = ViewerSession(InteractiveNetwork.from_run(run, device="cpu"), image, run_dir=run)
    running = serve(session)
    yield running
    running.shutdown()


def _get(server: ViewerServer, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def _post(server: ViewerServer, path: str, body: object) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path.lstrip("/"), data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serves_the_page_state_and_slices(server: ViewerServer) -> None:
    assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(":0/")
    status, kind, page = _get(server, "/")
    assert status == 200 and kind.startswith("text/html") and b'id="slice"' in page
    assert _get(server, "/viewer.js")[0] == 200 and _get(server, "/viewer.css")[0] == 200
    status, _, raw = _get(server, "/api/state")
    state = json.loads(raw)
    assert state["shape"] == [6, 16, 16] and state["structures"] == ["A", "B"] and state["slice_axis"] == 0
    status, kind, png = _get(server, "/api/slice?axis=2&index=4")
    assert status == 200 and kind == "image/png" and png.startswith(b"\x89PNG")


def test_click_select_undo_round_trip(server: ViewerServer) -> None:
    status, state = _post(server, "/api/select", {"structure": "B"})
    assert status == 200 and state["structure"] == "B"
    status, state = _post(server, "/api/click", {"z": 1, "y": 4, "x": 5, "foreground": True})
    assert status == 200 and state["fg"] == [[1, 4, 5]] and state["voxels"] == 16 * 16
    status, state = _post(server, "/api/brush", {"z": 0, "points": [[8, 8]], "radius": 2, "erase": False})
    assert status == 200 and state["voxels"] == 16 * 16 + 13 and state["strokes"] == 1
    _, state = _post(server, "/api/undo", {})
    _, state = _post(server, "/api/undo", {})
    assert state["voxels"] == 0 and state["touched"] == []
    assert _post(server, "/api/undo", {})[1]["message"] == "nothing to undo"


def test_errors_are_json_with_status_400(server: ViewerServer, tmp_path: Path) -> None:
    for path, body, words in (
        ("/api/click", {"z": 99, "y": 0, "x": 0, "foreground": True}, "outside the image grid"),
        ("/api/click", {"z": 0, "y": 0}, "missing field 'x'"),
        ("/api/click", {"z": "a", "y": 0, "x": 0}, "invalid value"),
        ("/api/select", {"structure": "Liver"}, "unknown structure"),
        ("/api/click", b"not json", "not JSON"),
        ("/api/save-corrections", {"dataset": str(tmp_path / "ds")}, "nothing to save"),
    ):
        status, answer = _post(server, path, body)
        assert status == 400 and words in answer["error"], (path, answer)
    status, kind, raw = _get(server, "/api/slice?axis=5&index=0")
    assert status == 400 and kind == "application/json" and "axis" in json.loads(raw)["error"]
    assert _get(server, "/nowhere")[0] == 404
