"""Faster, bit-identical CPU process models for Lava's standard processes (simulation only).

Lava's ``PyDelayDenseModelBitAcc`` (``fixed_pt`` DelayDense) rebuilds, at every time step, the
(max_delay + 1) x out x in delay-separated weight matrix (``get_delay_wgts_mat``: one
``np.where(delays == k, weights, 0)`` per delay k), multiplies it by the input spikes and sums:
for N-TIDIGITS (256 x 256 weights, delays up to 62) that is 4 million products per synapse per
step, which made DelayDense the bulk of the Lava run time.

``PyDelayDenseModelBitAccFast`` is the same model (it subclasses it: same weight clipping and
truncation at the first step, same 63-delay check, same int32 ``a_buff``, roll and
``weight_exp`` shift, same send/recv order) with only ``calc_act`` replaced: the activation
matrix A[i, k] = sum over spiking inputs j with delays[i, j] == k of weights[i, j], accumulated
with integer ``np.add.at`` over the spiking columns only. Integer sums are exact in any order,
so A is the same integer matrix Lava computes (returned as int64 like Lava's sum), and every
later step is Lava's own code: the outputs are identical. Used for ``fixed_pt`` simulation runs
(``lava_worker.sim_config``); hardware runs use Intel's compiler and are not affected.

``PyDenseModelBitAccFast``: Lava's ``fixed_pt`` Dense model (``PyDenseModelBitAcc``: its own first
step, which clips and truncates the weights, then the same send/recv order and ``weight_exp`` shift) with
the activation of binary spikes ``weights[:, s].sum(axis=1)`` (a copy of the spiking columns,
then a sum: 0.6 ms per step for 706 x 706 weights at 90 % input spikes) computed as one float64
matrix-vector product with the weights cast once: every partial sum is an integer below 2**53
(8-bit weights over fewer than 2**44 inputs), so the product is the same integers, returned as
int64 like Lava's sum (~0.04 ms). Graded input runs Lava's own code. Used by lava-fixed's layers
(``lava_layers.synapse_model``); a Dense process (``layers=False``, what hardware runs) keeps
Lava's own model, so that the tests comparing layers on and off compare the two.

``conv_model_fast()``: Lava's ``fixed_pt`` Conv model (``PyConvModelFixed``) computes each
step's convolution with ``lava.proc.conv.utils.conv_scipy`` (torch is switched off in Lava 0.10):
one full-size ``scipy.signal.convolve2d`` per (output channel, input channel) pair, the stride
applied afterwards by slicing, ~0.6 s per step for PilotNet's first layer. It sums integer
products in float64 (exact) and casts to the weight dtype, so any exact integer convolution gives
the same array: this model computes it as one im2col matrix product per group (float64, exact
while every sum is below 2**53: 8-bit weights times 24-bit messages over fewer than 2**21 inputs),
then Lava's own cast and 24-bit clamp; same send/recv order. Tested against ``conv_scipy``.
"""
from __future__ import annotations

import functools

import numpy as np
from lava.proc.dense.models import PyDelayDenseModelBitAcc, PyDenseModelBitAcc


class PyDelayDenseModelBitAccFast(PyDelayDenseModelBitAcc):
    """Lava's fixed_pt DelayDense model; ``calc_act`` over the spiking inputs only (exact)."""

    def calc_act(self, s_in) -> np.ndarray:
        n_out, depth = self.weights.shape[0], self.a_buff.shape[-1]
        act = np.zeros((n_out, depth), dtype=np.int64)
        s = np.asarray(s_in)
        cols = np.flatnonzero(s)
        if cols.size == 0:
            return act
        w = self.weights[:, cols].astype(np.int64)
        if s.dtype != bool:                       # graded input (num_message_bits > 0)
            w = w * s[cols].astype(np.int64)[None, :]
        d = self.delays[:, cols].astype(np.int64)
        if d.size and (d.min() < 0 or d.max() >= depth):
            # what Lava's own model would do with such delays: compute it the original way
            return super().calc_act(s_in)
        rows = np.broadcast_to(np.arange(n_out)[:, None], d.shape)
        np.add.at(act, (rows, d), w)
        return act


