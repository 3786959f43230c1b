"""The Loihi 2 fixed-point view of IR nodes (attached by the quantization pass in ``Graph.fixed``).

All fields are Loihi integers, exactly as Lava's bit-accurate models take them:
- synapse input to a neuron: ``a_in = sum(weight * s) << weight_exp`` (>> for a negative exponent,
  arithmetic), then ``u += a_in << 6``;
- CUBA neuron (``lava.proc.lif`` fixed_pt)::

      u = rtz(u * (4096 - decay_u)) + (a_in << 6)          u wraps at 24 bits
      v = rtz(v * (4096 - decay_v)) + u + (bias_mant << bias_exp)   v saturates at ±(2**23 - 1)
      s = v > (vth << 6);  v[s] = 0

  with ``rtz(y) = sign(y) * (|y| >> 12)``. Lava's LIF parameter ``du`` is ``decay_u - 1``
  (its bit-accurate model adds 1), ``dv`` is ``decay_v``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


@dataclass(frozen=True, eq=False)
class FixedSynapse:
    """Integer weights of a Dense/Conv2d/SumPool2d: even values in [-256, 254] (8-bit mantissa,
    mixed sign), same shape as the float weight (a scalar for SumPool2d), and the exponent."""
    weight: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8


@dataclass(frozen=True, eq=False)
class FixedCubaLIF:
    """Integer CUBA parameters: 12-bit decays (decay_u in 0..4096, decay_v in 0..4095),
    17-bit threshold mantissa ``vth`` (compared as v > vth << 6), 13-bit bias mantissa with a
    3-bit exponent. ``refractory``: steps v is held at 0 after a spike (0: none)."""
    decay_u: int
    decay_v: int
    vth: Union[int, np.ndarray]
    bias_mant: Union[int, np.ndarray] = 0
    bias_exp: int = 0
    refractory: int = 0


U_BITS = 24          # u and v are 24-bit signed on Loihi 2
U_WRAP = 1 << U_BITS
V_MAX = (1 << (U_BITS - 1)) - 1
VTH_MAX = (1 << 17) - 1
BIAS_MANT_MAX = (1 << 12) - 1
