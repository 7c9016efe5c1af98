"""Read and write images with their geometry (NIfTI, NRRD, MHA — anything SimpleITK reads).

Arrays are ``(Z, Y, X)`` (SimpleITK's array order); :class:`Geometry` keeps spacing and origin in mm in
``(x, y, z)`` order and the 3x3 direction cosines row-major, exactly as ITK does, so a mask written with the
geometry of its image opens aligned in 3D Slicer and ITK-SNAP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from clinseg.errors import ImageReadError
from clinseg.io.atomic import atomic_path

#: File endings clinseg reads and writes.
SUPPORTED_ENDINGS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Geometry:
    """Where a voxel grid lies in patient space.

    Parameters
    ----------
    spacing : voxel size in mm, ``(x, y, z)``.
    origin : position of the first voxel centre in mm, ``(x, y, z)``.
    direction : 3x3 direction cosines, row-major (9 floats), identity by default.
    shape : array shape ``(Z, Y, X)`` of the grid.
    """

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    shape: tuple[int, int, int] = (0, 0, 0)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing in array axis order ``(Z, Y, X)``, for spacing-aware array operations."""
        return (self.spacing[2], self.spacing[1], self.spacing[0])

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in millilitres (cm³)."""
        return float(np.prod(self.spacing)) / 1000.0

    def with_shape(self, shape: tuple[int, int, int]) -> Geometry:
        """A copy with another array shape (same spacing, origin and direction)."""
        return Geometry(self.spacing, self.origin, self.direction, tuple(int(s) for s in shape))  # type: ignore[arg-type]

    def mismatch(self, other: Geometry, tol: float = 1e-3) -> list[str]:
        """Human-readable differences with ``other`` (empty when the grids coincide within ``tol``)."""
        problems = []
        if tuple(self.shape) != tuple(other.shape):
            problems.append(f"shape {tuple(self.shape)} vs {tuple(other.shape)}")
        for name in ("spacing", "origin", "direction"):
            a, b = np.asarray(getattr(self, name)), np.asarray(getattr(other, name))
            if a.shape != b.shape or not np.allclose(a, b, atol=tol, rtol=tol):
                problems.append(f"{name} {_fmt(a)} vs {_fmt(b)}")
        return problems


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v + 0.0:.4g}" for v in np.ravel(values)) + ")"  # +0.0 turns -0 into 0


@dataclass
class Image:
    """A volume and its geometry. ``array`` is ``(Z, Y, X)``."""

    array: np.ndarray
    geometry: Geometry


def has_supported_ending(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` ends with one of :data:`SUPPORTED_ENDINGS`."""
    name = str(path).lower()
    return any(name.endswith(e) for e in SUPPORTED_ENDINGS)


def strip_ending(name: str) -> str:
    """File name without its image ending (``case_0000.nii.gz`` -> ``case_0000``)."""
    low = name.lower()
    for ending in SUPPORTED_ENDINGS:
        if low.endswith(ending):
            return name[: -len(ending)]
    return name


def _geometry_of(img: sitk.Image | sitk.ImageFileReader) -> Geometry:
    size = img.GetSize()
    if len(size) != 3:
        raise ValueError(f"expected a 3D image, got {len(size)}D")
    return Geometry(
        spacing=tuple(float(s) for s in img.GetSpacing()),  # type: ignore[arg-type]
        origin=tuple(float(o) for o in img.GetOrigin()),  # type: ignore[arg-type]
        direction=tuple(float(d) for d in img.GetDirection()),
        shape=(int(size[2]), int(size[1]), int(size[0])),
    )


def read_geometry(path: str | os.PathLike[str]) -> Geometry:
    """Read only the header of an image (fast: no voxel data)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        if reader.GetDimension() != 3:
            raise ImageReadError(f"{path}: expected a 3D image, got {reader.GetDimension()}D")
        size = reader.GetSize()
        return Geometry(
            spacing=tuple(float(s) for s in reader.GetSpacing()),  # type: ignore[arg-type]
            origin=tuple(float(o) for o in reader.GetOrigin()),  # type: ignore[arg-type]
            direction=tuple(float(d) for d in reader.GetDirection()),
            shape=(int(size[2]), int(size[1]), int(size[0])),
        )
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: unreadable or truncated image ({_first_line(exc)})") from exc


def read_image(path: str | os.PathLike[str], dtype: np.dtype | type | None = None) -> Image:
    """Read a 3D image and its geometry.

    Parameters
    ----------
    path : a ``.nii``/``.nii.gz``/``.nrrd``/``.mha``/``.mhd`` file.
    dtype : optional dtype to cast the array to.

    Raises
    ------
    ImageReadError
        When the file is missing, truncated, not 3D or not an image; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: file not found")
    if str(path).lower().endswith((".nii", ".nii.gz")):
        return _read_nifti(path, dtype)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImageReadError(f"{path}: unreadable or truncated image ({_first_line(exc)})") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(f"{path}: vector images are not supported (one file per channel expected)")
    try:
        geometry = _geometry_of(img)
    except ValueError as exc:
        raise ImageReadError(f"{path}: {exc}") from exc
    array = sitk.GetArrayFromImage(img)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return Image(array, geometry)


def _read_nifti(path: Path, dtype: np.dtype | type | None) -> Image:
    """NIfTI voxels through nibabel, geometry through ITK's header reader.

    ITK's NIfTI reader silently replaces NaN voxels by 0, which would hide corrupt data from validation;
    nibabel keeps them. The voxel order on disk is the same for both, so the array is the transposed
    ``dataobj`` and the geometry (LPS, as ITK reports it) matches what :func:`write_image` wrote.
    """
    geometry = read_geometry(path)
    try:
        nii = nib.load(str(path))
        data = np.asanyarray(nii.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt/truncated files
        raise ImageReadError(f"{path}: unreadable or truncated image ({type(exc).__name__}: {exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ImageReadError(f"{path}: expected a 3D image, got shape {data.shape}")
    array = np.ascontiguousarray(data.T)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return Image(array, geometry)


def write_image(array: np.ndarray, geometry: Geometry, path: str | os.PathLike[str]) -> None:
    """Write a ``(Z, Y, X)`` array with ``geometry`` to ``path`` atomically (format from the ending).

    Boolean arrays are written as uint8; the array is never modified.
    """
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"write_image expects a (Z, Y, X) array, got shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if geometry.shape != (0, 0, 0) and tuple(array.shape) != tuple(geometry.shape):
        raise ValueError(f"{path}: array shape {array.shape} does not match geometry shape {geometry.shape}")
    img = sitk.GetImageFromArray(array)
    img.SetSpacing([float(s) for s in geometry.spacing])
    img.SetOrigin([float(o) for o in geometry.origin])
    img.SetDirection([float(d) for d in geometry.direction])
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=str(path).endswith((".gz", ".nrrd", ".mha")))


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # ITK messages: keep the most informative line (the description), not the source location.
    for line in lines:
        if "Description:" in line:
            return line.split("Description:", 1)[1].strip()
    return lines[-1] if lines else type(exc).__name__
