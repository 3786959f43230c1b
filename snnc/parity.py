"""Parity: run one input through several engines and compare them (design notes §5).

- spike agreement: fraction of (neuron, step) output entries equal to the reference engine's;
- identical: whether the whole output array is equal;
- spike counts: per population, total over batch and time, side by side.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from .backends.result import RunResult
from .compiler.printing import table


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of equal entries of two spike arrays of the same shape."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return 0.0
    return float(np.mean(a == b)) if a.size else 1.0


def compare(results: Dict[str, RunResult], reference: str) -> Dict[str, Dict[str, object]]:
    """Per engine: agreement and identity with ``reference``, output spikes, per-layer totals."""
    ref = results[reference].output
    return {name: dict(agreement=agreement(r.output, ref), identical=bool(np.array_equal(r.output, ref)),
                       output_spikes=int(np.sum(r.output)), layers=r.layer_totals(), seconds=r.seconds)
            for name, r in results.items()}


def parity_table(summary: Dict[str, Dict[str, object]], reference: str) -> str:
    """Two tables: engines vs the reference, then per-layer spike counts side by side."""
    engines = list(summary)
    rows = [[e, f"{100 * s['agreement']:.3f} %", "yes" if s["identical"] else "no", s["output_spikes"],
             f"{s['seconds']:.2f}"] for e, s in summary.items()]
    out = [table(rows, ["engine", f"agreement vs {reference}", "identical", "output spikes", "seconds"])]
    layers: List[str] = []
    for s in summary.values():
        layers += [k for k in s["layers"] if k not in layers]
    rows = [[layer] + [summary[e]["layers"].get(layer, "-") for e in engines] for layer in layers]
    out.append(table(rows, ["population (spikes)"] + engines))
    return "\n\n".join(out)


def run_parity(onnx_path: str, spikes: np.ndarray, engines: Optional[List[str]] = None,
               timeout: float = 600.0, torch_output: Optional[np.ndarray] = None, graph=None):
    """Run ``onnx_path`` through onnxruntime and the compiled graph on each engine.

    The reference is PyTorch when ``torch_output`` is given, else onnxruntime.
    ``graph``: ``onnx_path`` already compiled (else it is compiled here).
    Returns (results by engine, summary, reference name).
    """
    from . import api
    from .backends import registry

    engines = engines or ["reference", "lava-float", "lava-fixed"]
    graph = graph if graph is not None else api.compile(onnx_path)     # (the compiled onnx_path)
    x, _ = api.check_input(graph, spikes)
    results: Dict[str, RunResult] = {}
    if torch_output is not None:
        results["pytorch"] = RunResult(output=np.asarray(torch_output, dtype=np.float32), engine="pytorch")
    results["onnxruntime"] = registry.get("onnxruntime").run(onnx_path, x)
    for e in engines:
        results[e] = api.run(graph, x, backend=e, timeout=timeout)
    reference = "pytorch" if torch_output is not None else "onnxruntime"
    return results, compare(results, reference), reference
