"""Fused Lava backend: one Lava process steps the whole IR graph, for fast CPU simulation.

``run_lava_fused(graph, spikes, mode="fixed"|"float", timeout=600.0, chunk=None) -> RunResult``

The layered backend (``lava_backend``) emits one Lava process per population and per synapse,
which is what Loihi runs (its CPU simulation joins a population and its Dense synapses:
``lava_layers``); on Lava's CPU simulation every process is an OS process and every
connection a channel, so the time goes into per-step messaging between them. Here the network is
three Lava processes:

    io Injector  ->  FusedNetwork  ->  io Extractor

``FusedNetwork`` (``fused/process.py``) is a custom Lava process whose ``PyLoihiProcessModel`` (tags ``fixed_pt`` and
``floating_pt``) holds the reference simulator's compiled step plan (``reference._Sim``) and, in
``run_spk``, runs one IR step of the whole graph for the whole batch (samples are vectorized: one
Lava run of T steps serves all N samples, each from a zero state). Lava time step k (from 1) is
IR step k - 1: there are no per-layer offsets, the output is in IR time as it is.

Every step the process receives the batch's input ``(N * input size,)`` and sends
``[graph output values (N * output size), spikes of every population (N * neurons)]``; the host
crops nothing and sums the spikes into counts. The arithmetic is the reference simulator's, so the
outputs are bit-identical with ``reference`` (fixed: = Lava ``fixed_pt`` layered, tested) and
``reference-float``. Input and output buffers hold ``chunk`` steps: the host sends a chunk, runs
it, reads it, so memory does not grow with T.

As with the layered backend, the simulation runs in a child process
(``python -m snnc.backends.lava_fused JOB_DIR``) with a timeout; its process group is killed on
timeout.
"""
from __future__ import annotations

import pickle
import time
from typing import Optional

import numpy as np

from ..compiler.ir import Graph
from ..compiler.lower import Network, lower
from ..compiler.validate import validate
from ..errors import SnncError
from . import host_io
from .child import run_child
from .lava_models import name_models
from .result import RunResult

CHUNK_BYTES = 32 << 20          # io buffers: at most this many bytes of output per chunk


# ----------------------------------------------------------------------------- layout
def layout(net: Network, batch: int):
    """(input name, input size, [(output, size)], [(population, size)], out vector length), read
    from the lowered network (``compiler.lower``): every Output, every CubaLIF population."""
    if len(net.graph.inputs) != 1:
        raise SnncError(f"fused Lava backend: needs exactly one Input, got {net.graph.inputs}")
    iname = net.graph.inputs[0]
    isize = net.populations[iname].size
    outs = [(o.name, int(np.prod(o.shape))) for o in net.outputs]
    pops = [(p.name, p.size) for p in net.populations.values() if p.kind == "lif"]
    total = batch * (sum(s for _, s in outs) + sum(s for _, s in pops))
    return iname, isize, outs, pops, total


