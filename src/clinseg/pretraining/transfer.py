"""Initialise a segmentation network from a restoration pretraining run (seed 002 §2.2, "SegPretrained").

Seed 002 first trains the network to restore distorted images, then "trained on the segmentation task as
described in the baseline": every layer starts from the pretrained weights except the output layer, whose
channels mean something else (restored intensities vs. class logits).

Which tensors are copied, by :func:`transfer_weights`:

* every parameter and buffer (GroupNorm/BatchNorm weights, running statistics …) whose **name and shape**
  match between ``RUN/checkpoints/best.pt`` and the model;
* except the **output head**, found generically as the *last* convolution with kernel size 1 in
  ``model.named_modules()`` order (``head`` of ``unet3d``/``resfcn3d``, ``net.head`` of ``unet2d``,
  ``net.output_block.conv.conv`` of ``dynunet``), under every name the module is registered as: its
  weights keep their fresh initialisation;
* the **input convolution** (the first convolution in ``named_modules()`` order) when the segmentation
  network has *more* input channels than the pretrained one (the interactive network of seed 002 §2.3
  stacks two click maps after the image channels): the pretrained kernels fill input channels
  ``0 .. C-1``, the extra channels keep their random initialisation;
* anything else whose shape differs, or that exists on one side only, is skipped with the reason.

The model name, its options (defaults resolved) and the intensity normalisation must match the pretraining
run, else :class:`~clinseg.errors.ConfigError`: a pretrained network is only useful on inputs prepared the
same way.

Example
-------
>>> model = create_model("unet2d", 3, 1)                                   # doctest: +SKIP
>>> report = transfer_weights(model, Path("runs/pretrain"), model_name="unet2d", model_kwargs={},
...                           normalization="none")                        # doctest: +SKIP
>>> write_text(run / "init.json", json.dumps(report.to_dict(), indent=2))  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clinseg.errors import CheckpointError, ConfigError
from clinseg.models.registry import MODELS
from clinseg.training.checkpoint import load_checkpoint

__all__ = ["TransferReport", "head_module_names", "input_conv_name", "pretrain_settings", "transfer_weights"]

_PRETRAIN_KIND = "restoration-pretraining"  # = clinseg.pretraining.run.PRETRAIN_KIND (run imports the loop)
_SEGMENTATION_KIND = "segmentation"


@dataclass
class TransferReport:
    """What :func:`transfer_weights` did.

    Attributes
    ----------
    pretrain_run : the pretraining run folder.
    checkpoint : the checkpoint the weights came from.
    transferred : tensor names copied whole.
    partial : tensor name -> what was copied (the input convolution with extra input channels).
    skipped : tensor name -> why it kept the model's initialisation.
    """

    pretrain_run: str
    checkpoint: str
    transferred: list[str] = field(default_factory=list)
    partial: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (what ``RUN/init.json`` holds), with counts first."""
        return {
            "pretrain_run": self.pretrain_run,
            "checkpoint": self.checkpoint,
            "num_transferred": len(self.transferred),
            "num_partial": len(self.partial),
            "num_skipped": len(self.skipped),
            "transferred": list(self.transferred),
            "partial": dict(self.partial),
            "skipped": dict(self.skipped),
        }


