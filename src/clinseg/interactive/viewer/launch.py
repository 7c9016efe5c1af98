"""Open the viewer in a browser without putting its token on the browser's command line.

``webbrowser.open(url)`` starts the browser with the address as a process argument, which every local user
can read (``ps``, ``/proc/<pid>/cmdline``) — and the address holds the session token. As Jupyter does, the
viewer instead writes a small private HTML page that redirects to the tokenised address and opens *that
file*: the browser's command line then names only the file, in a folder only its owner can enter (0700), and
the file itself is 0600. The page is deleted when the session ends (:func:`remove_redirect_page`).

Examples
--------
>>> page = write_redirect_page("http://127.0.0.1:8765/?token=s3cret")  # doctest: +SKIP
>>> page.stat().st_mode & 0o777                                         # doctest: +SKIP
384
>>> remove_redirect_page(page)                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import html
import os
import tempfile
from pathlib import Path

from clinseg.io.atomic import atomic_path

#: File name of the redirect page inside its private folder.
PAGE_NAME = "open-viewer.html"
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="refresh" content="0;url={url}">
  <meta name="referrer" content="no-referrer">
  <title>clinseg interact</title>
</head>
<body>
  <p>Opening the clinseg viewer… If nothing happens, <a href="{url}">follow this link</a>.</p>
</body>
</html>
"""


def write_redirect_page(url: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Write a page that sends the browser to ``url``, readable by its owner only; returns its path.

    Parameters
    ----------
    url : the viewer's tokenised address (``http://127.0.0.1:PORT/?token=...``).
    directory : where to make the page's private folder (default the system's temporary folder).

    Returns
    -------
    ``<private folder>/open-viewer.html``: the folder is new and 0700, the file 0600.
    """
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"the viewer's address is a loopback http address, not {url!r}")
    folder = Path(tempfile.mkdtemp(prefix="clinseg-viewer-", dir=directory))  # 0700, only ours
    page = folder / PAGE_NAME
    with atomic_path(page) as tmp:
        tmp.write_text(_PAGE.format(url=html.escape(url, quote=True)), encoding="utf-8")
    os.chmod(page, 0o600)  # the atomic helper gives a plain open()'s permissions; the folder hid it meanwhile
    return page


def remove_redirect_page(page: str | os.PathLike[str] | None) -> None:
    """Delete a page of :func:`write_redirect_page` and its private folder (nothing when already gone)."""
    if page is None:
        return
    path = Path(page)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError, OSError):
        path.parent.rmdir()
