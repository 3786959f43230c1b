"""The lowered network: the one walk of "population -> delay/flatten -> synapse -> population".

``lower(graph) -> Network`` reads a checked graph (quantized or not) once and returns what every
engine, the mapper and the exporters need, so that a new neuron kind is taught in one place:

- ``populations``: every ``Input`` (kind ``"input"``) and every neuron population (``"lif"``
  CubaLIF, ``"li"`` CubaLI read-out, ``"delta"``, ``"sigma_delta"``, ``"sigma"``), with its
  node, shape, fixed-point view (``Graph.fixed``, or None before quantization) and state scale;
- ``connections``: each synapse on its way into one population, with every path that feeds it::

      a_dst[t] += post_shift( synapse( sum_k flatten_k( s_k[t - pre_k] ) ) )[t - post]

  ``pre_k`` (over source k's shape) and ``post`` (over the synapse's output) are the summed
  integer steps of the ``Delay`` nodes on the way (per neuron); ``flatten_k`` a ``Flatten`` on
  source k's path (C order); ``synapse`` is None for a direct link (a population or Input fed
  through Delay/Flatten only: an Input into a ``Delta`` encoder);
- ``outputs``: the host program of each ``Output`` over recorded populations (delays, flatten,
  ``Average``, host synapses), in evaluation order;
- ``depth``/``order``: populations by their longest zero-delay path from the inputs, the order
  in which a time-stepped engine updates them within a step (IR time: synapses instantaneous).

Time is IR time (one step = one Loihi step, synapses instantaneous); a backend that adds a step
per hop (Lava) derives its own offsets from ``connections``. Nothing here depends on a backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import SnncError
from .fixed import message_scale, state_scale
from .ir import (SIGMA_DELTA, Average, Conv2d, CubaLI, CubaLIF, Delay, Delta, Dense, Flatten, Graph, Input, Output,
                 Sigma, SigmaDelta, SumPool2d)
from .passes import check

SYNAPSES = (Dense, Conv2d, SumPool2d)
POPULATION_KINDS = {CubaLIF: "lif", CubaLI: "li", Delta: "delta", SigmaDelta: "sigma_delta", Sigma: "sigma"}
WIRES = (Delay, Flatten)            # nodes on a path that carry values without a synapse


@dataclass(frozen=True, eq=False)
class Population:
    """An Input or a neuron population. ``shape``: IR shape per sample; ``fixed``: its Loihi
    integer view or None; ``state_scale``: S in fixed point (0 for Inputs and float graphs);
    ``bias_inputs``: names of ``Input(kind="bias")`` added to its bias each step."""
    name: str
    kind: str
    node: object
    shape: Tuple[int, ...]
    fixed: Optional[object] = None
    state_scale: int = 0
    bias_inputs: Tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class Source:
    """One path into a connection from population (or Input) ``pop``: ``delay`` int64 steps over
    ``pop``'s shape (sum of the Delays on the path), ``flatten``: a Flatten on the path;
    ``path``: the node names between ``pop`` and the synapse, in forward order."""
    pop: str
    delay: np.ndarray
    flatten: bool = False
    path: Tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Connection:
    """Sources -> synapse -> (Delays, Flatten) -> population ``dst`` (see module doc).

    ``name``: the synapse's node name (a direct link: ``"<src>-><dst>"``); ``synapse``: its IR
    node (float weights) or None; ``fixed``: its ``FixedSynapse`` or None; ``in_shape``: what
    the synapse reads (after the sources' Flatten); ``out_shape``: what it writes; ``post_delay``
    int64 steps over ``out_shape``; ``post_flatten``: a Flatten after the synapse; ``path``:
    node names between the synapse and ``dst``; ``slot``: the place of ``last_hop`` among
    ``dst``'s inputs (the order in which the graph sums them)."""
    name: str
    dst: str
    sources: Tuple[Source, ...]
    synapse: Optional[object]
    fixed: Optional[object]
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    post_delay: np.ndarray
    post_flatten: bool = False
    path: Tuple[str, ...] = ()
    slot: int = 0

    @property
    def source_pops(self) -> List[str]:
        """The populations and Inputs whose messages reach the synapse, each once, in path order."""
        return list(dict.fromkeys(s.pop for s in self.sources))

    @property
    def last_hop(self) -> str:
        """The node right before ``dst`` on this connection (the synapse, a Delay/Flatten, or the
        source population of a direct link)."""
        if self.path:
            return self.path[-1]
        if self.synapse is not None:
            return self.name
        s = self.sources[0]
        return s.path[-1] if s.path else s.pop

    @property
    def min_delay(self) -> int:
        """The fewest steps from a source spike to ``dst`` (0: instantaneous in IR time)."""
        return min(int(s.delay.min()) for s in self.sources) + int(self.post_delay.min())


@dataclass(frozen=True, eq=False)
class OutputRead:
    """Output ``name`` computed on the host: ``program`` lists ``(node, kind, arg, preds)`` in
    evaluation order; kind ``"pop"`` (a population's recorded output or an Input's data),
    ``"delay"`` (arg: int steps over the node's input shape), ``"flatten"``, ``"average"`` (arg:
    groups), ``"synapse"`` (arg: the IR node; a host-side synapse), ``"output"``. The value of a
    node with several predecessors is their sum."""
    name: str
    shape: Tuple[int, ...]
    program: Tuple[Tuple[str, str, object, Tuple[str, ...]], ...]

    @property
    def pops(self) -> List[str]:
        return [n for n, kind, _, _ in self.program if kind == "pop"]

    def wired(self) -> List[str]:
        """The program nodes whose values reach the Output through Delay/Flatten only (the
        populations, Inputs, host synapses or Averages it reads as they are)."""
        step = {n: (kind, preds) for n, kind, _, preds in self.program}
        out, todo = [], list(step[self.name][1])
        while todo:
            n = todo.pop()
            kind, preds = step[n]
            if kind in ("delay", "flatten"):
                todo.extend(preds)
            elif n not in out:
                out.append(n)
        return out


@dataclass
class Network:
    """The lowered network of ``graph`` (module doc). ``shapes``: every IR node's output shape;
    ``cache``: what engines derive from it, made on their first run and kept with it (the
    reference's population parameters and input bounds)."""
    graph: Graph
    populations: Dict[str, Population] = field(default_factory=dict)
    connections: List[Connection] = field(default_factory=list)
    outputs: List[OutputRead] = field(default_factory=list)
    depth: Dict[str, int] = field(default_factory=dict)
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False, compare=False)   # engines' data made once per network

    @property
    def inputs(self) -> List[Population]:
        return [self.populations[n] for n in self.graph.inputs]

    @property
    def neurons(self) -> List[Population]:
        """Neuron populations (no Inputs), in ``order``."""
        return [self.populations[n] for n in self.order if self.populations[n].kind != "input"]

    @property
    def order(self) -> List[str]:
        """Inputs and populations, by depth (stable in graph order within a depth)."""
        names = list(self.populations)
        return sorted(names, key=lambda n: (self.depth.get(n, 0), names.index(n)))

    @property
    def fixed(self) -> bool:
        """True when every connection and population has its fixed-point view."""
        return all(c.fixed is not None for c in self.connections if c.synapse is not None) and \
            all(p.fixed is not None for p in self.populations.values() if p.kind != "input")

    def into(self, pop: str) -> List[Connection]:
        """The connections into population ``pop``."""
        return [c for c in self.connections if c.dst == pop]

    def out_of(self, pop: str) -> List[Connection]:
        """The connections with ``pop`` among their sources."""
        return [c for c in self.connections if any(s.pop == pop for s in c.sources)]

    def of_synapse(self, syn: str) -> List[Connection]:
        """The connections through synapse node ``syn`` (one per population it feeds)."""
        return [c for c in self.connections if c.synapse is not None and c.name == syn]

    def readers(self, pop: str) -> List[str]:
        """The Outputs that read population (or Input) ``pop``."""
        return [o.name for o in self.outputs if pop in o.pops]

    def output_units(self) -> Dict[str, int]:
        """Per Output that reads graded messages as they are (through Delay/Flatten): their
        integer units per 1.0 in fixed point (``fixed.message_scale``; a graded Input's messages
        are ``round(x * 2**frac_bits)``)."""
        out = {}
        for o in self.outputs:
            scales = {_graded_input_scale(self.graph, n) or message_scale(self.graph, n) for n in o.wired()}
            if scales - {0}:
                if len(scales) != 1:
                    raise SnncError(f"output {o.name!r} reads messages of different units {sorted(scales)}")
                out[o.name] = scales.pop()
        return out

    def __str__(self) -> str:
        rows = [f"lowered network: {len(self.populations)} populations, {len(self.connections)} connections"]
        for n in self.order:
            p = self.populations[n]
            extra = f" bias inputs {list(p.bias_inputs)}" if p.bias_inputs else ""
            rows.append(f"  [{self.depth.get(n, 0)}] {p.kind:11s} {n} {p.shape}"
                        f"{' S=' + str(p.state_scale) if p.state_scale else ''}{extra}")
        for c in self.connections:
            srcs = ", ".join(f"{s.pop}{'+' + str(int(s.delay.max())) if s.delay.size and s.delay.max() else ''}"
                             f"{' flat' if s.flatten else ''}" for s in c.sources)
            kind = type(c.synapse).__name__ if c.synapse is not None else "link"
            post = int(c.post_delay.max()) if c.post_delay.size else 0
            rows.append(f"  {srcs} -> {kind} {c.name} {c.in_shape}->{c.out_shape}"
                        f"{' +' + str(post) if post else ''} -> {c.dst}")
        for o in self.outputs:
            rows.append(f"  output {o.name} {o.shape} <- {o.pops}")
        return "\n".join(rows)


