"""The time-batched plan of a lowered network (``compiler.lower``), fixed point, feed-forward:
one kernel call per synapse for all steps of a batch, population by population in topological
order. One plan, two array libraries: numpy here (``NumpyArrays``), torch in ``torch_engine``.

Without cycles, a synapse's input at every step is known as soon as its source populations have
run all their steps; so a connection is one product over ``T * N`` rows (time-major, row
``t * N + i``) instead of ``T`` products over ``N``. Only the neuron update is sequential in
time, and it is elementwise: numpy runs the step plan's own in-place update
(``populations.CubaGroup``) ``T`` times. Delays are shifts along the time axis; a flatten is a
reshape.

Every value is an integer held in float (Loihi fixed point), so each product is exact whatever
the kernel's summation order: float64 always (|sums| < 2**53), float32 when the compile-time
bound ``max_rows sum|w| * max|x| < 2**24`` proves every partial sum exact. Kernel per synapse,
by a small cost model (``choose_kernel``): dense GEMM; im2col convolution (a GEMM per group);
or event-driven sparse accumulation (CSR of the input spikes times the weights) when the
measured spike rate is low. Results are bit-identical to the step plan
(tests/test_reference_batched.py).

Graphs with cycles, float mode, sigma-delta populations and graded synapses use the step plan.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..compiler.ir import _pair, Conv2d, Dense, Graph
from ..compiler.lower import Connection, Network, lower
from ..errors import SnncError
from .plan import CLAMP, SynapseSpec, ordered_into, output_units, post_synapse_bounds, run_output, shift_time, \
    signed_row_sums, synapse_inputs, synapse_spec
from .populations import CubaGroup, CubaParams, cuba_params

F32_EXACT = float(1 << 24)          # float32 sums of integers are exact below this
IM2COL_ENTRIES = 1 << 24            # rows of patches per im2col chunk (memory)
SPARSE_RATE = 0.02                  # event-driven below this input spike rate (cost model)
BATCHED_MIN_MACS = 1 << 20          # "auto": the time-batched plan from this many multiply-adds per step


def _net(g: Union[Graph, Network]) -> Network:
    return g if isinstance(g, Network) else lower(g)


def population_order(net: Network) -> Optional[List[str]]:
    """Inputs and populations in an order where every connection's sources come before its
    population (delayed connections too), or None when the network has a cycle."""
    deps = {p: set() for p in net.populations}
    for c in net.connections:
        deps[c.dst].update(s.pop for s in c.sources)
    for p in net.populations.values():
        deps[p.name].update(p.bias_inputs)
    order: List[str] = []
    done: set = set()
    while len(order) < len(deps):
        ready = [p for p in deps if p not in done and deps[p] <= done]
        if not ready:
            return None
        order.extend(ready)
        done.update(ready)
    return order


def _reads_spikes(net: Network, c: Connection) -> bool:
    def spikes(pop):
        p = net.populations[pop]
        return p.kind == "lif" or (p.kind == "input" and p.node.kind == "spikes")
    return c.synapse is None or (not getattr(c.fixed, "num_message_bits", 0) and all(spikes(s.pop) for s in c.sources))


def cuba_on_spikes(graph: Union[Graph, Network]) -> bool:
    """True when every population is CUBA and every synapse reads 0/1 spikes (so that any
    summation order is exact): what the plan's kernels compute."""
    net = _net(graph)
    return all(p.kind in ("lif", "li") for p in net.neurons) and all(_reads_spikes(net, c) for c in net.connections)


def batchable(graph: Union[Graph, Network]) -> bool:
    """True when the time-batched plan applies: ``cuba_on_spikes`` and no cycle."""
    net = _net(graph)
    return cuba_on_spikes(net) and population_order(net) is not None


def macs_per_step(graph: Union[Graph, Network], n: int) -> int:
    """Multiply-adds of all synapses in one step of ``n`` samples (dense count, once per synapse)."""
    net = _net(graph)
    seen, total = set(), 0
    for c in net.connections:
        if c.synapse is None or c.name in seen:
            continue
        seen.add(c.name)
        node = c.synapse
        if isinstance(node, Dense):
            total += int(np.prod(np.shape(node.weight)))
        elif isinstance(node, Conv2d):
            total += int(np.prod(c.out_shape)) * int(np.prod(np.shape(node.weight)[1:]))
        else:
            total += int(np.prod(c.out_shape)) * int(np.prod(_pair(node.kernel)))
    return total * n


