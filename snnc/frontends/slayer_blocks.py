"""Read the effective parameters of lava-dl ``slayer.block.cuba`` blocks (for the ONNX export).

Everything here returns the values slayer's own CPU forward uses in eval mode: quantized
float weights (``pre_hook_fx`` after weight norm), 12-bit decays, the truncated threshold,
the MeanOnlyBatchNorm bias and floored axonal delays. Shapes exclude batch and time.
Anything snnc cannot express raises ``SnncError`` naming the block.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Optional, Tuple

import numpy as np
import torch
from torch.nn.utils.weight_norm import WeightNorm
from lava.lib.dl import slayer
from lava.lib.dl.slayer.block import base as slayer_base

from ..errors import SnncError
from . import onnx_ops as ops

_cuba = slayer.block.cuba
_sd = slayer.block.sigma_delta
SUPPORTED = ("slayer.block.cuba Input, Dense, Conv, Pool, Flatten, Recurrent and Affine; "
             "slayer.block.sigma_delta Input, Dense, Conv, Pool, Flatten and Output")


def _what(m) -> str:
    return f"{type(m).__module__}.{type(m).__name__}"


def norm_mean(n, name: str) -> np.ndarray:
    """The running mean a neuron's ``MeanOnlyBatchNorm`` subtracts (through its ``pre_hook_fx``
    quantization), float64 per channel; SnncError naming block ``name`` for another norm or one in
    training mode."""
    if type(n.norm) is not slayer.neuron.norm.MeanOnlyBatchNorm:
        raise SnncError(f"block '{name}' has neuron norm {_what(n.norm)}; snnc exports "
                        "MeanOnlyBatchNorm (as a bias) only")
    if n.norm.training:
        raise SnncError(f"block '{name}' has a batch norm in training mode; call module.eval()")
    with torch.no_grad():
        mean = n.norm.running_mean
        mean = n.norm.pre_hook_fx(mean) if n.norm.pre_hook_fx is not None else mean
    return mean.cpu().numpy().astype(np.float64)


def _slayer_class(m) -> type:
    """The nearest class of ``m`` defined by lava-dl (``m``'s own for a slayer block)."""
    return next(c for c in type(m).__mro__ if c.__module__.startswith("lava.lib.dl.slayer"))


def block_kind(m: torch.nn.Module, name: str) -> str:
    """'input' | 'dense' | 'conv' | 'pool' | 'flatten' | 'recurrent' | 'affine', the sigma-delta
    'sd_input' | 'sd_dense' | 'sd_conv' | 'sd_pool' | 'sd_output', or SnncError.

    A user's subclass of a block is that block, as long as it keeps slayer's ``forward``."""
    kinds = {_cuba.Input: "input", _cuba.Dense: "dense", _cuba.Conv: "conv", _cuba.Pool: "pool",
             _cuba.Recurrent: "recurrent", _cuba.Affine: "affine",
             _sd.Input: "sd_input", _sd.Dense: "sd_dense", _sd.Conv: "sd_conv", _sd.Pool: "sd_pool",
             _sd.Output: "sd_output"}
    kind = next((k for c, k in kinds.items() if isinstance(m, c)), None)
    if isinstance(m, slayer_base.AbstractFlatten):
        kind = "flatten"
    if kind is None:
        raise SnncError(f"block '{name}' is a {_what(m)}, which snnc cannot export; "
                        f"supported: {SUPPORTED}")
    base = _slayer_class(m)
    if type(m).forward is not base.forward:
        raise SnncError(f"block '{name}' ({type(m).__name__}, a subclass of "
                        f"{base.__module__}.{base.__name__}) overrides forward(); snnc exports "
                        "slayer's own block forward only: compute the extra step outside the block")

    if getattr(m, "count_log", False):
        raise SnncError(f"block '{name}' ({type(m).__name__}) has count_log=True; "
                        "build it with count_log=False for export")
    return kind


def effective_weight(syn: torch.nn.Module, name: str) -> np.ndarray:
    """The weight slayer's synapse forward uses: weight norm, then ``pre_hook_fx``. float32."""
    if hasattr(syn, "imag"):
        raise SnncError(f"block '{name}' has a complex synapse; snnc exports real ones only")
    w = syn.weight
    for hook in syn._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm):
            w = hook.compute_weight(syn)
    with torch.no_grad():
        if syn._pre_hook_fx is not None:
            w = syn._pre_hook_fx(w)
        return w.detach().cpu().numpy().astype(np.float32)


def _conv_out(size, k, s, pb, pe, d):
    return (size + pb + pe - d * (k - 1) - 1) // s + 1


