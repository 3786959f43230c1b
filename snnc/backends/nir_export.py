"""Write an IR graph as a NIR graph (``.nir``), in the discrete convention.

Every population is written so that a forward-Euler reading at the graph's ``dt`` gives back
exactly the IR's step (``docs/nir.md``): with ``beta = 1 - voltage_decay`` and ``alpha = 1 -
current_decay``::

    LIF      tau = dt/(1-beta),  r = tau/dt,  v_leak = bias/(1-beta)          (current_decay 1)
    IF       r = 1/dt                                                         (voltage_decay 0)
    CubaLIF  tau_mem = dt/(1-beta), tau_syn = dt/(1-alpha), r = tau_mem/dt, w_in = tau_syn/dt,
             v_leak = bias/(1-beta)
    LI / CubaLI: the same for the non-spiking read-outs; v_reset = 0; v_threshold = threshold

so every input gain is 1 (snnTorch's and SpikingJelly's convention; Norse, Spyx and the snnc
importer read it back at the same dt). What NIR cannot say goes into metadata (advisory for
other readers, used by snnc's importer after checking it agrees with the parameters): the graph's
``dt``, ``integrator`` ("euler"), and per population the exact decays and bias, the reset mode
("zero" | "subtract" | "none"), ``reset_delay``, ``refractory``, ``spike_compare`` and the
integer ``state_scale``. A recurrent ``Delay(1)`` of a population into itself (pop -> Delay(1) ->
Dense -> pop) is written as NIR's plain cycle, which every reader runs one step late; other
delays are ``Delay`` nodes of ``steps * dt``.

``compat="1.0.4"`` writes what readers pinned to nir <= 1.0.4 (Sinabs 3.1, Rockpool 3.1) load:
their reader passes every dataset of a node to its constructor, so only the fields 1.0.4 has
are written (no ``v_reset``; no ``metadata`` on Linear, Scale, Conv2d, AvgPool2d, Input,
Output), without compression, version "1.0.4"; ``CubaLI`` (new in 1.0.5) is refused.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np

from ..compiler.ir import (
    Conv2d,
    CubaLI,
    CubaLIF,
    Delay,
    Dense,
    Flatten,
    Graph,
    Input,
    Output,
    SumPool2d,
)
from ..compiler.lower import Network, lower
from ..errors import SnncError

DEFAULT_DT = 1e-4
DISCRETE = "discrete: tau = dt/(1-beta), r = tau/dt, w_in = tau_syn/dt (forward Euler, unit input gain)"

# nir 1.0.4's fields per node type (nir/ir/*.py at tag v1.0.4): what its reader accepts
FIELDS_104: dict[str, tuple[str, ...]] = {
    "Input": ("shape",), "Output": ("shape",),
    "Affine": ("weight", "bias", "metadata"), "Linear": ("weight",), "Scale": ("scale",),
    "Conv2d": ("input_shape", "weight", "stride", "padding", "dilation", "groups", "bias"),
    "SumPool2d": ("kernel_size", "stride", "padding", "metadata"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
    "Delay": ("delay", "metadata"), "Flatten": ("input_type", "start_dim", "end_dim", "metadata"),
    "I": ("r", "metadata"), "IF": ("r", "v_threshold", "metadata"),
    "LI": ("tau", "r", "v_leak", "metadata"), "LIF": ("tau", "r", "v_leak", "v_threshold", "metadata"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in", "metadata"),
    "NIRGraph": ("nodes", "edges", "metadata"),
}


def _full(x, shape) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float64), shape))


def _recurrent_delays(net: Network) -> dict[str, str]:
    """Delay(1) nodes of the pattern pop -> Delay(1) -> Dense -> pop, a CubaLIF's recurrent
    connection in the lowered network that nothing else reads: {delay: pop}."""
    uses = Counter(n for c in net.connections for s in c.sources for n in s.path)
    uses.update(n for o in net.outputs for n, _, _, _ in o.program)
    synapses = Counter(c.name for c in net.connections)
    synapses.update(n for o in net.outputs for n, _, _, _ in o.program)
    out = {}
    for c in net.connections:
        if not isinstance(c.synapse, Dense) or c.path or synapses[c.name] != 1 or net.populations[c.dst].kind != "lif":
            continue
        for s in c.sources:
            if s.pop == c.dst and len(s.path) == 1 and uses[s.path[0]] == 1:
                node = net.graph.nodes[s.path[0]]
                if isinstance(node, Delay) and np.all(np.asarray(node.steps) == 1):
                    out[s.path[0]] = c.dst
    return out


def _population(name: str, node, shape, dt: float):
    """A CubaLIF/CubaLI -> (NIR type, fields, snnc metadata)."""
    import nir  # lazy: heavy (h5py)
    cd = _full(node.current_decay, shape)
    vd = _full(node.voltage_decay, shape)
    bias = _full(node.bias, shape)
    spiking = isinstance(node, CubaLIF)
    meta = {"snnc.current_decay": cd, "snnc.voltage_decay": vd, "snnc.bias": bias,
            "snnc.state_scale": int(node.state_scale)}
    if spiking:
        meta.update({"snnc.reset": node.reset, "snnc.reset_delay": int(bool(node.reset_delay)),
                     "snnc.refractory": int(node.refractory), "snnc.spike_compare": node.spike_compare})
        if node.reset_interval:
            raise SnncError(f"population {name!r}: a periodic state reset (reset_interval) has no NIR form")
    no_current = bool(np.all(cd == 1))
    if np.any(vd <= 0):
        if not no_current:
            raise SnncError(f"population {name!r}: a current with no membrane leak (voltage_decay 0, "
                            "current_decay < 1) has no NIR neuron (CubaLIF needs a finite tau_mem)")
        if np.any(bias != 0):
            raise SnncError(f"population {name!r}: an IF neuron with a bias has no NIR form (IF has no "
                            "v_leak)")
        if np.any(vd != 0):
            raise SnncError(f"population {name!r}: voltage_decay 0 for some neurons only")
        kind = "IF" if spiking else "I"
        fields = dict(r=_full(1.0 / dt, shape))
    else:
        tau = dt / vd
        r = tau / dt
        v_leak = bias / vd
        if no_current:
            kind = "LIF" if spiking else "LI"
            fields = dict(tau=tau, r=r, v_leak=v_leak)
        else:
            kind = "CubaLIF" if spiking else "CubaLI"
            with np.errstate(divide="ignore"):
                tau_syn = dt / cd               # current_decay 0 (no leak): tau_syn = w_in = inf
            fields = dict(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=v_leak, w_in=tau_syn / dt)
    if spiking:
        fields["v_threshold"] = _full(node.threshold, shape)
        fields["v_reset"] = np.zeros(shape)
    return getattr(nir, kind)(**fields, metadata=meta), kind


def to_nir(graph: Graph, dt: float | None = None):
    """IR graph -> (``nir.NIRGraph``, notes)."""
    import nir  # lazy: heavy (h5py)
    net = lower(graph)
    notes: list[str] = []
    dt = _time_step(graph, dt, notes)
    skip = _recurrent_delays(net)
    nodes, edges = {}, []
    for name, node in graph.nodes.items():
        if name in skip:
            continue
        preds = graph.predecessors(name)
        written = _nir_nodes(net, name, node, preds, dt, notes)
        nodes.update(written)
        edges.extend((_edge_source(graph, skip, s), name) for s in preds)
        edges.extend((name, extra) for extra in list(written)[1:])      # a weighted pool's Scale
    if any(p.kind == "lif" and p.node.reset != "zero" for p in net.populations.values()):
        notes.append("reset by subtraction (or none) has no NIR form: v_reset = 0 is written, the reset mode "
                     "is in each population's metadata (snnc.reset); other readers reset to zero")
    if skip:
        notes.append(f"recurrent Delay(1) written as plain cycles (every NIR reader runs them one step late): "
                     f"{', '.join(sorted(skip))}")
    meta = {"writer": "snnc", "dt": dt, "integrator": "euler", "discretization": DISCRETE,
            "timing": str(graph.metadata.get("timing", "ir"))}
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)
    return g, notes


def _time_step(graph: Graph, dt: float | None, notes: list[str]) -> float:
    if dt is None:
        dt = graph.metadata.get("dt") if graph.metadata.get("format") == "nir" else None
    if dt is None:
        dt = DEFAULT_DT
        notes.append(f"dt = {DEFAULT_DT:g} written (the model has no time step of its own; --dt sets one)")
    return float(dt)


def _edge_source(graph: Graph, skip: dict[str, str], s: str) -> str:
    """The NIR node an edge from IR node ``s`` leaves: a skipped recurrent Delay's population, a
    weighted pool's Scale."""
    s = skip.get(s, s)
    return f"{s}.scale" if isinstance(graph.nodes[s], SumPool2d) and graph.nodes[s].weight != 1 else s


