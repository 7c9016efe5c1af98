"""Show every image the same way up, whatever its stored direction cosines: the viewer's display grid.

An image's array may run in any direction through the patient: a NIfTI or ITK direction with ``-1`` on x
stores the columns from the patient's left to right, a coronal acquisition stores its slices along the
anterior-posterior axis. Drawn as stored, such an image appears mirrored or lying on its side. The viewer
therefore draws a *display grid*: the stored ``(Z, Y, X)`` array transposed and flipped (a NumPy view, no
copy) so that its axes run, in LPS patient coordinates,

* display axis 0 towards **S**\\ uperior (the axial slice index, foot to head),
* display axis 1 towards **P**\\ osterior (the axial rows: anterior at the top),
* display axis 2 towards patient **L**\\ eft (the axial columns: patient right on the screen's left, the
  radiological convention).

For an image with the identity direction (the usual DICOM-derived NIfTI as ITK reads it) the display grid is
the stored array itself. :class:`Orientation` maps points both ways, so a click or brush stroke on the
display lands on the stored voxel under it, and the masks are kept and saved on the stored grid.

An oblique direction is shown on the nearest of these grids (each stored axis is given the patient axis its
direction cosine is largest on, as scanners label oblique series); the image is not resampled.

Examples
--------
>>> flipped_x = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
>>> o = Orientation.from_direction(flipped_x)
>>> o.axes, o.flips, o.toward
((0, 1, 2), (False, False, True), 'RPS')
>>> o.to_stored((1, 2, 3), (4, 5, 6))             # display voxel -> stored voxel (x counted from the right)
(1, 2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Patient direction each display axis runs towards, and the opposite one (LPS: x to L, y to P, z to S).
DISPLAY_TOWARD = ("S", "P", "L")
_OPPOSITE = {"L": "R", "P": "A", "S": "I", "R": "L", "A": "P", "I": "S"}
#: Letters at the borders of each view (top, bottom, left, right): axial, coronal, sagittal.
MARKERS: dict[int, tuple[str, str, str, str]] = {
    0: ("A", "P", "R", "L"),  # axial: anterior up, patient right on the screen's left
    1: ("S", "I", "R", "L"),  # coronal: superior up, patient right on the left
    2: ("S", "I", "A", "P"),  # sagittal: superior up, anterior on the left
}

Point = tuple[int, int, int]


@dataclass(frozen=True)
class Orientation:
    """How a stored ``(Z, Y, X)`` array lies on the display grid (see the module doc).

    Attributes
    ----------
    axes : for each display axis (S, P, L), the stored array axis that runs along it.
    flips : for each display axis, True when the stored axis runs the other way (towards I, A or R).
    """

    axes: tuple[int, int, int] = (0, 1, 2)
    flips: tuple[bool, bool, bool] = (False, False, False)

    @classmethod
    def from_direction(cls, direction: Sequence[float]) -> Orientation:
        """The orientation of an image of ITK ``direction`` (row-major 3x3: column ``c`` is the LPS direction
        of index axis ``c`` — x, y, z — i.e. of array axis ``2 - c``).

        Each index axis is assigned the patient axis of its largest direction cosine, the largest first, so
        that the assignment is a permutation even for oblique directions.
        """
        matrix = np.asarray(direction, dtype=float).reshape(3, 3)
        if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-6:
            raise ValueError(f"direction {tuple(direction)} is not an invertible 3x3 matrix")
        weight = np.abs(matrix)
        world_of: dict[int, int] = {}  # index axis -> LPS world axis (0 x/L, 1 y/P, 2 z/S)
        for flat in np.argsort(-weight, axis=None, kind="stable"):
            world, index = divmod(int(flat), 3)
            if index not in world_of and world not in world_of.values():
                world_of[index] = world
        axes, flips = [0, 0, 0], [False, False, False]
        for index, world in world_of.items():
            display = 2 - world  # display axes run S, P, L: world axes z, y, x
            axes[display] = 2 - index  # array axes are (Z, Y, X): index axes reversed
            flips[display] = bool(matrix[world, index] < 0)
        return cls(tuple(axes), tuple(flips))  # type: ignore[arg-type]

    @property
    def is_identity(self) -> bool:
        """True when the display grid is the stored array itself."""
        return self.axes == (0, 1, 2) and not any(self.flips)

    @property
    def toward(self) -> str:
        """Where the stored array's x, y and z indices run towards, e.g. ``"LPS"`` (identity) or ``"RPS"``
        (x flipped): one letter of L/R, P/A, S/I per stored axis."""
        letters = {}
        for display, stored in enumerate(self.axes):
            letter = DISPLAY_TOWARD[display]
            letters[stored] = _OPPOSITE[letter] if self.flips[display] else letter
        return letters[2] + letters[1] + letters[0]

    def display_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """Shape of the display grid of a stored array of ``shape`` ``(Z, Y, X)``."""
        return tuple(int(shape[a]) for a in self.axes)  # type: ignore[return-value]

    def display_spacing(self, spacing_zyx: Sequence[float]) -> tuple[float, float, float]:
        """Voxel size in mm along the display axes, from the stored array's ``spacing_zyx``."""
        return tuple(float(spacing_zyx[a]) for a in self.axes)  # type: ignore[return-value]

    def view(self, volume: np.ndarray) -> np.ndarray:
        """The display grid of a stored ``(Z, Y, X)`` ``volume``: a transposed, flipped view (no copy)."""
        out = np.transpose(volume, self.axes)
        flip = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
        return out[flip]

    def to_stored(self, point: Sequence[float], shape: Sequence[int]) -> tuple:
        """Stored ``(z, y, x)`` of display point ``point`` of a stored array of ``shape``. Integer voxels give
        integers; fractional positions (a brush stroke's) map the same way (voxel centres at integers)."""
        out: list = [0, 0, 0]
        for display, stored in enumerate(self.axes):
            value = point[display]
            out[stored] = (int(shape[stored]) - 1 - value) if self.flips[display] else value
        return tuple(out)

    def to_display(self, point: Sequence[float], shape: Sequence[int]) -> tuple:
        """Display ``(s, p, l)`` of stored point ``point = (z, y, x)`` of an array of ``shape`` (inverse of
        :meth:`to_stored`)."""
        out: list = [0, 0, 0]
        for display, stored in enumerate(self.axes):
            value = point[stored]
            out[display] = (int(shape[stored]) - 1 - value) if self.flips[display] else value
        return tuple(out)
