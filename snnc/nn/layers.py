"""Synapse and shape modules on SLAYER's layout: activity ``(N, C[, H, W], T)``, time last.

They are ordinary ``torch.nn`` layers (same parameters and state_dict keys) applied at every
time step (time folded into the batch). ``snnc.export`` writes them as standard ONNX ops:
``Linear`` -> ``MatMul`` (its bias becomes the next neuron's bias), ``Conv2d`` -> ``Conv`` with
time kernel 1, ``AvgPool2d`` -> a depthwise ``Conv`` with weight ``1/k^2`` (the compiler folds it
into the next synapse exactly), ``Flatten`` -> ``Reshape``, ``Delay`` -> ``snnc.Delay``, ``GradedInput`` -> ``snnc.GradedInput``
(a graded, i.e. analog, network input).

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


class GradedInput(torch.nn.Module):
    """Declares the network input graded (analog): ``x`` rounded to the grid ``2**-frac_bits``
    (half to even), time last. It must be applied to the network input and feed ``Linear``
    synapses built with ``graded_input=frac_bits``. On Loihi the values travel as graded spikes
    ``round(x * 2**frac_bits)`` (24-bit payload: ``|x| < 2**(23 - frac_bits)``)."""

    def __init__(self, frac_bits: int = 8):
        super().__init__()
        if not 0 <= int(frac_bits) <= 16:
            raise ValueError(f"frac_bits must be in 0..16, got {frac_bits}")
        self.frac_bits = int(frac_bits)

    def forward(self, x):
        k = float(2 ** self.frac_bits)
        return torch.round(x * k) / k

    def extra_repr(self):
        return f"frac_bits={self.frac_bits}"


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, grid):
        return torch.floor(torch.round(z * grid) / grid)

    @staticmethod
    def backward(ctx, g):
        return g, None


class Linear(_QuantizedWeights, torch.nn.Linear):
    """``y[..., t] = W x[..., t] (+ b)`` on ``(N, in, T)``.

    ``graded_input=k``: the synapse reads a ``GradedInput(k)``. With a ``weight_quant`` hook the
    forward then computes what Loihi computes for graded spikes: ``W x`` exactly (float64),
    floored to whole activation units ``64 / (S * input_scale)`` (Lava's Dense shifts
    ``W_int @ x_int`` right by ``k - weight_exp``: a floor), straight-through gradient."""

    def __init__(self, in_features, out_features, bias=True, weight_quant: Optional[WeightQuant] = None,
                 graded_input: Optional[int] = None):
        super().__init__(in_features, out_features, bias=bias)
        self.weight_quant = weight_quant
        self.graded_input = None if graded_input is None else int(graded_input)
        if self.graded_input is not None and bias:
            raise ValueError("a Linear reading a graded input takes no bias (bias=False)")

    def forward(self, x):
        w = self.effective_weight()
        if self.graded_input is not None and self.weight_quant is not None:
            wq = self.weight_quant
            a_unit = 64.0 / (wq.state_scale * wq.input_scale)         # one Loihi activation unit
            z = torch.einsum("oi,ni...->no...", w.double(), x.double()) / a_unit
            grid = float(2 ** (self.graded_input + max(0, -wq.weight_exp) + 2))
            return (_FloorSTE.apply(z, grid) * a_unit).to(x.dtype)
        y = torch.einsum("oi,ni...->no...", w, x)
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
