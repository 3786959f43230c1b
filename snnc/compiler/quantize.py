"""Quantization pass: float IR parameters -> Loihi 2 fixed point (``Graph.fixed``) + a report.

The mapping is lava-dl's (SLAYER CUBA -> netx -> Lava), so a SLAYER model trained with its
8-bit quantization hooks maps exactly:

- a population's state unit is 1/S (S = ``CubaLIF.state_scale``, 4096 for SLAYER's default);
  synapses into it get integer weights ``W * S/64`` (Lava adds ``a_in << 6`` to u), as 8-bit
  mantissas with an exponent: mixed-sign weights are even values in [-256, 254]; all-positive
  ones in [0, 255]; all-negative ones in [-255, 0] (Lava's ``clip_weights``/``truncate_weights``);
- decays: ``decay_u = round(4096 * current_decay)``, ``decay_v = round(4096 * voltage_decay)``
  (Lava's ``du = decay_u - 1``, ``dv = decay_v``);
- threshold mantissa ``vth = threshold * S/64`` (Lava compares ``v > vth << 6``);
- bias ``S * bias`` in v units, as a 13-bit mantissa and a 3-bit exponent.

A population with real-valued dynamics (``state_scale == 0``) gets the largest power-of-two
S that keeps its weights and threshold in range; its rounding is reported, never hidden.
Round half to even everywhere (as torch.round and lava-dl do).

Pinned scales: ``graph.metadata["scales"]`` (written by calibration, ``snnc/compiler/calibrate.py``,
and by ``snnc.twin(...).to_graph()``) fixes a population's S (``state_scale``: {population: S},
a multiple of 64), a synapse's weight exponent (``weight_exp``: {synapse: e}, weights beyond the
8-bit range are then clipped) and a threshold mantissa (``vth``: {population: int or list}).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..errors import SnncError
from .fixed import BIAS_MANT_MAX, VTH_MAX, FixedCubaLI, FixedCubaLIF, FixedSigmaDelta, FixedSynapse, message_scale
from .ir import (SIGMA_DELTA, Average, Conv2d, CubaLI, CubaLIF, Dense, Delta, Flatten, Graph, Input, Output,
                 Sigma, SigmaDelta, SumPool2d)
from .lower import Connection, Network, lower
from .validate import check_fixed, check_params


def _synapse_weight(node) -> np.ndarray:
    return np.asarray(node.weight, dtype=np.float64)


def _target_population(net: Network, name: str) -> Connection:
    """The one connection of synapse ``name``: it feeds one neuron population directly."""
    graph, conns = net.graph, net.of_synapse(name)
    targets = [c.path[0] if c.path else c.dst for c in conns]
    targets += [n for o in net.outputs for n, _, _, preds in o.program if name in preds]
    targets = list(dict.fromkeys(targets))
    if len(targets) != 1 or not isinstance(graph.nodes[targets[0]], (CubaLIF, CubaLI, SigmaDelta, Sigma)):
        kinds = [type(graph.nodes[t]).__name__ for t in targets]
        raise SnncError(f"synapse {name!r} must feed exactly one neuron population, feeds {targets} {kinds}: "
                        "Loihi adds synaptic input only into neurons")
    return conns[0]


def _int_weights(w: np.ndarray, exp: int):
    """Integer mantissas of ``w`` (already in a_in units) for exponent ``exp``, Lava's 8-bit rules."""
    x = w / (2.0 ** exp)
    if np.all(w >= 0):
        lo, hi, step = 0, 255, 1
    elif np.all(w <= 0):
        lo, hi, step = -255, 0, 1
    else:
        lo, hi, step = -256, 254, 2
    q = np.round(x / step) * step
    clipped = int(np.sum((q < lo) | (q > hi)))
    return np.clip(q, lo, hi).astype(np.int64), clipped, hi


def quantize_weights(w: np.ndarray, allow_exp: bool = True):
    """``w`` in a_in units -> (mantissas, exponent, clipped count).

    The exponent is the smallest one (>= 0) that avoids clipping, or 0 when ``allow_exp`` is
    False (Lava's Conv has no weight exponent).
    """
    exp = 0
    while True:
        q, clipped, _ = _int_weights(w, exp)
        if clipped == 0 or not allow_exp or exp >= 7:
            return q, exp, clipped
        exp += 1


def _pinned(graph: Graph, what: str) -> Dict:
    return dict((graph.metadata.get("scales") or {}).get(what, {}))


