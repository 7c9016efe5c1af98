"""The viewer's HTTP API without a browser (http.client), on the tiny real interactive run: what it serves to
the page holding the token, and each request it refuses (issue 18: token, Host, Origin, JSON only, fixed save
places, body size and time, existing dataset cases)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data.dataset import load_dataset
from clinseg.errors import ClinsegError
from clinseg.interactive.network import InteractiveNetwork
from clinseg.interactive.viewer import ViewerServer, ViewerSession, serve
from clinseg.io import read_image, write_image
from tests.interactive._viewer_helpers import GEOM, Address, post, request, shared_interactive_run, state


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[InteractiveNetwork, Path, Path]:
    run, image = shared_interactive_run(tmp_path_factory)
    return InteractiveNetwork.from_run(run, device="cpu"), run, image


@pytest.fixture(scope="module")
def server(trained: tuple[InteractiveNetwork, Path, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    network, run, image = trained
    out = tmp_path_factory.mktemp("server_out")
    session = ViewerSession(network, image, run_dir=run, prediction_dir=out / "pred", dataset_dir=out / "ds")
    running = serve(session)
    yield running
    running.shutdown()


def _error(raw: bytes) -> str:
    return json.loads(raw)["error"]


def test_serves_the_page_state_and_slices_to_the_token_holder(server: ViewerServer) -> None:
    assert server.url == f"{server.origin}/?token={server.token}" and len(server.token) == 43
    assert server.origin.startswith("http://127.0.0.1:") and not server.origin.endswith(":0")
    status, headers, page = request(server, "GET", "/", token="query")
    assert status == 200 and headers["content-type"].startswith("text/html") and b'id="slice"' in page
    token = server.token.encode()
    assert b'content="' + token + b'"' in page and b"viewer.js?token=" + token in page
    assert b"__CLINSEG_TOKEN__" not in page and "frame-ancestors 'none'" in headers["content-security-policy"]
    assert request(server, "GET", "/viewer.js", token="query")[0] == 200
    assert request(server, "GET", "/viewer.css", token="query")[0] == 200
    status, _, raw = request(server, "GET", "/api/state")
    answer = json.loads(raw)
    assert answer["shape"] == [6, 16, 16] and answer["structures"] == ["A", "B"] and answer["slice_axis"] == 0
    assert answer["prediction_path"].endswith("pred/scan/A.nii.gz") and answer["dataset_path"].endswith("ds")
    status, headers, png = request(server, "GET", "/api/slice?axis=2&index=4", token="query")
    assert status == 200 and headers["content-type"] == "image/png" and png.startswith(b"\x89PNG")


def test_click_select_undo_round_trip(server: ViewerServer) -> None:
    status, answer = post(server, "/api/select", {"structure": "B"})
    assert status == 200 and answer["structure"] == "B"
    status, answer = post(server, "/api/click", {"z": 1, "y": 4, "x": 5, "foreground": True})
    assert status == 200 and answer["fg"] == [[1, 4, 5]] and answer["voxels"] == 16 * 16
    status, answer = post(server, "/api/brush", {"z": 0, "points": [[8, 8]], "radius": 2, "erase": False})
    assert status == 200 and answer["voxels"] == 16 * 16 + 13 and answer["strokes"] == 1
    _, answer = post(server, "/api/undo", {})
    _, answer = post(server, "/api/undo", {})
    assert answer["voxels"] == 0 and answer["touched"] == []
    assert post(server, "/api/undo", {})[1]["message"] == "nothing to undo"
    assert post(server, "/api/select", {"structure": "A"})[1]["structure"] == "A"


def test_errors_are_json_with_status_400(server: ViewerServer) -> None:
    for path, body, words in (
        ("/api/click", {"z": 99, "y": 0, "x": 0, "foreground": True}, "outside the image grid"),
        ("/api/click", {"z": 0, "y": 0}, "missing field 'x'"),
        ("/api/click", {"z": "a", "y": 0, "x": 0}, "invalid value"),
        ("/api/click", {"z": 0, "y": 0, "x": 0, "extra": 1}, "unexpected field 'extra'"),
        ("/api/select", {"structure": "Liver"}, "unknown structure"),
        ("/api/click", b"not json", "not JSON"),
        ("/api/click", b"[1, 2]", "must be a JSON object"),
        ("/api/save-corrections", {}, "nothing to save"),
    ):
        status, answer = post(server, path, body)
        assert status == 400 and words in answer["error"], (path, answer)
    status, headers, raw = request(server, "GET", "/api/slice?axis=5&index=0")
    assert status == 400 and headers["content-type"] == "application/json" and "axis" in _error(raw)
    assert request(server, "GET", "/nowhere")[0] == 404


def test_requests_without_the_right_token_are_refused(server: ViewerServer) -> None:
    wrong = "x" * len(server.token)
    for token in (None, wrong, server.token[:-1], ""):
        for method, path, body in (("GET", "/", None), ("GET", "/viewer.js", None), ("GET", "/api/state", None),
                                   ("GET", "/api/slice?axis=0&index=0", None), ("GET", "/nowhere", None),
                                   ("POST", "/api/click", {"z": 3, "y": 7, "x": 7, "foreground": True})):
            status, headers, raw = request(server, method, path, body, token=token)
            assert status == 403 and headers["content-type"] == "application/json", (token, path)
            assert "missing or wrong viewer token" in _error(raw)
    status, _, _ = request(server, "GET", f"/api/state?token={wrong}", token=None)
    assert status == 403
    assert state(server)["fg"] == []  # no refused click got through


def test_posts_must_be_json(server: ViewerServer) -> None:
    click = json.dumps({"z": 3, "y": 7, "x": 7, "foreground": True}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, _, raw = request(server, "POST", "/api/click", click, headers={"Content-Type": content_type})
        assert status == 415 and "application/json" in _error(raw), content_type
    status, _, raw = request(server, "POST", "/api/click", click, headers={"Content-Type": ""})
    assert status == 415
    status, _, _ = request(server, "POST", "/api/click", click,
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 200 and state(server)["fg"] == [[3, 7, 7]]
    assert post(server, "/api/undo", {})[1]["fg"] == []


def test_foreign_hosts_and_origins_are_refused(server: ViewerServer) -> None:
    port = server.origin.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", f"127.0.0.2:{port}", f"[::1]:{port}"):
        status, _, raw = request(server, "GET", "/api/state", headers={"Host": host})
        assert status == 403 and "Host header" in _error(raw), host
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", f"https://127.0.0.1:{port}"):
        status, _, raw = request(server, "POST", "/api/undo", {}, headers={"Origin": origin})
        assert status == 403 and "Origin" in _error(raw), origin
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert request(server, "GET", "/api/state", headers={"Host": host})[0] == 200, host
    for origin in (f"http://localhost:{port}", server.origin):
        assert request(server, "POST", "/api/undo", {}, headers={"Origin": origin})[0] == 200, origin


def test_a_request_without_host_is_refused(server: ViewerServer) -> None:
    port = int(server.origin.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /api/state HTTP/1.0\r\nX-Clinseg-Token: {server.token}\r\n\r\n".encode())
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 403") and b"Host header None" in answer


def test_the_page_cannot_choose_where_files_go(server: ViewerServer, tmp_path: Path) -> None:
    post(server, "/api/click", {"z": 2, "y": 7, "x": 7, "foreground": True})
    for path, body, option in (
        ("/api/save", {"path": str(tmp_path / "new" / "x.nii.gz")}, "--out"),
        ("/api/save", {"path": "../../x.nii.gz"}, "--out"),
        ("/api/save-corrections", {"dataset": str(tmp_path / "other")}, "--dataset"),
        ("/api/save-corrections", {"case": "case_0"}, "--case"),
        ("/api/save-corrections", {"dataset": None}, "--dataset"),
    ):
        status, answer = post(server, path, body)
        assert status == 400 and "fixed when it starts" in answer["error"] and option in answer["error"], body
    assert list(tmp_path.iterdir()) == []  # nothing created or written
    status, answer = post(server, "/api/save", {})
    assert status == 200 and answer["path"] == answer["prediction_path"]
    assert Path(answer["path"]).parts[-2:] == ("scan", "A.nii.gz") and Path(answer["path"]).is_file()
    post(server, "/api/clear", {})


def test_an_oversized_body_is_refused_unread(server: ViewerServer) -> None:
    port = int(server.origin.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_post_head(server, port, 2 << 20))  # announces 2 MiB, sends none of it
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 413") or answer.startswith(b"HTTP/1.1 413")
    assert b"too large (2097152 bytes; at most 1048576)" in answer
    assert request(server, "POST", "/api/undo", b"{}", headers={"Transfer-Encoding": "chunked"})[0] in (400, 411)


def test_a_withheld_body_neither_blocks_the_page_nor_the_lock(trained: tuple[InteractiveNetwork, Path, Path],
                                                              tmp_path: Path) -> None:
    network, run, image = trained
    session = ViewerSession(network, image, run_dir=run, prediction_dir=tmp_path / "p", dataset_dir=tmp_path / "d")
    with serve(session, body_timeout=3.0) as running:
        port = int(running.origin.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            started = time.monotonic()
            slow.sendall(_post_head(running, port, 60) + b'{"z": 3')  # headers and a part of the body
            for _ in range(3):  # the page keeps being served while the body is withheld
                t0 = time.monotonic()
                assert state(running)["fg"] == [] and time.monotonic() - t0 < 1.0
            assert post(running, "/api/click", {"z": 3, "y": 7, "x": 7, "foreground": True})[0] == 200
            answer = _read_all(slow)
            waited = time.monotonic() - started
        assert b" 408 " in answer.split(b"\r\n")[0] and b"did not arrive within 3 s (7 of 60 bytes)" in answer
        assert 2.5 < waited < 8
        assert state(running)["fg"] == [[3, 7, 7]]  # only the complete click was applied


def test_corrections_never_overwrite_a_case_holding_another_image(
        trained: tuple[InteractiveNetwork, Path, Path], tmp_path: Path) -> None:
    network, run, image = trained
    dataset = tmp_path / "ds"
    other = np.full(GEOM.shape, 7.0, np.float32)
    write_image(other, GEOM, dataset / "imagesTr" / "scan_0000.nii.gz")
    write_image(np.ones(GEOM.shape, np.uint8), GEOM, dataset / "structuresTr" / "scan" / "A.nii.gz")
    (dataset / "dataset.json").write_text(json.dumps({
        "name": "Old", "channel_names": {"0": "CT"}, "labels": {"A": 1, "B": 2}, "label_mode": "multilabel",
        "file_ending": ".nii.gz"}))
    before = {p: p.read_bytes() for p in dataset.rglob("*.nii.gz")}
    session = ViewerSession(network, image, run_dir=run, dataset_dir=dataset)
    with serve(session) as running:
        post(running, "/api/click", {"z": 2, "y": 7, "x": 7, "foreground": True})
        status, answer = post(running, "/api/save-corrections", {})
        assert status == 200 and answer["case_saved"] == "scan_2"
        assert "case scan there holds another image" in answer["message"]
        post(running, "/api/click", {"z": 4, "y": 7, "x": 7, "foreground": True})
        status, again = post(running, "/api/save-corrections", {})  # the same session again: its own case
        assert status == 200 and again["case_saved"] == "scan_2"
    assert {p: p.read_bytes() for p in before} == before  # the existing case is untouched
    np.testing.assert_array_equal(read_image(dataset / "imagesTr" / "scan_2_0000.nii.gz").array,
                                  read_image(image).array)
    assert read_image(dataset / "structuresTr" / "scan_2" / "A.nii.gz").array.sum() == 2 * 16 * 16
    assert [c.case_id for c in load_dataset(dataset).train] == ["scan", "scan_2"]


def test_the_server_binds_loopback_only(trained: tuple[InteractiveNetwork, Path, Path]) -> None:
    network, run, image = trained
    with pytest.raises(ClinsegError, match="loopback address only"):
        serve(ViewerSession(network, image, run_dir=run), host="0.0.0.0")


def test_the_command_prints_the_address_with_its_token(trained: tuple[InteractiveNetwork, Path, Path],
                                                       tmp_path: Path) -> None:
    _, run, image = trained
    result = CliRunner().invoke(app, ["interact", str(run), str(image), "--case", "../x", "--no-browser",
                                      "--device", "cpu"])
    assert result.exit_code == 1 and "case id '../x' contains '/'" in result.output
    command = [sys.executable, "-c", "from clinseg.cli.main import app; app(prog_name='clinseg')", "interact",
               str(run), str(image), "--no-browser", "--device", "cpu", "--case", "mine",
               "--out", str(tmp_path / "pred"), "--dataset", str(tmp_path / "ds")]
    with (tmp_path / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    try:
        lines = [process.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
        assert lines[0].startswith("viewer for mine"), (lines, (tmp_path / "stderr.txt").read_text())
        assert lines[1].strip() == f"predictions: {tmp_path / 'pred' / 'mine' / '<structure>.nii.gz'}"
        assert lines[2].strip() == f"corrections: {tmp_path / 'ds'}"
        assert "access token" in lines[3] and lines[4].strip().startswith("http://127.0.0.1:")
        printed = Address.parse(lines[4])
        status, _, raw = request(printed, "GET", "/api/state")
        assert status == 200 and json.loads(raw)["case"] == "mine"
        assert request(printed, "GET", "/api/state", token=None)[0] == 403
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close()  # type: ignore[union-attr]


def test_clicks_and_strokes_name_pixels_of_a_view(server: ViewerServer) -> None:
    status, answer = post(server, "/api/click", {"axis": 1, "index": 8, "row": 1, "col": 4, "foreground": True})
    assert status == 200 and answer["fg"] == [[4, 8, 4]]  # coronal: z = 6 - 1 - row
    status, answer = post(server, "/api/click", {"axis": 2, "index": 3, "row": 0, "col": 15, "foreground": False})
    assert status == 200 and answer["bg"] == [[5, 15, 3]]  # sagittal: columns are y, slices x
    status, answer = post(server, "/api/brush", {"axis": 0, "index": 1, "points": [[8, 8]], "radius": 1,
                                                 "erase": False})
    assert status == 200 and answer["strokes"] == 1
    assert server.session.mask()[1, 7:10, 8].all() and server.session.mask()[1, 8, 7:10].all()
    for body, words in (({"axis": 0, "index": 1, "row": 2, "col": 3, "z": 1}, "either axis, index, row, col"),
                        ({"axis": 0, "index": 1, "row": 16, "col": 3}, "outside the axial slice of 16 x 16"),
                        ({"axis": 1, "index": 16, "row": 0, "col": 0}, "coronal slice 16 is outside 0..15"),
                        ({"axis": 0, "index": 1, "row": 2}, "missing field 'col'")):
        status, answer = post(server, "/api/click", body)
        assert status == 400 and words in answer["error"], body
    status, answer = post(server, "/api/brush", {"axis": 0, "index": 1, "z": 1, "points": [[1, 1]]})
    assert status == 400 and "not both" in answer["error"]
    status, answer = post(server, "/api/brush", {"axis": 0, "index": 1, "points": [[1, "nan"]]})
    assert status == 400 and "'points' must be a list" in answer["error"]
    for _ in range(3):
        post(server, "/api/undo", {})
    assert state(server)["fg"] == [] and state(server)["voxels"] == 0


def test_slices_take_the_window_and_the_overlay_opacity(server: ViewerServer) -> None:
    def png(query: str) -> tuple[int, bytes]:
        status, _, raw = request(server, "GET", f"/api/slice?axis=0&index=2{query}", token="query")
        return status, raw

    assert png("")[1] == png(f"&width={server.session.screen.window.width}"
                             f"&level={server.session.screen.window.level}&opacity=0.4")[1]  # the defaults
    assert png("&width=0.2&level=0.5")[1] != png("")[1]
    post(server, "/api/brush", {"axis": 0, "index": 2, "points": [[8, 8]], "radius": 3, "erase": False})
    assert png("&opacity=0")[1] != png("&opacity=1")[1]
    post(server, "/api/undo", {})
    for query, words in (("&width=0&level=1", "width > 0"), ("&width=1", "give both 'width' and 'level'"),
                         ("&width=nan&level=1", "invalid value"), ("&opacity=1.5", "opacity must lie in 0..1"),
                         ("&level=inf&width=2", "invalid value")):
        status, raw = png(query)
        assert status == 400 and words in _error(raw), query


def test_the_browser_is_opened_on_a_private_redirect_page(trained: tuple[InteractiveNetwork, Path, Path]) -> None:
    network, run, image = trained
    opened: list[str] = []
    with serve(ViewerSession(network, image, run_dir=run)) as running:
        page = running.open_browser(opener=opened.append)
        assert opened == [page.as_uri()] and running.token not in opened[0]  # the command line holds no token
        assert stat.S_IMODE(page.stat().st_mode) == 0o600 and stat.S_IMODE(page.parent.stat().st_mode) == 0o700
        assert f"url={running.url}" in page.read_text(encoding="utf-8")
    assert not page.exists() and not page.parent.exists()  # deleted when the session ends
    assert running.redirect_page is None


def test_the_command_opens_the_browser_without_the_token_and_cleans_up(
        trained: tuple[InteractiveNetwork, Path, Path], tmp_path: Path) -> None:
    _, run, image = trained
    browser = tmp_path / "browser.sh"  # stands in for the browser: records what it was started with
    browser.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\npage="${1#file://}"\n'
                       'stat -c %a "$page" > "$0.mode"\ncp "$page" "$0.page"\n')
    browser.chmod(0o700)
    command = [sys.executable, "-c", "from clinseg.cli.main import app; app(prog_name='clinseg')", "interact",
               str(run), str(image), "--device", "cpu", "--out", str(tmp_path / "pred")]
    with (tmp_path / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200",
                                        "BROWSER": str(browser)})
    try:
        url = [process.stdout.readline() for _ in range(5)][-1].strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:"), (tmp_path / "stderr.txt").read_text()
        deadline = time.monotonic() + 30
        while not (tmp_path / "browser.sh.page").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        args = (tmp_path / "browser.sh.args").read_text().split()
        token = Address.parse(url).token
        assert len(args) == 1 and args[0].startswith("file:///") and token not in args[0]
        assert (tmp_path / "browser.sh.mode").read_text().strip() == "600"
        assert f"url={url}" in (tmp_path / "browser.sh.page").read_text()
        page = Path(args[0][len("file://"):])
        assert page.is_file()
    finally:
        process.send_signal(signal.SIGTERM)  # stops like Ctrl-C: the redirect page is deleted
        process.wait(timeout=20)
        process.stdout.close()  # type: ignore[union-attr]
    assert process.returncode == 0 and not page.exists() and not page.parent.exists()


def _post_head(server: ViewerServer, port: int, length: int) -> bytes:
    return (f"POST /api/click HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Clinseg-Token: {server.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
