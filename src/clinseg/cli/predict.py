"""``clinseg predict RUN INPUT OUT``: segment images with a trained run (docs/predict.md).

INPUT is one image file, a folder of images (any names for a one-channel run; nnU-Net's ``<case>_<XXXX>``
or ``--channels`` for several channels) or a folder of DICOM series; ``-i``/``-o`` give INPUT and OUT as
options, as nnU-Net and TotalSegmentator do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from clinseg.cli._common import console, handle_errors

if TYPE_CHECKING:  # imported lazily at run time: the CLI starts fast
    from clinseg.inference.organs import OrganPipeline


def resolve_paths(inputs: Path | None, output: Path | None, input_opt: Path | None,
                  output_opt: Path | None) -> tuple[Path, Path]:
    """INPUT and OUT from the positional form (``RUN INPUT OUT``) and/or ``-i``/``-o``."""
    from clinseg.errors import ConfigError

    positional = [p for p in (inputs, output) if p is not None]
    wanted = 2 - (input_opt is not None) - (output_opt is not None)
    if len(positional) != wanted:
        raise ConfigError("give the input and the output once each: clinseg predict RUN INPUT OUT, or "
                          "clinseg predict RUN -i INPUT -o OUT")
    found_in = input_opt if input_opt is not None else positional.pop(0)
    found_out = output_opt if output_opt is not None else positional.pop(0)
    return found_in, found_out


@handle_errors
def predict(
    run: Path = typer.Argument(..., metavar="RUN", help="Run folder (clinseg train)."),
    inputs: Path = typer.Argument(None, metavar="INPUT", show_default=False,
                                  help="Image file, folder of images, or DICOM folder."),
    output: Path = typer.Argument(None, metavar="OUT", show_default=False, help="Output folder."),
    input_opt: Path = typer.Option(None, "--input", "-i", help="INPUT, as an option."),
    output_opt: Path = typer.Option(None, "--output", "-o", help="OUT, as an option."),
    channels: str = typer.Option(None, "--channels", metavar="ENDINGS",
                                 help="File ending of each channel: t1.nii.gz,t2.nii.gz or T1=t1.nii.gz,..."),
    output_format: str = typer.Option("nifti", "--format", help="nifti | seg-nrrd | rtstruct | dicom-seg."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best | last."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    backend: str = typer.Option("auto", "--backend",
                                help="CPU engine: auto | torch | onnxruntime | openvino."),
    tta: bool = typer.Option(False, "--tta/--no-tta", help="Mirroring test-time augmentation."),
    largest_component: bool = typer.Option(None, "--largest-component/--all-components",
                                           help="Keep each structure's largest component (default: plan)."),
    clicks: int = typer.Option(None, "--clicks", min=1, help="Interactive runs: K simulated clicks."),
    reference: Path = typer.Option(None, "--reference", help="--clicks: dataset of the reference masks."),
    postprocess: str = typer.Option(None, "--postprocess", help="OAR rules: anatomy | none."),
    ensemble: list[str] = typer.Option(None, "--ensemble", help="Other runs voted with RUN (repeatable)."),
    disable: list[str] = typer.Option(None, "--disable-rule", help="Switch an anatomy rule off (repeatable)."),
    save_probabilities: Path = typer.Option(None, "--save-probabilities", metavar="DIR",
                                            help="Also write probability maps into DIR."),
) -> None:
    """Segment images with a trained run: one file, a folder, or DICOM series.

    Writes OUT/<case>/<structure>.nii.gz. Details: docs/predict.md."""
    from clinseg.errors import ConfigError
    from clinseg.inference.backends import check_backend_name
    from clinseg.inference.organs import ensemble_runs, uses_organs
    from clinseg.inference.outputs import DICOM_FORMATS, check_format

    source, out_dir = resolve_paths(inputs, output, input_opt, output_opt)
    check_format(output_format)
    check_backend_name(backend)
    organs = bool(postprocess or ensemble or disable or uses_organs(run))
    if backend not in ("auto", "torch") and (clicks or organs):
        raise ConfigError(f"--backend {backend} works with a plain prediction of one run (not with --clicks, "
                          "--postprocess, --ensemble, --disable-rule or a run of merged organs)")
    if save_probabilities is not None and (clicks or organs or output_format in DICOM_FORMATS):
        raise ConfigError("--save-probabilities works with a plain prediction of NIfTI images (not with --clicks, "
                          "--postprocess, --ensemble, --disable-rule, a DICOM --format or a run of merged organs)")
    if channels is not None and (clicks or organs):
        raise ConfigError("--channels works with a plain prediction (not with --clicks, --postprocess, --ensemble "
                          "or a run of merged organs): name the files <case>_0000, <case>_0001 …")
    organ_runs = ensemble_runs(run, ensemble) if organs and not clicks else []
    if output_format in DICOM_FORMATS or _is_dicom(source):
        if channels is not None:
            raise ConfigError("--channels names image files; DICOM input gives one series per case")
        _predict_dicom(run, source, out_dir, output_format, checkpoint, device, tta, largest_component,
                       bool(clicks), organ_runs, postprocess or "none", disable or [], backend)
        return
    if clicks is not None:
        if output_format != "nifti":
            raise ConfigError("--clicks writes NIfTI masks per click round: leave --format at nifti")
        _predict_with_clicks(run, source, out_dir, clicks, reference, checkpoint, device)
        return
    if organ_runs:
        from clinseg.inference.organs import predict_organs_folder

        pipeline = _organ_pipeline(organ_runs, postprocess or "none", disable or [], checkpoint, device)
        cases = predict_organs_folder(pipeline, source, out_dir)
        console.print(f"predicted {len(cases)} case(s) ({_pipeline_words(pipeline, postprocess or 'none')}) into "
                      f"[bold]{out_dir}[/]")
        _viewer_files(out_dir, cases, pipeline.structures, None, output_format, run)
        return
    _predict_plain(run, source, out_dir, channels, output_format, checkpoint, device, tta, largest_component,
                   save_probabilities, backend)


def _use_backend(predictor: object, backend: str) -> None:
    """Let a single-network predictor run on ``backend``; a cascade or 2D-3D run stays on torch (an error
    when an engine is forced)."""
    from clinseg.errors import ConfigError
    from clinseg.inference.predictor import Predictor

    if isinstance(predictor, Predictor):
        predictor.backend = backend
    elif backend not in ("auto", "torch"):
        raise ConfigError(f"--backend {backend} works with single-network runs; this run runs on torch")


def _predict_plain(run: Path, source: Path, out_dir: Path, channels: str | None, output_format: str,
                   checkpoint: str, device: str, tta: bool, largest_component: bool | None,
                   save_probabilities: Path | None, backend: str = "auto") -> None:
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.inputs import parse_channels
    from clinseg.inference.predictor import label_map_values, predict_folder

    predictor = load_predictor(run, checkpoint, device)
    _use_backend(predictor, backend)
    endings = parse_channels(channels, predictor.channels) if channels is not None else None
    options: dict[str, object] = {"largest_component": largest_component}
    if tta:
        options["mirror_axes"] = (0, 1)  # not X: mirroring left-right would swap lateral structures
    cases = predict_folder(predictor, source, out_dir, probabilities_dir=save_probabilities, channels=endings,
                           **options)
    console.print(f"predicted {len(cases)} case(s) into [bold]{out_dir}[/]")
    _viewer_files(out_dir, cases, predictor.structures, label_map_values(predictor), output_format, run)


def _viewer_files(out_dir: Path, cases: list[str], structures: tuple[str, ...] | list[str],
                  label_values: tuple[int, ...] | None, output_format: str, run: Path) -> None:
    from clinseg.inference.outputs import viewer_files

    written = viewer_files(out_dir, cases, list(structures), label_values, output_format, run)
    segs = [p for p in written if p.name.endswith(".seg.nrrd")]
    tables = [p for p in written if p not in segs]
    if segs:
        console.print(f"wrote {len(segs)} Slicer segmentation(s) OUT/<case>.seg.nrrd", highlight=False)
    if tables:
        console.print(f"label-map colours: {', '.join(str(p) for p in tables)}", highlight=False)


def _is_dicom(source: Path) -> bool:
    from clinseg.inference.dicom_predict import is_dicom_input

    return is_dicom_input(source)


def _predict_dicom(run: Path, input_dir: Path, out_dir: Path, output_format: str, checkpoint: str, device: str,
                   tta: bool, largest_component: bool | None, clicks: bool, organ_runs: list[Path],
                   postprocess: str, disable: list[str], backend: str = "auto") -> None:
    """Predict DICOM series with one run, or with seed 001's OAR pipeline over ``organ_runs`` (when given);
    the inputs are checked before any network is loaded."""
    from clinseg.errors import ConfigError
    from clinseg.inference.cascade import load_predictor
    from clinseg.inference.dicom_predict import is_dicom_input, predict_dicom_folder

    if clicks:
        raise ConfigError("DICOM input and --format rtstruct/dicom-seg do not take --clicks (simulated clicks need "
                          "a reference dataset; use 'clinseg interact' for a person's clicks)")
    if not is_dicom_input(input_dir):
        raise ConfigError(f"--format {output_format} writes DICOM referencing the input series: INPUT must be "
                          f"a folder of DICOM files ({input_dir} is not)")
    options: dict[str, object] = {"largest_component": largest_component}
    if tta:
        options["mirror_axes"] = (0, 1)
    pipeline = _organ_pipeline(organ_runs, postprocess, disable, checkpoint, device) if organ_runs else None
    predictor = pipeline if pipeline is not None else load_predictor(run, checkpoint, device)
    if pipeline is None:
        _use_backend(predictor, backend)
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