def _conv(weight, in_shape, stride, pads, dil, group, name) -> SimpleNamespace:
    """An ONNX ``Conv`` over (N, C, H, W, T) with time kernel 1 (``pads``: [hb, wb, he, we])."""
    if len(in_shape) != 5:
        raise SnncError(f"block '{name}' expects input (N, C, H, W, T), got {tuple(in_shape)}")
    hb, wb, he, we = pads
    out = (weight.shape[0],
           _conv_out(in_shape[2], weight.shape[2], stride[0], hb, he, dil[0]),
           _conv_out(in_shape[3], weight.shape[3], stride[1], wb, we, dil[1]))
    attrs = dict(strides=[stride[0], stride[1], 1], pads=[hb, wb, 0, he, we, 0],
                 dilations=[dil[0], dil[1], 1], group=group,
                 kernel_shape=list(weight.shape[2:]))
    return SimpleNamespace(op="Conv", weight=weight, attrs=attrs, out_shape=out)


def synapse_op(m, name: str, in_shape: Tuple[int, ...]) -> SimpleNamespace:
    """The synapse of a Dense/Conv/Pool block as ``op`` ('MatMul'|'Conv'), ``weight``,
    ``attrs`` (Conv attributes) and ``out_shape`` (neuron shape, without N and T)."""
    if isinstance(m, _cuba.Input):
        return input_op(m, name, in_shape)
    syn = m.synapse
    w = effective_weight(syn, name)
    if isinstance(m, (_cuba.Dense, _cuba.Affine, _sd.Dense, _sd.Output)):
        if getattr(m, "mask", None) is not None and not syn.weight_norm_enabled:
            w = w * m.mask.cpu().numpy().astype(np.float32)  # slayer masks weight.data
        if len(in_shape) == 3 and w.shape[2:] == (1, 1, 1):
            return SimpleNamespace(op="MatMul", weight=w.reshape(w.shape[:2]), attrs={},
                                   out_shape=(w.shape[0],))
        return _conv(w, in_shape, (1, 1), (0, 0, 0, 0), (1, 1), 1, name)
    if isinstance(m, (_cuba.Conv, _sd.Conv)):
        st, pd, dl = syn.stride, syn.padding, syn.dilation
        return _conv(w, in_shape, st[:2], (pd[0], pd[1], pd[0], pd[1]), dl[:2], syn.groups, name)
    return _pool(m, w, name, in_shape)


def input_op(m, name: str, in_shape: Tuple[int, ...]) -> SimpleNamespace:
    """The Input block's scaling ``z = x * w`` (``w`` = its quantized weight, 1 without one) as
    an identity synapse: ``MatMul`` for (N, C, T), a depthwise 1x1 ``Conv`` for (N, C, H, W, T).
    slayer also quantizes x itself (``quantize_8bit``): exact for spikes and inputs on that grid."""
    if m.bias is not None:
        raise SnncError(f"block '{name}' (Input) has a bias; a Loihi bias enters v, not the "
                        "current, so snnc does not export it: build the Input without bias")
    w = 1.0
    if m.weight is not None:
        with torch.no_grad():
            w = float(m.pre_hook_fx(m.weight).reshape(-1)[0])
    c = in_shape[1]
    if len(in_shape) == 3:
        return SimpleNamespace(op="MatMul", weight=np.eye(c, dtype=np.float32) * np.float32(w),
                               attrs={}, out_shape=(c,))
    return _conv(np.full((c, 1, 1, 1, 1), w, np.float32), in_shape, (1, 1), (0, 0, 0, 0), (1, 1),
                 c, name)


def _pool(m, w, name, in_shape) -> SimpleNamespace:
    """slayer's Pool: zero-pad H, W by (size % kernel) at the end, then pool over the
    flattened C*H axis. That equals a per-channel (depthwise) conv when no window crosses a
    channel boundary: one channel, or H padding 0 and windows tiling the padded H exactly."""
    syn = m.synapse
    if len(in_shape) != 5:
        raise SnncError(f"block '{name}' (Pool) expects input (N, C, H, W, T), "
                        f"got {tuple(in_shape)}")
    C, H, W = in_shape[1:4]
    (kh, kw), (sh, sw) = syn.kernel_size[:2], syn.stride[:2]
    (ph, pw), (dh, dw) = syn.padding[:2], syn.dilation[:2]
    Hp, Wp = H + H % kh, W + W % kw
    rows = (Hp - dh * (kh - 1) - 1) // sh + 1
    if C > 1 and (ph != 0 or rows * sh != Hp):
        raise SnncError(
            f"block '{name}' (Pool kernel {kh}x{kw}, stride {sh}, padding {ph}) on height {H}: "
            "slayer pools over the flattened channel*height axis, so its windows cross channel "
            "boundaries here and it is not a per-channel pooling; use height padding 0 and a "
            "height that the stride tiles exactly")
    weight = np.tile(w, (C, 1, 1, 1, 1))
    return _conv(weight, in_shape, (sh, sw), (ph, pw, ph + Hp - H, pw + Wp - W), (dh, dw), C, name)


