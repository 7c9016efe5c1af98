"""The state of one interactive segmentation session (no HTTP): image, clicks, masks, undo, saving.

A person segments one image with an interactive network (seed 002 §2.3): they pick a structure, click on
it (foreground) and around it (background), and the network redraws the structure from those clicks.
Where clicks are not enough, the brush paints or erases a disc in an axial slice; brush strokes override
the network in the voxels they cover and survive later clicks. :meth:`ViewerSession.undo` takes back the
last click or stroke of the current structure.

A slice-wise network recomputes only the clicked axial slice (``slices=[z]``), so a click answers in a
fraction of a second; a 3-D network recomputes the volume.

What the page shows goes through a :class:`~clinseg.interactive.viewer.screen.Screen`: every view in
radiological orientation whatever the image's stored direction, the first channel in its own units (HU for
a CT) through a grey-level window, every structure in its colour. The page points at *pixels of views*
(:meth:`ViewerSession.click_view`, :meth:`ViewerSession.brush_view`); the session maps them to stored voxels,
so clicks, masks and saved files stay on the image's own grid.

Saving: :meth:`save_prediction` writes the current structure's mask with the image's geometry to
``<OUT>/<case>/<structure>.nii.gz`` (``OUT`` default ``<RUN>/interact``: the layout ``clinseg predict`` writes
and ``clinseg evaluate`` reads); :meth:`save_corrections` adds the image and the *touched* structures (those
with at least one click or stroke) to a dataset folder (default ``<RUN>/corrections``), to fine-tune on:
``clinseg train NEWDATASET --out RUN2 --init RUN/checkpoints/best.pt``. The case id, the prediction folder
and the dataset folder are fixed when the session is made (the viewer's page cannot change them); an
existing dataset case holding another image is never overwritten (see
:func:`~clinseg.interactive.viewer.corrections.free_case_id`).

Arrays: the image is ``(C, Z, Y, X)`` (normalised as in training); masks ``(Z, Y, X)`` uint8; points
``(z, y, x)`` voxel indices.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from clinseg.errors import ClinsegError
from clinseg.interactive.viewer.corrections import SavedCase, save_case
from clinseg.interactive.viewer.display import MASK_ALPHA, Window, disc_stroke
from clinseg.interactive.viewer.screen import Screen
from clinseg.io.image import Geometry, read_image, strip_ending, write_image
from clinseg.names import check_name

Point = tuple[int, int, int]
_CHANNEL_RE = re.compile(r"^(?P<case>.+)_\d{4}$")
#: Undo keeps at most this many bytes of earlier mask content per structure (oldest steps dropped first).
UNDO_BUDGET_BYTES = 256 * 2**20


class ClickSegmenter(Protocol):
    """What the session needs of a network (:class:`clinseg.interactive.network.InteractiveNetwork`)."""

    structures: tuple[str, ...]
    channels: tuple[str, ...]

    @property
    def slice_axis(self) -> int | None: ...

    def load_image(self, path: str | Path) -> tuple[np.ndarray, Geometry]: ...

    def segment(self, image: np.ndarray, fg: Sequence[Point], bg: Sequence[Point], *,
                slices: Sequence[int] | None = None, previous: np.ndarray | None = None) -> np.ndarray: ...


@dataclass
class _Step:
    """What one click or stroke changed, to take it back: the earlier content of the slices it touched."""

    kind: str  # "click" or "brush"
    where: tuple[slice, ...]
    net: np.ndarray
    paint: np.ndarray | None  # None: there was no brush layer yet
    foreground: bool = True

    @property
    def nbytes(self) -> int:
        return self.net.nbytes + (0 if self.paint is None else self.paint.nbytes)


@dataclass
class _Structure:
    """Per-structure state: the clicks, the network's mask, the brush layer (+1 paint, -1 erase, 0 none)."""

    fg: list[Point] = field(default_factory=list)
    bg: list[Point] = field(default_factory=list)
    net: np.ndarray | None = None
    paint: np.ndarray | None = None
    strokes: int = 0
    history: list[_Step] = field(default_factory=list)

    @property
    def touched(self) -> bool:
        return bool(self.fg or self.bg or self.strokes)


def case_id_of(image_path: str | Path) -> str:
    """Case id from an image file name: ``case_0000.nii.gz`` -> ``case``, ``scan.nrrd`` -> ``scan``."""
    stem = strip_ending(Path(image_path).name)
    match = _CHANNEL_RE.match(stem)
    return match["case"] if match else stem