def _graded_input_scale(graph: Graph, name: str) -> int:
    """2**frac_bits for a graded Input (its fixed-point messages), else 0."""
    node = graph.nodes[name]
    return (1 << int(node.frac_bits)) if isinstance(node, Input) and node.kind == "graded" else 0


def _err(name: str, node, msg: str) -> SnncError:
    return SnncError(f"node {name!r} ({type(node).__name__}): {msg}")


def _steps_over(name: str, node: Delay, shape) -> np.ndarray:
    try:
        steps = np.array(np.broadcast_to(np.asarray(node.steps, dtype=np.int64), tuple(shape)))
    except ValueError:
        raise _err(name, node, f"delay steps {np.shape(node.steps)} do not fit {tuple(shape)}") from None
    if np.any(steps < 0):
        raise _err(name, node, "negative delay")
    return steps


def _is_population(node) -> bool:
    return isinstance(node, (Input,) + tuple(POPULATION_KINDS))


def _sources(graph: Graph, start: str, shapes) -> List[Source]:
    """Every path back from ``start`` through Delay/Flatten nodes to a population or Input."""
    out: List[Source] = []

    def walk(name: str, chain: List[str]):
        node = graph.nodes[name]
        if _is_population(node):
            out.append(_sources_of_chain(graph, name, list(reversed(chain)), shapes))
            return
        if isinstance(node, WIRES):
            for p in graph.predecessors(name):
                walk(p, chain + [name])
            return
        raise _err(name, node, f"feeds {start!r} directly; a synapse must read a population or Input "
                               "(through Delay/Flatten only): run the fold pass, or put a population between")

    for p in graph.predecessors(start):
        walk(p, [])
    return out