def _synapse_weights(graph: Graph, name: str, syn, w: np.ndarray):
    """(mantissas, exponent, clipped) of a synapse: a pinned exponent or the smallest that fits."""
    pinned = _pinned(graph, "weight_exp")
    if name not in pinned:
        return quantize_weights(w, allow_exp=isinstance(syn, Dense))
    exp = int(pinned[name])
    if not 0 <= exp <= 7 or (exp and not isinstance(syn, Dense)):
        raise SnncError(f"synapse {name!r}: pinned weight_exp {exp} must be in 0..7 (0 for Conv/pool: "
                        "Lava's Conv has no weight exponent)")
    q, clipped, _ = _int_weights(w, exp)
    return q, exp, clipped


def _population_scale(graph: Graph, name: str, node, inputs: List[Connection]) -> int:
    """S for a population: its own for integer dynamics, a pinned one (calibration), else the
    largest power of two that fits (weights in 8-bit mantissas without exponent, threshold in
    17 bits; a CubaLI has no threshold)."""
    pinned = _pinned(graph, "state_scale")
    if name in pinned:
        S = int(pinned[name])
        if S <= 0 or S % 64 or (node.state_scale and S != int(node.state_scale)):
            raise SnncError(f"population {name!r}: pinned state_scale {S} must be a positive multiple of 64"
                            + (f" equal to the model's own {node.state_scale}" if node.state_scale else ""))
        return S
    if node.state_scale:
        return int(node.state_scale)
    wmax = max([np.max(np.abs(_synapse_weight(c.synapse))) for c in inputs] + [1e-12])
    th = float(np.max(getattr(node, "threshold", 0.0)))
    w_scale = 1
    while w_scale * 2 * wmax <= 254 and w_scale * 2 * th <= VTH_MAX and w_scale < (1 << 16):
        w_scale *= 2
    return 64 * w_scale


def _into(net: Network, pop: str) -> List[Connection]:
    """The connections into ``pop`` in the order of its inputs."""
    return sorted(net.into(pop), key=lambda c: c.slot)


def _population_inputs(net: Network, name: str) -> List[Connection]:
    """The synapses into CUBA population ``name`` (bias inputs aside, ``Population.bias_inputs``);
    refuses any other source and graded spikes."""
    graph = net.graph
    inputs = _into(net, name)
    for c in inputs:
        if c.synapse is None or c.path:
            s = c.last_hop
            raise SnncError(f"population {name!r} receives input from {s!r} "
                            f"({type(graph.nodes[s]).__name__}), not from a synapse: Loihi neurons "
                            "take input only through synapses (add a Dense/Conv)")
    for c in inputs:
        graded = [src for src in c.source_pops if message_scale(graph, src)]
        if graded:
            raise SnncError(f"population {name!r}: synapse {c.name!r} carries graded spikes from {graded}; "
                            f"{type(graph.nodes[name]).__name__} populations take binary spikes only")
    return inputs


def _quantize_synapses(graph: Graph, g: Graph, inputs: List[Connection], w_scale: int, report: List[Dict]) -> None:
    for c in inputs:
        s, syn = c.name, c.synapse
        w = _synapse_weight(syn) * w_scale
        q, exp, clipped = _synapse_weights(graph, s, syn, w)
        k = _graded_frac_bits(graph, c)
        if k is None:
            g.fixed[s] = FixedSynapse(weight=q, weight_exp=exp)
        else:       # graded input: a = (W_int @ x_int) >> k with x_int = x * 2**k
            g.fixed[s] = FixedSynapse(weight=q, weight_exp=exp - k, num_message_bits=GRADED_MESSAGE_BITS,
                                      input_frac_bits=k)
        _record(report, s, "weight", w / w_scale, q * (2.0 ** exp) / w_scale, clipped)


def _quantize_decays(name: str, node, report: List[Dict]):
    """12-bit decays (decay_u in 0..4096, decay_v in 0..4095): ints, or int64 arrays of the
    population's shape where the decays differ per neuron (snnc's own Lava models run those)."""
    du = np.clip(np.round(4096 * np.asarray(node.current_decay, dtype=np.float64)), 0, 4096)
    dv = np.clip(np.round(4096 * np.asarray(node.voltage_decay, dtype=np.float64)), 0, 4095)
    _record(report, name, "current_decay", node.current_decay, du / 4096)
    _record(report, name, "voltage_decay", node.voltage_decay, dv / 4096)
    if np.ndim(du) or np.ndim(dv):
        if np.unique(du).size > 1 or np.unique(dv).size > 1:
            shape = tuple(node.shape)
            return (np.broadcast_to(du, shape).astype(np.int64).copy(),
                    np.broadcast_to(dv, shape).astype(np.int64).copy())
        du, dv = np.ravel(du)[0], np.ravel(dv)[0]
    return int(du), int(dv)


