"""Read the effective parameters of lava-dl ``slayer.block.sigma_delta`` blocks (for the ONNX export).

slayer's sigma-delta neuron (``slayer.neuron.sigma_delta``, eval mode) per step::

    sigma[t] = sigma[t-1] + z[t]                     (z: the synapse output)
    act[t]   = activation(norm(sigma[t]) + bias)     (MeanOnlyBatchNorm: sigma - q(running_mean))
    delta    = act[t] - act[t-1] + residue;  y = delta where |delta| >= threshold, else 0
    residue  = delta - y;  message = floor(y * s_scale) / s_scale

with ``s_scale = 64 * scale`` (``scale`` = w_scale, 64 by default). That is the IR's SigmaDelta in
Lava's units with S = scale << 12, spike_exp = state_exp = 6 (threshold and bias on the grid
1/scale, messages 1/s_scale); netx's SDNN (S = 2**18) for the default scale. The threshold is
lava-dl's own export value ``int(threshold * scale) / scale`` (``v_th_mant``); slayer's float
forward compares with the raw (trainable) value, which differs only for a threshold off that grid.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from lava.lib.dl import slayer

from ..errors import SnncError
from . import onnx_ops as ops
from .slayer_blocks import norm_mean

_SPIKE_EXP = _STATE_EXP = 6


def _scale(n, name: str) -> int:
    """``S`` of the IR node: ``w_scale << 12`` (a power of two)."""
    w = int(n.w_scale)
    if w <= 0 or w & (w - 1) or int(n.s_scale) != w << 6:
        raise SnncError(f"block '{name}': sigma-delta scale {w} (state scale {n.s_scale}) is not a power of "
                        "two with s_scale = 64 * scale; snnc exports slayer's default layout")
    return w << (_SPIKE_EXP + _STATE_EXP)


def _check_neuron(n, name: str) -> None:
    if type(n) is not slayer.neuron.sigma_delta.Neuron:
        raise SnncError(f"block '{name}' has neuron {type(n).__module__}.{type(n).__name__}; snnc exports "
                        "slayer.neuron.sigma_delta.Neuron in sigma-delta blocks")
    if n.persistent_state:
        raise SnncError(f"block '{name}' has persistent_state=True; the exported file starts every run from "
                        "zero state: build the block with persistent_state=False")
    if n.drop is not None and getattr(n.drop, "training", False):
        raise SnncError(f"block '{name}' has dropout in training mode; call module.eval()")


def threshold(n, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """lava-dl's exported threshold ``int(th * scale) / scale`` (per channel with shared_param=False)."""
    th = n.delta.threshold.detach().cpu().numpy().astype(np.float64).ravel()
    th = np.maximum(th, 1.0 / n.delta.scale)                    # slayer's clamp()
    q = np.trunc(th * n.w_scale) / n.w_scale
    if q.size == 1:
        return np.asarray(q[0], np.float32)
    if q.size != shape[0]:
        raise SnncError(f"block '{name}': {q.size} thresholds for neurons {shape}")
    return q.astype(np.float32).reshape((shape[0],) + (1,) * (len(shape) - 1))


def _activation(n, name: str) -> int:
    """1 for ReLU, 0 for identity (Lava's SigmaDelta ``act_mode`` RELU / UNIT)."""
    act = n.activation
    if act in (F.relu, torch.relu) or isinstance(act, torch.nn.ReLU):
        return 1
    if isinstance(act, torch.nn.Identity):
        return 0
    raise SnncError(f"block '{name}': sigma-delta activation {getattr(act, '__name__', act)!r}; snnc exports "
                    "ReLU (F.relu, torch.nn.ReLU) and identity (torch.nn.Identity), as Lava's SigmaDelta has")


def _bias(n, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """``bias - q(running_mean)`` (set_bias and MeanOnlyBatchNorm), float32, per channel or scalar."""
    col = (-1,) + (1,) * (len(shape) - 1)
    bias = np.zeros((), np.float64)
    if n.norm is not None:
        bias = -norm_mean(n, name).reshape(col)
    if n.bias_is_set:
        b = n.bias.detach().cpu().numpy().astype(np.float64)
        bias = bias + (b.reshape(shape) if b.size == int(np.prod(shape)) else b.reshape(col))
    return np.asarray(bias, np.float32)


def neuron(m, name: str, shape: Tuple[int, ...], encoder: bool = False) -> SimpleNamespace:
    """``snnc.Delta`` (``encoder``) or ``snnc.SigmaDelta`` inputs and attributes of a block's neuron."""
    n = m.neuron
    _check_neuron(n, name)
    attrs = ops.sd_attributes(n.delta.cum_error, _scale(n, name), _SPIKE_EXP, _STATE_EXP)
    th = threshold(n, name, shape)
    if encoder:
        return SimpleNamespace(attributes=attrs, threshold=th, bias=None)
    attrs["relu"] = _activation(n, name)
    return SimpleNamespace(attributes=attrs, threshold=th, bias=_bias(n, name, shape))


def input_encoder(m, name: str, shape: Tuple[int, ...]) -> SimpleNamespace:
    """A sigma-delta Input block: its Delta (weight 1 and no bias only: Lava's Delta reads the
    input values directly). slayer rounds the input to its 8-bit grid (``quantize_8bit``: steps of
    2/scale in [-256, 254]/scale); the file expects inputs already on that grid."""
    if m.neuron is None:
        raise SnncError(f"block '{name}' (sigma_delta.Input) has no neuron; give it neuron_params")
    if m.bias is not None:
        raise SnncError(f"block '{name}' (sigma_delta.Input) has a bias; Lava's Delta encoder reads the input "
                        "directly: build the Input without bias")
    if m.weight is not None:
        with torch.no_grad():
            w = float(m.pre_hook_fx(m.weight).reshape(-1)[0])
        if w != 1.0:
            raise SnncError(f"block '{name}' (sigma_delta.Input) scales its input by {w}; Lava's Delta encoder "
                            "reads the input directly: scale the data instead")
    return neuron(m, name, shape, encoder=True)


def sigma_scale(m, name: str) -> int:
    """``state_scale`` of the Output block's Sigma."""
    return _scale(m.neuron, name)
