"""Receptive field of a segmentation network, analytic and empirical, in voxels along one axis.

The receptive field (RF) of an output voxel is the set of input voxels that can change its value. For our
convolutional networks with cubic kernels it is a box, and we report its edge length along the X (last) axis.
It tells how much context a network sees, so it guides the patch size (a patch much smaller than the RF
means the network is trained on mostly zero padding) and the sliding-window overlap at inference.

* :func:`receptive_field` is analytic: it runs the model once on a small dummy input, records every
  convolution, transposed convolution and pooling layer in the order they execute (forward hooks), and
  propagates the exact input interval of each position through that chain on a 1D index grid. Because it
  follows the executed chain, it is exact for chains, residual nets with identity shortcuts and U-Nets, where
  the layers in execution order are the longest path and shorter branches lie inside it. It over-counts when a
  branch itself downsamples (e.g. a strided 1³ projection shortcut); such nets should be checked with
  :func:`empirical_receptive_field`.
* :func:`empirical_receptive_field` measures it: it backpropagates from the centre output voxel of a copy of
  the network in float64 with fixed positive weights and reports the extent of the non-zero input gradient.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

from clinseg.models.registry import size_divisors

# A layer of the chain, along one axis: (transposed, kernel, stride, padding, dilation, output_padding).
_Layer = tuple[bool, int, int, int, int, int]

#: Positions whose interval lies closer than this to the grid ends are treated as touched by padding.
_MARGIN = 16


def _last(value: int | tuple[int, ...]) -> int:
    """The X-axis (last) entry of a per-axis layer setting."""
    return int(value[-1] if isinstance(value, tuple | list) else value)


def _layer_along_x(module: nn.Module) -> _Layer:
    """The footprint parameters of a conv, transposed conv or pooling layer along the X axis."""
    kernel = _last(module.kernel_size)
    dilation = _last(getattr(module, "dilation", 1))
    stride = _last(module.stride if module.stride is not None else module.kernel_size)  # pools: None = kernel
    if isinstance(module, _ConvTransposeNd):
        return (True, kernel, stride, _last(module.padding), dilation, _last(module.output_padding))
    if module.padding == "valid":
        return (False, kernel, stride, 0, dilation, 0)
    if module.padding == "same":  # stride 1; PyTorch puts the odd extra pad on the right
        return (False, kernel, 1, dilation * (kernel - 1) // 2, dilation, 0)
    return (False, kernel, stride, _last(module.padding), dilation, 0)


def _trace_layers(model: nn.Module) -> list[_Layer]:
    """The conv/transposed-conv/pool layers in execution order, along the X axis."""
    layers: list[_Layer] = []
    unsupported: list[str] = []

    def hook(module: nn.Module, _inputs: object, _output: object) -> None:
        if isinstance(module, _ConvNd | _MaxPoolNd | _AvgPoolNd):
            layers.append(_layer_along_x(module))
        else:
            unsupported.append(type(module).__name__)

    watched = (_ConvNd, _MaxPoolNd, _AvgPoolNd, nn.Upsample, nn.modules.pooling._AdaptiveAvgPoolNd,
               nn.modules.pooling._AdaptiveMaxPoolNd)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, watched)]
    parameter = next(model.parameters())
    in_channels = getattr(model, "in_channels", None)
    if not isinstance(in_channels, int):
        in_channels = next(m.in_channels for m in model.modules() if isinstance(m, _ConvNd))
    size = 2 * max(size_divisors(model)) if hasattr(model, "size_divisor") else 32
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, size, size, size, dtype=parameter.dtype, device=parameter.device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    if unsupported:
        raise ValueError(f"cannot compute the receptive field analytically through {sorted(set(unsupported))}")
    return layers


def _propagate(layers: list[_Layer], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact input interval ``[lo, hi]`` of every output position, for an input grid of ``n`` positions.

    Taps falling into the zero padding contribute nothing. Positions no input reaches get ``lo > hi``.
    """
    lo = np.arange(n, dtype=np.int64)
    hi = lo.copy()
    empty_lo, empty_hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for transposed, k, s, p, d, op in layers:
        if transposed:
            m = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            new_lo, new_hi = np.full(m, empty_lo), np.full(m, empty_hi)
            source = np.arange(n)
            for t in range(k):
                target = source * s - p + t * d
                ok = (target >= 0) & (target < m)
                np.minimum.at(new_lo, target[ok], lo[ok])
                np.maximum.at(new_hi, target[ok], hi[ok])
        else:
            m = (n + 2 * p - d * (k - 1) - 1) // s + 1
            new_lo, new_hi = np.full(m, empty_lo), np.full(m, empty_hi)
            target = np.arange(m)
            for t in range(k):
                source = target * s - p + t * d
                ok = (source >= 0) & (source < n)
                new_lo[ok] = np.minimum(new_lo[ok], lo[source[ok]])
                new_hi[ok] = np.maximum(new_hi[ok], hi[source[ok]])
        lo, hi, n = new_lo, new_hi, m
    return lo, hi