def run_job(graph: Graph, spikes: np.ndarray, mode: str, chunk: Optional[int] = None):
    """In this process: run the batch ``spikes`` (N, *shape, T) through Lava; returns
    ({output: (N, *shape, T) float32 (float64 with CubaLI read-outs)}, {population: (N, *shape, T) int8},
    timing)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.injector import Injector, PyLoihiInjectorModel

    t0 = time.perf_counter()
    n, T = spikes.shape[0], spikes.shape[-1]
    low = lower(graph)
    iname, isize, outs, pops, total = layout(low, n)
    shapes = low.shapes
    if chunk is None:
        chunk = max(1, min(T, CHUNK_BYTES // max(1, 8 * (total + n * isize))))
    from .fused.process import FusedNetwork, PyFusedFixedModel, PyFusedFloatModel
    net = FusedNetwork(graph=pickle.dumps(graph), mode=mode, batch=n, in_size=n * isize,
                       out_size=total, name="snnc_fused")
    inj = Injector(shape=(n * isize,), buffer_size=chunk)
    ext = Extractor(shape=(total,), buffer_size=chunk)
    inj.out_port.connect(net.s_in)
    net.s_out.connect(ext.in_port)
    tag = "fixed_pt" if mode == "fixed" else "floating_pt"
    cfg = Loihi2SimCfg(select_tag=tag, exception_proc_model_map={
        Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel,
        FusedNetwork: PyFusedFixedModel if mode == "fixed" else PyFusedFloatModel})
    cfg = name_models(cfg, (inj, net, ext))            # no model search in Lava's compiler
    x = np.ascontiguousarray(np.moveaxis(spikes.reshape(n, isize, T), -1, 0).reshape(T, n * isize),
                             dtype=np.float64)
    raw = np.zeros((T, total), np.float64)
    timing = {"build": time.perf_counter() - t0, "input": 0.0, "run": 0.0, "read": 0.0}
    t = time.perf_counter()
    net.create_runtime(run_cfg=cfg)
    timing["compile"] = time.perf_counter() - t
    try:
        for lo in range(0, T, chunk):
            hi = min(T, lo + chunk)
            t = time.perf_counter()
            for k in range(lo, hi):
                inj.send(x[k])
            t1 = time.perf_counter()
            net.run(condition=RunSteps(num_steps=hi - lo))
            t2 = time.perf_counter()
            for k in range(lo, hi):
                raw[k] = ext.receive()
            t3 = time.perf_counter()
            timing["input"] += t1 - t
            timing["run"] += t2 - t1
            timing["read"] += t3 - t2
    finally:
        net.stop()
    out_arrays, pop_arrays, k = {}, {}, 0
    odt = np.float64 if any(p.kind == "li" for p in low.populations.values()) else np.float32
    for name, size in outs:
        block = raw[:, k:k + n * size].reshape((T, n) + tuple(shapes[name]))
        out_arrays[name] = np.ascontiguousarray(np.moveaxis(block, 0, -1), dtype=odt)
        k += n * size
    for name, size in pops:
        block = raw[:, k:k + n * size].reshape((T, n) + tuple(shapes[name]))
        pop_arrays[name] = np.ascontiguousarray(np.moveaxis(block, 0, -1)).astype(np.int8)
        k += n * size
    timing["total"] = time.perf_counter() - t0
    return out_arrays, pop_arrays, timing


def run_lava_fused(graph: Graph, spikes, mode: str = "fixed", timeout: float = 600.0,
                   chunk: Optional[int] = None) -> RunResult:
    """Run ``graph`` on Lava as one fused process. ``spikes``: ``(N, *input_shape, T)``."""
    if mode not in ("fixed", "float"):
        raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
    start = time.perf_counter()
    validate(graph)
    net = lower(graph)
    x = np.asarray(host_io.check_batch(net, spikes, f"lava-fused-{mode}")[graph.inputs[0]])
    shapes = net.shapes
    iname = graph.inputs[0] if len(graph.inputs) == 1 else None
    if iname is None:
        raise SnncError(f"fused Lava backend: needs exactly one Input, got {graph.inputs}")
    if x.ndim < 2 or tuple(x.shape[1:-1]) != tuple(shapes[iname]):
        raise SnncError(f"fused Lava backend: input {iname!r} expects (N, "
                        f"{', '.join(map(str, shapes[iname]))}, T), got {x.shape}")
    if graph.nodes[iname].kind == "graded":
        raise SnncError(f"fused Lava backend: input {iname!r} is graded (analog values); the fused "
                        "engines take binary spikes: use --backend lava-fixed (or lava-float)")
    if mode == "fixed":
        from .reference import supported
        if not supported(graph):
            raise SnncError("fused Lava backend: the graph has node types the fused process does not "
                            "step (see reference.FAST_NODES)")
        if graph.nodes[iname].kind != "bias" and not np.all((x == 0) | (x == 1)):
            raise SnncError("fused Lava backend: fixed-point runs take binary spikes; got graded values")
    res = run_child("snnc.backends.lava_fused", {"graph": graph, "spikes": x, "mode": mode, "chunk": chunk},
                    timeout, "fused Lava run")
    outs, pops, timing = res["outputs"], res["spikes"], res["timing"]
    counts = {k: v.sum(axis=-1, dtype=np.int64) for k, v in pops.items()}
    result = RunResult(output=outs[graph.outputs[0]], counts=counts, engine=f"lava-fused-{mode}",
                       seconds=time.perf_counter() - start)
    result.outputs = outs
    result.timing = timing
    return result


def _work(job: dict) -> dict:
    outs, spikes, timing = run_job(job["graph"], job["spikes"], job["mode"], job.get("chunk"))
    return {"outputs": outs, "spikes": spikes, "timing": timing}


if __name__ == "__main__":
    from .child import child_main
    from .lava_worker import skip_pandas
    skip_pandas()
    child_main(_work)
