"""The validation pass: every parameter a number, inside what its node allows and what Loihi 2
can hold; run by ``compile``, by artifact load and before every engine.

- ``check_params``: the float view (IR nodes): every parameter finite and of the right kind;
  threshold > 0, decays in [0, 1], refractory >= 0, delays whole steps >= 0, kernels, strides
  and dilations >= 1, pads >= 0, groups dividing the channels, state scales >= 0.
- ``check_fixed``: the fixed-point view (``Graph.fixed``) inside Loihi 2's widths: 8-bit weight
  mantissas and their exponent, 12-bit decays, 17-bit threshold mantissa (24-bit state),
  13-bit bias mantissa with a 3-bit exponent; one view per synapse and neuron, of the right type.
- ``check_views``: the float and fixed views of an artifact describe one network (the fixed view
  is what quantizing the float view gives).
- ``lint`` (``Graph.lint``): structure (``passes.check``) and the two above; run by the pass
  pipeline after every pass (``snnc/compiler/pipeline.py``).

Each raises ``SnncError`` naming the node (and ``where``: a file) and what to do.
"""
from __future__ import annotations

from dataclasses import fields
from numbers import Integral

import numpy as np

from ..errors import SnncError
from .fixed import BIAS_MANT_MAX, U_BITS, VTH_MAX, FixedCubaLI, FixedCubaLIF, FixedSigmaDelta, FixedSynapse
from .ir import (Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Delta, Flatten, Graph, Input, Output, Sigma,
                 SigmaDelta, SumPool2d)
from .passes import check

MAX_DELAY = 1 << 16              # steps; Loihi 2 synapses delay up to 62, the host ring buffers more
MAX_REFRACTORY = 1 << 16
WEIGHT_EXP = (-24, 7)            # Lava's weight_exp (graded inputs lower it by frac_bits <= 16)
STATE_MAX = (1 << (U_BITS - 1)) - 1


class _Bad(Exception):
    """A parameter that fails a rule (turned into SnncError naming the node)."""


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


# ----------------------------------------------------------------------------- value rules
def _number(v, what: str) -> np.ndarray:
    """``v`` as a float64 array; _Bad if it is not numbers or not finite."""
    if isinstance(v, (str, bytes)) or (isinstance(v, np.ndarray) and v.dtype.kind not in "biuf"):
        raise _Bad(f"{what} must be a number, got {v!r:.60}")
    if isinstance(v, np.ndarray) and v.dtype.kind in "biu":
        return v                            # integers: finite (no copy of large weight arrays)
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Bad(f"{what} must be a number, got {v!r:.60}") from None
    if not np.isfinite(a.sum()) and not np.all(np.isfinite(a)):
        raise _Bad(f"{what} must be finite, got {'NaN' if np.any(np.isnan(a)) else 'inf'}")
    return a


def _in_range(v, what: str, lo=None, hi=None, lo_open=False) -> np.ndarray:
    a = _number(v, what)
    if a.size and lo is not None:
        m = a.min()
        if m <= lo if lo_open else m < lo:
            raise _Bad(f"{what} must be {'>' if lo_open else '>='} {lo}, got {m:g}")
    if a.size and hi is not None and a.max() > hi:
        raise _Bad(f"{what} must be <= {hi}, got {a.max():g}")
    return a


def _integer(v, what: str, lo=None, hi=None) -> np.ndarray:
    if isinstance(v, (bool, np.bool_)):
        raise _Bad(f"{what} must be an integer, got {v!r}")
    if isinstance(v, (int, np.integer)) and -(1 << 62) < int(v) < (1 << 62):   # a scalar: no array work
        iv = int(v)
        if lo is not None and iv < lo:
            raise _Bad(f"{what} must be >= {lo}, got {iv:g}")
        if hi is not None and iv > hi:
            raise _Bad(f"{what} must be <= {hi}, got {iv:g}")
        return np.asarray(iv, dtype=np.int64)
    a = _in_range(v, what, lo, hi)
    if a.dtype.kind in "biu":
        return a.astype(np.int64, copy=False)
    if np.any(a != np.round(a)):
        raise _Bad(f"{what} must be whole numbers, got {a[a != np.round(a)].ravel()[0]:g}")
    return a.astype(np.int64)


