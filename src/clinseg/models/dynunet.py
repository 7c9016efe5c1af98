"""``dynunet``: MONAI's ``DynUNet`` configured as the nnU-Net-like reference network.

nnU-Net derives its 3D U-Net from the patch size and spacing; for isotropic CPU-sized patches this reduces to
kernels 3³ everywhere, stride 1 at the first level and stride 2 at every other one, instance norm and leaky
ReLU, and a plain (non-residual) two-conv block per level. We keep those choices, derive kernels and strides
from one ``depth`` parameter, and switch deep supervision off so the network returns one tensor in training
and evaluation alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import DynUNet
from torch import nn

from clinseg.models.registry import register_model


class DynUNetReference(nn.Module):
    """nnU-Net-like 3D U-Net: a thin wrapper around ``monai.networks.nets.DynUNet``.

    Parameters
    ----------
    in_channels : input image channels ``C``.
    out_channels : output logit channels (one per class).
    depth : number of resolution levels including the bottleneck, >= 3; kernels are ``[3] * depth`` and strides
        ``[1] + [2] * (depth - 1)``.
    features : widths per level, full resolution first, ``len(features) == depth``. ``None`` gives
        ``8 * 2 ** level`` capped at 320 (nnU-Net's cap), i.e. ``(8, 16, 32, 64)`` at the default depth 4;
        nnU-Net itself starts at 32, too slow for CPU training.
    norm : MONAI norm name; ``"instance"`` as in nnU-Net (``"group"`` and ``"batch"`` also work).

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z, Y, X)`` with ``Z, Y, X`` multiples of
    :attr:`size_divisor` = ``2 ** (depth - 1)`` (8 at the default), the product of the strides.

    Notes
    -----
    Receptive field along each axis, in voxels: **79** at the default depth 4 (71 for half of the output
    positions, which alternate with period 8; 35 at depth 3). Computed by
    :func:`clinseg.models.receptive_field` and checked against the measured one in the tests.

    Examples
    --------
    >>> net = DynUNetReference(1, 2, depth=3, features=(4, 8, 16))
    >>> net(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 2, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: int = 4,
        features: Sequence[int] | None = None,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth must be >= 3 (DynUNet needs two downsamplings), got {depth}")
        widths = [min(8 * 2**level, 320) for level in range(depth)] if features is None else list(features)
        if len(widths) != depth:
            raise ValueError(f"features must give {depth} widths (one per level), got {widths!r}")
        strides = [1] + [2] * (depth - 1)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_divisor: int = 2 ** (depth - 1)
        self.net = DynUNet(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=[3] * depth,
            strides=strides,
            upsample_kernel_size=strides[1:],
            filters=widths,
            norm_name=norm,
            deep_supervision=False,
            res_block=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, Z, Y, X)`` for an input ``(B, in_channels, Z, Y, X)``."""
        return self.net(x)


@register_model("dynunet")
def dynunet(
    in_channels: int,
    out_channels: int,
    depth: int = 4,
    features: Sequence[int] | None = None,
    norm: str = "instance",
) -> DynUNetReference:
    """Build :class:`DynUNetReference` (nnU-Net-like); receptive field 79 voxels at the defaults."""
    return DynUNetReference(in_channels, out_channels, depth=depth, features=features, norm=norm)
