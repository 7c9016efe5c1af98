"""Mixed supervision (seed 001 ch. 3): slice labels, k/m/n batches, the mixed loss, and a tiny run + predict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.data.loading import CaseData
from clinseg.data.mixed_sampler import (
    MixedSliceSampler,
    WeakCase,
    slice_labels_from_target,
    slice_labels_from_weak,
)
from clinseg.errors import ConfigError
from clinseg.io import Geometry, read_image, write_image
from clinseg.losses import create_loss
from clinseg.losses.composite import deep_supervision
from clinseg.losses.mixed import image_label_bce
from clinseg.models import create_model
from clinseg.models.outputs import NetworkOutputs
from clinseg.training.config import TrainConfig
from clinseg.training.mixed import mixed_config

STRUCTURES = ("necrosis", "oedema", "enhancing")
SHAPE = (6, 16, 16)  # (Z, Y, X)
GEOM = Geometry(spacing=(1.0, 1.0, 3.0), shape=SHAPE)
NAN = float("nan")


def _label_map(shift: int = 0) -> np.ndarray:
    """Oedema around necrosis in slice 2, oedema around enhancing core in slice 3, nothing elsewhere."""
    lab = np.zeros(SHAPE, np.uint8)
    lab[2:4, 4 + shift:12 + shift, 4:12] = 2
    lab[2, 6 + shift:10 + shift, 6:10] = 1
    lab[3, 6 + shift:10 + shift, 6:10] = 3
    return lab


def _case(case_id: str, label_map: np.ndarray) -> CaseData:
    target = np.stack([(label_map == v).astype(np.uint8) for v in (1, 2, 3)])
    image = np.random.default_rng(0).normal(size=(1, *SHAPE)).astype(np.float32) + target.sum(0)
    return CaseData(case_id, image, target, np.ones(3, bool), GEOM)


def _weak(case_id: str, labels: np.ndarray) -> WeakCase:
    return WeakCase(case_id, np.random.default_rng(1).normal(size=(1, *SHAPE)).astype(np.float32), labels)


# --- slice labels -----------------------------------------------------------------------------------------


def test_slice_labels_from_a_label_map() -> None:
    case = _case("a", _label_map())
    labels = slice_labels_from_target(case.target, np.array([True, True, False]))
    expected = np.array([[0, 0, NAN], [0, 0, NAN], [1, 1, NAN], [0, 1, NAN], [0, 0, NAN], [0, 0, NAN]], np.float32)
    np.testing.assert_array_equal(labels, expected)


def test_slice_labels_from_dataset_json() -> None:
    labels = slice_labels_from_weak(STRUCTURES, 4, {"tumour": [1, 2], "oedema": [1, 2], "enhancing": [2]})
    # outside the "tumour" slices nothing; slice 1: oedema, not enhancing, so necrosis unknown
    np.testing.assert_array_equal(labels, np.array(
        [[0, 0, 0], [NAN, 1, 0], [NAN, 1, 1], [0, 0, 0]], np.float32))
    # a "tumour" slice where all classes but one are known absent contains that one
    np.testing.assert_array_equal(slice_labels_from_weak(["a", "b"], 2, {"tumour": [0], "b": []}),
                                  np.array([[1, 0], [0, 0]], np.float32))
    # a case-level "false" holds for every slice; a case-level "true" tells no slice anything
    np.testing.assert_array_equal(slice_labels_from_weak(["a", "b"], 2, {}, {"a": False, "tumour": True}),
                                  np.array([[0, NAN], [0, NAN]], np.float32))
    with pytest.raises(ValueError, match="outside 0..3"):
        slice_labels_from_weak(STRUCTURES, 4, {"oedema": [4]})


# --- batches ------------------------------------------------------------------------------------------------


def _sampler(k: int = 4, m: int = 2, n: int = 4, full_classes: bool = True, seed: int = 0) -> MixedSliceSampler:
    lab = _label_map()
    if not full_classes:
        lab[lab == 3] = 2  # no annotated enhancing core: only weak slices contain it
    full = [_case("full_0", lab), _case("neg_0", np.zeros(SHAPE, np.uint8))]
    weak = [_weak("weak_0", slice_labels_from_weak(STRUCTURES, 6, {"tumour": [2, 3], "necrosis": [2],
                                                                   "oedema": [2, 3], "enhancing": [3]})),
            _weak("weak_1", slice_labels_from_weak(STRUCTURES, 6, {"tumour": [1]}))]
    return MixedSliceSampler(full, weak, (1, 16, 16), k, m, n, np.random.default_rng(seed))


def test_batches_hold_k_annotated_m_negative_and_n_weak_images() -> None:
    batch = _sampler().batch(10)
    assert batch.image.shape == (10, 1, 1, 16, 16) and batch.target.shape == (10, 3, 1, 16, 16)
    assert batch.image_labels.shape == (10, 3) and batch.image_labels.dtype == np.float32
    full, neg, weak = slice(0, 4), slice(4, 6), slice(6, 10)
    assert batch.annotated[full].all() and (batch.image_labels[full] == 1).any(axis=1).all()
    assert batch.target[full].reshape(4, -1).any(axis=1).all()
    # negatives: segmentation all zero, every class annotated (absent), every image label 0
    assert not batch.target[neg].any() and batch.annotated[neg].all() and (batch.image_labels[neg] == 0).all()
    # weak positives: no segmentation at all, some class known present
    assert not batch.target[weak].any() and not batch.annotated[weak].any()
    assert (batch.image_labels[weak] == 1).any(axis=1).all()
    with pytest.raises(ValueError, match="k \\+ m \\+ n = 10"):
        _sampler().batch(4)


@pytest.mark.parametrize("k, n, full_classes", [(4, 4, True), (1, 2, True), (1, 2, False), (3, 1, False)])
def test_every_class_is_present_in_every_batch(k: int, n: int, full_classes: bool) -> None:
    sampler = _sampler(k=k, m=1, n=n, full_classes=full_classes)
    for _ in range(40):
        labels = sampler.batch(k + 1 + n).image_labels
        assert (labels == 1).any(axis=0).all()


def test_impossible_compositions_are_refused() -> None:
    with pytest.raises(ValueError, match="every class must be present"):
        _sampler(k=1, n=1)  # three classes, two positive images
    with pytest.raises(ValueError, match="every class must be present"):
        _sampler(k=3, n=0, full_classes=False)  # the enhancing core is only in weak slices
    with pytest.raises(ValueError, match="patch_size must be \\[1, H, W\\]"):
        MixedSliceSampler([_case("a", _label_map())], [], (2, 16, 16), 4, 2, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="do not fit the patch"):
        MixedSliceSampler([_case("a", _label_map())], [], (1, 8, 16), 4, 2, 0, np.random.default_rng(0))


# --- the loss -----------------------------------------------------------------------------------------------


def _loss(alpha: float):
    return create_loss("mixed_supervision", alpha=alpha, seg_loss="target_weighted_ce",
                       seg_kwargs={"target_weights": [0.7, 0.1, 0.1, 0.1]})


def test_alpha_weighs_segmentation_against_classification() -> None:
    target = torch.zeros(2, 3, 1, 2, 2)
    target[0, 1, 0, 0, 0] = 1
    outputs = NetworkOutputs(torch.zeros(2, 4, 1, 2, 2), image_logits=torch.zeros(2, 3))
    annotated = torch.ones(2, 3, dtype=torch.bool)
    labels = torch.tensor([[0.0, 1.0, NAN], [0.0, 0.0, 0.0]])
    seg, cls = math.log(4), math.log(2)  # uniform softmax over 4 classes; sigmoid(0) = 1/2
    for alpha in (0.0, 0.3, 0.7, 1.0):
        value = float(_loss(alpha)(outputs, target, annotated, image_labels=labels))
        assert value == pytest.approx(alpha * seg + (1 - alpha) * cls, rel=1e-6)


def test_classification_loss_ignores_unknown_labels() -> None:
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([[1.0, NAN], [0.0, NAN]])
    expected = (math.log(2) + math.log(1 + math.e)) / 2  # class 0 only: -log(1/2), -log(1 - sigmoid(1))
    assert float(image_label_bce(logits, labels)) == pytest.approx(expected, rel=1e-6)
    assert float(image_label_bce(logits, torch.full((2, 2), NAN))) == 0.0


def test_the_mixed_loss_refuses_outputs_without_image_logits() -> None:
    with pytest.raises(ConfigError, match="image-level outputs"):
        _loss(0.5)(torch.zeros(1, 4, 1, 2, 2), torch.zeros(1, 3, 1, 2, 2), torch.ones(1, 3, dtype=torch.bool),
                   image_labels=torch.zeros(1, 3))


def _net(norm: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("mixed_unet", 1, 4, features=(4, 8), norm=norm, conv_channels=2, fc_widths=(3,) * 6,
                        grid=(2, 2))


def test_weak_images_never_give_a_segmentation_gradient() -> None:
    batch = _sampler().batch(10)
    seg_only = _loss(1.0)
    # a batch of weak images only: zero segmentation loss and no gradient at all
    net = _net("batch")
    weak = slice(6, 10)
    image = torch.from_numpy(batch.image[weak]).requires_grad_(True)
    value = seg_only(net(image), torch.from_numpy(batch.target[weak]), torch.from_numpy(batch.annotated[weak]),
                     image_labels=torch.from_numpy(batch.image_labels[weak]))
    value.backward()
    assert value.item() == 0.0 and not image.grad.any()
    assert all(p.grad is None or not p.grad.any() for p in net.parameters())
    # in a mixed batch the segmentation term does not depend on the weak images (per-image normalisation, so
    # that batch statistics do not couple the images), while the classification term does
    net = _net("group")
    image = torch.from_numpy(batch.image).requires_grad_(True)
    args = (torch.from_numpy(batch.target), torch.from_numpy(batch.annotated))
    labels = torch.from_numpy(batch.image_labels)
    seg_only(net(image), *args, image_labels=labels).backward()
    assert image.grad[:6].abs().sum() > 0 and not image.grad[6:].any()
    image.grad = None
    _loss(0.0)(net(image), *args, image_labels=labels).backward()
    assert image.grad[6:].abs().sum() > 0


# --- end to end ---------------------------------------------------------------------------------------------


def test_loss_wrapper_hands_outputs_and_image_labels_to_the_mixed_loss() -> None:
    """The run's loss wrapper passes NetworkOutputs (with image_logits) to a loss that reads them."""
    seen = []

    def probe(outputs, target, annotated, **extras):
        seen.append(isinstance(outputs, NetworkOutputs))
        return torch.zeros(())

    probe.accepts_outputs = True  # type: ignore[attr-defined]
    outputs = NetworkOutputs(torch.zeros(1, 2, 1, 1, 1), image_logits=torch.zeros(1, 1))
    deep_supervision(probe)(outputs, torch.zeros(1, 1, 1, 1, 1), torch.ones(1, 1, dtype=torch.bool),
                            image_labels=torch.zeros(1, 1))
    assert seen == [True]


