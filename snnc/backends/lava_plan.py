"""IR graph -> a plain description of the Lava network (no Lava import here).

The plan is computed in the calling process (so that unsupported IR raises ``SnncError`` at
once) and handed to the worker (``lava_worker``), which only instantiates Lava processes.

Mapping (see docs in ``lava_backend``):
- populations: every ``Input`` (a RingBuffer source) and every ``CubaLIF`` (a Lava ``LIF``,
  ``LIFRefractory`` or ``LIFReset``; reset "subtract"/"none", per-neuron decays, or a refractory
  period with a periodic reset: snnc's ``lava_neurons.LIFResetRule``) and ``CubaLI`` (snnc's
  ``lava_neurons.LeakyIntegrator``, which sends v: the host records it as the read-out);
  a population with no input (bias-driven) gets a zero-weight Dense from the input, so that
  Lava compiles it and its step 0 is aligned (offset 1, bias gated before);
  a (C, H, W) population lives in Lava's (x, y, f) = (W, H, C) layout, a 1-D one as is;
- connections: one Lava synapse (Dense / DelayDense / Conv) per path
  ``population -> [Delay | Flatten]* -> synapse -> [Delay]* -> CubaLIF``;
- timing: each population P gets a Lava start offset o(P) (IR step t of P runs at Lava step
  t + o(P), counting Lava steps from 0). A Lava synapse adds one step, so a connection whose
  IR delay is d needs e = o(dst) - o(src) + d - 1 >= 0 extra steps (DelayDense); offsets are the
  smallest that satisfy every connection (longest path, cycles need d >= 1).

Options (CPU simulation speed; the defaults of ``plan_lava`` are the hardware plan):
- ``conv_as``: ``"conv"`` (default here; Lava ``Conv`` processes, what Loihi runs), ``"dense"``
  (every Conv2d/SumPool2d connection becomes a Lava ``Dense`` with the materialized weight matrix
  in Lava's flat (x, y, f) layout; raises if that cannot be exact) or ``"auto"`` (``"dense"``
  where it is exact and the matrix has at most ``DENSE_CONV_MAX_ENTRIES`` entries, else
  ``"conv"``). Exactness in fixed_pt: Lava's fixed Conv uses its weights as they are and wraps
  its output to 24 bits signed; Dense clips/truncates weights by sign mode and does not wrap. The
  lowering is used only when every weight is an exact 8-bit Dense weight (``_check_dense_weights``
  with 8 bits) and the largest possible |input| of any neuron (sum of |w| over its fan-in) is
  below 2**23, so neither step can change a value: the spikes are identical. In floating_pt both
  compute the float64 sum of the weights of the spiking inputs, in a different order (identical
  whenever those sums are exact, e.g. weights that are multiples of 2**-k of moderate size).
- ``io``: ``"ringbuffer"`` (default here; io ``RingBuffer`` source/sinks, input set and spikes
  read through ``Var.set``/``Var.get``) or ``"channels"`` (io ``Injector``/``Extractor``: whole
  vectors per step over a channel; Lava's Var get/set moves one element per message, which made
  the ringbuffer sinks dominate the CPU run time). ``run_lava`` uses ``"auto"``/``"channels"``.

Periodic reset (``CubaLIF.reset_interval`` R > 0, ``reset_offset`` r): a Lava ``LIFReset`` (or
``LIFResetRule`` with the same rule), which
zeroes u and v before integrating at Lava ``time_step`` (1-based, never restarted between
samples) ``time_step % R == offset``. IR step t of population P of sample i runs at
``time_step = i*L + t + o(P) + 1``, so the Lava offset is ``(r + o(P) + 1) % R`` provided L is a
multiple of R: ``run_steps`` is rounded up to a multiple of the least common multiple of all
intervals (the extra steps run with zero input and are cropped). Resets in the leading steps
[0, o(P)) act on a zero state (no input reaches P before its step 0, its bias is gated): exact.

Bias input (``Input(kind="bias")``): it is not a Lava process; each population it feeds gets,
per sample, ``bias_mant`` = (its own bias + the input's value in state units) >> e, with one
exponent e (0..7) per population chosen over the batch so that every value is exact in Loihi's
13-bit signed mantissa (``bias_drive``). The input must be constant over the time steps of each
sample (netx sets ``bias_mant`` once per sample); anything else is refused.

Outputs: every ``Output`` is computed on the host from the recorded spikes of the populations
(and the input) through Delay / Flatten / Average nodes (``OutputPlan.program``), as the
reference simulator computes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import math

import numpy as np

from ..compiler.conv import conv_matrix  # noqa: F401  (re-exported)
from ..compiler.fixed import FixedCubaLI, FixedCubaLIF, FixedSynapse, state_scale
from ..compiler.ir import (Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                           SumPool2d, _pair)
from ..errors import SnncError

MAX_DELAY = 62          # Loihi 2 synaptic delay limit as used by netx (DelayDense accepts <= 63)
DENSE_CONV_MAX_ENTRIES = 4 * 1024 * 1024    # conv_as="auto": largest materialized matrix
CONV_AS = ("conv", "dense", "auto")
IO = ("ringbuffer", "channels")
MAX_RESET_PAD = 4096    # largest least common multiple of reset intervals padded to per sample
BIAS_MANT_MAX = 4095    # Loihi's bias mantissa: 13-bit signed
BIAS_EXP_MAX = 7        # ... and its 3-bit exponent


# ----------------------------------------------------------------------------- layouts
def lava_shape(shape) -> Tuple[int, ...]:
    """IR (C, H, W) -> Lava (W, H, C); 1-D unchanged."""
    shape = tuple(int(s) for s in shape)
    return shape[::-1] if len(shape) == 3 else shape


def to_lava(x: np.ndarray, ndim: int) -> np.ndarray:
    """Per-neuron array with IR neuron axes first (``ndim`` of them, then any trailing axes)."""
    if ndim == 3:
        return np.ascontiguousarray(np.moveaxis(x, (0, 1, 2), (2, 1, 0)))
    return np.ascontiguousarray(x)


def from_lava(x: np.ndarray, ndim: int) -> np.ndarray:
    """Inverse of ``to_lava`` (the axis swap C<->W is its own inverse)."""
    return to_lava(x, ndim)


def flat_perm(shape) -> np.ndarray:
    """perm[k] = IR flat (C-order of C,H,W) index of the neuron at Lava flat position k."""
    n = int(np.prod(shape))
    if len(shape) != 3:
        return np.arange(n)
    return np.arange(n).reshape(shape).transpose(2, 1, 0).ravel()


# ----------------------------------------------------------------------------- plan types
@dataclass
class PopPlan:
    name: str
    kind: str                       # "input" | "lif" | "li" (CubaLI read-out: records v)
    shape: Tuple[int, ...]          # IR shape
    offset: int = 0
    # LIF parameters (Lava's own, already in Lava layout where per neuron)
    du: float = 0.0
    dv: float = 0.0
    vth: float = 0.0
    bias_mant: Optional[np.ndarray] = None
    bias_exp: int = 0
    gate_bias: bool = False         # bias is held at 0 during the leading steps [0, offset)
    reset_interval: int = 0         # > 0: a Lava LIFReset with this interval ...
    reset_offset: int = 0           # ... and this Lava offset (time_step % interval == offset)
    bias_input: str = ""            # name of the bias-kind Input added to this bias per sample
    bias_scale: int = 0             # fixed mode: state units per threshold unit of that input
    refractory: int = 0             # > 0: v held at 0 for this many steps after a spike
    reset: str = "zero"             # CubaLIF.reset ("subtract"/"none": lava_neurons.LIFResetRule)
    reset_delay: bool = False       # CubaLIF.reset_delay
    out_scale: float = 1.0          # "li": recorded v times this is the read-out (fixed: 1/S)

    @property
    def lshape(self):
        return lava_shape(self.shape)


@dataclass
class ConnPlan:
    name: str
    kind: str                       # "dense" | "conv"
    src: str
    dst: str
    weight: np.ndarray              # Lava form: dense [out, in(lava order)]; conv (out, kw, kh, in/g)
    delays: Optional[np.ndarray] = None   # dense only: [out, in] extra steps, None = all zero
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0       # > 0: graded integer messages from a graded Input (W @ s)
    # conv only (Lava (x, y) order)
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    src_flatten: bool = False       # dense fed by a (C,H,W) population: connect s_out.flatten()
    dst_reshape: bool = False       # dense into a (C,H,W) population: a_out.reshape(dst lshape)
    lowered_from: str = ""          # "conv" when a Conv2d/SumPool2d runs as this Dense


@dataclass
class OutputPlan:
    """A graph Output computed on the host: ``program`` lists (node, kind, arg, predecessors) in
    evaluation order; kind "pop" (recorded spikes of a population, or the input's data),
    "delay" (arg: steps over the node's input shape), "flatten", "average" (arg: groups),
    "output". The value of a node with several predecessors is their sum."""
    name: str
    shape: Tuple[int, ...]
    program: List[Tuple[str, str, object, List[str]]]


@dataclass
class LavaPlan:
    mode: str
    steps: int                      # T (IR steps)
    run_steps: int                  # L (Lava steps per sample)
    pops: Dict[str, PopPlan] = field(default_factory=dict)
    conns: List[ConnPlan] = field(default_factory=list)
    output: Optional[OutputPlan] = None               # the first of ``outputs``
    outputs: List[OutputPlan] = field(default_factory=list)
    input_name: str = ""
    input_kind: str = "spikes"      # "spikes" | "graded" (a Lava source) | "bias" (see module doc)
    root: str = ""                  # the process Lava runs (the source, or a bias-fed population)
    io: str = "ringbuffer"          # see module doc


# ----------------------------------------------------------------------------- helpers
def _err(name: str, node, msg: str) -> SnncError:
    return SnncError(f"Lava backend: node {name!r} ({type(node).__name__}): {msg}")


def _uniform(name, node, what, value) -> float:
    a = np.asarray(value)
    if a.size > 1 and not np.all(a == a.flat[0]):
        raise _err(name, node, f"per-neuron {what} is not supported by Lava's LIF (a single value "
                               "per population)")
    return a.flat[0].item() if a.size else 0


def _decays(fx, shape):
    """Lava's ``du`` (= decay_u - 1) and ``dv``: ints, or per-neuron arrays in Lava's layout (run by
    snnc's ``lava_neurons.LIFResetRule``, whose du/dv are per-neuron Vars)."""
    du, dv = np.asarray(fx.decay_u, np.int64) - 1, np.asarray(fx.decay_v, np.int64)
    if du.ndim == 0 and dv.ndim == 0:
        return int(du), int(dv)
    return tuple(to_lava(np.array(np.broadcast_to(d, shape)), len(shape)) for d in (du, dv))


def _float_decays(node, shape):
    """Lava's float ``du``/``dv``: floats, or per-neuron arrays in Lava's layout (snnc's models)."""
    out = []
    for d in (node.current_decay, node.voltage_decay):
        a = np.asarray(d, np.float64)
        uniform = a.size <= 1 or bool(np.all(a == a.flat[0]))
        out.append(float(a.flat[0]) if uniform else to_lava(np.array(np.broadcast_to(a, shape)), len(shape)))
    return tuple(out)


def _delay_over(steps, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(steps, dtype=np.int64), shape)


def _trace_back(graph: Graph, start: str, shapes: Dict[str, tuple]):
    """All paths from ``start`` back through Delay/Flatten nodes to a population.

    Returns a list of (population, delay array over the population's IR shape, flattened).
    """
    out = []

    def walk(name: str, chain: List[str]):
        node = graph.nodes[name]
        if isinstance(node, Input) and node.kind not in ("spikes", "graded"):
            raise _err(name, node, f"a {node.kind!r} input may feed only CubaLIF populations "
                                   f"directly, not synapse {start!r}")
        if isinstance(node, (Input, CubaLIF)):
            pshape = tuple(shapes[name])
            total = np.zeros(pshape, dtype=np.int64)
            flattened = False
            for n in reversed(chain):           # forward order from the population
                nd = graph.nodes[n]
                if isinstance(nd, Flatten):
                    flattened = True
                else:
                    at = (int(np.prod(pshape)),) if flattened else pshape
                    try:
                        total = total + _delay_over(nd.steps, at).reshape(pshape)
                    except ValueError:
                        raise _err(n, nd, f"delay steps {np.shape(nd.steps)} do not fit {at}") from None
            if np.any(total < 0):
                raise _err(chain[-1] if chain else name, node, "negative delay")
            out.append((name, total, flattened))
            return
        if isinstance(node, (Delay, Flatten)):
            preds = graph.predecessors(name)
            if not preds:
                raise _err(name, node, "has no input")
            for p in preds:
                walk(p, chain + [name])
            return
        raise _err(name, node, f"feeds {start!r} directly; the Lava backend needs a spiking "
                               "population (Input or CubaLIF) before every synapse and output")

    for p in graph.predecessors(start):
        walk(p, [])
    if not out:
        raise SnncError(f"Lava backend: node {start!r} has no input")
    return out


def _trace_forward(graph: Graph, syn: str):
    """Paths from synapse ``syn`` forward through Delay/Flatten to CubaLIF populations.

    Returns a list of (population, delay array over the synapse's output shape, flattened).
    """
    out = []

    def walk(name: str, chain: List[str]):
        node = graph.nodes[name]
        if isinstance(node, (CubaLIF, CubaLI)):
            out.append((name, chain))
            return
        if isinstance(node, (Delay, Flatten)):
            for s in graph.successors(name):
                walk(s, chain + [name])
            return
        raise _err(name, node, f"is fed by synapse {syn!r}; the Lava backend supports a synapse "
                               "only directly (or through Delay) into a CubaLIF population")

    for s in graph.successors(syn):
        walk(s, [])
    return out


def _node_shapes(graph: Graph) -> Dict[str, tuple]:
    """Output shape of every node (minimal, self-contained: populations carry their shapes)."""
    shapes: Dict[str, tuple] = {}
    for k, v in graph.nodes.items():
        if isinstance(v, (Input, Output, CubaLIF, CubaLI)):
            shapes[k] = tuple(v.shape)
    pending = [k for k in graph.nodes if k not in shapes]
    while pending:
        progress = False
        for k in list(pending):
            preds = graph.predecessors(k)
            if not preds:
                raise SnncError(f"Lava backend: node {k!r} has no input")
            if all(p in shapes for p in preds):
                try:
                    shapes[k] = tuple(graph.nodes[k].output_shape(shapes[preds[0]]))
                except Exception as e:  # ShapeError
                    raise _err(k, graph.nodes[k], str(e)) from None
                pending.remove(k)
                progress = True
        if not progress:
            raise SnncError(f"Lava backend: cannot infer the shapes of {pending}")
    return shapes


# ----------------------------------------------------------------------------- planning
def plan_lava(graph: Graph, steps: int, mode: str = "fixed", conv_as: str = "conv",
              io: str = "ringbuffer") -> LavaPlan:
    """The Lava plan of ``graph`` for ``steps`` IR steps; ``conv_as``/``io``: see module doc."""
    if mode not in ("fixed", "float"):
        raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
    if conv_as not in CONV_AS:
        raise ValueError(f"conv_as must be one of {CONV_AS}, got {conv_as!r}")
    if io not in IO:
        raise ValueError(f"io must be one of {IO}, got {io!r}")
    if len(graph.inputs) != 1 or not graph.outputs:
        raise SnncError(f"Lava backend: needs exactly one Input and at least one Output, got "
                        f"inputs {graph.inputs} and outputs {graph.outputs}")
    shapes = _node_shapes(graph)
    plan = LavaPlan(mode=mode, steps=int(steps), run_steps=0, input_name=graph.inputs[0], io=io)

    # populations and their parameters
    for name, node in graph.nodes.items():
        if isinstance(node, Input):
            if node.kind in ("spikes", "graded"):
                plan.pops[name] = PopPlan(name, "input", tuple(node.shape))
            elif node.kind != "bias":
                raise _err(name, node, f"input kind {node.kind!r} is not supported by the Lava backend")
        elif isinstance(node, CubaLIF):
            plan.pops[name] = _lif_plan(graph, name, node, mode)
        elif isinstance(node, CubaLI):
            plan.pops[name] = _li_plan(graph, name, node, mode)
        elif not isinstance(node, (Output, Dense, Conv2d, SumPool2d, Flatten, Delay, Average)):
            raise _err(name, node, "node type not supported by the Lava backend")
    inode = graph.nodes[plan.input_name]
    plan.input_kind = inode.kind
    if inode.kind == "graded" and mode == "fixed":
        plan.io = "ringbuffer"      # the io Injector sends floats; the fixed RingBuffer sends int32
    plan.root = plan.input_name
    if inode.kind == "bias":
        fed = [d for s_, d in graph.edges if s_ == plan.input_name]
        for d in fed:
            dn = graph.nodes[d]
            if isinstance(dn, Output):
                continue
            if not isinstance(dn, CubaLIF) or tuple(dn.shape) != tuple(inode.shape):
                raise _err(plan.input_name, inode, f"a bias input may feed only CubaLIF populations "
                                                   f"of its shape {tuple(inode.shape)} directly, not {d!r}")
            pp = plan.pops[d]
            pp.bias_input = plan.input_name
            if mode == "fixed":
                pp.bias_scale = state_scale(graph, d)
        roots = [d for d in fed if d in plan.pops]
        if not roots:
            raise _err(plan.input_name, inode, "the bias input feeds no population")
        plan.root = roots[0]

    # connections: (src, syn, dst, pre-delay over src shape, post-delay over syn out shape, flatten)
    raw = []
    for name, node in graph.nodes.items():
        if not isinstance(node, (Dense, Conv2d, SumPool2d)):
            continue
        if mode == "fixed" and name not in graph.fixed:
            raise SnncError(f"Lava backend: fixed-point run needs the quantization pass first "
                            f"(no fixed view for node {name!r})")
        ins = _trace_back(graph, name, shapes)
        outs = _trace_forward(graph, name)
        for dst, chain in outs:
            post = np.zeros(shapes[name], dtype=np.int64)
            for n in chain:
                nd = graph.nodes[n]
                if isinstance(nd, Flatten):
                    if len(shapes[name]) != 1:
                        raise _err(n, nd, "a Flatten after a convolution (before a population) is "
                                          "not supported by the Lava backend")
                else:
                    post = post + _delay_over(nd.steps, shapes[name])
            for src, pre, flat in ins:
                raw.append((src, name, dst, pre, post, flat))
    raw += _bias_only_connections(graph, plan, shapes)

    # offsets: o(dst) >= o(src) + 1 - min(d) for every connection (Bellman-Ford longest path)
    off = {p: 0 for p in plan.pops}
    mind = [(src, dst, int(pre.min()) + int(post.min())) for src, _, dst, pre, post, _ in raw]
    for it in range(len(off) + 1):
        changed = False
        for src, dst, d in mind:
            need = off[src] + 1 - d
            if need > off[dst]:
                off[dst] = need
                changed = True
        if not changed:
            break
    else:
        raise SnncError("Lava backend: the graph has a cycle whose delay is too short for Lava "
                        "(every cycle needs at least one step of delay per synapse)")
    for p, o in off.items():
        plan.pops[p].offset = o
        pp = plan.pops[p]
        pp.gate_bias = pp.kind in ("lif", "li") and o > 0 and (bool(pp.bias_input) or
                                                       bool(np.any(np.asarray(pp.bias_mant) != 0)))
        if pp.reset_interval:
            pp.reset_offset = (pp.reset_offset + o + 1) % pp.reset_interval

    # Lava synapses
    for i, (src, syn, dst, pre, post, flat) in enumerate(raw):
        extra = off[dst] - off[src] - 1            # e = that + d
        if syn is None:                            # a bias-driven population's zero link
            plan.conns.append(_zero_link(plan, src, dst, mode))
            continue
        plan.conns.append(_conn_plan(graph, f"{syn}#{i}", syn, src, dst, pre, post, extra,
                                     shapes, mode, conv_as))

    # Lava compiles what is connected to the process it runs (the input source or, for a bias
    # input, the first population it feeds)
    reached, frontier = {plan.root}, [plan.root]
    while frontier:
        p = frontier.pop()
        for c in plan.conns:
            for a, b in ((c.src, c.dst), (c.dst, c.src)):
                if a == p and b not in reached:
                    reached.add(b)
                    frontier.append(b)
    lost = [p for p in plan.pops if p not in reached]
    if lost:
        raise SnncError(f"Lava backend: populations {lost} are not connected to "
                        f"{plan.root!r}, the process Lava runs (Lava compiles only the processes "
                        "connected to it)")

    # outputs (host side)
    plan.outputs = [_output_plan(graph, o, shapes, plan) for o in graph.outputs]
    plan.output = plan.outputs[0]

    # run length: T + the largest offset, a multiple of every reset interval (module doc)
    L = int(steps) + max(off.values(), default=0)
    intervals = sorted({pp.reset_interval for pp in plan.pops.values() if pp.reset_interval})
    if intervals:
        period = 1
        for r in intervals:
            period = period * r // math.gcd(period, r)
        if period > max(MAX_RESET_PAD, L):
            who = [p for p, pp in plan.pops.items() if pp.reset_interval]
            raise SnncError(f"Lava backend: populations {who} reset with intervals {intervals}, "
                            f"whose least common multiple {period} is more than the "
                            f"{max(MAX_RESET_PAD, L)} steps snnc pads a Lava run to (Lava's reset "
                            "phase follows its global time step, so every sample must last a "
                            "multiple of it)")
        L = -(-L // period) * period
    plan.run_steps = L
    return plan


def _output_plan(graph: Graph, oname: str, shapes, plan: LavaPlan) -> OutputPlan:
    """The host computation of Output ``oname`` from the recorded populations (module doc)."""
    program: List[Tuple[str, str, object, List[str]]] = []
    done, visiting = set(), set()

    def visit(name: str):
        if name in done:
            return
        node = graph.nodes[name]
        if name in visiting:
            raise _err(name, node, f"is on a cycle without a population (on the way to {oname!r})")
        visiting.add(name)
        preds = graph.predecessors(name)
        if name in plan.pops or isinstance(node, Input):
            program.append((name, "pop", None, []))
        elif isinstance(node, (Delay, Flatten, Average, Output)):
            if not preds:
                raise _err(name, node, "has no input")
            for p in preds:
                visit(p)
            if isinstance(node, Delay):
                ins = tuple(shapes[preds[0]])
                try:
                    arg = np.array(_delay_over(node.steps, ins))
                except ValueError:
                    raise _err(name, node, f"delay steps {np.shape(node.steps)} do not fit {ins}") from None
                if np.any(arg < 0):
                    raise _err(name, node, "negative delay")
                program.append((name, "delay", arg, preds))
            elif isinstance(node, Flatten):
                program.append((name, "flatten", None, preds))
            elif isinstance(node, Average):
                program.append((name, "average", int(node.groups), preds))
            else:
                program.append((name, "output", None, preds))
        else:
            raise _err(name, node, f"feeds output {oname!r}; the Lava backend computes outputs on "
                                   "the host from populations through Delay, Flatten and Average "
                                   "only (put a CubaLIF population after a synapse)")
        done.add(name)

    visit(oname)
    return OutputPlan(oname, tuple(graph.nodes[oname].shape), program)


def _bias_only_connections(graph: Graph, plan: LavaPlan, shapes):
    """(src, None, dst, pre, post, False) for every population with no incoming edge: a zero link
    from the spike input (Lava compiles only what is connected to the process it runs)."""
    orphans = [k for k, v in graph.nodes.items() if isinstance(v, (CubaLIF, CubaLI)) and not graph.predecessors(k)]
    if not orphans:
        return []
    if plan.input_kind not in ("spikes", "graded") and graph.nodes[plan.input_name].kind == "bias":
        raise SnncError(f"Lava backend: populations {orphans} have no input and the graph's input is a bias "
                        "input; connect them to a spike input")
    src = plan.input_name
    zero = np.zeros(shapes[src], dtype=np.int64)
    return [(src, None, d, zero, np.zeros(shapes[d], dtype=np.int64), False) for d in orphans]


def _zero_link(plan: LavaPlan, src: str, dst: str, mode: str) -> ConnPlan:
    """A Lava Dense of zero weights from ``src`` into ``dst`` (it never adds anything)."""
    n_in = int(np.prod(plan.pops[src].shape))
    n_out = int(np.prod(plan.pops[dst].shape))
    w = np.zeros((n_out, n_in), dtype=np.int64 if mode == "fixed" else np.float64)
    return ConnPlan(f"{dst}#bias_only_link", "dense", src, dst, w,
                    src_flatten=len(plan.pops[src].shape) > 1, dst_reshape=len(plan.pops[dst].shape) > 1)


def _li_plan(graph: Graph, name: str, node: CubaLI, mode: str) -> PopPlan:
    """A CubaLI read-out: Lava LIF parameters (no threshold) and the scale of its recorded v."""
    shape = tuple(node.shape)
    pp = PopPlan(name, "li", shape)
    if mode == "fixed":
        fx = graph.fixed.get(name)
        if not isinstance(fx, FixedCubaLI):
            raise SnncError(f"Lava backend: fixed-point run needs the quantization pass first "
                            f"(no fixed view for node {name!r})")
        pp.du, pp.dv = _decays(fx, shape)        # per neuron: Vars of snnc's LeakyIntegrator
        bias = np.broadcast_to(np.asarray(fx.bias_mant, dtype=np.int64), shape)
        pp.bias_exp = int(fx.bias_exp)
        pp.out_scale = 1.0 / float(state_scale(graph, name))
    else:
        pp.du, pp.dv = _float_decays(node, shape)      # per neuron: snnc's LeakyIntegrator
        bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64), shape)
    pp.bias_mant = to_lava(np.array(bias), len(shape))
    return pp


def _lif_plan(graph: Graph, name: str, node: CubaLIF, mode: str) -> PopPlan:
    if node.graded:
        raise _err(name, node, "graded spikes are not supported by the Lava backend")
    shape = tuple(node.shape)
    pp = PopPlan(name, "lif", shape)
    pp.reset, pp.reset_delay = node.reset, bool(node.reset_delay) and node.reset == "subtract"
    if node.refractory:            # Lava LIFRefractory, or snnc's lava_neurons.LIFResetRule
        pp.refractory = int(node.refractory)
    if node.reset_interval:
        if int(node.reset_interval) < 0:
            raise _err(name, node, f"reset_interval {node.reset_interval} < 0")
        pp.reset_interval = int(node.reset_interval)
        pp.reset_offset = int(node.reset_offset) % pp.reset_interval   # IR phase; see plan_lava
    if mode == "fixed":
        fx = graph.fixed.get(name)
        if not isinstance(fx, FixedCubaLIF):
            raise SnncError(f"Lava backend: fixed-point run needs the quantization pass first "
                            f"(no fixed view for node {name!r})")
        pp.du, pp.dv = _decays(fx, shape)        # per neuron: snnc's lava_neurons.LIFResetRule
        pp.vth = int(_uniform(name, node, "threshold", fx.vth))
        if pp.vth < 0:
            raise _err(name, node, "negative threshold")
        bias = np.broadcast_to(np.asarray(fx.bias_mant, dtype=np.int64), shape)
        pp.bias_exp = int(fx.bias_exp)
    else:
        # Lava's float LIF compares v > vth; a '>=' model differs only on exact ties (float mode
        # is reported, not asserted)
        pp.du, pp.dv = _float_decays(node, shape)      # per neuron: snnc's LIFResetRule
        pp.vth = float(_uniform(name, node, "threshold", node.threshold))
        bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64), shape)
        pp.bias_exp = 0
    pp.bias_mant = to_lava(np.array(bias), len(shape))
    return pp


