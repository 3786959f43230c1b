"""``snnc deploy``: map onto Loihi 2 (dry run), write a deployment bundle, or run on hardware.

- ``dry_run``: map the compiled graph onto cores and chips (snnc.compiler.mapping), optionally
  estimate activity/latency/energy from a bit-accurate simulation of an input, write the map
  as JSON. Works anywhere.
- ``write_bundle``: everything a Loihi host needs: the artifact, the map, a test input, the
  expected output spikes of the bit-accurate simulation for it, and ``run.py`` that runs the
  test input (on Loihi where the runtime is present, else in simulation) and checks the spikes.
- ``run_hardware``: fails at once without Intel's runtime (snnc.backends.loihi_hw).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Optional, Union

import numpy as np

from .compiler import artifact
from .compiler.estimates import Estimate, counts_from_run, estimate
from .compiler.fixed import delta_input_scale
from .compiler.ir import Graph
from .compiler.lower import Network, lower
from .compiler.mapping import Mapping, map_graph
from .compiler.resources import DEFAULT_SYSTEM, LOIHI2
from .errors import SnncError
from .files import check_output_dir, write_atomic

BUNDLE_FILES = ("model.snnc", "map.json", "test_input.npy", "expected_output.npz", "run.py",
                "README.txt", "manifest.json")


def _graph(model: Union[str, Graph]) -> Graph:
    from .api import _as_graph
    return _as_graph(model)


def _delta_scale(net: Network) -> int:
    """Input values per integer of a Delta encoder the input feeds directly (0: it feeds none)."""
    for c in net.out_of(net.graph.inputs[0]):
        p = net.populations[c.dst]
        if c.synapse is None and p.kind == "delta":
            return delta_input_scale(net.graph, c.dst)
    return 0


def test_input(graph: Graph, steps: Optional[int] = None, seed: int = 0, rate: float = 0.1) -> np.ndarray:
    """A deterministic test input ``(*input_shape, T)``: binary spikes (probability ``rate``),
    for a graded input values uniform in [-1, 2) on its grid at every step, and for an input
    feeding a sigma-delta ``Delta`` encoder one frame (values in [0, 4) on its grid) held for
    every step, as netx's PilotNet SDNN input is."""
    net = lower(graph)
    T = int(steps or graph.metadata.get("time_steps") or 16)
    shape = tuple(net.shapes[graph.inputs[0]])
    rng = np.random.default_rng(seed)
    node = graph.nodes[graph.inputs[0]]
    k = _delta_scale(net)
    if k:
        frame = rng.integers(0, 4 * k, shape) / float(k)
        return np.repeat(frame[..., None], T, -1).astype(np.float32)
    if node.kind == "graded":
        k = float(2 ** node.frac_bits)
        return (np.round(rng.uniform(-1, 2, shape + (T,)) * k) / k).astype(np.float32)
    return (rng.random(shape + (T,)) < rate).astype(np.float32)


def input_messages(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Messages the input sends per neuron over the run (``x``: one sample, time last): its
    spikes, or for a graded input the steps with a nonzero (rounded) value; for an input written
    into a sigma-delta ``Delta`` encoder's a_in, the steps with a non-zero value (a_in holds no
    state: the host sends the whole frame every step, zeros need no message)."""
    node = graph.nodes[graph.inputs[0]]
    if node.kind == "graded":
        return (np.round(np.asarray(x, np.float64) * 2.0 ** node.frac_bits) != 0).sum(-1)
    if _delta_scale(lower(graph)):
        return (np.asarray(x, np.float64) != 0).sum(-1)
    return np.asarray(x).sum(-1)


def dry_run(model: Union[str, Graph], system: str = DEFAULT_SYSTEM, chips: Optional[int] = None,
            spikes: Optional[np.ndarray] = None, backend: str = "reference", res=LOIHI2):
    """(mapping, estimate or None, report dict). ``spikes`` (one sample) adds estimates."""
    graph = _graph(model)
    m = map_graph(graph, res=res, system=system, chips=chips)
    report = {"format": "snnc-loihi2-map", "version": 1, "model": graph.metadata.get("source", ""),
              "map": m.to_dict()}
    est = None
    if spikes is not None:
        est = estimate_run(graph, m, spikes, backend)
        report["estimate"] = est.to_dict()
        report["estimate"]["input"] = "given"
    return m, est, report


def estimate_run(graph: Graph, m: Mapping, spikes: np.ndarray, backend: str = "reference") -> Estimate:
    from . import api
    x = np.asarray(spikes)
    return _estimate(graph, m, x, api.run(graph, x, backend=backend))


def _estimate(graph: Graph, m: Mapping, x: np.ndarray, result) -> Estimate:
    """The estimates of map ``m`` from ``result``, the run of input ``x`` (one sample, or a
    batch whose first sample is used)."""
    shapes = lower(graph).shapes
    xin = x if x.ndim == len(shapes[graph.inputs[0]]) + 1 else x[0]
    return estimate(m, counts_from_run(result, shapes), xin.shape[-1],
                    input_counts={graph.inputs[0]: input_messages(graph, xin)})


def write_json(report: dict, path: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    write_atomic(path, write)


RUN_SCRIPT = '''#!/usr/bin/env python
"""Run this bundle's test input and check the output spikes against the expected ones.

  python run.py                     # Loihi 2 if Intel's runtime is importable, else lava-fixed
  python run.py --backend reference # or lava-fixed, loihi2
