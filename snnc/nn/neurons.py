"""Spiking neuron modules: the four methods' neurons as variants of Loihi's CUBA LIF.

``LIF`` runs, per step t, on the summed synaptic input ``x[..., t]`` (time last)::

    u[t] = (1 - current_decay) * u[t-1] + input_scale * (x[t] + W_rec @ s[t-1])
    v[t] = (1 - voltage_decay) * v[t-1] + u[t]
    v[t] = 0 while the neuron is refractory (``refractory`` steps after a spike)
    s[t] = v[t] > threshold        (or >= with spike_compare=">=")
    v[t] = 0 where s (reset "zero") or v[t] - threshold ("subtract")

``quantize=True`` computes exactly Loihi's integer dynamics instead (what Lava's fixed_pt
models and Loihi 2 run): u, v are integers in units of ``1/state_scale`` of the threshold,
decays are 12-bit (``round(4096*decay)``) with round-toward-zero, the threshold is quantized to
1/64 of ``state_scale/4096``. Feed it with synapses quantized by ``weight_quant()`` and the
compiled model reproduces the PyTorch spikes bit for bit on Lava fixed_pt.
u wraps at 24 bits (``u > 2**23 -> u - 2**24``, ``u <= -2**23 -> u + 2**24``) and v saturates at
``+-(2**23 - 1)`` as on Loihi (in the forward values only: the gradient passes straight through).

Method presets (``stbp``, ``tssl``, ``hm2``) give the exact mapping of each method's neuron.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch

from .quant import WeightQuant
from .surrogates import TSSLBP, Rectangular, Surrogate, TSSLGradient, spike, tssl_spike, tsslbp_spikes


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _TruncSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.where(x >= 0, torch.floor(x), torch.ceil(x))     # trunc (torch.trunc is slow on CPU float64)

    @staticmethod
    def backward(ctx, g):
        return g


_HALF, _WRAP, _VMAX = float(1 << 23), float(1 << 24), float((1 << 23) - 1)


def _wrap_u(u: torch.Tensor) -> torch.Tensor:
    """Loihi's 24-bit signed u: wraps around (values only; straight-through gradient)."""
    if bool((u > _HALF).any()) or bool((u <= -_HALF).any()):
        w = torch.where(u > _HALF, u - _WRAP, torch.where(u <= -_HALF, u + _WRAP, u))
        return u + (w - u).detach()
    return u


def _saturate_v(v: torch.Tensor) -> torch.Tensor:
    """Loihi's 24-bit v saturates at +-(2**23 - 1) (values only; straight-through gradient)."""
    if bool((v.abs() > _VMAX).any()):
        return v + (v.clamp(-_VMAX, _VMAX) - v).detach()
    return v


