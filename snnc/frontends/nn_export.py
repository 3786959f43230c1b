"""``snnc.export`` of ``snnc.nn`` modules (STBP, TSSL-BP, HM2-BP, ST-RSBP neurons and their
time-folded synapses) into snnc's ONNX dialect. Called by ``torch_export`` for every
``snnc.nn`` leaf module; see docs/onnx-dialect.md and docs/methods.md.

- ``Linear`` -> ``MatMul(W_eff, x)``; ``Conv2d`` -> ``Conv`` with time kernel 1; ``AvgPool2d`` ->
  a depthwise ``Conv`` of weight ``1/(kh*kw)`` (the compiler folds it into the next synapse);
  ``Flatten`` -> ``Reshape [0, C*H*W, -1]``; ``Delay`` -> ``snnc.Delay``; ``GradedInput`` ->
  ``snnc.GradedInput`` on the graph input (the compiler makes that input graded);
- ``LIF`` -> ``snnc.CubaLIF`` / ``snnc.RecurrentCubaLIF`` with the neuron's attributes
  (``state_scale`` 0 for real-valued dynamics). The model then ships the general function bodies
  (``onnx_ops.GENERAL_FUNCTIONS``: real or integer dynamics, refractory steps).
- ``W_eff`` = the synapse's effective (quantized) weight times the ``input_scale`` of the neuron
  it feeds (computed in float64): the IR weight is what the neuron integrates. A synapse bias
  becomes the neuron's bias; it is accepted only where that is exact: the synapse feeds the
  neuron directly and the neuron has no current filter (current_decay 1).
"""
from __future__ import annotations

import operator
from typing import Dict

import numpy as np
import torch
import torch.fx

from ..errors import SnncError
from . import onnx_ops as ops

_PKG = "snnc.nn"


def is_nn(m) -> bool:
    return type(m).__module__.startswith(_PKG)


class Context:
    def __init__(self):
        self.scale: Dict[str, float] = {}       # synapse fx node -> input_scale of its neuron
        self.bias: Dict[str, np.ndarray] = {}   # LIF fx node -> bias (neuron units)
        self.bias_synapse: set = set()          # synapse fx nodes whose bias moved to a neuron


def _kind(m):
    from .. import nn as snn
    for cls, k in ((snn.LIF, "lif"), (snn.Linear, "linear"), (snn.Conv2d, "conv"),
                   (snn.AvgPool2d, "avgpool"), (snn.Flatten, "flatten"), (snn.Delay, "delay"),
                   (snn.GradedInput, "graded")):
        if isinstance(m, cls):
            return k
    raise SnncError(f"snnc.nn module {type(m).__name__} cannot be exported")


