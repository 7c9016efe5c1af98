"""The fault catalogue (issue 18): bad inputs fed through the real CLI, each answered with one clear line.

Every case below runs one ``clinseg`` command on a damaged or hostile input and checks what a user sees and
what is left on disk:

* the exit code (1 for a refusal; 0 where the tool must go on, e.g. ``import-dicom`` with a damaged ROI);
* exactly one line starting ``error:`` (none when the command goes on), no ``Traceback``;
* the message names the offending file or option;
* no file was created or changed outside the command's output folder: the test's own folder, the shared data
  and the folder above the test's are compared before and after.

The catalogue grows: a new fault is one more :class:`Fault` in :data:`FAULTS`. The shared data (a tiny
dataset, a run trained for two iterations, its predictions, a pretraining run) is built once per module;
each case copies what it damages into its own ``tmp_path``. A fault that needs a process of its own (a full
disk: files may not grow past a limit) runs the CLI in a subprocess. ``pytest -s`` prints every answer.
"""

from __future__ import annotations

import csv
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from typer.testing import CliRunner

from clinseg.cli.main import app
from clinseg.io import Geometry, read_image, write_image
from tests.conftest import _blob
from tests.io._dicom_factory import circle, edit_dicom, phantom_volume, write_rtstruct, write_series
from tests.studies._helpers import TINY_BASE

runner = CliRunner()
GEOM = Geometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), shape=(16, 16, 16))
#: A network and patch that train two iterations in a blink (no validation: val_cases 0).
TINY = {"model": "unet3d", "model_kwargs": {"features": [4, 8]}, "patch_size": [16, 16, 16], "batch_size": 1,
        "iterations": 2, "val_cases": 0, "threads": 1}
TINY_PRETRAIN = {"model": "unet2d", "model_kwargs": {"features": [4, 8]}, "patch_size": [1, 8, 8],
                 "batch_size": 2, "iterations": 2, "val_cases": 0, "device": "cpu", "threads": 1, "amp": "off"}


# --- the shared data, built once --------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """What every case may read but never change: built once, only when a case needs it."""

    root: Path  # the folder holding everything below
    request: pytest.FixtureRequest

    @property
    def dataset(self) -> Path:
        """4 training cases (case_1 lacks B), 1 test case; structures A and B; one channel T1."""
        return self.request.getfixturevalue("shared_dataset")

    @property
    def config(self) -> Path:
        """TINY as a ``--config`` file."""
        return self.request.getfixturevalue("shared_config")

    @property
    def run(self) -> Path:
        """Trained for 2 iterations on :attr:`dataset` with :attr:`config`."""
        return self.request.getfixturevalue("shared_run")

    @property
    def pred(self) -> Path:
        """The run's predictions of ``imagesTs``."""
        return self.request.getfixturevalue("shared_pred")

    @property
    def pretrain(self) -> Path:
        """A pretraining run of :attr:`dataset`'s ``imagesTr``, 2 iterations."""
        return self.request.getfixturevalue("shared_pretrain")


def write_dataset(root: Path, cases: int = 4) -> Path:
    """A tiny multilabel dataset on 16³ volumes: ``cases`` training cases, one test case."""
    rng = np.random.default_rng(0)
    spec = {"name": "Tiny", "channel_names": {"0": "T1"}, "labels": {"A": 1, "B": 2}, "label_mode": "multilabel",
            "file_ending": ".nii.gz"}
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(spec, indent=2))
    for split, prefix, n in (("Tr", "case", cases), ("Ts", "test", 1)):
        for i in range(n):
            case = f"{prefix}_{i}"
            write_image(rng.normal(size=GEOM.shape).astype(np.float32), GEOM,
                        root / f"images{split}" / f"{case}_0000.nii.gz")
            write_image(_blob(GEOM.shape, (8, 8, 5), 3), GEOM, root / f"structures{split}" / case / "A.nii.gz")
            if case != "case_1":
                write_image(_blob(GEOM.shape, (8, 8, 11), 3), GEOM, root / f"structures{split}" / case / "B.nii.gz")
    return root


def ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalogue-shared")


@pytest.fixture(scope="module")
def shared_dataset(shared_root: Path) -> Path:
    return write_dataset(shared_root / "ds")


