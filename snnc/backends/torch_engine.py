"""``--backend torch``: Loihi 2 fixed point on torch (CPU threads, or CUDA when present),
bit-identical to the reference simulator.

The plan is the reference's time-batched one (``reference_batched``): in topological order, a
synapse is one product over all ``T * N`` rows of a batch (Dense: a GEMM; Conv/SumPool: unfold
(im2col) and a GEMM per group, never Winograd/FFT/TF32 kernels, whose results are not exact), a
Delay a shift along time, and a population's update runs ``T`` times elementwise, in float64
on the integers exactly as ``reference._Sim``'s update (trunc of the 12-bit decay product,
24-bit wrap of u, saturation of v). Population parameters come from the reference's own group
builder. The exactness argument is the reference's: every value is an integer held in float,
products and sums are exact in float64 (and in float32 where the bound ``sum|w| < 2**24`` holds,
as each input is a 0/1 spike). Graphs with cycles are refused (use ``reference``).
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from ..compiler.fixed import U_WRAP, V_MAX, state_scale
from ..compiler.ir import Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d
from ..compiler.passes import check
from ..compiler.validate import validate
from ..errors import SnncError
from . import host_io
from .reference_batched import F32_EXACT, acyclic_order, batchable, synapse_weights
from .result import RunResult

POPULATIONS = (CubaLIF, CubaLI)
SYNAPSES = (Dense, Conv2d, SumPool2d)
_HALF = float(U_WRAP >> 1)
_VMAX = float(V_MAX)
TORCH_RESETS = ("li", "zero", "sub", "late", "none")    # reference._reset_kind values this engine computes
CHUNK_ENTRIES = 1 << 25             # values of all nodes per chunk of samples (T * N rows)


def device_name(device: Optional[str] = None) -> str:
    import torch  # lazy: heavy
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class _TorchRun:
    def __init__(self, graph: Graph, steps: int, n: int, device: str, threads: int = 1):
        import torch  # lazy: heavy
        from .reference import _Sim           # the reference's population parameters
        self.torch, self.g, self.T, self.n, self.dev, self.threads = torch, graph, steps, n, device, threads
        self.shapes = check(graph)
        self.order = acyclic_order(graph)
        self.sim = _Sim(graph, "fixed", n, build=False)
        self.values: Dict[str, object] = {}
        self.counts: Dict[str, np.ndarray] = {}

    def _t(self, a, dtype=None):
        torch = self.torch
        return torch.as_tensor(np.asarray(a), dtype=dtype or torch.float64, device=self.dev)

    def _full(self, name):
        return (self.T, self.n) + tuple(self.shapes[name])

    def _sum(self, srcs, shape):
        out = self.values[srcs[0]].reshape(shape).clone()
        for s in srcs[1:]:
            out += self.values[s].reshape(shape)
        return out

    def run(self, data: Dict[str, np.ndarray]):
        g = self.g
        for name in self.order:
            node, preds = g.nodes[name], g.predecessors(name)
            if isinstance(node, Input):
                x = data[name]
                if node.kind != "bias" and self.sim._feeds_synapse(name) and not np.all((x == 0) | (x == 1)):
                    raise SnncError("fixed-point runs take binary spikes; got graded values at the input "
                                    f"{name!r} of a synapse")
                self.values[name] = self._t(x)
            elif isinstance(node, Delay):
                self.values[name] = self._delay(name, node, self._sum(preds, self._full(name)))
            elif isinstance(node, Flatten):
                self.values[name] = self._sum(preds, self._full(preds[0])).reshape(self._full(name))
            elif isinstance(node, SYNAPSES):
                self.values[name] = self._synapse(name, preds)
            elif isinstance(node, POPULATIONS):
                self.values[name] = self._population(name, node, preds)
            elif isinstance(node, Average):
                x = self._sum(preds, self._full(preds[0])).reshape(self.T * self.n, node.groups, -1)
                self.values[name] = x.mean(dim=2).reshape(self._full(name))
            elif isinstance(node, Output):
                self.values[name] = self._sum(preds, self._full(name))
            else:
                raise SnncError(f"torch engine: node {name!r} of type {type(node).__name__} is not supported")
        return self.values

    def _delay(self, name, node, x):
        steps = np.broadcast_to(np.asarray(node.steps, dtype=np.int64), self.shapes[name]).reshape(-1)
        T = self.T
        out = self.torch.zeros_like(x)
        xf, of = x.reshape(T, self.n, -1), out.reshape(T, self.n, -1)
        for d in np.unique(steps):
            d = int(d)
            if d >= T:
                continue
            if np.all(steps == d):
                of[d:] = xf[:T - d]
                break
            idx = self._t(np.nonzero(steps == d)[0], self.torch.int64)
            of[d:, :, idx] = xf[:T - d][:, :, idx]
        return out

    def _synapse(self, name, preds):
        torch = self.torch
        spec = synapse_weights(self.g, name, tuple(self.shapes[preds[0]]))
        dt = torch.float32 if spec["bound"] < F32_EXACT else torch.float64
        rows = self.T * self.n
        w = self._t(spec["w"], dt)
        out = None
        for s in preds:
            x = self.values[s].to(dt)
            if spec["kind"] == "dense":
                y = self._gemm(x.reshape(rows, -1), w.T).to(torch.float64)
            else:
                y = self._conv(spec, x.reshape((rows,) + tuple(self.shapes[preds[0]])), w, name)
            if spec["floor_mul"] is not None:
                y = torch.floor(y * spec["floor_mul"])
            if spec["clamp"]:
                y = torch.clamp(y, -float(1 << 23), float((1 << 23) - 1))
            out = y if out is None else out + y
        return out.reshape(self._full(name))

    def _conv(self, spec, x, w, name):
        """im2col (unfold) and a GEMM per group: exact integer sums in any order."""
        torch = self.torch
        o_n, cpg, kh, kw = w.shape
        g = spec["groups"]
        opg = o_n // g
        _, ho, wo = self.shapes[name]
        r = x.shape[0]
        wm = w.reshape(g, opg, cpg * kh * kw)
        out = torch.empty((r, o_n, ho * wo), dtype=torch.float64, device=self.dev)
        per = max(1, (1 << 24) // max(1, ho * wo * x.shape[1] * kh * kw))
        for lo in range(0, r, per):
            hi = min(r, lo + per)
            cols = torch.nn.functional.unfold(x[lo:hi], (kh, kw), dilation=spec["dilation"],
                                              padding=spec["padding"], stride=spec["stride"])   # (b, C*kh*kw, L)
            cols = cols.reshape(hi - lo, g, cpg * kh * kw, ho * wo)
            y = self._gemm(wm.unsqueeze(0), cols)                                          # (b, g, opg, L)
            out[lo:hi] = y.reshape(hi - lo, o_n, ho * wo).to(torch.float64)
        return out

    def _gemm(self, a, b):
        """``a @ b`` with ``self.threads`` CPU threads (the rest of the run uses one, see run_torch)."""
        torch = self.torch
        if self.dev != "cpu" or self.threads == 1:
            return torch.matmul(a, b)
        torch.set_num_threads(self.threads)
        try:
            return torch.matmul(a, b)
        finally:
            torch.set_num_threads(1)

    def _population(self, name, node, preds):
        """T steps of the reference update (``reference._Sim._update_op``), in torch float64."""
        torch, g, T, n = self.torch, self.g, self.T, self.n
        size = int(np.prod(self.shapes[name]))
        grp = self.sim._make_group([name])
        bias_in = [q for q in preds if isinstance(g.nodes[q], Input) and g.nodes[q].kind == "bias"]
        syn = [q for q in preds if q not in bias_in]
        a_all = self._sum(syn, (T, n, size)) * 64.0 if syn else None
        d_all = None
        if bias_in:
            sc = float(state_scale(g, name))
            d_all = self._sum(bias_in, (T, n, size)) * sc
            if not bool(torch.all(d_all == torch.round(d_all))):
                raise SnncError(f"population {name!r}: bias input is not a multiple of "
                                f"1/{int(sc)} (the population's state unit)")
        p = {k: (self._t(getattr(grp, k)) if isinstance(getattr(grp, k), np.ndarray) else getattr(grp, k))
             for k in ("cu", "cv", "vth", "out_scale")}
        bias = self._t(grp.bias) if isinstance(grp.bias, np.ndarray) else grp.bias
        refr = self._t(grp.refr) if grp.refr is not None else None
        kind = grp.kind
        if kind not in TORCH_RESETS:
            raise SnncError(f"torch engine: population {name!r}: reset rule {kind!r} is not implemented in the "
                            "torch engine yet; use --backend reference")
        resets = [(iv, off) for iv, off, _, _ in grp.resets]
        u = torch.zeros((n, size), dtype=torch.float64, device=self.dev)
        v, s = torch.zeros_like(u), torch.zeros_like(u)
        ref = torch.zeros_like(u) if refr is not None else None
        cnt = torch.zeros((n, size), dtype=torch.int64, device=self.dev)
        out = torch.empty((T, n, size), dtype=torch.float64, device=self.dev)
        vth = p["vth"]
        for t in range(T):
            for iv, off in resets:
                if t % iv == off:
                    u.zero_()
                    v.zero_()
            u = torch.trunc(u * p["cu"])
            if a_all is not None:
                u = u + a_all[t]
            u = torch.where(u > _HALF, u - U_WRAP, u)
            u = torch.where(u <= -_HALF, u + U_WRAP, u)
            v = torch.trunc(v * p["cv"]) + u
            if bias is not None:
                v = v + bias
            if d_all is not None:
                v = v + d_all[t]
            if kind == "late":
                v = v - s * vth
            v = torch.clamp(v, -_VMAX, _VMAX)
            if kind == "li":
                s = v * p["out_scale"]
                out[t] = s
                continue
            if ref is not None:
                v = torch.where(ref > 0, torch.zeros_like(v), v)
                ref = torch.clamp(ref - 1, min=0)
            sb = v > vth
            if kind == "zero":
                v = torch.where(sb, torch.zeros_like(v), v)
            elif kind == "sub":
                v = torch.where(sb, v - vth, v)
            s = sb.to(torch.float64)
            cnt += sb
            if ref is not None:
                ref = torch.where(sb, refr.expand_as(ref), ref)
            out[t] = s
        if isinstance(node, CubaLIF):
            self.counts[name] = cnt.reshape((n,) + tuple(self.shapes[name])).cpu().numpy()
        self.state = getattr(self, "state", {})
        self.state[name] = dict(u=u.reshape((n,) + tuple(self.shapes[name])).cpu().numpy(),
                                v=v.reshape((n,) + tuple(self.shapes[name])).cpu().numpy())
        return out.reshape(self._full(name))


def run_torch(graph: Graph, spikes, device: Optional[str] = None, batch_size: Optional[int] = None,
              threads: Optional[int] = None) -> RunResult:
    """Run ``graph`` (fixed point) on spikes ``(N, *input_shape, T)`` with torch on ``device``
    (default: CUDA when available, else CPU); outputs and counts as ``run_reference``.

    CPU: the GEMMs use ``threads`` threads (default 1), everything else one: the elementwise
    steps and im2col are small, and OpenMP threads contending for shared cores slowed them ~20x
    in our measurements (PilotNet LIF, 2 shared cores: 5.3 s with torch's 2 threads, 0.28 s with 1)."""
    import torch  # lazy: heavy
    start = time.perf_counter()
    validate(graph)
    from .reference import supported
    if not graph.fixed:
        raise SnncError("torch engine: fixed-point runs need the quantization pass first (snnc compile)")
    if not supported(graph) or not batchable(graph):
        raise SnncError("torch engine: it runs feed-forward graphs (Dense, Conv2d, SumPool2d, Delay, Flatten, "
                        "CubaLIF, CubaLI, Average) whose synapses read spikes; for recurrent graphs use "
                        "--backend reference")
    inputs = host_io.check_batch(graph, spikes, "torch")
    if any(graph.nodes[k].kind == "graded" for k in inputs if k in graph.nodes):
        from ..compiler.quantize import graded_values       # the host rounds graded inputs
        inputs = {k: (graded_values(graph, k, v) if k in graph.nodes and graph.nodes[k].kind == "graded"
                      else v) for k, v in inputs.items()}
    first = np.asarray(next(iter(inputs.values())))
    n, steps = first.shape[0], first.shape[-1]
    shapes = check(graph)
    dev = device_name(device)
    per_row = sum(int(np.prod(shapes[k])) for k in graph.nodes)
    chunk = max(1, CHUNK_ENTRIES // max(1, steps * per_row))
    if batch_size:
        chunk = min(chunk, int(batch_size))
    odt = np.float64 if any(isinstance(v, CubaLI) for v in graph.nodes.values()) else np.float32
    outs = {o: np.zeros((n,) + tuple(shapes[o]) + (steps,), odt) for o in graph.outputs}
    counts = {p: np.zeros((n,) + tuple(shapes[p]), np.int64)
              for p, v in graph.nodes.items() if isinstance(v, CubaLIF)}
    allow = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False          # TF32 products are not exact
    saved = torch.get_num_threads()
    threads = int(threads or 1)
    if dev == "cpu":
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                data = {k: np.ascontiguousarray(np.moveaxis(np.asarray(v)[lo:hi], -1, 0), dtype=np.float64)
                        for k, v in inputs.items()}
                run = _TorchRun(graph, steps, hi - lo, dev, threads)
                vals = run.run(data)
                for o in graph.outputs:
                    outs[o][lo:hi] = np.moveaxis(vals[o].cpu().numpy(), 0, -1)
                for p, c in run.counts.items():
                    counts[p][lo:hi] = c
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.set_num_threads(saved)
    result = RunResult(output=outs[graph.outputs[0]], counts=counts, engine=f"torch-{dev}",
                       seconds=time.perf_counter() - start)
    result.outputs = outs
    return result