def recurrent_weights(m, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(W_in [out, in], W_rec [out, out])`` of a Recurrent block, as slayer uses them
    (``utils/recurrent.py`` reads ``recurrent_synapse.weight`` then its pre_hook_fx)."""
    if m.bias is not None:
        raise SnncError(f"block '{name}' (Recurrent) has a bias tensor; snnc does not export it")
    w_in = effective_weight(m.input_synapse, name)
    if w_in.shape[2:] != (1, 1, 1):
        raise SnncError(f"block '{name}' (Recurrent) must take 1-D input (N, C, T)")
    rs = m.recurrent_synapse
    with torch.no_grad():
        w_rec = rs.weight.reshape(rs.weight.shape[:2])
        if rs.pre_hook_fx is not None:
            w_rec = rs.pre_hook_fx(w_rec)
    return w_in.reshape(w_in.shape[:2]), w_rec.detach().cpu().numpy().astype(np.float32)


def neuron_params(m, name: str, shape: Tuple[int, ...]) -> SimpleNamespace:
    """CubaLIF node attributes, ``bias`` (float32, broadcastable to ``shape``) and ``shape``."""
    n = m.neuron
    if type(n) is not slayer.neuron.cuba.Neuron:
        raise SnncError(f"block '{name}' has neuron {_what(n)}; snnc exports CUBA neurons only")
    if n.graded_spike:
        raise SnncError(f"block '{name}' uses graded spikes, which snnc does not export yet")
    du, dv = n.cx_current_decay, n.cx_voltage_decay
    decays = None
    if np.ndim(du) or np.ndim(dv):            # shared_param=False: one decay per channel
        col = (-1,) + (1,) * (len(shape) - 1)
        decays = tuple((np.broadcast_to(np.asarray(d, np.int64), (shape[0],)) / 4096.0)
                       .astype(np.float32).reshape(col) for d in (du, dv))
        du = dv = 0
    if n.drop is not None and getattr(n.drop, "training", False):
        raise SnncError(f"block '{name}' has dropout in training mode; call module.eval()")
    bias = np.zeros((), np.float32)
    if n.norm is not None:
        bias = -norm_mean(n, name).astype(np.float32)
        bias = bias.reshape(bias.shape + (1,) * (len(shape) - 1))
    attrs = ops.cuba_attributes(int(du) / 4096.0, int(dv) / 4096.0, n.threshold, n.s_scale)
    if decays is not None:
        attrs = {k: v for k, v in attrs.items() if k not in ("current_decay", "voltage_decay")}
    return SimpleNamespace(attributes=attrs, bias=bias, shape=tuple(shape), decays=decays)


def affine_readout(m, name: str) -> dict:
    """``snnc.CubaLI`` attributes of an Affine block's read-out: with ``dynamics=True`` slayer's
    CUBA voltage without spikes or reset (integer dynamics, its decays and scale); with
    ``dynamics=False`` the synaptic current itself (decays 1: v = u = x every step; Loihi's
    12-bit voltage decay stops at 4095/4096, so fixed point keeps |v|/4096 of the last step)."""
    n = m.neuron
    if type(n) is not slayer.neuron.cuba.Neuron:
        raise SnncError(f"block '{name}' has neuron {_what(n)}; snnc exports CUBA neurons only")
    if n.norm is not None:
        raise SnncError(f"block '{name}' (Affine) has a neuron norm; snnc exports Affine without norm")
    if not m.dynamics:
        return ops.li_attributes(1.0, 1.0, n.s_scale)
    du, dv = n.cx_current_decay, n.cx_voltage_decay
    if np.ndim(du) or np.ndim(dv):
        raise SnncError(f"block '{name}' has per-channel decays (shared_param=False); "
                        "snnc exports shared decays only")
    return ops.li_attributes(int(du) / 4096.0, int(dv) / 4096.0, n.s_scale)


def delay_steps(m, name: str, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """int64 steps of the block's output delay: 1 for ``delay_shift`` plus the floored axonal
    delay (per neuron, or per channel broadcast over H, W). None when there is no delay."""
    total = 1 if getattr(m, "delay_shift", False) else 0
    d = getattr(m, "delay", None)
    if d is None:
        return np.array(total, np.int64) if total else None
    if not d.init:
        raise SnncError(f"block '{name}' has an axonal delay that is not initialised yet "
                        "(lava-dl sets it randomly on the first forward); train or set it first")
    if d.sampling_time != 1:
        raise SnncError(f"block '{name}': axonal delay with sampling_time {d.sampling_time}; "
                        "snnc exports sampling_time 1 only")
    with torch.no_grad():
        lo = d.delay.clamp(0) if d.max_delay is None else d.delay.clamp(0, d.max_delay)
        steps = torch.floor(lo).cpu().numpy().astype(np.int64)
    if steps.size == int(np.prod(shape)):
        steps = steps.reshape(shape)
    elif steps.size == shape[0]:
        steps = steps.reshape((shape[0],) + (1,) * (len(shape) - 1))
    else:
        raise SnncError(f"block '{name}': {steps.size} axonal delays for neurons {shape}")
    steps = steps + total
    return steps if steps.any() else None
