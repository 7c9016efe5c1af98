"""The viewer's local web server: one static page and a small JSON API over a :class:`ViewerSession`.

``clinseg interact RUN IMAGE`` serves the page on ``http://127.0.0.1:<port>/?token=<token>`` (standard library
only, no JavaScript build step, nothing loaded from the internet). The page shows a slice with the current
structure's mask in blue and the clicks as dots; the mouse:

* left click — foreground click ("this is the structure"); right click or shift+click — background click;
* mouse wheel or the slider — move through slices; the view selector — axial, coronal or sagittal (clicks
  and the brush work in every view, each shown in radiological orientation whatever the image's stored
  direction: :mod:`~clinseg.interactive.viewer.orientation`);
* with "Brush" on, drag to paint, right-drag or shift-drag to erase;
* Ctrl+drag — window (drag right: wider) and level (drag down: higher); CT presets for a CT-like image;
* Ctrl+wheel or the +/- buttons — zoom; middle-drag or Alt+drag — pan;
* Undo (Ctrl+Z) takes back the last click or stroke; Clear forgets the structure's clicks and strokes.

Rendering stays on the server (a PNG per view): the page sends what it shows — view, slice, window, level,
overlay opacity — as query parameters, and draws only what needs no voxel data (zoom and pan are CSS, the
orientation letters and the legend are HTML). So the voxels never leave the server, the mapping between the
screen and the stored grid exists once (in Python, tested), and a slice is one small request.

"Save prediction" writes the structure's mask to ``<OUT>/<case>/<structure>.nii.gz`` (``OUT`` default
``<RUN>/interact``); "Save corrections to dataset" adds the image and every touched structure to the dataset
folder (default ``<RUN>/corrections`` or ``--dataset``), ready for ``clinseg train NEWDATASET --out RUN2
--init ...``. Both places and the case id are fixed when the server starts: the page cannot choose them.

Who may call it (:mod:`clinseg.interactive.viewer.security`): every request carries the session token (the
``X-Clinseg-Token`` header, or the ``token`` query parameter for the page and the slice images), a ``Host`` of
``127.0.0.1:PORT`` or ``localhost:PORT`` and, if any, the viewer's own ``Origin`` — else 403. POST bodies are
``application/json`` (else 415), at most 1 MiB (413) and are read, within 10 s (408), before the session's
lock is taken, so a client that withholds its body never blocks the page.

API (JSON bodies and answers; an error answers ``{"error": message}`` with status 400 — or the refusal's
status above — never a traceback):

==========================  ==============================================================================
``GET /?token=T``           the page (``static/index.html``, ``viewer.js``, ``viewer.css``, each ``?token=T``)
``GET /api/state``          :meth:`ViewerSession.summary` (shape, structures, clicks, voxels, mask_hash …)
``GET /api/slice``          PNG of ``?axis=0&index=12&token=T`` (0 axial, 1 coronal, 2 sagittal; slices of the
                            display grid), optional ``width``, ``level`` (window, image units) and ``opacity``
``POST /api/click``         ``{axis, index, row, col, foreground}`` (a pixel of a view) or ``{z, y, x,
                            foreground}`` (a stored voxel)
``POST /api/undo``          take back the last click/stroke; ``/api/clear`` forgets the structure
``POST /api/select``        ``{structure}``
``POST /api/brush``         ``{axis, index, points: [[row, col], ...], radius, erase}`` (pixels of a view) or
                            ``{z, points: [[y, x], ...], radius, erase}`` (stored axial slice ``z``)
``POST /api/save``          ``{}`` -> ``{path}``
``POST /api/save-corrections``  ``{}`` -> ``{case_saved, dataset, files}``
==========================  ==============================================================================

A body field a request does not take is refused (400); ``path``, ``dataset`` and ``case`` with a message
that says they are fixed on the command line. The actions themselves are :class:`~.api.Api`'s. Every POST
answers with the new state (plus what it saved). Requests are served one at a time on the session (a lock),
so the page never sees a half-updated mask.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import webbrowser
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, cast
from urllib.parse import ParseResult, parse_qs, urlparse

from clinseg.errors import ClinsegError
from clinseg.interactive.viewer.api import Api, BadRequest, check_fields, slice_params
from clinseg.interactive.viewer.launch import remove_redirect_page, write_redirect_page
from clinseg.interactive.viewer.security import (
    BODY_TIMEOUT_S,
    LOOPBACK_NAMES,
    TOKEN_HEADER,
    TOKEN_QUERY,
    AccessPolicy,
    Refused,
    body_length,
    check_json_content_type,
    new_token,
    read_body,
)
from clinseg.interactive.viewer.session import ViewerSession

log = logging.getLogger(__name__)

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
    "/viewer.css": ("viewer.css", "text/css; charset=utf-8"),
}
#: Placeholder in ``index.html`` replaced by the session token (for the script and style sheet addresses).
_TOKEN_SLOT = b"__CLINSEG_TOKEN__"
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}
_TOKEN_IN_TEXT = re.compile(rf"({TOKEN_QUERY}=)[^&\s\"]+")


def _static(name: str, token: str) -> bytes:
    data = resources.files("clinseg.interactive.viewer").joinpath("static", name).read_bytes()
    return data.replace(_TOKEN_SLOT, token.encode("ascii"))


def _redact(text: str) -> str:
    """``text`` with the value of every ``token=`` parameter hidden (for the log)."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text)