@pytest.fixture(scope="module")
def shared_config(shared_root: Path) -> Path:
    path = shared_root / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def shared_run(shared_root: Path, shared_dataset: Path, shared_config: Path) -> Path:
    ok(["train", str(shared_dataset), "--out", str(shared_root / "run"), "--config", str(shared_config)])
    return shared_root / "run"


@pytest.fixture(scope="module")
def shared_pred(shared_root: Path, shared_dataset: Path, shared_run: Path) -> Path:
    ok(["predict", str(shared_run), str(shared_dataset / "imagesTs"), str(shared_root / "pred")])
    return shared_root / "pred"


@pytest.fixture(scope="module")
def shared_pretrain(shared_root: Path, shared_dataset: Path) -> Path:
    config = shared_root / "pretrain.yaml"
    config.write_text(yaml.safe_dump(TINY_PRETRAIN))
    ok(["pretrain", str(shared_dataset), "--out", str(shared_root / "pretrain"), "--config", str(config)])
    return shared_root / "pretrain"


# --- one case: the command, what its message must name, where it may write ------------------------------------


@dataclass
class Call:
    """One command of the catalogue and what it must do."""

    args: list[str]
    names: list[str]  # fragments the error line (or, with exit code 0, the output) must hold
    allowed: list[Path] = field(default_factory=list)  # where the command may create or change files
    exit_code: int = 1
    absent: list[Path] = field(default_factory=list)  # paths a hostile input aims at: they must not appear
    written: list[Path] = field(default_factory=list)  # files the command must write all the same (a report)
    unchanged: list[Path] = field(default_factory=list)  # files inside ``allowed`` that must be kept as they were
    file_size_limit: int | None = None  # run in a process of its own whose files may not grow past this (bytes)
    then: Callable[[], None] | None = None  # further checks after the command


@dataclass
class Ctx:
    """What a case builds its command from: its own folder and the shared data."""

    tmp: Path
    shared: Shared

    def dataset(self) -> Path:
        """A copy of the shared dataset in the case's folder, free to damage."""
        return Path(shutil.copytree(self.shared.dataset, self.tmp / "ds"))

    def spec(self, root: Path, **changes: object) -> Path:
        """Rewrite ``root/dataset.json`` with ``changes``; returns its path."""
        path = root / "dataset.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=2))
        return path

    def run(self) -> Path:
        """A copy of the shared trained run, free to damage."""
        return Path(shutil.copytree(self.shared.run, self.tmp / "run"))

    def train(self, dataset: Path) -> list[str]:
        return ["train", str(dataset), "--out", str(self.tmp / "out"), "--config", str(self.shared.config)]


@dataclass(frozen=True)
class Fault:
    """One entry of the catalogue: its test id and how to build the bad input and the command."""

    id: str
    build: Callable[[Ctx], Call]


def _copy_image(source: Path, target: Path, edit: Callable[[np.ndarray], np.ndarray] = lambda a: a,
                geometry: Geometry | None = None) -> Path:
    image = read_image(source)
    write_image(edit(image.array), geometry or image.geometry, target)
    return target


# --- dataset faults: train refuses what validate finds ---------------------------------------------------


def _label_named(name: str) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        root = ctx.dataset()
        path = ctx.spec(root, labels={"A": 1, name: 2})
        target = Path(name) if name.startswith("/") else ctx.tmp / "x"
        return Call(ctx.train(root), [f"{path}: structure name {name!r}"], [ctx.tmp / "out"],
                    absent=[target.with_suffix(".nii.gz"), target])
    return build


def _hostile_tmp_label(ctx: Ctx) -> Call:
    name = f"/tmp/clinseg-catalogue-{uuid.uuid4().hex[:8]}"
    return _label_named(name)(ctx)