def _conn_plan(graph, cname, syn, src, dst, pre, post, extra, shapes, mode, conv_as="conv") -> ConnPlan:
    node = graph.nodes[syn]
    sshape = tuple(shapes[src])
    fx = graph.fixed.get(syn) if mode == "fixed" else None
    if mode == "fixed" and not isinstance(fx, FixedSynapse):
        raise SnncError(f"Lava backend: fixed-point run needs the quantization pass first "
                        f"(no fixed view for node {syn!r})")
    if isinstance(node, Dense):
        w = np.asarray(fx.weight if fx is not None else node.weight)
        w = w.astype(np.int64) if fx is not None else w.astype(np.float64)
        delays = post.reshape(-1, 1) + pre.reshape(1, -1) + extra          # [out, in] IR order
        if len(sshape) == 3:
            perm = flat_perm(sshape)
            w, delays = w[:, perm], delays[:, perm]
        if delays.min() < 0:
            raise _err(syn, node, "internal error: negative Lava delay")
        if delays.max() > MAX_DELAY:
            raise _err(syn, node, f"needs a synaptic delay of {int(delays.max())} steps; Loihi "
                                  f"supports at most {MAX_DELAY}")
        cp = ConnPlan(cname, "dense", src, dst, np.ascontiguousarray(w),
                      delays=np.ascontiguousarray(delays) if delays.max() > 0 else None,
                      src_flatten=len(sshape) == 3)
        if fx is not None:
            cp.weight_exp, cp.num_weight_bits = int(fx.weight_exp), int(fx.num_weight_bits)
            _check_dense_weights(syn, node, cp)
        if isinstance(graph.nodes[src], Input) and graph.nodes[src].kind == "graded":
            if cp.delays is not None:
                raise _err(syn, node, "a graded input through a delayed synapse is not supported")
            if fx is not None and not fx.num_message_bits:
                raise _err(syn, node, "reads a graded input but its fixed view takes binary spikes")
            cp.num_message_bits = int(fx.num_message_bits) if fx is not None else 24
        return cp
    # Conv2d / SumPool2d: Lava Conv has no delay, so every extra step must be zero
    total = np.unique(np.unique(post).reshape(-1, 1) + np.unique(pre).reshape(1, -1) + extra)
    if total.size != 1 or total[0] != 0:
        raise _err(syn, node, "a convolution whose connection needs extra delay (axonal delay or "
                              "unequal path timing) is not supported by Lava's Conv process")
    if len(sshape) != 3:
        raise _err(syn, node, f"convolution input must be (C, H, W), got {sshape}")
    if isinstance(node, Conv2d):
        w = np.asarray(fx.weight if fx is not None else node.weight)
        stride, padding, dilation, groups = (_pair(node.stride), _pair(node.padding),
                                             _pair(node.dilation), int(node.groups))
    else:
        c = sshape[0]
        scalar = np.asarray(fx.weight if fx is not None else node.weight)
        if scalar.size != 1:
            raise _err(syn, node, "SumPool2d needs a scalar weight")
        w = np.full((c, 1) + _pair(node.kernel), scalar.item())
        stride, padding, dilation, groups = _pair(node.stride), _pair(node.padding), (1, 1), c
    w = w.astype(np.int64) if fx is not None else w.astype(np.float64)
    if fx is not None and int(fx.weight_exp) != 0:
        raise _err(syn, node, f"weight_exp {fx.weight_exp} != 0 is not supported (Lava's Conv "
                              "fixed-point model ignores the weight exponent)")
    if conv_as != "conv":
        cp = _conv_as_dense(syn, node, cname, src, dst, w, sshape, tuple(shapes[syn]), stride,
                            padding, dilation, groups, fx is not None, conv_as)
        if cp is not None:
            return cp
    lw = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))   # (out, kw, kh, in/g)
    return ConnPlan(cname, "conv", src, dst, lw, stride=stride[::-1], padding=padding[::-1],
                    dilation=dilation[::-1], groups=groups)




