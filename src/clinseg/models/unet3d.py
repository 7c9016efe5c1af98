"""``unet3d``: a plain 3D U-Net (Çiçek et al. 2016) with GroupNorm, zero padding and same-size output.

Each level runs two conv 3³ -> norm -> ReLU units; the encoder goes down with 2³ max pooling and the
decoder comes up with kernel-2 stride-2 transposed convolutions, concatenating the encoder features of the
same level (skip connections). Zero padding keeps every level's size, so the output has the input's spatial
size and no cropping is needed, as in nnU-Net.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from clinseg.models.layers import CONV, CONV_TRANSPOSE, MAX_POOL, DoubleConv
from clinseg.models.registry import register_model


class UNet3d(nn.Module):
    """3D U-Net returning per-class logits at the input resolution.

    Parameters
    ----------
    in_channels : input image channels ``C``.
    out_channels : output logit channels (one per class).
    features : widths per level, full resolution first; ``len(features)`` is the number of levels
        (the last one is the bottleneck). Default ``(8, 16, 32, 64)``: 4 levels, lean enough for CPU.
    norm : ``"group"`` (default), ``"instance"`` or ``"batch"``.
    dims : 3 (default); 2 builds the same U-Net with 2D layers on ``(B, C, Y, X)`` (see ``unet2d``).

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z, Y, X)`` with ``Z, Y, X`` multiples of
    :attr:`size_divisor` = ``2 ** (len(features) - 1)`` (8 at the default).

    Notes
    -----
    Receptive field along each axis, in voxels: **100** at the default 4 levels (92 for half of the output
    positions, which alternate with period 8; 18, 44 and 204 for 2, 3 and 5 levels). The longest path runs
    down every encoder level and back up every decoder level. Computed by
    :func:`clinseg.models.receptive_field` and checked against the measured one in the tests.

    Examples
    --------
    >>> net = UNet3d(1, 2, features=(4, 8, 16))
    >>> net(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 2, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features: Sequence[int] = (8, 16, 32, 64),
        norm: str = "group",
        dims: int = 3,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        widths = [int(f) for f in features]
        if len(widths) < 1:
            raise ValueError("features must give at least one width")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_divisor: int = 2 ** (len(widths) - 1)
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoders.append(DoubleConv(previous, width, norm=norm, dims=dims))
            previous = width
        self.pool = MAX_POOL[dims](kernel_size=2, stride=2)
        # Decoder level l (coarse to fine): upsample widths[l + 1] -> widths[l], concat skip, two convs.
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(len(widths) - 1)):
            self.ups.append(CONV_TRANSPOSE[dims](widths[level + 1], widths[level], kernel_size=2, stride=2))
            self.decoders.append(DoubleConv(2 * widths[level], widths[level], norm=norm, dims=dims))
        self.head = CONV[dims](widths[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, Z, Y, X)`` for an input ``(B, in_channels, Z, Y, X)``."""
        return self.head(self.decode(x))

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """The last decoder features ``(B, features[0], Z, Y, X)``, before the 1 x 1 head."""
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.pool(x)
            x = encoder(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([skips.pop(), up(x)], dim=1))
        return x


@register_model("unet3d")
def unet3d(
    in_channels: int,
    out_channels: int,
    features: Sequence[int] = (8, 16, 32, 64),
    norm: str = "group",
) -> UNet3d:
    """Build :class:`UNet3d`; 4 levels of widths 8-64, receptive field 100 voxels at the defaults."""
    return UNet3d(in_channels, out_channels, features=features, norm=norm)
