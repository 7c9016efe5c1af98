"""modality2d: K + 1 subnetworks with auxiliary layers and a U-Net main part (seed 001 §2.2.2)."""

from __future__ import annotations

import pytest
import torch

from clinseg.errors import ConfigError
from clinseg.losses.composite import deep_supervision
from clinseg.models import create_model, size_divisors
from clinseg.models.modality2d import subnet_prefix
from clinseg.models.outputs import NetworkOutputs

SMALL = {"features": (4, 8), "subnet_features": (4, 8)}


def test_train_mode_returns_main_and_k_plus_1_auxiliary_outputs():
    torch.manual_seed(0)
    net = create_model("modality2d", 4, 3, **SMALL)
    out = net(torch.randn(2, 4, 1, 16, 16))
    assert isinstance(out, NetworkOutputs)
    assert out.logits.shape == (2, 3, 1, 16, 16)
    assert len(out.aux) == 5 and all(a.shape == (2, 3, 1, 16, 16) for a in out.aux)
    assert out.aux_weights == [0.05] * 5  # seed 001 §2.3.2: c_k = 0.05, c_main = 0.75 for K = 4
    assert out.main_weight == pytest.approx(0.75)
    assert out.main_weight + sum(out.aux_weights) == pytest.approx(1.0)


def test_eval_mode_returns_the_main_logits_only():
    torch.manual_seed(0)
    net = create_model("modality2d", 2, 3, **SMALL)
    x = torch.randn(1, 2, 3, 8, 16)
    train_logits = net(x).logits
    net.eval()
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 3, 3, 8, 16)
    assert size_divisors(net) == (1, 2, 2)
    assert train_logits.shape == out.shape


def test_each_sequence_subnetwork_sees_only_its_channel():
    torch.manual_seed(0)
    net = create_model("modality2d", 3, 2, **SMALL)
    x = torch.randn(2, 3, 1, 8, 8)
    perturbed = x.clone()
    perturbed[:, 1] += torch.randn_like(perturbed[:, 1])
    with torch.no_grad():
        before, after = net(x), net(perturbed)
    changed = [not torch.allclose(a, b) for a, b in zip(before.aux, after.aux)]
    assert changed == [False, True, False, True]  # T1, T1c (perturbed), T2 subnetworks; then all sequences
    assert not torch.allclose(before.logits, after.logits)


def test_sagittal_slices_fold_outputs_alike():
    torch.manual_seed(0)
    net = create_model("modality2d", 2, 2, plane="sagittal", **SMALL)
    out = net(torch.randn(1, 2, 8, 6, 3))
    assert out.logits.shape == (1, 2, 8, 6, 3) and all(a.shape == (1, 2, 8, 6, 3) for a in out.aux)


def test_deep_supervision_loss_weighs_each_output():
    net = create_model("modality2d", 1, 2, aux_weight=0.1, **SMALL)
    out = net(torch.randn(2, 1, 1, 8, 8))
    assert out.main_weight == pytest.approx(0.8)
    seen = []

    def record(logits, target, annotated):
        seen.append(logits)
        return logits.new_tensor(float(len(seen)))

    total = deep_supervision(record)(out, torch.zeros(2, 2, 1, 8, 8), torch.ones(2, 2, dtype=torch.bool))
    assert len(seen) == 3 and seen[0] is out.logits
    assert float(total) == pytest.approx(0.8 * 1 + 0.1 * 2 + 0.1 * 3)


def test_subnet_alone_has_the_full_networks_parameter_names():
    full = create_model("modality2d", 2, 3, **SMALL).state_dict()
    alone = create_model("modality2d_subnet", 1, 3, subnet_features=(4, 8)).state_dict()
    for name, tensor in alone.items():
        inner = "net." + subnet_prefix(1) + name.removeprefix("net.")
        assert full[inner].shape == tensor.shape, name
    out = create_model("modality2d_subnet", 1, 3, subnet_features=(4, 8))(torch.randn(2, 1, 1, 8, 8))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 1, 8, 8)


def test_aux_weights_must_form_a_convex_combination():
    with pytest.raises(ConfigError, match="aux_weight"):
        create_model("modality2d", 4, 2, aux_weight=0.3)
