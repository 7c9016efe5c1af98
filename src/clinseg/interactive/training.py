"""Interactive training (seed 002 §2.3): batches with simulated clicks, and validation with one click.

:class:`ClickSource` wraps any patch source. For each patch it picks one delineated structure as "the
object", draws the number of interactions ``t`` in 1..5, with probability ``background_rate`` turns the
target into all-background (background clicks only, first on the object itself), gives the first click at
the object's innermost point, and then — "the model works in prediction mode at first" — runs the network
on the batch ``t - 1`` times, adding after each pass a click on the largest error of that sample's current
prediction. The batch it returns holds the image plus the two click maps, the one-channel target and an
all-true annotation mask, so the training loop, the loss and checkpointing are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from clinseg.data.dataset import DatasetSpec
from clinseg.data.loading import CaseData
from clinseg.data.samplers import PatchBatch
from clinseg.interactive.clicks import num_interactions
from clinseg.interactive.guidance import (
    ClickSettings,
    Guidance,
    first_round,
    next_round,
    slice_axis_of,
)
from clinseg.interactive.network import InteractiveNetwork, simulate_session
from clinseg.training.config import TrainConfig
from clinseg.training.device import autocast
from clinseg.training.loop import Validator
from clinseg.training.sampling import PatchSource
from clinseg.training.validation import dice

#: ``(B, C + 2, *P)`` inputs -> ``(B, *P)`` boolean predictions of the current network.
BatchPredictor = Callable[[np.ndarray], np.ndarray]


class ClickSource:
    """A patch source whose batches carry simulated guidance clicks (see the module docstring).

    Parameters
    ----------
    base : the underlying source (class-aware or organ-crop patches).
    settings : click settings.
    slice_axis : the slicing axis of a slice-wise network (clicks per 2-D slice), None for 3-D.
    predict : the current network in prediction mode (set after the network is built; without it only the
        first click is given).
    """

    def __init__(self, base: PatchSource, settings: ClickSettings, slice_axis: int | None,
                 predict: BatchPredictor | None = None) -> None:
        self.base = base
        self.settings = settings
        self.slice_axis = slice_axis
        self.predict = predict

    @property
    def rng(self) -> np.random.Generator:
        """The base source's generator: one state, saved in checkpoints, drives patches and clicks."""
        return self.base.rng

    def batch(self, batch_size: int) -> PatchBatch:
        batch = self.base.batch(batch_size)
        rng, settings = self.rng, self.settings
        targets, guides, budgets = [], [], []
        for i in range(batch.image.shape[0]):
            delineated = np.flatnonzero(batch.annotated[i])
            target = batch.target[i, rng.choice(delineated)] != 0 if delineated.size else \
                np.zeros(batch.target.shape[2:], bool)
            budgets.append(num_interactions(rng, settings.max_interactions))
            if rng.random() < settings.background_rate:
                guidance = Guidance()
                next_round(guidance, np.zeros_like(target), target, self.slice_axis, min_size=settings.min_size)
                target = np.zeros_like(target)
            else:
                guidance = first_round(target, self.slice_axis)
            targets.append(target)
            guides.append(guidance)
        image = self._inputs(batch.image, guides)
        for interaction in range(2, max(budgets) + 1):
            if self.predict is None:
                break
            active = [i for i, b in enumerate(budgets) if b >= interaction]
            predictions = self.predict(image[active])
            for row, i in enumerate(active):
                if next_round(guides[i], targets[i], predictions[row], self.slice_axis,
                              min_size=settings.min_size):
                    image[i, -2:] = guides[i].maps(targets[i].shape, settings.sigma, self.slice_axis)
        target = np.stack(targets)[:, None].astype(np.uint8)
        return PatchBatch(image, target, np.ones((len(targets), 1), bool))

    def _inputs(self, image: np.ndarray, guides: Sequence[Guidance]) -> np.ndarray:
        shape = image.shape[2:]
        maps = np.stack([g.maps(shape, self.settings.sigma, self.slice_axis) for g in guides])
        return np.concatenate([image, maps], axis=1).astype(np.float32, copy=False)


def batch_predictor(model: torch.nn.Module, device: torch.device, amp: torch.dtype | None,
                    threshold: float = 0.5) -> BatchPredictor:
    """The network in prediction mode (eval, no gradients) as a function of a numpy batch."""
    logit = float(np.log(threshold / (1 - threshold)))

    def predict(inputs: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), autocast(device, amp):
                logits = model(torch.from_numpy(np.ascontiguousarray(inputs)).to(device))
        finally:
            model.train(was_training)
        return (logits[:, 0].float() >= logit).cpu().numpy()

    return predict


def interactive_validation_scores(network_segment: Callable[[np.ndarray, Guidance], np.ndarray],
                                  cases: Sequence[CaseData], structures: Sequence[str], settings: ClickSettings,
                                  slice_axis: int | None) -> dict[str, float]:
    """Mean Dice over (case, delineated structure) with ``settings.eval_clicks`` simulated clicks per slice
    (slice-wise) or per volume, and per structure (``dice/<name>``), like :func:`validation_scores`."""
    per_structure: dict[str, list[float]] = {s: [] for s in structures}
    for case in cases:
        for n, name in enumerate(structures):
            if not case.annotated[n]:
                continue
            target = case.target[n] != 0
            rounds = simulate_session(lambda g, c=case: network_segment(c.image, g), target,
                                      settings.eval_clicks, slice_axis, min_size=settings.min_size)
            per_structure[name].append(dice(rounds[-1][0] > 0, target))
    scores = {f"dice/{s}": float(np.mean(v)) for s, v in per_structure.items() if v}
    scores["dice"] = float(np.mean(list(scores.values()))) if scores else float("nan")
    return scores


def interactive_parts(model: torch.nn.Module, cfg: TrainConfig, source: PatchSource, val_cases: Sequence[CaseData],
                      spec: DatasetSpec, device: torch.device,
                      amp: torch.dtype | None) -> tuple[ClickSource, Validator | None]:
    """The click-guided patch source and the one-click validator of an interactive run (``cfg.interactive``)."""
    settings = ClickSettings.from_dict(cfg.interactive)
    axis = slice_axis_of(cfg.patch_size)
    clicked = ClickSource(source, settings, axis, batch_predictor(model, device, amp, cfg.threshold))
    if not val_cases:
        return clicked, None
    network = InteractiveNetwork(model, cfg, spec.structures, spec.channels, device)

    def validator(m: torch.nn.Module) -> dict[str, float]:
        return interactive_validation_scores(lambda image, g: network.segment(image, g.fg, g.bg), val_cases,
                                             spec.structures, settings, axis)

    return clicked, validator
