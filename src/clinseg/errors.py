"""The small error hierarchy of clinseg.

Every message names the file (when there is one) and the problem, so the CLI can print it as one line.
"""

from __future__ import annotations


class ClinsegError(Exception):
    """Base class of every error clinseg raises on purpose."""


class ImageReadError(ClinsegError):
    """An image file could not be read (missing, truncated, unsupported, or bad voxel values)."""


class DatasetError(ClinsegError):
    """A dataset folder or its ``dataset.json`` is malformed or inconsistent."""


class ConfigError(ClinsegError):
    """A configuration file or option is invalid."""


class CheckpointError(ClinsegError):
    """A checkpoint or run folder is missing, corrupt or incompatible."""
