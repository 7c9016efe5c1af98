"""``triplanar``: the triplanar voxel classifier of the multi-task segmentation study (seed 004, section 3.1).

The paper classifies every voxel from three orthogonal 51 x 51 patches centred on it (axial, coronal,
sagittal). One deep stack of unpadded 3 x 3 convolutions, **shared by the three planes** (seed 004 §3.1: "the
same stack of convolutional layers was used for the axial, sagittal and coronal patches"), reduces each patch
to a 1 x 1 feature vector; the three vectors are concatenated and classified by two fully connected layers
and a softmax layer. The fully connected layers "were implemented as 1 x 1 voxel convolutions, to allow fast
processing of arbitrarily sized images".

====================  ===========================================================  ==================
stage                 layer                                                        output per voxel
====================  ===========================================================  ==================
shared 2D stack       ``layers`` x (conv 3x3 valid -> norm -> ELU), ``features``   ``features`` x 3
concatenation         axial, coronal, sagittal features                            ``3 * features``
fully connected 1     conv 1³ -> norm -> ELU -> dropout, ``hidden``                ``hidden``
fully connected 2     conv 1³ -> norm -> ELU -> dropout, ``hidden``                ``hidden``
output                conv 1³ with bias, ``out_channels`` (softmax in the loss)    ``out_channels``
====================  ===========================================================  ==================

Paper defaults: 51 x 51 patches, 25 layers of 32 kernels (no subsampling), 96 concatenated features, two
fully connected layers of 192 nodes, ELU everywhere, batch normalisation on all layers, dropout on the fully
connected layers (the rate is not stated; 0.5 here).

Two equivalent ways to run it:

* :meth:`TriplanarNet.forward`, fully convolutional on a volume ``(B, C, Z, Y, X)``: every slice of each
  orientation is zero-padded by ``(patch - 1) // 2`` in plane and passed through the shared stack, whose 25
  valid convolutions leave exactly one feature vector per voxel. In eval mode this equals the per-voxel path
  below at every voxel, since a 3 x 3 valid convolution of the padded slice computes the same sums as on each
  voxel's own patch.
* :func:`triplanar_patches` + :meth:`TriplanarNet.forward_patches`, the paper's per-voxel formulation.

In training mode batch normalisation uses batch statistics, which differ between the two paths (the dense
path pools them over whole padded slices, the per-voxel path over the sampled patches); dropout is drawn per
voxel in both.

Receptive field: the three orthogonal ``patch x patch`` squares through the voxel (a cross, not a cube),
51 x 51 in each plane at the defaults, so ``patch`` voxels along each axis.
:func:`clinseg.models.empirical_receptive_field` measures it (``patch``). Do not use the analytic
:func:`clinseg.models.receptive_field` here: it follows the executed convolutions as one chain, so it counts
the three planes' passes through the stack one after the other (``6 * layers + 1``, e.g. 19 instead of 7 for
``patch=7``), and at the defaults its probe grid is too small for the 150 voxels that chain removes (NumPy
``ValueError``).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clinseg.errors import ConfigError
from clinseg.models.registry import register_model

#: The three orientations in concatenation order, with the axis of ``(Z, Y, X)`` each slices along.
PLANES: tuple[tuple[str, int], ...] = (("axial", 0), ("coronal", 1), ("sagittal", 2))

#: Normalisations that keep the dense and per-voxel paths equal: batch norm (per-channel affine in eval mode)
#: or none. Group and instance norm pool statistics over the slice or patch, i.e. over neighbouring voxels.
TRIPLANAR_NORMS: tuple[str, ...] = ("batch", "none")

_Array = TypeVar("_Array", np.ndarray, torch.Tensor)


def triplanar_patches(volume: _Array, center: tuple[int, int, int], patch: int = 51) -> _Array:
    """The three orthogonal ``patch x patch`` patches centred on one voxel, zero outside the volume.

    Parameters
    ----------
    volume : image ``(C, Z, Y, X)``, a NumPy array or a torch tensor; it is not modified.
    center : voxel index ``(z, y, x)`` inside the volume.
    patch : odd edge length of the square patches, in voxels (51 in seed 004).

    Returns
    -------
    ``(3, C, patch, patch)`` of the input's type, dtype and device, in the order

    * ``[0]`` axial, the slice ``Z = z``, axes ``(Y, X)``;
    * ``[1]`` coronal, the slice ``Y = y``, axes ``(Z, X)``;
    * ``[2]`` sagittal, the slice ``X = x``, axes ``(Z, Y)``;

    each with the voxel at ``[patch // 2, patch // 2]``. These are the in-plane axes that
    :meth:`TriplanarNet.forward` keeps when it slices a volume.

    Raises
    ------
    ValueError
        For a volume that is not 4D, an even or non-positive ``patch``, or a centre outside the volume.

    Examples
    --------
    >>> v = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    >>> triplanar_patches(v, (0, 1, 2), patch=3)[0, 0]  # axial: Y rows 0-2, X columns 1-3
    array([[ 1.,  2.,  3.],
           [ 5.,  6.,  7.],
           [ 9., 10., 11.]], dtype=float32)
    """
    if volume.ndim != 4:
        raise ValueError(f"volume must be (C, Z, Y, X), got shape {tuple(volume.shape)}")
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be a positive odd number of voxels, got {patch}")
    shape = tuple(int(s) for s in volume.shape[1:])
    centre = tuple(int(c) for c in center)
    if len(centre) != 3 or not all(0 <= c < s for c, s in zip(centre, shape, strict=True)):
        raise ValueError(f"center {tuple(center)} is outside the volume of size (Z, Y, X) = {shape}")
    radius = patch // 2
    if isinstance(volume, torch.Tensor):
        out = volume.new_zeros((3, volume.shape[0], patch, patch))
    else:
        out = np.zeros((3, volume.shape[0], patch, patch), dtype=volume.dtype)
    for index, (_name, axis) in enumerate(PLANES):
        # The full-volume index: the fixed voxel on the slicing axis, the in-bounds window on the two others,
        # written to the matching window of the zero patch.
        source: list[int | slice] = [slice(None)]
        target: list[slice] = [slice(None)]
        for a in range(3):
            if a == axis:
                source.append(centre[a])
                continue
            lo, hi = max(centre[a] - radius, 0), min(centre[a] + radius + 1, shape[a])
            source.append(slice(lo, hi))
            target.append(slice(lo - centre[a] + radius, hi - centre[a] + radius))
        out[index][tuple(target)] = volume[tuple(source)]
    return out


def _norm(norm: str, channels: int, dims: int) -> nn.Module:
    if norm == "none":
        return nn.Identity()
    return (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(channels)


class TriplanarNet(nn.Module):
    """Triplanar voxel classifier (seed 004 §3.1), fully convolutional over a volume.

    Parameters
    ----------
    in_channels : input image channels ``C``.
    out_channels : classes ``K`` (the union of the tasks' classes with one shared background, 2-9 in the
        paper); the logits are meant for a softmax.
    patch : odd in-plane patch edge in voxels (51).
    layers : number of 3 x 3 valid convolutions; must be ``(patch - 1) / 2`` (25) so that they reduce a patch
        to one voxel.
    features : kernels per convolution layer (32); ``3 * features`` are concatenated (96).
    hidden : nodes of each of the two fully connected layers (192).
    dropout : dropout probability after each fully connected layer (not given in the paper; 0.5).
    norm : ``"batch"`` (the paper's, on all layers but the output) or ``"none"`` (biased convolutions).

    Shapes
    ------
    ``(B, C, Z, Y, X) -> (B, K, Z, Y, X)`` for any sizes (:attr:`size_divisor` = 1). Every output voxel sees
    the three ``patch x patch`` squares through it, zero outside the input: run whole images for the paper's
    results, since with sliding windows the voxels near a window's border see zeros instead of the image.

    Examples
    --------
    >>> net = TriplanarNet(1, 3, patch=7, layers=3, features=4, hidden=8).eval()
    >>> net(torch.zeros(1, 1, 5, 6, 7)).shape
    torch.Size([1, 3, 5, 6, 7])
    """

    size_divisor: int = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch: int = 51,
        layers: int = 25,
        features: int = 32,
        hidden: int = 192,
        dropout: float = 0.5,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        _check_options(patch, layers, features, hidden, dropout, norm)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.patch = patch
        self.radius = (patch - 1) // 2
        bias = norm == "none"  # a bias before batch norm is cancelled by its mean subtraction
        stack: list[nn.Module] = []
        for i in range(layers):
            stack += [nn.Conv2d(in_channels if i == 0 else features, features, 3, padding=0, bias=bias),
                      _norm(norm, features, 2), nn.ELU()]
        #: The shared 2D stack: ``(N, C, patch + s, patch + t) -> (N, features, 1 + s, 1 + t)``.
        self.stack = nn.Sequential(*stack)
        #: Fully connected layers as 1³ convolutions: ``(B, 3 * features, ...) -> (B, out_channels, ...)``.
        self.head = nn.Sequential(
            nn.Conv3d(3 * features, hidden, 1, bias=bias), _norm(norm, hidden, 3), nn.ELU(), nn.Dropout(dropout),
            nn.Conv3d(hidden, hidden, 1, bias=bias), _norm(norm, hidden, 3), nn.ELU(), nn.Dropout(dropout),
            nn.Conv3d(hidden, out_channels, 1),
        )

    def _plane_features(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        """Stack features ``(B, F, Z, Y, X)`` of every slice of ``x`` ``(B, C, Z, Y, X)`` along ``axis``."""
        b, c = x.shape[:2]
        dim = 2 + axis
        moved = x.movedim(dim, 1)  # (B, S, C, H, W), H and W in (Z, Y, X) order
        slices = moved.shape[1]
        r = self.radius
        padded = F.pad(moved.reshape(b * slices, c, *moved.shape[3:]), (r, r, r, r))
        out = self.stack(padded)  # (B * S, F, H, W)
        return out.reshape(b, slices, *out.shape[1:]).movedim(1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, Z, Y, X)`` for a volume ``(B, C, Z, Y, X)``, every voxel from its three patches.

        Voxel samples ``(N, 1, 3, C, patch, patch)`` (a 6-D tensor: the training batches of
        ``--method triplanar``, seed 004's per-voxel training) give ``(N, K, 1, 1, 1)``: each voxel as a
        one-voxel volume, so the training loop and its losses take them unchanged.
        """
        if x.ndim == 6 and x.shape[1] == 1:
            return self.forward_patches(x[:, 0])[:, :, None, None, None]
        if x.ndim != 5:
            raise ValueError(f"input must be (B, C, Z, Y, X), got shape {tuple(x.shape)}")
        features = torch.cat([self._plane_features(x, axis) for _name, axis in PLANES], dim=1)
        return self.head(features)

    def forward_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` of ``N`` voxels from their patches ``(N, 3, C, patch, patch)``.

        The patches are ordered and oriented as :func:`triplanar_patches` returns them; each is reduced to a
        ``features`` vector by the shared stack (one pass per plane, as :meth:`forward` does), and the
        concatenated ``3 * features`` go through the fully connected layers.
        """
        expected = (3, self.in_channels, self.patch, self.patch)
        if patches.ndim != 5 or tuple(patches.shape[1:]) != expected:
            raise ValueError(f"patches must be (N, {', '.join(map(str, expected))}), got {tuple(patches.shape)}")
        features = torch.cat([self.stack(patches[:, i]) for i in range(len(PLANES))], dim=1)  # (N, 3F, 1, 1)
        return self.head(features[..., None]).flatten(1)  # (N, 3F, 1, 1, 1) -> (N, K)


def _check_options(patch: int, layers: int, features: int, hidden: int, dropout: float, norm: str) -> None:
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 3 or patch % 2 == 0:
        raise ConfigError(f"triplanar: patch must be an odd integer >= 3, got patch={patch!r}")
    if isinstance(layers, bool) or not isinstance(layers, int) or 2 * layers + 1 != patch:
        need = (patch - 1) // 2
        raise ConfigError(
            f"triplanar: layers={layers!r} does not fit patch={patch}: each 3x3 valid convolution removes 2 "
            f"voxels, so a {patch}x{patch} patch needs layers = (patch - 1) / 2 = {need} to end at 1x1 "
            f"(or patch = 2 * layers + 1)")
    for label, value in (("features", features), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"triplanar: {label} must be a positive integer, got {label}={value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"triplanar: dropout must be in [0, 1), got dropout={dropout!r}")
    if norm not in TRIPLANAR_NORMS:
        raise ConfigError(
            f"triplanar: norm must be one of {', '.join(TRIPLANAR_NORMS)}, got norm={norm!r} (group and instance "
            "norm pool over neighbouring voxels, so whole-image and per-voxel outputs would differ)")


@register_model("triplanar")
def triplanar(
    in_channels: int,
    out_channels: int,
    patch: int = 51,
    layers: int = 25,
    features: int = 32,
    hidden: int = 192,
    dropout: float = 0.5,
    norm: str = "batch",
) -> TriplanarNet:
    """Build :class:`TriplanarNet` (seed 004 §3.1): 51 x 51 triplanar patches, 25 shared 3x3 layers of 32,
    two fully connected layers of 192; receptive field ``patch`` x ``patch`` in each of the three planes."""
    return TriplanarNet(in_channels, out_channels, patch=patch, layers=layers, features=features, hidden=hidden,
                        dropout=dropout, norm=norm)