def _quantize_bias(name: str, node, S: int, report: List[Dict]):
    bias = np.asarray(node.bias, dtype=np.float64) * S
    mant, bexp, bclip = _bias(np.trunc(bias))
    _record(report, name, "bias", bias / S, mant * (1 << bexp) / S, bclip)
    return (int(mant) if np.ndim(mant) == 0 else mant), int(bexp)


def _quantize_population(net: Network, g: Graph, name: str, node, report: List[Dict]) -> None:
    """Fixed view of a CubaLIF or CubaLI population and of the synapses into it."""
    graph = net.graph
    inputs = _population_inputs(net, name)
    S = _population_scale(graph, name, node, inputs)
    w_scale = S // 64
    _quantize_synapses(graph, g, inputs, w_scale, report)
    du, dv = _quantize_decays(name, node, report)
    mant, bexp = _quantize_bias(name, node, S, report)
    if isinstance(node, CubaLI):
        g.fixed[name] = FixedCubaLI(decay_u=du, decay_v=dv, bias_mant=mant, bias_exp=bexp, state_scale=S)
        return
    th = np.asarray(node.threshold, dtype=np.float64) * w_scale
    vth = np.round(th)
    if name in _pinned(graph, "vth"):
        vth = np.broadcast_to(np.asarray(_pinned(graph, "vth")[name], dtype=np.float64), th.shape).copy()
    vclip = int(np.sum((vth > VTH_MAX) | (vth < 1)))
    vth = np.clip(vth, 1, VTH_MAX).astype(np.int64)
    _record(report, name, "threshold", th / w_scale, vth / w_scale, vclip)
    if node.spike_compare != ">":
        # v >= th  <=>  v > th - 1 for integer v: exact in fixed point
        vth_cmp = th * 64 - 1
        if np.any(vth_cmp % 64):
            raise SnncError(f"population {name!r}: spike_compare '>=' maps onto Loihi's '>' only when "
                            "threshold*S - 1 is a multiple of 64; use '>'")
        vth = (vth_cmp // 64).astype(np.int64)
    g.fixed[name] = FixedCubaLIF(decay_u=du, decay_v=dv, vth=int(vth) if vth.ndim == 0 else vth,
                                 bias_mant=mant, bias_exp=bexp, refractory=int(node.refractory), state_scale=S)


def _bias(bias_int: np.ndarray):
    """Integer bias (v units) -> (mantissa, exponent, clipped count): a 13-bit mantissa
    (|mant| <= 4095) and a 3-bit exponent; what does not fit at exponent 7 is clipped."""
    exp = 0
    while np.max(np.abs(bias_int)) > BIAS_MANT_MAX * (1 << exp) and exp < 7:
        exp += 1
    mant = np.round(bias_int / (1 << exp))
    clipped = int(np.sum(np.abs(mant) > BIAS_MANT_MAX))
    return np.clip(mant, -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64), exp, clipped


def _record(report: List[Dict], node: str, what: str, exact: np.ndarray, fixed: np.ndarray, clipped: int = 0):
    exact = np.asarray(exact, dtype=np.float64)
    fixed = np.asarray(fixed, dtype=np.float64)
    err = np.abs(exact - fixed)
    report.append(dict(node=node, param=what, values=int(exact.size),     # a clipped value is not "rounded"
                       rounded=max(0, int(np.sum(err > 1e-9)) - int(clipped)), clipped=int(clipped),
                       max_error=float(err.max()) if err.size else 0.0))


def quantize(graph: Graph) -> Graph:
    """Return a copy of ``graph`` with ``fixed`` filled and ``metadata['quantization']`` = report.

    The report has one row per (node, parameter): number of values, how many were rounded,
    how many clipped, and the largest error (in the parameter's own units: weight, decay, ...).
    Runs ``legalize`` first, so a raw graph is refused with the same messages as in the
    pipeline (``snnc.compiler.pipeline.compile_graph``, which runs ``quantize_legal``).
    Structure comes from the lowered network (``compiler.lower``), read before any fixed view.
    """
    return quantize_legal(legalize(graph))


def quantize_legal(graph: Graph) -> Graph:
    """``quantize`` of a graph that ``legalize`` has accepted (the pipeline's quantize pass)."""
    g = graph.copy()
    net = lower(graph)
    report: List[Dict] = []
    for name, node in graph.nodes.items():
        if isinstance(node, (CubaLIF, CubaLI)):
            _quantize_population(net, g, name, node, report)
    for name, node in graph.nodes.items():
        if isinstance(node, SIGMA_DELTA):
            _quantize_sigma_delta(net, g, name, node, report)
    g.metadata["quantization"] = report
    check_fixed(g)                      # every fixed-point field inside Loihi 2's widths
    return g


# ----------------------------------------------------------------------------- legalize
def legalize(graph: Graph) -> Graph:
    """The Loihi rules a graph must meet before quantization; returns ``graph`` unchanged or
    raises SnncError naming the node. Structure (the lowering's ``check``: ``lower(graph)``, the
    one walk of the graph) and parameters (``check_params``) first, then: synapses feed exactly one population; populations take input only through
    synapses (bias inputs aside), binary spikes into CUBA, graded ones into sigma-delta; graded
    inputs feed Dense synapses only, bias inputs CubaLIF only; Average, CubaLI and Flatten feed
    what Loihi lets them; integer state scales fit Loihi's units (multiples of 64 for CUBA,
    powers of two for sigma-delta, with their exponents)."""
    net = lower(graph)
    check_params(graph)                 # every parameter finite and inside what its node allows
    kinds = ((CubaLIF, CubaLI), SIGMA_DELTA, object)
    for name, node in sorted(graph.nodes.items(), key=lambda kv: [isinstance(kv[1], k) for k in kinds].index(True)):
        _legal_node(net, name, node)
    return graph


def _next_hops(net: Network, name: str) -> List[str]:
    """The nodes that node ``name`` feeds directly, read off the lowered network: the next node on
    every connection's way (source, its Delay/Flatten path, the synapse, its path, the population),
    the Output programs' steps that read it, the populations it drives as a bias input."""
    hops: List[str] = []
    for c in net.connections:
        syn = (c.name,) if c.synapse is not None else ()
        for src in c.sources:
            chain = (src.pop,) + src.path + syn + c.path + (c.dst,)
            hops += [chain[i + 1] for i in range(len(chain) - 1) if chain[i] == name]
    hops += [n for o in net.outputs for n, _, _, preds in o.program if name in preds]
    hops += [p.name for p in net.populations.values() if name in p.bias_inputs]
    return list(dict.fromkeys(hops))


def _legal_node(net: Network, name: str, node) -> None:
    """The Loihi rules of one node; Inputs, Average and Flatten by what they feed directly."""
    graph = net.graph
    succ = _next_hops(net, name) if isinstance(node, (Input, Average, Flatten)) else []
    if isinstance(node, (CubaLIF, CubaLI)):
        _population_inputs(net, name)
        if node.state_scale and node.state_scale % 64:
            raise SnncError(f"population {name!r}: state_scale {node.state_scale} is not a multiple of 64")
        if isinstance(node, CubaLIF) and node.spike_compare != ">" and node.reset != "zero":
            raise SnncError(f"population {name!r}: spike_compare '>=' with reset {node.reset!r} has no exact "
                            "fixed-point form (the subtracted threshold would be off by one unit); use '>'")
    elif isinstance(node, SIGMA_DELTA):
        _legal_sigma_delta(net, name, node)
    elif isinstance(node, (Dense, Conv2d, SumPool2d)):
        _graded_frac_bits(graph, _target_population(net, name))
    elif isinstance(node, Input):
        _legal_input(graph, name, node, succ)
    elif isinstance(node, Average) and any(not isinstance(graph.nodes[d], Output) for d in succ):
        raise SnncError(f"average {name!r} is a host-side readout and may feed only an Output")
    elif isinstance(node, Flatten) and any(not isinstance(graph.nodes[d], Dense) for d in succ):
        raise SnncError(f"flatten {name!r} must feed a Dense synapse")


def _legal_input(graph: Graph, name: str, node: Input, succ: List[str]) -> None:
    if node.kind == "graded":
        bad = [d for d in succ if not isinstance(graph.nodes[d], (Dense, Output))]
        if bad:
            raise SnncError(f"graded input {name!r} may feed only Dense synapses (and Outputs), feeds {bad}")
    elif node.kind == "bias":
        bad = [d for d in succ if not isinstance(graph.nodes[d], CubaLIF)]
        if bad:
            raise SnncError(f"bias input {name!r} may feed only CubaLIF populations, feeds {bad}")
    elif node.kind != "spikes":
        raise SnncError(f"input {name!r}: unknown kind {node.kind!r} (spikes, graded or bias)")
    li = [d for d in succ if isinstance(graph.nodes[d], CubaLI)]
    if li:
        raise SnncError(f"input {name!r} feeds the leaky integrator(s) {li} directly: Loihi neurons take "
                        "input only through synapses (add a Dense/Conv)")


# ----------------------------------------------------------------------------- graded inputs
GRADED_MESSAGE_BITS = 24        # Loihi 2 graded spike payload (signed): |x_int| < 2**23
ACC_LIMIT = 1 << 31             # Lava's fixed Dense accumulates W @ s in int32


def _graded_frac_bits(graph: Graph, conn: Connection):
    """``frac_bits`` of the graded Input(s) feeding the synapse of ``conn``; None when it reads spikes."""
    syn, srcs = conn.name, conn.source_pops
    graded = [s for s in srcs if isinstance(graph.nodes[s], Input) and graph.nodes[s].kind == "graded"]
    if not graded:
        return None
    node = conn.synapse
    if not isinstance(node, Dense):
        raise SnncError(f"synapse {syn!r} reads the graded input {graded}: only Dense synapses take graded "
                        "inputs (Lava's Conv has no weight exponent)")
    if len(graded) != len(srcs) or any(s.path for s in conn.sources):
        raise SnncError(f"synapse {syn!r} must read its graded input {graded} directly and only it, "
                        f"reads {srcs}")
    ks = {int(graph.nodes[s].frac_bits) for s in graded}
    if len(ks) != 1 or not 0 <= min(ks) <= 16:
        raise SnncError(f"synapse {syn!r}: graded inputs {graded} need one frac_bits in 0..16, got {sorted(ks)}")
    return ks.pop()


def graded_values(graph: Graph, name: str, x: np.ndarray) -> np.ndarray:
    """The values graded Input ``name`` sends (float64): ``x`` rounded to the grid
    ``2**-frac_bits``, half to even (as ONNX ``Round`` and ``torch.round``, so as the exported
    ``snnc.GradedInput`` op and ``snnc.nn.GradedInput`` do). Float runs use these values."""
    k = int(graph.nodes[name].frac_bits)
    return np.round(np.asarray(x, dtype=np.float64) * float(1 << k)) / float(1 << k)


def graded_messages(graph: Graph, name: str, x: np.ndarray) -> np.ndarray:
    """The integer graded spikes ``round(x * 2**frac_bits)`` (int64, half to even) of graded
    Input ``name``; refuses non-finite values, messages beyond 24 bits, and data that could
    overflow Lava's int32 accumulator of a synapse it feeds (fixed-point runs only)."""
    node = graph.nodes[name]
    k = int(node.frac_bits)
    xf = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(xf)):
        raise SnncError(f"graded input {name!r}: values must be finite (found NaN or inf)")
    xi = np.round(xf * float(1 << k))
    if np.any(np.abs(xi) >= (1 << (GRADED_MESSAGE_BITS - 1))):
        raise SnncError(f"graded input {name!r}: |x| * 2**{k} must be below 2**{GRADED_MESSAGE_BITS - 1} "
                        "(Loihi graded spike payload)")
    xi = xi.astype(np.int64)
    if name in graph.nodes and graph.fixed:
        ax = np.abs(xi)                     # (N, C) or (N, C, T)
        for syn in [c.name for c in lower(graph).out_of(name) if c.synapse is not None]:
            fx = graph.fixed.get(syn)
            if fx is None or not getattr(fx, "num_message_bits", 0):
                continue
            wa = np.abs(np.asarray(fx.weight, dtype=np.int64))
            bound = np.einsum("oi,ni...->no...", wa, ax)
            if np.any(bound >= ACC_LIMIT):
                raise SnncError(f"graded input {name!r}: sum |W| * |x| * 2**{k} into synapse {syn!r} can reach "
                                f"{int(bound.max())} >= 2**31 (Lava's int32 accumulator); lower frac_bits or "
                                "scale the input")
    return xi


