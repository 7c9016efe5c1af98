"""The model registry: names, the factory, and its errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clinseg.errors import ConfigError
from clinseg.models import create_model, list_models, register_model, registry


def test_the_three_networks_are_registered() -> None:
    assert {"resfcn3d", "unet3d", "dynunet"} <= set(list_models())
    assert list_models() == sorted(list_models())


def test_unknown_name_raises_config_error_listing_known_names() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'.*resfcn3d.*unet3d"):
        create_model("nope", 1, 2)


def test_bad_option_and_bad_channels_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid options"):
        create_model("unet3d", 1, 2, widths=(4, 8))
    with pytest.raises(ConfigError, match="out_channels"):
        create_model("unet3d", 1, 0)
    with pytest.raises(ConfigError, match="unknown norm 'layer'"):
        create_model("resfcn3d", 1, 2, norm="layer")


def test_register_and_create_a_new_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.MODELS, "_items", dict(registry.MODELS._items))

    @register_model("tiny_test_net")
    def tiny(in_channels: int, out_channels: int, width: int = 2) -> nn.Module:
        net = nn.Sequential(nn.Conv3d(in_channels, width, 3, padding=1), nn.Conv3d(width, out_channels, 1))
        net.out_channels = out_channels  # type: ignore[assignment]
        net.size_divisor = 1  # type: ignore[assignment]
        return net

    net = create_model("tiny_test_net", 2, 3, width=4)
    assert net(torch.zeros(1, 2, 5, 6, 7)).shape == (1, 3, 5, 6, 7)
    assert "tiny_test_net" in list_models()
    register_model("tiny_test_net")(tiny)  # the same builder again (module imported twice): allowed

    def other(in_channels: int, out_channels: int) -> nn.Module:
        return tiny(in_channels, out_channels)

    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny_test_net")(other)