def _scalar_int(v, what: str, lo=None, hi=None) -> int:
    if not isinstance(v, (Integral, np.integer)) or isinstance(v, (bool, np.bool_)):
        raise _Bad(f"{what} must be an integer, got {v!r:.60}")
    return int(_integer(v, what, lo, hi))


def _choice(v, what: str, allowed) -> None:
    if not isinstance(v, str) or v not in allowed:
        raise _Bad(f"{what} must be one of {', '.join(map(repr, allowed))}, got {v!r:.60}")


def _shape(v, what: str = "shape") -> None:
    if not isinstance(v, (tuple, list)) or not v or \
            not all(isinstance(s, (Integral, np.integer)) and not isinstance(s, bool) and s >= 1 for s in v):
        raise _Bad(f"{what} must be positive integer sizes, got {v!r:.60}")


def _per_neuron(v, what: str, shape) -> None:
    a = np.asarray(v)
    try:
        np.broadcast_to(a, tuple(shape))
    except ValueError:
        raise _Bad(f"{what} of shape {a.shape} does not fit the neurons {tuple(shape)}") from None


def _pairs(v, what: str, lo: int) -> None:
    vals = None if isinstance(v, (str, bytes)) else np.asarray(v, dtype=object).ravel().tolist()
    if vals is None or len(vals) not in (1, 2) or \
            not all(isinstance(x, (Integral, np.integer)) and not isinstance(x, bool) for x in vals):
        raise _Bad(f"{what} must be one or two integers, got {v!r:.60}")
    if min(vals) < lo:
        raise _Bad(f"{what} must be >= {lo}, got {[int(x) for x in vals]}")


# ----------------------------------------------------------------------------- float view
def _check_cuba(n: CubaLIF) -> None:
    _shape(n.shape)
    for k in ("current_decay", "voltage_decay"):
        _in_range(getattr(n, k), k, 0.0, 1.0)
        _per_neuron(getattr(n, k), k, n.shape)
    _in_range(n.threshold, "threshold", 0.0, lo_open=True)
    _per_neuron(n.threshold, "threshold", n.shape)
    _number(n.bias, "bias")
    _per_neuron(n.bias, "bias", n.shape)
    _choice(n.reset, "reset", ("zero", "subtract", "none", "subtract_snntorch"))
    if not isinstance(n.reset_delay, (bool, np.bool_, Integral)):
        raise _Bad(f"reset_delay must be a boolean, got {n.reset_delay!r:.60}")
    _choice(n.spike_compare, "spike_compare", (">", ">="))
    _scalar_int(n.refractory, "refractory", 0, MAX_REFRACTORY)
    _scalar_int(n.state_scale, "state_scale", 0)
    _scalar_int(n.reset_interval, "reset_interval", 0)
    _scalar_int(n.reset_offset, "reset_offset")
    if not isinstance(n.graded, (bool, np.bool_, Integral)):
        raise _Bad(f"graded must be a boolean, got {n.graded!r:.60}")


def _check_li(n: CubaLI) -> None:
    _shape(n.shape)
    for k in ("current_decay", "voltage_decay"):
        _in_range(getattr(n, k), k, 0.0, 1.0)
        _per_neuron(getattr(n, k), k, n.shape)
    _number(n.bias, "bias")
    _per_neuron(n.bias, "bias", n.shape)
    _scalar_int(n.state_scale, "state_scale", 0)


def _check_conv(n: Conv2d) -> None:
    w = _number(n.weight, "weight")
    if w.ndim != 4 or min(w.shape) < 1:
        raise _Bad(f"weight must be [out, in/groups, kh, kw], got shape {w.shape}")
    _pairs(n.stride, "stride", 1)
    _pairs(n.padding, "padding", 0)
    _pairs(n.dilation, "dilation", 1)
    g = _scalar_int(n.groups, "groups", 1)
    if w.shape[0] % g:
        raise _Bad(f"groups {g} does not divide the {w.shape[0]} output channels")


