"""Segmentation networks behind one registry, plus receptive-field tools.

Every network maps ``(B, in_channels, Z, Y, X)`` to logits ``(B, out_channels, Z, Y, X)`` and carries the
integer attributes ``out_channels`` and ``size_divisor`` (spatial sizes must be multiples of it).

>>> from clinseg.models import create_model, list_models
>>> list_models()
['dynunet', 'mixed_unet', 'modality2d', 'modality2d_subnet', 'resfcn3d', 'triplanar', 'unet2d', 'unet3d']
>>> net = create_model("resfcn3d", in_channels=1, out_channels=11)
"""

from clinseg.models import (  # noqa: F401  (importing registers the networks)
    dynunet,
    mixed_unet,
    modality2d,
    resfcn3d,
    triplanar,  # seed 004 §3.1: triplanar voxel classifier
    unet2d,
    unet3d,
)
from clinseg.models.receptive_field import empirical_receptive_field, receptive_field
from clinseg.models.registry import (
    create_model,
    list_models,
    register_model,
    size_divisors,
)

__all__ = [
    "create_model",
    "empirical_receptive_field",
    "list_models",
    "receptive_field",
    "register_model",
    "size_divisors",
]
