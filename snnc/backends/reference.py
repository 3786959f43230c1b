"""Reference simulator of the IR: numpy, batch-vectorized, time-stepped, compiled to a step plan
of the lowered network (``compiler.lower``).

Two modes, each equal to one Lava target by construction:
- ``fixed``: Loihi 2 integer arithmetic on ``Graph.fixed`` (run ``quantize`` first), bit-exact
  with Lava's ``fixed_pt`` models (24-bit u that wraps, v that saturates, 12-bit decays with
  round-toward-zero, ``a_in << 6``, ``v > vth << 6``, Conv output clamped to 24 bits; sigma-delta
  populations as ``lava.proc.sdn``, graded messages as integers);
- ``float``: Lava's ``floating_pt`` semantics on the IR's float parameters
  (``u = u*(1-du) + a``, ``v = v*(1-dv) + u + bias``, ``v > vth``).

It runs in IR time (synapses instantaneous, delays explicit), so its output is aligned step for
step with the model's own time axis. The semantics are stated plainly, node by node, in
``reference_spec`` (the executable spec, an independent interpreter used as the oracle in tests);
this module computes exactly the same values (tests/test_reference_fast.py) from a plan built
once from ``lower(graph)``: per population an update op (``populations.CubaGroup`` for CUBA LIF/LI,
``reference_sdn.step`` for Delta/SigmaDelta/Sigma), per connection the synapse over its summed,
delayed, flattened sources, the outputs' host programs, scheduled by ``Network.depth``:

- every value lives in a preallocated buffer updated in place; a flatten is a view, a single
  source an alias, so a step is a flat list of numpy calls on fixed arrays (closures);
- fixed-point integers are held in float64, where every value involved is exact (|u|, |v| < 2**25,
  synaptic sums < 2**53; a graded synapse whose bound cannot prove that runs in int64);
  ``a_in << 6`` and a positive weight exponent are folded into the weights of a synapse that
  feeds one population;
- CUBA populations of one depth (their longest instantaneous path from the inputs) and one
  update rule are updated together as one concatenated vector: a network whose every connection
  has a delay (netx, SLAYER) updates all its neurons in ~15 calls;
- a delayed source is a ring history of the population; per-neuron steps: one ``take`` with
  precomputed indices;
- one sample (N = 1), fixed point, spikes: a Dense/lowered-Conv synapse sums the weight rows of
  the sources that spiked (event-driven) instead of a dense product (integers: any order is exact);
- Conv2d/SumPool2d in fixed point: a precomputed matrix over the C-order flat neurons, dense for
  one sample or a dense-enough batch product, else scipy CSR; float mode keeps ``conv2d`` (the
  spec's summation order, so float results are identical too);
- the wrap of u and the saturation of v are applied only on the steps where a value is out of
  range (one max/min test per group), or never where a static bound excludes it: the bounds are
  signed (what the positive and the negative weights of a row can add on 0/1 input), so only a
  side that can overflow is tested; with ``decay_u = 4096`` u is the input itself.

Fixed point, feed-forward CUBA graphs with enough synapse work per step (``reference_batched``'s
cost model) run on the time-batched plan instead: one GEMM / im2col / event-driven product per
synapse over all ``T * N`` rows; bit-identical (tests/test_reference_batched.py).
``run_reference(..., plan="step")`` forces the step plan.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from ..compiler.ir import (Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                           SumPool2d)
from ..compiler.lower import Connection, Network, OutputRead, Source, lower
from ..compiler.validate import validate
from ..errors import SnncError
from . import host_io
from . import reference_sdn as sdn
from .plan import host_synapse, input_values, ordered_into, output_units, post_synapse_bounds, result_buffers, run_output, \
    shared_synapses, signed_row_sums, synapse_inputs, synapse_spec, SynapseSpec, time_major
from .populations import CubaGroup, cuba_params, reset_kind
from .reference_batched import batchable, batched_pays, run_batched
from .reference_spec import _rtz_decay, conv2d  # noqa: F401  (re-exported: public helpers)
from .result import RunResult

FAST_NODES = (Input, Output, Dense, Conv2d, SumPool2d, Flatten, Delay, CubaLIF, CubaLI, Average)
DENSE_CONV_ENTRIES = 1 << 22        # a Conv lowered to a dense matrix up to this many entries, else sparse
SPARSE_DENSITY = 0.1                # batch: a Conv matrix sparser than this runs as scipy CSR
INDEX_TABLE_ENTRIES = 1 << 22       # per-neuron delay: precomputed gather indices up to this size
BATCHED_ENTRIES = 1 << 25           # time-batched plan: values of all nodes per chunk (T * N rows)
Op = Callable[[int], None]


def _view(a: np.ndarray, shape) -> Optional[np.ndarray]:
    """``a`` reshaped without a copy, or None when a copy would be needed."""
    v = a.view()
    try:
        v.shape = tuple(shape)
    except AttributeError:
        return None
    return v


def _as_shape(a: np.ndarray, shape) -> np.ndarray:
    """A view of a plan buffer in another shape (buffers are laid out so that one always exists)."""
    v = _view(a, shape)
    if v is None:
        raise SnncError(f"reference: internal error: no view of {a.shape} as {shape}")
    return v


def supported(graph: Graph) -> bool:
    """True when every node is a CUBA/spike node (what the fused Lava process steps)."""
    if not all(type(n) in FAST_NODES for n in graph.nodes.values()):
        return False
    return not any(getattr(fx, "num_message_bits", 0) for fx in graph.fixed.values())


def conv_matrix_sparse(w: np.ndarray, in_shape, out_shape, stride, padding, dilation, groups):
    """The convolution as a scipy CSR matrix M[out, in] over C-order flat neurons.

    Built row by row in C order of (o, ho, wo) with the taps (c, i, j) of each row in order, so
    the entries come out sorted by row; a tap maps to one input neuron, so there are no duplicates.
    Cost and memory are linear in the number of taps (the synapse count)."""
    import scipy.sparse as sp
    c_in, h_in, w_in = in_shape
    c_out, h_out, w_out = out_shape
    o_n, cpg, kh, kw = w.shape
    opg = o_n // groups
    # per output position (ho, wo) and kernel tap (i, j): input row/col and validity
    hi = (np.arange(h_out) * stride[0] - padding[0])[:, None, None, None] + \
        (np.arange(kh) * dilation[0])[None, None, :, None]                       # (ho, 1, kh, 1)
    wi = (np.arange(w_out) * stride[1] - padding[1])[None, :, None, None] + \
        (np.arange(kw) * dilation[1])[None, None, None, :]                       # (1, wo, 1, kw)
    ok = (hi >= 0) & (hi < h_in) & (wi >= 0) & (wi < w_in)                       # (ho, wo, kh, kw)
    pos = hi * w_in + wi                                                         # spatial input index
    per_pos = ok.reshape(h_out * w_out, kh * kw)
    # rows (o, ho, wo); within a row the taps in (c, i, j) order
    ho_wo_taps = np.broadcast_to(pos, ok.shape).reshape(h_out * w_out, kh * kw)
    cols_rows, vals_rows = [], []
    counts = per_pos.sum(axis=1) * cpg                                           # taps per row (per o)
    for o in range(o_n):
        g = o // opg
        cin = (g * cpg + np.arange(cpg)) * (h_in * w_in)                         # (cpg,)
        col = cin[None, :, None] + ho_wo_taps[:, None, :]                        # (pos, cpg, taps)
        val = np.broadcast_to(w[o].reshape(1, cpg, kh * kw), col.shape)
        mask = np.broadcast_to(per_pos[:, None, :], col.shape)
        cols_rows.append(col[mask])
        vals_rows.append(val[mask])
    indptr = np.concatenate([[0], np.cumsum(np.tile(counts, o_n))])
    itype = np.int32 if max(indptr[-1], c_in * h_in * w_in) < 2 ** 31 else np.int64
    cols = np.concatenate(cols_rows).astype(itype) if cols_rows else np.zeros(0, itype)
    vals = np.concatenate(vals_rows).astype(np.float64) if vals_rows else np.zeros(0)
    return sp.csr_matrix((vals, cols, indptr.astype(itype)), shape=(c_out * h_out * w_out, c_in * h_in * w_in),
                         copy=False)


# ---------------------------------------------------------------------------- delays
class _Ring:
    """Ring history of a value ``(N, *shape)``, of depth max(steps) + 1, written at slot
    t % depth; the read of slot (t - d) % depth is zero while t < d (never written yet).
    Per-neuron steps: one ``take`` with precomputed indices, or (past INDEX_TABLE_ENTRIES)
    indices computed per step from a history written twice (slots r and r + depth)."""

    def __init__(self, shape, depth: int, twice: bool):
        self.depth, self.twice = depth, twice
        self.hist = np.zeros(((2 if twice else 1) * depth,) + tuple(shape), np.float64)

    def writer(self, x: np.ndarray) -> Op:
        hist, depth = self.hist, self.depth
        x = _as_shape(x, hist.shape[1:])
        if self.twice:
            def write(t, hist=hist, x=x, depth=depth):
                r = t % depth
                np.copyto(hist[r], x)
                np.copyto(hist[r + depth], x)
            return write

        def write1(t, hist=hist, x=x, depth=depth):
            np.copyto(hist[t % depth], x)
        return write1

    def reader(self, steps: np.ndarray, out: np.ndarray) -> Op:
        """An op writing the value ``steps`` (per neuron, over the per-sample shape) ago into ``out``."""
        hist, depth = self.hist, self.depth
        shape = hist.shape[1:]
        size = int(np.prod(shape))
        per = np.broadcast_to(steps.reshape((1,) + steps.shape), shape).reshape(-1)
        flat, outf = hist.reshape(-1), _as_shape(out, (size,))
        if np.all(per == per[0]):
            d = int(per[0])

            def read(t, hist=hist, out=_as_shape(out, shape), d=d, depth=depth):
                np.copyto(out, hist[(t - d) % depth])
            return read
        if not self.twice:
            j = np.arange(size, dtype=np.int64)
            table = np.stack([((r - per) % depth) * size + j for r in range(depth)])

            def take(t, flat=flat, outf=outf, table=table, depth=depth):
                flat.take(table[t % depth], out=outf)
            return take
        base = np.arange(size, dtype=np.int64) - per * size      # + (r + depth) * size
        idx = np.empty_like(base)

        def take2(t, flat=flat, outf=outf, base=base, idx=idx, depth=depth, size=size):
            np.add(base, (t % depth + depth) * size, out=idx)
            flat.take(idx, out=outf)
        return take2


# ---------------------------------------------------------------------------- ops
def _sum_op(vals: List[np.ndarray], out: np.ndarray, scale: float = 1.0) -> Op:
    """An op writing ``scale * sum(vals)`` (in this order) into ``out``."""
    vals = [_as_shape(v, out.shape) for v in vals]

    def op(t, vals=vals, out=out, scale=scale):
        np.copyto(out, vals[0])
        for v in vals[1:]:
            np.add(out, v, out=out)
        if scale != 1.0:
            np.multiply(out, scale, out=out)
    return op


def _add_op(out: np.ndarray, tmp: np.ndarray, first: bool) -> Op:
    if first:
        return lambda t, o=out, tmp=tmp: np.copyto(o, tmp)
    return lambda t, o=out, tmp=tmp: np.add(o, tmp, out=o)


def _post_op(buf: np.ndarray, floor_mul, clamp: bool, post: float) -> Op:
    """Per synapse input: floor after a negative exponent, the 24-bit clamp, the scale."""
    lo, hi = -float(1 << 23), float((1 << 23) - 1)

    def op(t, buf=buf):
        if floor_mul is not None:
            np.multiply(buf, floor_mul, out=buf)
            np.floor(buf, out=buf)
        if clamp:
            np.clip(buf, lo, hi, out=buf)
        if post != 1.0:
            np.multiply(buf, post, out=buf)
    return op


def _sparse_op(w, x2, out2, first) -> Op:
    def op(t, w=w, x2=x2, out2=out2, first=first):
        y = (w @ x2.T).T
        if first:
            np.copyto(out2, y)
        else:
            np.add(out2, y, out=out2)
    return op


def _event_op(w, x2, out2, first) -> Op:
    """One sample of 0/1 spikes: the sum of the weight rows of the sources that spiked."""
    wr = np.ascontiguousarray(w.T)
    x1, o1 = x2[0], out2[0]
    mask = np.zeros(x1.shape, bool)
    tmp = np.zeros(o1.shape, np.float64)

    def op(t, wr=wr, x1=x1, o1=o1, mask=mask, tmp=tmp, first=first):
        np.not_equal(x1, 0.0, out=mask)
        rows = wr[mask]
        if first:
            np.add.reduce(rows, axis=0, out=o1)
        else:
            np.add.reduce(rows, axis=0, out=tmp)
            np.add(o1, tmp, out=o1)
    return op


def _gemm_op(w, x2, out2, first) -> Op:
    """``x @ w.T`` (the spec's BLAS call) into ``out2``."""
    wt = w.T
    tmp = None if (first and out2.flags.c_contiguous) else np.zeros(out2.shape, np.float64)

    def op(t, wt=wt, x2=x2, out2=out2, first=first, tmp=tmp):
        if tmp is None:
            np.matmul(x2, wt, out=out2)
        else:
            np.matmul(x2, wt, out=tmp)
            if first:
                np.copyto(out2, tmp)
            else:
                np.add(out2, tmp, out=out2)
    return op


def _int_gemm_op(w, x2, out2, first) -> Op:
    """Graded messages whose sums a float64 product cannot prove exact: int64 arithmetic."""
    wt = np.asarray(w.T if not hasattr(w, "toarray") else w.toarray().T, dtype=np.int64)

    def op(t, wt=wt, x2=x2, out2=out2, first=first):
        y = x2.astype(np.int64) @ wt
        if first:
            np.copyto(out2, y)
        else:
            np.add(out2, y, out=out2)
    return op


def _conv_float_op(spec: SynapseSpec, x: np.ndarray, out: np.ndarray, first: bool) -> Op:
    w = spec.w
    args = (w,) + tuple(spec.conv)
    shape = out.shape

    def op(t, x=x, out=out, first=first):
        a = conv2d(x, *args)
        if first:
            np.copyto(out, a.reshape(shape))
        else:
            np.add(out, a.reshape(shape), out=out)
    return op


def _step_weights(spec: SynapseSpec, fixed: bool, n: int):
    """The matrix the step plan multiplies by: ("dense", W) or ("sparse", CSR) over C-order
    flat neurons; ("conv-float", None) in float mode (``conv2d``)."""
    if spec.kind == "dense":
        return "dense", spec.w
    if not fixed:
        return "conv-float", None
    m = spec.cache.get("_step_conv")             # made once per spec (the spec is kept: plan)
    if m is None:
        m = spec.cache["_step_conv"] = conv_matrix_sparse(spec.w, spec.in_shape, spec.out_shape, *spec.conv)
    entries = int(np.prod(spec.out_shape)) * int(np.prod(spec.in_shape))
    # dense: the single-sample event path, or a batch product that is dense enough for BLAS
    if entries <= DENSE_CONV_ENTRIES and (n == 1 or m.nnz >= SPARSE_DENSITY * entries):
        return "dense", m.toarray()
    return "sparse", m


class _SigmaDeltaPop:
    """A Delta / SigmaDelta / Sigma population of the step plan: its summed input ``a``, output
    ``value`` (messages; integers in fixed point), Lava's state and the count of messages sent."""

    def __init__(self, graph: Graph, mode: str, pop, n: int):
        shape = (n,) + pop.shape
        self.g, self.mode, self.name, self.node = graph, mode, pop.name, pop.node
        self.names = [pop.name]
        self.a, self.value = np.zeros(shape), np.zeros(shape)
        self.state = sdn.init_state(shape, np.int64 if mode == "fixed" else np.float64)
        self.count = np.zeros(shape, np.int64) if pop.kind != "sigma" else None
        self._ints = mode == "fixed" and not isinstance(pop.node, sdn.Delta)

    def update(self, t: int) -> None:
        """One step of ``reference_sdn.step`` (on a copy of the input: the state keeps it)."""
        a = self.a.astype(np.int64) if self._ints else self.a.copy()
        np.copyto(self.value, sdn.step(self.g, self.mode, self.name, self.node, self.state, a))
        if self.count is not None:
            np.add(self.count, self.value != 0, out=self.count)


def _output_ops(sim, read: OutputRead, units: Dict[str, int]) -> np.ndarray:
    """The host program of an output as ops of ``sim`` (an alias when it reads one population);
    returns the buffer that holds the output's value each step."""
    n, vals = sim.n, {}
    for node, kind, arg, preds in read.program:
        if kind == "pop":
            vals[node] = sim.values[node]
            continue
        x = vals[preds[0]]
        if len(preds) > 1:
            x = np.zeros(x.shape)
            sim._ops.append(_sum_op([vals[p] for p in preds], x))
        shape = (n,) + tuple(sim.net.shapes[node])
        if kind == "output" and node not in units:
            vals[node] = _as_shape(x, shape)
            continue
        vals[node] = np.zeros(shape)
        sim._ops.append(_host_op(sim, node, kind, arg, x, vals[node], units))
    return vals[read.name]


def _host_op(sim, node: str, kind: str, arg, x: np.ndarray, buf: np.ndarray, units) -> Op:
    """One step of a host program node (delay, flatten, average, synapse, output units)."""
    if kind == "delay":
        ring = _Ring(x.shape, int(arg.max()) + 1, False)
        write, read = ring.writer(x), ring.reader(np.asarray(arg), buf)

        def delay(t):
            write(t)
            read(t)
        return delay
    if kind == "flatten":
        return lambda t: np.copyto(buf, x.reshape(buf.shape))
    if kind == "average":
        xr = _as_shape(x, (sim.n, arg, -1))
        count = float(xr.shape[2])

        def average(t, xr=xr, count=count):       # np.mean's own arithmetic (sum, then / count), minus its wrapper
            np.add.reduce(xr, axis=2, out=buf)
            np.divide(buf, count, out=buf)
        return average
    if kind == "synapse":
        g, fixed = sim.g, sim.fixed
        return lambda t: np.copyto(buf, host_synapse(g, node, arg, x, fixed).reshape(buf.shape))
    unit = float(units[node])
    return lambda t: np.divide(x, unit, out=buf)


# ---------------------------------------------------------------------------- the step plan
class _Sim:
    """The compiled step plan of ``graph`` for a batch of ``batch`` samples.

    ``step(t, {input: (N, *shape)})`` returns the values of the inputs, populations and outputs
    (buffers reused by the next step: copy what you keep); ``state[pop]`` holds views ``u``,
    ``v`` (``ref``) of a CUBA population, or a sigma-delta population's ``sigma``, ``act``,
    ``residue``, ``error``."""

    def __init__(self, graph: Graph, mode: str, batch: int, net: Optional[Network] = None,
                 defer_outputs: bool = False):
        """``defer_outputs``: no ops for the outputs' host programs (``_run_steps`` records the
        populations they read and runs the programs once over all steps: ``plan.run_output``)."""
        self.defer_outputs = defer_outputs
        if mode not in ("fixed", "float"):
            raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
        self.g, self.mode, self.n, self.fixed = graph, mode, batch, mode == "fixed"
        self.net = net if net is not None else lower(graph)
        missing = [c.name for c in self.net.connections if c.synapse is not None and c.fixed is None] + \
            [p.name for p in self.net.neurons if p.fixed is None and p.kind != "sigma"]
        if self.fixed and missing:
            raise SnncError(f"fixed-point run needs the quantization pass first (no fixed view for {missing})")
        self.shapes = self.net.shapes
        self.t = 0
        self.state: Dict[str, Dict[str, np.ndarray]] = {}
        self.values: Dict[str, np.ndarray] = {}
        self._ops: List[Op] = []
        self._input_bufs: Dict[str, np.ndarray] = {}
        self._groups: List[CubaGroup] = []
        self._rings: Dict[str, _Ring] = {}
        self._reads: Dict[tuple, np.ndarray] = {}
        self._syn_out: Dict[str, np.ndarray] = {}
        self._syn_placed: set = set()
        self._sd: Dict[str, _SigmaDeltaPop] = {}
        self._shared = shared_synapses(self.net)
        self._build()

    # ------------------------------------------------------------------ plan
    def _units(self) -> List[Tuple[int, str, object]]:
        """Update units by depth: CUBA groups (depth, compare, rule) and sigma-delta populations."""
        keys: Dict[tuple, List[str]] = {}
        sd = []
        for p in self.net.neurons:
            d = self.net.depth[p.name]
            if p.kind in ("lif", "li"):
                compare = getattr(p.node, "spike_compare", ">") if not self.fixed else ">"
                keys.setdefault((d, compare, reset_kind(p.node)), []).append(p.name)
            else:
                sd.append((d, "sd", _SigmaDeltaPop(self.g, self.mode, p, self.n)))
        units = [(k[0], "cuba", CubaGroup(cuba_params(self.net, names, self.fixed), self.n))
                 for k, names in sorted(keys.items())]
        return sorted(units + sd, key=lambda u: (u[0], u[1] == "sd"))

    def _build(self):
        net, n = self.net, self.n
        for p in net.inputs:
            self.values[p.name] = self._input_bufs[p.name] = np.zeros((n,) + p.shape)
        units = self._units()
        for _, kind, u in units:
            if kind == "cuba":
                self._groups.append(u)
                for p in u.names:
                    self.values[p], self.state[p] = u.view(u.s, p), u.state(p)
            else:
                self._sd[u.name] = u
                self.values[u.name], self.state[u.name] = u.value, u.state
        self._make_rings()
        for p in net.inputs:
            if p.name in self._rings:
                self._ops.append(self._rings[p.name].writer(self.values[p.name]))
        for _, kind, u in units:
            for p in u.names:
                self._wire(p, u if kind == "cuba" else None)
            if kind == "cuba":
                u.finish()
            self._ops.append(u.update)
            for p in u.names:
                if p in self._rings:
                    self._ops.append(self._rings[p].writer(self.values[p]))
        for name in list(self._syn_out):       # synapses read only after a delay: end of the step
            if name not in self._syn_placed:
                self._place_synapse(next(c for c in net.connections if c.name == name))
        if self.defer_outputs:
            return
        units_out = output_units(net, self.mode)
        for read in net.outputs:
            self.values[read.name] = _output_ops(self, read, units_out)

    def _make_rings(self):
        """A ring history per population or Input read through a delay, and per synapse whose
        output reaches a population through one (depth: the longest delay read + 1)."""
        reads: Dict[str, List[np.ndarray]] = {}
        for c in self.net.connections:
            for s in c.sources:
                if s.delay.any():
                    reads.setdefault(s.pop, []).append(s.delay)
            if c.post_delay.any():
                reads.setdefault("syn:" + c.name, []).append(c.post_delay)
        for key, steps in reads.items():
            name = key[4:] if key.startswith("syn:") else key
            shape = self.net.shapes[name] if key.startswith("syn:") else self.net.populations[name].shape
            depth = max(int(s.max()) for s in steps) + 1
            size = self.n * int(np.prod(shape))
            twice = any(not np.all(s == s.flat[0]) for s in steps) and depth * size > INDEX_TABLE_ENTRIES
            self._rings[key] = _Ring((self.n,) + tuple(shape), depth, twice)

    def _source(self, s: Source) -> np.ndarray:
        """Population (or Input) ``s.pop``'s value ``s.delay`` steps ago, this step."""
        base = self.values[s.pop]
        if not s.delay.any():
            return base
        key = (s.pop, s.delay.tobytes())
        if key not in self._reads:
            buf = np.zeros_like(base)
            self._ops.append(self._rings[s.pop].reader(s.delay, buf))
            self._reads[key] = buf
        return self._reads[key]

    def _synapse_input(self, conn: Connection, group: List[Source]) -> np.ndarray:
        """The summed value of one synapse input (its sources, delayed and flattened)."""
        shape = (self.n,) + tuple(conn.in_shape)
        vals = [_as_shape(self._source(s), shape) for s in group]
        if len(vals) == 1:
            return vals[0]
        buf = np.zeros(shape)
        self._ops.append(_sum_op(vals, buf))
        return buf

    # ------------------------------------------------------------------ connections
    def _wire(self, pop: str, grp: Optional[CubaGroup]):
        """The ops that write population ``pop``'s input (CUBA: ``a`` scaled by 64 in fixed point,
        and the bias-input drive; sigma-delta: its summed input) before its update."""
        net, n = self.net, self.n
        conns = ordered_into(net, pop)
        a = grp.a[:, grp.p.slices[pop]] if grp is not None else self._sd[pop].a
        a2 = _as_shape(a, (n, -1)) if grp is None else a
        scale = 64.0 if (self.fixed and grp is not None) else 1.0
        direct = conns and all(c.synapse is not None and not c.post_delay.any() and self._shared[c.name] == 1
                               for c in conns)
        if direct:          # the synapses write straight into the population's input
            bounds = []
            for i, c in enumerate(conns):
                target = a2 if i == 0 else np.zeros(a2.shape)
                bounds.append(self._synapse_ops(c, target, scale))
                if i:
                    self._ops.append(_add_op(a2, target, False))
            if grp is not None and grp.a_bound is not None:
                if any(b is None for b in bounds):
                    grp.a_bound = None
                else:
                    if grp.a_low is None:
                        grp.a_low = np.zeros_like(grp.a_bound)
                    grp.a_bound[grp.p.slices[pop]] = sum(b[0] for b in bounds)
                    grp.a_low[grp.p.slices[pop]] = sum(b[1] for b in bounds)
        elif conns:
            self._ops.append(_sum_op([_as_shape(self._conn_value(c), (n, -1)) for c in conns], a2, scale))
            if grp is not None:
                grp.a_bound = None                  # not bounded here: always check
        if grp is not None:
            for b in net.populations[pop].bias_inputs:
                sc = float(net.populations[pop].state_scale) if self.fixed else 1.0
                d = grp.add_drive(pop, sc)
                self._ops.append(_sum_op([_as_shape(self.values[b], (n, -1))], d, sc))

    def _conn_value(self, c: Connection) -> np.ndarray:
        """A connection's contribution this step (a direct link: its source's value)."""
        if c.synapse is None:
            return self._synapse_input(c, list(c.sources))
        if c.name not in self._syn_out:
            self._syn_out[c.name] = np.zeros((self.n,) + tuple(c.out_shape))
        if c.post_delay.min() == 0 and c.name not in self._syn_placed:
            self._place_synapse(c)
        if not c.post_delay.any():
            return self._syn_out[c.name]
        key = ("syn:" + c.name, c.post_delay.tobytes())
        if key not in self._reads:
            buf = np.zeros_like(self._syn_out[c.name])
            self._ops.append(self._rings["syn:" + c.name].reader(c.post_delay, buf))
            self._reads[key] = buf
        return self._reads[key]

    def _place_synapse(self, c: Connection):
        """The synapse into its own buffer (a fork, or delays after it), then its ring history."""
        self._syn_placed.add(c.name)
        out = self._syn_out[c.name]
        self._synapse_ops(c, _as_shape(out, (self.n, -1)), 1.0)
        if "syn:" + c.name in self._rings:
            self._ops.append(self._rings["syn:" + c.name].writer(out))

    def _synapse_ops(self, c: Connection, out2: np.ndarray, scale: float) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Ops writing the synapse's output (per synapse input, summed, as the spec) times ``scale``
        into ``out2`` (N, -1); returns bounds (on output, on -output) per neuron (fixed point, spikes) or None."""
        spec = synapse_spec(c, self.fixed)
        inputs = [self._synapse_input(c, grp) for grp in synapse_inputs(self.net, c)]
        kind, w = _step_weights(spec, self.fixed, self.n)
        exact = not self.fixed or spec.exact_in_float64()
        per_input = spec.per_input
        post = scale if per_input else 1.0
        if kind != "conv-float" and not per_input and scale != 1.0:
            w = w * scale
        tmp = np.zeros(out2.shape) if per_input and len(inputs) > 1 else None
        for i, x in enumerate(inputs):
            if kind == "conv-float":
                self._ops.append(_conv_float_op(spec, x, _as_shape(out2, (self.n,) + spec.out_shape), i == 0))
                continue
            x2 = _as_shape(x, (self.n, -1))
            target = out2 if tmp is None else tmp
            first = i == 0 or per_input
            if not exact:
                self._ops.append(_int_gemm_op(w, x2, target, first))
            elif kind == "sparse":
                self._ops.append(_sparse_op(w, x2, target, first))
            elif self.fixed and self.n == 1 and not spec.graded:
                self._ops.append(_event_op(w, x2, target, first))
            else:
                self._ops.append(_gemm_op(w, x2, target, first))
            if per_input:
                self._ops.append(_post_op(target, spec.floor_mul, spec.clamp, post))
                if tmp is not None:
                    self._ops.append(_add_op(out2, tmp, i == 0))
        if not self.fixed or spec.graded:
            return None
        hi, lo = signed_row_sums(w)
        if per_input:
            hi, lo = post_synapse_bounds(spec, hi, lo)
        return hi * post * len(inputs), lo * post * len(inputs)

    # ------------------------------------------------------------------ running
    def step(self, t: int, x: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """One step: ``x`` maps input names to (N, *shape) values; returns the plan's values."""
        for name, buf in self._input_bufs.items():
            np.copyto(buf, x[name])
        self.run_step(t)
        return self.values

    def run_step(self, t: int) -> None:
        """One step on the values already in the input buffers (``input_buffers``)."""
        self.t = t
        for op in self._ops:
            op(t)

    @property
    def input_buffers(self) -> Dict[str, np.ndarray]:
        return self._input_bufs

    def counts(self) -> Dict[str, np.ndarray]:
        """Spikes (sigma-delta: non-zero messages) per neuron so far, per population (N, *shape)."""
        out = {}
        for grp in self._groups:
            if grp.kind == "li":
                continue
            for p in grp.names:
                out[p] = grp.view(grp.count, p).copy()
        for p, u in self._sd.items():
            if u.count is not None:
                out[p] = u.count.copy()
        return out


# ---------------------------------------------------------------------------- running
def _progress(progress: bool, total: int, mode: str):
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="sample-step", unit_scale=True, desc=f"reference-{mode}")


