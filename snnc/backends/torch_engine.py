"""``--backend torch``: Loihi 2 fixed point on torch (CPU threads, or CUDA when present),
bit-identical to the reference simulator.

The plan is the reference's time-batched one (``reference_batched.BatchedRun`` over the lowered
network), with torch as its array library (``TorchArrays``): a synapse is one product over all
``T * N`` rows of a batch (Dense: a GEMM; Conv/SumPool: unfold (im2col) and a GEMM per group,
never Winograd/FFT/TF32 kernels, whose results are not exact), a delay a shift along time, and a
population's update runs ``T`` times elementwise, in float64 on the integers exactly as
``populations.CubaGroup``'s update (trunc of the 12-bit decay product, 24-bit wrap of u,
saturation of v) on the same parameters (``populations.cuba_params``). The exactness argument is
the reference's: every value is an integer held in float, products and sums are exact in float64
(and in float32 where the bound ``sum|w| < 2**24`` holds, as each input is a 0/1 spike). A graph
with cycles runs the same plan as a step loop (``BatchedRun._run_stepwise``: each connection one
product over the N rows of a step). Sigma-delta populations and graded synapses are refused
(use ``reference``).
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from ..compiler.fixed import U_WRAP, V_MAX
from ..compiler.ir import Graph
from ..compiler.lower import lower
from ..compiler.validate import validate
from ..errors import SnncError
from . import host_io
from .plan import CLAMP, SynapseSpec, input_values, result_buffers, time_major
from .populations import CubaParams
from .reference_batched import F32_EXACT, BatchedRun, _at, cuba_on_spikes
from .result import RunResult

_HALF = float(U_WRAP >> 1)
_VMAX = float(V_MAX)
CHUNK_ENTRIES = 1 << 25             # values of all nodes per chunk of samples (T * N rows)


def device_name(device: Optional[str] = None) -> str:
    import torch  # lazy: heavy
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class TorchArrays:
    """The time-batched plan's torch kernels on ``device`` (GEMMs on ``threads`` CPU threads)."""

    def __init__(self, device: str, threads: int = 1):
        import torch  # lazy: heavy
        self.torch, self.dev, self.threads = torch, device, threads
        self.kernels: Dict[str, str] = {}
        self.steps_cycles = True            # cycles: BatchedRun's step loop

    def asarray(self, a, dtype=None):
        return self.torch.as_tensor(np.asarray(a), dtype=dtype or self.torch.float64, device=self.dev)

    def numpy(self, x) -> np.ndarray:
        return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)

    def shift(self, x, steps: np.ndarray):
        """``out[t] = x[t - d]`` per neuron along time (zero while t < d)."""
        T, n = x.shape[:2]
        steps = np.broadcast_to(steps, tuple(x.shape[2:])).reshape(-1)
        out = self.torch.zeros_like(x)
        xf, of = x.reshape(T, n, -1), out.reshape(T, n, -1)
        for d in np.unique(steps):
            d = int(d)
            if d >= T:
                continue
            if np.all(steps == d):
                of[d:] = xf[:T - d]
                break
            idx = self.asarray(np.nonzero(steps == d)[0], self.torch.int64)
            of[d:, :, idx] = xf[:T - d][:, :, idx]
        return out

    def synapse(self, spec: SynapseSpec, x, lead: int = 0, x_max: float = 1.0, reuse: bool = False):
        """One synapse input over all rows ``x (R, *in_shape)`` (values in [0, x_max]) after
        ``lead`` zero rows -> (lead + R, out) float64, post-processed (``reuse``: unused)."""
        torch = self.torch
        dt = torch.float32 if spec.bound * x_max < F32_EXACT else torch.float64
        self.kernels[spec.name] = ("gemm" if spec.kind == "dense" else "unfold-gemm") + ("32" if dt == torch.float32
                                                                                          else "64")
        w = self.asarray(spec.w, dt)
        rows = x.shape[0]
        if spec.kind == "dense":
            y = self._gemm(x.reshape(rows, -1).to(dt), w.T).to(torch.float64)
        else:
            y = self._conv(spec, x.to(dt), w)
        if spec.floor_mul is not None:
            y = torch.floor(y * spec.floor_mul)
        if spec.clamp:
            y = torch.clamp(y, -CLAMP, CLAMP - 1)
        if lead:
            y = torch.cat([torch.zeros((lead,) + tuple(y.shape[1:]), dtype=y.dtype, device=y.device), y])
        return y

    def _conv(self, spec: SynapseSpec, x, w):
        """im2col (unfold) and a GEMM per group: exact integer sums in any order."""
        torch = self.torch
        stride, padding, dilation, g = spec.conv
        o_n, cpg, kh, kw = w.shape
        opg = o_n // g
        _, ho, wo = spec.out_shape
        r = x.shape[0]
        wm = w.reshape(g, opg, cpg * kh * kw)
        out = torch.empty((r, o_n, ho * wo), dtype=torch.float64, device=self.dev)
        per = max(1, (1 << 24) // max(1, ho * wo * x.shape[1] * kh * kw))
        for lo in range(0, r, per):
            hi = min(r, lo + per)
            cols = torch.nn.functional.unfold(x[lo:hi], (kh, kw), dilation=dilation, padding=padding,
                                              stride=stride)                       # (b, C*kh*kw, L)
            cols = cols.reshape(hi - lo, g, cpg * kh * kw, ho * wo)
            y = self._gemm(wm.unsqueeze(0), cols)                                  # (b, g, opg, L)
            out[lo:hi] = y.reshape(hi - lo, o_n, ho * wo).to(torch.float64)
        return out.reshape(r, -1)

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

    def _param(self, x):
        return self.asarray(x) if isinstance(x, np.ndarray) else x

    def zeros(self, shape):
        return self.torch.zeros(tuple(shape), dtype=self.torch.float64, device=self.dev)

    def at(self, x, t: int, steps: np.ndarray):
        """``x[t - d]`` per neuron of a series ``x`` (T, N, *shape) (zero where t < d)."""
        return _at(x, t, steps, self.zeros, lambda i: self.asarray(i, self.torch.int64))

    def start(self, params: CubaParams, n: int, a_bound, drive: bool, scale: float):
        """The state of one population (``a_bound`` unused: torch always wraps and clips)."""
        torch = self.torch
        u = torch.zeros((n, params.size), dtype=torch.float64, device=self.dev)
        return dict(params=params, scale=scale, u=u, v=torch.zeros_like(u), s=torch.zeros_like(u),
                    p={k: self._param(getattr(params, k)) for k in ("cu", "cv", "vth", "out_scale", "bias")},
                    refr=self.asarray(params.refr) if params.refr is not None else None,
                    ref=torch.zeros_like(u) if params.refr is not None else None,
                    cnt=torch.zeros((n, params.size), dtype=torch.int64, device=self.dev))

    def step(self, st, t: int, a, d):
        """One step of the reference update (``populations.CubaGroup.update``), in torch float64."""
        params = st["params"]
        if d is not None and not bool(self.torch.all(d == self.torch.round(d))):
            raise SnncError(f"population {params.names[0]!r}: bias input is not a multiple of "
                            f"1/{int(st['scale'])} (the population's state unit)")
        for iv, off, sl in params.resets:
            if t % iv == off:
                st["u"][:, sl] = 0.0
                st["v"][:, sl] = 0.0
        self._integrate(params, st["p"], st, a, d)
        if params.kind == "li":
            st["s"] = st["v"] * st["p"]["out_scale"]
        else:
            self._spike(params, st["p"], st, st["refr"])
        return st["s"]

    def finish(self, st):
        return st["cnt"], dict(u=st["u"], v=st["v"])

    def stepper(self, params: CubaParams, T: int, n: int, d_all, a_bound, scale: float) -> "_TorchStepper":
        """One population over T steps, advanced a chunk of steps at a time (``reference_batched``'s
        ``CubaStepper``; here the plan gives all steps at once)."""
        return _TorchStepper(self, params, T, n, d_all, a_bound, scale)


    def _integrate(self, params: CubaParams, p, st, a, d):
        torch = self.torch
        above = st["v"] > p["vth"] if params.kind == "snt" else None
        u = torch.trunc(st["u"] * p["cu"])
        if a is not None:
            u = u + a
        u = torch.where(u > _HALF, u - U_WRAP, u)
        u = torch.where(u <= -_HALF, u + U_WRAP, u)
        v = torch.trunc(st["v"] * p["cv"]) + u
        if p["bias"] is not None:
            v = v + p["bias"]
        if d is not None:
            v = v + d
        if params.kind == "late":
            v = v - st["s"] * p["vth"]
        st["u"], st["v"], st["above"] = u, torch.clamp(v, -_VMAX, _VMAX), above

    def _spike(self, params: CubaParams, p, st, refr):
        torch = self.torch
        v, vth, ref = st["v"], p["vth"], st["ref"]
        if ref is not None:
            v = torch.where(ref > 0, torch.zeros_like(v), v)
            ref = torch.clamp(ref - 1, min=0)
        m = v - st["above"] * vth if st["above"] is not None else v
        sb = m > vth
        if params.kind == "zero":
            v = torch.where(sb, torch.zeros_like(v), v)
        elif params.kind in ("sub", "snt"):
            v = torch.where(sb, v - vth, v)
        st["cnt"] += sb
        if ref is not None:
            ref = torch.where(sb, refr.expand_as(ref), ref)
        st["v"], st["s"], st["ref"] = v, sb.to(torch.float64), ref


class _TorchStepper:
    """``TorchArrays.stepper``: ``advance(t0, t1, a)`` with ``a`` the sums of steps t0..t1-1."""

    def __init__(self, xp: TorchArrays, params: CubaParams, T: int, n: int, d_all, a_bound, scale: float):
        self.xp, self.d_all, self.scale = xp, d_all, scale
        self.st = xp.start(params, n, a_bound, d_all is not None, scale)
        self.out = xp.torch.empty((T, n, params.size), dtype=xp.torch.float64, device=xp.dev)

    def advance(self, t0: int, t1: int, a) -> None:
        for t in range(t0, t1):
            self.out[t] = self.xp.step(self.st, t, a[t - t0] * 64.0 if a is not None else None,
                                       self.d_all[t] * self.scale if self.d_all is not None else None)

    def result(self):
        return (self.out,) + self.xp.finish(self.st)


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
    if not graph.fixed:
        raise SnncError("torch engine: fixed-point runs need the quantization pass first (snnc compile)")
    net = lower(graph)
    inputs = host_io.check_batch(net, spikes, "torch")
    if not cuba_on_spikes(net):
        raise SnncError("torch engine: it runs graphs of CUBA populations whose synapses read 0/1 spikes; "
                        "for sigma-delta or graded graphs use --backend reference")
    inputs = input_values(graph, inputs, "fixed")
    first = np.asarray(next(iter(inputs.values())))
    n, steps = first.shape[0], first.shape[-1]
    dev = device_name(device)
    per_row = sum(int(np.prod(s)) for s in net.shapes.values())
    chunk = max(1, CHUNK_ENTRIES // max(1, steps * per_row))
    if batch_size:
        chunk = min(chunk, int(batch_size))
    outs, counts = result_buffers(net, n, steps)
    allow = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False          # TF32 products are not exact
    saved = torch.get_num_threads()
    if dev == "cpu":
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                data = time_major(inputs, lo, hi)
                run = BatchedRun(graph, data, steps, hi - lo, net=net, arrays=TorchArrays(dev, int(threads or 1)))
                vals = run.run()
                for o in graph.outputs:
                    outs[o][lo:hi] = np.moveaxis(vals[o], 0, -1)
                for p, c in run.counts.items():
                    counts[p][lo:hi] = c
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.set_num_threads(saved)
    return RunResult(output=outs[graph.outputs[0]], counts=counts, engine=f"torch-{dev}",
                     seconds=time.perf_counter() - start, outputs=outs, plan="batched")
