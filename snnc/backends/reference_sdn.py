"""Sigma-delta nodes (``Delta``, ``SigmaDelta``, ``Sigma``) in the reference simulator.

The exact step of Lava's ``lava.proc.sdn`` models (``fixed_pt``: ``PyDeltaModelFixed``,
``PySigmaDeltaModelFixed``, ``PySigmaModelFixed``; ``floating_pt`` for float mode): the update
op of the sigma-delta population kinds of the reference step plan (``reference._Sim``) and the
executable spec's (``reference_spec._Sim``). Graded messages between nodes are Lava's integers
in fixed mode (a synapse with ``num_message_bits`` > 0
computes ``W @ s``); an ``Output`` that reads them converts to values (integer / message scale).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ..compiler.fixed import delta_input_scale
from ..compiler.ir import SIGMA_DELTA, Delta, Graph, Sigma
from ..errors import SnncError

STATE = ("sigma", "act", "residue", "error")


def init_state(shape, dtype) -> Dict[str, np.ndarray]:
    return {k: np.zeros(shape, dtype) for k in STATE}


def has_sigma_delta(graph: Graph) -> bool:
    return any(isinstance(v, SIGMA_DELTA) for v in graph.nodes.values())


def _int32(name: str, x: np.ndarray) -> np.ndarray:
    """Lava's sdn models hold their state in int32: refuse values it would wrap."""
    if x.size and np.max(np.abs(x)) >= (1 << 31):
        raise SnncError(f"{name!r}: sigma-delta state {int(np.max(np.abs(x)))} exceeds Lava's int32 "
                        "state (the fixed-point run would wrap)")
    return x


def step(graph: Graph, mode: str, name: str, node, st: Dict[str, np.ndarray], a) -> np.ndarray:
    """One step of a Delta / SigmaDelta / Sigma; ``a``: summed input (Input values for a Delta,
    synaptic input otherwise). Updates ``st``; returns the messages (integers in fixed mode)."""
    fixed = mode == "fixed"
    if isinstance(node, Sigma):
        st["sigma"] = st["sigma"] + a
        if fixed:
            _int32(name, st["sigma"])
        return st["sigma"]
    if fixed:
        fx = graph.fixed[name]
        shift = fx.spike_exp + fx.state_exp
        vth = np.asarray(fx.vth, dtype=np.int64) << shift
        if isinstance(node, Delta):
            scale = delta_input_scale(graph, name)
            x = np.asarray(a, dtype=np.float64) * scale
            if not np.all(x == np.round(x)):
                raise SnncError(f"delta encoder {name!r}: input is not a multiple of 1/{scale} "
                                "(Lava's Delta takes integers a_in in that unit)")
            act = x.astype(np.int64) << shift
        else:
            st["sigma"] = _int32(name, st["sigma"] + a)
            act = st["sigma"] + (np.asarray(fx.bias, dtype=np.int64) << shift)
            if fx.act_mode == "relu":
                act = np.maximum(act, 0)
        act = _int32(name, act)
        cum = fx.cum_error
    else:
        vth = np.asarray(node.threshold, dtype=np.float64)
        if isinstance(node, Delta):
            act = np.asarray(a, dtype=np.float64)
        else:
            st["sigma"] = st["sigma"] + a
            act = st["sigma"] + node.bias
            if node.activation == "relu":
                act = np.maximum(act, 0)
        cum = node.cumulative_error
    delta = act - st["act"] + st["residue"]
    if cum:
        st["error"] = st["error"] + delta
        s = np.where(np.abs(st["error"]) >= vth, delta, 0)
        st["error"] = st["error"] * (1 - (np.abs(s) > 0))
    else:
        s = np.where(np.abs(delta) >= vth, delta, 0)
    st["residue"] = delta - s
    st["act"] = act
    return (s >> graph.fixed[name].state_exp) if fixed else s
