"""Synapse and shape modules on SLAYER's layout: activity ``(N, C[, H, W], T)``, time last.

They are ordinary ``torch.nn`` layers (same parameters and state_dict keys) applied at every
time step (time folded into the batch). ``snnc.export`` writes them as standard ONNX ops:
``Linear`` -> ``MatMul`` (its bias becomes the next neuron's bias), ``Conv2d`` -> ``Conv`` with
time kernel 1, ``AvgPool2d`` -> a depthwise ``Conv`` with weight ``1/k^2`` (the compiler folds it
into the next synapse exactly), ``Flatten`` -> ``Reshape``, ``Delay`` -> ``snnc.Delay``.

``weight_quant``: an optional ``snnc.nn.WeightQuant`` hook (8-bit Loihi grid, straight-through)
applied to the weight (and bias) in every forward pass, as SLAYER's ``pre_hook_fx``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .quant import WeightQuant


def _fold(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W, T) -> (N*T, C, H, W)."""
    n, t = x.shape[0], x.shape[-1]
    return x.movedim(-1, 1).reshape((n * t,) + tuple(x.shape[1:-1]))


def _unfold(y: torch.Tensor, n: int, t: int) -> torch.Tensor:
    return y.reshape((n, t) + tuple(y.shape[1:])).movedim(1, -1)


class _QuantizedWeights:
    """The weight and bias a synapse uses: through its ``weight_quant`` hook when it has one."""

    def effective_weight(self):
        return self.weight_quant(self.weight) if self.weight_quant else self.weight

    def effective_bias(self):
        if self.bias is None:
            return None
        return self.weight_quant.bias(self.bias) if self.weight_quant else self.bias


class Linear(_QuantizedWeights, torch.nn.Linear):
    """``y[..., t] = W x[..., t] (+ b)`` on ``(N, in, T)``."""

    def __init__(self, in_features, out_features, bias=True, weight_quant: Optional[WeightQuant] = None):
        super().__init__(in_features, out_features, bias=bias)
        self.weight_quant = weight_quant

    def forward(self, x):
        y = torch.einsum("oi,ni...->no...", self.effective_weight(), x)
        b = self.effective_bias()
        return y if b is None else y + b.reshape((1, -1) + (1,) * (y.dim() - 2))


class Conv2d(_QuantizedWeights, torch.nn.Conv2d):
    """Per-step 2-D convolution on ``(N, C, H, W, T)`` (zero padding only)."""

    def __init__(self, *args, weight_quant: Optional[WeightQuant] = None, **kw):
        super().__init__(*args, **kw)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("snnc.nn.Conv2d supports numeric zero padding only")
        self.weight_quant = weight_quant

    def forward(self, x):
        n, t = x.shape[0], x.shape[-1]
        y = F.conv2d(_fold(x), self.effective_weight(), self.effective_bias(), self.stride,
                     self.padding, self.dilation, self.groups)
        return _unfold(y, n, t)


class AvgPool2d(torch.nn.AvgPool2d):
    """Per-step average pooling on ``(N, C, H, W, T)`` (STBP pools spikes this way)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding, ceil_mode=False, count_include_pad=True)

    def forward(self, x):
        n, t = x.shape[0], x.shape[-1]
        return _unfold(super().forward(_fold(x)), n, t)


class Flatten(torch.nn.Module):
    """``(N, C, H, W, T) -> (N, C*H*W, T)`` (C order)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1, x.shape[-1])


class Delay(torch.nn.Module):
    """``y[..., t] = x[..., t - steps]`` (zeros before the start): the one-step synaptic delay
    of HM2-BP / ST-RSBP (and of Lava's synapses)."""

    def __init__(self, steps: int = 1):
        super().__init__()
        self.steps = int(steps)

    def forward(self, x):
        if self.steps == 0:
            return x
        pad = torch.zeros(x.shape[:-1] + (self.steps,), dtype=x.dtype, device=x.device)
        return torch.cat([pad, x[..., :x.shape[-1] - self.steps]], dim=-1)
