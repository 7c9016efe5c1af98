"""An interactive run end to end: training with simulated clicks, predict/evaluate --clicks, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.errors import ConfigError
from clinseg.inference.predictor import Predictor
from clinseg.interactive.network import InteractiveNetwork
from clinseg.io import Geometry, read_image, write_image
from clinseg.data.augmentation import AugmentationSettings
from clinseg.training.config import TrainConfig
from clinseg.training.schedule import ScheduleSettings
from clinseg.training.run import train

GEOM = Geometry(spacing=(1.0, 1.0, 2.0), shape=(4, 24, 24))


@pytest.fixture(scope="module")
def two_discs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bright discs (A left-top, B right-bottom) through every slice: which one is wanted, only clicks say."""
    root = tmp_path_factory.mktemp("discs")
    rng = np.random.default_rng(0)
    spec = {"name": "Discs", "channel_names": {"0": "CT"}, "labels": {"A": 1, "B": 2}, "label_mode": "multilabel",
            "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(spec))
    _, y, x = np.ogrid[:4, :24, :24]
    for split, prefix, n in (("Tr", "case", 4), ("Ts", "test", 1)):
        for i in range(n):
            a = np.broadcast_to((y - 8) ** 2 + (x - 8) ** 2 < 16, GEOM.shape).astype(np.uint8)
            b = np.broadcast_to((y - 16) ** 2 + (x - 16) ** 2 < 16, GEOM.shape).astype(np.uint8)
            image = (0.2 + 0.5 * (a + b) + rng.normal(0, 0.05, GEOM.shape)).astype(np.float32)
            write_image(image, GEOM, root / f"images{split}" / f"{prefix}_{i}_0000.nii.gz")
            write_image(a, GEOM, root / f"structures{split}" / f"{prefix}_{i}" / "A.nii.gz")
            write_image(b, GEOM, root / f"structures{split}" / f"{prefix}_{i}" / "B.nii.gz")
    return root


@pytest.fixture(scope="module")
def interactive_run(two_discs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "inter"
    cfg = TrainConfig(model="unet2d", model_kwargs={"features": [4, 8]}, patch_size=[1, 16, 16], batch_size=4,
                      iterations=250, val_every=50, lr=3e-3, normalization="none", interactive={"sigma": 2.0},
                      # the click mechanics under test, with the schedule they were tuned with
                      schedule=ScheduleSettings(optimizer="adam", decay="constant", warmup=0),
                      augmentation=AugmentationSettings(enabled=False))
    train(two_discs, run, cfg)
    return run


def test_interactive_network_obeys_the_clicks(interactive_run: Path, two_discs: Path):
    network = InteractiveNetwork.from_run(interactive_run)
    assert network.slice_axis == 0 and network.structures == ("A", "B")
    image, _ = network.load_image(two_discs / "imagesTs" / "test_0_0000.nii.gz")
    on_a = network.segment(image, [(1, 8, 8)], [])
    on_b = network.segment(image, [(1, 16, 16)], [])
    assert on_a[1, 8, 8] == 1 and on_a[1, 16, 16] == 0
    assert on_b[1, 16, 16] == 1 and on_b[1, 8, 8] == 0
    assert on_a[0].sum() == 0  # a slice-wise network: no click on slice 0, nothing designated there
    only = network.segment(image, [(1, 8, 8)], [], slices=[1])
    assert np.array_equal(only[1], on_a[1]) and only[[0, 2, 3]].sum() == 0


def test_interactive_run_records_validation_with_clicks(interactive_run: Path):
    records = [json.loads(line) for line in (interactive_run / "metrics.jsonl").read_text().splitlines()]
    validated = [r for r in records if "val_dice" in r]
    assert len(validated) == 5 and validated[-1]["val_dice"] > 0.8
    assert (interactive_run / "checkpoints" / "best.pt").is_file()


def test_plain_predict_refuses_an_interactive_run(interactive_run: Path):
    predictor = Predictor.from_run(interactive_run)
    with pytest.raises(ConfigError, match="--clicks"):
        predictor.predict(np.zeros((1, 4, 24, 24), np.float32))


def test_predict_and_evaluate_with_clicks(interactive_run: Path, two_discs: Path, tmp_path: Path):
    runner = CliRunner()
    out, evaluation = tmp_path / "pred", tmp_path / "eval"
    result = runner.invoke(app, ["predict", str(interactive_run), str(two_discs / "imagesTs"), str(out),
                                 "--clicks", "2"])
    assert result.exit_code == 0, result.output
    final = read_image(out / "test_0" / "A.nii.gz").array
    first = read_image(out / "clicks" / "1" / "test_0" / "A.nii.gz").array
    assert final.shape == first.shape == GEOM.shape
    clicks = json.loads((out / "clicks.json").read_text())
    assert clicks["slice_axis"] == 0 and len(clicks["cases"]["test_0"]["A"]["foreground"]) >= 4  # 1 per slice
    result = runner.invoke(app, ["evaluate", str(out), str(two_discs), "--out", str(evaluation), "--clicks", "2"])
    assert result.exit_code == 0, result.output
    curve = pd.read_csv(evaluation / "dice_vs_clicks.csv")
    assert sorted(curve["clicks"].unique()) == [1, 2] and set(curve["structure"]) == {"A", "B"}
    assert curve["dice_mean"].min() > 0.8
    assert (evaluation / "dice_vs_clicks.png").stat().st_size > 1000


def test_evaluate_clicks_without_rounds_is_a_clear_error(interactive_run: Path, two_discs: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "pred"
    assert runner.invoke(app, ["predict", str(interactive_run), str(two_discs / "imagesTs"), str(out),
                               "--clicks", "1"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(out), str(two_discs), "--out", str(tmp_path / "e"), "--clicks", "3"])
    assert result.exit_code != 0 and "--clicks 3" in result.output


def test_corrections_fine_tune_the_interactive_run(interactive_run: Path, two_discs: Path, tmp_path: Path):
    """The corrective-annotation loop: clicks in the viewer's session, corrections saved as a dataset in
    which only the touched structure is delineated, then `train --init RUN` fine-tunes the same network."""
    from clinseg.data.dataset import load_dataset
    from clinseg.interactive.viewer import ViewerSession

    network = InteractiveNetwork.from_run(interactive_run)
    corrections = tmp_path / "corrections"
    for i in range(2):  # two corrected cases: a dataset the trainer can split into training and validation
        session = ViewerSession(network, two_discs / "imagesTr" / f"case_{i}_0000.nii.gz", run_dir=interactive_run)
        session.select("B")
        session.click(1, 16, 16, True)
        session.save_corrections(corrections)
    dataset = load_dataset(corrections)
    assert [sorted(r.annotated) for r in dataset.train] == [["B"], ["B"]]  # A untouched: not delineated

    result = CliRunner().invoke(app, ["train", str(corrections), "--out", str(tmp_path / "tuned"), "--init",
                                      str(interactive_run), "-n", "2", "--val-cases", "1"])
    assert result.exit_code == 0, result.output
    init = json.loads((tmp_path / "tuned" / "init.json").read_text())
    assert init["num_skipped"] == 0 and init["num_partial"] == 0  # same network: everything, head included
    tuned = InteractiveNetwork.from_run(tmp_path / "tuned")
    assert tuned.config.interactive == network.config.interactive and tuned.slice_axis == 0


def test_3d_interactive_run_clicks_per_volume(two_discs: Path, tmp_path: Path):
    cfg = TrainConfig(model="unet3d", model_kwargs={"features": [4, 8]}, patch_size=[4, 16, 16], batch_size=2,
                      iterations=2, val_every=2, normalization="none", interactive={"sigma": 2.0, "eval_clicks": 2})
    train(two_discs, tmp_path / "run3d", cfg)
    network = InteractiveNetwork.from_run(tmp_path / "run3d")
    assert network.slice_axis is None
    image, geometry = network.load_image(two_discs / "imagesTs" / "test_0_0000.nii.gz")
    target = read_image(two_discs / "structuresTs" / "test_0" / "A.nii.gz").array > 0
    rounds = network.simulate(image, target, 2, geometry.spacing_zyx)
    assert len(rounds) == 2 and rounds[0][1].count() == 1  # one click for the whole volume
    assert rounds[1][1].count() <= 2 and rounds[1][0].shape == GEOM.shape