class LIF(torch.nn.Module):
    """CUBA LIF neurons (see module doc). Input and output ``(N, *shape, T)``.

    ``current_decay``: 1 means no current filter (u = input, STBP). ``refractory``: steps v is
    held at 0 after a spike (HM2-BP / ST-RSBP: 2). ``recurrent``: None, ``"lateral"`` (fixed
    all-to-all inhibition of weight ``-lateral_strength``, no self-connection; needs ``size``)
    or an initial ``[C, C]`` weight (trainable); recurrent input arrives one step late.
    ``recurrent_mask``: a fixed ``[C, C]`` bool connectivity of trainable recurrent weights (a
    sparse reservoir, ``snnc.nn.reservoir``): masked-out weights are 0 in the forward pass and get
    no gradient.
    ``surrogate``: a ``snnc.nn.surrogates`` object (``TSSLBP``: TSSL-BP's own gradient, the
    ``tssl`` preset's default; ``TSSLGradient``: an older approximation of it).
    """

    def __init__(self, current_decay: float = 1.0, voltage_decay: float = 0.0,
                 threshold: float = 1.0, reset: str = "zero", refractory: int = 0,
                 spike_compare: str = ">", input_scale: float = 1.0, quantize: bool = False,
                 state_scale: int = 4096, surrogate: Optional[Surrogate] = None,
                 recurrent: Union[None, str, torch.Tensor, np.ndarray] = None, size: int = 0,
                 lateral_strength: float = 1.0, detach_reset: bool = False,
                 recurrent_mask: Union[None, torch.Tensor, np.ndarray] = None):
        super().__init__()
        if reset not in ("zero", "subtract"):
            raise ValueError(f"reset must be 'zero' or 'subtract', got {reset!r}")
        if spike_compare not in (">", ">="):
            raise ValueError(f"spike_compare must be '>' or '>=', got {spike_compare!r}")
        if quantize and state_scale % 64:
            raise ValueError("state_scale must be a multiple of 64")
        self.current_decay, self.voltage_decay = float(current_decay), float(voltage_decay)
        self.reset, self.refractory, self.spike_compare = reset, int(refractory), spike_compare
        self.input_scale, self.quantize = float(input_scale), bool(quantize)
        self.state_scale = int(state_scale) if quantize else 0
        if quantize:        # Loihi's threshold mantissa: vth * 64 in units of 1/S
            threshold = round(threshold * self.state_scale / 64) * 64 / self.state_scale
        self.threshold = float(threshold)
        self.surrogate = surrogate or Rectangular(1.0)
        self.detach_reset = detach_reset
        self.recurrent_kind = None
        if recurrent is not None:
            if isinstance(recurrent, str):
                if recurrent != "lateral" or size <= 0:
                    raise ValueError("recurrent='lateral' needs size=C")
                w = -float(lateral_strength) * (1 - torch.eye(size))
                self.register_buffer("recurrent_weight", w)
                self.recurrent_kind = "lateral"
            else:
                self.recurrent_weight = torch.nn.Parameter(torch.as_tensor(np.asarray(recurrent), dtype=torch.float32))
                self.recurrent_kind = "trainable"
        if recurrent_mask is not None:
            if self.recurrent_kind != "trainable":
                raise ValueError("recurrent_mask needs trainable recurrent weights (recurrent=[C, C])")
            mask = torch.as_tensor(np.asarray(recurrent_mask), dtype=torch.bool)
            if mask.shape != self.recurrent_weight.shape:
                raise ValueError(f"recurrent_mask {tuple(mask.shape)} != recurrent weight "
                                 f"{tuple(self.recurrent_weight.shape)}")
            self.register_buffer("recurrent_mask", mask)
        else:
            self.recurrent_mask = None
        self.counts = None      # spike count per neuron of the last forward (N, *shape), no grad

    # Loihi integer constants -------------------------------------------------------------
    @property
    def decay_u_int(self) -> int:
        return int(np.clip(round(4096 * self.current_decay), 0, 4096))

    @property
    def decay_v_int(self) -> int:
        return int(np.clip(round(4096 * self.voltage_decay), 0, 4095))

    def weight_quant(self, pool: int = 1, weight_exp: int = 0) -> WeightQuant:
        """The 8-bit Loihi weight grid for a synapse feeding this neuron (see ``quant``)."""
        if not self.quantize:
            raise ValueError("weight_quant() is for quantize=True neurons")
        return WeightQuant(self.state_scale, self.input_scale, pool, weight_exp)

    def effective_recurrent_weight(self):
        if self.recurrent_kind is None:
            return None
        w = self.recurrent_weight
        if self.recurrent_mask is not None:         # a sparse reservoir: absent synapses stay absent
            w = w * self.recurrent_mask
        return self.weight_quant()(w) if self.quantize else w

    def export_attributes(self) -> dict:
        """Attributes of the ``snnc.CubaLIF`` node this neuron exports to."""
        if self.quantize:
            cd, vd = self.decay_u_int / 4096.0, self.decay_v_int / 4096.0
        else:
            cd, vd = self.current_decay, self.voltage_decay
        return dict(current_decay=float(cd), voltage_decay=float(vd), threshold=float(self.threshold),
                    state_scale=int(self.state_scale), reset=self.reset, refractory=int(self.refractory),
                    spike_compare=self.spike_compare, graded=0)

    # forward ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[-1]
        q = self.quantize
        dtype = torch.float64 if q else x.dtype
        S = float(self.state_scale)
        shape = x.shape[:-1]
        u = torch.zeros(shape, dtype=dtype, device=x.device)
        v = torch.zeros_like(u)
        s = torch.zeros_like(u)
        ref = torch.zeros(shape, dtype=torch.int64, device=x.device) if self.refractory else None
        silent = torch.ones_like(u) if isinstance(self.surrogate, TSSLGradient) else None
        tsslbp = isinstance(self.surrogate, TSSLBP)
        if tsslbp and (self.refractory or self.recurrent_kind is not None):
            raise ValueError("the TSSLBP gradient needs a neuron without refractory period or recurrence")
        currents, v_pres, rises = [], [], []
        w_rec = self.effective_recurrent_weight()
        if w_rec is not None:
            w_rec = w_rec.to(dtype)
            if x.dim() != 3:
                raise ValueError("recurrent neurons take (N, C, T) input")
        if q:
            ku, kv = (4096 - self.decay_u_int) / 4096.0, (4096 - self.decay_v_int) / 4096.0
            th = self.threshold * S
            scale = S * self.input_scale
        else:
            ku, kv, th, scale = 1 - self.current_decay, 1 - self.voltage_decay, self.threshold, self.input_scale
        out = []
        for t in range(T):
            xt = x[..., t].to(dtype)
            if w_rec is not None:
                xt = xt + s @ w_rec.T
            if q:
                u = _wrap_u(_TruncSTE.apply(u * ku) + _RoundSTE.apply(xt * scale))
                v_pre = _saturate_v(_TruncSTE.apply(v * kv) + (u.detach() if tsslbp else u))
            else:
                u = u * ku + xt * scale
                v_pre = v * kv + (u.detach() if tsslbp else u)
            if tsslbp:      # same values; the gradient is TSSL-BP's (tsslbp_spikes below)
                xs = (v_pre - th) / S if q else v_pre - th
                s = (xs >= 0).to(dtype) if self.spike_compare == ">=" else (xs > 0).to(dtype)
                currents.append(u)
                v_pres.append(v_pre)
                rises.append(v_pre - v)
                v = v_pre * (1 - s) if self.reset == "zero" else v_pre - s * th
                out.append(s)
                continue
            if ref is not None:
                held = ref > 0
                v_pre = torch.where(held, torch.zeros_like(v_pre), v_pre)
                ref = torch.clamp(ref - 1, min=0)
            xs = (v_pre - th) / S if q else v_pre - th
            if silent is not None:
                rise = ((v_pre - v) / S) if q else (v_pre - v)
                s = tssl_spike(xs, rise, silent, self.surrogate, self.spike_compare)
                silent = silent * (1 - s.detach())
            else:
                s = spike(xs, self.surrogate, self.spike_compare)
            sr = s.detach() if self.detach_reset else s
            v = v_pre * (1 - sr) if self.reset == "zero" else v_pre - sr * th
            if ref is not None:
                ref = torch.where(s.detach() > 0, torch.full_like(ref, self.refractory), ref)
            out.append(s)
        if tsslbp:
            k = S if q else 1.0
            if q:
                tau_m, tau_s = 4096.0 / max(self.decay_v_int, 1), 4096.0 / max(self.decay_u_int, 1)
            else:
                tau_m, tau_s = 1.0 / max(self.voltage_decay, 1e-12), 1.0 / max(self.current_decay, 1e-12)
            y = tsslbp_spikes(torch.stack(currents, -1) / k, torch.stack(v_pres, -1) / k,
                              torch.stack(rises, -1) / k, torch.stack(out, -1), self.threshold,
                              tau_m, tau_s, self.surrogate).to(x.dtype)
            self.counts = y.detach().sum(-1)
            return y
        y = torch.stack(out, dim=-1).to(x.dtype)
        self.counts = y.detach().sum(-1)
        return y

    def extra_repr(self):
        return (f"current_decay={self.current_decay:g}, voltage_decay={self.voltage_decay:g}, "
                f"threshold={self.threshold:g}, reset={self.reset}, refractory={self.refractory}, "
                f"input_scale={self.input_scale:g}, quantize={self.quantize}, state_scale={self.state_scale}, "
                f"recurrent={self.recurrent_kind}, surrogate={self.surrogate!r}")


