"""``snnc.export`` of time-stepped PyTorch SNNs (snnTorch, Norse) into snnc's ONNX dialect.

The libraries compute one time step per call with the time axis FIRST: data ``(T, N, ...)``,
layers on ``(N, ...)``. snnc's files are time LAST, ``(N, ..., T)``. ``export(module, x, path,
time_axis=0)``:

- a step module (snnTorch ``init_hidden=True`` in ``nn.Sequential``, Norse ``SequentialState``):
  ``x`` is the whole input sequence with time on ``time_axis`` (default 0); snnc records one
  step on ``x[0]``;
- a looped ``forward(x)`` (``for step in range(T)``): ``x`` is what forward takes, either
  ``(T, N, ...)`` read as ``x[step]`` or a static ``(N, ...)`` fed at every step; snnc records
  the whole call and rolls it into one step (step_trace).

The file's input is ``time_last(x)``: ``x.movedim(time_axis, -1)``, or for a static input ``x``
repeated over the T steps forward ran. Each layer becomes its time-last op: ``nn.Linear`` ->
``MatMul``, ``nn.Conv2d`` -> ``Conv`` (time kernel 1), ``nn.AvgPool2d`` -> depthwise ``Conv``
(1/(kh kw)), ``nn.MaxPool2d`` of spikes -> sum pool (weight 1) into a threshold population
(v = sum, threshold 0.5: a spike iff any input spiked, which is the max of 0/1 spikes),
``nn.Flatten`` and reshapes -> ``Reshape``, ``nn.Dropout`` (eval) -> nothing, and each neuron ->
``snnc.CubaLIF`` / ``snnc.RecurrentCubaLIF`` with real-valued dynamics (state_scale 0; the
library adapter gives its fields: snntorch_export, norse_export). A synapse bias becomes the
neuron bias where exact (the synapse feeds a neuron without current state); the library's input
gain (Norse's dt/tau_mem) and a per-neuron threshold (rows scaled by 1/thr, threshold 1) are
folded into the synapse weights.
"""
from __future__ import annotations

import operator
import warnings
from types import SimpleNamespace
from typing import Dict, List, Optional

import numpy as np
import onnx
import torch
import torch.fx
from onnx import TensorProto, helper

from ..errors import SnncError
from . import norse_export, onnx_ops as ops, record_trace, snntorch_export, step_trace

_LAYERS = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.AvgPool2d, torch.nn.MaxPool2d,
           torch.nn.Flatten, torch.nn.Dropout, torch.nn.Identity)
_RESHAPE = {torch.reshape, torch.flatten, "reshape", "view", "flatten"}


def library(module: torch.nn.Module):
    """The adapter (snntorch_export or norse_export) for a module built from that library's
    neurons; None for anything else."""
    found = set()
    for m in module.modules():
        name = type(m).__module__
        if name.startswith("snntorch") and snntorch_export.is_neuron(m):
            found.add(snntorch_export)
        elif name.startswith("norse"):
            found.add(norse_export)
    if len(found) > 1:
        raise SnncError("the module mixes snnTorch and Norse neurons; snnc exports one library at a time")
    return found.pop() if found else None


def time_last(x: torch.Tensor, steps: Optional[int] = None, time_axis: int = 0) -> torch.Tensor:
    """The file's input for the library input ``x``: time moved last, or (``steps`` given) a
    static input repeated over ``steps`` steps."""
    if steps is not None:
        return x.unsqueeze(-1).expand(*x.shape, steps).contiguous()
    return x.movedim(time_axis, -1).contiguous()


def _is_leaf(lib):
    return lambda m: lib.is_leaf(m) or type(m) in _LAYERS


def step_graph(module, x: torch.Tensor, lib, time_axis: int = 0) -> SimpleNamespace:
    """The per-step fx graph (step_trace) with ``steps`` (T), ``static`` and ``notes``."""
    leaf = _is_leaf(lib)
    reset = getattr(lib, "reset_all", lambda m: None)
    reset(module)
    try:
        if getattr(lib, "is_sequence_module", lambda m: False)(module):
            r = _sequence_graph(module, x.movedim(time_axis, 0), lib)
        elif lib.is_step_module(module):
            xt = x.movedim(time_axis, 0)
            r = SimpleNamespace(gm=step_trace.step_module_graph(module, xt[0], leaf), steps=xt.shape[0],
                                static=False, notes=[])
        else:
            if time_axis != 0:
                raise SnncError("a looped forward reads x[step]: give time_axis=0 (time first)")
            r = step_trace.rolled_graph(module, x, leaf, lib.state_args)
    finally:
        reset(module)
    return r


