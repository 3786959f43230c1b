"""Import an ONNX file in snnc's dialect (docs/onnx-dialect.md) into the IR.

Every ONNX value maps to the list of IR nodes whose outputs sum to it (an ``Add`` is a
fan-in, not a node). Errors name the file, the ONNX node and its op.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List

import numpy as np
import onnx
from onnx import numpy_helper

from ..compiler.ir import (RESETS, Conv2d, CubaLI, CubaLIF, Delay, Delta, Dense, Flatten, Graph, Input, Output, Sigma,
                           SigmaDelta, SumPool2d)
from ..compiler.passes import check
from ..errors import SnncError

DOMAIN = "snnc"
SUPPORTED = ("MatMul", "Conv", "Reshape", "Add", "Concat", "Identity",
             "snnc.CubaLIF", "snnc.Delay", "snnc.RecurrentCubaLIF", "snnc.GradedInput",
             "snnc.GradedDense", "snnc.CubaLI", "snnc.Delta", "snnc.SigmaDelta", "snnc.Sigma")


MIN_INPUTS = {"MatMul": 2, "Conv": 2, "Reshape": 2, "Add": 2, "snnc.Delay": 2, "snnc.RecurrentCubaLIF": 2,
              "snnc.GradedDense": 2, "snnc.Delta": 2, "snnc.SigmaDelta": 2}


def load_onnx(path: str) -> onnx.ModelProto:
    """Read ``path`` as an ONNX model; a clear SnncError if it is missing or not ONNX."""
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such file")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise SnncError(f"{path}: not an ONNX file ({type(e).__name__}: {str(e)[:120]})") from None
    if not model.graph.node and not model.graph.input:
        raise SnncError(f"{path}: not an ONNX model (empty graph): is this the right file?")
    return model


class _Importer:
    def __init__(self, model: onnx.ModelProto, path: str):
        self.model, self.path = model, path
        self.g = Graph(metadata={"source": os.path.basename(path)})
        self.const: Dict[str, np.ndarray] = {t.name: self._tensor(t) for t in model.graph.initializer}
        self.values: Dict[str, List[str]] = {}
        # a channel Concat is not a node: a synapse that reads it is split into one synapse per part
        self.concats: Dict[str, List[tuple]] = {}
        self.shapes: Dict[str, tuple] = {}
        self.count: Dict[str, int] = {}
        self.readers: Dict[str, List] = {}     # value -> ONNX nodes that read it
        self.graded_dense: Dict[str, tuple] = {}   # Dense name -> (ONNX node, activation unit)

    # -- helpers -----------------------------------------------------------------------------
    def _tensor(self, t) -> np.ndarray:
        """An initializer's values; external data is read from the model's own folder."""
        base = os.path.dirname(os.path.abspath(self.path))
        try:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                loc = {e.key: e.value for e in t.external_data}.get("location", "")
                full = os.path.realpath(os.path.join(base, loc))
                if not loc or os.path.isabs(loc) or not os.path.isfile(full):
                    raise SnncError(f"{self.path}: initializer {t.name!r}: its external data {loc!r} is not a "
                                    f"file in the model's folder {base}")
            return numpy_helper.to_array(t, base_dir=base)
        except SnncError:
            raise
        except Exception as e:
            raise SnncError(f"{self.path}: initializer {t.name!r} cannot be read ({type(e).__name__}: "
                            f"{str(e)[:120]})") from None

    def number(self, node, a: dict, key: str, kind, default=None):
        """Attribute ``key`` as an int or float (``kind``); a clear error for any other type."""
        if key not in a:
            if default is None:
                raise self.err(node, f"missing attribute {key!r}")
            return default
        v = a[key]
        ok = isinstance(v, int) if kind is int else isinstance(v, (int, float))
        if not ok or isinstance(v, bool):
            raise self.err(node, f"attribute {key!r} must be one {'integer' if kind is int else 'number'}, "
                                 f"got {v!r:.60}")
        return kind(v)

    def ints(self, node, a: dict, key: str, n: int, default):
        """Attribute ``key`` as a list of ``n`` integers."""
        v = a.get(key, default)
        if not isinstance(v, (list, tuple)) or len(v) != n or not all(isinstance(x, int) for x in v):
            raise self.err(node, f"attribute {key!r} must be {n} integers, got {v!r:.60}")
        return list(v)

    def err(self, node, msg: str) -> SnncError:
        op = f"{node.domain + '.' if node.domain else ''}{node.op_type}"
        return SnncError(f"{self.path}: node {node.name or '(unnamed)'!r} ({op}): {msg}")

    def fresh(self, base: str) -> str:
        base = base.replace("/", "_").strip("_") or "node"
        n = self.count.get(base, 0)
        self.count[base] = n + 1
        name = base if n == 0 and base not in self.g.nodes else f"{base}_{n}"
        while name in self.g.nodes:
            n += 1
            name = f"{base}_{n}"
        return name

    def source(self, node, value: str) -> List[str]:
        self.readers.setdefault(value, []).append(node)
        if value in self.concats:
            raise self.err(node, f"input {value!r} is a Concat; snnc reads a Concat only as the input of "
                                 "a MatMul or Conv synapse")
        if value not in self.values:
            raise self.err(node, f"input {value!r} is not produced by a supported node "
                                 "(constants cannot feed a neuron graph)")
        return self.values[value]

    def constant(self, node, value: str) -> np.ndarray:
        if value in self.const:
            c = self.const[value]
            if c.dtype.kind not in "biuf":
                raise self.err(node, f"initializer {value!r} holds {c.dtype} values, not numbers")
            return c
        raise self.err(node, f"input {value!r} must be an initializer (a constant)")

    def add(self, node, ir_node, sources: List[str], base: str) -> str:
        name = self.fresh(base)
        self.g.add(name, ir_node, *sources)
        try:
            self.shapes[name] = ir_node.output_shape(self.shapes[sources[0]]) if sources else ir_node.shape
        except ValueError as e:
            raise self.err(node, str(e)) from None
        return name

    @staticmethod
    def attrs(node) -> Dict[str, object]:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    # -- ops ---------------------------------------------------------------------------------
    def run(self) -> Graph:
        graph = self.model.graph
        init = set(self.const)
        real_inputs = [i for i in graph.input if i.name not in init]
        if not real_inputs:
            raise SnncError(f"{self.path}: the graph has no input")
        for inp in real_inputs:
            dims = [d.dim_value if d.HasField("dim_value") else None
                    for d in inp.type.tensor_type.shape.dim]
            if len(dims) < 3 or any(d is None for d in dims[1:-1]):
                raise SnncError(f"{self.path}: input {inp.name!r} must have shape (N, C[, H, W], T) with "
                                f"fixed C, H, W; got {dims}")
            name = self.fresh(inp.name)
            self.g.add(name, Input(tuple(dims[1:-1])))
            self.shapes[name] = tuple(dims[1:-1])
            self.values[inp.name] = [name]
        for node in graph.node:
            op = f"{DOMAIN}.{node.op_type}" if node.domain == DOMAIN else node.op_type
            if node.domain not in ("", "ai.onnx", DOMAIN) or op not in SUPPORTED:
                raise self.err(node, f"op not supported by snnc; supported: {', '.join(SUPPORTED)}")
            need = MIN_INPUTS.get(op, 1)
            if len(node.input) < need or not all(node.input[:need]) or not node.output or not node.output[0]:
                raise self.err(node, f"needs {need} input(s) and one output, has inputs {list(node.input)} "
                                     f"and outputs {list(node.output)}")
            getattr(self, "op_" + op.replace(".", "_"))(node)
        for value, readers in self.readers.items():
            graded = [r for r in readers if r.domain == DOMAIN and r.op_type == "GradedInput"]
            if graded and len(readers) > 1:
                raise self.err(graded[0], f"graph input {value!r} is also read by "
                                          f"{[r.name for r in readers if r is not graded[0]]}: a graded "
                                          "input is read only through its GradedInput")
        self.check_graded_dense()
        for out in graph.output:
            srcs = self.values.get(out.name)
            if srcs is None:
                raise SnncError(f"{self.path}: output {out.name!r} is not produced by any supported node")
            self.g.add(self.fresh(out.name), Output(self.shapes[srcs[0]]), *srcs)
        try:
            check(self.g)
        except SnncError as e:
            raise SnncError(f"{self.path}: {e}") from None
        return self.g

    def _same_shape(self, node, srcs):
        shapes = {self.shapes[s] for s in srcs}
        if len(shapes) != 1:
            raise self.err(node, f"inputs have different shapes {sorted(shapes)}")
        return shapes.pop()

    def op_Identity(self, node):
        self.values[node.output[0]] = self.source(node, node.input[0])

    def op_Add(self, node):
        srcs = self.source(node, node.input[0]) + self.source(node, node.input[1])
        self._same_shape(node, srcs)
        self.values[node.output[0]] = srcs

    def parts(self, node, value: str):
        """``[(sources, shape), ...]``: the channel blocks of a value (one block unless a Concat)."""
        if value in self.concats:
            return self.concats[value]
        srcs = self.source(node, value)
        return [(srcs, self._same_shape(node, srcs))]

    def op_Concat(self, node):
        if int(self.attrs(node).get("axis", 0)) != 1:
            raise self.err(node, "only a channel Concat (axis=1) is supported")
        parts = [p for v in node.input for p in self.parts(node, v)]
        rest = {tuple(shape[1:]) for _, shape in parts}
        if len(rest) != 1:
            raise self.err(node, f"inputs differ beyond the channel axis: {[shape for _, shape in parts]}")
        self.concats[node.output[0]] = parts

    def op_MatMul(self, node):
        w = self.constant(node, node.input[0]).astype(np.float64)
        parts = self.parts(node, node.input[1])
        if len(parts) > 1:
            if w.ndim != 2 or any(len(shape) != 1 for _, shape in parts) \
                    or w.shape[1] != sum(shape[0] for _, shape in parts):
                raise self.err(node, f"weight {w.shape} does not fit the concatenated input "
                                     f"{[shape for _, shape in parts]}")
            names, start = [], 0
            for k, (srcs, shape) in enumerate(parts):
                names.append(self.add(node, Dense(w[:, start:start + shape[0]]), srcs,
                                      f"{node.name or 'dense'}_part{k}"))
                start += shape[0]
            self.values[node.output[0]] = names
            return
        srcs = parts[0][0]
        shape = self._same_shape(node, srcs)
        if w.ndim != 2 or shape != (w.shape[1],):
            raise self.err(node, f"expects MatMul(W[out, in], x(N, in, T)); got W {w.shape} and x of "
                                 f"neuron shape {shape}")
        self.values[node.output[0]] = [self.add(node, Dense(w), srcs, node.name or "dense")]

    def op_Conv(self, node):
        a = self.attrs(node)
        if len(node.input) > 2 and node.input[2]:
            raise self.err(node, "Conv bias is not supported: put a bias on the neuron instead")
        w = self.constant(node, node.input[1]).astype(np.float64)
        if w.ndim != 5 or w.shape[-1] != 1:
            raise self.err(node, f"expects a per-step 2-D conv: weight [out, in/g, kh, kw, 1], got {w.shape}")
        srcs, shape = self.parts(node, node.input[0])[0]
        strides = self.ints(node, a, "strides", 3, [1, 1, 1])
        pads = self.ints(node, a, "pads", 6, [0] * 6)
        dil = self.ints(node, a, "dilations", 3, [1, 1, 1])
        group = self.number(node, a, "group", int, 1)
        if min(strides) < 1 or min(dil) < 1 or min(pads) < 0 or group < 1:
            raise self.err(node, f"strides and dilations must be >= 1, pads >= 0 and group >= 1; got strides "
                                 f"{strides}, pads {pads}, dilations {dil}, group {group}")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.err(node, "auto_pad is not supported: give explicit pads")
        if strides[2] != 1 or dil[2] != 1 or pads[2] != 0 or pads[5] != 0:
            raise self.err(node, f"the time axis must be untouched; got strides {strides}, pads {pads}, "
                                 f"dilations {dil}")
        if pads[0:2] != pads[3:5]:
            raise self.err(node, f"asymmetric pads {pads} are not supported (Lava's Conv pads both sides "
                                 "equally); for a SLAYER Pool, use input sizes divisible by the kernel")
        w = w[..., 0]
        parts = self.parts(node, node.input[0])
        if len(parts) > 1:
            if group != 1 or w.shape[1] != sum(sh[0] for _, sh in parts):
                raise self.err(node, "a grouped Conv (or pooling) over a Concat is not supported")
            names, start = [], 0
            for k, (psrcs, sh) in enumerate(parts):
                syn = Conv2d(w[:, start:start + sh[0]], tuple(strides[:2]), tuple(pads[:2]), tuple(dil[:2]), 1)
                names.append(self.add(node, syn, psrcs, f"{node.name or 'conv'}_part{k}"))
                start += sh[0]
            self.values[node.output[0]] = names
            return
        c = shape[0] if len(shape) == 3 else None
        if group > 1 and group == c == w.shape[0] and w.shape[1] == 1 and np.all(w == w.flat[0]) \
                and dil[:2] == [1, 1]:
            syn = SumPool2d(tuple(w.shape[2:]), tuple(strides[:2]), tuple(pads[:2]), float(w.flat[0]))
            base = node.name or "pool"
        else:
            syn = Conv2d(w, tuple(strides[:2]), tuple(pads[:2]), tuple(dil[:2]), group)
            base = node.name or "conv"
        self.values[node.output[0]] = [self.add(node, syn, srcs, base)]

    def op_Reshape(self, node):
        target = [int(v) for v in self.constant(node, node.input[1]).ravel()]
        srcs = self.source(node, node.input[0])
        shape = self._same_shape(node, srcs)
        size = int(np.prod(shape))
        flat = (len(target) == 3 and target[0] == 0 and target.count(-1) <= 1
                and target[1] in (-1, size) and target[2] in (0, -1))
        if not flat:
            raise self.err(node, f"only a flatten Reshape to (N, {size}, T), e.g. [0, -1, 0], is "
                                 f"supported, got {target}")
        if len(shape) == 1:
            self.values[node.output[0]] = srcs
            return
        self.values[node.output[0]] = [self.add(node, Flatten(), srcs, node.name or "flatten")]

    def _bias(self, node, shape, k: int):
        """The bias input ``k`` of a neuron op (0.0 when absent or all zero)."""
        bias = 0.0
        if len(node.input) > k and node.input[k]:
            bias = self.constant(node, node.input[k]).astype(np.float64)
            try:
                bias = np.broadcast_to(bias, shape).copy() if np.any(bias) else 0.0
            except ValueError:
                raise self.err(node, f"bias of shape {bias.shape} does not fit neurons {shape}") from None
        return bias

    def _need(self, node, a, need):
        missing = [k for k in need if k not in a]
        if missing:
            raise self.err(node, f"missing attribute(s) {missing}")

    def _neuron(self, node, shape) -> CubaLIF:
        a = self.attrs(node)
        self._need(node, a, ("current_decay", "voltage_decay", "threshold"))
        bias = self._bias(node, shape, 1 if node.op_type == "CubaLIF" else 2)

        def s(v):
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        f = {k: self.number(node, a, k, float) for k in ("current_decay", "voltage_decay", "threshold")}
        if self.number(node, a, "graded", int, 0):
            raise self.err(node, "graded=1 (a spike carrying v/state_scale) is not supported: no engine runs "
                                 "graded CUBA spikes; export binary spikes (graded=0), or sigma-delta neurons")
        lif = CubaLIF(shape=shape, current_decay=f["current_decay"],
                      voltage_decay=f["voltage_decay"], threshold=f["threshold"],
                      bias=bias, reset=s(a.get("reset", "zero")), refractory=self.number(node, a, "refractory", int, 0),
                      spike_compare=s(a.get("spike_compare", ">")),
                      state_scale=self.number(node, a, "state_scale", int, 0),
                      reset_delay=bool(self.number(node, a, "reset_delay", int, 0)))
        if lif.reset not in RESETS or lif.spike_compare not in (">", ">="):
            raise self.err(node, f"reset must be {'|'.join(RESETS)} and spike_compare >|>=, got "
                                 f"{lif.reset!r}, {lif.spike_compare!r}")
        return lif

    def op_snnc_CubaLI(self, node):
        srcs = self.source(node, node.input[0])
        shape = self._same_shape(node, srcs)
        a = self.attrs(node)
        li = CubaLI(shape=shape, current_decay=self.number(node, a, "current_decay", float),
                    voltage_decay=self.number(node, a, "voltage_decay", float),
                    bias=self._bias(node, shape, 1), state_scale=self.number(node, a, "state_scale", int, 0))
        self.values[node.output[0]] = [self.add(node, li, srcs, node.name or "li")]

    def op_snnc_CubaLIF(self, node):
        srcs = self.source(node, node.input[0])
        lif = self._neuron(node, self._same_shape(node, srcs))
        self.values[node.output[0]] = [self.add(node, lif, srcs, node.name or "lif")]

    def op_snnc_RecurrentCubaLIF(self, node):
        srcs = self.source(node, node.input[0])
        shape = self._same_shape(node, srcs)
        w = self.constant(node, node.input[1]).astype(np.float64)
        if w.shape != (shape[0], shape[0]) or len(shape) != 1:
            raise self.err(node, f"recurrent weight must be [{shape[0]}, {shape[0]}], got {w.shape}")
        base = node.name or "rlif"
        pop = self.add(node, self._neuron(node, shape), srcs, base)
        back = self.add(node, Delay(np.array(1)), [pop], base + "_feedback_delay")
        rec = self.add(node, Dense(w), [back], base + "_recurrent")
        self.g.connect(rec, pop)
        self.values[node.output[0]] = [pop]

    def op_snnc_Delay(self, node):
        srcs = self.source(node, node.input[0])
        raw = self.constant(node, node.input[1]).astype(np.float64)
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)) or np.any(raw < 0):
            raise self.err(node, f"delays must be whole steps >= 0, got {raw.ravel()[:4].tolist()}")
        steps = raw.astype(np.int64)
        self.values[node.output[0]] = [self.add(node, Delay(steps), srcs, node.name or "delay")]


    def op_snnc_GradedInput(self, node):
        srcs = self.source(node, node.input[0])
        k = self.number(node, self.attrs(node), "frac_bits", int, -1)
        if len(srcs) != 1 or not isinstance(self.g.nodes[srcs[0]], Input):
            raise self.err(node, "GradedInput must read a graph input directly")   # (only reader: run())
        if not 0 <= k <= 16:
            raise self.err(node, f"frac_bits must be an int attribute in 0..16, got {k}")
        self.g.replace(srcs[0], dataclasses.replace(self.g.nodes[srcs[0]], kind="graded", frac_bits=k))
        self.values[node.output[0]] = srcs


    def op_snnc_GradedDense(self, node):
        srcs = self.source(node, node.input[1])
        if any(not (isinstance(self.g.nodes[s], Input) and self.g.nodes[s].kind == "graded") for s in srcs):
            raise self.err(node, "GradedDense must read a graded input (the output of snnc.GradedInput)")
        unit = self.number(node, self.attrs(node), "unit", float, 0.0)
        if not unit > 0:
            raise self.err(node, f"attribute unit must be > 0, got {unit}")
        self.op_MatMul(node)
        for d in self.values[node.output[0]]:
            self.graded_dense[d] = (node, unit)

    def check_graded_dense(self):
        """A GradedDense floors at ``unit`` = 64 / S: the population it feeds must have that S."""
        for d, (node, unit) in self.graded_dense.items():
            for p in self.g.successors(d):
                pop = self.g.nodes[p]
                if not isinstance(pop, CubaLIF) or not pop.state_scale or abs(64.0 / pop.state_scale - unit) > 1e-12:
                    raise self.err(node, f"floors at unit {unit:g} but feeds {p!r} "
                                         f"(state_scale {getattr(pop, 'state_scale', None)}): the unit must be "
                                         "64/state_scale of an integer-dynamics CubaLIF")


    def _sd_common(self, node, shape) -> dict:
        """Fields shared by Delta and SigmaDelta: threshold (input 1), scales, cumulative error."""
        a = self.attrs(node)
        th = self.constant(node, node.input[1]).astype(np.float64)
        try:
            th = np.broadcast_to(th, shape).copy() if th.size > 1 else float(th.reshape(-1)[0])
        except (ValueError, IndexError):
            raise self.err(node, f"threshold of shape {th.shape} does not fit neurons {shape}") from None
        return dict(threshold=th, cumulative_error=bool(self.number(node, a, "cumulative_error", int, 0)),
                    state_scale=self.number(node, a, "state_scale", int, 1 << 18),
                    spike_exp=self.number(node, a, "spike_exp", int, 6),
                    state_exp=self.number(node, a, "state_exp", int, 6))

    def op_snnc_Delta(self, node):
        srcs = self.source(node, node.input[0])
        if len(srcs) != 1 or not isinstance(self.g.nodes[srcs[0]], Input):
            raise self.err(node, "a Delta encoder must read a graph input directly (Lava's Delta a_in)")
        shape = self._same_shape(node, srcs)
        self.values[node.output[0]] = [self.add(node, Delta(shape, **self._sd_common(node, shape)), srcs,
                                                node.name or "delta")]

    def op_snnc_SigmaDelta(self, node):
        srcs = self.source(node, node.input[0])
        shape = self._same_shape(node, srcs)
        relu = self.number(node, self.attrs(node), "relu", int, 1)
        if relu not in (0, 1):
            raise self.err(node, f"attribute relu must be 0 or 1, got {relu}")
        sd = SigmaDelta(shape, bias=self._bias(node, shape, 2), activation="relu" if relu else "identity",
                        **self._sd_common(node, shape))
        self.values[node.output[0]] = [self.add(node, sd, srcs, node.name or "sigma_delta")]

    def op_snnc_Sigma(self, node):
        srcs = self.source(node, node.input[0])
        shape = self._same_shape(node, srcs)
        S = self.number(node, self.attrs(node), "state_scale", int, 1 << 18)
        self.values[node.output[0]] = [self.add(node, Sigma(shape, state_scale=S), srcs, node.name or "sigma")]


def import_onnx(path: str) -> Graph:
    """ONNX file (snnc dialect) -> checked IR graph. Raises SnncError naming node and op."""
    model = load_onnx(path)
    return _Importer(model, path).run()
