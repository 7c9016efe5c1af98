"""``dynunet``: MONAI's ``DynUNet`` configured as the nnU-Net-like reference network.

nnU-Net derives its 3D U-Net from the patch size and spacing; for isotropic CPU-sized patches this reduces to
kernels 3³ everywhere, stride 1 at the first level and stride 2 at every other one, instance norm and leaky
ReLU, and a plain (non-residual) two-conv block per level. We keep those choices and derive kernels and
strides from one ``depth`` parameter, unless the plan (:mod:`clinseg.planning.rules`) gives them per level and
axis, as nnU-Net does for anisotropic grids.

With ``deep_supervision = k > 0`` the network also outputs the logits of the ``k`` decoder levels below the
full resolution while training (upsampled to the patch, as MONAI does), returned as
:class:`~clinseg.models.outputs.NetworkOutputs` with nnU-Net's weights (halving per level, normalised to sum
1): the lower levels get a direct gradient, which speeds up the first iterations. In evaluation mode it
returns the full-resolution logits alone, so inference needs no special case.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import DynUNet
from torch import nn

from clinseg.models.outputs import NetworkOutputs
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
    kernels, strides : per level, the kernel size and stride per axis ``(Z, Y, X)`` (``len == depth``; the first
        stride is ``[1, 1, 1]``); ``None`` = 3³ kernels, stride 1 then 2. Given, they set ``depth``.
    deep_supervision : number of lower decoder levels with an auxiliary output in training (0 = none).

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z, Y, X)`` with ``Z, Y, X`` multiples of
    :attr:`size_divisor` = ``2 ** (depth - 1)`` (8 at the default), the product of the strides (per axis).

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
        kernels: Sequence[Sequence[int]] | None = None,
        strides: Sequence[Sequence[int]] | None = None,
        deep_supervision: int = 0,
    ) -> None:
        super().__init__()
        if strides is not None:
            depth = len(strides)
        if depth < 3:
            raise ValueError(f"depth must be >= 3 (DynUNet needs two downsamplings), got {depth}")
        widths = [min(8 * 2**level, 320) for level in range(depth)] if features is None else list(features)
        if len(widths) != depth:
            raise ValueError(f"features must give {depth} widths (one per level), got {widths!r}")
        level_strides = [[1, 1, 1]] + [[2, 2, 2]] * (depth - 1) if strides is None else [list(s) for s in strides]
        level_kernels = [[3, 3, 3]] * depth if kernels is None else [list(k) for k in kernels]
        if len(level_kernels) != depth or any(len(k) != 3 for k in level_kernels + level_strides):
            raise ValueError(f"kernels and strides must give three sizes for each of the {depth} levels")
        if not 0 <= deep_supervision <= depth - 2:
            raise ValueError(f"deep_supervision must be in [0, {depth - 2}] for depth {depth}, got {deep_supervision}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        divisors = tuple(int(torch.tensor([s[a] for s in level_strides]).prod()) for a in range(3))
        self.size_divisor: int | tuple[int, int, int] = divisors[0] if len(set(divisors)) == 1 else divisors
        self.deep_supervision = int(deep_supervision)
        # nnU-Net's loss weights: 1, 1/2, 1/4 ... per level, normalised to sum 1
        raw = [0.5**level for level in range(self.deep_supervision + 1)]
        self.level_weights = [w / sum(raw) for w in raw]
        self.net = DynUNet(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=level_kernels,
            strides=level_strides,
            upsample_kernel_size=level_strides[1:],
            filters=widths,
            norm_name=norm,
            deep_supervision=self.deep_supervision > 0,
            deep_supr_num=max(self.deep_supervision, 1),
            res_block=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | NetworkOutputs:
        """Logits ``(B, out_channels, Z, Y, X)`` for an input ``(B, in_channels, Z, Y, X)``; in training with
        deep supervision, :class:`NetworkOutputs` whose ``aux`` are the lower levels' logits (same shape)."""
        out = self.net(x)
        if not (self.training and self.deep_supervision):
            return out
        return NetworkOutputs(out[:, 0], aux=list(out[:, 1:].unbind(1)), aux_weights=self.level_weights[1:],
                              main_weight=self.level_weights[0])


@register_model("dynunet")
def dynunet(
    in_channels: int,
    out_channels: int,
    depth: int = 4,
    features: Sequence[int] | None = None,
    norm: str = "instance",
    kernels: Sequence[Sequence[int]] | None = None,
    strides: Sequence[Sequence[int]] | None = None,
    deep_supervision: int = 0,
) -> DynUNetReference:
    """Build :class:`DynUNetReference` (nnU-Net-like); receptive field 79 voxels at the defaults."""
    return DynUNetReference(in_channels, out_channels, depth=depth, features=features, norm=norm, kernels=kernels,
                            strides=strides, deep_supervision=deep_supervision)
