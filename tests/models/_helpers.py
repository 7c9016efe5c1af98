"""Shared checks for the architecture tests: shape, backward pass, gradient reaching every parameter."""

from __future__ import annotations

import torch
from torch import nn


def check_trains(net: nn.Module, in_channels: int, size: int, batch: int = 2) -> None:
    """Forward ``(batch, in_channels, size³)``, backward a sum, and assert every parameter got a gradient."""
    torch.manual_seed(0)
    x = torch.randn(batch, in_channels, size, size, size)
    out = net(x)
    assert isinstance(out, torch.Tensor)
    assert out.shape == (batch, net.out_channels, size, size, size)
    (out * torch.randn_like(out)).sum().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