def _targets(graph: Graph, syn: str) -> List[Tuple[str, List[str]]]:
    """Every path forward from synapse ``syn`` through Delay/Flatten to a population:
    (population, the wire nodes on the way). Paths into Outputs are the host's (``_output``)."""
    out: List[Tuple[str, List[str]]] = []

    def walk(name: str, chain: List[str]):
        node = graph.nodes[name]
        if isinstance(node, tuple(POPULATION_KINDS)):
            out.append((name, chain))
        elif isinstance(node, WIRES):
            for s in graph.successors(name):
                walk(s, chain + [name])
        elif not isinstance(node, (Output, Average) + SYNAPSES):
            raise _err(name, node, f"is fed by synapse {syn!r}; not a population, Delay, Flatten or Output")

    for s in graph.successors(syn):
        walk(s, [])
    return out


def _connection(graph: Graph, syn: Optional[str], dst: str, chain: List[str], sources: List[Source],
                shapes) -> Connection:
    out_shape = tuple(shapes[syn]) if syn is not None else tuple(shapes[dst])
    post, flat = _chain_delay(graph, chain, out_shape)
    if syn is None:
        name, node, fx = f"{sources[0].pop}->{dst}", None, None
        in_shape = out_shape
    else:
        name, node, fx = syn, graph.nodes[syn], graph.fixed.get(syn)
        in_shape = tuple(shapes[graph.predecessors(syn)[0]])
    conn = Connection(name, dst, tuple(sources), node, fx, in_shape, out_shape, post, flat, tuple(chain))
    return replace(conn, slot=graph.predecessors(dst).index(conn.last_hop))


def _direct_links(graph: Graph, pop: str, shapes) -> List[Connection]:
    """Paths into ``pop`` with no synapse: population/Input -> Delay/Flatten -> ``pop``
    (bias-kind Inputs are not links: see ``Population.bias_inputs``)."""
    links = []

    def walk(name: str, chain: List[str]):
        node = graph.nodes[name]
        if isinstance(node, Input) and node.kind == "bias" and not chain:
            return
        if _is_population(node):
            src = _sources_of_chain(graph, name, chain, shapes)
            links.append(_connection(graph, None, pop, [], [src], shapes))
        elif isinstance(node, WIRES):
            for p in graph.predecessors(name):
                walk(p, [name] + chain)
        elif not isinstance(node, SYNAPSES):
            raise _err(name, node, f"feeds population {pop!r}; a population reads synapses, Delay/Flatten "
                                   "paths from populations or Inputs, and bias inputs (an Average is a host "
                                   "read-out: it feeds only Outputs)")

    for p in graph.predecessors(pop):
        walk(p, [])
    return links


