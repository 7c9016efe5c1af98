"""Image input/output with geometry, and atomic writes."""

from clinseg.io.atomic import atomic_path, write_bytes, write_text
from clinseg.io.image import (
    SUPPORTED_ENDINGS,
    Geometry,
    Image,
    has_supported_ending,
    read_geometry,
    read_image,
    strip_ending,
    write_image,
)

__all__ = [
    "SUPPORTED_ENDINGS",
    "Geometry",
    "Image",
    "atomic_path",
    "has_supported_ending",
    "read_geometry",
    "read_image",
    "strip_ending",
    "write_bytes",
    "write_image",
    "write_text",
]
