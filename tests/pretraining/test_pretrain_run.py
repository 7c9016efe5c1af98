"""Restoration pretraining (seed 002 §2.2): the patch source, the config, the run folder, resume and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import ConfigError, DatasetError
from clinseg.io import Geometry, write_image
from clinseg.pretraining.config import (
    PretrainConfig,
    load_pretrain_config,
    pretrain_config_from_dict,
    save_pretrain_config,
)
from clinseg.pretraining.distortions import DistortionConfig, distort_batch
from clinseg.pretraining.images import find_images
from clinseg.pretraining.run import pretrain
from clinseg.pretraining.source import (
    RestorationSource,
    distort_patches,
    validation_pairs,
)
from clinseg.training.checkpoint import load_checkpoint

IDENTITY = DistortionConfig(nonlinear_rate=0.0, shuffle_rate=0.0, paint_rate=0.0)
TINY_2D = {"model": "unet2d", "model_kwargs": {"features": [4, 8]}, "patch_size": [1, 16, 16],
           "batch_size": 4, "device": "cpu", "threads": 1, "amp": "off"}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Runs set torch's thread count (one thread: tiny networks, shared CI cores); restore it afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def smooth_image(shape: tuple[int, int, int], phase: float) -> np.ndarray:
    """A smooth ``(Z, Y, X)`` pattern in [0.1, 0.9]: easy to restore, so the loss must fall quickly."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    return (0.5 + 0.4 * np.sin(x / 4 + phase) * np.cos(y / 5 + z / 7)).astype(np.float32)


def write_images(folder: Path, count: int, shape: tuple[int, int, int] = (4, 32, 32),
                 names: list[str] | None = None) -> Path:
    """Write ``count`` smooth one-channel NIfTI images into ``folder``; returns it."""
    geometry = Geometry(spacing=(1.0, 1.0, 1.0), shape=shape)
    for i, name in enumerate(names or [f"img{i}.nii.gz" for i in range(count)]):
        write_image(smooth_image(shape, phase=float(i)), geometry, folder / name)
    return folder


def position_image(shape: tuple[int, int, int]) -> np.ndarray:
    """``(1, Z, Y, X)`` image whose value encodes the voxel index (values in [0, 1])."""
    return (np.arange(np.prod(shape), dtype=np.float64).reshape(1, *shape) / (np.prod(shape) - 1)).astype(np.float32)


# --- RestorationSource -------------------------------------------------------------------------------------

@pytest.mark.parametrize("patch", [(1, 8, 8), (4, 8, 8)])
def test_source_batch_shapes_and_target_is_undistorted_crop(patch: tuple[int, int, int]) -> None:
    image = position_image((6, 12, 10))
    source = RestorationSource([image], patch, np.random.default_rng(0))
    batch = source.batch(5)
    assert batch.image.shape == batch.target.shape == (5, 1, *patch)
    assert batch.image.dtype == batch.target.dtype == np.float32
    assert batch.annotated.shape == (5, 1) and batch.annotated.all()
    flat = image.ravel()
    for target in batch.target:  # the first voxel locates the crop; the crop must equal the image there
        z, y, x = np.unravel_index(int(np.argmin(np.abs(flat - target[0, 0, 0, 0]))), image.shape[1:])
        np.testing.assert_array_equal(target, image[:, z:z + patch[0], y:y + patch[1], x:x + patch[2]])
    assert not np.array_equal(batch.image, batch.target)  # the default distortions changed the input


def test_identity_distortion_gives_input_equal_target() -> None:
    source = RestorationSource([position_image((4, 8, 8))], (1, 8, 8), np.random.default_rng(1), IDENTITY)
    batch = source.batch(3)
    np.testing.assert_array_equal(batch.image, batch.target)


@pytest.mark.parametrize("thin", [2, 3, 4])
def test_thin_patches_are_distorted_in_2d(thin: int) -> None:
    rng = np.random.default_rng(0)
    shape = [3, 2, 16, 16, 16]
    shape[thin] = 1
    patches = rng.random(shape, dtype=np.float32)
    out = distort_patches(patches, np.random.default_rng(7))
    expected = np.expand_dims(distort_batch(np.squeeze(patches, thin), np.random.default_rng(7)), thin)
    np.testing.assert_array_equal(out, expected)


