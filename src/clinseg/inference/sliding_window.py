"""Memory-planned sliding-window inference: per-class probabilities of a whole volume from patch predictions.

The volume ``(C, Z, Y, X)`` is covered by overlapping windows of the network's patch size, placed exactly
as MONAI's :func:`monai.inferers.sliding_window_inference` places them (step ``int(patch * (1 - overlap))``
per axis, the last window flush with the far edge). Each window's logits are weighted by a Gaussian
importance map (sigma = 1/8 of the patch size, as nnU-Net and MONAI do, so window borders, which see the
least context, count least), summed, divided by the summed weights, and only then passed through the
sigmoid or softmax. With ``amp=False`` the result therefore equals MONAI's
``sliding_window_inference(..., mode="gaussian")`` followed by the activation, up to the float16 rounding
of the returned array.

Memory plan
-----------
Windows are run in z-major order, ``batch_size`` at a time, a batch never straddling two z-rows of
windows. The weighted logits are summed in float32 into a *rolling slab* one patch thick, not the whole
volume: before each batch, the slices no later window can reach are finished (divided by their weight,
activated, rounded to float16 into the output) and the slab moves on. So the full-volume float32 logits
never exist; the largest arrays are the float16 output ``(N, Z, Y, X)`` (2 bytes per voxel and class), the
slab ``(N, pz, Y, X)`` float32, and the network's activations for one batch.

Speed
-----
Autocast (bfloat16 on the CPU), batched windows, and on the CPU the ``channels_last_3d`` layout, for which
oneDNN has its fastest 3D convolutions (measured 1.6x over the default layout in bfloat16 for ``resfcn3d``
on a 2-core EPYC). ``skip_background`` avoids running windows of pure air. On the CPU an ONNX export of
the network run by ONNX Runtime or OpenVINO can replace torch (``backend``, :mod:`clinseg.inference.backends`).
See ``bench/inference.py``.

Example
-------
>>> net = torch.nn.Conv3d(1, 3, 3, padding=1)
>>> probs = predict_probabilities(net, np.zeros((1, 40, 40, 40), np.float32), (32, 32, 32), amp=False)
>>> probs.shape, probs.dtype
((3, 40, 40, 40), dtype('float16'))
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clinseg.errors import ConfigError
from clinseg.inference.backends import Backend, TorchBackend, prepared_model
from clinseg.models.registry import describe_divisors, size_divisors
from clinseg.progress import make_progress

logger = logging.getLogger(__name__)

Activation = Literal["sigmoid", "softmax", "none"]
#: dtype of the returned probabilities: 11 significant bits, absolute error <= 2.5e-4 on [0, 1].
OUTPUT_DTYPE = np.float16
_CPU_BATCH_VOXELS = 64**3  # default CPU batch: enough windows to make about this many voxels
_FINALISE_CHUNK = 8  # z-slices activated at a time when a slab is finished (bounds the temporaries)


def gaussian_importance_map(patch_size: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """Gaussian window weights ``(Z, Y, X)`` float32, peak 1 at the patch centre.

    Identical to MONAI's ``compute_importance_map(patch_size, mode="gaussian", sigma_scale=0.125)``:
    ``sigma = sigma_scale * patch`` per axis, and weights below 1e-3 are raised to 1e-3 so that voxels
    near the volume border, seen only by window corners, keep a positive total weight.
    """
    weights: torch.Tensor | None = None
    for i, size in enumerate(patch_size):
        x = torch.arange(-(size - 1) / 2.0, (size - 1) / 2.0 + 1, dtype=torch.float32)
        g = torch.exp(x**2 / (-2 * (sigma_scale * size) ** 2))
        weights = g if weights is None else weights.unsqueeze(-1) * g[(None,) * i]
    assert weights is not None
    return weights.clamp_(min=max(float(weights.min()), 1e-3))


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices of the windows along one axis of length ``size >= patch`` (MONAI's placement).

    The step is ``int(patch * (1 - overlap))`` (at least 1; a whole patch when ``size == patch``); the
    last window is moved back to end exactly at ``size``.
    """
    step = patch if size == patch else max(int(patch * (1 - overlap)), 1)
    count = next(d for d in range(size) if d * step + patch >= size) + 1
    return [min(i * step, size - patch) for i in range(count)]


