"""Read-outs (host side, from output spikes ``(N, C, T)``) and the methods' losses.

Read-outs: ``spike_count`` (HM2-BP, ST-RSBP), ``spike_rate`` (STBP), ``summed_trace``
(TSSL-BP: ``sum_t a[t]`` with ``a[t] = (1-1/tau_s) a[t-1] + s[t]/tau_s``, the output PSC);
``predict(readout)`` = argmax (ties to the lowest class).
Losses: ``rate_mse`` (STBP: MSE of firing rate vs one-hot), ``count_margin_mse`` (HM2-BP /
ST-RSBP: counts vs desired/undesired with a margin), ``trace_mse`` (TSSL-BP's spike-count loss on
the summed PSC trace).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _t(x):
    return torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x


def spike_count(s):
    return _t(s).sum(-1)


def spike_rate(s):
    s = _t(s)
    return s.sum(-1) / s.shape[-1]


def summed_trace(s, tau_s: float):
    """``sum_{t<T} a[t]`` = ``sum_k s[k] (1 - (1-1/tau_s)^(T-k))`` (exact closed form)."""
    s = _t(s)
    T = s.shape[-1]
    k = torch.arange(T, dtype=torch.float64)
    w = (1 - (1 - 1 / tau_s) ** (T - k)).to(s.dtype if s.is_floating_point() else torch.float64)
    return (s.to(w.dtype) * w).sum(-1)


def predict(readout) -> np.ndarray:
    r = readout.detach().cpu().numpy() if isinstance(readout, torch.Tensor) else np.asarray(readout)
    return r.reshape(len(r), -1).argmax(axis=1).astype(np.int64)


def rate_mse(s, labels, classes: int = None):
    rate = spike_rate(s)
    y = F.one_hot(labels, classes or rate.shape[1]).to(rate.dtype)
    return F.mse_loss(rate, y)


def count_margin_mse(s, labels, desired: float, undesired: float, margin: float = 0.0):
    """HM2-BP / ST-RSBP: 1/2 sum (o - y)^2, errors within ``margin`` ignored (per sample mean)."""
    o = spike_count(s)
    y = torch.full_like(o, float(undesired))
    y[torch.arange(len(o)), labels] = float(desired)
    e = o - y
    e = torch.where(e.abs() <= margin, torch.zeros_like(e), e)
    return 0.5 * (e ** 2).sum(1).mean()


def trace_mse(s, labels, tau_s: float, desired: float, undesired: float):
    r = summed_trace(s, tau_s)
    y = torch.full_like(r, float(undesired))
    y[torch.arange(len(r)), labels] = float(desired)
    return 0.5 * ((r - y) ** 2).sum(1).mean()
