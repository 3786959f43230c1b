"""Time-batched fixed-point evaluation of feed-forward graphs: one kernel call per synapse for
all steps of a batch, population by population in topological order.

In a graph without cycles, a synapse's input at every step is known as soon as its source
population has run all its steps; so the synapse is one product over ``T * N`` rows (time-major,
row ``t * N + i``) instead of ``T`` products over ``N``. Only the neuron update is sequential in
time, and it is elementwise: it runs the step engine's own update op (``reference._Sim``) on each
population, ``T`` times. Delays are shifts along the time axis; Flatten is a reshape.

Every value is an integer held in float (Loihi fixed point), so each product is exact whatever
the kernel's summation order: float64 always (|sums| < 2**53), float32 when the compile-time
bound ``max_rows sum|w| * max|x| < 2**24`` proves every partial sum exact. Kernel per synapse,
by a small cost model (``choose_kernel``): dense GEMM; im2col convolution (a GEMM per group);
or event-driven sparse accumulation (CSR of the input spikes times the weights) when the
measured spike rate is low. Results are bit-identical to the step engine (tests/test_reference_batched.py).

Graphs with cycles, float mode and node types outside ``reference.FAST_NODES`` use the step engine.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from ..compiler.fixed import state_scale
from ..compiler.ir import (_pair, Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                           SumPool2d)
from ..compiler.passes import check
from ..errors import SnncError

POPULATIONS = (CubaLIF, CubaLI)
SYNAPSES = (Dense, Conv2d, SumPool2d)
F32_EXACT = float(1 << 24)          # float32 sums of integers are exact below this
CLAMP = float(1 << 23)              # Lava Conv: 24-bit output
IM2COL_ENTRIES = 1 << 24            # rows of patches per im2col chunk (memory)
SPARSE_RATE = 0.02                  # event-driven below this input spike rate (cost model)
BATCHED_MIN_MACS = 1 << 20          # "auto": the time-batched plan from this many multiply-adds per step


def acyclic_order(graph: Graph) -> Optional[List[str]]:
    """A topological order over ALL edges (delayed ones too), or None when the graph has a cycle."""
    indeg = {n: 0 for n in graph.nodes}
    for _, d in graph.edges:
        indeg[d] += 1
    ready = [n for n in graph.nodes if indeg[n] == 0]
    order: List[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in graph.edges:
            if s == n:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    return order if len(order) == len(graph.nodes) else None


def _spike_source(graph: Graph, name: str) -> bool:
    """True when ``name``'s values are 0/1 spikes: a CubaLIF or a spike input, through Delay/Flatten."""
    node = graph.nodes[name]
    if isinstance(node, (Delay, Flatten)):
        preds = graph.predecessors(name)
        return len(preds) == 1 and _spike_source(graph, preds[0])
    return isinstance(node, CubaLIF) or (isinstance(node, Input) and node.kind != "bias")


def batchable(graph: Graph) -> bool:
    """True when the time-batched plan applies: no cycle, bias inputs feed populations only,
    every synapse reads spikes (so that any summation order is exact)."""
    if acyclic_order(graph) is None:
        return False
    for k, node in graph.nodes.items():
        if isinstance(node, Input) and node.kind == "bias":
            if not all(isinstance(graph.nodes[s], POPULATIONS) for s in graph.successors(k)):
                return False
        if isinstance(node, SYNAPSES) and not all(_spike_source(graph, p) for p in graph.predecessors(k)):
            return False
    return True


def macs_per_step(graph: Graph, n: int) -> int:
    """Multiply-adds of all synapses in one step of ``n`` samples (dense count)."""
    shapes = check(graph)
    total = 0
    for k, node in graph.nodes.items():
        if isinstance(node, Dense):
            total += int(np.prod(np.shape(node.weight)))
        elif isinstance(node, Conv2d):
            total += int(np.prod(shapes[k])) * int(np.prod(np.shape(node.weight)[1:]))
        elif isinstance(node, SumPool2d):
            total += int(np.prod(shapes[k])) * int(np.prod(_pair(node.kernel)))
    return total * n


