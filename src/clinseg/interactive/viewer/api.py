"""The viewer's JSON API: what each request takes and does on a :class:`ViewerSession` (no HTTP here).

:class:`Api` holds one action per POST path (:meth:`Api.posts`) and :func:`slice_params` reads the query of
``GET /api/slice``; :mod:`~clinseg.interactive.viewer.server` checks the caller, parses the body and calls
them under the session's lock. A request names a place either as a pixel of a view (``axis, index, row,
col``: what the page sends, mapped to the stored voxel by the session's screen) or as stored voxel indices
(``z, y, x``: for scripts). Fields a request does not take are refused (:func:`check_fields`), the save
places with a message naming the command-line option that fixes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from clinseg.interactive.viewer.display import MASK_ALPHA, Window
from clinseg.interactive.viewer.security import Refused
from clinseg.interactive.viewer.session import ViewerSession

#: Body fields the page may never send, and the command-line option that fixes each instead.
_FIXED_AT_START = {"path": "--out", "dataset": "--dataset", "case": "--case"}


class BadRequest(Refused):
    """A request the API cannot serve; answered with status 400 and the message."""


def field(body: dict, name: str, kind: Callable[[Any], Any], default: Any = ...) -> Any:
    """``kind(body[name])``; ``default`` when the field is missing or null (refused, 400, without a default),
    and a refusal naming the field when ``kind`` rejects its value."""
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


def finite(value: Any) -> float:
    """``float(value)``, refusing NaN and infinities (ValueError)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


#: The two ways to say where: a pixel of a view (what the page sends) or a stored voxel / axial slice.
_VIEW_FIELDS = ("axis", "index")


def _form(body: dict, stored: tuple[str, ...], view: tuple[str, ...]) -> str:
    """``"view"`` or ``"stored"``: which of the two position forms ``body`` uses; refuses a mix of both."""
    has_view = any(name in body for name in view)
    has_stored = any(name in body for name in stored)
    if has_view and has_stored:
        raise BadRequest(f"give either {', '.join(view)} (a pixel of a view) or {', '.join(stored)} "
                         "(stored voxel indices), not both")
    return "view" if has_view else "stored"


def _points(body: dict) -> list[tuple[float, float]]:
    points = field(body, "points", list)
    try:
        return [(finite(p[0]), finite(p[1])) for p in points]
    except (TypeError, ValueError, IndexError):
        raise BadRequest("field 'points' must be a list of [row, col] (or [y, x]) pairs") from None


def check_fields(body: dict, allowed: tuple[str, ...]) -> None:
    """Refuse body fields a request does not take; the save locations with a message naming their option."""
    for name in body:
        if name in _FIXED_AT_START:
            raise BadRequest(f"field {name!r} is refused: where the viewer saves is fixed when it starts "
                             f"(clinseg interact ... {_FIXED_AT_START[name]}), never chosen by the page")
        if name not in allowed:
            raise BadRequest(f"unexpected field {name!r} (this request takes {', '.join(allowed) or 'none'})")


class Api:
    """The API's actions on a session: each takes the parsed body and returns the JSON answer."""

    def __init__(self, session: ViewerSession) -> None:
        self.session = session

    def click(self, body: dict) -> dict:
        s = self.session
        foreground = field(body, "foreground", _flag, True)
        if _form(body, ("z", "y", "x"), (*_VIEW_FIELDS, "row", "col")) == "view":
            s.click_view(field(body, "axis", int), field(body, "index", int), field(body, "row", int),
                         field(body, "col", int), foreground=foreground)
        else:
            s.click(field(body, "z", int), field(body, "y", int), field(body, "x", int), foreground=foreground)
        return s.summary()

    def undo(self, body: dict) -> dict:
        done = self.session.undo()
        return {**self.session.summary(), "message": "undone" if done else "nothing to undo"}

    def clear(self, body: dict) -> dict:
        self.session.clear()
        return self.session.summary()

    def select(self, body: dict) -> dict:
        self.session.select(field(body, "structure", str))
        return self.session.summary()

    def brush(self, body: dict) -> dict:
        points, radius = _points(body), field(body, "radius", finite, 3.0)
        erase = field(body, "erase", _flag, False)
        if _form(body, ("z",), _VIEW_FIELDS) == "view":
            self.session.brush_view(field(body, "axis", int), field(body, "index", int), points, radius, erase)
        else:
            self.session.brush(field(body, "z", int), points, radius, erase)
        return self.session.summary()

    def save(self, body: dict) -> dict:
        path = self.session.save_prediction()
        return {**self.session.summary(), "path": str(path), "message": f"saved {path}"}

    def save_corrections(self, body: dict) -> dict:
        saved = self.session.save_corrections()
        root = saved.files[-1].parent  # dataset.json is written last
        touched = ", ".join(self.session.touched)
        note = f" (case {saved.requested} there holds another image)" if saved.renamed else ""
        empty = [s for s in self.session.touched if not self.session.mask(s).any()]
        if empty:
            note += f"; {', '.join(empty)} saved empty (delineated as absent)"
        return {**self.session.summary(), "case_saved": saved.case_id, "dataset": str(root),
                "files": [str(f) for f in saved.files],
                "message": f"saved {saved.case_id} ({touched}) into {root}{note}"}

    def posts(self) -> dict[str, tuple[tuple[str, ...], Callable[[dict], dict]]]:
        """POST path -> (the body fields it takes, the action)."""
        return {
            "/api/click": (("axis", "index", "row", "col", "z", "y", "x", "foreground"), self.click),
            "/api/undo": ((), self.undo),
            "/api/clear": ((), self.clear),
            "/api/select": (("structure",), self.select),
            "/api/brush": (("axis", "index", "z", "points", "radius", "erase"), self.brush),
            "/api/save": ((), self.save),
            "/api/save-corrections": ((), self.save_corrections),
        }


def slice_params(query: dict[str, str]) -> tuple[int, int, Window | None, float]:
    """``(axis, index, window, opacity)`` of a ``GET /api/slice`` query: ``axis`` (default 0) and ``index`` of
    the view, the window's ``width`` and ``level`` (both or neither: None is the screen's own) and the
    overlay ``opacity`` (default :data:`~clinseg.interactive.viewer.display.MASK_ALPHA`)."""
    axis, index = field(query, "axis", int, 0), field(query, "index", int)
    width, level = field(query, "width", finite, None), field(query, "level", finite, None)
    if (width is None) != (level is None):
        raise BadRequest("give both 'width' and 'level' of the window, or neither")
    window = None if width is None else Window(width, level)
    return axis, index, window, field(query, "opacity", finite, MASK_ALPHA)