def _conv_as_dense(syn, node, cname, src, dst, w, sshape, oshape, stride, padding, dilation,
                   groups, fixed: bool, conv_as: str) -> Optional[ConnPlan]:
    """A Lava Dense that computes exactly what Lava's Conv would (module doc), or None (auto)."""
    def refuse(why):
        if conv_as == "dense":
            raise _err(syn, node, f"conv_as='dense' cannot be exact: {why}")
        return None

    entries = int(np.prod(oshape)) * int(np.prod(sshape))
    if conv_as == "auto" and entries > DENSE_CONV_MAX_ENTRIES:
        return None
    m = conv_matrix(w, sshape, oshape, stride, padding, dilation, groups)
    m = np.ascontiguousarray(m[flat_perm(oshape)][:, flat_perm(sshape)])
    cp = ConnPlan(cname, "dense", src, dst, m, src_flatten=True, dst_reshape=True,
                  lowered_from="conv")
    if fixed:
        cp.weight_exp, cp.num_weight_bits = 0, 8
        fan = int(np.abs(m).sum(axis=1).max()) if m.size else 0
        if fan >= 1 << 23:
            return refuse(f"a neuron's input can reach {fan} >= 2**23, where Lava's Conv wraps to "
                          "24 bits and Dense does not")
        try:
            _check_dense_weights(syn, node, cp)
        except SnncError as e:
            return refuse(str(e))
    return cp