def _sequence_graph(module, x, lib) -> SimpleNamespace:
    """Layers that take the whole (T, N, ...) sequence (Norse ``LIF`` etc. with ``nn.Linear``):
    one recorded call; the per-step shapes drop the leading T."""
    gm = record_trace.record(module, x, _is_leaf(lib))
    for n in gm.graph.nodes:
        if n.op == "call_module":
            m = gm.get_submodule(n.target)
            if not (lib.is_neuron(m) or type(m) in (torch.nn.Linear, torch.nn.Dropout, torch.nn.Identity)):
                raise SnncError(f"layer '{n.target}' ({type(m).__name__}) between Norse time-sequence "
                                "layers: snnc exports nn.Linear (and Dropout) there; for convolutions "
                                "use the Cell neurons (LIFCell, ...) in SequentialState")
        elif n.op in ("call_function", "call_method") and n.target is not operator.getitem:
            raise SnncError(f"'{n.name}' between Norse time-sequence layers: snnc exports nn layers only")
        if "shape" in n.meta:
            n.meta["shape"] = tuple(n.meta["shape"][1:])
    return SimpleNamespace(gm=gm, steps=x.shape[0], static=False, notes=[])


def _spiking(gm, lib):
    """Predicate for record_trace.spike_path: layers, neuron spikes (not membranes/states), reshapes."""
    def ok(n):
        if n.op == "call_module":
            return True
        if n.op == "call_function" and n.target is operator.getitem:
            src = n.args[0]
            return (src.op == "call_module" and lib.is_neuron(gm.get_submodule(src.target))
                    and n.args[1] == lib.spike_index(gm.get_submodule(src.target)))
        return n.op in ("call_function", "call_method") and n.target in _RESHAPE
    return ok


# --------------------------------------------------------------------------- gains and biases
class _Context:
    def __init__(self):
        self.spec: Dict[str, SimpleNamespace] = {}        # neuron node -> adapter spec
        self.scale: Dict[str, np.ndarray] = {}            # synapse node -> row scale
        self.bias: Dict[str, np.ndarray] = {}             # neuron node -> bias (neuron units)
        self.bias_used: set = set()                       # synapse nodes whose bias moved
        self.direct: set = set()                          # neuron nodes without a synapse before
        self.notes: List[str] = []
        self.split: Dict[str, tuple] = {}                 # neuron node -> (its Linear node, module)
        self.deferred: set = set()                        # Linear nodes emitted by their neuron


def _through(n, gm):
    """Skip Dropout/Identity modules backwards."""
    while n.op == "call_module" and type(gm.get_submodule(n.target)) in (torch.nn.Dropout, torch.nn.Identity):
        n = n.args[0]
    return n