class PyDenseModelBitAccFast(PyDenseModelBitAcc):
    """Lava's fixed_pt Dense model; binary spikes accumulated by a float64 product (module doc)."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._w64 = None                          # the weights (after Lava's first step) as float64

    def run_spk(self):
        # graded messages, and the first step (where Lava's model clips and truncates the
        # weights once): Lava's own code
        if self.num_message_bits.item() > 0 or not self.weights_set:
            return super().run_spk()
        self.weight_exp = self.proc_params.get("weight_exp", 0)
        if self._w64 is None:
            self._w64 = np.asarray(self.weights, dtype=np.float64)
        self.a_out.send(self.a_buff)
        s_in = self.s_in.recv().astype(bool)
        a_accum = (self._w64 @ s_in.astype(np.float64)).astype(np.int64)     # exact (module doc)
        self.a_buff = (np.left_shift(a_accum, self.weight_exp) if self.weight_exp > 0
                       else np.right_shift(a_accum, -self.weight_exp))


def conv_lava_layout(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """What ``lava.proc.conv.utils.conv_scipy`` computes, exactly, for integer arrays: ``x`` in
    Lava's (x, y, c) layout, ``weight`` (out, kx, ky, in/groups) (a true convolution: Lava's
    kernel is flipped); stride/padding/dilation in (x, y) order. Returns float64 (x, y, out)."""
    (sx, sy), (px, py), (dx, dy) = (tuple(int(v) for v in a) for a in (stride, padding, dilation))
    o, kx, ky, cg = weight.shape
    xp = np.pad(np.asarray(x, dtype=np.float64), ((px, px), (py, py), (0, 0)))
    X, Y, C = xp.shape
    xo = (X - dx * (kx - 1) - 1) // sx + 1
    yo = (Y - dy * (ky - 1) - 1) // sy + 1
    w = np.asarray(weight, dtype=np.float64)[:, ::-1, ::-1, :]          # convolution -> correlation
    out = np.empty((xo, yo, o))
    og = o // groups
    for g in range(groups):
        xg = xp[:, :, g * cg:(g + 1) * cg]
        # columns [xo, yo, kx, ky, cg]: xg[x*sx + i*dx, y*sy + j*dy, c]
        s0, s1, s2 = xg.strides
        cols = np.lib.stride_tricks.as_strided(
            xg, (xo, yo, kx, ky, cg), (s0 * sx, s1 * sy, s0 * dx, s1 * dy, s2), writeable=False)
        wg = w[g * og:(g + 1) * og].reshape(og, -1)
        out[:, :, g * og:(g + 1) * og] = (cols.reshape(xo * yo, -1) @ wg.T).reshape(xo, yo, og)
    return out


@functools.lru_cache(maxsize=None)
def conv_model_fast():
    """``PyConvModelFixedFast``: Lava's fixed_pt Conv model with the convolution as an exact
    im2col product (module doc). Made on first use: ``lava.proc.conv`` imports scipy.signal and
    scipy.stats (~0.5-1.7 s), which a network without convolutions should not pay."""
    from lava.proc.conv.models import PyConvModelFixed

    class PyConvModelFixedFast(PyConvModelFixed):
        def run_spk(self) -> None:
            if self.a_buf is None:                       # Lava's own first-step handling
                self.a_buf = np.zeros_like(self.a_out.shape)
            self.a_out.send(self.a_buf)
            if self.num_message_bits.item() > 0:
                s_in = self.s_in.recv()
            else:
                s_in = self.s_in.recv().astype(bool)
            a_out = conv_lava_layout(s_in, self.weight, self.stride, self.padding, self.dilation,
                                     int(self.groups[0]))
            self.a_buf = self.clamp_precision(a_out.astype(self.weight.dtype))
    return PyConvModelFixedFast


def fast_model_map(plan) -> dict:
    """``exception_proc_model_map`` entries that speed up ``plan``'s CPU simulation."""
    if plan.mode != "fixed":
        return {}
    models = {}
    if any(c.kind == "dense" and c.delays is not None for c in plan.conns):
        from lava.proc.dense.process import DelayDense
        models[DelayDense] = PyDelayDenseModelBitAccFast
    if any(c.kind == "conv" for c in plan.conns):
        from lava.proc.conv.process import Conv
        models[Conv] = conv_model_fast()
    return models
