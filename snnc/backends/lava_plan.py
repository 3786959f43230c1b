"""The lowered network -> a plain description of the Lava network (no Lava import here).

``plan_lava(graph, steps, mode, conv_as, io)`` reads ``compiler.lower.lower(graph)`` (the one
walk of the graph) and is computed in the calling process (so that unsupported IR raises
``SnncError`` at once); the worker (``lava_worker``) only instantiates Lava processes. The
hardware path (``loihi_hw``) runs this same plan with the same defaults; only its run
configuration differs.

Mapping (see docs in ``lava_backend``):
- populations (``Network.populations``): every ``Input`` (a RingBuffer/Injector source), every
  ``CubaLIF`` (a Lava ``LIF``, ``LIFRefractory`` or ``LIFReset``; reset "subtract"/"none",
  per-neuron decays, or a refractory period with a periodic reset: snnc's
  ``lava_neurons.LIFResetRule``),
  ``CubaLI`` (snnc's ``lava_neurons.LeakyIntegrator``, which sends v: the host records it as the
  read-out) and the sigma-delta kinds ``"delta"``, ``"sigma_delta"``, ``"sigma"`` (Lava's
  ``lava.proc.sdn`` ``Delta`` / ``SigmaDelta`` / ``Sigma`` with the integers of ``graph.fixed``;
  fixed point only; their graded messages are recorded as values, integers / message scale);
  a population with no input (bias-driven) gets a zero-weight Dense from the input, so that
  Lava compiles it and its step 0 is aligned (offset 1, bias gated before);
  a (C, H, W) population lives in Lava's (x, y, f) = (W, H, C) layout, a 1-D one as is;
- connections (``Network.connections``): one Lava synapse (Dense / DelayDense / Conv) per source
  path ``population -> [Delay | Flatten]* -> synapse -> [Delay]* -> population``; a synapse that
  reads graded messages (a graded Input or a sigma-delta population) gets ``num_message_bits``
  (it computes ``W @ s``); an Input read by a ``Delta`` encoder without a synapse is a ``"link"``
  (the source's port into the Delta's ``a_in``, no Lava step);
- timing: each population P gets a Lava start offset o(P) (IR step t of P runs at Lava step
  t + o(P), counting Lava steps from 0). A Lava synapse adds one step (a link none), so a
  connection whose IR delay is d needs e = o(dst) - o(src) + d - 1 >= 0 extra steps (DelayDense);
  offsets are the smallest that satisfy every connection (longest path, cycles need d >= 1).
  This holds for any delays: an SDNN exported from PyTorch (no Delays) and a netx SDNN (a
  Delay(1) before every synapse) are the same plan with other offsets.

Options (CPU simulation speed; ``CONV_AS_DEFAULT``/``IO_DEFAULT`` are what ``lava-fixed`` and the
hardware path both use):
- ``conv_as``: ``"conv"`` (Lava ``Conv`` processes), ``"dense"``
  (every Conv2d/SumPool2d connection becomes a Lava ``Dense`` with the materialized weight matrix
  in Lava's flat (x, y, f) layout; raises if that cannot be exact) or ``"auto"`` (default:
  ``"dense"`` where it is exact and the matrix has at most ``DENSE_CONV_MAX_ENTRIES`` entries,
  else ``"conv"``; a convolution of graded messages stays a Conv). Exactness in fixed_pt: Lava's
  fixed Conv uses its weights as they are and wraps
  its output to 24 bits signed; Dense clips/truncates weights by sign mode and does not wrap. The
  lowering is used only when every weight is an exact 8-bit Dense weight (``_check_dense_weights``
  with 8 bits) and the largest possible |input| of any neuron (sum of |w| over its fan-in) is
  below 2**23, so neither step can change a value: the spikes are identical. In floating_pt both
  compute the float64 sum of the weights of the spiking inputs, in a different order (identical
  whenever those sums are exact, e.g. weights that are multiples of 2**-k of moderate size).
- ``io``: the input source, ``"ringbuffer"`` (an io ``RingBuffer`` whose data is set through
  ``Var.set``) or ``"channels"`` (default; an io ``Injector``: whole vectors per step over a
  channel; Lava's Var get/set moves one element per message; with ``layers``, an input that feeds
  one layer is piped to it, ``lava_layers``). Outputs are read from one
  ``lava_recorder.Recorder`` (every recorded population, one channel message per step), but a
  recorded layer sends its own (one message per sample). Graded and Delta inputs in fixed point always
  use ``"ringbuffer"`` (the io Injector sends floats; the fixed RingBuffer sends int32).

- ``layers`` (default True; the hardware path: False): in the CPU simulation, a ``"lif"``/``"li"``
  population and the Dense synapses into it run as one Lava process (``lava_layers``: the
  synapses' and the neuron's own Lava models in one OS process; identical spikes); False keeps a
  process per synapse, as Loihi runs it.

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

Outputs: every ``Output`` is computed on the host from the recorded spikes (or values) of the
populations (and the input) through Delay / Flatten / Average nodes (``Network.outputs``), as the
reference simulator computes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import math

import numpy as np

from ..compiler.conv import conv_matrix  # noqa: F401  (re-exported)
from ..compiler.fixed import FixedCubaLI, FixedCubaLIF, FixedSigmaDelta, FixedSynapse
from ..compiler.ir import Conv2d, CubaLI, CubaLIF, Dense, Graph, _pair
from ..compiler.lower import Connection, Network, OutputRead, Population, Source, lower
from ..errors import SnncError

MAX_DELAY = 62          # Loihi 2 synaptic delay limit as used by netx (DelayDense accepts <= 63)
DENSE_CONV_MAX_ENTRIES = 4 * 1024 * 1024    # conv_as="auto": largest materialized matrix
CONV_AS = ("conv", "dense", "auto")
IO = ("ringbuffer", "channels")
CONV_AS_DEFAULT = "auto"    # what lava-fixed and the hardware path run (module doc)
IO_DEFAULT = "channels"
LAYERS_DEFAULT = True       # what lava-fixed simulates (the hardware path plans with False)
MAX_RESET_PAD = 4096    # largest least common multiple of reset intervals padded to per sample
BIAS_MANT_MAX = 4095    # Loihi's bias mantissa: 13-bit signed
BIAS_EXP_MAX = 7        # ... and its 3-bit exponent
SDN_KINDS = ("delta", "sigma_delta", "sigma")     # lava.proc.sdn populations (graded messages)
VALUE_KINDS = ("li",) + SDN_KINDS                 # recorded as values, not as spikes


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
    kind: str                       # "input" | "lif" | "li" (CubaLI read-out: records v) | SDN_KINDS
    shape: Tuple[int, ...]          # IR shape
    offset: int = 0
    # LIF parameters (Lava's own, already in Lava layout where per neuron)
    du: float = 0.0
    dv: float = 0.0
    vth: float = 0.0
    bias_mant: Optional[np.ndarray] = None      # (SigmaDelta: Lava's ``bias`` Var, bias << exps)
    bias_exp: int = 0
    gate_bias: bool = False         # bias is held at 0 during the leading steps [0, offset)
    reset_interval: int = 0         # > 0: a Lava LIFReset with this interval ...
    reset_offset: int = 0           # ... and this Lava offset (time_step % interval == offset)
    bias_input: str = ""            # name of the bias-kind Input added to this bias per sample
    bias_scale: int = 0             # fixed mode: state units per threshold unit of that input
    refractory: int = 0             # > 0: v held at 0 for this many steps after a spike
    reset: str = "zero"             # CubaLIF.reset ("subtract"/"none": lava_neurons.LIFResetRule)
    reset_delay: bool = False       # CubaLIF.reset_delay
    out_scale: float = 1.0          # VALUE_KINDS: recorded value times this is the read-out
    # sigma-delta kinds: lava.proc.sdn parameters (vth above: Lava's integer vth)
    spike_exp: int = 0
    state_exp: int = 0
    cum_error: bool = False
    act_mode: str = "relu"          # SigmaDelta: "relu" | "unit"
    record: bool = True             # a sink records it (sigma-delta: only what an Output reads)

    @property
    def lshape(self):
        return lava_shape(self.shape)

    @property
    def records_values(self) -> bool:
        """Recorded as values (v of a read-out, graded messages), not as binary spikes."""
        return self.kind in VALUE_KINDS

    @property
    def has_bias(self) -> bool:
        return self.kind in ("lif", "li", "sigma_delta")


@dataclass
class ConnPlan:
    name: str
    kind: str                       # "dense" | "conv" | "link" (src port into dst a_in, no synapse)
    src: str
    dst: str
    weight: Optional[np.ndarray]    # Lava form: dense [out, in(lava order)]; conv (out, kw, kh, in/g)
    delays: Optional[np.ndarray] = None   # dense only: [out, in] extra steps, None = all zero
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0       # > 0: graded integer messages (graded Input, sigma-delta): W @ s
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
    #                                 | "delta" (values read by Delta encoders: x * input_scale)
    input_scale: int = 0            # "delta": Lava's a_in integers per 1.0
    root: str = ""                  # the process Lava runs (the source, or a bias-fed population)
    io: str = "channels"            # see module doc
    layers: bool = False            # CPU simulation: a population and its Dense synapses as one
                                    # process (lava_layers); hardware runs keep them apart


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



# ----------------------------------------------------------------------------- planning
def _check_options(graph: Graph, mode: str, conv_as: str, io: str) -> None:
    if mode not in ("fixed", "float"):
        raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
    if conv_as not in CONV_AS:
        raise ValueError(f"conv_as must be one of {CONV_AS}, got {conv_as!r}")
    if io not in IO:
        raise ValueError(f"io must be one of {IO}, got {io!r}")
    if len(graph.inputs) != 1 or not graph.outputs:
        raise SnncError(f"Lava backend: needs exactly one Input and at least one Output, got "
                        f"inputs {graph.inputs} and outputs {graph.outputs}")


def plan_lava(graph: Graph, steps: int, mode: str = "fixed", conv_as: str = CONV_AS_DEFAULT,
              io: str = IO_DEFAULT, net: Optional[Network] = None, layers: bool = LAYERS_DEFAULT) -> LavaPlan:
    """The Lava plan of ``graph`` for ``steps`` IR steps, read from ``lower(graph)`` (or ``net``,
    the caller's lowering of ``graph``); ``conv_as``/``io``/``layers``: see module doc."""
    _check_options(graph, mode, conv_as, io)
    net = net if net is not None else lower(graph)
    plan = LavaPlan(mode=mode, steps=int(steps), run_steps=0, input_name=graph.inputs[0], io=io,
                    layers=bool(layers))
    for pop in net.populations.values():
        pp = _pop_plan(net, pop, mode)
        if pp is not None:
            plan.pops[pop.name] = pp
    _plan_input(net, plan)
    paths = _paths(net, plan)
    off = _offsets(plan, paths)
    _set_offsets(plan, off)
    for i, (conn, source, src, dst) in enumerate(paths):
        extra = off[dst] - off[src] - _latency(conn)            # e = that + d
        if conn is None:                                        # a bias-driven population's zero link
            plan.conns.append(_zero_link(plan, src, dst, mode))
        elif conn.synapse is None:
            plan.conns.append(_link_plan(net, conn, source, extra))
        else:
            plan.conns.append(_conn_plan(net, conn, source, f"{conn.name}#{i}", extra, mode, conv_as))
    _check_connected(plan)
    plan.outputs = [_output_plan(o, plan) for o in net.outputs]
    plan.output = plan.outputs[0]
    plan.run_steps = _run_steps(plan)
    return plan


def _pop_plan(net: Network, pop: Population, mode: str) -> Optional[PopPlan]:
    """The plan of one lowered population (None: a bias input, which is no Lava process)."""
    node, graph = pop.node, net.graph
    if pop.kind == "input":
        if node.kind == "bias":
            return None
        if node.kind not in ("spikes", "graded"):
            raise _err(pop.name, node, f"input kind {node.kind!r} is not supported by the Lava backend")
        return PopPlan(pop.name, "input", pop.shape)
    if pop.kind in SDN_KINDS:
        return _sdn_plan(pop, mode)
    if pop.kind == "li":
        pp = _li_plan(graph, pop.name, node, mode)
        if mode == "fixed":
            pp.out_scale = 1.0 / float(pop.state_scale)
        return pp
    pp = _lif_plan(graph, pop.name, node, mode)
    for b in pop.bias_inputs:
        pp.bias_input = b
        if mode == "fixed":
            pp.bias_scale = int(pop.state_scale)
    return pp


def _message_scale(pop: Population) -> int:
    """Integer units per 1.0 of a sigma-delta population's messages: S >> state_exp of its fixed
    view (Sigma: S)."""
    if pop.kind == "sigma":
        return int(pop.state_scale)
    return int(pop.state_scale) >> int(pop.fixed.state_exp)


def _sdn_plan(pop: Population, mode: str) -> PopPlan:
    """A Delta / SigmaDelta / Sigma: Lava's lava.proc.sdn integers (fixed point only)."""
    node, fx = pop.node, pop.fixed
    if mode != "fixed":
        raise _err(pop.name, node, f"sigma-delta runs on Lava in fixed point only (mode {mode!r}); "
                                   "use mode='fixed' or the reference backend")
    if pop.kind != "sigma" and not isinstance(fx, FixedSigmaDelta):
        raise SnncError(f"Lava backend: fixed-point run needs the quantization pass first "
                        f"(no fixed view for node {pop.name!r})")
    pp = PopPlan(pop.name, pop.kind, pop.shape, out_scale=1.0 / _message_scale(pop), record=False)
    if pop.kind == "sigma":
        return pp
    vth = np.unique(np.asarray(fx.vth, dtype=np.int64))
    if vth.size != 1:
        raise _err(pop.name, node, f"per-neuron thresholds: Lava's {type(node).__name__} has one vth")
    pp.vth, pp.spike_exp, pp.state_exp = int(vth[0]), int(fx.spike_exp), int(fx.state_exp)
    pp.cum_error = bool(fx.cum_error)
    if pop.kind == "sigma_delta":
        pp.act_mode = fx.act_mode
        bias = np.broadcast_to(np.asarray(fx.bias, dtype=np.int64), pop.shape) << (pp.spike_exp + pp.state_exp)
        pp.bias_mant = to_lava(np.array(bias), len(pop.shape))     # the value of Lava's bias Var
    return pp


def _plan_input(net: Network, plan: LavaPlan) -> None:
    """The input's kind (spikes, graded, bias, or values read by Delta encoders) and the root."""
    inode = net.populations[plan.input_name].node
    plan.input_kind, plan.root = inode.kind, plan.input_name
    if inode.kind == "bias":
        fed = [n for n, p in plan.pops.items() if p.bias_input == plan.input_name]
        if not fed:
            raise _err(plan.input_name, inode, "the bias input feeds no population")
        plan.root = fed[0]
        return
    reads = net.out_of(plan.input_name)
    links = [c for c in reads if c.synapse is None]
    if links:
        if len(links) != len(reads):
            raise _err(plan.input_name, inode, "feeds both Delta encoders and synapses; on Lava an "
                                               "input is either values for Delta encoders or spikes")
        scales = {net.populations[c.dst].state_scale >> (plan.pops[c.dst].spike_exp + plan.pops[c.dst].state_exp)
                  for c in links}
        if len(scales) != 1:
            raise _err(plan.input_name, inode, f"feeds Delta encoders of different input units {sorted(scales)}")
        plan.input_kind, plan.input_scale = "delta", scales.pop()
    if plan.input_kind in ("graded", "delta") and plan.mode == "fixed":
        plan.io = "ringbuffer"      # the io Injector sends floats; the fixed RingBuffer sends int32


def _paths(net: Network, plan: LavaPlan) -> List[tuple]:
    """(connection, source, src, dst) for every source path of every connection, then
    (None, None, input, population) for every population with no input (``_zero_link``)."""
    out = []
    for c in net.connections:
        dst = net.populations[c.dst]
        for s in c.sources:
            src = net.populations[s.pop]
            if src.kind == "input" and src.node.kind == "bias":
                raise _err(s.pop, src.node, f"a 'bias' input may feed only CubaLIF populations directly, "
                                            f"not {c.name!r}")
            if (c.synapse is None) != (dst.kind == "delta" and src.kind == "input"):
                what = f"synapse {c.name!r}" if c.synapse is not None else f"{s.pop!r} without a synapse"
                raise _err(c.dst, dst.node, f"is fed by {what}; on Lava a Delta encoder reads the Input "
                                            "directly and every other population reads synapses")
            out.append((c, s, s.pop, c.dst))
    fed = {c.dst for c in net.connections}
    orphans = [n for n, p in plan.pops.items() if p.kind != "input" and n not in fed and not p.bias_input]
    if orphans and plan.input_kind == "bias":
        raise SnncError(f"Lava backend: populations {orphans} have no input and the graph's input is a bias "
                        "input; connect them to a spike input")
    return out + [(None, None, plan.input_name, d) for d in orphans]


def _latency(conn: Optional[Connection]) -> int:
    """Lava steps a connection takes by itself: 1 for a synapse, 0 for a link."""
    return 0 if conn is not None and conn.synapse is None else 1


def _min_delay(conn: Optional[Connection], source: Optional[Source]) -> int:
    return 0 if conn is None else int(source.delay.min()) + int(conn.post_delay.min())


def _offsets(plan: LavaPlan, paths) -> Dict[str, int]:
    """o(dst) >= o(src) + latency - min(d) for every path (Bellman-Ford longest path)."""
    off = {p: 0 for p in plan.pops}
    need = [(src, dst, _latency(c) - _min_delay(c, s)) for c, s, src, dst in paths]
    for _ in range(len(off) + 1):
        changed = False
        for src, dst, k in need:
            if off[src] + k > off[dst]:
                off[dst] = off[src] + k
                changed = True
        if not changed:
            return off
    raise SnncError("Lava backend: the graph has a cycle whose delay is too short for Lava "
                    "(every cycle needs at least one step of delay per synapse)")


def _set_offsets(plan: LavaPlan, off: Dict[str, int]) -> None:
    """Offsets, bias gating during the leading steps and the reset phases (module doc)."""
    for p, o in off.items():
        pp = plan.pops[p]
        pp.offset = o
        pp.gate_bias = pp.has_bias and o > 0 and (bool(pp.bias_input) or
                                                  bool(np.any(np.asarray(pp.bias_mant) != 0)))
        if pp.reset_interval:
            pp.reset_offset = (pp.reset_offset + o + 1) % pp.reset_interval


def _check_connected(plan: LavaPlan) -> None:
    """Lava compiles what is connected to the process it runs (the input source or, for a bias
    input, the first population it feeds): refuse populations it would not reach."""
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


def _output_plan(o: OutputRead, plan: LavaPlan) -> OutputPlan:
    """The host computation of an Output from the recorded populations (module doc)."""
    program = []
    for name, kind, arg, preds in o.program:
        if kind == "synapse":
            raise _err(name, arg, f"feeds output {o.name!r}; the Lava backend computes outputs on "
                                  "the host from populations through Delay, Flatten and Average "
                                  "only (put a CubaLIF population after a synapse)")
        program.append((name, kind, arg, list(preds)))
    for name in o.pops:
        if name in plan.pops:
            plan.pops[name].record = True
    return OutputPlan(o.name, tuple(o.shape), program)


def _run_steps(plan: LavaPlan) -> int:
    """T + the largest offset, a multiple of every reset interval (module doc)."""
    L = plan.steps + max((p.offset for p in plan.pops.values()), default=0)
    intervals = sorted({pp.reset_interval for pp in plan.pops.values() if pp.reset_interval})
    if not intervals:
        return L
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
    return -(-L // period) * period


def _zero_link(plan: LavaPlan, src: str, dst: str, mode: str) -> ConnPlan:
    """A Lava Dense of zero weights from ``src`` into ``dst`` (it never adds anything)."""
    n_in = int(np.prod(plan.pops[src].shape))
    n_out = int(np.prod(plan.pops[dst].shape))
    w = np.zeros((n_out, n_in), dtype=np.int64 if mode == "fixed" else np.float64)
    return ConnPlan(f"{dst}#bias_only_link", "dense", src, dst, w,
                    src_flatten=len(plan.pops[src].shape) > 1, dst_reshape=len(plan.pops[dst].shape) > 1)


def _link_plan(net: Network, conn: Connection, source: Source, extra: int) -> ConnPlan:
    """An Input read by a Delta encoder: the source's port into the Delta's ``a_in``."""
    if extra != 0 or source.delay.any() or conn.post_delay.any():
        dst = net.populations[conn.dst]
        raise _err(conn.dst, dst.node, "reads its Input through a delay; on Lava a Delta encoder reads the "
                                       "Input directly (no synapse to hold a delay)")
    if tuple(net.populations[source.pop].shape) != tuple(net.populations[conn.dst].shape):
        dst = net.populations[conn.dst]
        raise _err(conn.dst, dst.node, f"reads Input {source.pop!r} of another shape (through Flatten); "
                                       "on Lava it must have the Input's shape")
    return ConnPlan(conn.name, "link", source.pop, conn.dst, None)


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
        pp.bias_exp = int(fx.bias_exp)       # (out_scale: 1/S, set by _pop_plan)
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



def _graded(src: Population) -> bool:
    """Whether ``src`` sends graded integer messages (a graded Input, a sigma-delta population)."""
    return src.kind in SDN_KINDS or (src.kind == "input" and src.node.kind == "graded")


def _conn_plan(net: Network, conn: Connection, source: Source, cname: str, extra: int, mode: str,
               conv_as: str = "conv") -> ConnPlan:
    """The Lava synapse of one source path of a lowered connection (module doc)."""
    syn, node, src = conn.name, conn.synapse, net.populations[source.pop]
    fx = conn.fixed if mode == "fixed" else None
    if mode == "fixed" and not isinstance(fx, FixedSynapse):
        raise SnncError(f"Lava backend: fixed-point run needs the quantization pass first "
                        f"(no fixed view for node {syn!r})")
    if conn.post_flatten and len(conn.out_shape) != 1:
        raise _err(conn.path[0], net.graph.nodes[conn.path[0]], "a Flatten after a convolution (before a "
                                                                "population) is not supported by the Lava backend")
    if isinstance(node, Dense):
        cp = _dense_plan(conn, source, cname, fx, extra)
    else:
        cp = _conv_plan(conn, source, cname, fx, extra, "conv" if _graded(src) else conv_as)
    if _graded(src):
        what = "a graded input" if src.kind == "input" else "graded messages"
        if cp.delays is not None:
            raise _err(syn, node, f"{what} through a delayed synapse is not supported")
        if fx is not None and not fx.num_message_bits:
            raise _err(syn, node, f"reads {what} but its fixed view takes binary spikes")
        cp.num_message_bits = int(fx.num_message_bits) if fx is not None else 24
    return cp


def _dense_plan(conn: Connection, source: Source, cname: str, fx, extra: int) -> ConnPlan:
    node, syn, sshape = conn.synapse, conn.name, tuple(source.delay.shape)
    w = np.asarray(fx.weight if fx is not None else node.weight)
    w = w.astype(np.int64) if fx is not None else w.astype(np.float64)
    delays = conn.post_delay.reshape(-1, 1) + source.delay.reshape(1, -1) + extra     # [out, in] IR order
    if len(sshape) == 3:
        perm = flat_perm(sshape)
        w, delays = w[:, perm], delays[:, perm]
    if delays.min() < 0:
        raise _err(syn, node, "internal error: negative Lava delay")
    if delays.max() > MAX_DELAY:
        raise _err(syn, node, f"needs a synaptic delay of {int(delays.max())} steps; Loihi "
                              f"supports at most {MAX_DELAY}")
    cp = ConnPlan(cname, "dense", source.pop, conn.dst, np.ascontiguousarray(w),
                  delays=np.ascontiguousarray(delays) if delays.max() > 0 else None,
                  src_flatten=len(sshape) == 3)
    if fx is not None:
        cp.weight_exp, cp.num_weight_bits = int(fx.weight_exp), int(fx.num_weight_bits)
        _check_dense_weights(syn, node, cp)
    return cp


def _conv_plan(conn: Connection, source: Source, cname: str, fx, extra: int, conv_as: str) -> ConnPlan:
    """Conv2d / SumPool2d: Lava Conv has no delay, so every extra step must be zero."""
    node, syn, sshape = conn.synapse, conn.name, tuple(source.delay.shape)
    total = np.unique(np.unique(conn.post_delay).reshape(-1, 1) + np.unique(source.delay).reshape(1, -1) + extra)
    if total.size != 1 or total[0] != 0:
        raise _err(syn, node, "a convolution whose connection needs extra delay (axonal delay or "
                              "unequal path timing) is not supported by Lava's Conv process")
    if len(sshape) != 3 or source.flatten:
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
        cp = _conv_as_dense(syn, node, cname, source.pop, conn.dst, w, sshape, tuple(conn.out_shape), stride,
                            padding, dilation, groups, fx is not None, conv_as)
        if cp is not None:
            return cp
    lw = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))   # (out, kw, kh, in/g)
    cp = ConnPlan(cname, "conv", source.pop, conn.dst, lw, stride=stride[::-1], padding=padding[::-1],
                  dilation=dilation[::-1], groups=groups)
    return cp


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
