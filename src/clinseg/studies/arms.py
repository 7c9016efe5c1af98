"""Study arms: how one method turns a training subset into test-set predictions.

An arm method is registered by name and receives an :class:`ArmContext`; it trains whatever it needs inside
``context.run_dir`` (resuming when interrupted) and writes test predictions as ``PRED/<case>/<structure>.nii.gz``
into ``context.predictions_dir``. The study evaluates them, so every method is scored the same way. A later
method (restoration pretraining, localise-to-segment …) plugs in as one module with one registration::

    @register_arm_method("two-stage")
    def two_stage(context: ArmContext) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinseg.registry import Registry
from clinseg.training.config import TrainConfig


@dataclass(frozen=True)
class ArmContext:
    """What a method gets for one run.

    Attributes
    ----------
    dataset_dir : the study's dataset.
    test_images : folder of the test images (``imagesTs``).
    run_dir : the run folder (a normal clinseg run folder for single-network methods).
    predictions_dir : where test predictions must be written.
    config : training configuration with the subset, validation cases and seed of this run filled in.
    options : the arm's ``options`` from the study specification.
    largest_component : keep the largest component per structure (the study's setting).
    """

    dataset_dir: Path
    test_images: Path
    run_dir: Path
    predictions_dir: Path
    config: TrainConfig
    options: dict[str, Any] = field(default_factory=dict)
    largest_component: bool = True


ArmMethod = Callable[[ArmContext], None]
ARM_METHODS: Registry[ArmMethod] = Registry("study arm method")


def register_arm_method(name: str) -> Callable[[ArmMethod], ArmMethod]:
    """Decorator registering a study arm method under ``name``."""
    return ARM_METHODS.register(name)


@register_arm_method("segment")
def segment(context: ArmContext) -> None:
    """Train one network on the subset (resuming if interrupted), then segment the test images."""
    from clinseg.inference.predictor import Predictor, predict_folder
    from clinseg.training.run import train

    train(context.dataset_dir, context.run_dir, context.config)
    predictor = Predictor.from_run(context.run_dir, "best", context.config.device)
    predict_folder(predictor, context.test_images, context.predictions_dir,
                   largest_component=context.largest_component)
