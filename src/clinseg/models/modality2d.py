"""``modality2d``: seed 001's 2D brain-tumour model with modality-specific subnetworks (§2.2.2, Fig. 2.6).

Given an input with K channels (MR sequences), K + 1 subnetworks process it: one per sequence (that channel
alone) and one on all sequences together. Each subnetwork is a reduced U-Net whose first layer is
concatenated to an upsampling layer "to combine local and global information" (Fig. 2.6). The last layers
of the K + 1 subnetworks are concatenated and fed to the main part, a U-Net: convolutions and max-poolings
down, bilinear upsamplings, convolutions and concatenations up.

Each subnetwork has an *auxiliary classification layer* (a 1x1 convolution to the classes) that training
penalises "to force the subnetworks to extract the most pertinent information from each MR sequence" and
that the test phase ignores: in training mode :class:`ModalityNet2d` returns
:class:`~clinseg.models.outputs.NetworkOutputs` (main logits + K + 1 auxiliary logits and their loss weights,
Eq. 2.2), in eval mode the main logits only. The loss weights are a convex combination: each auxiliary layer
weighs ``aux_weight`` (thesis: 0.05) and the main output the rest (thesis, K = 4: 1 - 5 x 0.05 = 0.75, §2.3.2).

Because the modality-specific subnetworks are separate and see one sequence each, they can be pretrained
alone on every case that has their sequence (§2.3.3): ``modality2d_subnet`` is one subnetwork as a network
of its own (its auxiliary layer is its output) whose parameter names are those of ``subnets.<k>`` in the
full model, so its weights copy over by prefix (see :func:`subnet_prefix`).

Widths. The thesis gives the numbers of feature maps only in the drawing of Fig. 2.6, which the text
does not reproduce; ours are modest so that a CPU trains the network on 64 x 64 slices:

==========================  =============================================  =============================
part                        thesis (§2.2.2, Fig. 2.6)                      ours (defaults)
==========================  =============================================  =============================
subnetworks                 K + 1 reduced U-Nets (one per sequence + all)  K + 1 reduced U-Nets
subnetwork levels           first layer concatenated to an upsampling      ``subnet_features=(8, 16)``:
                            layer (widths: Fig. 2.6)                       2 conv @1, pool, 2 conv @1/2,
                                                                           bilinear x2, concat, 2 conv @1
auxiliary layers            conv to the classes, one per subnetwork        1x1 conv to the classes
main part                   U-Net: conv + max-pool down, bilinear up +     ``features=(16, 32, 64, 128)``:
                            conv + concatenations (widths: Fig. 2.6)       2 conv per level, 3 poolings
normalisation               batch normalisation (§2.3.2)                   ``norm="batch"``
loss weights                c_main 0.75, c_k 0.05 (K = 4, §2.3.2)          ``aux_weight=0.05``, main 1-rest
==========================  =============================================  =============================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from clinseg.errors import ConfigError
from clinseg.models.layers import DoubleConv
from clinseg.models.outputs import NetworkOutputs
from clinseg.models.registry import register_model
from clinseg.models.unet2d import SliceWise

#: Default subnetwork widths per level (full resolution first).
SUBNET_FEATURES: tuple[int, ...] = (8, 16)
#: Default main-part widths per level (full resolution first; the last level is the bottleneck).
MAIN_FEATURES: tuple[int, ...] = (16, 32, 64, 128)
#: Loss weight of each auxiliary classification layer (seed 001 §2.3.2: c_k = 0.05).
AUX_WEIGHT: float = 0.05


class _UNet2dBody(nn.Module):
    """A 2D U-Net body with bilinear upsampling: ``(N, C, H, W) -> (N, features[0], H, W)`` features.

    Down: :class:`DoubleConv` per level, 2x2 max pooling between levels. Up: bilinear x2 upsampling,
    concatenation with the same level's down features, :class:`DoubleConv` back to that level's width. With two
    levels, the first layer's features are concatenated to the upsampled ones (the subnetworks of Fig. 2.6).
    ``H, W`` must be multiples of ``2 ** (len(features) - 1)``.
    """

    def __init__(self, in_channels: int, features: Sequence[int], norm: str) -> None:
        super().__init__()
        if len(features) < 1 or any(int(f) < 1 for f in features):
            raise ConfigError(f"features must be one or more positive widths, got {list(features)}")
        widths = [int(f) for f in features]
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.down.append(DoubleConv(previous, width, norm=norm, dims=2))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up = nn.ModuleList(
            DoubleConv(widths[level + 1] + widths[level], widths[level], norm=norm, dims=2)
            for level in reversed(range(len(widths) - 1)))
        self.out_features = widths[0]
        self.size_divisor = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            if level:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([self.upsample(x), skip], dim=1))
        return x


class SequenceSubnet(nn.Module):
    """One subnetwork: a reduced U-Net over some input channels plus its auxiliary classification layer.

    Parameters
    ----------
    in_channels : 1 for a modality-specific subnetwork, K for the one combining all sequences.
    out_channels : classes of the auxiliary layer (as many as the main output).
    features : widths per level, full resolution first.
    norm : normalisation name (:data:`clinseg.models.layers.NORMS`).

    Shapes
    ------
    :meth:`features`: ``(N, in_channels, H, W) -> (N, features[0], H, W)`` (the subnetwork's last layer);
    ``forward``: ``(N, in_channels, H, W) -> (N, out_channels, H, W)`` auxiliary logits, so the subnetwork
    alone is a segmentation network (stage 1 of §2.3.3).
    """

    def __init__(self, in_channels: int, out_channels: int, features: Sequence[int] = SUBNET_FEATURES,
                 norm: str = "batch") -> None:
        super().__init__()
        self.body = _UNet2dBody(in_channels, features, norm)
        self.aux = nn.Conv2d(self.body.out_features, out_channels, kernel_size=1)
        self.out_channels = out_channels
        self.size_divisor = self.body.size_divisor

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The subnetwork's last layer, which the main part reads."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Auxiliary logits."""
        return self.aux(self.body(x))


class ModalityNet2d(nn.Module):
    """The 2D model with K + 1 co-trained subnetworks and a U-Net main part (seed 001 §2.2.2).

    Parameters
    ----------
    in_channels : K, the number of MR sequences.
    out_channels : classes of the main and auxiliary outputs.
    features : main-part widths per level (full resolution first).
    subnet_features : widths per level of every subnetwork.
    norm : normalisation name; the thesis uses batch normalisation in the 2D model.
    aux_weight : loss weight of each of the K + 1 auxiliary layers; the main output weighs
        ``1 - (K + 1) * aux_weight`` (Eq. 2.2 is a convex combination).

    Shapes
    ------
    ``(N, K, H, W)`` -> training: ``NetworkOutputs(logits (N, out, H, W), aux = K + 1 x (N, out, H, W))``,
    aux in subnetwork order (sequence 0 .. K-1, then all sequences); eval: logits ``(N, out, H, W)``.
    ``H, W`` multiples of :attr:`size_divisor`.
    """

    def __init__(self, in_channels: int, out_channels: int, features: Sequence[int] = MAIN_FEATURES,
                 subnet_features: Sequence[int] = SUBNET_FEATURES, norm: str = "batch",
                 aux_weight: float = AUX_WEIGHT) -> None:
        super().__init__()
        main_weight = 1.0 - (in_channels + 1) * aux_weight
        if aux_weight < 0 or main_weight < 0:
            raise ConfigError(f"aux_weight must be in [0, 1/(K+1)] = [0, {1 / (in_channels + 1):.3f}] so the "
                              f"loss weights form a convex combination, got {aux_weight}")
        self.in_channels = in_channels
        self.subnets = nn.ModuleList(
            [SequenceSubnet(1, out_channels, subnet_features, norm) for _ in range(in_channels)]
            + [SequenceSubnet(in_channels, out_channels, subnet_features, norm)])
        self.main = _UNet2dBody((in_channels + 1) * self.subnets[0].body.out_features, features, norm)
        self.head = nn.Conv2d(self.main.out_features, out_channels, kernel_size=1)
        self.aux_weight = float(aux_weight)
        self.main_weight = main_weight
        self.out_channels = out_channels
        self.size_divisor = max(self.main.size_divisor, self.subnets[0].size_divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor | NetworkOutputs:
        inputs = [x[:, k:k + 1] for k in range(self.in_channels)] + [x]
        features = [subnet.features(inp) for subnet, inp in zip(self.subnets, inputs)]
        logits = self.head(self.main(torch.cat(features, dim=1)))
        if not self.training:  # the auxiliary layers are ignored at test time
            return logits
        aux = [subnet.aux(f) for subnet, f in zip(self.subnets, features)]
        return NetworkOutputs(logits, aux, [self.aux_weight] * len(aux), self.main_weight)


def subnet_prefix(sequence: int) -> str:
    """Parameter-name prefix of sequence ``sequence``'s subnetwork inside the 2D core of ``modality2d``,
    e.g. ``"subnets.2."``; ``modality2d_subnet``'s 2D core has the same names without it."""
    return f"subnets.{sequence}."


@register_model("modality2d")
def modality2d(
    in_channels: int,
    out_channels: int,
    features: Sequence[int] = MAIN_FEATURES,
    subnet_features: Sequence[int] = SUBNET_FEATURES,
    norm: str = "batch",
    aux_weight: float = AUX_WEIGHT,
    plane: str = "axial",
) -> SliceWise:
    """Seed 001's 2D model with modality-specific subnetworks on ``plane`` slices (:class:`ModalityNet2d`).
    Train it with a patch one voxel thick along the slicing axis, e.g. ``patch_size: [1, 64, 64]`` (axial)."""
    return SliceWise(ModalityNet2d(in_channels, out_channels, features, subnet_features, norm, aux_weight), plane)


@register_model("modality2d_subnet")
def modality2d_subnet(
    in_channels: int,
    out_channels: int,
    subnet_features: Sequence[int] = SUBNET_FEATURES,
    norm: str = "batch",
    plane: str = "axial",
) -> SliceWise:
    """One subnetwork of ``modality2d`` alone, its auxiliary layer as output: stage 1 of the training with
    missing sequences (§2.3.3). ``in_channels`` is 1 for a modality-specific subnetwork."""
    return SliceWise(SequenceSubnet(in_channels, out_channels, subnet_features, norm), plane)
