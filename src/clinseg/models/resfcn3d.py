"""``resfcn3d``: the 3D fully convolutional residual network of the seed OAR study (section 3, Fig. 3).

Layout, top to bottom (seed study section 3: "two strided convolutional downsampling layers, followed by 16
residual blocks and two transposed convolutional upsampling layers"; the blocks use He et al.'s updated,
pre-activation configuration; one sigmoid output per class):

====================  ===========================================  ===============
stage                 layer                                        resolution
====================  ===========================================  ===============
input conv            conv 3³ -> norm -> ReLU, ``features[0]``       1
down 1                conv 3³ stride 2 -> norm -> ReLU, ``[1]``      1/2
down 2                conv 3³ stride 2 -> norm -> ReLU, ``[2]``      1/4
residual stack        ``blocks`` x pre-activation block, ``[2]``     1/4
                      final norm -> ReLU (closes the pre-act stack)
up 1                  transposed conv 2³ x2 -> norm -> ReLU, ``[1]`` 1/2
up 2                  transposed conv 2³ x2 -> norm -> ReLU, ``[0]`` 1
head                  conv 1³ with bias, ``out_channels``            1
====================  ===========================================  ===============

The head returns logits; the sigmoid per class belongs to the loss and to inference, not to the model.
There are no skip connections: all spatial detail is regenerated from the 1/4-resolution features, and the
network's large context comes from the 16 blocks at 1/4 resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from clinseg.models.layers import ConvNormAct, PreActResBlock, UpConvNormAct, make_norm
from clinseg.models.registry import register_model


class ResFCN3d(nn.Module):
    """3D fully convolutional residual network (seed study Fig. 3), sigmoid-ready logits per class.

    Parameters
    ----------
    in_channels : input image channels ``C``.
    out_channels : output channels, one per class (11 OARs in the seed study).
    features : widths at full, 1/2 and 1/4 resolution. The default ``(16, 32, 32)`` is sized for CPU
        training on 48-64³ patches; the paper-sized network is wider.
    blocks : number of pre-activation residual blocks at 1/4 resolution (16 in the seed study).
    norm : ``"group"`` (default, works for batch size 1-2), ``"instance"`` or ``"batch"``.

    Shapes
    ------
    ``(B, in_channels, Z, Y, X) -> (B, out_channels, Z, Y, X)`` with ``Z, Y, X`` multiples of
    :attr:`size_divisor` = 4.

    Notes
    -----
    Receptive field along each axis, in voxels: ``9 + 16 * blocks``, i.e. **265** at the default
    ``blocks=16`` (input conv 3, two stride-2 convs to 9, then each block's two 3³ convs at a 4-voxel step add
    16; the kernel-2 transposed convs and the 1³ head add nothing). It is independent of the widths.

    Examples
    --------
    >>> net = ResFCN3d(1, 3, features=(4, 8, 8), blocks=2)
    >>> net(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 3, 16, 16, 16])
    """

    size_divisor: int = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features: tuple[int, int, int] = (16, 32, 32),
        blocks: int = 16,
        norm: str = "group",
    ) -> None:
        super().__init__()
        if len(features) != 3:
            raise ValueError(f"features must give 3 widths (full, 1/2, 1/4 resolution), got {features!r}")
        if blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {blocks}")
        f0, f1, f2 = (int(f) for f in features)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stem = ConvNormAct(in_channels, f0, norm=norm)
        self.down1 = ConvNormAct(f0, f1, stride=2, norm=norm)
        self.down2 = ConvNormAct(f1, f2, stride=2, norm=norm)
        self.blocks = nn.Sequential(*(PreActResBlock(f2, norm=norm) for _ in range(blocks)))
        # He et al. 2016: a pre-activation stack ends with one more norm -> ReLU before the next layer.
        self.post_norm = make_norm(norm, f2)
        self.post_act = nn.ReLU(inplace=True)
        self.up1 = UpConvNormAct(f2, f1, norm=norm)
        self.up2 = UpConvNormAct(f1, f0, norm=norm)
        self.head = nn.Conv3d(f0, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, Z, Y, X)`` for an input ``(B, in_channels, Z, Y, X)``."""
        x = self.down2(self.down1(self.stem(x)))
        x = self.post_act(self.post_norm(self.blocks(x)))
        return self.head(self.up2(self.up1(x)))


@register_model("resfcn3d")
def resfcn3d(
    in_channels: int,
    out_channels: int,
    features: tuple[int, int, int] = (16, 32, 32),
    blocks: int = 16,
    norm: str = "group",
) -> ResFCN3d:
    """Build :class:`ResFCN3d` (seed study Fig. 3); receptive field 265 voxels at the defaults."""
    widths: tuple[int, int, int] = tuple(features)  # type: ignore[assignment]  # YAML gives lists
    return ResFCN3d(in_channels, out_channels, features=widths, blocks=blocks, norm=norm)