def test_small_image_is_zero_padded_and_range_is_checked() -> None:
    source = RestorationSource([np.full((1, 2, 4, 4), 0.5, np.float32)], (4, 8, 8), np.random.default_rng(0),
                               IDENTITY)
    target = source.batch(1).target[0, 0]
    assert target.shape == (4, 8, 8) and target.sum() == pytest.approx(0.5 * 2 * 4 * 4)
    assert target[0].max() == 0.0 and target[1, 2:6, 2:6].min() == 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RestorationSource([np.full((1, 4, 8, 8), 2.0, np.float32)], (1, 8, 8), np.random.default_rng(0))


def test_precomputed_pool_is_reused_cyclically() -> None:
    source = RestorationSource([position_image((4, 16, 16))], (1, 8, 8), np.random.default_rng(0), precompute=6)
    first, second = source.batch(4), source.batch(4)  # pool items 0-3, then 4, 5, 0, 1
    np.testing.assert_array_equal(second.image[2:], first.image[:2])
    np.testing.assert_array_equal(second.target[:2], source.pool[1][4:6])
    assert source.position == 2


def test_validation_pairs_are_fixed_by_the_seed() -> None:
    images = [position_image((4, 16, 16))]
    a, b = validation_pairs(images, (1, 8, 8), 5, 3), validation_pairs(images, (1, 8, 8), 5, 3)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[0].shape == (5, 1, 1, 8, 8)


# --- config -----------------------------------------------------------------------------------------------

def test_config_yaml_roundtrip_and_errors(tmp_path: Path) -> None:
    cfg = pretrain_config_from_dict({"model": "unet3d", "patch_size": [16, 16, 16], "distortions": {"paint_rate": 0.5}})
    save_pretrain_config(cfg, tmp_path / "c.yaml")
    assert load_pretrain_config(tmp_path / "c.yaml") == cfg
    assert cfg.distortion_config().paint_rate == 0.5
    with pytest.raises(ConfigError, match="unknown option"):
        pretrain_config_from_dict({"modle": "unet3d"})
    with pytest.raises(ConfigError, match="distortions: unknown"):
        pretrain_config_from_dict({"distortions": {"paint": 0.5}})
    with pytest.raises(ConfigError, match="loss"):
        pretrain_config_from_dict({"loss": "huber"})
    with pytest.raises(ConfigError, match="at most one axis"):
        pretrain_config_from_dict({"patch_size": [1, 1, 64]})


# --- image sources ----------------------------------------------------------------------------------------