class _HttpServer(ThreadingHTTPServer):
    """The HTTP server with what its handlers need: the API, the session lock, the access policy."""

    daemon_threads = True
    api: Api
    lock: threading.Lock
    policy: AccessPolicy
    body_timeout: float


class _Handler(BaseHTTPRequestHandler):
    """One connection: checks the caller (:meth:`_serve`), then answers GET and POST requests."""

    server_version = "clinseg-viewer"

    @property
    def timeout(self) -> float:  # type: ignore[override]  # socket timeout while waiting for a request
        return self._server.body_timeout

    @property
    def _server(self) -> _HttpServer:
        return cast(_HttpServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), _redact(format % args))

    def _send(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in _HEADERS.items():
            self.send_header(name, value)
        if close:  # the request's body may be unread: the connection cannot carry another request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: dict, status: int = HTTPStatus.OK, close: bool = False) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json", close)

    def _serve(self, answer: Callable[[ParseResult], None]) -> None:
        """Check the caller, then ``answer(url)``; every error becomes one JSON line with its status."""
        try:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            token = self.headers.get(TOKEN_HEADER) or (query.get(TOKEN_QUERY) or [None])[-1]
            self._server.policy.check(self.headers.get("Host"), self.headers.get("Origin"), token)
            answer(url)
        except Refused as exc:
            self._json({"error": str(exc)}, exc.status, close=True)
        except (ClinsegError, ValueError) as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST, close=True)
        except Exception as exc:  # the page gets one line, the log the traceback
            log.exception("viewer request %s failed", _redact(self.path))
            self._json({"error": f"{type(exc).__name__}: {exc}"}, HTTPStatus.BAD_REQUEST, close=True)

    def do_GET(self) -> None:
        self._serve(self._get)

    def do_POST(self) -> None:
        self._serve(self._post)

    def _get(self, url: ParseResult) -> None:
        api, lock = self._server.api, self._server.lock
        if url.path in _STATIC:
            name, content_type = _STATIC[url.path]
            self._send(HTTPStatus.OK, _static(name, self._server.policy.token), content_type)
        elif url.path == "/api/state":
            with lock:
                payload = api.session.summary()
            self._json(payload)
        elif url.path == "/api/slice":
            self._slice(parse_qs(url.query))
        else:
            raise Refused(f"not found: {url.path}", HTTPStatus.NOT_FOUND)

    def _post(self, url: ParseResult) -> None:
        route = self._server.api.posts().get(url.path)
        if route is None:
            raise Refused(f"not found: {url.path}", HTTPStatus.NOT_FOUND)
        fields, action = route
        body = self._body()  # read in full before taking the lock: a slow client never holds it
        check_fields(body, fields)
        with self._server.lock:
            payload = action(body)
        self._json(payload)

    def _body(self) -> dict:
        check_json_content_type(self.headers.get_content_type())
        length = body_length(self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding"))
        raw = read_body(self.rfile, self.connection, length, self._server.body_timeout)
        self.connection.settimeout(self.timeout)
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def _slice(self, query: dict[str, list[str]]) -> None:
        axis, index, window, opacity = slice_params({k: v[-1] for k, v in query.items()})
        with self._server.lock:
            png = self._server.api.session.slice_png(axis, index, window, opacity)
        self._send(HTTPStatus.OK, png, "image/png")


class ViewerServer:
    """A running viewer: serves in a background thread until :meth:`shutdown`.

    Parameters
    ----------
    session : the session to serve.
    host : ``127.0.0.1`` or ``localhost`` (loopback only; anything else is refused).
    port : the port (0: a free one).
    token : the session token; default a fresh random one (:func:`~.security.new_token`).
    body_timeout : seconds a client has to send a request body.

    Attributes
    ----------
    url : the page's address with the token, e.g. ``http://127.0.0.1:8765/?token=...``.
    redirect_page : the private page :meth:`open_browser` wrote (None before, and after :meth:`shutdown`).
    origin : the server's own origin, e.g. ``http://127.0.0.1:8765``.
    token : the session token every request must carry.
    session : the session it serves.
    """

    def __init__(self, session: ViewerSession, host: str = "127.0.0.1", port: int = 0, *,
                 token: str | None = None, body_timeout: float = BODY_TIMEOUT_S) -> None:
        if host not in LOOPBACK_NAMES:
            raise ClinsegError(f"the viewer serves on the loopback address only ({' or '.join(LOOPBACK_NAMES)}), "
                               f"not {host!r}")
        self.session = session
        self.token = token or new_token()
        self._httpd = _HttpServer((host, port), _Handler)
        bound_host, bound_port = self._httpd.server_address[:2]
        self._httpd.api = Api(session)
        self._httpd.lock = threading.Lock()
        self._httpd.policy = AccessPolicy(self.token, int(bound_port))
        self._httpd.body_timeout = float(body_timeout)
        self.origin = f"http://{bound_host}:{bound_port}"
        self.url = f"{self.origin}/?{TOKEN_QUERY}={self.token}"
        self.redirect_page: Path | None = None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="clinseg-viewer", daemon=True)
        self._thread.start()

    def open_browser(self, opener: Callable[[str], object] = webbrowser.open) -> Path:
        """Open the page in the browser without the token on the browser's command line.

        Writes a private redirect page (:func:`~.launch.write_redirect_page`: a 0700 folder, a 0600 file) and
        opens its ``file://`` address with ``opener`` (default :func:`webbrowser.open`); the page is deleted
        by :meth:`shutdown`. Returns the page's path.
        """
        if self.redirect_page is None:
            self.redirect_page = write_redirect_page(self.url)
        opener(self.redirect_page.as_uri())
        return self.redirect_page

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server stops (Ctrl-C raises KeyboardInterrupt here)."""
        self._thread.join(timeout)

    def shutdown(self) -> None:
        """Stop serving, close the socket and delete the redirect page of :meth:`open_browser`."""
        try:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
        finally:
            remove_redirect_page(self.redirect_page)
            self.redirect_page = None

    def __enter__(self) -> ViewerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def serve(session: ViewerSession, host: str = "127.0.0.1", port: int = 0, open_browser: bool = False, *,
          body_timeout: float = BODY_TIMEOUT_S) -> ViewerServer:
    """Serve ``session`` on ``host:port`` (loopback; port 0 picks a free one) in a background thread.

    Returns the running :class:`ViewerServer`; its ``url`` is the page with the session token. ``open_browser``
    opens it in the default web browser through a private redirect page (:meth:`ViewerServer.open_browser`).
    ``body_timeout``: seconds a client has to send a request body.
    """
    server = ViewerServer(session, host, port, body_timeout=body_timeout)
    log.info("viewer at %s", server.origin)
    if open_browser:
        server.open_browser()
    return server
