"""``mixed_unet``: a 2D U-Net with one image-level classification branch per class (seed 001 chapter 3).

Mixed supervision trains a segmentation network on fully annotated slices *and* on slices that only carry
an image-level label ("tumour present"). The U-Net is extended by a classification branch that reads the
U-Net's second to last layer, the decoder's last feature maps (seed 001 §3.3.1, lines 1556-1558), so the
image-level task shapes the features the segmentation uses. Each branch (lines 1577-1606):

1. mean pooling, kernel 8 x 8 and stride 8 x 8 (mean rather than max: no information loss, smooth gradients);
2. one 3 x 3 convolution with ReLU, from the U-Net's top-level width (64 in the thesis) to 32 feature maps;
3. seven fully connected layers with ReLU except the last; the outputs of the 1st and the 5th are
   concatenated and feed the 6th, the 7th gives the image-level score.

In the multiclass case every tumour class has "its dedicated entire classification branch" (lines 1693-1696,
Fig. 3.3), each deciding absent/present for its class; the thesis' two softmax scores of a binary decision
are one logit here (sigmoid + BCE is the same model).

Our choices where the text gives no number (the layer sizes are only in Fig. 3.2, not in the text):
``fc_widths`` (FC1..FC6) default ``(128, 64, 64, 64, 64, 32)``; and an adaptive mean pooling to ``grid``
after the convolution, so the first fully connected layer has a fixed input size whatever the slice size
(an identity when the pooled map already is ``grid``, e.g. 96 x 96 slices -> 12 x 12; the thesis' 300 x 300
inputs gave 11 x 11 maps).

In training mode the network returns :class:`~clinseg.models.outputs.NetworkOutputs` with ``image_logits``
``(B, N)`` (one per foreground class); in eval mode only the segmentation logits, so sliding-window inference,
validation and ``clinseg predict`` are those of a plain U-Net.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from clinseg.models.outputs import NetworkOutputs
from clinseg.models.registry import register_model
from clinseg.models.unet2d import SliceWise
from clinseg.models.unet3d import UNet3d

#: FC1..FC6 widths of a classification branch (FC7 outputs one logit); ours, see the module docstring.
DEFAULT_FC_WIDTHS: tuple[int, ...] = (128, 64, 64, 64, 64, 32)


class ClassificationBranch(nn.Module):
    """Image-level classifier on U-Net features (seed 001 §3.3.1).

    Parameters
    ----------
    in_channels : feature maps of the U-Net's second to last layer (64 in the thesis).
    conv_channels : outputs of the 3 x 3 convolution (32 in the thesis).
    fc_widths : widths of FC1..FC6 (six values); FC7 outputs one logit.
    pool : mean-pooling kernel and stride (8 in the thesis).
    grid : ``(h, w)`` size the convolution's maps are mean-pooled to before FC1.

    Shapes
    ------
    ``(N, in_channels, H, W) -> (N,)`` logits, ``H, W >= pool``.
    """

    def __init__(self, in_channels: int, conv_channels: int = 32, fc_widths: Sequence[int] = DEFAULT_FC_WIDTHS,
                 pool: int = 8, grid: Sequence[int] = (12, 12)) -> None:
        super().__init__()
        widths = [int(w) for w in fc_widths]
        if len(widths) != 6 or min(widths) < 1:
            raise ValueError(f"fc_widths must give six positive widths (FC1..FC6), got {list(fc_widths)}")
        grid_hw = (int(grid[0]), int(grid[1]))
        self.pool = nn.AvgPool2d(pool, stride=pool)
        self.conv = nn.Sequential(nn.Conv2d(in_channels, conv_channels, 3, padding=1), nn.ReLU(inplace=True))
        self.resize = nn.AdaptiveAvgPool2d(grid_hw)
        inputs = [conv_channels * grid_hw[0] * grid_hw[1]] + widths[:4]
        # FC1..FC5, each followed by ReLU
        self.fc = nn.ModuleList(nn.Sequential(nn.Linear(i, o), nn.ReLU(inplace=True))
                                for i, o in zip(inputs, widths[:5]))
        self.fc6 = nn.Sequential(nn.Linear(widths[0] + widths[4], widths[5]), nn.ReLU(inplace=True))
        self.fc7 = nn.Linear(widths[5], 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """One logit per image of the ``(N, C, H, W)`` features."""
        x = self.resize(self.conv(self.pool(features))).flatten(1)
        first = x = self.fc[0](x)
        for layer in self.fc[1:]:
            x = layer(x)
        # seed 001 line 1593: "we concatenate the outputs of the first and the fifth fully-connected layer"
        x = self.fc6(torch.cat([first, x], dim=1))
        return self.fc7(x).squeeze(1)


class MixedUNet2d(UNet3d):
    """A 2D U-Net with one :class:`ClassificationBranch` per foreground class.

    Parameters
    ----------
    in_channels, out_channels, features, norm : as :class:`~clinseg.models.unet3d.UNet3d` with ``dims=2``.
    num_image_classes : number of classification branches (one per tumour class: ``out_channels - 1`` for a
        softmax network with a background channel).
    conv_channels, fc_widths, pool, grid : branch options (:class:`ClassificationBranch`).

    Shapes
    ------
    ``(N, in_channels, H, W) -> (N, out_channels, H, W)`` logits in eval mode; in training mode
    ``NetworkOutputs(logits, image_logits=(N, num_image_classes))``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_image_classes: int,
                 features: Sequence[int] = (16, 32, 64, 128), norm: str = "batch", conv_channels: int = 32,
                 fc_widths: Sequence[int] = DEFAULT_FC_WIDTHS, pool: int = 8, grid: Sequence[int] = (12, 12)) -> None:
        super().__init__(in_channels, out_channels, features=features, norm=norm, dims=2)
        if num_image_classes < 1:
            raise ValueError(f"num_image_classes must be >= 1, got {num_image_classes}")
        width = int(features[0])
        self.branches = nn.ModuleList(ClassificationBranch(width, conv_channels, fc_widths, pool, grid)
                                      for _ in range(num_image_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor | NetworkOutputs:  # type: ignore[override]
        """Segmentation logits (eval), or those plus image-level logits (training)."""
        hidden = self.decode(x)
        logits = self.head(hidden)
        if not self.training:
            return logits
        image_logits = torch.stack([branch(hidden) for branch in self.branches], dim=1)
        return NetworkOutputs(logits, image_logits=image_logits)


@register_model("mixed_unet")
def mixed_unet(
    in_channels: int,
    out_channels: int,
    features: Sequence[int] = (16, 32, 64, 128),
    norm: str = "batch",
    plane: str = "axial",
    num_image_classes: int | None = None,
    conv_channels: int = 32,
    fc_widths: Sequence[int] = DEFAULT_FC_WIDTHS,
    pool: int = 8,
    grid: Sequence[int] = (12, 12),
) -> SliceWise:
    """:class:`MixedUNet2d` on ``plane`` slices (train it with patches one voxel thick, e.g. ``[1, 96, 96]``).

    ``num_image_classes`` defaults to ``out_channels - 1`` (softmax output with background; one branch per
    tumour class), at least 1. Batch normalisation as in the thesis (line 1550)."""
    classes = num_image_classes if num_image_classes is not None else max(out_channels - 1, 1)
    net = MixedUNet2d(in_channels, out_channels, classes, features=features, norm=norm,
                      conv_channels=conv_channels, fc_widths=fc_widths, pool=pool, grid=grid)
    return SliceWise(net, plane)