def _nir_input(net: Network, name: str, node: Input, notes: list[str]):
    import nir  # lazy: heavy (h5py)
    meta = {}
    if node.kind == "bias":     # a per-step drive of v: NIR's input straight into a LIF, gain 1
        bad = [p.name for p in net.neurons if name in p.bias_inputs
               and not np.all(np.asarray(p.node.current_decay) == 1)]
        if bad:
            raise SnncError(f"input {name!r}: a bias input into {bad}, which have a synaptic current, has "
                            "no NIR form (NIR's input would enter the current)")
        meta = {"snnc.kind": "bias"}
        notes.append(f"input {name!r} drives its populations' membranes directly (a bias input; "
                     "values, not spikes)")
    elif node.kind != "spikes":
        raise SnncError(f"input {name!r}: a {node.kind!r} input has no NIR form (NIR inputs are spikes)")
    return nir.Input(input_type={"input": np.array(node.shape)}, metadata=meta)


def _nir_nodes(net: Network, name: str, node, preds, dt: float, notes: list[str]) -> dict:
    """The NIR node(s) of IR node ``name``, one to one (a weighted pool: SumPool2d, then Scale)."""
    import nir  # lazy: heavy (h5py)
    shapes = net.shapes
    in_shape = tuple(shapes[preds[0]]) if preds else None
    if isinstance(node, Input):
        return {name: _nir_input(net, name, node, notes)}
    if isinstance(node, Output):
        return {name: nir.Output(output_type={"output": np.array(node.shape)})}
    if isinstance(node, Dense):
        return {name: nir.Linear(weight=np.asarray(node.weight, np.float64))}
    if isinstance(node, Conv2d):
        w = np.asarray(node.weight, np.float64)
        return {name: nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=w, stride=node.stride,
                                 padding=node.padding, dilation=node.dilation, groups=int(node.groups),
                                 bias=np.zeros(w.shape[0]))}
    if isinstance(node, SumPool2d):
        pool = nir.SumPool2d(kernel_size=np.array(node.kernel), stride=np.array(node.stride),
                             padding=np.array(node.padding))
        if node.weight == 1:
            return {name: pool}
        # a weighted pool: SumPool2d then Scale (per channel of the pooled output)
        return {name: pool, f"{name}.scale": nir.Scale(scale=np.full(shapes[name], float(node.weight)))}
    if isinstance(node, Flatten):
        return {name: nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)}
    if isinstance(node, Delay):
        steps = np.asarray(node.steps, np.float64)
        return {name: nir.Delay(delay=np.ascontiguousarray(np.broadcast_to(steps, shapes[name])) * dt)}
    if isinstance(node, (CubaLIF, CubaLI)):
        return {name: _population(name, node, tuple(shapes[name]), dt)[0]}
    raise SnncError(f"node {name!r} ({type(node).__name__}) has no NIR form")


