"""The pass pipeline: an imported IR graph -> a checked, folded, legal, quantized graph.

``compile_graph`` runs the passes of ``PASSES`` in order, each a function ``Graph -> Graph``
that never mutates its input, with ``Graph.lint()`` (structure, parameters, fixed view) after
every one, so a pass that breaks the graph is named with the node it broke::

    lint      structural and parameter checks of the imported graph
    fold      average (sum) pooling folded into the synapse that reads it (exact)
    legalize  the Loihi rules: what feeds what, graded/bias inputs, state-scale units
    quantize  the fixed-point view (``Graph.fixed``, Loihi 2 integers) and its report

``ensure_compiled(graph)`` is what every consumer of a fixed view calls (engines, the mapper,
the exporters): the graph itself when it has one, else the pipeline's result. Print the graph
after each pass with ``python -m snnc.compiler.pipeline model.onnx`` (or ``snnc info --passes``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterator, List, Optional, Tuple

from ..errors import SnncError
from .fold import fold_pooling
from .ir import Graph
from .quantize import legalize, quantize_legal
from .validate import lint

Pass = Callable[[Graph], Graph]

PASSES: List[Tuple[str, Pass]] = [
    ("lint", lint),
    ("fold", fold_pooling),
    ("legalize", legalize),
    ("quantize", quantize_legal),
]


def _passes(calibrate: Optional[Pass]) -> List[Tuple[str, Pass]]:
    """``PASSES``, with ``calibrate`` (a quantizer choosing scales on data) in place of quantize."""
    if calibrate is None:
        return list(PASSES)
    return [(n, p) for n, p in PASSES if n != "quantize"] + [("calibrate", calibrate)]


def run_passes(graph: Graph, calibrate: Optional[Pass] = None, where: str = "") -> Iterator[Tuple[str, Graph]]:
    """Yield ``(pass name, graph after it)`` for each pass, linted after every one that returns a
    new graph; an error names ``where`` (the model file) first."""
    prefix = f"{where}: " if where else ""
    for name, step in _passes(calibrate):
        try:
            out = step(graph)
        except SnncError as e:
            raise SnncError(f"{prefix}{e}") from None
        if not isinstance(out, Graph):
            raise SnncError(f"{prefix}pass {name!r} returned {type(out).__name__}, not a Graph")
        if out is not graph:            # a pass that returns its input has changed nothing
            graph = out.lint(where=f"{prefix}after pass {name!r}")
        yield name, graph


def compile_graph(graph: Graph, *, calibrate: Optional[Pass] = None, where: str = "") -> Graph:
    """The pipeline: lint -> fold -> legalize -> quantize (or ``calibrate``), linted after each
    pass; returns the quantized graph (``graph`` itself is not changed).

    ``calibrate``: a pass ``Graph -> Graph`` that quantizes with scales chosen on data (e.g.
    ``snnc.calibrate.calibrate`` bound to the calibration spikes) instead of ``quantize``.
    ``where``: the model file, named first in an error."""
    for _, graph in run_passes(graph, calibrate, where):
        pass
    return graph


def ensure_compiled(graph: Graph, where: str = "") -> Graph:
    """``graph`` itself when it has a fixed-point view (its consumer checks what it needs, as
    an artifact's loader does), else ``compile_graph(graph)``."""
    if graph.fixed:
        return graph
    return compile_graph(graph, where=where)


def describe(graph: Graph, calibrate: Optional[Pass] = None) -> str:
    """The graph after each pass, as ``snnc info`` prints it, one section per pass (a pass that
    returns its input graph is printed as unchanged)."""
    parts, last = [], None
    for name, g in run_passes(graph, calibrate):
        parts.append(f"== after {name} ==" + (" (unchanged)" if g is last else f"\n{g}"))
        last = g
    return "\n\n".join(parts)


def main(argv=None) -> int:
    """``python -m snnc.compiler.pipeline model.snnc``: print the graph after each pass."""
    ap = argparse.ArgumentParser(prog="python -m snnc.compiler.pipeline", description=__doc__.split("\n")[0])
    ap.add_argument("model", help="a compiled .snnc artifact (its float view is compiled again)")
    args = ap.parse_args(argv)
    from .artifact import load
    try:
        g = load(args.model)
        g.fixed = {}
        print(describe(g))
    except SnncError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