class ViewerSession:
    """One image being segmented by a person with an interactive network.

    Parameters
    ----------
    network : the interactive network (``InteractiveNetwork.from_run``).
    image_path : a single image file, or the ``_0000`` file of a multi-channel case.
    case_id : case id for saved files (a safe file name, :func:`clinseg.names.check_name`); default from the
        image file name.
    run_dir : the run folder; gives the default save locations.
    dataset_dir : default dataset folder for :meth:`save_corrections` (else ``<run_dir>/corrections``).
    prediction_dir : :meth:`save_prediction` writes ``<prediction_dir>/<case>/<structure>.nii.gz`` (default
        ``<run_dir>/interact``).

    Examples
    --------
    >>> session = ViewerSession(InteractiveNetwork.from_run("runs/inter"), "scan.nii.gz")  # doctest: +SKIP
    >>> session.click(12, 40, 52, foreground=True)                                        # doctest: +SKIP
    >>> session.save_corrections("corrected")                                            # doctest: +SKIP
    """

    def __init__(self, network: ClickSegmenter, image_path: str | Path, *, case_id: str | None = None,
                 run_dir: str | Path | None = None, dataset_dir: str | Path | None = None,
                 prediction_dir: str | Path | None = None) -> None:
        self.network = network
        self.image_path = Path(image_path)
        self.case_id = check_name(case_id or case_id_of(image_path), "case id", "--case" if case_id else image_path)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.dataset_dir = Path(dataset_dir) if dataset_dir is not None else None
        self.prediction_dir = Path(prediction_dir) if prediction_dir is not None else None
        self.image, self.geometry = network.load_image(self.image_path)
        if self.image.ndim != 4:
            raise ClinsegError(f"{image_path}: expected a (C, Z, Y, X) image from the network, got {self.image.shape}")
        self.structures: tuple[str, ...] = tuple(network.structures)
        if not self.structures:
            raise ClinsegError("the run declares no structures")
        self.screen = Screen(self._shown_channel(), self.geometry, self.structures)
        self.structure = self.structures[0]
        self._state: dict[str, _Structure] = {s: _Structure() for s in self.structures}

    # -- what is shown -------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Image grid ``(Z, Y, X)``."""
        return tuple(int(s) for s in self.image.shape[1:])  # type: ignore[return-value]

    @property
    def slice_axis(self) -> int | None:
        return self.network.slice_axis

    def mask(self, structure: str | None = None) -> np.ndarray:
        """Current ``(Z, Y, X)`` uint8 mask of ``structure`` (default: the current one): the network's result
        with brush strokes applied on top."""
        state = self._get(structure or self.structure)
        if state.net is None:
            return np.zeros(self.shape, np.uint8)
        if state.paint is None:
            return state.net.copy()
        return np.where(state.paint == 0, state.net, state.paint > 0).astype(np.uint8)

    def clicks(self, structure: str | None = None) -> tuple[list[Point], list[Point]]:
        """Copies of the ``(foreground, background)`` clicks of ``structure`` (default: current)."""
        state = self._get(structure or self.structure)
        return list(state.fg), list(state.bg)

    @property
    def touched(self) -> tuple[str, ...]:
        """Structures with at least one click or brush stroke, in run order: the ones a save delineates."""
        return tuple(s for s in self.structures if self._state[s].touched)

    def summary(self) -> dict:
        """JSON-ready state for the page: grid, structures, current structure, clicks, voxel count, hash."""
        mask = self.mask()
        state = self._state[self.structure]
        return {
            "case": self.case_id,
            "shape": list(self.shape),
            "spacing_zyx": list(self.geometry.spacing_zyx),
            "structures": list(self.structures),
            "structure": self.structure,
            "slice_axis": self.slice_axis,
            "fg_clicks": len(state.fg),
            "bg_clicks": len(state.bg),
            "fg": [list(p) for p in state.fg],
            "bg": [list(p) for p in state.bg],
            "strokes": state.strokes,
            "can_undo": bool(state.history),
            "touched": list(self.touched),
            "voxels": int(np.count_nonzero(mask)),
            "volume_ml": round(float(np.count_nonzero(mask)) * self.geometry.voxel_volume_ml, 3),
            "mask_hash": hashlib.sha1(mask.tobytes()).hexdigest()[:12],
            "prediction_path": (str(self.default_prediction_path())
                                if (self.prediction_dir or self.run_dir) else None),
            "dataset_path": str(self.default_dataset_dir()) if (self.dataset_dir or self.run_dir) else None,
            "display": self.screen.describe(),
        }

    def slice_png(self, axis: int, index: int, window: Window | None = None, opacity: float = MASK_ALPHA) -> bytes:
        """PNG of view ``(axis, index)`` (0 axial, 1 coronal, 2 sagittal; slices of the display grid, see
        :mod:`~clinseg.interactive.viewer.screen`): the image through ``window`` (default the screen's), every
        structure with a mask in its colour — the current one on top with a fill of ``opacity`` — and the
        current structure's clicks."""
        state = self._state[self.structure]
        planes = {s: self._mask_plane(s, axis, index) for s in self.structures if self._state[s].net is not None}
        return self.screen.png(axis, index, planes, self.structure, state.fg, state.bg, window=window,
                               opacity=opacity)

    # -- what a person does --------------------------------------------------------------------------------
    def select(self, structure: str) -> None:
        """Make ``structure`` the one clicks, strokes and saves of the prediction apply to."""
        self._get(structure)
        self.structure = structure

    def click(self, z: int, y: int, x: int, foreground: bool) -> None:
        """Add a foreground (or background) click at voxel ``(z, y, x)`` and recompute the mask: only slice
        ``z`` (along the network's slice axis) for a slice-wise network, the volume for a 3-D one."""
        point = self._check_point((z, y, x))
        state = self._state[self.structure]
        axis = self.slice_axis
        where = self._slab(axis, point[axis]) if axis is not None else (slice(None),) * 3
        net = state.net if state.net is not None else np.zeros(self.shape, np.uint8)
        paint = None if state.paint is None else state.paint[where].copy()
        step = _Step("click", where, net[where].copy(), paint, foreground)
        clicks = state.fg if foreground else state.bg
        clicks.append(point)
        try:
            if axis is None:
                result = self.network.segment(self.image, state.fg, state.bg)
            else:
                result = self.network.segment(self.image, state.fg, state.bg, slices=[point[axis]], previous=net)
            result = np.asarray(result, dtype=np.uint8)
            if result.shape != self.shape:
                raise ClinsegError(f"the network returned a mask of shape {result.shape}, expected {self.shape}")
        except BaseException:
            clicks.pop()
            raise
        state.net = result
        self._push(state, step)

    def click_view(self, axis: int, index: int, row: int, col: int, foreground: bool) -> Point:
        """:meth:`click` on the stored voxel shown at pixel ``(row, col)`` of view ``(axis, index)``; returns
        that voxel ``(z, y, x)``."""
        point = self.screen.voxel(axis, index, row, col)
        self.click(*point, foreground=foreground)
        return point

    def brush(self, index: int, points2d: Sequence[Sequence[float]], radius: float, erase: bool,
              axis: int = 0) -> None:
        """Paint (or erase, ``erase=True``) discs of ``radius`` voxels along the stroke ``points2d`` in slice
        ``index`` across stored array ``axis`` (default 0: axial slice ``z``, points ``(y, x)``; the points are
        positions along the slice's two other axes, in array order). The stroke overrides the network in
        those voxels, also after later clicks; only that slice changes."""
        if not points2d:
            raise ClinsegError("a brush stroke needs at least one point")
        if axis not in (0, 1, 2):
            raise ClinsegError(f"a stored array axis is 0, 1 or 2, got {axis}")
        self._check_point(tuple(index if a == axis else 0 for a in range(3)))
        state = self._state[self.structure]
        if state.net is None:
            state.net = np.zeros(self.shape, np.uint8)
        if state.paint is None:
            state.paint = np.zeros(self.shape, np.int8)
        where = self._slab(axis, index)
        step = _Step("brush", where, state.net[where].copy(), state.paint[where].copy())
        plane_shape = tuple(n for a, n in enumerate(self.shape) if a != axis)
        disc = disc_stroke(plane_shape, points2d, float(radius))  # type: ignore[arg-type]
        plane = state.paint[tuple(index if a == axis else slice(None) for a in range(3))]  # a view
        plane[disc] = -1 if erase else 1
        state.strokes += 1
        self._push(state, step)

    def brush_view(self, axis: int, index: int, points: Sequence[Sequence[float]], radius: float,
                   erase: bool) -> None:
        """:meth:`brush` along pixels ``points`` (``(row, col)``) of view ``(axis, index)``, in any view."""
        stored_axis, stored_index, stored_points = self.screen.stroke(axis, index, points)
        self.brush(stored_index, stored_points, radius, erase, axis=stored_axis)

    def undo(self) -> bool:
        """Take back the last click or stroke of the current structure; False when there is none."""
        state = self._state[self.structure]
        if not state.history:
            return False
        step = state.history.pop()
        assert state.net is not None
        state.net[step.where] = step.net
        if state.paint is not None:
            state.paint[step.where] = 0 if step.paint is None else step.paint
        if step.kind == "click":
            (state.fg if step.foreground else state.bg).pop()
        else:
            state.strokes -= 1
        return True

    def clear(self) -> None:
        """Forget the current structure's clicks, strokes and mask (it becomes untouched; not undoable)."""
        self._state[self.structure] = _Structure()

    # -- saving --------------------------------------------------------------------------------------------
    def default_prediction_path(self, structure: str | None = None) -> Path:
        """``<prediction_dir>/<case>/<structure>.nii.gz`` (``prediction_dir`` default ``<run_dir>/interact``)."""
        if self.prediction_dir is not None:
            root = self.prediction_dir
        elif self.run_dir is not None:
            root = self.run_dir / "interact"
        else:
            raise ClinsegError("no run folder known: give the path to save the prediction to")
        return root / self.case_id / f"{structure or self.structure}.nii.gz"

    def default_dataset_dir(self) -> Path:
        """The dataset folder given at start, else ``<run_dir>/corrections``."""
        if self.dataset_dir is not None:
            return self.dataset_dir
        if self.run_dir is None:
            raise ClinsegError("no dataset folder known: give the folder to save the corrections to")
        return self.run_dir / "corrections"

    def save_prediction(self, path: str | Path | None = None) -> Path:
        """Write the current structure's mask (uint8 0/1, the input image's geometry) atomically to ``path``
        (default :meth:`default_prediction_path`); returns the path."""
        dest = Path(path) if path else self.default_prediction_path()
        write_image(self.mask(), self.geometry.with_shape(self.shape), dest)
        return dest

    def save_corrections(self, dataset_dir: str | Path | None = None, case_id: str | None = None) -> SavedCase:
        """Add the image and the touched structures' masks to a dataset folder (default
        :meth:`default_dataset_dir`) as case ``case_id`` (default the session's), or as ``<case>_2`` … when
        the dataset holds that id with another image; returns the id used and the files written.
        See :func:`clinseg.interactive.viewer.corrections.save_case`."""
        root = Path(dataset_dir) if dataset_dir else self.default_dataset_dir()
        masks = {s: self.mask(s) for s in self.touched}
        if masks and not any(mask.any() for mask in masks.values()):
            raise ClinsegError(f"nothing to save: the touched structure{'s' if len(masks) > 1 else ''} "
                               f"{', '.join(masks)} {'are' if len(masks) > 1 else 'is'} empty — click on a "
                               "structure or paint it before saving corrections")
        return save_case(root, case_id or self.case_id, self.image_path, self.network.channels,
                         self.structures, masks, self.geometry.with_shape(self.shape))

    # -- internals -----------------------------------------------------------------------------------------
    def _mask_plane(self, structure: str, axis: int, index: int) -> np.ndarray:
        """:meth:`mask` of ``structure`` in view ``(axis, index)`` only: a slice's work, not the volume's."""
        state = self._state[structure]
        assert state.net is not None
        plane = self.screen.plane(state.net, axis, index)
        if state.paint is None:
            return plane
        paint = self.screen.plane(state.paint, axis, index)
        return np.where(paint == 0, plane, paint > 0).astype(np.uint8)

    def _shown_channel(self) -> np.ndarray:
        """Channel 0 in its own units (HU for a CT), read again from its file: the network's copy is normalised.
        Falls back to the network's copy when the file's grid differs from it."""
        raw = read_image(self.image_path, dtype=np.float32).array
        return raw if raw.shape == self.shape else self.image[0]

    def _get(self, structure: str) -> _Structure:
        if structure not in self._state:
            raise ClinsegError(f"unknown structure {structure!r}; the run segments {', '.join(self.structures)}")
        return self._state[structure]

    def _check_point(self, point: Sequence[int]) -> Point:
        try:
            values = tuple(int(p) for p in point)
        except (TypeError, ValueError):
            raise ClinsegError(f"a point is three integer voxel indices (z, y, x), got {point!r}") from None
        if len(values) != 3 or not all(0 <= p < s for p, s in zip(values, self.shape)):
            raise ClinsegError(f"point {values} lies outside the image grid {self.shape}")
        return values  # type: ignore[return-value]

    @staticmethod
    def _slab(axis: int, index: int) -> tuple[slice, ...]:
        return tuple(slice(index, index + 1) if a == axis else slice(None) for a in range(3))

    @staticmethod
    def _push(state: _Structure, step: _Step) -> None:
        state.history.append(step)
        total = sum(s.nbytes for s in state.history)
        while len(state.history) > 1 and total > UNDO_BUDGET_BYTES:
            total -= state.history.pop(0).nbytes
