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
"""
from __future__ import annotations

import numpy as np
from lava.proc.dense.models import PyDelayDenseModelBitAcc


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


def fast_model_map(plan) -> dict:
    """``exception_proc_model_map`` entries that speed up ``plan``'s CPU simulation."""
    if plan.mode != "fixed" or not any(c.kind == "dense" and c.delays is not None for c in plan.conns):
        return {}
    from lava.proc.dense.process import DelayDense
    return {DelayDense: PyDelayDenseModelBitAccFast}
