"""The viewer's local web server: one static page and a small JSON API over a :class:`ViewerSession`.

``clinseg interact RUN IMAGE`` serves the page on ``http://127.0.0.1:<port>/`` (standard library only, no
JavaScript build step, nothing loaded from the internet). The page shows a slice with the current
structure's mask in blue and the clicks as dots; the mouse:

* left click — foreground click ("this is the structure"); right click or shift+click — background click;
* mouse wheel or the slider — move through slices; the view selector — axial, coronal or sagittal (clicks
  work in every view);
* with "Brush" on, drag to paint in the axial view, right-drag or shift-drag to erase;
* Undo (Ctrl+Z) takes back the last click or stroke; Clear forgets the structure's clicks and strokes.

"Save prediction" writes the structure's mask (default ``<RUN>/interact/<case>/<structure>.nii.gz``);
"Save corrections to dataset" adds the image and every touched structure to a dataset folder (default
``<RUN>/corrections`` or ``--dataset``), ready for ``clinseg train NEWDATASET --out RUN2 --init ...``.

API (JSON bodies and answers; an error answers ``{"error": message}`` with status 400, never a traceback):

==========================  ==============================================================================
``GET /``                   the page (``static/index.html``, ``viewer.js``, ``viewer.css``)
``GET /api/state``          :meth:`ViewerSession.summary` (shape, structures, clicks, voxels, mask_hash …)
``GET /api/slice``          PNG of ``?axis=0&index=12`` (0 axial, 1 coronal, 2 sagittal)
``POST /api/click``         ``{z, y, x, foreground}``
``POST /api/undo``          take back the last click/stroke; ``/api/clear`` forgets the structure
``POST /api/select``        ``{structure}``
``POST /api/brush``         ``{z, points: [[y, x], ...], radius, erase}``
``POST /api/save``          ``{path?}`` -> ``{path}``
``POST /api/save-corrections``  ``{dataset?, case?}`` -> ``{dataset, files}``
==========================  ==============================================================================

Every POST answers with the new state (plus what it saved). Requests are served one at a time on the
session (a lock), so the page never sees a half-updated mask.
"""

from __future__ import annotations

import json
import logging
import threading
import webbrowser
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

from clinseg.errors import ClinsegError
from clinseg.interactive.viewer.session import ViewerSession

log = logging.getLogger(__name__)

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
    "/viewer.css": ("viewer.css", "text/css; charset=utf-8"),
}
_MAX_BODY = 1 << 20


class BadRequest(Exception):
    """A request the API cannot serve; answered with status 400 and the message."""


def _static(name: str) -> bytes:
    return resources.files("clinseg.interactive.viewer").joinpath("static", name).read_bytes()


def _field(body: dict, name: str, kind: Callable[[Any], Any], default: Any = ...) -> Any:
    if name not in body or body[name] is None:
        if default is ...:
            raise BadRequest(f"missing field {name!r}")
        return default
    try:
        return kind(body[name])
    except (TypeError, ValueError):
        raise BadRequest(f"field {name!r} has an invalid value {body[name]!r}") from None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(value)


class _Api:
    """The API's actions on a session: each takes the parsed body and returns the JSON answer."""

    def __init__(self, session: ViewerSession) -> None:
        self.session = session

    def click(self, body: dict) -> dict:
        s = self.session
        s.click(_field(body, "z", int), _field(body, "y", int), _field(body, "x", int),
                foreground=_field(body, "foreground", _flag, True))
        return s.summary()

    def undo(self, body: dict) -> dict:
        done = self.session.undo()
        return {**self.session.summary(), "message": "undone" if done else "nothing to undo"}

    def clear(self, body: dict) -> dict:
        self.session.clear()
        return self.session.summary()

    def select(self, body: dict) -> dict:
        self.session.select(_field(body, "structure", str))
        return self.session.summary()

    def brush(self, body: dict) -> dict:
        points = _field(body, "points", list)
        try:
            pts = [(float(p[0]), float(p[1])) for p in points]
        except (TypeError, ValueError, IndexError):
            raise BadRequest("field 'points' must be a list of [y, x] pairs") from None
        self.session.brush(_field(body, "z", int), pts, _field(body, "radius", float, 3.0),
                           erase=_field(body, "erase", _flag, False))
        return self.session.summary()

    def save(self, body: dict) -> dict:
        path = self.session.save_prediction(_field(body, "path", str, None) or None)
        return {**self.session.summary(), "path": str(path), "message": f"saved {path}"}

    def save_corrections(self, body: dict) -> dict:
        dataset = _field(body, "dataset", str, None) or None
        files = self.session.save_corrections(dataset, _field(body, "case", str, None) or None)
        root = files[-1].parent  # dataset.json is written last
        touched = ", ".join(self.session.touched)
        return {**self.session.summary(), "dataset": str(root), "files": [str(f) for f in files],
                "message": f"saved {self.session.case_id} ({touched}) into {root}"}


