"""Surrogate gradients for the spike non-linearity ``s = H(v - threshold)``.

Each surrogate is an object with ``derivative(x)``, ``x = (v - threshold)`` in threshold units
(the neuron's float units, also when it runs integer dynamics). The forward pass is always the
exact Heaviside step (``>`` or ``>=``); only the backward pass uses the surrogate.

- ``Rectangular(width=1.0)``: STBP's h1, ``(1/a) * 1[|x| < a/2]`` (a = 1: STBP's ``lens = 0.5``).
- ``SigmoidDerivative(a=0.25)``: STBP's sigmoid / TSSL-BP's silent-neuron fallback,
  ``(1/a) * sig(x/a) * (1 - sig(x/a))``.
- ``Exponential(tau=..., scale=...)``: SLAYER's / lava-dl's PDF, ``scale/(2 tau) * exp(-|x|/tau)``.
"""
from __future__ import annotations

import torch


class Surrogate:
    name = "surrogate"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Rectangular(Surrogate):
    name = "rectangular"

    def __init__(self, width: float = 1.0):
        self.width = float(width)

    def derivative(self, x):
        return (x.abs() < self.width / 2).to(x.dtype) / self.width


class SigmoidDerivative(Surrogate):
    name = "sigmoid"

    def __init__(self, a: float = 0.25):
        self.a = float(a)

    def derivative(self, x):
        s = torch.sigmoid(x / self.a)
        return s * (1 - s) / self.a


class Exponential(Surrogate):
    name = "exponential"

    def __init__(self, tau: float = 0.25, scale: float = 1.0):
        self.tau, self.scale = float(tau), float(scale)

    def derivative(self, x):
        return self.scale / (2 * self.tau) * torch.exp(-x.abs() / self.tau)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate, ge):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype) if ge else (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.surrogate.derivative(x), None, None


def spike(x: torch.Tensor, surrogate: Surrogate, compare: str = ">") -> torch.Tensor:
    """Heaviside of ``x`` (``x > 0`` or ``x >= 0``) with the surrogate's derivative."""
    return _Spike.apply(x, surrogate, compare == ">=")


SURROGATES = {c.name: c for c in (Rectangular, SigmoidDerivative, Exponential)}


class TSSLGradient(Surrogate):
    """A TSSL-BP-style spike-timing gradient (an approximation of Zhang & Li 2020, named as such).

    TSSL-BP back-propagates through spike *timing*: a spike at t_m moves earlier by
    ``du / (du/dt)`` when the membrane rises, so ``ds/dv`` at a spike is ``1 / (rise of v at
    t_m)``; every non-spike step has no timing gradient. Neurons that have not fired (yet)
    get the sigmoid-derivative fallback (TSSL-BP's rule for silent neurons). Here:

    - at a spike step: ``1 / clamp(v[t] - v[t-1], min_rise)`` (v before reset, threshold units);
    - at a non-spike step of a neuron that has not spiked so far in the window: ``fallback(x)``;
    - else 0.

    This is not the exact TSSL-BP inter/intra-neuron decomposition (which needs the CUDA
    reference's full PSP bookkeeping); the forward dynamics are exact.
    """
    name = "tssl"

    def __init__(self, fallback: Surrogate = None, min_rise: float = 0.2):
        self.fallback = fallback or SigmoidDerivative(0.25)
        self.min_rise = float(min_rise)


class _TSSLSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rise, silent, surrogate, ge):
        s = (x >= 0).to(x.dtype) if ge else (x > 0).to(x.dtype)
        ctx.save_for_backward(x, rise, silent, s)
        ctx.surrogate = surrogate
        return s

    @staticmethod
    def backward(ctx, g):
        x, rise, silent, s = ctx.saved_tensors
        sur = ctx.surrogate
        timing = s / rise.clamp(min=sur.min_rise)
        fall = (1 - s) * silent * sur.fallback.derivative(x)
        return g * (timing + fall), None, None, None, None


def tssl_spike(x, rise, silent, surrogate: TSSLGradient, compare: str = ">"):
    """Spike with the TSSL-style gradient; ``rise`` = v[t] - v[t-1] (detached), ``silent`` = 1
    where the neuron has not spiked yet in this window."""
    return _TSSLSpike.apply(x, rise.detach(), silent.detach(), surrogate, compare == ">=")


SURROGATES["tssl"] = TSSLGradient