def export_nir(graph: Graph, path: str, dt: float | None = None, compat: str | None = None) -> list[str]:
    """Write ``graph`` as a NIR file; returns notes (what NIR could not say)."""
    import nir  # lazy: heavy (h5py)
    g, notes = to_nir(graph, dt)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise SnncError(f"{path}: folder {d} does not exist")
    if compat is None:
        nir.write(path, g)
    elif compat == "1.0.4":
        write_104(path, g)
        notes.append("nir 1.0.4 format: no v_reset (readers reset to 0), no compression")
    else:
        raise SnncError(f"unknown --nir-compat {compat!r}; the one supported is 1.0.4")
    return notes


def write_104(path: str, graph) -> None:
    """``graph`` (a nir.NIRGraph) as nir 1.0.4 reads it (see module docstring)."""
    import h5py  # lazy: heavy
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.4")
        _write_node_104(f.create_group("node"), graph)


def _write_node_104(group, node) -> None:
    import h5py  # lazy: heavy
    import nir  # lazy: heavy
    kind = type(node).__name__
    if kind not in FIELDS_104:
        raise SnncError(f"NIR {kind} does not exist in nir 1.0.4 (new in 1.0.5); it cannot be written "
                        "with --nir-compat 1.0.4")
    group.create_dataset("type", data=kind, dtype=h5py.string_dtype())
    allowed = FIELDS_104[kind]
    if kind == "NIRGraph":
        nodes = group.create_group("nodes")
        for k, n in node.nodes.items():
            _write_node_104(nodes.create_group(k), n)
        group.create_dataset("edges", data=np.array(node.edges, dtype=object).reshape(-1, 2),
                             dtype=h5py.string_dtype())
    elif kind in ("Input", "Output"):
        t = node.input_type["input"] if kind == "Input" else node.output_type["output"]
        group.create_dataset("shape", data=np.asarray(t, np.int64))
    elif kind == "Flatten":
        group.create_dataset("input_type", data=np.asarray(node.input_type["input"], np.int64))
        group.create_dataset("start_dim", data=int(node.start_dim))
        group.create_dataset("end_dim", data=int(node.end_dim))
    else:
        for k in allowed:
            if k == "metadata":
                continue
            v = getattr(node, k)
            if k == "input_shape" and v is None:
                continue
            group.create_dataset(k, data=np.asarray(v))
    meta = getattr(node, "metadata", None) or {}
    if "metadata" in allowed and meta:
        m = group.create_group("metadata")
        for k, v in meta.items():
            if isinstance(v, str):
                m.create_dataset(k, data=v, dtype=h5py.string_dtype())
            else:
                m.create_dataset(k, data=np.asarray(v))
    del nir