def batched_pays(graph: Graph, n: int) -> bool:
    """The plan-level cost model: the time-batched plan replaces T small products by one large
    one but calls each population's update T times on its own (the step plan updates all the
    populations of a depth together); it pays when the synapses dominate a step."""
    return macs_per_step(graph, n) >= BATCHED_MIN_MACS


# ---------------------------------------------------------------------------- synapse kernels
def synapse_weights(graph: Graph, name: str, in_shape) -> dict:
    """The fixed-point synapse as the step engine computes it: integer weights (a positive weight
    exponent folded in), ``floor_mul`` (2**exp for a negative exponent, applied after the sum),
    ``clamp`` (Conv's 24-bit clamp can bind) and a bound on ``sum |w|`` per output neuron."""
    node, fx = graph.nodes[name], graph.fixed[name]
    if isinstance(node, Dense):
        exp = int(fx.weight_exp)
        w = np.asarray(fx.weight, dtype=np.float64)
        if exp > 0:
            w = w * float(2 ** exp)
        bound = float(np.abs(w).sum(axis=1).max()) if w.size else 0.0
        return dict(kind="dense", w=w, floor_mul=float(2.0 ** exp) if exp < 0 else None, clamp=False,
                    bound=bound)
    c = in_shape[0]
    if isinstance(node, SumPool2d):
        w = np.broadcast_to(np.asarray(fx.weight, dtype=np.float64), (c, 1) + tuple(_pair(node.kernel)))
        stride, padding, dilation, groups = node.stride, node.padding, (1, 1), c
    else:
        w = np.asarray(fx.weight, dtype=np.float64)
        stride, padding, dilation, groups = node.stride, node.padding, node.dilation, node.groups
    bound = float(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0
    return dict(kind="conv", w=np.ascontiguousarray(w), stride=_pair(stride), padding=_pair(padding),
                dilation=_pair(dilation), groups=int(groups), floor_mul=None, clamp=bound >= CLAMP, bound=bound)


def choose_kernel(spec: dict, x_max: float, rate: float) -> str:
    """The cheapest exact kernel: "sparse" (event-driven; Dense with binary input at a low spike
    rate), else "gemm32" when every partial sum is provably below 2**24, else "gemm64"."""
    if spec["kind"] == "dense" and x_max <= 1.0 and rate < SPARSE_RATE:
        return "sparse"
    return "gemm32" if spec["bound"] * x_max < F32_EXACT else "gemm64"


def dense_all_steps(spec: dict, x: np.ndarray, kernel: str) -> np.ndarray:
    """``x (R, in) @ w.T`` for all R = T * N rows at once, exact (float64 result)."""
    w = spec["w"]
    if kernel == "sparse":
        import scipy.sparse as sp
        return np.asarray((sp.csr_matrix(x) @ w.T), dtype=np.float64)
    dt = np.float32 if kernel == "gemm32" else np.float64
    return (x.astype(dt, copy=False) @ w.T.astype(dt)).astype(np.float64, copy=False)


def conv_all_steps(spec: dict, x: np.ndarray, out_shape, kernel: str) -> np.ndarray:
    """Convolution of ``x (R, C, H, W)`` by im2col: per group, patches (R*Ho*Wo, cpg*kh*kw) times
    the kernel matrix; chunked over R to bound memory. Returns (R, O, Ho, Wo) float64."""
    w, (sh, sw), (ph, pw), (dh, dw), g = spec["w"], spec["stride"], spec["padding"], spec["dilation"], spec["groups"]
    o_n, cpg, kh, kw = w.shape
    opg = o_n // g
    r, c = x.shape[:2]
    _, ho, wo = out_shape
    dt = np.float32 if kernel == "gemm32" else np.float64
    wm = w.reshape(g, opg, cpg * kh * kw).transpose(0, 2, 1).astype(dt)          # (g, K, opg)
    xp = np.pad(x.astype(dt, copy=False), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]                     # (R, C, Ho, Wo, kh, kw)
    out = np.empty((r, o_n, ho, wo), np.float64)
    per = max(1, IM2COL_ENTRIES // max(1, ho * wo * c * kh * kw))
    for lo in range(0, r, per):
        hi = min(r, lo + per)
        p = win[lo:hi].reshape(hi - lo, g, cpg, ho, wo, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
        cols = np.ascontiguousarray(p).reshape(g, (hi - lo) * ho * wo, cpg * kh * kw)
        y = np.matmul(cols, wm)                                                   # (g, rows*Ho*Wo, opg)
        y = y.reshape(g, hi - lo, ho, wo, opg).transpose(1, 0, 4, 2, 3).reshape(hi - lo, o_n, ho, wo)
        out[lo:hi] = y
    return out


def synapse_post(y: np.ndarray, spec: dict) -> np.ndarray:
    """The step engine's per-source post-processing: floor after a negative exponent, 24-bit clamp."""
    if spec["floor_mul"] is not None:
        np.multiply(y, spec["floor_mul"], out=y)
        np.floor(y, out=y)
    if spec["clamp"]:
        np.clip(y, -CLAMP, CLAMP - 1, out=y)
    return y


# ---------------------------------------------------------------------------- the plan
class BatchedRun:
    """Evaluates a fixed-point feed-forward graph on time-major inputs ``{name: (T, N, *shape)}``.

    ``run()`` returns every node's value ``(T, N, *shape)``; afterwards ``counts`` holds spike
    counts per population (N, *shape) and ``state[pop]`` its final ``u``/``v``; ``kernels`` the
    kernel chosen per synapse."""

    def __init__(self, graph: Graph, data: Dict[str, np.ndarray], steps: int, n: int):
        from .reference import _Sim           # circular otherwise: the step engine's own neuron update
        self.g, self.data, self.T, self.n = graph, data, steps, n
        self.shapes = check(graph)
        self.order = acyclic_order(graph)
        if self.order is None:
            raise SnncError("reference: the time-batched plan needs a graph without cycles")
        self.sim = _Sim(graph, "fixed", n, build=False)
        self.values: Dict[str, np.ndarray] = {}
        self.counts: Dict[str, np.ndarray] = {}
        self.state: Dict[str, Dict[str, np.ndarray]] = {}
        self.kernels: Dict[str, str] = {}
        self.bounds: Dict[str, float] = {}         # max |value| of each synapse (inputs are spikes)

    def _full(self, name):
        return (self.T, self.n) + tuple(self.shapes[name])

    def _sum(self, srcs: List[str], shape) -> np.ndarray:
        out = np.array(self.values[srcs[0]], dtype=np.float64).reshape(shape)
        for s in srcs[1:]:
            np.add(out, self.values[s].reshape(shape), out=out)
        return out

    def run(self) -> Dict[str, np.ndarray]:
        g = self.g
        for name in self.order:
            node = g.nodes[name]
            preds = g.predecessors(name)
            if isinstance(node, Input):
                x = self.data[name]
                if node.kind != "bias" and self.sim._feeds_synapse(name) and not np.all((x == 0) | (x == 1)):
                    raise SnncError("fixed-point runs take binary spikes; got graded values at the input "
                                    f"{name!r} of a synapse")
                self.values[name] = x
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
                self.values[name] = np.mean(x, axis=2).reshape(self._full(name))
            elif isinstance(node, Output):
                self.values[name] = self._sum(preds, self._full(name))
            else:
                raise SnncError(f"reference: node {name!r} of type {type(node).__name__} is not supported")
        return self.values

    def _delay(self, name, node, x: np.ndarray) -> np.ndarray:
        """``out[t] = x[t - d]`` per neuron (zero while t < d)."""
        steps = np.broadcast_to(np.asarray(node.steps, dtype=np.int64), self.shapes[name]).reshape(-1)
        T = self.T
        out = np.zeros_like(x)
        if np.all(steps == steps[0]):
            d = int(steps[0])
            if d < T:
                out[d:] = x[:T - d]
            return out
        xf, of = x.reshape(T, self.n, -1), out.reshape(T, self.n, -1)
        for d in np.unique(steps):
            d = int(d)
            if d >= T:
                continue
            idx = np.nonzero(steps == d)[0]
            of[d:, :, idx] = xf[:T - d, :, idx]
        return out

    def _synapse(self, name, preds) -> np.ndarray:
        node = self.g.nodes[name]
        in_shape = tuple(self.shapes[preds[0]])
        spec = synapse_weights(self.g, name, in_shape)
        rows = self.T * self.n
        out = None
        for s in preds:
            x = self.values[s]
            x_max = 1.0                            # spikes (batchable)
            if spec["kind"] == "dense":
                x2 = x.reshape(rows, -1)
                rate = float(np.count_nonzero(x2)) / max(1, x2.size)
                kernel = choose_kernel(spec, x_max, rate)
                y = dense_all_steps(spec, x2, kernel)
            else:
                kernel = choose_kernel(spec, x_max, 1.0)
                y = conv_all_steps(spec, x.reshape((rows,) + in_shape), self.shapes[name], kernel)
            self.kernels[name] = kernel if isinstance(node, Dense) or kernel == "sparse" else "im2col-" + kernel
            y = synapse_post(y, spec)
            out = y if out is None else out + y
        b = spec["bound"] * (spec["floor_mul"] or 1.0) + (1.0 if spec["floor_mul"] else 0.0)
        self.bounds[name] = min(b, CLAMP) * len(preds) if spec["clamp"] else b * len(preds)
        return out.reshape(self._full(name))

    def _population(self, name, node, preds) -> np.ndarray:
        """All T steps of one population through the step engine's update op."""
        g, sim, T, n = self.g, self.sim, self.T, self.n
        size = int(np.prod(self.shapes[name]))
        bias_in = [q for q in preds if isinstance(g.nodes[q], Input) and g.nodes[q].kind == "bias"]
        syn = [q for q in preds if q not in bias_in]
        grp = sim._make_group([name])
        # a static bound on |a| lets the update skip range tests that cannot fire (as the step plan)
        grp.a_bound = (np.full(size, 64.0 * sum(self.bounds[q] for q in syn)) if syn and all(q in self.bounds for q in syn)
                       else None)
        a_all = self._sum(syn, (T, n, size)) * 64.0 if syn else None
        d_all = None
        if bias_in:
            sc = float(state_scale(g, name))
            d_all = self._sum(bias_in, (T, n, size)) * sc
            grp.drive = np.zeros_like(grp.a)
            grp.drive_ops = [(name, grp.drive, sc)]
        update = sim._update_op(grp)
        out = np.empty((T, n, size), np.float64)
        for t in range(T):
            if a_all is not None:
                np.copyto(grp.a, a_all[t])
            if d_all is not None:
                np.copyto(grp.drive, d_all[t])
            update(t)
            np.copyto(out[t], grp.s)
        if isinstance(node, CubaLIF):
            self.counts[name] = grp.count.reshape((n,) + tuple(self.shapes[name])).copy()
        self.state[name] = {k: v.copy() for k, v in sim.state[name].items()}
        return out.reshape(self._full(name))


def run_batched(graph: Graph, data: Dict[str, np.ndarray], steps: int, n: int):
    """Time-major inputs ``{name: (T, N, *shape)}`` -> (outputs ``{o: (T, N, *shape)}``, counts)."""
    run = BatchedRun(graph, data, steps, n)
    values = run.run()
    return {o: values[o] for o in graph.outputs}, run.counts
