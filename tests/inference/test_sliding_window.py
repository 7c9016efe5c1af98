"""Sliding-window inference: equivalence with a full forward pass and with MONAI, mirroring, skipping, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference
from torch import nn

from clinseg.errors import ConfigError
from clinseg.inference import (
    gaussian_importance_map,
    predict_probabilities,
    window_starts,
)


def _tiny_net(out_channels: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, out_channels, 3, padding=1))


def _image(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3


def _monai(net: nn.Module, x: torch.Tensor, patch: tuple[int, int, int], activation: str = "sigmoid") -> np.ndarray:
    with torch.no_grad():
        logits = sliding_window_inference(x[None], patch, 4, net.eval(), overlap=0.5, mode="gaussian")[0]
    return (torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, 0)).numpy()


def test_window_starts_and_gaussian_match_monai() -> None:
    from monai.data.utils import compute_importance_map

    assert window_starts(24, 16, 0.5) == [0, 8]
    assert window_starts(37, 8, 0.5) == [0, 4, 8, 12, 16, 20, 24, 28, 29]
    assert window_starts(16, 16, 0.5) == [0]
    torch.testing.assert_close(
        gaussian_importance_map((8, 16, 12)), compute_importance_map((8, 16, 12), mode="gaussian", sigma_scale=0.125)
    )


def test_one_patch_volume_equals_full_forward() -> None:
    net, x = _tiny_net(), _image((1, 16, 16, 16))
    probs = predict_probabilities(net, x, (16, 16, 16), amp=False, device="cpu")
    with torch.no_grad():
        expected = torch.sigmoid(net(x[None]))[0].numpy()
    assert probs.dtype == np.float16 and probs.shape == (3, 16, 16, 16)
    np.testing.assert_allclose(probs.astype(np.float32), expected, atol=5e-4)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_matches_monai_sliding_window(batch_size: int) -> None:
    # 37 slices with 8-slice windows: 9 z-rows, so the rolling slab moves many times.
    net, x = _tiny_net(), _image((1, 37, 20, 24))
    expected = _monai(net, x, (8, 16, 16))
    probs = predict_probabilities(net, x, (8, 16, 16), batch_size=batch_size, amp=False, device="cpu")
    assert np.abs(probs.astype(np.float32) - expected).max() < 1e-3
    probs_bf16 = predict_probabilities(net, x, (8, 16, 16), batch_size=batch_size, amp=True, device="cpu")
    assert np.abs(probs_bf16.astype(np.float32) - expected).max() < 1e-2  # measured 2.8e-3


def test_volume_smaller_than_patch_is_padded_like_monai() -> None:
    net, x = _tiny_net(), _image((1, 10, 16, 13))
    probs = predict_probabilities(net, x, (16, 16, 16), amp=False, device="cpu")
    assert probs.shape == (3, 10, 16, 13)
    assert np.abs(probs.astype(np.float32) - _monai(net, x, (16, 16, 16))).max() < 1e-3


def test_softmax_sums_to_one_and_matches_monai() -> None:
    net, x = _tiny_net(4), _image((1, 20, 24, 16))
    probs = predict_probabilities(net, x, (16, 16, 16), activation="softmax", amp=False, device="cpu")
    np.testing.assert_allclose(probs.astype(np.float32).sum(0), 1.0, atol=2e-3)
    assert np.abs(probs.astype(np.float32) - _monai(net, x, (16, 16, 16), "softmax")).max() < 1e-3


def test_mirroring() -> None:
    # A flip-equivariant net (1x1x1 conv): mirroring changes nothing.
    torch.manual_seed(0)
    pointwise, x = nn.Conv3d(1, 2, 1), _image((1, 16, 16, 16))
    plain = predict_probabilities(pointwise, x, (16, 16, 16), amp=False, device="cpu")
    mirrored = predict_probabilities(pointwise, x, (16, 16, 16), mirror_axes=(0, 1, 2), amp=False, device="cpu")
    np.testing.assert_array_equal(plain, mirrored)
    # A generic net: the mean of the logits of x and of the flip-back of f(flip(x)), by hand.
    net = _tiny_net()
    with torch.no_grad():
        logits = (net(x[None]) + torch.flip(net(torch.flip(x[None], (4,))), (4,))) / 2
    probs = predict_probabilities(net, x, (16, 16, 16), mirror_axes=(2,), amp=False, device="cpu")
    np.testing.assert_allclose(probs.astype(np.float32), torch.sigmoid(logits)[0].numpy(), atol=5e-4)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_skip_background(activation: str) -> None:
    # X windows start at 0, 8, 16, 24, 32; only x < 12 is tissue, so windows 16, 24 and 32 are pure air.
    x = torch.full((1, 16, 16, 48), -1.0)
    x[..., :12] = _image((1, 16, 16, 12))
    net = _tiny_net()
    full = predict_probabilities(net, x, (16, 16, 16), activation=activation, amp=False, device="cpu")
    skip = predict_probabilities(
        net, x, (16, 16, 16), activation=activation, amp=False, device="cpu", skip_background=-1.0
    )
    np.testing.assert_array_equal(skip[..., :16], full[..., :16])  # covered by the same (run) windows
    background = np.zeros(3, np.float16) if activation == "sigmoid" else np.array([1, 0, 0], np.float16)
    expected = np.broadcast_to(background[:, None, None, None], skip[..., 24:].shape)
    np.testing.assert_array_equal(skip[..., 24:], expected)


def test_all_windows_skipped_gives_background() -> None:
    probs = predict_probabilities(_tiny_net(), torch.zeros(1, 8, 8, 8), (8, 8, 8), skip_background=0.0, device="cpu")
    assert probs.shape == (3, 8, 8, 8) and not probs.any()


def test_inputs_and_model_state_untouched() -> None:
    net, x = _tiny_net(), _image((1, 16, 16, 16)).numpy()
    before = x.copy()
    net.train()
    predict_probabilities(net, x, (16, 16, 16), device="cpu")
    np.testing.assert_array_equal(x, before)
    assert net.training


def test_invalid_patch_size_for_size_divisor() -> None:
    net = _tiny_net()
    net.size_divisor = 4  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="size_divisor 4"):
        predict_probabilities(net, torch.zeros(1, 20, 20, 20), (18, 16, 16), device="cpu")
    with pytest.raises(ConfigError, match="overlap"):
        predict_probabilities(net, torch.zeros(1, 20, 20, 20), (16, 16, 16), overlap=1.0, device="cpu")


def test_float32_slab_is_one_patch_thick(monkeypatch: pytest.MonkeyPatch) -> None:
    import clinseg.inference.sliding_window as sw

    shapes: list[tuple[int, ...]] = []
    original = sw._RollingSlab.__init__

    def spy(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        shapes.append(tuple(self.logits.shape))

    monkeypatch.setattr(sw._RollingSlab, "__init__", spy)
    predict_probabilities(_tiny_net(), _image((1, 48, 16, 24)), (8, 16, 16), batch_size=4, device="cpu")
    assert shapes == [(8, 16, 24, 3)]  # (patch z, Y, X, classes), not the 48-slice volume
