"""Reading damaged DICOM without tracebacks: values that may not decode, exceptions as one line.

pydicom converts values lazily, so reading a garbled tag or a cut sequence raises (``ValueError``,
``struct.error``, ``NotImplementedError`` …) at the first access, anywhere. The importer reads through
these helpers and reports what it cannot read instead of raising.
"""

from __future__ import annotations

from pydicom.dataset import Dataset


def text(ds: Dataset, keyword: str) -> str:
    """The value of ``keyword`` as stripped text; empty when absent, empty or not decodable."""
    try:
        value = ds.get(keyword)
    except Exception:  # a value pydicom cannot convert
        return ""
    return "" if value is None else str(value).strip()


def describe(exc: BaseException, limit: int = 200) -> str:
    """``"Type: message"`` on one line, at most ``limit`` characters, for a report cell or an error message.

    Examples
    --------
    >>> describe(ValueError("cannot reshape\\narray"))
    'ValueError: cannot reshape array'
    """
    message = " ".join(str(exc).split())
    message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"