# ----------------------------------------------------------------------------- sigma-delta
def _sd_int(report, name, what, value, unit):
    """``value * unit`` rounded to an integer (half to even), recorded in the report."""
    exact = np.asarray(value, dtype=np.float64) * unit
    q = np.round(exact).astype(np.int64)
    _record(report, name, what, exact / unit, q / unit)
    return int(q) if q.ndim == 0 else q


def _legal_sigma_delta(net: Network, name: str, node) -> None:
    """Delta reads graph inputs, SigmaDelta/Sigma read synapses of graded spikes of one unit that
    divides their state unit; S a power of two that holds the exponents."""
    graph, kind, S = net.graph, type(node).__name__, int(node.state_scale)
    if S <= 0 or S & (S - 1):
        raise SnncError(f"{kind} {name!r}: state_scale {S} is not a positive power of two")
    conns = _into(net, name)
    if isinstance(node, Delta):
        bad = [c.last_hop for c in conns if c.synapse is not None or c.sources[0].path
               or not (isinstance(graph.nodes[c.sources[0].pop], Input) and graph.nodes[c.sources[0].pop].kind == "spikes")]
        if bad:
            raise SnncError(f"delta encoder {name!r} reads graph inputs directly (Lava's Delta a_in); "
                            f"it is fed by {bad}")
    else:
        bad = [c.last_hop for c in conns if c.synapse is None or c.path]
        if bad:
            raise SnncError(f"{kind} {name!r} receives input from {bad}, not from a synapse")
        for c in conns:
            m = _sd_message_unit(graph, name, c)
            if S % m:
                raise SnncError(f"{kind} {name!r}: state unit 1/{S} is not a multiple of the "
                                f"message unit 1/{m} of {c.source_pops}")
    if not isinstance(node, Sigma):
        se, st = int(node.spike_exp), int(node.state_exp)
        if se < 0 or st < 0 or (1 << (se + st)) > S:
            raise SnncError(f"{kind} {name!r}: spike_exp {se} + state_exp {st} do not fit state_scale {S}")
    if isinstance(node, SigmaDelta) and node.activation not in ("relu", "identity"):
        raise SnncError(f"sigma-delta {name!r}: activation {node.activation!r} is not supported "
                        "(Lava's SigmaDelta has relu and identity/unit)")