def _chain_delay(graph: Graph, chain: List[str], shape) -> Tuple[np.ndarray, bool]:
    """The summed Delay steps of the wire nodes ``chain`` (forward order) over ``shape`` (a Delay
    after a Flatten counts over the flat neurons), and whether a Flatten is on it."""
    total = np.zeros(tuple(shape), dtype=np.int64)
    flattened = False
    for n in chain:
        nd = graph.nodes[n]
        if isinstance(nd, Flatten):
            flattened = True
        else:
            at = (int(np.prod(shape)),) if flattened else tuple(shape)
            total = total + _steps_over(n, nd, at).reshape(tuple(shape))
    return total, flattened


def _sources_of_chain(graph: Graph, src: str, chain: List[str], shapes) -> Source:
    total, flattened = _chain_delay(graph, chain, shapes[src])
    return Source(src, total, flattened, tuple(chain))


def _output(graph: Graph, oname: str, shapes, pops) -> OutputRead:
    """The host program of Output ``oname`` (``OutputRead``)."""
    program: List[Tuple[str, str, object, Tuple[str, ...]]] = []
    done, visiting = set(), set()

    def visit(name: str):
        if name in done:
            return
        node = graph.nodes[name]
        if name in visiting:
            raise _err(name, node, f"is on a cycle without a population (on the way to output {oname!r})")
        visiting.add(name)
        preds = tuple(graph.predecessors(name))
        if name in pops:
            program.append((name, "pop", None, ()))
        else:
            if not preds:
                raise _err(name, node, "has no input")
            for p in preds:
                visit(p)
            if isinstance(node, Delay):
                program.append((name, "delay", _steps_over(name, node, shapes[preds[0]]), preds))
            elif isinstance(node, Flatten):
                program.append((name, "flatten", None, preds))
            elif isinstance(node, Average):
                program.append((name, "average", int(node.groups), preds))
            elif isinstance(node, SYNAPSES):
                program.append((name, "synapse", node, preds))
            elif isinstance(node, Output):
                program.append((name, "output", None, preds))
            else:
                raise _err(name, node, f"cannot be computed on the host for output {oname!r}")
        done.add(name)

    visit(oname)
    return OutputRead(oname, tuple(graph.nodes[oname].shape), tuple(program))


def _population(graph: Graph, name: str, node, shape) -> Population:
    if isinstance(node, Input):
        return Population(name, "input", node, tuple(shape))
    bias_inputs = tuple(p for p in graph.predecessors(name)
                        if isinstance(graph.nodes[p], Input) and graph.nodes[p].kind == "bias")
    for b in bias_inputs:
        if not isinstance(node, CubaLIF) or tuple(graph.nodes[b].shape) != tuple(node.shape):
            raise _err(b, graph.nodes[b], f"a bias input may feed only CubaLIF populations of its shape "
                                          f"{tuple(graph.nodes[b].shape)} directly, not {name!r}")
    fx = graph.fixed.get(name)
    scale = state_scale(graph, name) if fx is not None or isinstance(node, SIGMA_DELTA) else 0
    return Population(name, POPULATION_KINDS[type(node)], node, tuple(shape), fx, scale, bias_inputs)


def _depths(net: Network) -> Dict[str, int]:
    """Longest path of zero-delay connections from the inputs, counted in populations."""
    depth = {n: 0 for n in net.populations}
    for _ in range(len(depth) + 1):
        changed = False
        for c in net.connections:
            for s in c.sources:
                if int(s.delay.min()) + int(c.post_delay.min()) == 0:
                    need = depth[s.pop] + 1
                    if need > depth[c.dst]:
                        depth[c.dst] = need
                        changed = True
        if not changed:
            return depth
    raise SnncError("graph has a cycle of populations without a delay of at least one step: a recurrent "
                    "connection must pass through a Delay node (steps >= 1)")


def lower(graph: Graph) -> Network:
    """The lowered network of a checked graph (see module doc); raises SnncError naming the node
    where the graph is not population -> wires -> synapse -> wires -> population."""
    shapes = check(graph)
    net = Network(graph, shapes=dict(shapes))
    for name, node in graph.nodes.items():
        if _is_population(node):
            net.populations[name] = _population(graph, name, node, shapes[name])
        elif not isinstance(node, SYNAPSES + WIRES + (Output, Average)):
            raise _err(name, node, "node type the lowering does not know")
    for name, node in graph.nodes.items():
        if isinstance(node, SYNAPSES):
            targets = _targets(graph, name)
            if targets:
                sources = _sources(graph, name, shapes)
                for dst, chain in targets:
                    net.connections.append(_connection(graph, name, dst, chain, sources, shapes))
    for name, node in graph.nodes.items():
        if isinstance(node, tuple(POPULATION_KINDS)):
            net.connections.extend(_direct_links(graph, name, shapes))
    net.outputs = [_output(graph, o, shapes, net.populations) for o in graph.outputs]
    net.depth = _depths(net)
    return net