def _write_dataset(root: Path) -> Path:
    rng = np.random.default_rng(1)
    cases = {"full_0": _label_map(), "full_1": _label_map(2), "neg_0": np.zeros(SHAPE, np.uint8),
             "weak_0": _label_map(1), "weak_1": _label_map(-1), "val_0": _label_map(1)}
    for case, lab in cases.items():
        write_image(rng.normal(size=SHAPE).astype(np.float32) + (lab > 0) * 2, GEOM,
                    root / "imagesTr" / f"{case}_0000.nii.gz")
        if not case.startswith("weak"):  # weakly annotated cases have no label map at all
            write_image(lab, GEOM, root / "labelsTr" / f"{case}.nii.gz")
    write_image(rng.normal(size=SHAPE).astype(np.float32), GEOM, root / "imagesTs" / "test_0_0000.nii.gz")
    spec = {"name": "TinyTumour", "channel_names": {"0": "FLAIR"}, "label_mode": "multiclass",
            "labels": {"background": 0, "necrosis": 1, "oedema": 2, "enhancing": 3},
            "cases": {"weak_0": {"weak_labels": {"tumour": True},
                                 "weak_slices": {"tumour": [2, 3], "necrosis": [2], "oedema": [2, 3],
                                                 "enhancing": [3]}},
                      "weak_1": {"weak_labels": {"tumour": True}, "weak_slices": {"tumour": [2, 3]}}}}
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def test_mixed_config_sets_model_sampler_loss_and_slices(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path / "ds")
    cfg = mixed_config(root, TrainConfig(val_ids=["val_0"]))
    assert cfg.model == "mixed_unet" and cfg.model_kwargs["num_image_classes"] == 3
    assert cfg.patch_size == [1, 16, 16] and cfg.model_kwargs["grid"] == [2, 2]
    assert cfg.sampler == "mixed" and cfg.batch_size == 10
    assert {key: cfg.sampler_kwargs[key] for key in "kmn"} == {"k": 4, "m": 2, "n": 4}
    assert cfg.sampler_kwargs["weak_cases"] == ["weak_0", "weak_1"]  # no delineation, slice labels stated
    assert cfg.loss == "mixed_supervision" and cfg.loss_kwargs["alpha"] == 0.3
    assert cfg.loss_kwargs["seg_loss"] == "target_weighted_ce"
    assert cfg.loss_kwargs["seg_kwargs"]["target_weights"] == pytest.approx([0.7, 0.1, 0.1, 0.1])
    # a study that keeps no delineation of full_1 makes it weak only if dataset.json says something about it
    subset = {"full_0": list(STRUCTURES), "neg_0": list(STRUCTURES), "full_1": [], "weak_0": []}
    cfg = mixed_config(root, TrainConfig(val_ids=["val_0"], subset=subset), k=2, m=1, n=1, alpha=0.5)
    assert cfg.sampler_kwargs["weak_cases"] == ["weak_0", "weak_1"] and cfg.batch_size == 4
    assert cfg.loss_kwargs["alpha"] == 0.5
    # partially delineated cases: the marginal cross-entropy instead of the target-weighted one
    subset["full_0"] = ["oedema"]
    assert mixed_config(root, TrainConfig(val_ids=["val_0"], subset=subset)).loss_kwargs["seg_loss"] == \
        "marginal_ce_dice"
    with pytest.raises(ConfigError, match="resample"):
        mixed_config(root, TrainConfig(resample=[1, 2, 2]))


def test_mixed_method_trains_and_predicts(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path / "ds")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": "mixed_unet", "model_kwargs": {"features": [4, 8], "conv_channels": 2, "fc_widths": [3] * 6},
        "val_ids": ["val_0"], "val_every": 2, "threads": 1, "checkpoint_every": 2,
        "sampler": "mixed", "sampler_kwargs": {"k": 2, "m": 1, "n": 2}}))
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(root), "--out", str(run), "--config", str(config), "--method", "mixed",
                                 "--iterations", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "2 weakly annotated case(s)" in result.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == "mixed_unet" and saved["model_kwargs"]["features"] == [4, 8]
    assert saved["sampler_kwargs"]["weak_cases"] == ["weak_0", "weak_1"] and saved["batch_size"] == 5
    assert json.loads((run / "split.json").read_text())["train"] == ["full_0", "full_1", "neg_0"]

    pred = tmp_path / "pred"
    result = runner.invoke(app, ["predict", str(run), str(root / "imagesTs"), str(pred)])
    assert result.exit_code == 0, result.output
    for structure in STRUCTURES:
        assert read_image(pred / "test_0" / f"{structure}.nii.gz").array.shape == SHAPE