def batched_pays(graph: Union[Graph, Network], n: int) -> bool:
    """The plan-level cost model: the time-batched plan replaces T small products by one large
    one but calls each population's update T times on its own (the step plan updates all the
    populations of a depth together); it pays when the synapses dominate a step."""
    return macs_per_step(graph, n) >= BATCHED_MIN_MACS


# ---------------------------------------------------------------------------- numpy kernels
def choose_kernel(spec: SynapseSpec, x_max: float, rate: float) -> str:
    """The cheapest exact kernel: "sparse" (event-driven; Dense with binary input at a low spike
    rate), else "gemm32" when every partial sum is provably below 2**24, else "gemm64"."""
    if spec.kind == "dense" and x_max <= 1.0 and rate < SPARSE_RATE:
        return "sparse"
    return "gemm32" if spec.bound * x_max < F32_EXACT else "gemm64"


def dense_all_steps(spec: SynapseSpec, x: np.ndarray, kernel: str) -> np.ndarray:
    """``x (R, in) @ w.T`` for all R = T * N rows at once, exact (float64 result)."""
    w = spec.w
    if kernel == "sparse":
        import scipy.sparse as sp
        return np.asarray((sp.csr_matrix(x) @ w.T), dtype=np.float64)
    dt = np.float32 if kernel == "gemm32" else np.float64
    key = "_dense_t_" + np.dtype(dt).name
    wt = spec.cache.get(key)
    if wt is None:
        wt = spec.cache[key] = np.ascontiguousarray(w.T, dtype=dt)
    return (x.astype(dt, copy=False) @ wt).astype(np.float64, copy=False)