def _prepare(gm, lib) -> _Context:
    ctx = _Context()
    for n in gm.graph.nodes:
        if n.op == "call_module" and isinstance(gm.get_submodule(n.target), torch.nn.MaxPool2d) \
                and _check_spikes(n, gm, lib) == "input":
            ctx.notes.append(f"MaxPool2d '{n.target}' reads the network input: exported as the max of "
                             "0/1 spikes (a sum pool into a threshold population); exact only for "
                             "binary inputs")
    for n in gm.graph.nodes:
        if n.op != "call_module" or not lib.is_neuron(gm.get_submodule(n.target)):
            continue
        m = gm.get_submodule(n.target)
        shape = tuple(n.args[0].meta["shape"][1:])      # a neuron keeps its input's shape
        spec = lib.neuron_spec(m, n.target, shape)
        ctx.spec[n.name] = spec
        row = np.asarray(spec.gain, np.float64)
        if np.ndim(spec.threshold) and np.any(spec.threshold != spec.threshold.flat[0]):
            if len(shape) != 1:
                raise SnncError(f"neuron '{n.target}' has per-neuron thresholds on shape {tuple(shape)}; "
                                "snnc exports per-neuron thresholds on 1-D layers")
            row = row / np.asarray(spec.threshold, np.float64)
            spec.bias = spec.bias / spec.threshold
            if spec.w_rec is not None:
                spec.w_rec = spec.w_rec / spec.threshold[:, None]
            spec.threshold = np.float64(1.0)
        spec.threshold = float(np.asarray(spec.threshold).flat[0])
        src = _through(n.args[0], gm)
        sm = gm.get_submodule(src.target) if src.op == "call_module" else None
        if isinstance(sm, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.AvgPool2d)) and len(src.users) == 1:
            ctx.scale[src.name] = row
            if getattr(sm, "bias", None) is not None and torch.any(sm.bias != 0):
                b = sm.bias.detach().double().numpy()
                if np.any(np.asarray(spec.current_decay) != 1):
                    raise SnncError(f"layer '{src.target}' has a bias and feeds neuron '{n.target}' "
                                    f"({spec.kind}), which has a synaptic current: the bias would "
                                    "accumulate in the current, while a Loihi bias enters v; use "
                                    "bias=False")
                col = (-1,) + (1,) * (len(shape) - 1)      # per output channel, broadcast over H, W
                spec.bias = spec.bias + b.reshape(col) * (np.reshape(row, col) if np.ndim(row) else row)
                ctx.bias_used.add(src.name)
        else:
            ctx.direct.add(n.name)
            ctx.scale[n.name] = row
        ctx.bias[n.name] = np.asarray(spec.bias, np.float64)
        _decays(ctx, n, spec, src, sm)
    return ctx


def _decays(ctx, n, spec, src, sm):
    """Scalar decays, or per-neuron ones (snnTorch beta/alpha per neuron): then the neuron is split
    into one population per run of equal decays (Loihi holds one decay per population), which
    needs a Linear in front of a 1-D, non-recurrent layer."""
    ds = [np.asarray(getattr(spec, f), np.float64) for f in ("current_decay", "voltage_decay")]
    if all(d.size == 1 or np.all(d == d.flat[0]) for d in ds):
        spec.current_decay, spec.voltage_decay = (float(d.flat[0]) for d in ds)
        return
    if len(spec.shape) != 1 or spec.w_rec is not None or not isinstance(sm, torch.nn.Linear) \
            or n.name in ctx.direct:
        raise SnncError(f"neuron '{n.target}' ({spec.library} {spec.kind}) has per-neuron decays "
                        "(beta/alpha per neuron): snnc exports them on a 1-D, non-recurrent layer fed by "
                        "an nn.Linear (a population per decay)")
    spec.current_decay, spec.voltage_decay = (np.broadcast_to(d, spec.shape).copy() for d in ds)
    ctx.split[n.name] = (src.name, sm)
    ctx.deferred.add(src.name)


# --------------------------------------------------------------------------- emission
def _tl(shape) -> tuple:
    """Per-step shape (N, ...) -> time-last (N, ..., T)."""
    return tuple(shape) + ("T",)


def _rows(w: np.ndarray, row) -> np.ndarray:
    r = np.asarray(row, np.float64)
    return w * (r.reshape((-1,) + (1,) * (w.ndim - 1)) if r.ndim else r)