def _handler(api: _Api, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    posts: dict[str, Callable[[dict], dict]] = {
        "/api/click": api.click,
        "/api/undo": api.undo,
        "/api/clear": api.clear,
        "/api/select": api.select,
        "/api/brush": api.brush,
        "/api/save": api.save,
        "/api/save-corrections": api.save_corrections,
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "clinseg-viewer"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, payload: dict, status: int = HTTPStatus.OK) -> None:
            self._send(status, json.dumps(payload).encode("utf-8"), "application/json")

        def _guarded(self, action: Callable[[], None]) -> None:
            try:
                action()
            except (BadRequest, ClinsegError, ValueError) as exc:
                self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
            except Exception as exc:  # the page gets one line, the log the traceback
                log.exception("viewer request %s failed", self.path)
                self._json({"error": f"{type(exc).__name__}: {exc}"}, HTTPStatus.BAD_REQUEST)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path in _STATIC:
                name, content_type = _STATIC[url.path]
                self._guarded(lambda: self._send(HTTPStatus.OK, _static(name), content_type))
            elif url.path == "/api/state":
                self._guarded(lambda: self._locked_json(api.session.summary))
            elif url.path == "/api/slice":
                self._guarded(lambda: self._slice(parse_qs(url.query)))
            else:
                self._json({"error": f"not found: {url.path}"}, HTTPStatus.NOT_FOUND)

        def do_POST(self) -> None:
            url = urlparse(self.path)
            action = posts.get(url.path)
            if action is None:
                self._json({"error": f"not found: {url.path}"}, HTTPStatus.NOT_FOUND)
                return
            self._guarded(lambda: self._locked_json(lambda: action(self._body())))

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                raise BadRequest(f"request body too large ({length} bytes)")
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                raise BadRequest(f"the request body is not JSON ({exc})") from None
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            return body

        def _locked_json(self, produce: Callable[[], dict]) -> None:
            with lock:
                payload = produce()
            self._json(payload)

        def _slice(self, query: dict[str, list[str]]) -> None:
            params = {k: v[-1] for k, v in query.items()}
            axis = _field(params, "axis", int, 0)
            index = _field(params, "index", int)
            with lock:
                png = api.session.slice_png(axis, index)
            self._send(HTTPStatus.OK, png, "image/png")

    return Handler


class ViewerServer:
    """A running viewer: serves in a background thread until :meth:`shutdown`.

    Attributes
    ----------
    url : the page's address, e.g. ``http://127.0.0.1:8765/``.
    session : the session it serves.
    """

    def __init__(self, session: ViewerSession, host: str, port: int) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler(_Api(session), self._lock))
        self._httpd.daemon_threads = True
        bound_host, bound_port = self._httpd.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="clinseg-viewer", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here)."""
        self._thread.join(timeout)

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ViewerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def serve(session: ViewerSession, host: str = "127.0.0.1", port: int = 0, open_browser: bool = False) -> ViewerServer:
    """Serve ``session`` on ``host:port`` (port 0 picks a free one) in a background thread.

    Returns the running :class:`ViewerServer`; its ``url`` is the page. ``open_browser`` opens it in the
    default web browser.
    """
    server = ViewerServer(session, host, port)
    log.info("viewer at %s", server.url)
    if open_browser:
        webbrowser.open(server.url)
    return server
