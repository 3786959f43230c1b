"""Graph passes that inspect the IR: order, shapes, structural checks.

Each pass is a plain function of a ``Graph``; none mutates it.
"""
from __future__ import annotations

from typing import Dict, List

from ..errors import SnncError
from .ir import RESETS, SIGMA_DELTA, CubaLI, CubaLIF, Delay, Graph, Input, Output, Shape, ShapeError


def topo_order(graph: Graph) -> List[str]:
    """Nodes in an order where every node comes after its instantaneous sources.

    Edges out of a ``Delay`` whose every step is >= 1 are not instantaneous, so cycles
    through such a delay are fine; any other cycle is an error (it would have no meaning).
    """
    def timed(src: str) -> bool:
        node = graph.nodes[src]
        return isinstance(node, Delay) and node.min_steps >= 1

    indeg = {n: 0 for n in graph.nodes}
    for s, d in graph.edges:
        if not timed(s):
            indeg[d] += 1
    ready = [n for n in graph.nodes if indeg[n] == 0]
    order: List[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in graph.edges:
            if s == n and not timed(s):
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    if len(order) != len(graph.nodes):
        stuck = [n for n in graph.nodes if n not in order]
        raise SnncError(f"graph has a cycle without a delay of at least one step through {stuck}: "
                        "a recurrent connection must pass through a Delay node (steps >= 1)")
    return order


def infer_shapes(graph: Graph) -> Dict[str, Shape]:
    """The per-sample output shape of every node; raises SnncError naming the node on mismatch."""
    topo_order(graph)                      # rejects cycles without a delay
    shapes: Dict[str, Shape] = {}
    pending = list(graph.nodes)
    while pending:
        progress = False
        for name in list(pending):
            node = graph.nodes[name]
            srcs = graph.predecessors(name)
            if isinstance(node, Input):
                if srcs:
                    raise SnncError(f"node {name!r}: an Input cannot have incoming edges")
                shapes[name] = tuple(node.shape)
            elif not srcs and isinstance(node, (CubaLIF, CubaLI)):
                shapes[name] = tuple(node.shape)        # bias-driven: no input at all
            else:
                if not srcs:
                    raise SnncError(f"node {name!r} ({type(node).__name__}) has no input")
                known = [shapes[s] for s in srcs if s in shapes]
                # a population in a cycle: its shape is its own; other nodes wait for all inputs
                if len(known) < len(srcs) and not (isinstance(node, (CubaLIF, CubaLI) + SIGMA_DELTA) and known):
                    continue
                if any(tuple(k) != tuple(known[0]) for k in known):
                    raise SnncError(f"node {name!r} ({type(node).__name__}) sums inputs of different shapes "
                                    f"{[tuple(k) for k in known]} from {srcs}")
                try:
                    shapes[name] = tuple(node.output_shape(tuple(known[0])))
                except ShapeError as e:
                    raise SnncError(f"node {name!r} ({type(node).__name__}): {e}") from None
            pending.remove(name)
            progress = True
        if not progress:
            raise SnncError(f"cannot infer the shapes of {pending}: is each connected to an Input?")
    # back-edges into populations are only known now
    for s, d in graph.edges:
        node = graph.nodes[d]
        if isinstance(node, (CubaLIF, CubaLI, Output) + SIGMA_DELTA) and tuple(shapes[s]) != tuple(node.shape):
            raise SnncError(f"edge {s!r} -> {d!r}: shape {shapes[s]} does not match {d!r} "
                            f"of shape {tuple(node.shape)}")
    return shapes


def check(graph: Graph) -> Dict[str, Shape]:
    """Structural checks (inputs, outputs, edges, cycles, shapes); returns the shapes."""
    if not graph.inputs:
        raise SnncError("graph has no Input node")
    if not graph.outputs:
        raise SnncError("graph has no Output node")
    for s, d in graph.edges:
        for n in (s, d):
            if n not in graph.nodes:
                raise SnncError(f"edge {s!r} -> {d!r} names an unknown node {n!r}")
    for name in graph.outputs:
        if graph.successors(name):
            raise SnncError(f"output node {name!r} cannot feed other nodes")
    check_neurons(graph)
    return infer_shapes(graph)


def check_neurons(graph: Graph) -> None:
    """Reset modes of CubaLIF populations; CubaLI read-outs feed only Outputs."""
    for name, node in graph.nodes.items():
        if isinstance(node, CubaLIF):
            if node.reset not in RESETS:
                raise SnncError(f"population {name!r}: unknown reset {node.reset!r} (one of {', '.join(RESETS)})")
            if node.refractory and (node.reset != "zero" or node.reset_delay):
                raise SnncError(f"population {name!r}: a refractory period needs reset 'zero' without "
                                f"reset_delay (got reset {node.reset!r}, reset_delay {node.reset_delay})")
        if isinstance(node, CubaLI):
            bad = [d for d in graph.successors(name) if not isinstance(graph.nodes[d], Output)]
            if bad:
                raise SnncError(f"leaky integrator {name!r} is a non-spiking read-out (the host reads v) "
                                f"and may feed only an Output, feeds {bad}")