def _emit_layer(b, ctx, n, m, x, in_shape, out_shape) -> str:
    name = n.target
    scale = ctx.scale.get(n.name, 1.0)
    if isinstance(m, (torch.nn.Dropout, torch.nn.Identity)):
        if m.training and isinstance(m, torch.nn.Dropout) and m.p > 0:
            raise SnncError(f"layer '{name}' (Dropout) is in training mode; call module.eval()")
        return x
    if getattr(m, "bias", None) is not None and torch.any(m.bias != 0) and n.name not in ctx.bias_used:
        raise SnncError(f"layer '{name}' ({type(m).__name__}) has a bias but does not feed a neuron "
                        "directly (its only reader): snnc folds a bias into the neuron it feeds")
    if n.name in ctx.deferred:                    # per-neuron decays: the neuron emits its rows
        return x
    if isinstance(m, torch.nn.Linear):
        if len(in_shape) != 2:
            raise SnncError(f"layer '{name}' (Linear) reads per-step shape {tuple(in_shape)}; snnc "
                            "exports Linear on (N, features): flatten first")
        w = _rows(m.weight.detach().double().numpy(), scale)
        return b.node("MatMul", [b.init(f"{name}.weight", w.astype(np.float32)), x], f"{name}.synapse")
    if isinstance(m, torch.nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise SnncError(f"layer '{name}' (Conv2d) has padding {m.padding!r} / mode {m.padding_mode!r}; "
                            "snnc exports numeric zero padding")
        w = _rows(m.weight.detach().double().numpy(), scale)
        (ph, pw), (sh, sw), (dh, dw) = m.padding, m.stride, m.dilation
        return b.node("Conv", [x, b.init(f"{name}.weight", w[..., None].astype(np.float32))],
                      f"{name}.synapse", strides=[sh, sw, 1], pads=[ph, pw, 0, ph, pw, 0],
                      dilations=[dh, dw, 1], group=int(m.groups),
                      kernel_shape=[int(w.shape[2]), int(w.shape[3]), 1])
    if isinstance(m, (torch.nn.AvgPool2d, torch.nn.MaxPool2d)):
        return _emit_pool(b, ctx, n, m, x, in_shape)
    if isinstance(m, torch.nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise SnncError(f"layer '{name}' (Flatten start_dim={m.start_dim}, end_dim={m.end_dim}); "
                            "snnc exports Flatten(start_dim=1, end_dim=-1)")
        return _reshape(b, name, x, in_shape, out_shape)
    raise SnncError(f"layer '{name}' is {type(m).__module__}.{type(m).__name__}, which snnc cannot export")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _emit_pool(b, ctx, n, m, x, in_shape) -> str:
    name = n.target
    k, s, p = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
    if any(p) or m.ceil_mode or (isinstance(m, torch.nn.MaxPool2d) and _pair(m.dilation) != (1, 1)):
        raise SnncError(f"layer '{name}' ({type(m).__name__} padding {p}, ceil_mode {m.ceil_mode}); "
                        "snnc exports unpadded pooling, ceil_mode=False")
    c = in_shape[1]
    avg = isinstance(m, torch.nn.AvgPool2d)
    if avg and m.divisor_override:
        raise SnncError(f"layer '{name}' (AvgPool2d) has divisor_override; snnc exports plain averages")
    w = np.full((c, 1, k[0], k[1], 1), 1.0 / (k[0] * k[1]) if avg else 1.0, np.float64)
    if avg:
        w = _rows(w, ctx.scale.get(n.name, 1.0))
    y = b.node("Conv", [x, b.init(f"{name}.weight", w.astype(np.float32))], f"{name}.pool",
               strides=[s[0], s[1], 1], pads=[0] * 6, dilations=[1, 1, 1], group=int(c),
               kernel_shape=[k[0], k[1], 1])
    if avg:
        return y
    attrs = ops.cuba_attributes(1.0, 1.0, 0.5, 0)    # v = the window's spike count; spike iff >= 1
    _general(b)
    return b.node(ops.CUBA_LIF, [y, b.init(f"{name}.bias", np.zeros((), np.float32))], f"{name}.max",
                  domain=ops.DOMAIN, **attrs)


def _check_spikes(n, gm, lib):
    """A MaxPool2d must read spikes: the input, or a neuron's spikes (through Dropout/Identity)."""
    src = _through(n.args[0], gm)
    while src.op == "call_function" and src.target is operator.getitem:
        src = src.args[0]
    if src.op == "placeholder":
        return "input"
    if src.op == "call_module" and lib.is_neuron(gm.get_submodule(src.target)):
        return "spikes"
    raise SnncError(f"layer '{n.target}' (MaxPool2d) reads '{getattr(src, 'target', src.name)}', not "
                    "spikes: the max of synaptic currents is not a synapse Loihi has; snnc maps the max "
                    "of 0/1 spikes exactly, so put MaxPool2d after the neuron (conv -> neuron -> pool)")


def _reshape(b, name, x, in_shape, out_shape) -> str:
    if in_shape[0] != out_shape[0]:
        raise SnncError(f"'{name}' reshapes {tuple(in_shape)} to {tuple(out_shape)}: snnc needs the "
                        "batch dim kept first")
    return b.node("Reshape", [x, b.init(f"{name}.shape", np.array([0, *out_shape[1:], -1], np.int64))],
                  f"{name}.out")


def _general(b):
    for op, fn in ops.GENERAL_FUNCTIONS.items():
        b.functions[op] = fn()


def _neuron_attrs(name, spec) -> dict:
    return ops.cuba_attributes(spec.current_decay, spec.voltage_decay, spec.threshold, 0, reset=spec.reset,
                               reset_delay=spec.reset_delay, refractory=int(spec.refractory))


def _emit_split(b, ctx, n, x) -> str:
    """A neuron with per-neuron decays: a MatMul of its rows and a CubaLIF per run of equal
    decays, concatenated along the neurons (in order)."""
    name, spec = n.target, ctx.spec[n.name]
    src, lin = ctx.split[n.name]
    w = _rows(lin.weight.detach().double().numpy(), ctx.scale[src])
    cd, vd = spec.current_decay, spec.voltage_decay
    bias = np.broadcast_to(ctx.bias[n.name], spec.shape)
    _general(b)
    starts = [0] + [i for i in range(1, len(cd)) if (cd[i], vd[i]) != (cd[i - 1], vd[i - 1])] + [len(cd)]
    parts = []
    for a, e in zip(starts[:-1], starts[1:]):
        tag = f"{name}.n{a}" if e - a == 1 else f"{name}.n{a}_{e - 1}"
        z = b.node("MatMul", [b.init(f"{tag}.weight", w[a:e].astype(np.float32)), x], f"{tag}.synapse")
        attrs = ops.cuba_attributes(cd[a], vd[a], spec.threshold, 0, reset=spec.reset,
                                    reset_delay=spec.reset_delay, refractory=int(spec.refractory))
        parts.append(b.node(ops.CUBA_LIF, [z, b.init(f"{tag}.bias", bias[a:e].astype(np.float32))],
                            f"{tag}.neuron", domain=ops.DOMAIN, **attrs))
    if len(parts) == 1:
        return parts[0]
    out = b.node("Concat", parts, f"{name}.neurons", axis=1)
    b.per_channel[out] = name
    return out


def _emit_neuron(b, ctx, n, x, shape) -> str:
    name, spec = n.target, ctx.spec[n.name]
    if n.name in ctx.split:
        return _emit_split(b, ctx, n, x)
    if n.name in ctx.direct:                      # no synapse in front: an identity synapse
        row = np.asarray(ctx.scale[n.name], np.float64)
        if len(shape) == 1:
            w = _rows(np.eye(shape[0]), row)
            x = b.node("MatMul", [b.init(f"{name}.input", w.astype(np.float32)), x], f"{name}.input")
        else:
            w = np.ones((shape[0], 1, 1, 1, 1)) * (row if not np.ndim(row) else 1.0)
            x = b.node("Conv", [x, b.init(f"{name}.input", w.astype(np.float32))], f"{name}.input",
                       strides=[1, 1, 1], pads=[0] * 6, dilations=[1, 1, 1], group=int(shape[0]),
                       kernel_shape=[1, 1, 1])
    bias = ctx.bias[n.name].astype(np.float32)
    if bias.ndim:
        bias = bias.reshape(bias.shape + (1,) * (len(shape) - bias.ndim))
    if spec.readout:
        b.functions[ops.CUBA_LI] = ops.FUNCTIONS[ops.CUBA_LI]()
        return b.node(ops.CUBA_LI, [x, b.init(f"{name}.bias", bias)], f"{name}.neuron", domain=ops.DOMAIN,
                      **ops.li_attributes(spec.current_decay, spec.voltage_decay, 0))
    attrs = _neuron_attrs(name, spec)
    _general(b)
    if spec.w_rec is not None:
        return b.node(ops.RECURRENT_CUBA_LIF, [x, b.init(f"{name}.weight_rec", spec.w_rec.astype(np.float32)),
                                               b.init(f"{name}.bias", bias)],
                      f"{name}.neuron", domain=ops.DOMAIN, **attrs)
    return b.node(ops.CUBA_LIF, [x, b.init(f"{name}.bias", bias)], f"{name}.neuron",
                  domain=ops.DOMAIN, **attrs)


GRADED_FRAC_BITS = 8     # an analog (non-binary) input: graded spikes on the grid 2**-8


def _emit(b, gm, lib, ctx, graded: bool = False) -> Dict[str, str]:
    vals: Dict[str, str] = {}
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            vals[n.name] = "input"
            b._names.add("input")
            if graded:      # Loihi 2 takes analog values as graded spikes into the first synapse
                vals[n.name] = b.node(ops.GRADED_INPUT, ["input"], "input.graded", domain=ops.DOMAIN,
                                      frac_bits=GRADED_FRAC_BITS)
        elif n.op == "call_module":
            m = gm.get_submodule(n.target)
            src = n.args[0]
            in_shape, out_shape = src.meta["shape"], n.meta.get("shape")
            if lib.is_neuron(m):
                vals[n.name] = _emit_neuron(b, ctx, n, vals[src.name], tuple(in_shape[1:]))
            else:
                vals[n.name] = _emit_layer(b, ctx, n, m, vals[src.name], in_shape, out_shape)
        elif n.op == "call_function" and n.target is operator.getitem:
            vals[n.name] = vals[n.args[0].name]        # a neuron's spikes (spike_path kept only those)
        elif n.op in ("call_function", "call_method") and n.target in _RESHAPE:
            src = n.args[0]
            vals[n.name] = _reshape(b, n.name, vals[src.name], src.meta["shape"], n.meta["shape"])
        elif n.op != "output":
            what = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", n.target)
            raise SnncError(f"'{n.name}' calls {what}, which snnc cannot export between layers "
                            "(it exports nn layers, the library's neurons, flatten and reshapes)")
    return vals


def export(module: torch.nn.Module, example_input: torch.Tensor, path=None, time_axis: int = 0,
           lib=None) -> onnx.ModelProto:
    """Write the snnTorch/Norse ``module`` as an snnc-dialect ONNX file (time last)."""
    from .torch_export import _Builder  # the shared ONNX builder

    lib = lib or library(module)
    x = example_input.float()
    r = step_graph(module, x, lib, time_axis)
    gm = r.gm
    notes = list(r.notes) + record_trace.spike_path(gm, _spiking(gm, lib))
    ctx = _prepare(gm, lib)
    notes += ctx.notes
    graded = not bool(torch.all((x == 0) | (x == 1)))
    if graded:
        notes.append(f"the example input is analog (not 0/1 spikes): declared a graded input on the grid "
                     f"2**-{GRADED_FRAC_BITS} (Loihi graded spikes into the first Dense synapse); engines "
                     "round inputs to that grid")
    b = _Builder()
    vals = _emit(b, gm, lib, ctx, graded)
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    names = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
    info = []
    for nm, o in zip(names, outs):
        if not isinstance(o, torch.fx.Node) or o.name not in vals:
            raise SnncError(f"forward() returns {o!r}; snnc expects spikes of the library's neurons")
        if vals[o.name] in b.per_channel:
            raise SnncError(f"neuron '{b.per_channel[vals[o.name]]}' has per-neuron decays and is a "
                            "network output; snnc splits such layers into populations inside the "
                            "network only: give the output layer one beta/alpha")
        b.nodes.append(helper.make_node("Identity", [vals[o.name]], [nm], name=nm))
        info.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT, ["N", *o.meta["shape"][1:], "T"]))
    ph = next(n for n in gm.graph.nodes if n.op == "placeholder")
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *ph.meta["shape"][1:], "T"])
    graph = helper.make_graph(b.nodes, type(module).__name__, [inp], info, b.inits)
    model = helper.make_model(
        graph, ir_version=ops.IR_VERSION, producer_name="snnc",
        opset_imports=ops.model_opsets(b.functions.values()), functions=list(b.functions.values()))
    layout = (f"static input repeated over T={r.steps} steps (snnc.frontends.step_export.time_last(x, steps))"
              if r.static else f"time axis {time_axis} of the example input moved last")
    props = {"snnc.dialect_version": ops.DIALECT_VERSION,
             "snnc.source": f"snnc.export of {lib.__name__.split('.')[-1].replace('_export', '')} module "
                            f"{type(module).__module__}.{type(module).__name__}",
             "snnc.input_layout": layout, "snnc.steps": str(r.steps)}
    if notes:
        props["snnc.notes"] = "\n".join(notes)
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, str(path))
    for note in notes:
        warnings.warn(f"snnc.export: {note}", stacklevel=4)
    return model
