"""unet2d: a 2D U-Net run slice by slice inside the 3D pipeline."""

from __future__ import annotations

import pytest
import torch

from clinseg.errors import ConfigError
from clinseg.inference.sliding_window import predict_probabilities
from clinseg.models import create_model, size_divisors


@pytest.mark.parametrize(("plane", "axis"), [("axial", 0), ("coronal", 1), ("sagittal", 2)])
def test_each_slice_is_segmented_on_its_own(plane: str, axis: int):
    torch.manual_seed(0)
    net = create_model("unet2d", 2, 3, features=(4, 8), plane=plane).eval()
    assert size_divisors(net) == tuple(1 if a == axis else 2 for a in range(3))
    x = torch.randn(2, 2, 6, 8, 10) if axis == 0 else torch.randn(2, 2, 8, 6, 10) if axis == 1 else \
        torch.randn(2, 2, 8, 10, 6)
    with torch.no_grad():
        full = net(x)
        alone = net(x.narrow(2 + axis, 3, 1))  # one slice by itself
        changed = x.clone()
        changed.narrow(2 + axis, 0, 1).add_(5.0)  # perturb slice 0 only
        after = net(changed)
    assert full.shape == (2, 3, *x.shape[2:])
    assert torch.allclose(full.narrow(2 + axis, 3, 1), alone, atol=1e-5)
    assert torch.allclose(full.narrow(2 + axis, 1, x.shape[2 + axis] - 1),
                          after.narrow(2 + axis, 1, x.shape[2 + axis] - 1), atol=1e-5)  # no other slice moved


def test_weights_are_2d():
    net = create_model("unet2d", 1, 1, features=(4, 8))
    kernels = [m.weight.ndim for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels and all(k == 4 for k in kernels)
    assert not any(isinstance(m, torch.nn.Conv3d) for m in net.modules())


def test_sliding_window_with_one_slice_patches():
    net = create_model("unet2d", 1, 2, features=(4, 8))
    probs = predict_probabilities(net, torch.randn(1, 5, 12, 12).numpy(), (1, 8, 8), device="cpu")
    assert probs.shape == (2, 5, 12, 12)
    with pytest.raises(ConfigError, match=r"\[1, 2, 2\]"):
        predict_probabilities(net, torch.randn(1, 5, 12, 12).numpy(), (1, 7, 8), device="cpu")


def test_unknown_plane_is_a_config_error():
    with pytest.raises(ConfigError, match="plane"):
        create_model("unet2d", 1, 1, plane="oblique")