def prepare(gm: torch.fx.GraphModule) -> Context:
    """Find, for every LIF, the synapses that feed it (through Delay and '+'): their weights get
    the neuron's input_scale; a directly feeding synapse's bias becomes the neuron bias."""
    ctx = Context()
    users = {n.name: list(n.users) for n in gm.graph.nodes}

    def module(n):
        return gm.get_submodule(n.target) if n.op == "call_module" else None

    _check_graded(gm, module, users)
    for n in gm.graph.nodes:
        m = module(n)
        if m is None or not is_nn(m) or _kind(m) != "lif":
            continue
        arg = n.args[0]
        stack, found = [(arg, 0)], []
        while stack:
            a, through_delay = stack.pop()
            am = module(a) if isinstance(a, torch.fx.Node) else None
            if am is not None and is_nn(am) and _kind(am) in ("linear", "conv"):
                found.append((a, am, through_delay))
            elif am is not None and is_nn(am) and _kind(am) == "delay":
                stack.append((a.args[0], through_delay + 1))
            elif isinstance(a, torch.fx.Node) and a.op == "call_function" and a.target in (operator.add, torch.add):
                stack += [(x, through_delay) for x in a.args if isinstance(x, torch.fx.Node)]
            else:
                what = am.__class__.__name__ if am is not None else (a.name if isinstance(a, torch.fx.Node) else a)
                raise SnncError(f"neuron '{n.target}' is fed by {what}: a neuron takes input only from "
                                "synapses (snnc.nn.Linear / Conv2d), possibly through Delay and '+'")
        bias = None
        for a, am, through_delay in found:
            old = ctx.scale.get(a.name)
            if old is not None and old != m.input_scale:
                raise SnncError(f"synapse '{a.target}' feeds neurons with different input_scale")
            ctx.scale[a.name] = m.input_scale
            if am.bias is None:
                continue
            if through_delay or a is not arg or len(users[a.name]) != 1:
                raise SnncError(f"synapse '{a.target}' has a bias but does not feed neuron '{n.target}' "
                                "directly: move the bias to a synapse that does (or use bias=False)")
            cd = m.decay_u_int if m.quantize else m.current_decay
            if cd not in (1.0, 4096):
                raise SnncError(f"synapse '{a.target}' has a bias and neuron '{n.target}' has a current "
                                "filter (current_decay < 1): a Loihi bias enters v, not u, so it would not "
                                "be exact; use bias=False")
            with torch.no_grad():
                bias = am.effective_bias().detach().double().numpy() * m.input_scale
            ctx.bias_synapse.add(a.name)
        if bias is not None:
            ctx.bias[n.name] = bias
    return ctx


def _check_graded(gm, module, users):
    """A GradedInput reads the network input and is its only reader; its readers are Linear
    synapses with ``graded_input`` equal to its ``frac_bits``, and such a Linear reads only it."""
    def kind(x):
        m = module(x) if isinstance(x, torch.fx.Node) else None
        return _kind(m) if m is not None and is_nn(m) else None

    for n in gm.graph.nodes:
        m = module(n)
        k = kind(n)
        if k == "graded":
            src = n.args[0]
            if not (isinstance(src, torch.fx.Node) and src.op == "placeholder"):
                raise SnncError(f"GradedInput '{n.target}' must be applied to the network input")
            others = [u.target if u.op == "call_module" else u.name for u in users[src.name] if u is not n]
            if others:
                raise SnncError(f"the network input feeds GradedInput '{n.target}' and also {others}: "
                                "a graded input is read only through its GradedInput")
            for u in users[n.name]:
                um = module(u)
                if kind(u) != "linear" or um.graded_input != m.frac_bits:
                    raise SnncError(f"GradedInput '{n.target}' (frac_bits {m.frac_bits}) feeds "
                                    f"'{u.target if u.op == 'call_module' else u.name}': graded inputs feed "
                                    f"only snnc.nn.Linear(..., graded_input={m.frac_bits}) synapses "
                                    "(Loihi's Conv has no graded-spike scaling)")
        elif k == "linear" and m.graded_input is not None:
            src = n.args[0]
            if kind(src) != "graded":
                raise SnncError(f"Linear '{n.target}' has graded_input={m.graded_input} but reads "
                                f"{getattr(src, 'target', src)!r}, not a snnc.nn.GradedInput")