def _check_node(n) -> None:
    if isinstance(n, Input):
        _shape(n.shape)
        _choice(n.kind, "kind", ("spikes", "graded", "bias"))
        _scalar_int(n.frac_bits, "frac_bits", 0, 16)
    elif isinstance(n, Output):
        _shape(n.shape)
    elif isinstance(n, Dense):
        w = _number(n.weight, "weight")
        if w.ndim != 2 or min(w.shape) < 1:
            raise _Bad(f"weight must be [out, in], got shape {w.shape}")
    elif isinstance(n, Conv2d):
        _check_conv(n)
    elif isinstance(n, SumPool2d):
        _pairs(n.kernel, "kernel", 1)
        _pairs(n.stride, "stride", 1)
        _pairs(n.padding, "padding", 0)
        _number(n.weight, "weight")
    elif isinstance(n, Delay):
        _integer(n.steps, "delay steps", 0, MAX_DELAY)
    elif isinstance(n, CubaLIF):
        _check_cuba(n)
    elif isinstance(n, CubaLI):
        _check_li(n)
    elif isinstance(n, Average):
        _scalar_int(n.groups, "groups", 1)
    elif isinstance(n, (Delta, SigmaDelta, Sigma)):
        _shape(n.shape)
        _scalar_int(n.state_scale, "state_scale", 1)
        if not isinstance(n, Sigma):
            _in_range(n.threshold, "threshold", 0.0)
            _scalar_int(n.spike_exp, "spike_exp", 0)
            _scalar_int(n.state_exp, "state_exp", 0)
        if isinstance(n, SigmaDelta):
            _number(n.bias, "bias")
            _choice(n.activation, "activation", ("relu", "identity"))
    elif not isinstance(n, Flatten):
        raise _Bad(f"unknown node type {type(n).__name__}")


def check_params(graph: Graph, where: str = "") -> None:
    """Every IR parameter finite and inside what its node allows; SnncError naming the node."""
    for name, node in graph.nodes.items():
        try:
            _check_node(node)
        except _Bad as e:
            raise SnncError(f"{_prefix(where)}node {name!r} ({type(node).__name__}): {e}") from None


# ----------------------------------------------------------------------------- fixed view
FIXED_FOR = ((FixedSynapse, (Dense, Conv2d, SumPool2d)), (FixedCubaLIF, (CubaLIF,)), (FixedCubaLI, (CubaLI,)),
             (FixedSigmaDelta, (Delta, SigmaDelta)))


def _check_synapse(fx: FixedSynapse, node) -> None:
    w = _integer(fx.weight, "weight mantissa", -256, 255)
    want = () if isinstance(node, SumPool2d) else np.shape(node.weight)
    if w.shape != tuple(want):
        raise _Bad(f"weight mantissas of shape {w.shape} do not fit the weight {tuple(want)}")
    _scalar_int(fx.weight_exp, "weight_exp", *WEIGHT_EXP)
    _scalar_int(fx.num_weight_bits, "num_weight_bits", 1, 8)
    _scalar_int(fx.num_message_bits, "num_message_bits", 0, 24)
    _scalar_int(fx.input_frac_bits, "input_frac_bits", 0, 16)


def _check_decays(fx, node) -> None:
    """12-bit decays: one int each, or one per neuron."""
    _integer(fx.decay_u, "decay_u", 0, 4096)
    _per_neuron(fx.decay_u, "decay_u", node.shape)
    _integer(fx.decay_v, "decay_v", 0, 4095)
    _per_neuron(fx.decay_v, "decay_v", node.shape)


def _check_fixed_cuba(fx: FixedCubaLIF, node: CubaLIF) -> None:
    _check_decays(fx, node)
    _integer(fx.vth, "vth", 0, VTH_MAX)
    _per_neuron(fx.vth, "vth", node.shape)
    _integer(fx.bias_mant, "bias_mant", -BIAS_MANT_MAX, BIAS_MANT_MAX)
    _per_neuron(fx.bias_mant, "bias_mant", node.shape)
    _scalar_int(fx.bias_exp, "bias_exp", 0, 7)
    _scalar_int(fx.refractory, "refractory", 0, MAX_REFRACTORY)
    _state_scale(fx)


def _state_scale(fx) -> None:
    """A CUBA state scale: a multiple of 64 (Lava adds ``a_in << 6``); 0: the node's own."""
    S = _scalar_int(fx.state_scale, "state_scale", 0)
    if S % 64:
        raise _Bad(f"state_scale must be a multiple of 64, got {S}")


