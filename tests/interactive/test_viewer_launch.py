"""Opening the viewer without its token on the browser's command line (issue 22): the private redirect page."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clinseg.interactive.viewer.launch import PAGE_NAME, remove_redirect_page, write_redirect_page

URL = "http://127.0.0.1:8765/?token=abc_DEF-123"


def test_the_redirect_page_is_private_and_leads_to_the_viewer(tmp_path: Path) -> None:
    page = write_redirect_page(URL, tmp_path)
    assert page.name == PAGE_NAME and page.parent.parent == tmp_path
    assert stat.S_IMODE(page.stat().st_mode) == 0o600  # only its owner can read the token
    assert stat.S_IMODE(page.parent.stat().st_mode) == 0o700  # nor list or enter its folder
    text = page.read_text(encoding="utf-8")
    assert f'<meta http-equiv="refresh" content="0;url={URL}">' in text and f'href="{URL}"' in text
    assert [p.name for p in page.parent.iterdir()] == [PAGE_NAME]  # no temporary left beside it
    remove_redirect_page(page)
    assert not page.exists() and not page.parent.exists() and list(tmp_path.iterdir()) == []
    remove_redirect_page(page)  # already gone: nothing to do
    remove_redirect_page(None)


def test_the_address_is_escaped_and_must_be_the_loopback_viewer(tmp_path: Path) -> None:
    page = write_redirect_page('http://localhost:1/?token=a"b<c', tmp_path)
    assert 'url=http://localhost:1/?token=a&quot;b&lt;c"' in page.read_text(encoding="utf-8")
    for bad in ("https://example.org/?token=x", "file:///etc/passwd", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="loopback"):
            write_redirect_page(bad, tmp_path)