def _chain_receptive_field(layers: list[_Layer]) -> int:
    """Largest receptive field of an output position away from the borders, for a chain of layers."""
    period = int(np.prod([s for transposed, _k, s, *_ in layers if not transposed] or [1]))
    n = 64 * period
    for _ in range(12):
        lo, hi = _propagate(layers, n)
        interior = (lo > _MARGIN) & (hi < n - 1 - _MARGIN) & (lo <= hi)
        if interior.sum() >= 2 * period:
            return int((hi[interior] - lo[interior]).max() + 1)
        n *= 2
    raise ValueError(f"receptive field larger than {n} voxels")


def receptive_field(model: nn.Module) -> int:
    """Analytic receptive field of ``model`` in voxels along the X (last) axis.

    Parameters
    ----------
    model : a 3D network taking ``(B, C, Z, Y, X)``; it is run once in eval mode, without gradients, on a
        zeros input of size ``2 * model.size_divisor`` per axis (its training mode is restored).

    Returns
    -------
    The edge length of the largest receptive field of an output voxel unaffected by the border. Nets that
    down- and upsample can have smaller RFs at some positions modulo their total stride (e.g. 92 and 100
    voxels for the default ``unet3d``); the largest is the context the network can use.

    Raises
    ------
    ValueError
        When the model executes a layer whose footprint is not handled (``nn.Upsample``, adaptive pooling).

    Examples
    --------
    >>> receptive_field(nn.Sequential(nn.Conv3d(1, 1, 3, padding=1), nn.Conv3d(1, 1, 5, padding=2)))
    7
    """
    return _chain_receptive_field(_trace_layers(model))


def _probe_copy(model: nn.Module) -> nn.Module:
    """A float64, eval-mode copy in which every output provably depends on its whole receptive field.

    Normalisation layers are removed (GroupNorm/InstanceNorm pool statistics over the whole image, which is
    not part of the convolutional receptive field), max pooling becomes average pooling over the same window
    (max pooling passes gradient to one voxel only), and conv weights are set to positive constants with zero
    bias, so with a positive input every activation is positive, every ReLU passes gradient and no sums cancel.
    In-place activations are made out-of-place, since without the norm before them they would overwrite the
    residual shortcut's input.
    """
    probe = copy.deepcopy(model).double().eval()
    for parent in list(probe.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _NormBase | nn.GroupNorm | nn.LayerNorm):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, _MaxPoolNd):
                if child.dilation not in (1, (1, 1, 1)):
                    raise ValueError("dilated max pooling is not supported")
                setattr(parent, name, nn.AvgPool3d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
    with torch.no_grad():
        for module in probe.modules():
            if getattr(module, "inplace", False):  # an in-place ReLU would now act on a norm's input
                module.inplace = False
            if isinstance(module, _ConvNd):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
    return probe


def empirical_receptive_field(model: nn.Module, size: int | tuple[int, int, int]) -> int:
    """Measured receptive field of ``model`` in voxels along the X (last) axis.

    The gradient of an output voxel (channel 0) with respect to the input is non-zero exactly on that voxel's
    receptive field (with the fixed positive weights of the probe copy; see :func:`_probe_copy`). In a net
    that downsamples and upsamples, the RF size can depend on the voxel's position modulo the total stride
    (the 4-level U-Net alternates between 92 and 100 voxels), so this backpropagates from the centre voxel and
    the next ``size_divisor - 1`` voxels along X and reports the largest extent, as :func:`receptive_field`
    does.

    Parameters
    ----------
    model : a 3D network taking ``(B, C, Z, Y, X)`` with same-size output; it is not modified.
    size : input size, a cube edge or ``(Z, Y, X)``; each a multiple of ``model.size_divisor``. Only ``X`` must
        exceed the receptive field, so a thin input such as ``(4, 4, 288)`` measures a large RF cheaply.

    Returns
    -------
    Extent (max - min + 1) along X of the input voxels with non-zero gradient, largest over the positions.

    Raises
    ------
    ValueError
        When the receptive field reaches the X border of the input (make ``size`` larger).
    """
    zyx = (size, size, size) if isinstance(size, int) else tuple(size)
    probe = _probe_copy(model)
    in_channels = getattr(model, "in_channels", None)
    if not isinstance(in_channels, int):
        in_channels = next(m.in_channels for m in probe.modules() if isinstance(m, _ConvNd))
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(1, in_channels, *zyx, generator=generator, dtype=torch.float64) + 0.5).requires_grad_(True)
    out = probe(x)
    if isinstance(out, tuple | list):
        out = out[0]
    cz, cy, cx = (s // 2 for s in out.shape[2:])
    period = size_divisors(model)[2]
    largest = 0
    for shift in range(period):
        (grad,) = torch.autograd.grad(out[0, 0, cz, cy, cx + shift], x, retain_graph=shift < period - 1)
        along_x = (grad[0] != 0).any(dim=0).any(dim=0).any(dim=0).nonzero().flatten()
        first, last = int(along_x.min()), int(along_x.max())
        if first == 0 or last == zyx[2] - 1:
            raise ValueError(f"receptive field reaches the border of the X size {zyx[2]}; use a larger size")
        largest = max(largest, last - first + 1)
    return largest
