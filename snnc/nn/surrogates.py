"""Surrogate gradients for the spike non-linearity ``s = H(v - threshold)``.

Each surrogate is an object with ``derivative(x)``, ``x = (v - threshold)`` in threshold units
(the neuron's float units, also when it runs integer dynamics). The forward pass is always the
exact Heaviside step (``>`` or ``>=``); only the backward pass uses the surrogate.

- ``Rectangular(width=1.0)``: STBP's h1, ``(1/a) * 1[|x| < a/2]`` (a = 1: STBP's ``lens = 0.5``).
- ``SigmoidDerivative(a=0.25)``: STBP's sigmoid / TSSL-BP's silent-neuron fallback,
  ``(1/a) * sig(x/a) * (1 - sig(x/a))``.
- ``Exponential(tau=..., scale=...)``: SLAYER's / lava-dl's PDF, ``scale/(2 tau) * exp(-|x|/tau)``.
- ``TSSLBP()``: TSSL-BP's own gradient (inter-neuron spike timing + intra-neuron reset, sigmoid
  fallback for silent neurons), a sequence-level backward used by ``LIF`` (the ``tssl`` default).
- ``TSSLGradient()``: an older, simpler spike-timing approximation of it.
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


def by_name(name: str, a: float) -> Surrogate:
    """``"rectangular"`` -> ``Rectangular(a)``, ``"sigmoid"`` -> ``SigmoidDerivative(a)`` (for
    command lines and configs)."""
    if name == "rectangular":
        return Rectangular(a)
    if name == "sigmoid":
        return SigmoidDerivative(a)
    raise ValueError(f"surrogate must be 'rectangular' or 'sigmoid', not {name!r}")


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

    This is not the exact TSSL-BP inter/intra-neuron decomposition: that is ``TSSLBP`` (the
    ``tssl`` preset's default); the forward dynamics are the same.
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


class TSSLBP(Surrogate):
    """TSSL-BP's own gradient (Zhang & Li 2020), a port of the reference backward
    (stonezwr/TSSL-BP ``functions/tsslbp.py``; see docs/methods.md). Not a surrogate of ``ds/dv``:
    ``LIF`` with this object runs its forward unchanged and hands the whole sequence to
    ``tsslbp_spikes``, whose backward gives ``dL/dI[t]`` for the neuron's synaptic input
    ``I[t]`` (= ``sum_j w_ij a_j[t]``, the CUBA current u) from ``g[t] = dL/ds[t]``.
    With the PSP a = filter(s), ``g[t] = sum_k kappa[k] dL/da[t+k]``, ``kappa[k] = (1-1/tau_s)^k/tau_s``:
    exactly the PSP-kernel-weighted future error of the reference. Per step, backwards in time:

    - inter-neuron (spike timing), at a spike: ``-clamp(-1/du[t], -8, 0) * g[t]`` with
      ``du[t] = v[t] - v[t-1]`` (membrane rise before the reset);
    - intra-neuron (through the reset), the ``theta`` recursion: at a spike
      ``+ theta * v[t] * (-1/tau_m) * clamp(-1/du[t], -8, 0)``, then ``theta`` = that gradient;
      between spikes the gradient is ``theta * (1-1/tau_m)`` and ``theta`` decays by (1-1/tau_m);
    - silent neurons (post PSP ``a[t] < 1/(4 tau_s)``): ``g[t] * f'(v[t])`` with the sigmoid
      derivative ``f'(v) = e^{(th-v)/a} / (a (1+e^{(th-v)/a})^2)``, a = ``fallback_a`` (0.2),
      exponent clamped to [-8, 8].

    Needs a neuron without recurrence or refractory period (TSSL-BP has neither).
    """
    name = "tsslbp"

    def __init__(self, fallback_a: float = 0.2, clamp: float = 8.0):
        self.fallback_a, self.clamp = float(fallback_a), float(clamp)


class _TSSLBPFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current, v_pre, rise, s, threshold, tau_m, tau_s, sur):
        ctx.save_for_backward(v_pre, rise, s)
        ctx.threshold, ctx.tau_m, ctx.tau_s, ctx.sur = threshold, tau_m, tau_s, sur
        return s.clone()

    @staticmethod
    def backward(ctx, g):
        v, du, s = ctx.saved_tensors
        th, theta_m, tau_s, sur = ctx.threshold, 1.0 / ctx.tau_m, ctx.tau_s, ctx.sur
        g = g.to(v.dtype)
        T = s.shape[-1]
        grad = torch.zeros_like(v)
        theta = torch.zeros_like(v[..., 0])
        syn = torch.zeros_like(theta)
        syns = []
        for t in range(T):                      # post PSP a[t] (the silent-neuron test)
            syn = syn + (s[..., t] - syn) / tau_s
            syns.append(syn)
        c = sur.clamp
        for t in range(T - 1, -1, -1):
            out = s[..., t]
            d = du[..., t]
            pu = torch.where(out > 0, torch.clamp(-1 / torch.where(d != 0, d, torch.full_like(d, 1e-30)), -c, 0),
                             torch.zeros_like(d))
            gt = -pu * g[..., t]                                        # inter-neuron
            if t != T - 1:                                              # intra-neuron (reset)
                gt = gt + theta * v[..., t] * (-theta_m) * pu + theta * (1 - theta_m) * (1 - out)
            theta = gt * out + theta * (1 - out) * (1 - theta_m)
            a = sur.fallback_a
            f = torch.exp(torch.clamp((th - v[..., t]) / a, -c, c))
            f = f / ((1 + f) * (1 + f) * a)
            grad[..., t] = torch.where(syns[t] < 1 / (4 * tau_s), g[..., t] * f, gt)
        return grad, None, None, None, None, None, None, None


def tsslbp_spikes(current, v_pre, rise, s, threshold, tau_m, tau_s, surrogate: TSSLBP):
    """Return ``s`` (N, ..., T) unchanged; backward: TSSL-BP's gradient w.r.t. ``current``
    (N, ..., T). ``v_pre`` (membrane before reset), ``rise`` (v_pre[t] - v[t-1]) and ``threshold``
    in threshold units; ``tau_m``, ``tau_s``: the neuron's time constants."""
    return _TSSLBPFn.apply(current, v_pre.detach(), rise.detach(), s.detach(), float(threshold),
                           float(tau_m), float(tau_s), surrogate)


SURROGATES["tsslbp"] = TSSLBP