def default_batch_size(patch_size: Sequence[int], device: torch.device | str) -> int:
    """Windows per forward pass when none is given: 4 on a GPU; on the CPU as many as make about 64³
    voxels, at most 16 (see :func:`predict_probabilities`)."""
    if torch.device(device).type != "cpu":
        return 4
    return min(max(_CPU_BATCH_VOXELS // math.prod(patch_size), 1), 16)


def _forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mirror_axes: Sequence[int],
             mirror_swap: tuple[int, Sequence[int]] | None = None) -> torch.Tensor:
    """Logits ``(B, N, pz, py, px)`` of a batch, averaged over all flips of ``mirror_axes``.

    Every subset of the mirror axes is used (2**k forward passes, as in nnU-Net's test-time mirroring);
    each flipped prediction is flipped back before averaging, in float32. Logits, not probabilities, are
    averaged. Without mirroring the logits keep the network's (autocast) dtype to save memory.
    ``mirror_swap = (axis, permutation)``: a flip along ``axis`` (the patient's left-right) also swaps the
    output channels by ``permutation`` (left and right structures), as training's mirroring did.
    """
    dims_list = [
        tuple(a + 2 for a in subset)
        for r in range(1, len(mirror_axes) + 1)
        for subset in itertools.combinations(mirror_axes, r)
    ]
    if not dims_list:
        return model(x)
    logits = model(x).float()
    for dims in dims_list:
        flipped = torch.flip(model(torch.flip(x, dims)).float(), dims)
        if mirror_swap is not None and mirror_swap[0] + 2 in dims:
            flipped = flipped[:, list(mirror_swap[1])]
        logits += flipped
    if dims_list:
        logits /= len(dims_list) + 1
    return logits


class _RollingSlab:
    """float32 sums of weighted logits and of weights over the z-range ``[base, base + depth)``.

    The logits are held classes-last, ``(depth, Y, X, N)``: the layout in which a channels-last network
    returns them, so adding a window is a contiguous pass (measured ~1.8x faster than classes-first).
    Finished slices are activated and written, as float16, into ``out`` (the unpadded volume, shifted by
    ``offset`` = the padding before each axis); voxels that no window reached keep ``out``'s background.
    """

    def __init__(
        self, out: torch.Tensor, depth: int, plane: tuple[int, int], offset: tuple[int, int, int],
        activation: Activation, device: torch.device,
    ) -> None:
        self.out, self.offset, self.activation = out, offset, activation
        self.depth, self.base = depth, 0
        self.logits = torch.zeros((depth, *plane, out.shape[0]), dtype=torch.float32, device=device)
        self.weights = torch.zeros((depth, *plane), dtype=torch.float32, device=device)

    def add(self, logits: torch.Tensor, weight: torch.Tensor, start: tuple[int, int, int]) -> None:
        """Add one window's logits ``(N, pz, py, px)`` (any float dtype) times ``weight`` at ``start``.

        ``start`` is in padded-volume voxels; the sum is float32 whatever the logits' dtype.
        """
        z, y, x = start[0] - self.base, start[1], start[2]
        pz, py, px = weight.shape
        target = self.logits[z : z + pz, y : y + py, x : x + px]
        target.addcmul_(logits.permute(1, 2, 3, 0), weight[..., None])
        self.weights[z : z + pz, y : y + py, x : x + px] += weight

    def advance(self, new_base: int) -> None:
        """Finish the slices ``[base, new_base)`` and move the slab to start at ``new_base``."""
        shift = new_base - self.base
        if shift <= 0:
            return
        self._finish(min(shift, self.depth))
        keep = self.depth - shift
        for i in range(0, max(keep, 0), shift):  # chunks of <= shift slices: source and target never overlap
            n = min(shift, keep - i)
            self.logits[i : i + n] = self.logits[shift + i : shift + i + n]
            self.weights[i : i + n] = self.weights[shift + i : shift + i + n]
        self.logits[max(keep, 0) :] = 0
        self.weights[max(keep, 0) :] = 0
        self.base = new_base

    def _finish(self, count: int) -> None:
        """Activate slab slices ``[0, count)`` in place and write their unpadded part into ``out``."""
        oz, oy, ox = self.offset
        size_z, size_y, size_x = self.out.shape[1:]
        for c0 in range(0, count, _FINALISE_CHUNK):
            c1 = min(c0 + _FINALISE_CHUNK, count)
            z0, z1 = max(self.base + c0 - oz, 0), min(self.base + c1 - oz, size_z)
            if z0 >= z1:
                continue
            sl = slice(z0 + oz - self.base, z1 + oz - self.base)
            w = self.weights[sl, oy : oy + size_y, ox : ox + size_x]
            logits = self.logits[sl, oy : oy + size_y, ox : ox + size_x]  # (k, Y, X, N)
            logits /= w.clamp(min=1e-12)[..., None]
            if self.activation == "none":
                probs = logits
            else:
                probs = torch.sigmoid_(logits) if self.activation == "sigmoid" else torch.softmax(logits, dim=-1)
            covered = w > 0
            if not bool(covered.all()):  # some voxels reached by no window (all skipped): background
                probs *= covered[..., None]
                if self.activation == "softmax":
                    probs[..., 0] += ~covered
            self.out[:, z0:z1].copy_(probs.permute(3, 0, 1, 2))


def predict_probabilities(
    model: nn.Module,
    image: torch.Tensor | np.ndarray,
    patch_size: tuple[int, int, int],
    *,
    overlap: float = 0.5,
    batch_size: int | None = None,
    activation: Activation = "sigmoid",
    mirror_axes: tuple[int, ...] = (),
    device: torch.device | str | None = None,
    amp: bool = True,
    skip_background: float | None = None,
    progress: bool = False,
    mirror_swap: tuple[int, Sequence[int]] | None = None,
    backend: Backend | None = None,
) -> np.ndarray:
    """Per-class probabilities of a whole volume by Gaussian-weighted sliding-window inference.

    Parameters
    ----------
    model : network mapping ``(B, C, pz, py, px)`` to logits ``(B, N, pz, py, px)``. It is moved to
        ``device`` and run in eval mode under :func:`torch.inference_mode`; its train/eval flag is restored.
    image : ``(C, Z, Y, X)`` float32 volume, already normalised as in training. Never modified.
    patch_size : window ``(pz, py, px)`` in voxels; each a multiple of ``model.size_divisor`` (1 if absent).
        Axes shorter than the patch are zero-padded symmetrically (as MONAI does) and cropped back.
    overlap : fraction of a window shared with its neighbour, ``0 <= overlap < 1``.
    batch_size : windows per forward pass; ``None`` = 4 on a GPU; on the CPU as many windows as make
        about 64³ voxels (8 of 32³, 2 of 48³, 1 of 64³ or more, at most 16). Measured on a 2-core EPYC:
        batching small windows halves the time (32³: batch 8 vs 1), while for 64³-128³ windows batching
        brings no speed and multiplies the activations' memory (resfcn3d, 128³: batch 4 took 1.2x longer
        and raised the peak RSS from 1.1 to 1.7 GB).
    activation : ``"sigmoid"`` (independent, possibly overlapping labels) or ``"softmax"`` (exclusive
        classes, channel 0 = background), applied after blending the logits; ``"none"`` returns the blended
        logits themselves (the features a 2D-3D model reads; 0 where no window ran).
    mirror_axes : spatial axes (0 = Z, 1 = Y, 2 = X) for test-time mirroring: logits averaged over all
        ``2**len(mirror_axes)`` flip combinations.
    mirror_swap : ``(axis, permutation)``: flips along ``axis`` permute the output channels (left/right
        structures of a network trained with left-right mirroring and label swapping).
    device : where the network runs; ``None`` = CUDA when available, else the CPU.
    amp : autocast the network in bfloat16 (CPUs with AVX512-BF16/AMX; bf16-capable GPUs) or float16 (older
        GPUs); ~2-5x faster there. Ignored on CPUs without native bf16, where it would be ~12x slower.
        Blending and activation stay float32.
    skip_background : when set, windows whose input is ``<= skip_background`` in every voxel and channel
        (air, e.g. the value air is normalised to) are not run. They contribute nothing; voxels that only
        skipped windows cover get probability 0 (sigmoid) or background (softmax). This is an
        optimisation: it changes nothing where the network would predict background in air anyway, and
        only shifts the blend near air where a run window overlaps a skipped one.
    progress : show a progress bar (see :mod:`clinseg.progress`).
    backend : runs the forward passes instead of ``model`` (an ONNX export of it run by ONNX Runtime or
        OpenVINO: :mod:`clinseg.inference.backends`, chosen by
        :func:`clinseg.inference.backend_choice.choose_backend`); ``model`` then only gives the size divisor,
        and ``amp`` and the channels-last layout do not apply. ``None``: ``model`` in torch.

    Returns
    -------
    numpy.ndarray
        ``(N, Z, Y, X)`` float16 probabilities (absolute rounding error <= 2.5e-4); for softmax they sum to
        1 over ``N`` up to that rounding.

    Raises
    ------
    ConfigError
        The patch size, overlap, activation, batch size or mirror axes are invalid for this model/image.
    """
    img = torch.as_tensor(image).to(dtype=torch.float32)
    if img.ndim != 4:
        raise ConfigError(f"image must be (C, Z, Y, X), got shape {tuple(img.shape)}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    patch = _check_arguments(model, patch_size, overlap, batch_size, activation, mirror_axes)
    if batch_size is None:
        batch_size = default_batch_size(patch, device)

    size = tuple(int(s) for s in img.shape[1:])
    before = tuple(max(p - s, 0) // 2 for p, s in zip(patch, size))
    pad = [d for p, s, b in zip(patch, size, before) for d in (b, max(p - s, 0) - b)]
    if any(pad):  # F.pad lists the last axis first
        img = F.pad(img, pad[4:] + pad[2:4] + pad[:2], mode="constant", value=0.0)
    padded = tuple(int(s) for s in img.shape[1:])
    starts = list(itertools.product(*(window_starts(s, p, overlap) for s, p in zip(padded, patch))))
    n_all = len(starts)
    if skip_background is not None:
        starts = [s for s in starts if bool((_window(img, s, patch) > skip_background).any())]
    logger.debug("sliding window: %d windows of %s over %s, %d skipped", n_all, patch, padded, n_all - len(starts))

    weight = gaussian_importance_map(patch).to(device)
    # Batches never straddle two z-rows of windows, so the float32 slab is exactly one patch thick.
    rows = [list(row) for _, row in itertools.groupby(starts, key=lambda s: s[0])]
    batches = [row[i : i + batch_size] for row in rows for i in range(0, len(row), batch_size)]

    slab: _RollingSlab | None = None
    with prepared_model(model, device, channels_last=backend is None) as channels_last, torch.inference_mode(), \
            _maybe_progress(progress, len(batches)) as advance:
        net = backend if backend is not None else TorchBackend(model, device, amp)
        if not batches:  # every window skipped: only the number of classes is needed
            num_classes = _num_classes(model, img, patch, device)
            return _background((num_classes, *size), activation)
        for batch in batches:
            x = torch.stack([_window(img, s, patch) for s in batch]).to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            logits = _forward(net, x, mirror_axes, mirror_swap)
            if tuple(logits.shape[2:]) != patch:
                raise ConfigError(f"model returned spatial size {tuple(logits.shape[2:])} for patch {patch}")
            if slab is None:
                out = torch.from_numpy(_background((logits.shape[1], *size), activation))
                slab = _RollingSlab(out, patch[0], padded[1:], before, activation, device)  # type: ignore[arg-type]
            slab.advance(batch[0][0])
            for s, window_logits in zip(batch, logits):
                slab.add(window_logits, weight, s)
            advance()
        slab.advance(padded[0])  # type: ignore[union-attr]
    return slab.out.numpy()  # type: ignore[union-attr]


def _check_arguments(
    model: nn.Module, patch_size: Sequence[int], overlap: float, batch_size: int | None, activation: str,
    mirror_axes: Sequence[int],
) -> tuple[int, int, int]:
    """Validate the options; return the patch size as a tuple of 3 ints."""
    divisors = size_divisors(model)
    patch = tuple(int(p) for p in patch_size)
    if len(patch) != 3 or any(p <= 0 or p % d for p, d in zip(patch, divisors)):
        raise ConfigError(
            f"patch_size {tuple(patch_size)} must be 3 positive multiples of the model's size_divisor "
            f"{describe_divisors(divisors)}"
        )
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if activation not in ("sigmoid", "softmax", "none"):
        raise ConfigError(f"activation must be 'sigmoid', 'softmax' or 'none', got {activation!r}")
    if any(a not in (0, 1, 2) for a in mirror_axes) or len(set(mirror_axes)) != len(mirror_axes):
        raise ConfigError(f"mirror_axes must be distinct spatial axes among 0, 1, 2 (Z, Y, X), got {mirror_axes}")
    return patch  # type: ignore[return-value]


def _window(img: torch.Tensor, start: Sequence[int], patch: Sequence[int]) -> torch.Tensor:
    """The ``(C, pz, py, px)`` view of ``img`` at ``start``."""
    z, y, x = start
    return img[:, z : z + patch[0], y : y + patch[1], x : x + patch[2]]


def _background(shape: tuple[int, ...], activation: str) -> np.ndarray:
    """A float16 volume of background probabilities: all 0 (sigmoid) or one-hot channel 0 (softmax)."""
    out = np.zeros(shape, dtype=OUTPUT_DTYPE)
    if activation == "softmax":
        out[0] = 1
    return out


def _num_classes(model: nn.Module, img: torch.Tensor, patch: Sequence[int], device: torch.device) -> int:
    """``model.out_channels`` when present, else the channel count of one forward pass."""
    n = getattr(model, "out_channels", None)
    if isinstance(n, int):
        return n
    return int(model(_window(img, (0, 0, 0), patch)[None].to(device)).shape[1])


@contextmanager
def _maybe_progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    """A context yielding an ``advance()`` callable that ticks a progress bar (only when ``enabled``)."""
    if not enabled:
        yield lambda: None
        return
    with make_progress() as prog:
        task = prog.add_task("sliding window", total=total, status="")
        yield lambda: prog.advance(task)


__all__ = ["OUTPUT_DTYPE", "default_batch_size", "gaussian_importance_map", "predict_probabilities", "window_starts"]