# ------------------------------------------------------------------------------ method presets
def stbp(decay: float = 0.2, threshold: float = 0.5, **kw) -> LIF:
    """STBP (Wu 2018): u = decay*u*(1-o) + W o_in + b; o = u > V_th. No current filter
    (current_decay 1), voltage_decay = 1 - decay, reset to zero, rectangular surrogate (a = 1)."""
    kw.setdefault("surrogate", Rectangular(1.0))
    return LIF(current_decay=1.0, voltage_decay=1.0 - decay, threshold=threshold, **kw)


def tssl(tau_m: float = 5.0, tau_s: float = 3.0, threshold: float = 1.0, **kw) -> LIF:
    """TSSL-BP (Zhang & Li 2020): a = (1-1/tau_s) a + s/tau_s (PSC of the input spikes),
    u = (1-1/tau_m) u + W a; spike u > 1; reset zero. As CUBA: current_decay 1/tau_s,
    voltage_decay 1/tau_m, input_scale 1/tau_s (weights W/tau_s on Loihi). Gradient: TSSL-BP's own
    (``TSSLBP``: inter-neuron spike timing + intra-neuron reset, sigmoid fallback when silent)."""
    kw.setdefault("surrogate", TSSLBP())
    return LIF(current_decay=1.0 / tau_s, voltage_decay=1.0 / tau_m, threshold=threshold,
               input_scale=1.0 / tau_s, **kw)


def hm2(tau_m: float = 64.0, tau_s: float = 8.0, threshold: float = 20.0, refractory: int = 2, **kw) -> LIF:
    """HM2-BP / ST-RSBP (Jin 2018, Zhang 2019): ep = (1-1/tau_s) ep + W s_in; v = (1-1/tau_m) v
    + ep/tau_s; spike v > V_th; v = 0 and held for 2 steps. As CUBA: current_decay 1/tau_s,
    voltage_decay 1/tau_m, input_scale 1/tau_s, refractory 2 (with a one-step ``Delay`` before
    every synapse, as in the reference code)."""
    kw.setdefault("surrogate", Rectangular(threshold / 2))
    return LIF(current_decay=1.0 / tau_s, voltage_decay=1.0 / tau_m, threshold=threshold,
               refractory=refractory, input_scale=1.0 / tau_s, **kw)
