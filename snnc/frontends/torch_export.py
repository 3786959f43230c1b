"""Export a PyTorch SLAYER (lava-dl) network to snnc's ONNX dialect (docs/onnx-dialect.md).

``export(module, example_input, path)``: ``module`` is a ``torch.nn.Module`` built from
``lava.lib.dl.slayer.block.cuba`` blocks (Dense, Conv, Pool, Flatten, Recurrent); its
``forward`` may be any torch.fx-traceable composition of blocks, ``+`` (fan-in), ``torch.cat``
along the channel dim 1 and reshapes that keep batch first and time last.
``example_input``: ``float32`` ``(N, C[, H, W], T)`` (time last); it fixes the per-sample
shape, while ``N`` and ``T`` stay symbolic in the file.

The file reproduces the module's eval-mode forward from zero state: each block becomes its
synapse (standard ONNX op, effective quantized float weights), ``snnc.CubaLIF`` (or
``snnc.RecurrentCubaLIF``) and one ``snnc.Delay`` for slayer's one-step ``delay_shift`` plus
the floored axonal delay. Slayer's persistent neuron state across forward calls (always on for
Recurrent) is not part of the file: it starts from zero, as a fresh slayer module does.
"""
from __future__ import annotations

import copy
import operator
import warnings
from typing import Dict, List, Optional

import numpy as np
import onnx
import torch
import torch.fx
from onnx import TensorProto, helper, numpy_helper

from ..errors import SnncError
from . import slayer_blocks as sb
from . import slayer_sdn as sd
from . import nn_export
from . import onnx_ops as ops
from . import record_trace

_SLAYER = "lava.lib.dl.slayer"
_LEAF = (_SLAYER, "snnc.nn")      # snnc.nn modules: see nn_export


def is_leaf(m: torch.nn.Module) -> bool:
    """slayer and snnc.nn modules, and user subclasses of them, are exported whole."""
    return any(c.__module__.startswith(_LEAF) for c in type(m).__mro__[:-2])


class _Tracer(torch.fx.Tracer):
    """fx tracer that keeps every lava-dl slayer module (block, neuron, synapse) a leaf."""

    def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
        return is_leaf(m) or super().is_leaf_module(m, qualname)