def _run_steps(sim: _Sim, data: Dict[str, np.ndarray], steps: int, odt, bar) -> Dict[str, np.ndarray]:
    """The step plan over ``steps`` steps of time-major ``data``; outputs (T, N, *shape). With
    ``sim.defer_outputs`` the populations and inputs the outputs read are recorded and the
    outputs' host programs run once, over all steps."""
    outputs = sim.g.outputs
    net = sim.net
    read = sorted({node for r in net.outputs for node, kind, _, _ in r.program if kind == "pop"}) \
        if sim.defer_outputs else outputs

    def rec_dtype(o):                   # a LIF population's 0/1 spikes: uint8 (an eighth of the memory)
        if o in outputs and not sim.defer_outputs:
            return odt
        p = net.populations.get(o)
        return np.uint8 if p is not None and p.kind == "lif" else sim.values[o].dtype
    rec = {o: np.zeros((steps,) + sim.values[o].shape, rec_dtype(o)) for o in read}
    feeds = [(buf, data[k]) for k, buf in sim.input_buffers.items()]
    ovals = [(rec[o], sim.values[o]) for o in read]
    ops, n = sim._ops, sim.n
    every = max(1, steps // 100)
    for t in range(steps):
        for buf, d in feeds:
            np.copyto(buf, d[t])
        for op in ops:
            op(t)
        for r, val in ovals:
            np.copyto(r[t], val, casting="unsafe")       # LIF spikes (0/1) into uint8
        if bar is not None and (t % every == every - 1 or t == steps - 1):
            bar.update(n * (every if t % every == every - 1 else (t % every) + 1))
    sim.t = steps - 1
    if sim.defer_outputs:
        units = output_units(net, sim.mode)
        return {r.name: run_output(net, r, rec, sim.fixed, units).astype(odt, copy=False) for r in net.outputs}
    return rec


def _use_batched(plan: str, mode: str, net: Network, n: int) -> bool:
    if plan == "batched" and (mode != "fixed" or not batchable(net)):
        raise SnncError("reference: the time-batched plan needs a fixed-point graph without cycles whose "
                        "synapses read spikes; use plan='step'")
    return plan == "batched" or (plan == "auto" and mode == "fixed" and batchable(net) and batched_pays(net, n))


def run_reference(graph: Union[Graph, Network], spikes, mode: str = "fixed", progress: bool = False,
                  batch_size: Optional[int] = None, plan: str = "auto") -> RunResult:
    """Run ``graph`` on ``spikes`` ``(N, *input_shape, T)`` (a dict by input name for several inputs).
    ``graph``: a Graph (validated and lowered here) or the lowered Network of a validated graph
    (``api.run`` passes one: validated and lowered once per run).

    Returns the (first) output ``(N, *shape, T)`` and per-population spike counts.
    ``progress``: a tqdm bar over steps (and chunks); ``batch_size``: samples per chunk (memory).
    ``plan``: "auto" (fixed point, no cycle and enough synapse work per step: the time-batched plan
    of ``reference_batched``, one product per synapse for all steps; else the step plan), "step"
    or "batched".
    """
    if plan not in ("auto", "step", "batched"):
        raise SnncError(f"reference: plan must be 'auto', 'step' or 'batched', got {plan!r}")
    start = time.perf_counter()
    if isinstance(graph, Network):
        net, graph = graph, graph.graph
    else:
        net = lower(validate(graph))
    inputs = host_io.check_batch(net, spikes, f"reference-{mode}")
    first = np.asarray(next(iter(inputs.values())))
    n, steps = first.shape[0], first.shape[-1]
    batched = _use_batched(plan, mode, net, n)
    inputs = input_values(graph, inputs, mode)
    shapes = net.shapes
    chunk = n if not batch_size else max(1, int(batch_size))
    outs, counts = result_buffers(net, n, steps)
    views = [k for k in inputs if host_io.drives_only(net, k)] if batched else []   # read in place
    bar = _progress(progress, n * steps, mode)
    if batched:             # rows T * N per product; chunks sized to memory
        per_row = sum(int(np.prod(s)) for s in shapes.values())
        chunk = min(chunk, max(1, BATCHED_ENTRIES // max(1, steps * per_row)))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        data = time_major(inputs, lo, hi, views)
        if batched:
            vals, cnts = run_batched(graph, data, steps, hi - lo, net=net)
            if bar is not None:
                bar.update((hi - lo) * steps)
        else:
            sim = _Sim(graph, mode, hi - lo, net=net, defer_outputs=True)
            vals, cnts = _run_steps(sim, data, steps, outs[graph.outputs[0]].dtype, bar), sim.counts()
        for o in graph.outputs:
            outs[o][lo:hi] = np.moveaxis(vals[o], 0, -1)
        for p in counts:
            if hi - lo == n and cnts[p].dtype == counts[p].dtype and cnts[p].shape == counts[p].shape:
                counts[p] = cnts[p]         # one chunk: the run's own array (made for it), no copy
            else:
                counts[p][lo:hi] = cnts[p]
    if bar is not None:
        bar.close()
    return RunResult(output=outs[graph.outputs[0]], counts=counts, engine=f"reference-{mode}",
                     seconds=time.perf_counter() - start, outputs=outs, plan="batched" if batched else "step")
