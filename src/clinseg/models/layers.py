"""Reusable 3D building blocks shared by the architectures in :mod:`clinseg.models`.

All blocks take and return channel-first tensors ``(B, C, Z, Y, X)``. Convolutions use zero padding
``kernel_size // 2`` so a stride-1 block keeps the spatial size, and a stride-``s`` block divides it by ``s``
(for sizes that are multiples of ``s``).

Normalisation is chosen by name through :data:`NORMS`:

* ``"group"`` (default everywhere): GroupNorm with up to 8 groups; statistics per sample, so it behaves the
  same for batch size 1 or 2, which is what fits on a CPU or a small GPU with 3D patches.
* ``"instance"``: InstanceNorm with affine parameters (the nnU-Net choice).
* ``"batch"``: BatchNorm (the original ResNet choice; needs batches of several patches).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from clinseg.errors import ConfigError

#: Largest number of groups used by ``"group"`` normalisation.
MAX_GROUPS: int = 8


def _group_norm(channels: int) -> nn.Module:
    groups = min(MAX_GROUPS, channels)
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


#: Normalisation layers by name: ``channels -> module``.
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "group": _group_norm,
    "instance": lambda channels: nn.InstanceNorm3d(channels, affine=True),
    "batch": nn.BatchNorm3d,
}


def make_norm(norm: str, channels: int) -> nn.Module:
    """A normalisation layer for ``channels`` feature maps.

    Parameters
    ----------
    norm : one of :data:`NORMS` (``"group"``, ``"instance"``, ``"batch"``).
    channels : number of channels ``C`` of the ``(B, C, Z, Y, X)`` input.

    Raises
    ------
    ConfigError
        For an unknown name.
    """
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r}; known norms: {', '.join(sorted(NORMS))}")
    return NORMS[norm](channels)


class ConvNormAct(nn.Sequential):
    """Convolution -> normalisation -> ReLU (post-activation unit).

    Parameters
    ----------
    in_channels, out_channels : channel counts of input and output.
    kernel_size : cubic kernel size, odd; zero padding ``kernel_size // 2``.
    stride : cubic stride; 2 halves each spatial size (a learned downsampling, Fig. 3 '/2' of the seed study).
    norm : name in :data:`NORMS`.

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z / stride, Y / stride, X / stride)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, norm: str = "group"
    ) -> None:
        super().__init__(
            nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class UpConvNormAct(nn.Sequential):
    """Transposed convolution (kernel 2, stride 2) -> normalisation -> ReLU: a learned x2 upsampling.

    Kernel = stride = 2 means every output voxel is computed from exactly one input voxel, so the unit
    has no checkerboard overlap and adds nothing to the receptive field.

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, 2Z, 2Y, 2X)``.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group") -> None:
        super().__init__(
            nn.ConvTranspose3d(in_channels, out_channels, kernel_size=2, stride=2, bias=False),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class PreActResBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016, "Identity mappings in deep residual networks").

    ``x + conv(relu(norm(conv(relu(norm(x))))))``: normalisation and activation come *before* each
    convolution, and the shortcut is a pure identity, so the signal and its gradient pass through a stack of
    blocks unchanged (the "full pre-activation" unit, Fig. 4e of He et al.). Seed study section 3 uses this
    "updated residual configuration" for its 16 blocks.

    Parameters
    ----------
    channels : channel count ``C``, unchanged by the block.
    kernel_size : cubic kernel size of both convolutions, odd.
    norm : name in :data:`NORMS`.

    Shapes
    ------
    ``(B, C, Z, Y, X) -> (B, C, Z, Y, X)``. Receptive field grows by ``2 * (kernel_size - 1)`` steps of the
    current resolution.
    """

    def __init__(self, channels: int, kernel_size: int = 3, norm: str = "group") -> None:
        super().__init__()
        padding = kernel_size // 2
        self.norm1 = make_norm(norm, channels)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv3d(channels, channels, kernel_size, padding=padding, bias=False)
        self.norm2 = make_norm(norm, channels)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size, padding=padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.act1(self.norm1(x)))
        out = self.conv2(self.act2(self.norm2(out)))
        return x + out


class DoubleConv(nn.Sequential):
    """Two :class:`ConvNormAct` units with kernel 3: the per-level block of a U-Net.

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z, Y, X)``.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group") -> None:
        super().__init__(
            ConvNormAct(in_channels, out_channels, norm=norm),
            ConvNormAct(out_channels, out_channels, norm=norm),
        )