def _check_dense_weights(syn, node, cp: ConnPlan):
    """Lava's fixed Dense clips to 8 bits and truncates to ``num_weight_bits`` in the sign mode
    it determines from the weights (excitatory / inhibitory / mixed); refuse weights this would
    change, so that Lava runs exactly ``graph.fixed``."""
    w = cp.weight
    if w.min() >= 0:                       # excitatory: [0, 255]
        m, lo, hi, t = w, 0, 255, 8 - cp.num_weight_bits
    elif w.max() <= 0:                     # inhibitory: [-255, 0], truncated on the magnitude
        m, lo, hi, t = -w, 0, 255, 8 - cp.num_weight_bits
    else:                                  # mixed: [-256, 255], one bit for the sign
        m, lo, hi, t = w, -256, 255, 8 - cp.num_weight_bits + 1
    if t < 0 or m.min() < lo or m.max() > hi or np.any((m >> t) << t != m):
        raise _err(syn, node, f"fixed weights [{int(w.min())}..{int(w.max())}] are not exact "
                              f"{cp.num_weight_bits}-bit Loihi weights (Lava's Dense would clip or "
                              "truncate them)")


# ----------------------------------------------------------------------------- bias input
def bias_drive(plan: LavaPlan, x: np.ndarray) -> Dict[str, Tuple[int, np.ndarray]]:
    """Per-sample biases of the populations fed by a bias-kind input (module doc).

    ``x``: the input's values ``(N, *shape, T)`` in threshold units. Returns
    ``{population: (bias_exp, bias_mant (N, *lava_shape))}``; {} for a spike input. Raises
    ``SnncError`` when a value changes over time within a sample or cannot be exact.
    """
    if plan.input_kind != "bias":
        return {}
    x = np.asarray(x, dtype=np.float64)
    fed = [p for p in plan.pops.values() if p.bias_input == plan.input_name]
    names = [p.name for p in fed]
    if x.shape[-1] and not np.all(x == x[..., :1]):
        t = int(np.argmax(np.any((x != x[..., :1]).reshape(-1, x.shape[-1]), axis=0)))
        raise SnncError(f"Lava backend: bias input {plan.input_name!r} (feeding {names}) changes "
                        f"over time within a sample (first at step {t}); the Lava backend sets a "
                        "population's bias once per sample, as netx does, so the input must be "
                        "constant over the time steps of each sample (the reference backend runs "
                        "any input)")
    d0 = x[..., 0]
    out: Dict[str, Tuple[int, np.ndarray]] = {}
    for p in fed:
        nd = len(p.shape)
        if plan.mode == "float":
            static = np.asarray(p.bias_mant, dtype=np.float64)
            total = static[None] + np.stack([to_lava(s, nd) for s in d0])
            out[p.name] = (0, total)
            continue
        d = d0 * p.bias_scale
        if not np.all(d == np.round(d)):
            raise SnncError(f"Lava backend: population {p.name!r}: bias input is not a multiple of "
                            f"1/{p.bias_scale} (the population's state unit)")
        m, e = np.asarray(p.bias_mant, dtype=np.int64), int(p.bias_exp)
        static = m << e if e >= 0 else m >> -e
        total = static[None] + np.stack([to_lava(s, nd) for s in d.astype(np.int64)])
        for exp in range(BIAS_EXP_MAX + 1):
            mant = total >> exp
            if np.array_equal(mant << exp, total) and np.all(np.abs(mant) <= BIAS_MANT_MAX) \
                    and np.all(mant >= -BIAS_MANT_MAX - 1):
                out[p.name] = (exp, mant)
                break
        else:
            raise SnncError(f"Lava backend: population {p.name!r}: its bias plus the bias input "
                            f"(state units {int(total.min())}..{int(total.max())}) is not a "
                            f"13-bit Loihi bias mantissa times 2**e for any e in 0..{BIAS_EXP_MAX}")
    return out
