"""triplanar: the seed 004 triplanar voxel classifier, fully convolutional and per voxel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from clinseg.errors import ConfigError
from clinseg.models import create_model, empirical_receptive_field, size_divisors
from clinseg.models.triplanar import TriplanarNet, triplanar_patches
from tests.models._helpers import check_trains

TINY = {"patch": 7, "layers": 3, "features": 4, "hidden": 8}


def _tiny(in_channels: int = 2, out_channels: int = 3, **kwargs: object) -> TriplanarNet:
    torch.manual_seed(0)
    net = create_model("triplanar", in_channels, out_channels, **{**TINY, **kwargs})
    assert isinstance(net, TriplanarNet)
    return net


def _randomise_batch_norm(net: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so eval-mode batch norm is not an identity."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                for t in (m.running_mean, m.weight, m.bias):
                    t.copy_(torch.randn(t.shape, generator=generator) * 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)


@pytest.mark.parametrize("center", [(3, 3, 2), (0, 6, 0)])
def test_patches_equal_hand_slicing_of_the_padded_volume(center: tuple[int, int, int]) -> None:
    volume = np.random.default_rng(0).normal(size=(2, 6, 7, 5)).astype(np.float32)
    padded = np.pad(volume, ((0, 0), (3, 3), (3, 3), (3, 3)))
    z, y, x = center  # in the padded volume the voxel is at (z + 3, y + 3, x + 3), its window at [z : z + 7]
    expected = np.stack([
        padded[:, z + 3, y:y + 7, x:x + 7],  # axial (Y, X)
        padded[:, z:z + 7, y + 3, x:x + 7],  # coronal (Z, X)
        padded[:, z:z + 7, y:y + 7, x + 3],  # sagittal (Z, Y)
    ])
    got = triplanar_patches(volume, center, patch=7)
    assert got.shape == (3, 2, 7, 7) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert got[0, 1, 3, 3] == volume[1, z, y, x]  # the voxel sits in the middle of every patch
    tensor = triplanar_patches(torch.from_numpy(volume), center, patch=7)
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_array_equal(tensor.numpy(), expected)


def test_patches_corner_values_by_hand() -> None:
    volume = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)  # value = 12 z + 4 y + x
    got = triplanar_patches(volume, (0, 0, 0), patch=3)
    np.testing.assert_array_equal(got[0, 0], [[0, 0, 0], [0, 0, 1], [0, 4, 5]])  # axial z=0: rows y, cols x
    np.testing.assert_array_equal(got[1, 0], [[0, 0, 0], [0, 0, 1], [0, 12, 13]])  # coronal y=0: rows z, cols x
    np.testing.assert_array_equal(got[2, 0], [[0, 0, 0], [0, 0, 4], [0, 12, 16]])  # sagittal x=0: rows z, cols y
    with pytest.raises(ValueError, match="outside"):
        triplanar_patches(volume, (2, 0, 0), patch=3)


def test_whole_volume_equals_per_voxel_classification() -> None:
    net = _tiny()
    _randomise_batch_norm(net)
    net.eval()
    volume = torch.randn(1, 2, 6, 7, 5)
    voxels = [(z, y, x) for z in range(6) for y in range(7) for x in range(5)]
    patches = torch.stack([triplanar_patches(volume[0], v, patch=7) for v in voxels])
    with torch.no_grad():
        dense = net(volume)
        per_voxel = net.forward_patches(patches)  # (210, 3), voxels in C order
    assert dense.shape == (1, 3, 6, 7, 5)
    assert per_voxel.shape == (len(voxels), 3)
    torch.testing.assert_close(dense[0].permute(1, 2, 3, 0).reshape(-1, 3), per_voxel, atol=1e-5, rtol=1e-5)


def test_default_network_matches_the_paper_and_counts_parameters() -> None:
    net = create_model("triplanar", 1, 9)
    convs = [m for m in net.stack if isinstance(m, nn.Conv2d)]
    assert len(convs) == 25 and all(c.kernel_size == (3, 3) and c.padding == (0, 0) for c in convs)
    assert all(c.out_channels == 32 for c in convs)
    assert sum(isinstance(m, nn.ELU) for m in net.modules()) == 27
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    # Stack: conv 1->32 without bias (9 * 32) + batch norm (2 * 32), then 24 x (32 * 32 * 9 + 64).
    stack = 1 * 32 * 9 + 64 + 24 * (32 * 32 * 9 + 64)
    # Fully connected: 96 -> 192 and 192 -> 192 with batch norm; output 192 -> 9 with bias.
    head = (96 * 192 + 2 * 192) + (192 * 192 + 2 * 192) + (192 * 9 + 9)
    assert stack + head == 280_873
    assert sum(p.numel() for p in net.parameters()) == stack + head
    net.eval()
    volume = torch.randn(1, 1, 1, 1, 1)  # one voxel: three 51 x 51 patches, all but the centre zero
    with torch.no_grad():
        dense = net(volume)
        alone = net.forward_patches(triplanar_patches(volume[0], (0, 0, 0))[None])
    assert dense.shape == (1, 9, 1, 1, 1)
    torch.testing.assert_close(dense.flatten(), alone.flatten(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("in_channels", "out_channels", "shape"), [(1, 2, (3, 4, 5)), (2, 3, (1, 8, 2))])
def test_output_has_input_size(in_channels: int, out_channels: int, shape: tuple[int, int, int]) -> None:
    net = _tiny(in_channels, out_channels).eval()
    assert net.out_channels == out_channels and size_divisors(net) == (1, 1, 1)
    with torch.no_grad():
        assert net(torch.randn(2, in_channels, *shape)).shape == (2, out_channels, *shape)
    with pytest.raises(ValueError, match=r"\(N, 3, 1, 7, 7\)|\(N, 3, 2, 7, 7\)"):
        net.forward_patches(torch.zeros(4, 3, in_channels, 5, 5))


@pytest.mark.parametrize(("options", "message"), [
    ({"patch": 7, "layers": 4}, r"layers=4 does not fit patch=7.*= 3"),
    ({"patch": 51, "layers": 24}, r"layers=24 does not fit patch=51.*= 25"),
    ({"patch": 8, "layers": 3}, r"patch=8"),
    ({"patch": 1, "layers": 0}, r"patch=1"),
    ({"features": 0}, r"features=0"),
    ({"dropout": 1.0}, r"dropout=1.0"),
    ({"norm": "group"}, r"norm='group'"),
])
def test_invalid_options_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("triplanar", 1, 2, **{**TINY, **options})


def test_backward_reaches_every_parameter() -> None:
    check_trains(_tiny(1, 2), in_channels=1, size=3)
    check_trains(_tiny(1, 2, norm="none"), in_channels=1, size=3)


def test_dropout_is_active_only_in_training() -> None:
    x = torch.randn(2, 2, 3, 3, 3)
    net = _tiny()
    with torch.no_grad():
        net.train()
        assert not torch.allclose(net(x), net(x))  # batch norm is deterministic, dropout is not
        net.eval()
        torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)
        no_dropout = _tiny(dropout=0.0).train()
        torch.testing.assert_close(no_dropout(x), no_dropout(x), rtol=0, atol=0)


def test_planes_share_one_stack_and_see_a_patch_wide_cross() -> None:
    net = _tiny(1, 2)
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 3  # one stack, not three
    assert empirical_receptive_field(net, (3, 3, 15)) == 7
    net.eval()
    x = torch.zeros(1, 1, 9, 9, 9)
    x[0, 0, 4, 4, 4] = 1.0
    with torch.no_grad():
        changed = (net(x) - net(torch.zeros_like(x))).abs().sum(dim=1)[0] > 0
    # Voxels whose patches contain (4, 4, 4): same slice in one axis and within 3 voxels in the two others.
    zz, yy, xx = np.meshgrid(*(np.arange(9),) * 3, indexing="ij")
    near = [np.abs(a - 4) <= 3 for a in (zz, yy, xx)]
    same = [a == 4 for a in (zz, yy, xx)]
    cross = (same[0] & near[1] & near[2]) | (same[1] & near[0] & near[2]) | (same[2] & near[0] & near[1])
    np.testing.assert_array_equal(changed.numpy(), cross)