def emit(b, ctx: Context, n: torch.fx.Node, m, x: str, in_shape: tuple, out_shape: tuple) -> str:
    """ONNX nodes for one snnc.nn module applied to value ``x``; shapes are (N, ..., T)."""
    kind = _kind(m)
    name = n.target
    if kind == "linear":
        with torch.no_grad():
            w = m.effective_weight().detach().double().numpy() * ctx.scale.get(n.name, 1.0)
        if m.bias is not None and n.name not in ctx.bias_synapse:
            raise SnncError(f"synapse '{name}' has a bias but feeds no neuron")
        if len(in_shape) != 3:
            raise SnncError(f"Linear '{name}' takes (N, C, T); flatten first (snnc.nn.Flatten)")
        if m.graded_input is not None and m.weight_quant is not None:   # Loihi's floor of graded input
            wq = m.weight_quant
            grid = 2.0 ** (m.graded_input + max(0, -wq.weight_exp) + 2)
            return b.node(ops.GRADED_DENSE, [b.init(f"{name}.weight", w.astype(np.float32)), x],
                          f"{name}.synapse", domain=ops.DOMAIN, unit=64.0 / wq.state_scale, grid=grid)
        return b.node("MatMul", [b.init(f"{name}.weight", w.astype(np.float32)), x], f"{name}.synapse")
    if kind == "conv":
        with torch.no_grad():
            w = m.effective_weight().detach().double().numpy() * ctx.scale.get(n.name, 1.0)
        if m.bias is not None and n.name not in ctx.bias_synapse:
            raise SnncError(f"synapse '{name}' has a bias but feeds no neuron")
        (ph, pw), (sh, sw), (dh, dw) = m.padding, m.stride, m.dilation
        return b.node("Conv", [x, b.init(f"{name}.weight", w[..., None].astype(np.float32))],
                      f"{name}.synapse", strides=[sh, sw, 1], pads=[ph, pw, 0, ph, pw, 0],
                      dilations=[dh, dw, 1], group=int(m.groups), kernel_shape=[int(w.shape[2]), int(w.shape[3]), 1])
    if kind == "avgpool":
        k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
        s = m.stride if isinstance(m.stride, tuple) else (m.stride, m.stride)
        p = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
        if any(p):
            raise SnncError(f"AvgPool2d '{name}' has padding {p}; snnc exports unpadded pooling")
        c = in_shape[1]
        w = np.full((c, 1, k[0], k[1], 1), 1.0 / (k[0] * k[1]), np.float32)
        return b.node("Conv", [x, b.init(f"{name}.weight", w)], f"{name}.pool", strides=[s[0], s[1], 1],
                      pads=[0] * 6, dilations=[1, 1, 1], group=int(c), kernel_shape=[k[0], k[1], 1])
    if kind == "graded":
        return b.node(ops.GRADED_INPUT, [x], f"{name}.graded", domain=ops.DOMAIN, frac_bits=int(m.frac_bits))
    if kind == "flatten":
        flat = int(np.prod(in_shape[1:-1]))
        return b.node("Reshape", [x, b.init(f"{name}.shape", np.array([0, flat, -1], np.int64))], f"{name}.out")
    if kind == "delay":
        if m.steps == 0:
            return x
        return b.node(ops.DELAY, [x, b.init(f"{name}.delay", np.array(m.steps, np.int64))],
                      f"{name}.delay", domain=ops.DOMAIN)
    # LIF
    if m.spike_compare != ">":
        raise SnncError(f"neuron '{name}': spike_compare {m.spike_compare!r} is not exportable "
                        "(Loihi compares v > threshold); use '>'")
    attrs = m.export_attributes()
    shape = tuple(out_shape[1:-1])
    bias = ctx.bias.get(n.name)
    if bias is None:
        bias = np.zeros((), np.float32)
    else:
        bias = bias.reshape(bias.shape + (1,) * (len(shape) - 1)).astype(np.float32)
    for op, fn in ops.GENERAL_FUNCTIONS.items():
        b.functions[op] = fn()
    if m.recurrent_kind is not None:
        with torch.no_grad():
            w = m.effective_recurrent_weight().detach().double().numpy() * m.input_scale
        return b.node(ops.RECURRENT_CUBA_LIF, [x, b.init(f"{name}.weight_rec", w.astype(np.float32)),
                                               b.init(f"{name}.bias", bias)],
                      f"{name}.neuron", domain=ops.DOMAIN, **attrs)
    return b.node(ops.CUBA_LIF, [x, b.init(f"{name}.bias", bias)], f"{name}.neuron",
                  domain=ops.DOMAIN, **attrs)