class _Single(torch.nn.Module):
    """Wraps a lone slayer block so that fx sees it as a leaf called by forward()."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x):
        return self.block(x)


def _trace(module: torch.nn.Module, example_input: torch.Tensor, notes: List[str]
           ) -> torch.fx.GraphModule:
    """torch.fx symbolic trace; where fx cannot follow forward() (``.item()``, ``len`` of a
    proxy, ``torch.FloatTensor(list)``), the graph recorded by running it once (record_trace)."""
    if is_leaf(module):
        module = _Single(module)
    try:
        graph = _Tracer().trace(module)
    except Exception as e:  # fx raises many kinds of errors
        fx_error = f"{type(e).__name__}: {str(e)[:160]}"
    else:
        return torch.fx.GraphModule(module, graph)
    try:
        gm = record_trace.record(module, example_input, is_leaf)
    except SnncError as e:
        raise SnncError(
            f"cannot trace {type(module).__name__}.forward with torch.fx ({fx_error}), nor by "
            f"running it: {e}. snnc needs a forward() without data-dependent Python control "
            "flow: a composition of slayer blocks, '+', torch.cat(dim=1) and reshapes.") from e
    notes.append(f"{type(module).__name__}.forward is not torch.fx-traceable ({fx_error}); "
                 "exported the graph of one call on example_input (Python loops unrolled"
                 + (", values read with " + "/".join(f".{n}()" for n in gm.meta["snnc_left_torch"])
                    + " treated as side outputs" if gm.meta["snnc_left_torch"] else "") + ")")
    return gm


def _shapes(gm: torch.fx.GraphModule, example_input: torch.Tensor) -> Dict[str, tuple]:
    """Run the traced module once on a copy of it; record the shape of each tensor node."""
    shapes: Dict[str, tuple] = {}

    class _Rec(torch.fx.Interpreter):
        def run_node(self, n):
            if "snnc_failed" in n.meta:     # an op that raised when recorded (record_trace): its argument
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                out = next(a for a in record_trace._flat([args, kwargs]) if isinstance(a, torch.Tensor))
            else:
                out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                shapes[n.name] = tuple(out.shape)
            return out

    try:
        gm_copy = copy.deepcopy(gm)
    except Exception:
        gm_copy = gm
    try:
        with torch.no_grad():
            _Rec(gm_copy).run(example_input)
    except Exception as e:
        raise SnncError(f"running the module on example_input {tuple(example_input.shape)} failed "
                        f"({type(e).__name__}: {str(e)[:200]}); give an input (N, C[, H, W], T) "
                        "that the module accepts") from e
    return shapes


class _Builder:
    """Accumulates ONNX nodes, initializers and the used snnc functions."""

    def __init__(self):
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[onnx.TensorProto] = []
        self.functions: Dict[str, onnx.FunctionProto] = {}
        self._names: set = set()
        self.per_channel: Dict[str, str] = {}     # Concat value -> block with per-channel decays

    def fresh(self, base: str) -> str:
        base = base.replace(".", "_") or "v"
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def init(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: List[str], base: str, domain: str = "", **attrs) -> str:
        out = self.fresh(base)
        if domain == ops.DOMAIN and op not in self.functions:
            self.functions[op] = ops.FUNCTIONS[op]()
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out


def _emit_block(b: _Builder, name: str, m: torch.nn.Module, x: str, in_shape: tuple,
                out_shape: tuple) -> str:
    """ONNX nodes for one slayer block applied to value ``x``; shapes are (N, ..., T)."""
    kind = sb.block_kind(m, name)
    if kind.startswith("sd_"):
        return _emit_sigma_delta(b, name, m, kind, x, in_shape, out_shape)
    if kind == "flatten":
        flat = int(np.prod(in_shape[1:-1]))
        return b.node("Reshape", [x, b.init(f"{name}.shape", np.array([0, flat, -1], np.int64))],
                      f"{name}.out")
    if kind == "recurrent":
        w_in, w_rec = sb.recurrent_weights(m, name)
        z = b.node("MatMul", [b.init(f"{name}.weight", w_in), x], f"{name}.synapse")
        nrn = sb.neuron_params(m, name, (w_in.shape[0],))
        if nrn.decays is not None:
            raise SnncError(f"block '{name}' (Recurrent) has per-channel decays (shared_param=False); "
                            "snnc exports them for feed-forward blocks only")
        s = b.node(ops.RECURRENT_CUBA_LIF,
                   [z, b.init(f"{name}.weight_rec", w_rec), b.init(f"{name}.bias", nrn.bias)],
                   f"{name}.neuron", domain=ops.DOMAIN, **nrn.attributes)
    else:
        syn = sb.synapse_op(m, name, in_shape)
        if tuple(syn.out_shape) != tuple(out_shape[1:-1]):
            raise SnncError(f"block '{name}': snnc computes output {syn.out_shape} but slayer "
                            f"gives {tuple(out_shape[1:-1])}")
        nrn = sb.neuron_params(m, name, syn.out_shape) if kind != "affine" else None
        if nrn is not None and nrn.decays is not None:   # shared_param=False: a population per run
            return _emit_per_channel(b, name, m, syn, x, nrn)
        w = b.init(f"{name}.weight", syn.weight)
        if syn.op == "MatMul":
            z = b.node("MatMul", [w, x], f"{name}.synapse")
        else:
            z = b.node("Conv", [x, w], f"{name}.synapse", **syn.attrs)
        if kind == "affine":        # a non-spiking read-out: CUBA voltage, or the current itself
            b.functions.setdefault(ops.CUBA_LI, ops.FUNCTIONS[ops.CUBA_LI]())
            return b.node(ops.CUBA_LI, [z, b.init(f"{name}.bias", np.zeros((), np.float32))],
                          f"{name}.readout", domain=ops.DOMAIN, **sb.affine_readout(m, name))
        s = b.node(ops.CUBA_LIF, [z, b.init(f"{name}.bias", nrn.bias)], f"{name}.neuron",
                   domain=ops.DOMAIN, **nrn.attributes)
    steps = sb.delay_steps(m, name, nrn.shape)
    if steps is None:
        return s
    return b.node(ops.DELAY, [s, b.init(f"{name}.delay", steps)], f"{name}.delay",
                  domain=ops.DOMAIN)


def _emit_sigma_delta(b: _Builder, name: str, m, kind: str, x: str, in_shape: tuple,
                      out_shape: tuple) -> str:
    """A ``slayer.block.sigma_delta`` block: Input -> ``snnc.Delta``; Dense/Conv/Pool -> synapse and
    ``snnc.SigmaDelta``; Output -> Dense synapse and ``snnc.Sigma`` (see slayer_sdn)."""
    if kind == "sd_input":
        nrn = sd.input_encoder(m, name, tuple(in_shape[1:-1]))
        s = b.node(ops.DELTA, [x, b.init(f"{name}.threshold", nrn.threshold)], f"{name}.delta",
                   domain=ops.DOMAIN, **nrn.attributes)
        shape = tuple(in_shape[1:-1])
    else:
        syn = sb.synapse_op(m, name, in_shape)
        if tuple(syn.out_shape) != tuple(out_shape[1:-1]):
            raise SnncError(f"block '{name}': snnc computes output {syn.out_shape} but slayer "
                            f"gives {tuple(out_shape[1:-1])}")
        w = b.init(f"{name}.weight", syn.weight)
        z = (b.node("MatMul", [w, x], f"{name}.synapse") if syn.op == "MatMul"
             else b.node("Conv", [x, w], f"{name}.synapse", **syn.attrs))
        if kind == "sd_output":
            return b.node(ops.SIGMA, [z], f"{name}.sigma", domain=ops.DOMAIN,
                          state_scale=sd.sigma_scale(m, name))
        shape = tuple(syn.out_shape)
        nrn = sd.neuron(m, name, shape)
        s = b.node(ops.SIGMA_DELTA, [z, b.init(f"{name}.threshold", nrn.threshold),
                                     b.init(f"{name}.bias", nrn.bias)], f"{name}.neuron",
                   domain=ops.DOMAIN, **nrn.attributes)
    steps = sb.delay_steps(m, name, shape)
    if steps is None:
        return s
    return b.node(ops.DELAY, [s, b.init(f"{name}.delay", steps)], f"{name}.delay", domain=ops.DOMAIN)


def _emit_per_channel(b: _Builder, name: str, m, syn, x: str, nrn) -> str:
    """A block with per-channel decays: each run of consecutive channels with equal decays gets
    its own synapse rows, CubaLIF (scalar decays, as Loihi and Lava hold them) and delay; the runs
    are concatenated along channels, in order."""
    if syn.op == "Conv" and syn.attrs["group"] != 1:
        raise SnncError(f"block '{name}' has per-channel decays (shared_param=False) and a grouped "
                        "synapse; snnc exports per-channel decays for Dense and Conv (groups=1)")
    du, dv = (np.ravel(d) for d in nrn.decays)
    shape = nrn.shape
    steps = sb.delay_steps(m, name, shape)
    bias = np.broadcast_to(nrn.bias, (shape[0],) + (1,) * (len(shape) - 1)) if np.ndim(nrn.bias) else None
    starts = [0] + [c for c in range(1, shape[0]) if (du[c], dv[c]) != (du[c - 1], dv[c - 1])] + [shape[0]]
    parts = []
    for a, e in zip(starts[:-1], starts[1:]):
        tag = f"{name}.ch{a}" if e - a == 1 else f"{name}.ch{a}_{e - 1}"
        w = b.init(f"{tag}.weight", np.ascontiguousarray(syn.weight[a:e]))
        z = (b.node("MatMul", [w, x], f"{tag}.synapse") if syn.op == "MatMul"
             else b.node("Conv", [x, w], f"{tag}.synapse", **syn.attrs))
        attrs = dict(nrn.attributes, current_decay=float(du[a]), voltage_decay=float(dv[a]))
        bb = np.zeros((), np.float32) if bias is None else np.ascontiguousarray(bias[a:e], np.float32)
        s = b.node(ops.CUBA_LIF, [z, b.init(f"{tag}.bias", bb)], f"{tag}.neuron", domain=ops.DOMAIN, **attrs)
        if steps is not None:
            st = steps if np.ndim(steps) == 0 else np.ascontiguousarray(steps[a:e])
            s = b.node(ops.DELAY, [s, b.init(f"{tag}.delay", np.asarray(st, np.int64))], f"{tag}.delay",
                       domain=ops.DOMAIN)
        parts.append(s)
    if len(parts) == 1:
        return parts[0]
    out = b.node("Concat", parts, f"{name}.channels", axis=1)
    b.per_channel[out] = name
    return out


def _reshape(b: _Builder, n: torch.fx.Node, x: str, in_shape: tuple, out_shape: tuple) -> str:
    if (len(in_shape) < 3 or len(out_shape) < 3 or in_shape[0] != out_shape[0]
            or in_shape[-1] != out_shape[-1]):
        raise SnncError(f"'{n.name}' ({n.target}) reshapes {in_shape} to {out_shape}: snnc only "
                        "supports reshapes that keep batch first and time last, (N, ..., T)")
    target = np.array([0, *out_shape[1:-1], -1], np.int64)
    return b.node("Reshape", [x, b.init(f"{n.name}.shape", target)], n.name)


_ADD = {operator.add, torch.add, "add", "__add__"}
_CAT = {torch.cat, torch.concat, "cat"}
_RESHAPE = {torch.reshape, torch.flatten, "reshape", "view", "flatten"}


def _exportable(shapes):
    """Whether an fx node is part of what snnc exports (blocks, '+', cat, reshapes, and
    non-tensor shape bookkeeping)."""
    def ok(n: torch.fx.Node) -> bool:
        if n.op == "call_module" or n.name not in shapes:
            return True
        t = n.target
        return n.op in ("call_function", "call_method") and (t in _ADD or t in _CAT or t in _RESHAPE)
    return ok


def _emit_glue(b, n, vals, shapes) -> Optional[str]:
    """Standard ops for a call_function/call_method node; None if it is shape bookkeeping."""
    t = n.target
    if n.name not in shapes:  # not a tensor: x.shape, x.size(0), ... used by a reshape
        return None
    tensor_args = [a for a in n.args if isinstance(a, torch.fx.Node) and a.name in vals]
    if t in _ADD and len(tensor_args) == 2 and len(n.args) == 2 and not n.kwargs:
        return b.node("Add", [vals[a.name] for a in tensor_args], n.name)
    if t in _CAT:
        seq = n.args[0]
        dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
        rank = len(shapes[n.name])
        if dim % rank != 1:
            raise SnncError(f"'{n.name}': torch.cat along dim {dim}; snnc concatenates "
                            "populations along the channel dim 1 only")
        return b.node("Concat", [vals[a.name] for a in seq], n.name, axis=1)
    if t in _RESHAPE:
        src = n.args[0]
        return _reshape(b, n, vals[src.name], shapes[src.name], shapes[n.name])
    what = getattr(t, "__name__", str(t))
    raise SnncError(f"'{n.name}' calls {what}, which snnc cannot export: between slayer blocks "
                    "forward() may only use '+', torch.cat(dim=1) and reshapes (N, ..., T)")


def _value_info(name: str, shape: tuple) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape[1:-1], "T"])


def export(module: torch.nn.Module, example_input: torch.Tensor, path: Optional[str] = None,
           time_axis: Optional[int] = None) -> onnx.ModelProto:
    """Write ``module`` (slayer cuba blocks) as an snnc-dialect ONNX file at ``path``.

    ``example_input``: float32 ``(N, C[, H, W], T)``, time last. Returns the ModelProto
    (also when ``path`` is None, in which case nothing is written). Raises ``SnncError``
    naming the block for anything snnc cannot express. snnTorch and Norse modules go to
    ``step_export`` (their input is time first, ``time_axis`` 0 by default).
    """
    from . import step_export  # lazy: loads snnTorch/Norse adapters only when used
    lib = step_export.library(module)
    if lib is not None:
        return step_export.export(module, example_input, path, time_axis or 0, lib)
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 3:
        raise SnncError("example_input must be a torch tensor (N, C[, H, W], T), time last")
    notes: List[str] = []
    gm = _trace(module, example_input.float(), notes)
    shapes = _shapes(gm, example_input.float())
    notes += record_trace.spike_path(gm, _exportable(shapes))
    for note in notes:
        warnings.warn(f"snnc.export: {note}", stacklevel=2)
    b = _Builder()
    nn_ctx = nn_export.prepare(gm)
    vals: Dict[str, str] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise SnncError(f"{type(module).__name__}.forward takes {len(placeholders)} inputs; "
                        "snnc exports single-input networks")
    outputs: List = []
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            vals[n.name] = "input"
            b._names.add("input")
        elif n.op == "call_module":
            m = gm.get_submodule(n.target)
            arg = n.args[0] if n.args else None
            if len(n.args) != 1 or n.kwargs or not isinstance(arg, torch.fx.Node):
                raise SnncError(f"module '{n.target}' is called with {len(n.args)} args; "
                                "snnc expects block(x)")
            if isinstance(m, torch.nn.Identity):
                vals[n.name] = vals[arg.name]
                continue
            if nn_export.is_nn(m):
                vals[n.name] = nn_export.emit(b, nn_ctx, n, m, vals[arg.name], shapes[arg.name],
                                              shapes[n.name])
                continue
            vals[n.name] = _emit_block(b, n.target, m, vals[arg.name], shapes[arg.name],
                                       shapes[n.name])
        elif n.op in ("call_function", "call_method"):
            v = _emit_glue(b, n, vals, shapes)
            if v is not None:
                vals[n.name] = v
        elif n.op == "get_attr":
            raise SnncError(f"forward() reads the tensor '{n.target}' directly; snnc only "
                            "exports parameters that belong to slayer blocks")
        elif n.op == "output":
            res = n.args[0]
            outputs = list(res) if isinstance(res, (tuple, list)) else [res]
    names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    outs = []
    for name, o in zip(names, outputs):
        if not isinstance(o, torch.fx.Node) or o.name not in vals:
            raise SnncError(f"forward() returns {o!r}; snnc expects spike tensors")
        if vals[o.name] in b.per_channel:
            raise SnncError(f"block '{b.per_channel[vals[o.name]]}' has per-channel decays "
                            "(shared_param=False) and is a network output; snnc exports such blocks "
                            "inside the network (a population per decay) but not as the output: give "
                            "the output block shared decays")
        b.nodes.append(helper.make_node("Identity", [vals[o.name]], [name], name=name))
        outs.append(_value_info(name, shapes[o.name]))
    graph = helper.make_graph(b.nodes, type(module).__name__,
                              [_value_info("input", tuple(example_input.shape))], outs, b.inits)
    model = helper.make_model(
        graph, ir_version=ops.IR_VERSION, producer_name="snnc",
        opset_imports=ops.model_opsets(b.functions.values()),
        functions=list(b.functions.values()))
    onnx.helper.set_model_props(model, {
        "snnc.dialect_version": ops.DIALECT_VERSION,
        "snnc.source": f"snnc.export of torch module {type(module).__module__}."
                       f"{type(module).__name__} (lava-dl slayer)",
        **({"snnc.notes": "\n".join(notes)} if notes else {})})
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save(model, str(path))
    return model