def _sd_message_unit(graph: Graph, name: str, conn: Connection) -> int:
    """Integer units per 1.0 of the graded messages the synapse of ``conn`` carries into ``name``."""
    syn, srcs = conn.name, conn.source_pops
    scales = {message_scale(graph, src) for src in srcs}
    if 0 in scales:
        binary = [src for src in srcs if not message_scale(graph, src)]
        raise SnncError(f"{type(graph.nodes[name]).__name__} {name!r}: synapse {syn!r} reads binary spikes from "
                        f"{binary}; sigma-delta neurons take graded spikes (from Delta/SigmaDelta)")
    if len(scales) != 1:
        raise SnncError(f"synapse {syn!r} reads messages of different units {sorted(scales)} from {srcs}")
    return scales.pop()


def _quantize_sigma_delta(net: Network, g: Graph, name: str, node, report: List[Dict]) -> None:
    """Fixed view of a Delta/SigmaDelta/Sigma and of the synapses into it (legal graph)."""
    S = int(node.state_scale)
    if not isinstance(node, Delta):
        for c in _into(net, name):
            w_scale = S // _sd_message_unit(net.graph, name, c)
            syn, syn_node = c.name, c.synapse
            w = _synapse_weight(syn_node) * w_scale
            q, exp, clipped = quantize_weights(w, allow_exp=isinstance(syn_node, Dense))
            g.fixed[syn] = FixedSynapse(weight=q, weight_exp=exp, num_message_bits=16)
            _record(report, syn, "weight", w / w_scale, q * (2.0 ** exp) / w_scale, clipped)
    if isinstance(node, Sigma):
        return
    se, st = int(node.spike_exp), int(node.state_exp)
    unit = S / (1 << (se + st))                     # Lava's vth/bias parameter units per 1.0
    vth = _sd_int(report, name, "threshold", node.threshold, unit)
    bias, act = 0, "relu"
    if isinstance(node, SigmaDelta):
        bias = _sd_int(report, name, "bias", node.bias, unit)
        act = "relu" if node.activation == "relu" else "unit"
    g.fixed[name] = FixedSigmaDelta(vth=vth, bias=bias, spike_exp=se, state_exp=st, act_mode=act,
                                    cum_error=bool(node.cumulative_error), state_scale=S)