def _check_fixed_li(fx: FixedCubaLI, node: CubaLI) -> None:
    _check_decays(fx, node)
    _integer(fx.bias_mant, "bias_mant", -BIAS_MANT_MAX, BIAS_MANT_MAX)
    _per_neuron(fx.bias_mant, "bias_mant", node.shape)
    _scalar_int(fx.bias_exp, "bias_exp", 0, 7)
    _state_scale(fx)


def _check_fixed_sd(fx: FixedSigmaDelta, node) -> None:
    _integer(fx.vth, "vth", 0, STATE_MAX)
    _integer(fx.bias, "bias", -STATE_MAX, STATE_MAX)
    _scalar_int(fx.spike_exp, "spike_exp", 0, 16)
    _scalar_int(fx.state_exp, "state_exp", 0, 16)
    _choice(fx.act_mode, "act_mode", ("relu", "unit"))
    S = _scalar_int(fx.state_scale, "state_scale", 0)       # 0: the node's own
    if S & (S - 1):
        raise _Bad(f"state_scale must be a power of two, got {S}")


def check_fixed(graph: Graph, where: str = "") -> None:
    """The fixed-point view inside Loihi 2's widths, one of the right type per node it names."""
    for name, fx in graph.fixed.items():
        node = graph.nodes.get(name)
        if node is None:
            raise SnncError(f"{_prefix(where)}the fixed-point view names {name!r}, which is not a node")
        want = [f for f, kinds in FIXED_FOR if isinstance(node, kinds)]
        if not want or not isinstance(fx, want[0]):
            raise SnncError(f"{_prefix(where)}node {name!r} ({type(node).__name__}) has a fixed-point view of "
                            f"type {type(fx).__name__}")
        try:
            if isinstance(fx, FixedSynapse):
                _check_synapse(fx, node)
            elif isinstance(fx, FixedCubaLIF):
                _check_fixed_cuba(fx, node)
            elif isinstance(fx, FixedCubaLI):
                _check_fixed_li(fx, node)
            else:
                _check_fixed_sd(fx, node)
        except _Bad as e:
            raise SnncError(f"{_prefix(where)}node {name!r}: fixed-point {e} (outside Loihi 2's range)") from None


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b))) or (
            np.shape(a) != np.shape(b) and bool(np.all(np.asarray(a) == np.asarray(b))))
    except (TypeError, ValueError):
        return False


def check_views(graph: Graph, where: str = "") -> None:
    """The fixed view is what quantizing the float view gives (an artifact's two views agree)."""
    from .quantize import quantize
    bare = graph.copy()
    bare.fixed = {}
    want = quantize(bare).fixed
    for name in sorted(set(want) | set(graph.fixed)):
        a, b = graph.fixed.get(name), want.get(name)
        if a is None or b is None:
            raise SnncError(f"{_prefix(where)}node {name!r}: {'no' if a is None else 'an unexpected'} fixed-point "
                            "view; the artifact is damaged or was edited: compile the model again")
        bad = [f.name for f in fields(b) if not _same(getattr(a, f.name), getattr(b, f.name))]
        if bad:
            raise SnncError(f"{_prefix(where)}node {name!r}: the fixed-point {', '.join(bad)} do(es) not match the "
                            f"float parameters (stored {_show(getattr(a, bad[0]))}, the float view gives "
                            f"{_show(getattr(b, bad[0]))}); the artifact was edited or is damaged: compile the "
                            "model again")


def _show(v) -> str:
    a = np.asarray(v)
    return repr(a.item()) if a.ndim == 0 else f"an array {a.shape} starting {a.ravel()[:3].tolist()}"


def lint(graph: Graph, where: str = "") -> Graph:
    """``Graph.lint``: the structural checks (``passes.check``), then ``check_params`` and, when
    the graph has a fixed view, ``check_fixed``; SnncError naming ``where`` and the node."""
    try:
        check(graph)
    except SnncError as e:
        raise SnncError(f"{_prefix(where)}{e}") from None
    return validate(graph, where)


def validate(graph: Graph, where: str = "", views: bool = False) -> Graph:
    """``check_params`` and ``check_fixed`` (and ``check_views`` if ``views``); returns ``graph``."""
    check_params(graph, where)
    if graph.fixed:
        check_fixed(graph, where)
        if views:
            check_views(graph, where)
    return graph