def conv_all_steps(spec: SynapseSpec, x: np.ndarray, kernel: str) -> np.ndarray:
    """Convolution of ``x (R, C, H, W)`` by im2col in channel-first order: per row, the patches
    (C*kh*kw, Ho*Wo) are copied once (cast to the kernel's dtype in the same copy, the inner run
    along Wo) and multiplied by the kernel matrix (groups, O/groups, C/groups*kh*kw), so the
    product comes out (R, O, Ho*Wo) with no transpose; chunked over R to bound memory.
    Returns (R, O, Ho, Wo) float64."""
    (sh, sw), (ph, pw), (dh, dw), g = spec.conv
    o_n, cpg, kh, kw = spec.w.shape
    r, c = x.shape[:2]
    _, ho, wo = spec.out_shape
    dt = np.float32 if kernel == "gemm32" else np.float64
    wm = _conv_matrix(spec, dt)                                                   # (g, opg, K)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo].transpose(0, 1, 4, 5, 2, 3)  # (R, C, kh, kw, Ho, Wo)
    out = np.empty((r, o_n, ho, wo), np.float64)
    per = max(1, IM2COL_ENTRIES // max(1, ho * wo * c * kh * kw))
    cols = np.empty((min(r, per), c, kh, kw, ho, wo), dt)
    for lo in range(0, r, per):
        hi = min(r, lo + per)
        part = cols[:hi - lo]
        np.copyto(part, win[lo:hi], casting="same_kind")
        y = np.matmul(wm, part.reshape(hi - lo, g, cpg * kh * kw, ho * wo))       # (rows, g, opg, P)
        out[lo:hi] = y.reshape(hi - lo, o_n, ho, wo)
    return out


def _conv_matrix(spec: SynapseSpec, dt) -> np.ndarray:
    """The kernel as (groups, O/groups, C/groups*kh*kw) in ``dt``, made once per synapse."""
    key = "_conv_matrix_" + np.dtype(dt).name
    m = spec.cache.get(key)
    if m is None:
        o_n = spec.w.shape[0]
        g = spec.conv[3]
        m = spec.cache[key] = np.ascontiguousarray(spec.w.reshape(g, o_n // g, -1), dtype=dt)
    return m


class NumpyArrays:
    """The time-batched plan's numpy kernels (``kernels``: the one chosen per synapse)."""

    def __init__(self):
        self.kernels: Dict[str, str] = {}

    def asarray(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    def numpy(self, x) -> np.ndarray:
        return x

    def shift(self, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
        return shift_time(x, steps)

    def synapse(self, spec: SynapseSpec, x: np.ndarray) -> np.ndarray:
        """One synapse input over all rows ``x (R, *in_shape)`` -> (R, out) float64, post-processed."""
        rows = x.shape[0]
        if spec.kind == "dense":
            x2 = x.reshape(rows, -1)
            kernel = choose_kernel(spec, 1.0, float(np.count_nonzero(x2)) / max(1, x2.size))
            y = dense_all_steps(spec, x2, kernel)
        else:
            kernel = choose_kernel(spec, 1.0, 1.0)
            y = conv_all_steps(spec, x, kernel).reshape(rows, -1)
        self.kernels[spec.name] = kernel if spec.kind == "dense" or kernel == "sparse" else "im2col-" + kernel
        if spec.floor_mul is not None:
            np.multiply(y, spec.floor_mul, out=y)
            np.floor(y, out=y)
        if spec.clamp:
            np.clip(y, -CLAMP, CLAMP - 1, out=y)
        return y

    def zeros(self, shape) -> np.ndarray:
        return np.zeros(shape, np.float64)

    def at(self, x: np.ndarray, t: int, steps: np.ndarray) -> np.ndarray:
        """``x[t - d]`` per neuron of a series ``x`` (T, N, *shape) (zero where t < d)."""
        return _at(x, t, steps, np.zeros, lambda i: i)

    def start(self, params: CubaParams, n: int, a_bound, drive: bool, scale: float,
              drive_bound=None) -> CubaGroup:
        """A population's state; ``a_bound``: (A_hi, A_lo) or None, ``drive_bound``: (D_hi, D_lo)
        or None (``CubaGroup.range_checks``)."""
        grp = CubaGroup(params, n)
        grp.a_bound, grp.a_low = (None, None) if a_bound is None else a_bound
        grp.drive_bound = drive_bound
        if drive:
            grp.add_drive(params.names[0], scale)
        grp.finish()
        return grp

    def step(self, grp: CubaGroup, t: int, a, d) -> np.ndarray:
        """One step of the step plan's update; returns the output (N, size) (reused: copy it)."""
        if a is not None:
            np.copyto(grp.a, a)
        if d is not None:
            np.copyto(grp.drive, d)
        grp.update(t)
        return grp.s

    def finish(self, grp: CubaGroup):
        return grp.count, dict(u=grp.u.copy(), v=grp.v.copy())

    def population(self, params: CubaParams, T: int, n: int, a_all, d_all, a_bound, scale: float):
        """All T steps of CUBA populations through the step plan's update, without copies: the
        group reads step ``t``'s input and drive as views of ``a_all``/``d_all`` and writes its
        output into ``out[t]`` (the drive's state-unit test is made once over all steps)."""
        d_bound = None
        if d_all is not None:         # the drive is known for all steps: bound it once
            d = d_all.reshape(-1, params.size)
            d_bound = (np.maximum(d.max(axis=0), 0), np.maximum(-d.min(axis=0), 0))
        grp = self.start(params, n, a_bound, d_all is not None, scale, d_bound)
        if d_all is not None:
            for pop, _, sc in grp.drive_checks:
                if not np.all(d_all == np.round(d_all)):
                    raise SnncError(f"population {pop!r}: bias input is not a multiple of "
                                    f"1/{int(sc)} (the population's state unit)")
            grp.drive_checks = []
        # spikes (0/1) are exact in float32: half the memory, and the next synapse's float32
        # kernel reads them without a cast; a read-out's values stay float64
        out = np.empty((T, n, params.size), np.float64 if params.kind == "li" else np.float32)
        direct = grp.late is None               # "late" reads the last step's output
        for t in range(T):
            if a_all is not None:
                grp.a = a_all[t]
            if d_all is not None:
                grp.drive = d_all[t]
            if direct:
                grp.s = out[t]
            grp.update(t)
            if not direct:
                out[t] = grp.s
        return (out,) + self.finish(grp)


def neuron_row_sums(spec: SynapseSpec) -> Tuple[np.ndarray, np.ndarray]:
    """``plan.signed_row_sums`` into each output neuron (C order). Conv: per output channel over
    the whole kernel (an edge neuron sees fewer taps, so it bounds them too)."""
    w = spec.w
    if spec.kind == "dense":
        return signed_row_sums(w)
    per = int(np.prod(spec.out_shape[1:]))
    return tuple(np.repeat(r, per) for r in signed_row_sums(w.reshape(w.shape[0], -1)))


def _total(parts):
    """The sum of an iterable of arrays; the one array itself (no copy) when there is one."""
    total = None
    for x in parts:
        total = x if total is None else total + x
    return total


def _at(x, t: int, steps: np.ndarray, zeros, index):
    """``x[t - d]`` per neuron (either array library: ``zeros(shape)``, ``index(np array)``)."""
    T, n = x.shape[:2]
    per = np.broadcast_to(steps, tuple(x.shape[2:])).reshape(-1)
    if np.all(per == per[0]):
        d = int(per[0])
        return x[t - d] if t >= d else zeros(tuple(x.shape[1:]))
    src = t - per
    ok = np.nonzero(src >= 0)[0]
    out = zeros((n, per.size))
    xf = x.reshape(T, n, -1)
    out[:, index(ok)] = xf[index(src[ok]), :, index(ok)].T
    return out.reshape(tuple(x.shape[1:]))


# ---------------------------------------------------------------------------- the plan
class BatchedRun:
    """Evaluates a fixed-point feed-forward network on time-major inputs ``{name: (T, N, *shape)}``.

    ``run()`` returns the values ``(T, N, *shape)`` of inputs, populations and outputs; afterwards
    ``counts`` holds spike counts per population (N, *shape) and ``state[pop]`` its final
    ``u``/``v``; ``kernels`` the kernel chosen per synapse. ``arrays``: the array library
    (``NumpyArrays`` or the torch engine's)."""

    def __init__(self, graph: Graph, data: Dict[str, np.ndarray], steps: int, n: int,
                 net: Optional[Network] = None, arrays=None):
        self.g, self.data, self.T, self.n = graph, data, steps, n
        self.net = net if net is not None else lower(graph)
        self.order = population_order(self.net)
        self.xp = arrays if arrays is not None else NumpyArrays()
        if self.order is None and not getattr(self.xp, "steps_cycles", False):
            raise SnncError("reference: the time-batched plan needs a graph without cycles")
        self.values: Dict[str, object] = {}
        self.counts: Dict[str, np.ndarray] = {}
        self.state: Dict[str, Dict[str, np.ndarray]] = {}
        self._specs: Dict[str, SynapseSpec] = {}

    def _spec(self, c: Connection) -> SynapseSpec:
        if c.name not in self._specs:
            self._specs[c.name] = synapse_spec(c, True)
        return self._specs[c.name]

    @property
    def kernels(self) -> Dict[str, str]:
        return self.xp.kernels

    def _rows(self, pop: str):
        return (self.T, self.n) + tuple(self.net.populations[pop].shape)

    def run(self) -> Dict[str, object]:
        if self.order is None:
            self._run_stepwise()
        for name in self.order or ():
            if self.net.populations[name].kind == "input":
                self.values[name] = self.xp.asarray(self.data[name])
            else:
                self.values[name] = self._population(name)
        units = output_units(self.net, "fixed")
        recorded = {k: self.xp.numpy(v) for k, v in self.values.items()}
        for read in self.net.outputs:
            self.values[read.name] = run_output(self.net, read, recorded, True, units)
        return self.values

    def _source(self, s, shape):
        x = self.values[s.pop]
        if s.delay.any():
            x = self.xp.shift(x, s.delay)
        return x.reshape(shape)

    def _connection(self, c: Connection):
        """A connection's contribution over all steps, (T, N, size of its population)."""
        rows = self.T * self.n
        if c.synapse is None:
            y = _total(self._source(s, (self.T, self.n, -1)) for s in c.sources)
        else:
            spec = self._spec(c)
            y = None
            for grp in synapse_inputs(self.net, c):
                x = _total(self._source(s, (rows,) + tuple(c.in_shape)) for s in grp)
                part = self.xp.synapse(spec, x)
                y = part if y is None else y + part
            y = y.reshape((self.T, self.n) + tuple(c.out_shape))
            if c.post_delay.any():
                y = self.xp.shift(y, c.post_delay)
        return y.reshape(self.T, self.n, -1)

    def _bound(self, c: Connection) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Bounds (on a_in, on -a_in) per neuron of a connection (its inputs are spikes), or None."""
        if c.synapse is None:
            return None
        spec = self._spec(c)
        hi, lo = post_synapse_bounds(spec, *neuron_row_sums(spec))
        k = len(synapse_inputs(self.net, c))
        return hi * k, lo * k

    def _a_bound(self, conns, size: int):
        """(A_hi, A_lo) per neuron of a population's input ``a`` (x 64), or None (populations)."""
        if not conns:                                  # no synapse: a = 0
            return np.zeros(size), np.zeros(size)
        bounds = [self._bound(c) for c in conns]
        if None in bounds:
            return None
        return tuple(np.broadcast_to(64.0 * sum(b[i] for b in bounds), (size,)).copy() for i in (0, 1))

    def _population(self, name: str):
        """All T steps of one population: its connections summed (x 64), the bias-input drive."""
        pop = self.net.populations[name]
        conns = ordered_into(self.net, name)
        a_all, owned = None, False
        for c in conns:
            y = self._connection(c)
            a_all, owned = (y, c.synapse is not None) if a_all is None else (a_all + y, True)
        if a_all is not None:               # x 64 in place unless a_all is a link's source values
            if owned:
                a_all *= 64.0
            else:
                a_all = a_all * 64.0
        a_bound = self._a_bound(conns, pop.size)
        d_all, sc = None, float(pop.state_scale)
        if pop.bias_inputs:
            d_all = _total(self.values[b].reshape(self.T, self.n, -1) for b in pop.bias_inputs) * sc
        params = cuba_params(self.net, [name], True)
        out, count, state = self.xp.population(params, self.T, self.n, a_all, d_all, a_bound, sc)
        shape = (self.n,) + pop.shape
        if pop.kind == "lif":
            self.counts[name] = np.asarray(self.xp.numpy(count)).reshape(shape).copy()
        self.state[name] = {k: np.asarray(self.xp.numpy(v)).reshape(shape) for k, v in state.items()}
        return out.reshape(self._rows(name))


    # ------------------------------------------------------------------ cycles: a step loop
    def _run_stepwise(self):
        """A network with cycles: every population one step at a time in depth order, each
        connection one product over the N rows of a step (the same kernels and updates)."""
        net, xp, T, n = self.net, self.xp, self.T, self.n
        for p in net.inputs:
            self.values[p.name] = xp.asarray(self.data[p.name])
        pops, self._ys = [], {}
        for p in net.neurons:
            self.values[p.name] = xp.zeros((T, n) + p.shape)
            conns = ordered_into(net, p.name)
            a_bound = self._a_bound(conns, p.size)
            params = cuba_params(net, [p.name], True)
            st = xp.start(params, n, a_bound, bool(p.bias_inputs), float(p.state_scale))
            pops.append((p, conns, st))
        for t in range(T):
            for p, conns, st in pops:
                a = None
                for c in conns:
                    y = self._connection_at(c, t)
                    a = y if a is None else a + y
                d = None
                if p.bias_inputs:
                    d = sum(self.values[b][t].reshape(n, -1) for b in p.bias_inputs) * float(p.state_scale)
                s = xp.step(st, t, a * 64.0 if a is not None else None, d)
                self.values[p.name][t] = s.reshape((n,) + p.shape)
        for p, _, st in pops:
            count, state = xp.finish(st)
            shape = (n,) + p.shape
            if p.kind == "lif":
                self.counts[p.name] = np.asarray(xp.numpy(count)).reshape(shape).copy()
            self.state[p.name] = {k: np.asarray(xp.numpy(v)).reshape(shape) for k, v in state.items()}

    def _connection_at(self, c: Connection, t: int):
        """A connection's contribution at step ``t`` (N, size of its population)."""
        n = self.n

        def src(s, shape):
            return self.xp.at(self.values[s.pop], t, s.delay).reshape(shape)
        if c.synapse is None:
            return sum(src(s, (n, -1)) for s in c.sources)
        spec = self._spec(c)
        y = None
        for grp in synapse_inputs(self.net, c):
            part = self.xp.synapse(spec, sum(src(s, (n,) + tuple(c.in_shape)) for s in grp))
            y = part if y is None else y + part
        if c.post_delay.any():
            ys = self._ys.setdefault(c.name, self.xp.zeros((self.T, n) + tuple(c.out_shape)))
            ys[t] = y.reshape((n,) + tuple(c.out_shape))
            y = self.xp.at(ys, t, c.post_delay)
        return y.reshape(n, -1)


def run_batched(graph: Graph, data: Dict[str, np.ndarray], steps: int, n: int, net: Optional[Network] = None):
    """Time-major inputs ``{name: (T, N, *shape)}`` -> (outputs ``{o: (T, N, *shape)}``, counts)."""
    run = BatchedRun(graph, data, steps, n, net=net)
    values = run.run()
    return {o: values[o] for o in graph.outputs}, run.counts
