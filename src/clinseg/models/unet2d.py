"""``unet2d``: a 2D U-Net applied slice by slice, so it plugs into the 3D training and inference unchanged.

Seed 002 segments the fibula with a 2D U-Net on axial slices (96 x 96 patches); the OAR and brain-tumour
chapters of seed 001 train 2D networks on axial, coronal or sagittal slices. :class:`SliceWise` folds the
slicing axis of a ``(B, C, Z, Y, X)`` input into the batch, runs a 2D network on every slice and unfolds the
result, so a "2D patch" is simply a 3D patch one voxel thick along that axis (``patch_size: [1, 96, 96]``
for axial slices) and sliding-window inference, validation and prediction need no 2D code path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from clinseg.errors import ConfigError
from clinseg.models.outputs import NetworkOutputs
from clinseg.models.registry import register_model
from clinseg.models.unet3d import UNet3d

#: Slicing plane -> array axis of ``(Z, Y, X)`` that is folded (the axis the slices are perpendicular to).
PLANE_AXES: dict[str, int] = {"axial": 0, "coronal": 1, "sagittal": 2}


class SliceWise(nn.Module):
    """Run a 2D network ``(N, C, H, W) -> (N, K, H, W)`` on every slice of a 3D input along one axis.

    Parameters
    ----------
    net : the 2D network; needs the integer attributes ``out_channels`` and ``size_divisor``.
    plane : ``axial`` (slices of constant Z), ``coronal`` (constant Y) or ``sagittal`` (constant X).

    Shapes
    ------
    ``(B, C, Z, Y, X) -> (B, K, Z, Y, X)``; the two in-plane sizes must be multiples of the 2D network's
    divisor, the slicing axis may have any size, so :attr:`size_divisor` is per axis, e.g. ``(1, 8, 8)``.
    """

    def __init__(self, net: nn.Module, plane: str = "axial") -> None:
        super().__init__()
        if plane not in PLANE_AXES:
            raise ConfigError(f"plane must be one of {', '.join(PLANE_AXES)}, got {plane!r}")
        self.net = net
        self.plane = plane
        self.axis = PLANE_AXES[plane]
        self.out_channels: int = int(net.out_channels)
        divisor = int(net.size_divisor)
        self.size_divisor: tuple[int, int, int] = tuple(  # type: ignore[assignment]
            1 if axis == self.axis else divisor for axis in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor | NetworkOutputs:
        """Logits ``(B, K, Z, Y, X)`` for ``(B, C, Z, Y, X)``, each slice segmented on its own.

        A 2D network with training-time heads returns :class:`NetworkOutputs` in training mode: its main and
        auxiliary logits are unfolded alike to ``(B, K, Z, Y, X)``; its ``image_logits`` stay one row per
        slice, ``(B * S, N)`` in batch-major order (row ``b * S + s``), which is ``(B, N)`` for the usual
        patches one voxel thick (``S = 1``).
        """
        b, c = x.shape[:2]
        dim = 2 + self.axis
        moved = x.movedim(dim, 1)  # (B, S, C, H, W)
        slices = moved.shape[1]
        out = self.net(moved.reshape(b * slices, c, *moved.shape[3:]))

        def unfold(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, slices, t.shape[1], *t.shape[2:]).movedim(1, dim)

        if isinstance(out, NetworkOutputs):
            return NetworkOutputs(unfold(out.logits), [unfold(a) for a in out.aux], list(out.aux_weights),
                                  out.main_weight, out.image_logits)
        return unfold(out)


@register_model("unet2d")
def unet2d(
    in_channels: int,
    out_channels: int,
    features: Sequence[int] = (16, 32, 64, 128),
    norm: str = "batch",
    plane: str = "axial",
) -> SliceWise:
    """A 2D U-Net (Ronneberger et al. 2015: two 3x3 conv + ReLU per level, 2x2 max pooling, transposed
    convolutions up, skip concatenations) on ``plane`` slices. Defaults: 4 levels of 16-128 features and batch
    normalisation (2D batches hold many slices). Train it with a patch one voxel thick along the slicing axis,
    e.g. ``patch_size: [1, 96, 96]`` for axial slices."""
    return SliceWise(UNet3d(in_channels, out_channels, features=features, norm=norm, dims=2), plane)