def test_plain_folder_groups_channels_and_rejects_mixed_counts(tmp_path: Path) -> None:
    names = ["a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nii.gz", "b_0001.nii.gz"]
    images = find_images(write_images(tmp_path / "two", 4, (4, 8, 8), names))
    assert images.ids() == ["a", "b"] and images.num_channels == 2 and images.channel_names is None
    write_images(tmp_path / "mixed", 3, (4, 8, 8), ["a_0000.nii.gz", "a_0001.nii.gz", "plain.nii.gz"])
    with pytest.raises(DatasetError, match="different channel counts"):
        find_images(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        find_images(tmp_path / "empty")


def test_pretrain_from_dataset_never_reads_labels_or_test_images(make_dataset, tmp_path: Path) -> None:
    root = make_dataset()
    for folder in ("structuresTr", "structuresTs", "imagesTs"):  # corrupt every file pretraining must not open
        for file in (root / folder).rglob("*.nii.gz"):
            file.write_bytes(b"not an image")
    cfg = PretrainConfig(**{**TINY_2D, "patch_size": [1, 8, 8]}, iterations=3, val_every=3, normalization="percentile")
    state = pretrain(root, tmp_path / "run", cfg)
    assert state.iteration == 3
    info = json.loads((tmp_path / "run" / "pretrain.json").read_text())
    assert info["kind"] == "restoration-pretraining" and info["num_images"] == 3
    assert info["channel_names"] == ["T1"] and info["source_kind"] == "dataset"
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert sorted(split["train"] + split["validation"]) == ["case_0", "case_1", "case_2"]
    assert len(split["validation"]) == 2


def test_pretrain_restoration_loss_decreases_and_writes_the_run_folder(tmp_path: Path) -> None:
    source = write_images(tmp_path / "images", 3)
    cfg = PretrainConfig(**TINY_2D, iterations=40, val_every=10, val_cases=1, lr=3e-3)
    state = pretrain(source, tmp_path / "run", cfg)
    run = tmp_path / "run"
    for name in ("config.yaml", "pretrain.json", "split.json", "fingerprint.json", "metrics.jsonl",
                 "restoration.png", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
    assert (run / "restoration.png").read_bytes()[:4] == b"\x89PNG"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_l1"] for r in records if "val_l1" in r]
    assert len(records) == 40 and len(val) == 4
    assert val[-1] < 0.75 * val[0]
    assert state.best_score == pytest.approx(-min(val))
    assert load_checkpoint(run / "checkpoints" / "best.pt")["state"].best_iteration == state.best_iteration


@pytest.mark.parametrize("precompute", [0, 10])
def test_resume_continues_exactly(tmp_path: Path, precompute: int) -> None:
    source = write_images(tmp_path / "images", 3)
    cfg = PretrainConfig(**TINY_2D, iterations=6, val_every=3, val_cases=1, checkpoint_every=2,
                         precompute=precompute)
    pretrain(source, tmp_path / "a", cfg)
    resumed = pretrain(source, tmp_path / "a", cfg, iterations=9)  # extends the finished run
    straight = pretrain(source, tmp_path / "b", cfg, iterations=9)
    assert resumed.iteration == straight.iteration == 9
    records = [json.loads(line)["iteration"] for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert records == list(range(1, 10))
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_changed_images_refuse_to_resume_and_single_image_has_no_validation(tmp_path: Path) -> None:
    source = write_images(tmp_path / "images", 1)
    cfg = PretrainConfig(**TINY_2D, iterations=2, val_every=1)
    state = pretrain(source, tmp_path / "run", cfg)
    assert state.best_iteration == 0  # no validation: best.pt holds the final weights
    assert json.loads((tmp_path / "run" / "split.json").read_text())["validation"] == []
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    write_images(tmp_path / "images", 1, names=["another.nii.gz"])
    with pytest.raises(DatasetError, match="other images"):
        pretrain(source, tmp_path / "run", cfg, iterations=3)


def test_3d_pretraining_with_unet3d(tmp_path: Path) -> None:
    source = write_images(tmp_path / "images", 2, (16, 20, 20))
    cfg = PretrainConfig(model="unet3d", model_kwargs={"features": [4, 8]}, patch_size=[16, 16, 16], batch_size=2,
                         iterations=2, val_every=2, val_cases=1, val_patches=2, device="cpu", threads=1, amp="off")
    assert pretrain(source, tmp_path / "run", cfg).best_iteration == 2
    with pytest.raises(ConfigError, match="3-D patch"):
        pretrain(source, tmp_path / "bad", PretrainConfig(model="unet3d", patch_size=[1, 16, 16], device="cpu"))


# --- CLI --------------------------------------------------------------------------------------------------

def test_cli_pretrain(tmp_path: Path) -> None:
    source = write_images(tmp_path / "images", 2)
    config = tmp_path / "pre.yaml"
    save_pretrain_config(PretrainConfig(**{**TINY_2D, "patch_size": [1, 8, 8]}, val_every=2, val_cases=1), config)
    result = CliRunner().invoke(app, ["pretrain", str(source), "--out", str(tmp_path / "run"), "-c", str(config),
                                      "-n", "2", "--patch", "1,16,16", "--loss", "mse", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "pretrained unet2d for 2 iterations" in result.output
    saved = load_pretrain_config(tmp_path / "run" / "config.yaml")
    assert saved.loss == "mse" and saved.patch_size == [1, 16, 16] and saved.seed == 3 and saved.iterations == 2
    bad = CliRunner().invoke(app, ["pretrain", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")])
    assert bad.exit_code == 1 and "not found" in bad.output
