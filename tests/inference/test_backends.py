"""CPU backends (issue 21): ONNX exports run by ONNX Runtime / OpenVINO equal torch float32 within the stated
tolerance; the calibrated choice is cached per run and machine; forced engines fail clearly; predict end to end."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from clinseg.errors import ConfigError
from clinseg.inference import predict_probabilities
from clinseg.inference.backend_choice import LOGIT_ATOL, LOGIT_RTOL, choose_backend
from clinseg.inference.backends import (
    TorchBackend,
    build_engine,
    export_onnx,
    installed_engines,
    prepared_model,
)
from clinseg.models import create_model

ENGINES = [pytest.param(name, marks=pytest.mark.skipif(name not in installed_engines(), reason=f"{name} missing"))
           for name in ("onnxruntime", "openvino")]
NETWORKS = {  # tiny widths: exported and run in well under a second each
    "unet3d": {"features": (4, 8)},
    "dynunet": {"depth": 3, "features": (4, 8, 16)},
    "resfcn3d": {"features": (4, 4, 4), "blocks": 1},
}
WINDOW = (16, 16, 16)


def _net(name: str = "unet3d", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, 1, 3, **NETWORKS[name]).eval()


def _windows(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.randn((batch, 1, *WINDOW), generator=torch.Generator().manual_seed(seed)) * 2


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Every backend on one thread, as on a busy shared machine (and the fingerprint stays put)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_engine_logits_equal_torch_float32(engine: str, network: str, tmp_path: Path) -> None:
    net = _net(network)
    backend = build_engine(engine, export_onnx(net, 1, WINDOW, tmp_path / "net.onnx"))
    for batch in (1, 3):  # traced with a batch of 2: the batch is dynamic
        x = _windows(batch)
        with torch.inference_mode():
            reference = net(x)
        out = backend(x)
        assert out.shape == reference.shape and out.dtype == torch.float32
        bound = LOGIT_ATOL + LOGIT_RTOL * float(reference.abs().max())
        assert float((out - reference).abs().max()) <= bound
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # written atomically: no temporary left


@pytest.mark.parametrize("engine", ENGINES)
def test_sliding_window_on_an_engine_equals_torch(engine: str, tmp_path: Path) -> None:
    """Mirroring (with a left-right channel swap) and batching go through the engine as through torch; the
    probabilities differ by at most one float16 step (2**-11 below 1) plus the logit tolerance / 4."""
    net = _net("dynunet")
    backend = build_engine(engine, export_onnx(net, 1, WINDOW, tmp_path / "net.onnx"))
    image = np.random.default_rng(2).normal(size=(1, 20, 24, 30)).astype(np.float32)
    options = {"mirror_axes": (0, 2), "mirror_swap": (2, [1, 0, 2]), "batch_size": 3}
    expected = predict_probabilities(net, image, WINDOW, amp=False, **options)
    got = predict_probabilities(net, image, WINDOW, backend=backend, **options)
    assert got.shape == expected.shape == (3, 20, 24, 30)
    assert np.abs(got.astype(np.float32) - expected.astype(np.float32)).max() <= 2**-11 + LOGIT_ATOL / 4


def test_torch_runs_channels_last_and_the_model_is_given_back_as_it_was() -> None:
    net = _net("dynunet").train()
    image = np.random.default_rng(3).normal(size=(1, 16, 16, 24)).astype(np.float32)
    with prepared_model(net, torch.device("cpu")) as channels_last:
        assert channels_last and not net.training
        assert next(p for p in net.parameters() if p.ndim == 5).is_contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            x = _windows(2).contiguous(memory_format=torch.channels_last_3d)
            fp32 = TorchBackend(net, "cpu", amp=False)(x)
            assert fp32.dtype == torch.float32 and torch.allclose(fp32, net(x.contiguous()), atol=1e-5)
    assert net.training and all(p.is_contiguous() for p in net.parameters())
    predict_probabilities(net, image, WINDOW, amp=False)
    assert net.training and all(p.is_contiguous() for p in net.parameters())


@pytest.mark.skipif(not installed_engines(), reason="no ONNX engine installed")
def test_calibration_is_cached_and_redone_for_other_weights_or_machines(tmp_path: Path) -> None:
    net, cache = _net(), tmp_path / "cache"
    first = choose_backend(net, 1, WINDOW, batch=2, cache_dir=cache)
    assert first.calibrated and set(first.seconds) == {"torch", *installed_engines()}
    (folder,) = cache.iterdir()  # one folder per network (its weights' hash)
    assert sorted(p.name for p in folder.iterdir()) == ["1x16x16x16.onnx", "backend.json"]
    ((key, record),) = json.loads((folder / "backend.json").read_text()).items()
    assert record["choice"] == first.name and record["tolerance"] == {"atol": LOGIT_ATOL, "rtol": LOGIT_RTOL}
    assert record["machine"]["threads"] == 1 and record["batch"] == 2
    for engine in installed_engines():  # every engine passed the equality check (none left out)
        assert record["max_abs_diff"][engine] < LOGIT_ATOL and engine not in record["left_out"]

    # the cached record is trusted, not timed again: hand-edit its choice and get that engine back
    record["choice"] = installed_engines()[-1]
    (folder / "backend.json").write_text(json.dumps({key: record}))
    stamp = (folder / "backend.json").stat().st_mtime_ns
    again = choose_backend(net, 1, WINDOW, batch=2, cache_dir=cache)
    assert not again.calibrated and again.name == installed_engines()[-1] and again.seconds == record["seconds"]
    assert (folder / "backend.json").stat().st_mtime_ns == stamp

    # a record of another machine (another fingerprint: another key) is not used: calibrated again, kept beside
    (folder / "backend.json").write_text(json.dumps({"0123456789abcdef": record}))
    assert choose_backend(net, 1, WINDOW, batch=2, cache_dir=cache).calibrated
    assert list(json.loads((folder / "backend.json").read_text()))[1:] == ["0123456789abcdef"]
    assert choose_backend(net, 1, WINDOW, batch=1, cache_dir=cache).calibrated  # another batch: its own record

    # new weights (a checkpoint overwritten by more training): a folder of their own, calibrated again
    with torch.no_grad():
        next(net.parameters()).add_(0.1)
    assert choose_backend(net, 1, WINDOW, batch=2, cache_dir=cache).calibrated
    assert len(list(cache.iterdir())) == 2


def test_forced_engines_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    net, cache = _net(), tmp_path / "cache"
    with pytest.raises(ConfigError, match=r"unknown backend 'tensorrt'; use auto, torch, onnxruntime, openvino"):
        choose_backend(net, 1, WINDOW, requested="tensorrt", cache_dir=cache)
    with pytest.raises(ConfigError, match="runs on the CPU only"):
        choose_backend(net, 1, WINDOW, requested="onnxruntime", device="cuda", cache_dir=cache)
    assert choose_backend(net, 1, WINDOW, device="cuda", cache_dir=cache).name == "torch"  # auto on a GPU
    monkeypatch.setitem(sys.modules, "openvino", None)  # what Python does for a package that is not there
    with pytest.raises(ConfigError, match=r"backend 'openvino' is not available: openvino not installed "
                                          r"\(pip install 'clinseg\[cpu\]'\)"):
        choose_backend(net, 1, WINDOW, requested="openvino", cache_dir=cache)
    assert not cache.exists()  # refused before exporting anything
    assert "openvino" not in installed_engines()


@pytest.mark.skipif(not installed_engines(), reason="no ONNX engine installed")
def test_unwritable_cache_keeps_auto_on_torch(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cache = tmp_path / "file" / "cache"  # under a file: nothing can be written there, even by root
    choice = choose_backend(_net(), 1, WINDOW, batch=1, cache_dir=cache)
    assert choice.name == "torch" and choice.calibrated and set(choice.seconds) == {"torch"}
    with pytest.raises(ConfigError, match="cannot write the ONNX export"):
        choose_backend(_net(), 1, WINDOW, requested=installed_engines()[0], cache_dir=cache)


@pytest.mark.skipif("onnxruntime" not in installed_engines(), reason="onnxruntime missing")
def test_predict_on_onnxruntime_gives_torch_masks(make_dataset, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """``clinseg predict --backend onnxruntime`` writes torch's masks, except voxels whose torch probability
    lies within the tolerance's reach (1e-3) of the threshold (a barely trained network has many near 0.5);
    all components kept, so that one such voxel cannot change which component is the largest."""
    from clinseg.cli.main import app
    from clinseg.io import read_image
    from clinseg.training.config import TrainConfig
    from clinseg.training.run import train
    from tests.training.test_run import TINY

    root, run = make_dataset(), tmp_path / "run"
    train(root, run, TrainConfig(**{**TINY, "val_cases": 0}), iterations=2)
    monkeypatch.setenv("CLINSEG_CACHE", str(tmp_path / "cache"))
    before = sorted(p for p in run.rglob("*"))
    runner = CliRunner()
    for backend in ("torch", "onnxruntime", "auto"):
        extra = ["--save-probabilities", str(tmp_path / "probs")] if backend == "torch" else []
        result = runner.invoke(app, ["predict", str(run), str(root / "imagesTs"), str(tmp_path / backend),
                                     "--backend", backend, "--device", "cpu", "--all-components", *extra])
        assert result.exit_code == 0, result.output
    for name in ("A", "B"):
        probs = read_image(tmp_path / "probs" / "test_0" / f"{name}.nii.gz").array
        masks = {b: read_image(tmp_path / b / "test_0" / f"{name}.nii.gz").array > 0 for b in ("torch", "onnxruntime")}
        differ = masks["torch"] != masks["onnxruntime"]
        assert not differ[np.abs(probs - 0.5) > 1e-3].any()
        np.testing.assert_array_equal(masks["torch"], probs >= 0.5)
    (cached,) = (tmp_path / "cache" / "backends").glob("*/backend.json")  # auto calibrated and kept its choice
    (record,) = json.loads(cached.read_text()).values()
    assert record["choice"] in ("torch", *installed_engines())
    assert sorted(p for p in run.rglob("*")) == before  # the run folder is only read
    refused = runner.invoke(app, ["predict", str(run), str(root / "imagesTs"), str(tmp_path / "x"),
                                  "--backend", "onnx"])
    assert refused.exit_code == 1 and "unknown backend 'onnx'" in " ".join(refused.output.split())
    assert "Traceback" not in refused.output and not (tmp_path / "x").exists()


def test_the_runtimes_report_nothing_to_their_vendors(tmp_path: Path) -> None:
    """ONNX Runtime (1DS uploader, device id under ~/.cache/Microsoft) and OpenVINO (Google Analytics through
    openvino_telemetry, ids under ~/intel) stay quiet: in a fresh process with its own HOME, exporting a
    network and running it on both engines leaves neither vendor's files in that HOME."""
    import subprocess

    engines = [name for name in ("onnxruntime", "openvino") if name in installed_engines()]
    if not engines:
        pytest.skip("neither onnxruntime nor openvino is installed")
    home = tmp_path / "home"
    home.mkdir()
    script = f"""
import sys, torch
from clinseg.inference.backends import build_engine, export_onnx
net = torch.nn.Conv3d(1, 2, 3, padding=1).eval()
path = export_onnx(net, 1, (8, 8, 8), {str(tmp_path / "net.onnx")!r})
for name in {engines!r}:
    assert build_engine(name, path, 1)(torch.zeros(1, 1, 8, 8, 8)).shape == (1, 2, 8, 8, 8)
import os
print(os.environ.get("ORT_DISABLE_TELEMETRY"), sys.modules.get("openvino_telemetry", "absent"))
"""
    env = {key: value for key, value in os.environ.items() if key not in ("ORT_DISABLE_TELEMETRY",
                                                                           "CLINSEG_VENDOR_TELEMETRY")}
    done = subprocess.run([sys.executable, "-c", script], env={**env, "HOME": str(home)}, check=False, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "1"
    if "openvino" in engines:
        assert done.stdout.split()[1] == "None"  # import openvino_telemetry fails: OpenVINO uses its stub
    written = sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))
    assert not [p for p in written if p.startswith((".cache/Microsoft", "intel"))], written
