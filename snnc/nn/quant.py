"""Loihi 8-bit weight quantization hooks (quantization-aware training, straight-through).

A synapse feeding a neuron with ``state_scale`` S and ``input_scale`` c delivers, per input
spike, ``w_int * 2**weight_exp`` Loihi a_in units, i.e. ``w_int * 2**weight_exp * 64 / S`` in the
neuron's threshold units. Mixed-sign mantissas are even values in [-256, 254] (Lava), so the
float weight ``W`` (as the PyTorch module holds it, before ``c`` and before a folded average
pool of ``pool`` inputs) lives on the grid

    W = k * 2 * unit,  k in [-128, 127],  unit = 64 * pool * 2**weight_exp / (S * c).

Weights on that grid compile to Loihi without rounding (the compiler's quantization report then
shows nothing rounded); ``snnc.nn.LIF.weight_quant()`` builds the hook for a neuron.
Bias (only for neurons without a current filter) is quantized so that ``c * b`` is a multiple of
``1/S`` with a 13-bit mantissa (exponent 0).
"""
from __future__ import annotations

import torch


class _STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, step, lo, hi):
        return torch.clamp(torch.round(w / step), lo, hi) * step

    @staticmethod
    def backward(ctx, g):
        return g, None, None, None


class WeightQuant:
    """Round weights to ``k * step`` with ``k`` in ``[lo, hi]`` (straight-through gradient)."""

    def __init__(self, state_scale: int = 4096, input_scale: float = 1.0, pool: int = 1,
                 weight_exp: int = 0):
        self.state_scale, self.input_scale = int(state_scale), float(input_scale)
        self.pool, self.weight_exp = int(pool), int(weight_exp)
        self.unit = 64.0 * self.pool * (2.0 ** self.weight_exp) / (self.state_scale * self.input_scale)
        self.step, self.lo, self.hi = 2 * self.unit, -128, 127

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return _STE.apply(w, self.step, self.lo, self.hi)

    def bias(self, b: torch.Tensor) -> torch.Tensor:
        return _STE.apply(b, 1.0 / (self.state_scale * self.input_scale), -4095, 4095)

    @property
    def range(self):
        return (self.lo * self.step, self.hi * self.step)

    def __repr__(self):
        return (f"WeightQuant(state_scale={self.state_scale}, input_scale={self.input_scale:g}, "
                f"pool={self.pool}, weight_exp={self.weight_exp}: step {self.step:g})")