def _validate_label(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = ctx.spec(root, labels={"A": 1, "../../x": 2})
    return Call(["validate", str(root)], [f"{path}: structure name '../../x' contains '/'"])


def _case_id_in_dataset_json(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = ctx.spec(root, cases={"../case_0": {"weak_labels": {"A": True}}})
    return Call(ctx.train(root), [f"{path}: case id '../case_0' contains '/'"], [ctx.tmp / "out"])


def _case_id_of_a_file(ctx: Ctx) -> Call:
    root = ctx.dataset()
    bad = (root / "imagesTr" / "case_3_0000.nii.gz").rename(root / "imagesTr" / "nul_0000.nii.gz")
    (root / "structuresTr" / "case_3").rename(root / "structuresTr" / "nul")
    return Call(ctx.train(root), [str(bad), "case id 'nul' is a device name on Windows"], [ctx.tmp / "out"])


def _channel_name(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = ctx.spec(root, channel_names={"0": "T1/x"})
    return Call(ctx.train(root), [f"{path}: channel name 'T1/x' contains '/'"], [ctx.tmp / "out"])


def _duplicate_json_key(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "dataset.json"
    path.write_text(path.read_text().replace('"labels": {', '"labels": {"B": 3, ', 1))
    return Call(ctx.train(root), [f"{path}: key 'B' appears twice in one JSON object"], [ctx.tmp / "out"])


def _case_in_both_sets(ctx: Ctx) -> Call:
    root = ctx.dataset()
    shutil.copy(root / "imagesTr" / "case_2_0000.nii.gz", root / "imagesTs" / "case_2_0000.nii.gz")
    return Call(ctx.train(root), ["training refused", "duplicate case 'case_2' appears in both the training and "
                                  "the test set"], [ctx.tmp / "out"])


def _nii_and_nii_gz(ctx: Ctx) -> Call:
    root = ctx.dataset()
    _copy_image(root / "imagesTr" / "case_0_0000.nii.gz", root / "imagesTr" / "case_0_0000.nii")
    return Call(ctx.train(root), ["training refused", f"{root}/imagesTr/case_0_0000.nii.gz: duplicate case 'case_0' "
                                  "channel 0 (also case_0_0000.nii)"], [ctx.tmp / "out"])


def _misnamed_mask(ctx: Ctx) -> Call:
    root = ctx.dataset()
    bad = (root / "structuresTr" / "case_2" / "B.nii.gz").rename(root / "structuresTr" / "case_2" / "B_left.nii.gz")
    return Call(ctx.train(root), ["training refused", f"{bad}: unknown structure 'B_left'"], [ctx.tmp / "out"])


def _nan_voxels(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "imagesTr" / "case_0_0000.nii.gz"

    def poison(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array[2, 3, 4] = math.nan
        return array

    _copy_image(path, path, poison)
    return Call(ctx.train(root), ["training refused", str(path), "NaN"], [ctx.tmp / "out"])


def _truncated_nifti(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "imagesTr" / "case_2_0000.nii.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Call(ctx.train(root), ["training refused", f"{path}: unreadable or truncated image"], [ctx.tmp / "out"])


def _not_an_image(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "structuresTr" / "case_0" / "A.nii.gz"
    path.write_bytes(b"\x00" * 512)
    return Call(ctx.train(root), ["training refused", f"{path}: unreadable or truncated image"], [ctx.tmp / "out"])


def _mask_of_another_shape(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "structuresTr" / "case_2" / "A.nii.gz"
    write_image(np.zeros((16, 16, 12), np.uint8), Geometry(spacing=(1.0, 1.0, 1.0), shape=(16, 16, 12)), path)
    return Call(ctx.train(root), ["training refused", str(path), "shape"], [ctx.tmp / "out"])


def _mask_of_another_spacing(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "structuresTr" / "case_2" / "A.nii.gz"
    _copy_image(path, path, geometry=Geometry(spacing=(1.0, 1.0, 2.5), shape=GEOM.shape))
    return Call(ctx.train(root), ["training refused", str(path), "spacing"], [ctx.tmp / "out"])


def _label_value_outside_the_set(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = root / "structuresTr" / "case_2" / "A.nii.gz"
    _copy_image(path, path, lambda a: (a * 3).astype(np.uint8))
    return Call(ctx.train(root), ["training refused", f"{path}: structure mask is not binary (values 3)"],
                [ctx.tmp / "out"])


def _windows_device_label(ctx: Ctx) -> Call:
    root = ctx.dataset()
    path = ctx.spec(root, labels={"A": 1, "CON": 2})
    return Call(ctx.train(root), [f"{path}: structure name 'CON' is a device name on Windows"], [ctx.tmp / "out"])


def _config_not_utf8(ctx: Ctx) -> Call:
    config = ctx.tmp / "latin1.yaml"
    config.write_bytes("model: unet3d  # réseau\n".encode("latin-1"))
    return Call(["train", str(ctx.shared.dataset), "--out", str(ctx.tmp / "out"), "--config", str(config)],
                [f"{config}: config file is not UTF-8 text"], [ctx.tmp / "out"])


def _duplicate_yaml_key(ctx: Ctx) -> Call:
    config = ctx.tmp / "twice.yaml"
    config.write_text(ctx.shared.config.read_text() + "batch_size: 4\n")
    return Call(["train", str(ctx.shared.dataset), "--out", str(ctx.tmp / "out"), "--config", str(config)],
                [f"{config}: key 'batch_size' appears twice in one mapping"], [ctx.tmp / "out"])


# --- output folders that cannot be --------------------------------------------------------------------------


def _bad_out(command: str, kind: str) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        afile = ctx.tmp / "afile"
        afile.write_text("not a folder")
        out = {"file": afile, "sub": afile / "sub", "proc": Path("/proc/clinseg-catalogue")}[kind]
        s = ctx.shared
        args = {"train": ["train", str(s.dataset), "--config", str(s.config), "--out", str(out)],
                "predict": ["predict", str(s.run), str(s.dataset / "imagesTs"), str(out)],
                "evaluate": ["evaluate", str(s.pred), str(s.dataset), "--out", str(out)],
                "pretrain": ["pretrain", str(s.dataset), "--out", str(out)]}[command]
        reason = {"file": "exists and is not a folder", "sub": "cannot create the",
                  "proc": "cannot create the"}[kind]
        return Call(args, [f"{out}: {reason}"])
    return build


# --- runs: damaged checkpoints, changed options -------------------------------------------------------------


def _truncated_checkpoint(command: str) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        run = ctx.run()
        name = "last.pt" if command == "train" else "best.pt"
        path = run / "checkpoints" / name
        path.write_bytes(path.read_bytes()[:6000])
        if command == "train":
            return Call(["train", str(ctx.shared.dataset), "--out", str(run), "-n", "3"],
                        [f"{path}: corrupt or unsafe checkpoint: truncated or damaged"], [run])
        out = ctx.tmp / "pred"
        return Call(["predict", str(run), str(ctx.shared.dataset / "imagesTs"), str(out)],
                    [f"{path}: corrupt or unsafe checkpoint: truncated or damaged"], [out])
    return build


def _resume_changed(ctx: Ctx) -> Call:
    run = ctx.run()
    return Call(["train", str(ctx.shared.dataset), "--out", str(run), "--model", "resfcn3d", "--seed", "1"],
                [f"{run} was trained with model=unet3d, seed=0; you asked for model=resfcn3d, seed=1", "--force"],
                [run])


def _fewer_iterations(ctx: Ctx) -> Call:
    run = ctx.run()
    return Call(["train", str(ctx.shared.dataset), "--out", str(run), "-n", "1"],
                [f"{run} has already trained 2 iterations; --iterations 1 cannot undo them"], [run])


def _disk_full_during_a_checkpoint(ctx: Ctx) -> Call:
    run = ctx.run()
    last = run / "checkpoints" / "last.pt"
    return Call(["train", str(ctx.shared.dataset), "--out", str(run), "-n", "3"],
                [f"{last}: could not write the checkpoint (is the disk full or over quota?",
                 "the previous last.pt is kept intact"], [run], unchanged=[last],
                file_size_limit=last.stat().st_size // 2)


def _pretrain_changed(ctx: Ctx) -> Call:
    run = Path(shutil.copytree(ctx.shared.pretrain, ctx.tmp / "pretrain"))
    return Call(["pretrain", str(ctx.shared.dataset), "--out", str(run), "--seed", "5", "--loss", "mse"],
                [f"{run} was trained with loss=l1, seed=0; you asked for loss=mse, seed=5", "--force"], [run])


def _pretrain_fewer_iterations(ctx: Ctx) -> Call:
    run = Path(shutil.copytree(ctx.shared.pretrain, ctx.tmp / "pretrain"))
    return Call(["pretrain", str(ctx.shared.dataset), "--out", str(run), "-n", "1"],
                [f"{run} has already trained 2 iterations; --iterations 1 cannot undo them"], [run])


def _run_with_hostile_structure(ctx: Ctx) -> Call:
    run = ctx.run()
    info = json.loads((run / "run.json").read_text())
    info["outputs"] = info["structures"] = ["A", "../../x"]
    info["label_values"] = {"A": 1, "../../x": 2}
    (run / "run.json").write_text(json.dumps(info))
    out = ctx.tmp / "pred"
    return Call(["predict", str(run), str(ctx.shared.dataset / "imagesTs"), str(out)],
                ["structure name '../../x' contains '/'"], [out], absent=[ctx.tmp / "x.nii.gz"])


# --- prediction inputs --------------------------------------------------------------------------------------


def _inputs(ctx: Ctx) -> Path:
    return Path(shutil.copytree(ctx.shared.dataset / "imagesTs", ctx.tmp / "in"))


def _extra_channel(ctx: Ctx) -> Call:
    inputs = _inputs(ctx)
    extra = _copy_image(inputs / "test_0_0000.nii.gz", inputs / "test_0_0001.nii.gz")
    out = ctx.tmp / "pred"
    return Call(["predict", str(ctx.shared.run), str(inputs), str(out)],
                [f"{extra}: channel 1 of case 'test_0', but the run reads 1 channel(s)"], [out])


def _truncated_input(ctx: Ctx) -> Call:
    inputs = _inputs(ctx)
    path = inputs / "test_0_0000.nii.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = ctx.tmp / "pred"
    return Call(["predict", str(ctx.shared.run), str(inputs), str(out)], [str(path)], [out])


def _hostile_input_case_id(ctx: Ctx) -> Call:
    inputs = _inputs(ctx)
    bad = (inputs / "test_0_0000.nii.gz").rename(inputs / "CON_0000.nii.gz")
    out = ctx.tmp / "pred"
    return Call(["predict", str(ctx.shared.run), str(inputs), str(out)],
                [f"{bad}: case id 'CON' is a device name on Windows"], [out])


def _missing_prediction(ctx: Ctx) -> Call:
    pred = ctx.tmp / "pred"
    pred.mkdir()
    out = ctx.tmp / "eval"
    return Call(["evaluate", str(pred), str(ctx.shared.dataset), "--out", str(out)],
                [f"{pred / 'test_0'}: no prediction for reference case 'test_0'"], [out])


def _truncated_prediction(ctx: Ctx) -> Call:
    pred = Path(shutil.copytree(ctx.shared.pred, ctx.tmp / "pred"))
    path = pred / "test_0" / "A.nii.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    out = ctx.tmp / "eval"
    return Call(["evaluate", str(pred), str(ctx.shared.dataset), "--out", str(out)], [str(path)], [out])


# --- DICOM import --------------------------------------------------------------------------------------------


def _dicom_case(src: Path) -> Path:
    shape = (6, 16, 16)
    info = write_series(src, phantom_volume(shape=shape))
    rois = {"Brainstem": [circle(info, z, (8, 8), 3.0, points=12) for z in range(1, 5)],
            "Eye_L": [circle(info, z, (8, 8), 2.0, points=12) for z in (2, 3)]}
    write_rtstruct(src / "rs.dcm", info, rois)
    return src / "rs.dcm"


def _hostile_roi_names(ctx: Ctx) -> Call:
    src, out = ctx.tmp / "src", ctx.tmp / "imported"
    evil = f"clinseg-evil-{uuid.uuid4().hex[:8]}"
    info = write_series(src, phantom_volume(shape=(6, 16, 16)))
    names = [f"../../{evil}", f"/tmp/{evil}", '=HYPERLINK("http://x")', "CON"]
    write_rtstruct(src / "rs.dcm", info, {n: [circle(info, 2, (8, 8), 3.0, points=12)] for n in names})

    def then() -> None:
        written = sorted(p.name for p in (out / "structuresTr" / "PAT001_2").iterdir())
        assert written == [f"{n}.nii.gz" for n in sorted(["CON_", "HYPERLINK_http_x", evil, f"tmp_{evil}"])]
        with open(out / "import-report.csv", newline="", encoding="utf-8") as fh:
            cells = {row["name"] for row in csv.DictReader(fh)}
        assert """'=HYPERLINK("http://x")""" in cells and '=HYPERLINK("http://x")' not in cells

    return Call(["import-dicom", str(src), str(out), "--keep-unmapped"], ["structures: CON_, HYPERLINK_http_x"],
                [out], exit_code=0, absent=[ctx.tmp / f"{evil}.nii.gz", Path(f"/tmp/{evil}.nii.gz")], then=then)


def _damaged_rtstruct(ctx: Ctx) -> Call:
    rs = _dicom_case(ctx.tmp / "src")

    def cut(ds) -> None:  # ContourData not a multiple of 3
        item = ds.ROIContourSequence[1].ContourSequence[0]
        item.ContourData = item.ContourData[:-2]

    edit_dicom(rs, cut)
    out = ctx.tmp / "imported"
    return Call(["import-dicom", str(ctx.tmp / "src"), str(out)], ["damaged ROIs (not imported): Eye_L"], [out],
                exit_code=0, written=[out / "import-report.csv"])


def _rtstruct_without_roi_numbers(ctx: Ctx) -> Call:
    rs = _dicom_case(ctx.tmp / "src")
    edit_dicom(rs, lambda ds: [delattr(item, "ReferencedROINumber") for item in ds.ROIContourSequence])
    out = ctx.tmp / "imported"
    return Call(["import-dicom", str(ctx.tmp / "src"), str(out)],
                [f"{ctx.tmp / 'src'}: no structure could be imported (damaged: Brainstem, Eye_L); see "
                 f"{out / 'import-report.csv'}"], [out],
                written=[out / "import-report.csv"])


def _series_with_a_gap(ctx: Ctx) -> Call:
    src = ctx.tmp / "src"
    _dicom_case(src)
    files = sorted(p for p in src.iterdir() if p.name != "rs.dcm")
    z = {p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]) for p in files}
    sorted(files, key=z.get)[3].unlink()
    out = ctx.tmp / "imported"
    return Call(["import-dicom", str(src), str(out)], ["unevenly spaced slices", str(out / "import-report.csv")],
                [out], written=[out / "import-report.csv"])


# --- study specs ---------------------------------------------------------------------------------------------


def _study(ctx: Ctx, **changes: object) -> Call:
    spec = {"name": "tiny", "dataset": str(ctx.shared.dataset), "validation": ["case_3"], "sizes": [1],
            "modes": ["concentrated"], "repeats": 1, "base": TINY_BASE, "arms": ["baseline"], **changes}
    path = ctx.tmp / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return Call(["study", "run", str(path), "--out", str(ctx.tmp / "S"), "--in-process"], [f"{path}: "],
                [ctx.tmp / "S"])


def _study_unknown_method(ctx: Ctx) -> Call:
    call = _study(ctx, arms=["baseline", {"name": "fast", "method": "segmnt"}])
    call.names.append("arm 'fast': unknown study arm method 'segmnt'")
    return call


def _study_unknown_model(ctx: Ctx) -> Call:
    call = _study(ctx, arms=["baseline", {"name": "big", "config": {"model": "unet9d"}}])
    call.names.append("arm 'big': unknown model 'unet9d'; known: ")
    return call


def _study_negative_batch(ctx: Ctx) -> Call:
    call = _study(ctx, base={**TINY_BASE, "batch_size": -3})
    call.names += ["arm 'baseline': batch_size must be >= 1", "got -3"]
    return call


def _study_bad_arm_name(ctx: Ctx) -> Call:
    call = _study(ctx, arms=[{"name": "../escape"}])
    call.names.append("arm name '../escape' contains '/'")
    return call


def _study_duplicate_key(ctx: Ctx) -> Call:
    call = _study(ctx)
    path = Path(call.args[2])
    path.write_text(path.read_text() + "repeats: 3\n")
    call.names.append("key 'repeats' appears twice in one mapping")
    return call


FAULTS = [
    # dataset.json and the dataset's files: refused by train (names also by validate)
    Fault("label ../../x", _label_named("../../x")),
    Fault("label /tmp/x", _hostile_tmp_label),
    Fault("label ../../x (validate)", _validate_label),
    Fault("label CON", _windows_device_label),
    Fault("case id in dataset.json", _case_id_in_dataset_json),
    Fault("case id of a file", _case_id_of_a_file),
    Fault("channel name with /", _channel_name),
    Fault("duplicate key in dataset.json", _duplicate_json_key),
    Fault("case in training and test set", _case_in_both_sets),
    Fault(".nii and .nii.gz copies", _nii_and_nii_gz),
    Fault("misnamed mask", _misnamed_mask),
    Fault("NaN voxels", _nan_voxels),
    Fault("truncated NIfTI", _truncated_nifti),
    Fault("mask that is not an image", _not_an_image),
    Fault("mask of another shape", _mask_of_another_shape),
    Fault("mask of another spacing", _mask_of_another_spacing),
    Fault("label value outside the set", _label_value_outside_the_set),
    Fault("duplicate key in --config", _duplicate_yaml_key),
    Fault("--config not UTF-8", _config_not_utf8),
    # output folders
    *(Fault(f"{command} --out {kind}", _bad_out(command, kind))
      for command in ("train", "predict", "evaluate", "pretrain") for kind in ("file", "sub", "proc")),
    # run folders
    Fault("train on a truncated last.pt", _truncated_checkpoint("train")),
    Fault("predict with a truncated best.pt", _truncated_checkpoint("predict")),
    Fault("resume with another --model and --seed", _resume_changed),
    Fault("fewer --iterations than trained", _fewer_iterations),
    Fault("disk full during a checkpoint save", _disk_full_during_a_checkpoint),
    Fault("pretrain resumed with another --seed and --loss", _pretrain_changed),
    Fault("pretrain with fewer --iterations than trained", _pretrain_fewer_iterations),
    Fault("run.json with a structure ../../x", _run_with_hostile_structure),
    # prediction and evaluation inputs
    Fault("extra _0001 channel at predict", _extra_channel),
    Fault("truncated input image at predict", _truncated_input),
    Fault("input case id CON at predict", _hostile_input_case_id),
    Fault("missing prediction at evaluate", _missing_prediction),
    Fault("truncated prediction at evaluate", _truncated_prediction),
    # DICOM import
    Fault("hostile ROI names", _hostile_roi_names),
    Fault("damaged RTSTRUCT ROI", _damaged_rtstruct),
    Fault("RTSTRUCT without ReferencedROINumber", _rtstruct_without_roi_numbers),
    Fault("series with a gap", _series_with_a_gap),
    # study specs
    Fault("study arm with an unknown method", _study_unknown_method),
    Fault("study arm with an unknown model", _study_unknown_model),
    Fault("study base batch_size -3", _study_negative_batch),
    Fault("study arm name ../escape", _study_bad_arm_name),
    Fault("study spec with a duplicate key", _study_duplicate_key),
]


# --- the check ---------------------------------------------------------------------------------------------


def _files(root: Path) -> dict[Path, tuple[int, int]]:
    """Every file below ``root`` with its size and modification time (ns)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


def _changed(before: dict[Path, tuple[int, int]], after: dict[Path, tuple[int, int]]) -> list[Path]:
    return sorted(p for p, v in after.items() if before.get(p) != v)


def _run(call: Call) -> tuple[int, str]:
    """Run the CLI with ``call.args``; returns the exit code and what it printed (stdout and stderr)."""
    if call.file_size_limit is None:
        result = runner.invoke(app, call.args)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, result.output
    limit = call.file_size_limit

    def small_files() -> None:  # writes past the limit fail (EFBIG) as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-c", "from clinseg.cli.main import app; app(prog_name='clinseg')", *call.args]
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=small_files, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_fault(fault: Fault, shared_root: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    shared = Shared(shared_root, request)
    call = fault.build(Ctx(tmp_path, shared))
    mine, common = _files(tmp_path), _files(shared.root)
    above = sorted(tmp_path.parent.iterdir())
    kept = {p: p.read_bytes() for p in call.unchanged}

    exit_code, output = _run(call)

    assert exit_code == call.exit_code, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    errors = [n for n, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == (1 if call.exit_code else 0) and output.count("error:") == len(errors), output
    if errors:  # the error line and the indented lines that detail it (a refused dataset lists its problems)
        first = errors[0]
        last = next((n for n in range(first + 1, len(lines)) if not lines[n].startswith(" ")), len(lines))
        said = " ".join(" ".join(lines[first:last]).split())
    else:
        said = " ".join(output.split())
    print(f"\n[{fault.id}] exit {exit_code}: {said}")  # shown with pytest -s: the catalogue's answers
    for name in call.names:
        assert " ".join(name.split()) in said, f"{name!r} not in {said!r}"

    outside = [p for p in _changed(mine, _files(tmp_path)) if not any(p.is_relative_to(a) for a in call.allowed)]
    assert outside == [], outside
    assert _changed(common, _files(shared.root)) == [], "the shared data changed"
    assert sorted(tmp_path.parent.iterdir()) == above
    assert [p for p in call.absent if p.exists()] == []
    assert [p for p in call.written if not p.is_file()] == []
    assert [p for p, content in kept.items() if p.read_bytes() != content] == []
    if call.then is not None:
        call.then()