def _convs(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Non-transposed convolutions in ``named_modules()`` order."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def head_module_names(model: nn.Module) -> list[str]:
    """Every name of the output head: the last kernel-size-1 convolution in ``named_modules()`` order.

    A module registered under several names (MONAI's DynUNet aliases its blocks) is returned under all
    of them; an empty list when the network has no such convolution.
    """
    heads = [m for _, m in _convs(model) if all(k == 1 for k in m.kernel_size)]  # type: ignore[union-attr]
    if not heads:
        return []
    head = heads[-1]
    return [name for name, m in model.named_modules(remove_duplicate=False) if m is head]


def input_conv_name(model: nn.Module) -> str | None:
    """Name of the first convolution in ``named_modules()`` order (the one that sees the input channels)."""
    convs = _convs(model)
    return convs[0][0] if convs else None


def _read_info(run: Path) -> dict[str, Any]:
    """What an ``--init`` run holds: ``pretrain.json`` of a pretraining run, or the configuration of a
    segmentation run (``config.yaml``; kind ``segmentation``), e.g. an interactive run to fine-tune."""
    path = run / "pretrain.json"
    if not path.is_file():
        if (run / "config.yaml").is_file() and (run / "fingerprint.json").is_file():
            from clinseg.training.config import load_config

            cfg = load_config(run / "config.yaml")
            return {"kind": _SEGMENTATION_KIND, "model": cfg.model, "model_kwargs": cfg.model_kwargs,
                    "normalization": cfg.normalization, "patch_size": cfg.patch_size,
                    "interactive": cfg.interactive}
        raise CheckpointError(f"{run}: neither a pretraining run (no pretrain.json) nor a training run "
                              "(no config.yaml)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(info, dict) or info.get("kind") != _PRETRAIN_KIND:
        raise CheckpointError(f"{path}: not a restoration pretraining run (kind {info.get('kind')!r})")
    return info


def pretrain_settings(run: str | Path) -> dict[str, Any]:
    """``model``, ``model_kwargs``, ``normalization`` and ``patch_size`` of an ``--init`` run (and
    ``interactive`` of a segmentation run), so that ``train --init`` can adopt them."""
    info = _read_info(Path(run))
    keys = ("model", "model_kwargs", "normalization", "patch_size") + (
        ("interactive",) if info["kind"] == _SEGMENTATION_KIND else ())
    return {key: info[key] for key in keys}


def _resolved_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The builder's options with defaults filled in, JSON-normalised (tuples -> lists) for comparison."""
    try:
        bound = inspect.signature(MODELS.get(name)).bind(1, 1, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: invalid options {sorted(kwargs)}: {exc}") from exc
    bound.apply_defaults()
    options = dict(list(bound.arguments.items())[2:])  # drop in_channels, out_channels
    return json.loads(json.dumps(options, default=list))


def _check_compatible(info: dict[str, Any], path: Path, model_name: str | None,
                      model_kwargs: dict[str, Any] | None, normalization: str | None) -> None:
    if model_name is not None and model_name != info["model"]:
        raise ConfigError(f"{path}: pretrained model is {info['model']!r}, the segmentation config uses "
                          f"{model_name!r}; use the same network (or train --init adopts the pretrained one)")
    if model_kwargs is not None:
        pretrained = _resolved_kwargs(info["model"], dict(info.get("model_kwargs") or {}))
        wanted = _resolved_kwargs(info["model"], dict(model_kwargs))
        if pretrained != wanted:
            diff = sorted(k for k in set(pretrained) | set(wanted) if pretrained.get(k) != wanted.get(k))
            raise ConfigError(f"{path}: model_kwargs differ from the pretraining run's in {diff} "
                              f"(pretrained {pretrained}, segmentation {wanted})")
    if normalization is not None and normalization != info["normalization"]:
        raise ConfigError(f"{path}: pretrained with normalization {info['normalization']!r}, the segmentation "
                          f"config uses {normalization!r}; use the same")


def transfer_weights(
    model: nn.Module,
    pretrain_run: str | Path,
    *,
    model_name: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    normalization: str | None = None,
) -> TransferReport:
    """Copy the pretrained weights of ``pretrain_run/checkpoints/best.pt`` into ``model`` (in place).

    Parameters
    ----------
    model : the freshly initialised segmentation network.
    pretrain_run : a run folder written by :func:`clinseg.pretraining.run.pretrain`, or a segmentation run
        (``clinseg train``) to fine-tune: then every tensor whose name and shape match is copied, the head
        included.
    model_name, model_kwargs, normalization : the segmentation config's; each one given must match
        ``pretrain.json`` (model options compared with the builder's defaults filled in).

    Returns
    -------
    TransferReport
        Copied, partially copied and skipped tensors; the caller writes ``report.to_dict()`` to
        ``RUN/init.json``. The rules are in the module docstring.

    Raises
    ------
    CheckpointError
        Not a pretraining or training run, or a missing/corrupt/unsafe checkpoint (``weights_only`` load).
    ConfigError
        Another network, other network options or another normalisation than the pretraining run.
    """
    run = Path(pretrain_run)
    info = _read_info(run)
    _check_compatible(info, run, model_name, model_kwargs, normalization)
    checkpoint = run / "checkpoints" / "best.pt"
    pretrained = load_checkpoint(checkpoint, "cpu")["model"]
    report = TransferReport(str(run), str(checkpoint))
    # A restoration head outputs intensities: replaced. A segmentation run's head is kept when its shape fits
    # (fine-tuning, e.g. an interactive network on a person's corrections).
    heads = tuple(f"{name}." for name in head_module_names(model)) if info["kind"] == _PRETRAIN_KIND else ()
    first = input_conv_name(model)
    first_weight = f"{first}.weight" if first is not None else None
    state = model.state_dict()
    for name, tensor in state.items():
        source = pretrained.get(name)
        if heads and name.startswith(heads):
            report.skipped[name] = "output head (restoration output): keeps its initialisation"
        elif source is None:
            report.skipped[name] = "not in the pretrained network"
        elif source.shape == tensor.shape:
            state[name] = source.to(tensor.dtype)
            report.transferred.append(name)
        elif (name == first_weight and source.ndim == tensor.ndim and source.shape[0] == tensor.shape[0]
              and source.shape[2:] == tensor.shape[2:] and source.shape[1] < tensor.shape[1]):
            merged = tensor.clone()
            merged[:, : source.shape[1]] = source.to(tensor.dtype)
            state[name] = merged
            report.partial[name] = (f"input channels 0..{source.shape[1] - 1} of {tensor.shape[1]} copied; "
                                    "the extra channels keep their initialisation")
        else:
            report.skipped[name] = (f"shape {tuple(tensor.shape)} here vs {tuple(source.shape)} pretrained")
    for name in sorted(set(pretrained) - set(state)):
        report.skipped[name] = "only in the pretrained network"
    with torch.no_grad():
        model.load_state_dict(state)
    return report
