"""Study arms of seed 003's localise-to-segment comparison: ``two-stage`` (a localisation network on the
low-resolution grid, then an organ network on crops around what it found) and ``gt-localised`` (the organ
network on crops around the *reference* organs: the ceiling of localisation).

Options of both: ``margin`` (context voxels per side), ``jitter`` (``[low, high]`` margin range of the organ
network's training crops), ``lowres`` (grid divisors ``(Z, Y, X)``); ``gt-localised`` also reads
``organ_from: ARM`` (a two-stage arm listed before it whose organ network it reuses when that run finished).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clinseg.errors import ConfigError
from clinseg.studies._options import earlier_arms
from clinseg.studies.arms import (
    ArmContext,
    ArmDraft,
    _CaseTimer,
    _check_options,
    register_arm_method,
    write_measures,
)

if TYPE_CHECKING:
    from clinseg.training.two_stage import TwoStageOptions


#: The options of the localise-to-segment arms (``organ_from``: only ``gt-localised`` reads it).
_TWO_STAGE_OPTIONS = {"margin", "jitter", "lowres", "organ_from"}


def _two_stage_options(options: dict[str, Any]) -> TwoStageOptions:
    from clinseg.training.two_stage import TwoStageOptions

    return TwoStageOptions(**{k: v for k, v in options.items() if k in {"margin", "jitter", "lowres"}})


def _check_two_stage(draft: ArmDraft) -> None:
    options = _two_stage_options(draft.options)
    if not isinstance(options.margin, int) or options.margin < 0:
        raise ConfigError(f"margin must be >= 0, got {options.margin!r}")
    jitter = options.jitter
    if jitter is not None and (not isinstance(jitter, list) or len(jitter) != 2
                               or not 0 <= jitter[0] <= jitter[1]):
        raise ConfigError(f"jitter must be [low, high] with 0 <= low <= high, got {jitter!r}")
    lowres = list(options.lowres)
    if len(lowres) != 3 or any(not isinstance(f, (int, float)) or f <= 0 for f in lowres):
        raise ConfigError(f"lowres must be three grid divisors > 0 (Z, Y, X), got {options.lowres!r}")
    if "organ_from" in draft.options:
        earlier_arms(draft.options, "organ_from", draft.name, draft.earlier, one=True)


@register_arm_method("two-stage", options=_TWO_STAGE_OPTIONS, check=_check_two_stage)
def two_stage(context: ArmContext) -> None:
    """Seed 003's cascade: localisation network on the low-resolution grid + organ network on crops."""
    from clinseg.inference.cascade import CascadePredictor
    from clinseg.inference.predictor import predict_folder
    from clinseg.training.two_stage import train_two_stage

    _check_options(context, "two-stage")
    train_two_stage(context.dataset_dir, context.run_dir, context.config, _two_stage_options(context.options),
                    skip_validation=context.skip_validation)
    predictor = CascadePredictor.from_run(context.run_dir, "best", context.config.device)
    timer = _CaseTimer(predictor)
    predict_folder(predictor, context.test_images, context.predictions_dir,
                   largest_component=context.largest_component, on_case=timer)
    write_measures(context, {"localiser": context.run_dir / "localiser", "organ": context.run_dir / "organ"}, timer)


@register_arm_method("gt-localised", options=_TWO_STAGE_OPTIONS, check=_check_two_stage)
def gt_localised(context: ArmContext) -> None:
    """The organ network on crops around the *reference* organs: the ceiling of localisation (seed 003).

    Option ``organ_from: ARM`` reuses the organ network of that (two-stage) arm's run on the same subset
    when it is finished, instead of training an identical one.
    """
    from clinseg.data.crop import bounding_box
    from clinseg.data.dataset import load_dataset
    from clinseg.data.loading import load_targets
    from clinseg.inference.cascade import CascadePredictor
    from clinseg.inference.predictor import Predictor, predict_folder
    from clinseg.io.image import read_geometry
    from clinseg.training.two_stage import train_two_stage

    _check_options(context, "gt-localised")
    organ_dir = context.run_dir / "organ"
    source = context.options.get("organ_from")
    shared = context.run_dir.parent.parent / str(source) / context.run_dir.name / "organ" if source else None
    if shared is not None and (shared / "checkpoints" / "best.pt").is_file() and \
            (shared.parent / "done.json").is_file():
        organ_dir = shared
    else:
        train_two_stage(context.dataset_dir, context.run_dir, context.config, _two_stage_options(context.options),
                        stages=("organ",), skip_validation=context.skip_validation)
    organ = Predictor.from_run(organ_dir, "best", context.config.device)
    predictor = CascadePredictor(None, organ, _two_stage_options(context.options).margin)
    dataset = load_dataset(context.dataset_dir)

    def reference_boxes(case: str) -> dict[str, Any]:
        record = dataset.case(case)
        target, annotated = load_targets(record, dataset.spec, read_geometry(record.images[0]))
        return {"boxes": {n: bounding_box(target[n]) if annotated[n] else None for n in range(len(target))}}

    timer = _CaseTimer(predictor)
    predict_folder(predictor, context.test_images, context.predictions_dir, case_options=reference_boxes,
                   largest_component=context.largest_component, on_case=timer)
    write_measures(context, {"organ": organ_dir}, timer)
