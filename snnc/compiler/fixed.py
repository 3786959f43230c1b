"""The Loihi 2 fixed-point view of IR nodes (attached by the quantization pass in ``Graph.fixed``).

All fields are Loihi integers, exactly as Lava's bit-accurate models take them:
- synapse input to a neuron: ``a_in = sum(weight * s) << weight_exp`` (>> for a negative exponent,
  arithmetic), then ``u += a_in << 6``;
- CUBA neuron (``lava.proc.lif`` fixed_pt)::

      u = rtz(u * (4096 - decay_u)) + (a_in << 6)          u wraps at 24 bits
      v = rtz(v * (4096 - decay_v)) + u + (bias_mant << bias_exp)   v saturates at ±(2**23 - 1)
      s = v > (vth << 6);  v[s] = 0

  with ``rtz(y) = sign(y) * (|y| >> 12)``. Reset "subtract" (``CubaLIF.reset``) is
  ``v[s] -= vth << 6`` instead of ``v[s] = 0``; delayed (``reset_delay``) it is
  ``v -= (vth << 6) * s_prev`` after the decay, before the saturation, and no reset at the
  spike. Lava's LIF parameter ``du`` is ``decay_u - 1`` (its bit-accurate model adds 1), ``dv``
  is ``decay_v``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


@dataclass(frozen=True, eq=False)
class FixedSynapse:
    """Integer weights of a Dense/Conv2d/SumPool2d: even values in [-256, 254] (8-bit mantissa,
    mixed sign), same shape as the float weight (a scalar for SumPool2d), and the exponent.
    ``num_message_bits`` > 0: the synapse reads graded spikes (integer messages) and sends
    ``W @ s`` (Lava's Dense/Conv with ``num_message_bits``); 0: binary spikes.
    ``input_frac_bits`` k > 0: the synapse reads a graded ``Input`` sent as integers
    ``round(x * 2**k)``; ``weight_exp`` is then the exponent Lava takes, the weight's own
    exponent minus k (so ``a_in`` is floored to whole activation units)."""
    weight: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0       # > 0: graded input (Lava's num_message_bits): a = W @ s
    input_frac_bits: int = 0        # > 0: reads a graded Input of 2**-k grid (in weight_exp already)

    @property
    def own_weight_exp(self) -> int:
        """The weight's exponent without the graded input's fraction bits."""
        return int(self.weight_exp) + int(self.input_frac_bits)


@dataclass(frozen=True, eq=False)
class FixedCubaLIF:
    """Integer CUBA parameters: 12-bit decays (decay_u in 0..4096, decay_v in 0..4095),
    17-bit threshold mantissa ``vth`` (compared as v > vth << 6), 13-bit bias mantissa with a
    3-bit exponent. ``refractory``: steps v is held at 0 after a spike (0: none).
    ``state_scale`` S: u and v are integers in units of 1/S threshold units (synaptic weights
    into the population are ``W * S/64``, ``vth = threshold * S/64``, bias ``bias * S``)."""
    decay_u: Union[int, np.ndarray]      # an int64 array of the population's shape: per-neuron decays
    decay_v: Union[int, np.ndarray]
    vth: Union[int, np.ndarray]
    bias_mant: Union[int, np.ndarray] = 0
    bias_exp: int = 0
    refractory: int = 0
    state_scale: int = 0                 # S (a multiple of 64); 0: the node's own (a view built by hand)


@dataclass(frozen=True, eq=False)
class FixedCubaLI:
    """Integer parameters of a ``CubaLI`` read-out (as ``FixedCubaLIF``, no threshold)::

        u = rtz(u * (4096 - decay_u)) + (a_in << 6)                    u wraps at 24 bits
        v = rtz(v * (4096 - decay_v)) + u + (bias_mant << bias_exp)   v saturates at ±(2**23 - 1)
        y = v / S        (S = ``state_scale``; no spike, no reset)
    """
    decay_u: Union[int, np.ndarray]
    decay_v: Union[int, np.ndarray]
    bias_mant: Union[int, np.ndarray] = 0
    bias_exp: int = 0
    state_scale: int = 0                 # S: v is in units of 1/S; 0: the node's own


U_BITS = 24          # u and v are 24-bit signed on Loihi 2
U_WRAP = 1 << U_BITS
V_MAX = (1 << (U_BITS - 1)) - 1
VTH_MAX = (1 << 17) - 1
BIAS_MANT_MAX = (1 << 12) - 1


@dataclass(frozen=True, eq=False)
class FixedSigmaDelta:
    """Integer parameters of a ``Delta`` or ``SigmaDelta`` exactly as Lava's ``lava.proc.sdn``
    processes take them (fixed_pt)::

        Delta:       x = a_in << (spike_exp + state_exp);  act_new = x
        SigmaDelta:  sigma += a_in;  act_new = relu(sigma + (bias << (spike_exp + state_exp)))
        delta = act_new - act + residue
        s = delta where |delta| >= vth << (spike_exp + state_exp) else 0;  residue = delta - s
        act = act_new;  message = s >> state_exp   (arithmetic shift)

    (``cum_error``: ``error += delta``, compare ``|error|``, zero ``error`` where sent.)
    ``vth``/``bias``: integers (scalar or per neuron); ``act_mode`` "relu" or "unit" (Lava's
    ``ActivationMode``; ignored by Delta). ``state_scale`` S: the state is in units of 1/S of
    an activation unit, messages in units of 1/(S >> state_exp)."""
    vth: Union[int, np.ndarray]
    bias: Union[int, np.ndarray] = 0
    spike_exp: int = 6
    state_exp: int = 6
    act_mode: str = "relu"
    cum_error: bool = False
    state_scale: int = 0                 # S (a power of two); 0: the node's own


def state_scale(graph, pop: str) -> int:
    """The state scale S of population ``pop`` in fixed point (u, v in units of 1/S of a threshold
    unit for CUBA; of one activation unit for sigma-delta): its fixed view's (the quantization
    pass's choice), else the node's own ``state_scale`` (a float graph, a Sigma output)."""
    S = int(getattr(graph.fixed.get(pop), "state_scale", 0) or 0)
    return S or int(getattr(graph.nodes[pop], "state_scale", 0))


def input_frac_bits(graph, syn: str) -> int:
    """Fraction bits k of the graded Input that synapse ``syn`` reads (0: it reads spikes)."""
    return int(getattr(graph.fixed.get(syn), "input_frac_bits", 0))


def delta_input_scale(graph, name: str) -> int:
    """Integer units per 1.0 of the values Delta encoder ``name`` reads in fixed point (Lava's
    Delta ``a_in``): ``S >> (spike_exp + state_exp)`` of its fixed view (else of the node)."""
    fx, node = graph.fixed.get(name), graph.nodes[name]
    se = int(getattr(fx, "spike_exp", node.spike_exp))
    st = int(getattr(fx, "state_exp", node.state_exp))
    return state_scale(graph, name) >> (se + st)


def message_scale(graph, name: str) -> int:
    """Integer units per 1.0 of the graded messages node ``name`` sends in fixed point:
    ``S >> state_exp`` for a Delta/SigmaDelta (its fixed view's), S for a Sigma (it sends sigma
    itself), 0 for binary spikes (anything else)."""
    node = graph.nodes[name]
    kind = type(node).__name__
    if kind == "Sigma":
        return state_scale(graph, name)
    if kind not in ("Delta", "SigmaDelta"):
        return 0
    st = getattr(graph.fixed.get(name), "state_exp", node.state_exp)
    return state_scale(graph, name) >> int(st)
