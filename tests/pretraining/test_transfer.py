"""Weight transfer from a restoration pretraining run into a segmentation network (seed 002 "SegPretrained")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from clinseg.errors import CheckpointError, ConfigError
from clinseg.models import create_model
from clinseg.pretraining.config import PretrainConfig
from clinseg.pretraining.run import pretrain
from clinseg.pretraining.transfer import (
    head_module_names,
    input_conv_name,
    pretrain_settings,
    transfer_weights,
)
from clinseg.training.checkpoint import load_checkpoint
from tests.pretraining.test_pretrain_run import (  # noqa: F401
    TINY_2D,
    _keep_torch_threads,
    write_images,
)


@pytest.fixture(scope="module")
def pretrained_2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-iteration unet2d (features 4, 8) pretraining run on two smooth images."""
    tmp = tmp_path_factory.mktemp("pretrained")
    source = write_images(tmp / "images", 2)
    threads = torch.get_num_threads()
    pretrain(source, tmp / "run", PretrainConfig(**TINY_2D, iterations=3, val_every=3, val_cases=1))
    torch.set_num_threads(threads)
    return tmp / "run"


def _segmentation_net(in_channels: int, out_channels: int = 3, seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("unet2d", in_channels, out_channels, features=(4, 8))


def test_encoder_decoder_copied_and_head_keeps_its_init(pretrained_2d: Path) -> None:
    model = _segmentation_net(1)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer_weights(model, pretrained_2d, model_name="unet2d", model_kwargs={"features": (4, 8)},
                              normalization="none")
    best = load_checkpoint(pretrained_2d / "checkpoints" / "best.pt")["model"]
    state = model.state_dict()
    assert head_module_names(model) == ["net.head"]
    assert sorted(report.skipped) == ["net.head.bias", "net.head.weight"]
    assert "output head" in report.skipped["net.head.weight"]
    for name in state:
        if name.startswith("net.head."):
            torch.testing.assert_close(state[name], init[name], rtol=0, atol=0)
        else:
            assert name in report.transferred
            torch.testing.assert_close(state[name], best[name], rtol=0, atol=0)
    copied = [n for n in report.transferred if n.endswith("weight") and not torch.equal(init[n], best[n])]
    assert copied, "the pretrained weights must differ from a fresh init for this test to mean anything"
    assert json.loads(json.dumps(report.to_dict()))["num_skipped"] == 2


def test_extra_input_channels_keep_their_init(pretrained_2d: Path) -> None:
    model = _segmentation_net(3)  # image + foreground and background click maps (seed 002 §2.3)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer_weights(model, pretrained_2d)
    first = f"{input_conv_name(model)}.weight"
    assert first == "net.encoders.0.0.0.weight" and first in report.partial
    best = load_checkpoint(pretrained_2d / "checkpoints" / "best.pt")["model"][first]
    weight = model.state_dict()[first]
    assert weight.shape[1] == 3 and best.shape[1] == 1
    torch.testing.assert_close(weight[:, :1], best, rtol=0, atol=0)
    torch.testing.assert_close(weight[:, 1:], init[first][:, 1:], rtol=0, atol=0)


def test_mismatched_settings_raise_clear_errors(pretrained_2d: Path) -> None:
    model = _segmentation_net(1)
    with pytest.raises(ConfigError, match="pretrained model is 'unet2d'.*'unet3d'"):
        transfer_weights(model, pretrained_2d, model_name="unet3d")
    with pytest.raises(ConfigError, match=r"model_kwargs differ .*\['features'\]"):
        transfer_weights(model, pretrained_2d, model_name="unet2d", model_kwargs={"features": [4, 8, 16]})
    with pytest.raises(ConfigError, match="normalization 'none'.*'zscore'"):
        transfer_weights(model, pretrained_2d, normalization="zscore")
    # explicit defaults and tuples-vs-lists are the same network
    transfer_weights(model, pretrained_2d, model_name="unet2d", model_kwargs={"features": [4, 8], "norm": "batch"})
    with pytest.raises(CheckpointError, match="neither a pretraining run"):
        transfer_weights(model, pretrained_2d.parent)


def test_other_architecture_tensors_are_skipped_with_reasons(pretrained_2d: Path) -> None:
    torch.manual_seed(0)
    model = create_model("unet3d", 1, 2, features=(4, 8))
    report = transfer_weights(model, pretrained_2d)  # no name check requested: name + shape decide
    assert not report.transferred
    assert report.skipped["encoders.0.0.0.weight"] == "not in the pretrained network"
    assert report.skipped["net.encoders.0.0.0.weight"] == "only in the pretrained network"


def test_head_of_dynunet_is_found_under_all_its_names() -> None:
    names = head_module_names(create_model("dynunet", 1, 2, depth=3, features=[4, 8, 16]))
    assert "net.output_block.conv.conv" in names


def test_pretrain_settings(pretrained_2d: Path) -> None:
    assert pretrain_settings(pretrained_2d) == {"model": "unet2d", "model_kwargs": {"features": [4, 8]},
                                                "normalization": "none", "patch_size": [1, 16, 16]}
