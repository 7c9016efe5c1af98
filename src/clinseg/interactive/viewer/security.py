"""Who may drive the viewer: the checks every request to ``clinseg interact``'s server passes first.

The viewer writes files, so a request must come from the page the person opened, not from any other web page
in their browser (cross-site requests, DNS rebinding) nor from another local user who found the port:

* **token** — a random per-session secret (:func:`secrets.token_urlsafe`, 256 bits) in the address the
  command prints (``http://127.0.0.1:PORT/?token=…``). Every request carries it: the page and the slice
  images in the ``token`` query parameter, the page's API calls in the ``X-Clinseg-Token`` header. Compared
  in constant time (:func:`hmac.compare_digest`).
* **Host** — must be ``127.0.0.1:PORT`` or ``localhost:PORT``, the address the server is bound to: a page of
  another site that rebinds its name to 127.0.0.1 sends its own name and is refused.
* **Origin** — when a browser sends one, it must be the viewer's own (``http://127.0.0.1:PORT`` or
  ``http://localhost:PORT``).
* **JSON only** — a POST body must be ``Content-Type: application/json`` (a web form or a ``text/plain``
  fetch of another page is refused), at most :data:`MAX_BODY_BYTES`, and arrive within a timeout
  (:func:`read_body`), before the server takes the session's lock.

Refusals are :class:`Refused` with the HTTP status to answer (403, 411, 413, 415, 408 …).
"""

from __future__ import annotations

import hmac
import secrets
import socket
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import BinaryIO

#: Host names the viewer may be reached (and bound) by: loopback only.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
#: Header that carries the token on the page's API calls.
TOKEN_HEADER = "X-Clinseg-Token"
#: Query parameter that carries the token on page and image requests.
TOKEN_QUERY = "token"
#: Largest request body accepted (bytes).
MAX_BODY_BYTES = 1 << 20
#: Seconds a client has to send a request body (and to send the next request on a kept-alive connection).
BODY_TIMEOUT_S = 10.0


class Refused(Exception):
    """A request the viewer will not serve: answered with ``status`` and ``{"error": message}``.

    Parameters
    ----------
    message : one readable line saying what was refused and why.
    status : the HTTP status of the answer (default 400).
    """

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = int(status)


def new_token() -> str:
    """A fresh session token: 32 random bytes, URL-safe base64 (43 characters of ``A-Za-z0-9_-``)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AccessPolicy:
    """The token and the address of one running viewer; :meth:`check` refuses requests of anyone else.

    Parameters
    ----------
    token : the session's secret (:func:`new_token`).
    port : the port the server is bound to on 127.0.0.1.

    Examples
    --------
    >>> policy = AccessPolicy("s3cret", 8765)
    >>> policy.check(host="localhost:8765", origin=None, token="s3cret")
    >>> try:
    ...     policy.check(host="evil.example:8765", origin=None, token="s3cret")
    ... except Refused as exc:
    ...     print(exc.status, exc)
    403 Host header 'evil.example:8765' is not this viewer's address (127.0.0.1:8765 or localhost:8765)
    """

    token: str = field(repr=False)
    port: int

    @property
    def hosts(self) -> tuple[str, ...]:
        """Accepted ``Host`` header values (lower case)."""
        bare = LOOPBACK_NAMES if self.port == 80 else ()
        return tuple(f"{name}:{self.port}" for name in LOOPBACK_NAMES) + bare

    @property
    def origins(self) -> tuple[str, ...]:
        """Accepted ``Origin`` header values: the viewer's own page."""
        return tuple(f"http://{host}" for host in self.hosts)

    def check(self, host: str | None, origin: str | None, token: str | None) -> None:
        """Refuse (:class:`Refused`, 403) a request whose ``Host`` is not the viewer's address, whose
        ``Origin`` (when given) is another site's, or whose token is missing or wrong."""
        if host is None or host.strip().lower() not in self.hosts:
            raise Refused(f"Host header {host!r} is not this viewer's address "
                          f"({' or '.join(self.hosts[:2])})", HTTPStatus.FORBIDDEN)
        if origin is not None and origin.strip().lower() not in self.origins:
            raise Refused(f"Origin {origin!r} is not this viewer's page; requests of other web pages are refused",
                          HTTPStatus.FORBIDDEN)
        if not token_matches(token, self.token):
            raise Refused("missing or wrong viewer token: open the address 'clinseg interact' printed "
                          f"(http://127.0.0.1:{self.port}/?{TOKEN_QUERY}=...)", HTTPStatus.FORBIDDEN)


def token_matches(given: str | None, token: str) -> bool:
    """True when ``given`` is ``token``; constant-time (:func:`hmac.compare_digest`), False for None."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def check_json_content_type(content_type: str) -> None:
    """Refuse (415) a POST body that is not ``application/json`` (parameters such as ``charset`` allowed)."""
    if content_type.lower() != "application/json":
        raise Refused(f"a POST body must be Content-Type: application/json, not {content_type!r}",
                      HTTPStatus.UNSUPPORTED_MEDIA_TYPE)


def body_length(content_length: str | None, transfer_encoding: str | None, limit: int = MAX_BODY_BYTES) -> int:
    """The body size a POST announces: refuses chunked bodies and a missing Content-Length (411), a bad
    one (400) and one over ``limit`` bytes (413)."""
    if transfer_encoding is not None or content_length is None:
        raise Refused("a POST needs a Content-Length header (chunked bodies are not accepted)",
                      HTTPStatus.LENGTH_REQUIRED)
    try:
        length = int(content_length)
    except ValueError:
        raise Refused(f"invalid Content-Length {content_length!r}") from None
    if length < 0:
        raise Refused(f"invalid Content-Length {content_length!r}")
    if length > limit:
        raise Refused(f"request body too large ({length} bytes; at most {limit})",
                      HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    return length


def read_body(stream: BinaryIO, connection: socket.socket, length: int, timeout: float = BODY_TIMEOUT_S) -> bytes:
    """Read exactly ``length`` bytes of a request body within ``timeout`` seconds in all.

    The deadline is for the whole body, so a client that withholds it, or sends it a byte at a time, is
    answered 408 after ``timeout`` seconds whatever it does. ``stream`` is the connection's buffered reader
    (``rfile``); the socket's timeout is left at the time that remained.
    """
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    received = 0
    while received < length:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _too_slow(received, length, timeout)
        connection.settimeout(remaining)
        try:
            chunk = stream.read1(min(length - received, 1 << 16))  # type: ignore[attr-defined]
        except TimeoutError:
            raise _too_slow(received, length, timeout) from None
        if not chunk:
            raise Refused(f"the request body ended after {received} of {length} bytes")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def _too_slow(received: int, length: int, timeout: float) -> Refused:
    return Refused(f"the request body did not arrive within {timeout:g} s ({received} of {length} bytes)",
                   HTTPStatus.REQUEST_TIMEOUT)
