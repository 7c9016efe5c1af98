"""The mixed-supervision U-Net: one classification branch per class, FC1/FC5 concatenation, plain eval output."""

import pytest
import torch
from torch import nn

from clinseg.models import create_model
from clinseg.models.mixed_unet import ClassificationBranch, MixedUNet2d
from clinseg.models.outputs import NetworkOutputs
from clinseg.models.unet2d import SliceWise
from clinseg.models.unet3d import UNet3d

SMALL = {"features": (4, 8), "conv_channels": 3, "fc_widths": (5, 4, 4, 4, 6, 3), "grid": (2, 2)}


def test_branch_layers_follow_the_thesis() -> None:
    branch = ClassificationBranch(4, conv_channels=3, fc_widths=(5, 4, 4, 4, 6, 3), pool=8, grid=(2, 2))
    assert isinstance(branch.pool, nn.AvgPool2d) and branch.pool.kernel_size == 8 and branch.pool.stride == 8
    conv = branch.conv[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (4, 3, (3, 3))
    linears = [m for m in branch.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 7
    assert linears[0].in_features == 3 * 2 * 2
    assert [lin.out_features for lin in linears] == [5, 4, 4, 4, 6, 3, 1]
    assert linears[5].in_features == 5 + 6  # FC6 reads the outputs of FC1 and FC5, concatenated
    relus = [m for m in branch.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 1 + 6  # the convolution and FC1..FC6; none after FC7
    assert branch(torch.zeros(3, 4, 16, 24)).shape == (3,)


def test_fc6_uses_fc1_output_directly() -> None:
    branch = ClassificationBranch(2, conv_channels=2, fc_widths=(3, 3, 3, 3, 3, 3), grid=(1, 1))
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, tensor: torch.Tensor) -> None:
        seen[name] = tensor.detach().clone()

    branch.fc6.register_forward_hook(lambda m, inp, out: keep("fc6_in", inp[0]))
    branch.fc[0].register_forward_hook(lambda m, inp, out: keep("fc1_out", out))
    branch(torch.randn(2, 2, 8, 8))
    assert seen["fc6_in"].shape == (2, 6)
    assert torch.equal(seen["fc6_in"][:, :3], seen["fc1_out"])


def test_training_outputs_have_one_image_logit_per_class() -> None:
    net = create_model("mixed_unet", in_channels=2, out_channels=4, **SMALL)
    assert isinstance(net, SliceWise) and isinstance(net.net, MixedUNet2d)
    assert len(net.net.branches) == 3  # one entire branch per tumour class (background excluded)
    assert net.size_divisor == (1, 2, 2)
    out = net(torch.randn(5, 2, 1, 16, 16))
    assert isinstance(out, NetworkOutputs)
    assert out.logits.shape == (5, 4, 1, 16, 16)
    assert out.image_logits.shape == (5, 3)


def test_eval_mode_returns_plain_segmentation_logits() -> None:
    net = create_model("mixed_unet", in_channels=1, out_channels=2, **SMALL).eval()
    x = torch.randn(1, 1, 3, 16, 16)
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 3, 16, 16)
    plain = net.net
    torch.testing.assert_close(out[:, :, 1], UNet3d.forward(plain, x[:, :, 1]))  # the U-Net alone


def test_branch_sees_the_second_to_last_layer_and_the_options_are_checked() -> None:
    net = MixedUNet2d(1, 2, 1, features=(4, 8), conv_channels=3, fc_widths=(2,) * 6, grid=(1, 1))
    assert net.branches[0].conv[0].in_channels == 4  # the decoder's last feature maps (features[0])
    with pytest.raises(ValueError, match="six"):
        ClassificationBranch(4, fc_widths=(4, 4, 4))
