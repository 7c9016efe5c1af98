"""``clinseg train``, ``predict``, ``evaluate`` and ``report``: the train/predict/evaluate contract."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from clinseg.cli._common import console, handle_errors

if TYPE_CHECKING:  # imported lazily at run time: the CLI starts fast
    from clinseg.inference.organs import OrganPipeline


def _int_pair(text: str, option: str) -> list[int]:
    from clinseg.errors import ConfigError

    try:
        low, high = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} takes two integers LOW,HIGH (e.g. 5,25), got {text!r}") from None
    return [low, high]


def _adopt_pretraining(cfg: object, init: Path, adopt: bool) -> set[str]:
    """Point ``cfg.init`` at the pretraining run and, when ``adopt``, take its network and input settings;
    returns the fields set."""
    from clinseg.pretraining.transfer import pretrain_settings

    settings = pretrain_settings(init)
    cfg.init = str(init.resolve())  # type: ignore[attr-defined]
    if adopt:
        for key, value in settings.items():
            setattr(cfg, key, value)
    return {"init", *(settings if adopt else ())}


@handle_errors
def train(
    datasets: list[Path] = typer.Argument(..., help="Dataset folder (clinseg or nnU-Net v2 layout); several "
                                          "make one multi-task network over the union of their classes (seed 004)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (created; an existing run is resumed)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config (TrainConfig fields, or preset: NAME)."),
    preset: str = typer.Option(None, "--preset", help="Named preset: oar-2019 (the seed study) or cpu-demo."),
    iterations: int = typer.Option(None, "--iterations", "-n", min=1, help="Optimiser steps (overrides config)."),
    time_budget: str = typer.Option(None, "--time", help="Train for a wall-clock budget (30m, 1h30m, 90s): "
                                    "the iterations are fixed from the measured speed."),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (default: auto)."),
    model: str = typer.Option(None, "--model", help="Network: resfcn3d, unet3d or dynunet."),
    seed: int = typer.Option(None, "--seed", help="Random seed."),
    val_cases: int = typer.Option(None, "--val-cases", min=0, help="Training cases held out for validation "
                                  "(default 2; 0 = none, the final weights are kept; per task when several datasets are given)."),
    method: str = typer.Option("single", "--method", help="single (one network), two-stage (localisation "
                               "network + organ network on padded crops, predicted as a cascade) or interactive "
                               "(image + foreground/background click maps in, the clicked object out); 2d: seed 001's "
                               "2D model with modality-specific subnetworks (pretrained when sequences are missing); 2d-3d, mixed "
                               "(seed 001 ch. 2-3); oar2d: seed 001's OAR model (organs merged, voxel-level unknowns, "
                               "class-centred batches) on --plane slices."),
    margin: int = typer.Option(None, "--margin", min=0, help="two-stage: context voxels around each organ (15)."),
    plane: str = typer.Option(None, "--plane", help="2d, oar2d: slices to segment, axial | coronal | sagittal "
                              "(default axial); patches are one voxel thick along the slicing axis."),
    jitter: str = typer.Option(None, "--jitter", metavar="LOW,HIGH", help="two-stage: draw the organ "
                               "network's training margin per side in [LOW, HIGH] instead of --margin."),
    fallback: Path = typer.Option(None, "--fallback", help="two-stage: single-stage run that segments organs "
                                  "the localiser misses (default: report them as not found)."),
    foreign_classes: str = typer.Option("absent", "--foreign-classes", help="several datasets: another "
                                        "task's classes in a task's images are 'absent' (learned as negative, "
                                        "seed 004) or 'unknown' (no loss; for datasets of the same anatomy "
                                        "with different label sets)."),
    init: Path = typer.Option(None, "--init", help="Initialise from a 'clinseg pretrain' run (output head "
                              "replaced) or fine-tune a trained run (e.g. an interactive run on corrections "
                              "saved by 'clinseg interact'); its network, options, normalisation and patch "
                              "shape are adopted unless --config/--preset/--model set them."),
    calibrate: bool = typer.Option(None, "--calibrate/--no-calibrate", help="After training, choose each "
                                   "class's threshold on the validation cases (best Dice; RUN/thresholds.json, "
                                   "used by predict) instead of 0.5; for sigmoid outputs."),
    force: bool = typer.Option(False, "--force", help="Resume an existing run even though options given here "
                               "differ from the ones it was trained with; the run keeps its saved configuration "
                               "(recorded in RUN/history.json)."),
    skip_validation: bool = typer.Option(False, "--skip-validation", help="Train without the checks of "
                                         "'clinseg validate' (by default errors refuse the dataset, warnings are "
                                         "logged; the result is kept in RUN/validation.json)."),
) -> None:
    """Train a segmentation network on a dataset; resumes exactly where an interrupted run stopped.

    On an existing run, options given again must match the saved ones (else an error, or --force);
    --iterations may extend a finished run, never go below what was trained."""
    from clinseg.configfile import read_mapping
    from clinseg.io.atomic import ensure_folder
    from clinseg.training.config import TrainConfig, config_from_dict, given_fields
    from clinseg.training.methods import run_method
    from clinseg.training.resume import ResumePolicy

    ensure_folder(out, "run folder")
    values = read_mapping(config) if config else ({"preset": preset} if preset else {})
    cfg = config_from_dict(values, str(config)) if values else TrainConfig()
    explicit = set(given_fields(values))  # only what was asked for is compared with a run being resumed
    if init is not None:
        explicit |= _adopt_pretraining(cfg, init, adopt=not (config or preset or model))
    for name, value in (("device", device), ("model", model), ("seed", seed), ("val_cases", val_cases),
                        ("calibrate", calibrate)):
        if value is not None:
            setattr(cfg, name, value)
            explicit.add(name)
    if time_budget is not None:
        import dataclasses

        cfg.schedule = dataclasses.replace(cfg.schedule, time=time_budget)
        cfg.validate()
        explicit.add("schedule")
    resume = ResumePolicy(explicit=frozenset(explicit), force=force)
    dataset = datasets[0]
    if len(datasets) > 1:  # one network for several tasks: train on their union (RUN/tasks)
        from clinseg.training.multitask import multitask_config, write_union

        dataset = out / "tasks"
        cfg = multitask_config(cfg, dataset, write_union(datasets, dataset, foreign_classes))
    summary = run_method(method, dataset, out, cfg, iterations, skip_validation=skip_validation, resume=resume,
                         margin=margin, plane=plane, jitter=_int_pair(jitter, "--jitter") if jitter else None,
                         fallback=str(fallback) if fallback else None)
    console.print(f"{summary}; run: [bold]{out}[/]")


@handle_errors
def predict(
    run: Path = typer.Argument(..., help="Run folder written by clinseg train."),
    input_dir: Path = typer.Argument(..., help="Folder of <case>_<channel>.nii.gz images (e.g. imagesTs)."),
    out_dir: Path = typer.Argument(..., help="Output folder: OUT/<case>/<structure>.nii.gz."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    tta: bool = typer.Option(False, "--tta/--no-tta", help="Mirroring test-time augmentation (Z and Y axes)."),
    largest_component: bool = typer.Option(None, "--largest-component/--all-components",
                                           help="Keep the largest connected component per structure."),
    clicks: int = typer.Option(None, "--clicks", min=1, help="Interactive runs: simulate K clicks per slice "
                               "(slice-wise network) or per volume from the reference; rounds 1..K are kept."),
    reference: Path = typer.Option(None, "--reference", help="--clicks: dataset holding the reference masks "
                                   "(default: the dataset INPUT_DIR belongs to)."),
    postprocess: str = typer.Option(None, "--postprocess", help="anatomy: seed 001's OAR rules (brain holes, "
                                    "left/right by barycentre, eye volume, lenses in eyes, chiasm, optic nerves "
                                    "by shortest path); none: only split merged bilateral organs into sides."),
    ensemble: list[str] = typer.Option(None, "--ensemble", help="Other runs (repeat, or comma-separated) voted "
                                       "with RUN by majority, e.g. the coronal and sagittal oar2d runs."),
    disable: list[str] = typer.Option(None, "--disable-rule", help="--postprocess anatomy: switch a rule off "
                                      "(brain_holes, sides, eyes, lenses, chiasm, optic_nerves); repeatable."),
    save_probabilities: Path = typer.Option(None, "--save-probabilities", help="Also write each structure's "
                                            "probability map to DIR/<case>/<structure>.nii.gz (for evaluate "
                                            "--operating-point)."),
    output_format: str = typer.Option("nifti", "--format", help="nifti (OUT/<case>/<structure>.nii.gz), rtstruct "
                                      "(OUT/<case>/rtstruct.dcm) or dicom-seg (OUT/<case>/seg.dcm); the DICOM "
                                      "formats need a DICOM folder as INPUT_DIR (one case per image series)."),
) -> None:
    """Segment every case of a folder with a trained run."""
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.organs import ensemble_runs, uses_organs
    from clinseg.inference.predictor import predict_folder

    organs = bool(postprocess or ensemble or disable or uses_organs(run))
    if save_probabilities is not None and (clicks or organs or output_format != "nifti"):
        from clinseg.errors import ConfigError

        raise ConfigError("--save-probabilities works with a plain prediction of NIfTI images (not with --clicks, "
                          "--postprocess, --ensemble, --disable-rule, --format or a run of merged organs)")
    organ_runs = ensemble_runs(run, ensemble) if organs and not clicks else []
    if output_format != "nifti" or _is_dicom(input_dir):
        _predict_dicom(run, input_dir, out_dir, output_format, checkpoint, device, tta, largest_component,
                       bool(clicks), organ_runs, postprocess or "none", disable or [])
        return
    if clicks is not None:
        _predict_with_clicks(run, input_dir, out_dir, clicks, reference, checkpoint, device)
        return
    if organ_runs:
        from clinseg.inference.organs import predict_organs_folder

        pipeline = _organ_pipeline(organ_runs, postprocess or "none", disable or [], checkpoint, device)
        cases = predict_organs_folder(pipeline, input_dir, out_dir)
        console.print(f"predicted {len(cases)} case(s) ({_pipeline_words(pipeline, postprocess or 'none')}) into "
                      f"[bold]{out_dir}[/]")
        return
    predictor = load_predictor(run, checkpoint, device)
    options: dict[str, object] = {"largest_component": largest_component}
    if tta:
        options["mirror_axes"] = (0, 1)  # not X: mirroring left-right would swap lateral structures
    cases = predict_folder(predictor, input_dir, out_dir, probabilities_dir=save_probabilities, **options)
    console.print(f"predicted {len(cases)} case(s) into [bold]{out_dir}[/]")


def _is_dicom(input_dir: Path) -> bool:
    from clinseg.inference.dicom_predict import is_dicom_input

    return is_dicom_input(input_dir)


def _predict_dicom(run: Path, input_dir: Path, out_dir: Path, output_format: str, checkpoint: str, device: str,
                   tta: bool, largest_component: bool | None, clicks: bool, organ_runs: list[Path],
                   postprocess: str, disable: list[str]) -> None:
    """Predict DICOM series with one run, or with seed 001's OAR pipeline over ``organ_runs`` (when given);
    the inputs are checked before any network is loaded."""
    from clinseg.errors import ConfigError
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.dicom_predict import (
        FORMATS,
        is_dicom_input,
        predict_dicom_folder,
    )

    if output_format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")
    if clicks:
        raise ConfigError("DICOM input and --format rtstruct/dicom-seg do not take --clicks (simulated clicks need "
                          "a reference dataset; use 'clinseg interact' for a person's clicks)")
    if not is_dicom_input(input_dir):
        raise ConfigError(f"--format {output_format} writes DICOM referencing the input series: INPUT_DIR must be "
                          f"a folder of DICOM files ({input_dir} is not)")
    options: dict[str, object] = {"largest_component": largest_component}
    if tta:
        options["mirror_axes"] = (0, 1)
    pipeline = _organ_pipeline(organ_runs, postprocess, disable, checkpoint, device) if organ_runs else None
    predictor = pipeline if pipeline is not None else load_predictor(run, checkpoint, device)
    cases = predict_dicom_folder(predictor, input_dir, out_dir, output_format, run_dir=run, **options)
    words = f", {_pipeline_words(pipeline, postprocess)}" if pipeline is not None else ""
    console.print(f"predicted {len(cases)} DICOM series ({output_format}{words}) into [bold]{out_dir}[/]")


def _organ_pipeline(runs: list[Path], postprocess: str, disable: list[str], checkpoint: str,
                    device: str) -> OrganPipeline:
    """Seed 001's OAR pipeline over ``runs``: their majority vote, then the anatomy rules (or only the split of
    merged organs into sides with ``postprocess == "none"``)."""
    from clinseg.errors import ConfigError
    from clinseg.inference.anatomy import AnatomySettings
    from clinseg.inference.organs import OrganPipeline

    if disable and postprocess != "anatomy":
        raise ConfigError("--disable-rule switches off rules of --postprocess anatomy")
    settings = AnatomySettings(disabled=tuple(disable)) if disable else None
    return OrganPipeline.from_runs(runs, postprocess, checkpoint, device, settings)  # type: ignore[arg-type]


def _pipeline_words(pipeline: OrganPipeline, postprocess: str) -> str:
    runs = len(pipeline.predictors)
    return (f"majority vote of {runs} runs, " if runs > 1 else "") + f"post-processing: {postprocess}"


def _predict_with_clicks(run: Path, input_dir: Path, out_dir: Path, clicks: int, reference: Path | None,
                         checkpoint: str, device: str) -> None:
    from clinseg.errors import ConfigError
    from clinseg.interactive.network import InteractiveNetwork
    from clinseg.interactive.predict import default_reference, predict_with_clicks

    reference = reference or default_reference(input_dir)
    if reference is None:
        raise ConfigError(f"--clicks simulates clicks from reference masks: give --reference DATASET "
                          f"({input_dir} is not inside a dataset folder)")
    network = InteractiveNetwork.from_run(run, checkpoint, device)
    cases = predict_with_clicks(network, input_dir, reference, out_dir, clicks)
    unit = "slice" if network.slice_axis is not None else "volume"
    console.print(f"predicted {len(cases)} case(s) with up to {clicks} simulated click(s) per {unit} into "
                  f"[bold]{out_dir}[/]")


@handle_errors
def evaluate(
    pred_dir: Path = typer.Argument(..., help="Predictions: PRED/<case>/<structure>.nii.gz."),
    ref_dataset: Path = typer.Argument(..., help="Dataset with the reference (structuresTs/labelsTs)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for metrics.csv and summary.csv."),
    split: str = typer.Option("test", "--split", help="test | train."),
    tolerance: float = typer.Option(2.0, "--tolerance", help="Surface Dice tolerance in mm."),
    clicks: int = typer.Option(None, "--clicks", min=1, help="Predictions made with 'predict --clicks K': also "
                               "evaluate rounds 1..K and write dice_vs_clicks.csv/.png."),
    regions: str = typer.Option(None, "--regions", help="Rows per region (union of labels) instead of per "
                                "structure: brats = whole {1,2,3}, core {1,3}, enhancing {3}."),
    operating_point: Path = typer.Option(None, "--operating-point", help="Probability maps of 'predict "
                                         "--save-probabilities': per structure the threshold with the best Dice "
                                         "over all cases (precision-recall sweep; operating_points.csv)."),
    confusion: bool = typer.Option(False, "--confusion", help="Multi-task predictions: the percentage of each "
                                   "scan's voxels labelled with a class of another task (confusion.csv/.png)."),
) -> None:
    """Dice, HD95, ASSD, surface Dice, sensitivity, precision and volume difference per case and structure."""
    from clinseg.evaluation.evaluate import evaluate_to_folder
    from clinseg.evaluation.summary import format_summary_table

    _, summary = evaluate_to_folder(pred_dir, ref_dataset, out, split, tolerance, regions)
    console.print(format_summary_table(summary))
    console.print(f"wrote [bold]{out / 'metrics.csv'}[/] and {out / 'summary.csv'}")
    if operating_point is not None:
        from clinseg.evaluation.operating_point import write_operating_points

        points = write_operating_points(operating_point, ref_dataset, out, split)
        for row in points.itertuples():
            console.print(f"operating point {row.structure}: threshold {row.threshold:.2f}, Dice {row.dice:.3f} "
                          f"(precision {row.precision:.3f}, recall {row.recall:.3f})")
    if confusion:
        from clinseg.evaluation.multitask import write_confusion

        table = write_confusion(pred_dir, ref_dataset, out, split)
        row = table.iloc[0]
        console.print(f"cross-task confusion: median {row['median_percent']:.6f} % of a scan's voxels, max "
                      f"{row['max_percent']:.6f} %; wrote [bold]{out / 'confusion.csv'}[/] and confusion.png")
    if clicks is not None:
        from clinseg.interactive.curves import write_dice_vs_clicks

        table = write_dice_vs_clicks(pred_dir, ref_dataset, out, clicks, split, tolerance)
        for structure, group in table.groupby("structure", sort=False):
            curve = ", ".join(f"{k}: {d:.3f}" for k, d in zip(group["clicks"], group["dice_mean"]))
            console.print(f"Dice vs clicks, {structure}: {curve}")
        console.print(f"wrote [bold]{out / 'dice_vs_clicks.csv'}[/] and {out / 'dice_vs_clicks.png'}")


@handle_errors
def report(run: Path = typer.Argument(..., help="Run folder.")) -> None:
    """(Re)generate RUN/report.html: training curves, Dice box plot, best/median/worst overlays."""
    from clinseg.evaluation.report import build_report

    console.print(f"wrote [bold]{build_report(run)}[/]")