Writes output.npz (same format as 'snnc run': 'output', 'counts/<layer>') and exits 0 when every
output spike equals expected_output.npz, 1 when any differs.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="auto", choices=["auto", "loihi2", "lava-fixed", "reference"])
    p.add_argument("-o", "--output", default=os.path.join(HERE, "output.npz"))
    a = p.parse_args(argv)
    from snnc import api
    from snnc.backends import loihi_hw
    model = os.path.join(HERE, "model.snnc")
    x = np.load(os.path.join(HERE, "test_input.npy"))
    backend = a.backend
    if backend == "auto":
        ok, why = loihi_hw.runtime_status()
        backend = "loihi2" if ok else "lava-fixed"
        if not ok:
            print("Loihi 2 runtime not found; running the bit-accurate simulation (lava-fixed)")
    if backend == "loihi2":
        from snnc.compiler import artifact
        result = loihi_hw.run_hw(artifact.load(model), x)
    else:
        result = api.run(model, x, backend=backend)
    arrays = {"output": result.output}
    arrays.update({"counts/" + k: v for k, v in result.counts.items()})
    np.savez(a.output, **arrays)
    expected = np.load(os.path.join(HERE, "expected_output.npz"))["output"]
    diff = int(np.sum(np.asarray(result.output) != expected))
    print(f"{backend}: {int(np.count_nonzero(result.output))} non-zero outputs -> {a.output}; "
          f"{'MATCH' if diff == 0 else 'MISMATCH'} with expected_output.npz ({diff} values differ)")
    return 0 if diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
'''


def write_bundle(model: Union[str, Graph], out_dir: str, spikes: Optional[np.ndarray] = None,
                 system: str = DEFAULT_SYSTEM, chips: Optional[int] = None,
                 sim_backend: str = "reference") -> dict:
    """Write the deployment bundle to ``out_dir`` (created; must be empty if it exists)."""
    from . import api
    graph = _graph(model)
    check_output_dir(out_dir, "--bundle")
    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise SnncError(f"{out_dir}: bundle folder exists and is not empty; choose a new one")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise SnncError(f"{out_dir}: folder {parent} does not exist")
    x = test_input(graph) if spikes is None else np.asarray(spikes, dtype=np.float32)
    m, est, report = dry_run(graph, system=system, chips=chips)      # fails before writing anything
    result = api.run(graph, x, backend=sim_backend)
    est = _estimate(graph, m, x, result)
    report["estimate"] = est.to_dict()
    report["estimate"]["input"] = "test_input.npy"
    os.makedirs(out_dir, exist_ok=True)
    artifact.save(graph, os.path.join(out_dir, "model.snnc"))
    write_json(report, os.path.join(out_dir, "map.json"))
    np.save(os.path.join(out_dir, "test_input.npy"), x)
    result.to_npz(os.path.join(out_dir, "expected_output.npz"))
    with open(os.path.join(out_dir, "run.py"), "w") as f:
        f.write(RUN_SCRIPT)
    with open(os.path.join(out_dir, "README.txt"), "w") as f:
        f.write(f"snnc Loihi 2 deployment bundle\n\n"
                f"model.snnc           compiled, quantized model (snnc artifact)\n"
                f"map.json             placement: {len(m.cores)} cores on {m.chips} chip(s) of {m.system}; "
                f"estimates for the test input\n"
                f"test_input.npy       test input spikes {tuple(x.shape)} (time last)\n"
                f"expected_output.npz  output of the bit-accurate simulation ({result.engine}) for it\n"
                f"run.py               python run.py  (needs snnc; Loihi 2 runtime if present)\n\n"
                f"{m.table()}\n")
    manifest = {"files": {}, "sim_backend": result.engine, "cores": len(m.cores), "chips": m.chips}
    for name in BUNDLE_FILES[:-1]:
        with open(os.path.join(out_dir, name), "rb") as f:
            manifest["files"][name] = hashlib.sha256(f.read()).hexdigest()
    write_json(manifest, os.path.join(out_dir, "manifest.json"))
    return manifest


def run_hardware(model: Union[str, Graph], spikes: np.ndarray):
    """Run on Loihi 2; SnncError before anything is loaded when the runtime is missing."""
    from .backends import loihi_hw
    loihi_hw.require_runtime()
    graph = _graph(model)
    map_graph(graph)                         # refuse what does not fit before sending it
    return loihi_hw.run_hw(graph, spikes)
