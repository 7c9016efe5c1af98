"""Reusable building blocks shared by the architectures in :mod:`clinseg.models`.

All blocks take and return channel-first tensors ``(B, C, Z, Y, X)``; those with a ``dims`` option build the
same block in 2D, ``(B, C, Y, X)``, for the slice-wise networks. Convolutions use zero padding
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


#: Normalisation layers by name: ``(channels, dims) -> module``.
NORMS: dict[str, Callable[[int, int], nn.Module]] = {
    "group": lambda channels, dims: _group_norm(channels),
    "instance": lambda channels, dims: (nn.InstanceNorm3d if dims == 3 else nn.InstanceNorm2d)(channels, affine=True),
    "batch": lambda channels, dims: (nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d)(channels),
}

#: Convolution, transposed convolution and max pooling by number of spatial dimensions.
CONV = {2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAX_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}


def make_norm(norm: str, channels: int, dims: int = 3) -> nn.Module:
    """A normalisation layer for ``channels`` feature maps.

    Parameters
    ----------
    norm : one of :data:`NORMS` (``"group"``, ``"instance"``, ``"batch"``).
    channels : number of channels ``C`` of the ``(B, C, Z, Y, X)`` input.
    dims : spatial dimensions, 3 or 2 (``(B, C, Y, X)`` input).

    Raises
    ------
    ConfigError
        For an unknown name.
    """
    if norm not in NORMS:
        raise ConfigError(f"unknown norm {norm!r}; known norms: {', '.join(sorted(NORMS))}")
    return NORMS[norm](channels, dims)


class ConvNormAct(nn.Sequential):
    """Convolution -> normalisation -> ReLU (post-activation unit).

    Parameters
    ----------
    in_channels, out_channels : channel counts of input and output.
    kernel_size : cubic kernel size, odd; zero padding ``kernel_size // 2``.
    stride : cubic stride; 2 halves each spatial size (a learned downsampling, Fig. 3 '/2' of the seed study).
    norm : name in :data:`NORMS`.
    dims : 3 (default) or 2 spatial dimensions.

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z / stride, Y / stride, X / stride)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, norm: str = "group",
        dims: int = 3,
    ) -> None:
        super().__init__(
            CONV[dims](in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
            make_norm(norm, out_channels, dims),
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

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group", dims: int = 3) -> None:
        super().__init__(
            ConvNormAct(in_channels, out_channels, norm=norm, dims=dims),
            ConvNormAct(out_channels, out_channels, norm=norm, dims=dims),
        )
