"""What a network with extra training-time heads returns while training.

Most networks return their segmentation logits. Some have heads that only training uses: the auxiliary
classification layers of the modality-specific subnetworks (seed 001 §2.2.2; penalised during training,
ignored at test time) or the image-level classification branch of mixed supervision (seed 001 chapter 3).
In training mode such a network returns :class:`NetworkOutputs`; in eval mode (sliding-window inference,
validation, prediction) it returns the segmentation logits alone, so inference needs no special case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class NetworkOutputs:
    """Training-time outputs.

    Attributes
    ----------
    logits : segmentation logits ``(B, N, *P)``: the main output.
    aux : auxiliary segmentation logits, each ``(B, N, *P)`` (deep supervision of subnetworks).
    aux_weights : loss weight of each auxiliary output; the main output weighs ``main_weight``.
    main_weight : loss weight of the main output.
    image_logits : image-level classification logits ``(B, N)`` (one per class), or None.
    """

    logits: torch.Tensor
    aux: list[torch.Tensor] = field(default_factory=list)
    aux_weights: list[float] = field(default_factory=list)
    main_weight: float = 1.0
    image_logits: torch.Tensor | None = None

    def float(self) -> NetworkOutputs:
        """All tensors in float32 (losses are computed in full precision under autocast)."""
        return NetworkOutputs(self.logits.float(), [a.float() for a in self.aux], list(self.aux_weights),
                              self.main_weight, None if self.image_logits is None else self.image_logits.float())
