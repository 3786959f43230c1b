"""Reference simulator of the IR: numpy, batch-vectorized, time-stepped, compiled to a step plan.

Two modes, each equal to one Lava target by construction:
- ``fixed``: Loihi 2 integer arithmetic on ``Graph.fixed`` (run ``quantize`` first), bit-exact
  with Lava's ``fixed_pt`` models (24-bit u that wraps, v that saturates, 12-bit decays with
  round-toward-zero, ``a_in << 6``, ``v > vth << 6``, Conv output clamped to 24 bits);
- ``float``: Lava's ``floating_pt`` semantics on the IR's float parameters
  (``u = u*(1-du) + a``, ``v = v*(1-dv) + u + bias``, ``v > vth``).

It runs in IR time (synapses instantaneous, ``Delay`` nodes explicit), so its output is aligned
step for step with the model's own time axis.

The semantics are stated plainly, node by node, in ``reference_spec`` (the executable spec); this
module computes exactly the same values (tests/test_reference_fast.py) from a plan built once:

- every value lives in a preallocated buffer updated in place; Flatten is a view, a single-source
  sum is an alias, so a step is a flat list of numpy calls on fixed arrays (closures);
- fixed-point integers are held in float64, where every value involved is exact (|u|, |v| < 2**25,
  synaptic sums < 2**53): a 12-bit decay with round-toward-zero is ``trunc(x * (4096 - d) / 4096)``
  (the product has at most 37 significant bits), a synapse is a BLAS product, ``a_in << 6`` and a
  positive weight exponent are folded into the weights of a synapse that feeds one population;
- populations that do not depend on each other within a step (same number of populations on their
  longest instantaneous path from the inputs) are updated together as one concatenated vector: a
  network whose every connection has a delay (netx, SLAYER) updates all its neurons in ~15 calls;
- a Delay is a ring history; with per-neuron steps its read is one ``take`` with precomputed indices;
- one sample (N = 1): a Dense/lowered-Conv synapse sums the weight rows of the sources that
  spiked (event-driven) instead of a dense product; fixed-point only (integers: any order is exact);
- Conv2d/SumPool2d in fixed point: a precomputed matrix over the C-order flat neurons, dense for
  one sample or a dense-enough batch product, else scipy CSR (a pooling matrix is mostly zeros); the 24-bit clamp is applied only if the weights can reach it. Float mode keeps
  ``conv2d`` (the spec's summation order, so float results are identical too);
- the wrap of u and the saturation of v are applied (exactly as the spec) only on the steps where
  a value is out of range (one max/min test per group).

Node types this plan does not know (see ``FAST_NODES``) run on the spec simulator instead.

Fixed point, feed-forward graphs with enough synapse work per step (``reference_batched``'s cost
model) run on the time-batched plan instead: one GEMM / im2col / event-driven product per synapse
over all ``T * N`` rows, this module's own update op per population; bit-identical
(tests/test_reference_batched.py). ``run_reference(..., plan="step")`` forces the step plan.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional

import numpy as np

from ..compiler.fixed import U_WRAP, V_MAX, state_scale
from ..compiler.ir import (_pair, Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                           SumPool2d)
from ..compiler.passes import check, topo_order
from ..compiler.validate import validate
from ..errors import SnncError
from . import host_io
from .reference_batched import batchable, batched_pays, run_batched
from .reference_spec import _rtz_decay, conv2d  # noqa: F401  (re-exported: public helpers)
from .result import RunResult

FAST_NODES = (Input, Output, Dense, Conv2d, SumPool2d, Flatten, Delay, CubaLIF, CubaLI, Average)
POPULATIONS = (CubaLIF, CubaLI)
SYNAPSE_TYPES = (Dense, Conv2d, SumPool2d)
_HALF = float(U_WRAP >> 1)
_VMAX = float(V_MAX)
DENSE_CONV_ENTRIES = 1 << 22        # a Conv lowered to a dense matrix up to this many entries, else sparse
SPARSE_DENSITY = 0.1                # batch: a Conv matrix sparser than this runs as scipy CSR
INDEX_TABLE_ENTRIES = 1 << 22       # per-neuron Delay: precomputed gather indices up to this size
BATCHED_ENTRIES = 1 << 25           # time-batched plan: values of all nodes per chunk (T * N rows)


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
    """True when every node (and fixed view) is one the compiled plan handles."""
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


def _reset_kind(node) -> str:
    """The update rule of a population: "li" (read-out), "zero", "sub" (immediate subtraction),
    "late" (subtraction one step late) or "none" (CubaLIF docstring)."""
    if isinstance(node, CubaLI):
        return "li"
    if node.reset == "subtract":
        return "late" if node.reset_delay else "sub"
    if node.reset == "subtract_snntorch":
        return "snt"               # immediate, the test also subtracts where v[t-1] > thr
    return node.reset


class _Group:
    """CubaLIF populations updated together: concatenated state (N, total) and per-neuron params."""

    def __init__(self, names: List[str]):
        self.names = names


class _Sim:
    """The compiled step plan of ``graph`` for a batch of ``batch`` samples.

    ``step(t, {input: (N, *shape)})`` returns every node's current value (buffers reused by the next
    step: copy what you keep); ``state[pop]`` holds views ``u``, ``v``, ``ref`` (N, *shape)."""

    def __init__(self, graph: Graph, mode: str, batch: int, build: bool = True):
        if mode not in ("fixed", "float"):
            raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
        self.g, self.mode, self.n = graph, mode, batch
        self.shapes = check(graph)
        self.order = topo_order(graph)
        self.fixed = mode == "fixed"
        if self.fixed:
            missing = [k for k, v in graph.nodes.items()
                       if isinstance(v, POPULATIONS + (Dense, Conv2d, SumPool2d)) and k not in graph.fixed]
            if missing:
                raise SnncError(f"fixed-point run needs the quantization pass first (no fixed view for {missing})")
        self.t = 0
        self.state: Dict[str, Dict[str, np.ndarray]] = {}
        self.values: Dict[str, np.ndarray] = {}
        self.preds = {k: graph.predecessors(k) for k in graph.nodes}
        self.succs = {k: graph.successors(k) for k in graph.nodes}
        self._start_ops: List[Callable[[int], None]] = []
        self._ops: List[Callable[[int], None]] = []
        self._input_bufs: Dict[str, np.ndarray] = {}
        self._bounds: Dict[str, np.ndarray] = {}       # fixed: max |output| of each synapse
        self._check_inputs: List[str] = []
        if build:               # build=False: only the population helpers (reference_batched)
            self._build()

    # ------------------------------------------------------------------ helpers
    def _shape(self, name):
        return (self.n,) + tuple(self.shapes[name])

    def _buf(self, name):
        return np.zeros(self._shape(name), np.float64)

    def _timed(self, name) -> bool:
        node = self.g.nodes[name]
        return isinstance(node, Delay) and node.min_steps >= 1

    def _sum_op(self, srcs: List[str], out: np.ndarray, scale: float = 1.0):
        """An op writing ``scale * sum(values[srcs])`` (the spec's summation order) into ``out``."""
        out = _as_shape(out, self.values[srcs[0]].shape)
        vals = [_as_shape(self.values[s], out.shape) for s in srcs]

        def op(t, vals=vals, out=out, scale=scale):
            np.copyto(out, vals[0])
            for v in vals[1:]:
                np.add(out, v, out=out)
            if scale != 1.0:
                np.multiply(out, scale, out=out)
        return op

    def _input_value(self, name) -> np.ndarray:
        """The node's input: the sum of its sources (an alias for a single source)."""
        srcs = self.preds[name]
        if len(srcs) == 1:
            return self.values[srcs[0]]
        buf = np.zeros((self.n,) + tuple(self.shapes[srcs[0]]), np.float64)
        self._ops.append(self._sum_op(srcs, buf))
        return buf

    # ------------------------------------------------------------------ plan
    def _build(self):
        g = self.g
        order = self.order
        # scheduling depth: populations on the longest instantaneous path (module doc)
        depth: Dict[str, int] = {}
        out_depth: Dict[str, int] = {}
        for name in order:
            node = g.nodes[name]
            ds = [out_depth[p] for p in self.preds[name] if p in out_depth]
            d = max(ds) if ds else 0
            if isinstance(node, POPULATIONS):
                depth[name] = out_depth[name] = d + 1
            else:
                depth[name] = d
                out_depth[name] = 0 if self._timed(name) else d
        # a population in a cycle has predecessors after it: they are all behind timed delays
        pops = [k for k in order if isinstance(g.nodes[k], POPULATIONS)]
        groups: Dict[tuple, List[str]] = {}
        for p in pops:
            node = g.nodes[p]
            compare = getattr(node, "spike_compare", ">") if not self.fixed else ">"
            key = (depth[p], compare, _reset_kind(node))
            groups.setdefault(key, []).append(p)
        self._groups = [self._make_group(names) for _, names in sorted(groups.items())]
        by_depth: Dict[int, List[_Group]] = {}
        for (d, _, _), grp in zip(sorted(groups), self._groups):
            by_depth.setdefault(d, []).append(grp)

        # synapses that write straight into their population's input (see _group_ops)
        self._direct = set()
        for p in pops:
            syn = [q for q in self.preds[p] if not (isinstance(g.nodes[q], Input) and g.nodes[q].kind == "bias")]
            if syn and all(isinstance(g.nodes[q], SYNAPSE_TYPES) and self.succs[q] == [p] for q in syn):
                self._direct.update(syn)
        # timed delays: history and output buffers first (their values are read at step start)
        for name in order:
            if self._timed(name):
                self._make_delay(name, timed=True)
        maxd = max([0] + list(depth.values()))
        for d in range(maxd + 1):
            for name in order:
                node = g.nodes[name]
                if isinstance(node, POPULATIONS) or depth[name] != d:
                    continue
                self._make_node(name, node)
            for grp in by_depth.get(d + 1, []):
                self._group_ops(grp)
        self.outputs_view = {o: self.values[o] for o in g.outputs}

    # ------------------------------------------------------------------ nodes
    def _make_node(self, name, node):
        if isinstance(node, Input):
            buf = self._buf(name)
            self._input_bufs[name] = buf
            self.values[name] = buf
            if self.fixed and node.kind != "bias" and self._feeds_synapse(name):
                self._check_inputs.append(name)
            return
        if isinstance(node, Delay):
            if self._timed(name):
                self._delay_write(name)
            else:
                self._make_delay(name, timed=False)
            return
        if isinstance(node, Flatten):
            x = self._input_value(name)
            v = _view(x, self._shape(name))
            if v is None:
                buf = self._buf(name)
                self._ops.append(lambda t, x=x, buf=buf: np.copyto(buf, x.reshape(buf.shape)))
                v = buf
            self.values[name] = v
            return
        if isinstance(node, SYNAPSE_TYPES):
            if name not in self._direct:         # else placed into its population's input
                self.values[name] = self._buf(name)
                self._synapse_ops(name, node, self.values[name], scale=1.0)
            return
        if isinstance(node, Average):
            x = self._input_value(name)
            buf = self._buf(name)
            xr = _as_shape(x, (self.n, node.groups, -1))

            def avg(t, xr=xr, buf=buf):
                np.mean(xr, axis=2, out=buf)
            self._ops.append(avg)
            self.values[name] = buf
            return
        if isinstance(node, Output):
            self.values[name] = self._input_value(name)
            return
        raise SnncError(f"reference: node {name!r} of type {type(node).__name__} is not supported")

    def _feeds_synapse(self, name) -> bool:
        seen, todo = set(), [name]
        while todo:
            k = todo.pop()
            for s in self.succs[k]:
                node = self.g.nodes[s]
                if isinstance(node, SYNAPSE_TYPES):
                    return True
                if isinstance(node, (Delay, Flatten)) and s not in seen:
                    seen.add(s)
                    todo.append(s)
        return False

    # ------------------------------------------------------------------ delays
    def _make_delay(self, name, timed: bool):
        """Ring history of depth max(steps) + 1, written at slot t % depth; the read of slot
        (t - d) % depth is zero while t < d (never written yet). Per-neuron steps: one ``take``
        with precomputed indices, or (past INDEX_TABLE_ENTRIES) indices computed per step from a
        history written twice (slots r and r + depth, so that a read never wraps)."""
        node = self.g.nodes[name]
        shape = self._shape(name)
        steps = np.broadcast_to(np.asarray(node.steps, dtype=np.int64), self.shapes[name])
        depth = int(steps.max()) + 1
        size = int(np.prod(shape))
        uniform = bool(np.all(steps == steps.flat[0]))
        per = np.broadcast_to(steps, shape).reshape(-1)
        twice = not uniform and depth * size > INDEX_TABLE_ENTRIES
        hist = np.zeros(((2 if twice else 1) * depth,) + shape, np.float64)
        out = self._buf(name)
        st = dict(hist=hist, steps=steps, depth=depth, twice=twice)
        self.state[name] = st
        self.values[name] = out
        flat, outf = hist.reshape(-1), out.reshape(-1)
        if uniform:
            d = int(steps.flat[0])

            def read(t, hist=hist, out=out, d=d, depth=depth):
                np.copyto(out, hist[(t - d) % depth])
        elif not twice:
            j = np.arange(size, dtype=np.int64)
            table = np.stack([((r - per) % depth) * size + j for r in range(depth)])

            def read(t, flat=flat, outf=outf, table=table, depth=depth):
                flat.take(table[t % depth], out=outf)
        else:
            base = np.arange(size, dtype=np.int64) - per * size      # + (r + depth) * size
            idx = np.empty_like(base)

            def read(t, flat=flat, outf=outf, base=base, idx=idx, depth=depth, size=size):
                np.add(base, (t % depth + depth) * size, out=idx)
                flat.take(idx, out=outf)
        st["read"] = read
        if timed:
            self._start_ops.append(read)
        else:
            self._delay_write(name)
            self._ops.append(read)

    def _delay_write(self, name):
        st = self.state[name]
        x = self._input_value(name)
        hist, depth = st["hist"], st["depth"]
        x = _as_shape(x, hist.shape[1:])
        if st["twice"]:
            def write(t, hist=hist, x=x, depth=depth):
                r = t % depth
                np.copyto(hist[r], x)
                np.copyto(hist[r + depth], x)
        else:
            def write(t, hist=hist, x=x, depth=depth):
                np.copyto(hist[t % depth], x)
        self._ops.append(write)

    # ------------------------------------------------------------------ synapses
    def _synapse_ops(self, name, node, out: np.ndarray, scale: float):
        """Ops writing the synapse's output (summed over its sources, one synapse per source, as the
        spec) times ``scale`` (64 in fixed mode when it feeds a population's u directly) into ``out``."""
        srcs = self.preds[name]
        n = self.n
        out2 = _as_shape(out, (n, -1))
        fixed = self.fixed
        exp, clamp, kind = 0, False, "dense"
        if isinstance(node, Dense):
            if fixed:
                fx = self.g.fixed[name]
                exp = int(fx.weight_exp)
            w = np.asarray(fx.weight if fixed else node.weight, dtype=np.float64)
        elif not fixed:
            kind = "conv-float"
        else:
            fx = self.g.fixed[name]
            in_shape = tuple(self.shapes[srcs[0]])
            if isinstance(node, SumPool2d):
                c = in_shape[0]
                cw = np.broadcast_to(np.asarray(fx.weight, dtype=np.float64), (c, 1) + tuple(node.kernel))
                stride, padding, dilation, groups = node.stride, node.padding, (1, 1), c
            else:
                cw = np.asarray(fx.weight, dtype=np.float64)
                stride, padding, dilation, groups = node.stride, node.padding, node.dilation, node.groups
            m = conv_matrix_sparse(cw, in_shape, tuple(self.shapes[name]), _pair(stride), _pair(padding),
                                   _pair(dilation), int(groups))
            if m.nnz:
                rsum = np.add.reduceat(np.abs(np.append(m.data, 0.0)), m.indptr[:-1])
                rsum[np.diff(m.indptr) == 0] = 0.0
                clamp = bool(rsum.max() >= (1 << 23))
            else:
                clamp = False
            entries = int(np.prod(self.shapes[name])) * int(np.prod(in_shape))
            # dense: the single-sample event path, or a batch product that is dense enough for BLAS
            if entries <= DENSE_CONV_ENTRIES and (n == 1 or m.nnz >= SPARSE_DENSITY * entries):
                w = m.toarray()
            else:
                kind, w = "sparse", m
        floor_mul = float(2.0 ** exp) if exp < 0 else None
        per_source = floor_mul is not None or clamp       # the spec shifts/clamps each synapse
        if kind != "conv-float":
            fold = scale * (float(2 ** exp) if exp > 0 else 1.0) if not per_source else 1.0
            if fold != 1.0:
                w = w * fold
        post = scale if per_source else 1.0
        if fixed:
            # largest |value| this synapse can write per output neuron (inputs are 0/1 spikes)
            if kind == "sparse":
                rows = np.add.reduceat(np.abs(np.append(w.data, 0.0)), w.indptr[:-1])
                rows[np.diff(w.indptr) == 0] = 0.0          # reduceat of an empty row
            else:
                rows = np.abs(w).sum(axis=1)
            if per_source:
                rows = rows * (floor_mul if floor_mul is not None else 1.0) + (1.0 if floor_mul else 0.0)
                if clamp:
                    rows = np.minimum(rows, float(1 << 23))
            self._bounds[name] = rows * post * len(srcs)
        tmp = np.zeros(out2.shape, np.float64) if per_source and len(srcs) > 1 else None
        for i, s in enumerate(srcs):
            x = self.values[s]
            if kind == "conv-float":
                self._ops.append(self._conv_float_op(node, x, out, i == 0))
                continue
            x2 = _as_shape(x, (n, -1))
            if not per_source:
                self._ops.append(self._matmul_op(kind, w, x2, out2, i == 0))
                continue
            target = out2 if tmp is None else tmp
            self._ops.append(self._matmul_op(kind, w, x2, target, True))
            self._ops.append(self._post_op(target, floor_mul, clamp, post))
            if tmp is not None:
                self._ops.append((lambda t, o=out2, tmp=tmp: np.copyto(o, tmp)) if i == 0
                                 else (lambda t, o=out2, tmp=tmp: np.add(o, tmp, out=o)))

    @staticmethod
    def _post_op(buf, floor_mul, clamp, post):
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

    def _matmul_op(self, kind, w, x2, out2, first):
        if kind == "sparse":
            def op(t, w=w, x2=x2, out2=out2, first=first):
                y = (w @ x2.T).T
                if first:
                    np.copyto(out2, y)
                else:
                    np.add(out2, y, out=out2)
            return op
        if self.fixed and self.n == 1:
            # event-driven: the sum of the weight rows of the sources that spiked (exact integers)
            wr = np.ascontiguousarray(w.T)
            x1, o1 = x2[0], out2[0]
            mask = np.zeros(x1.shape, bool)
            tmp = np.zeros(o1.shape, np.float64)

            def op(t, wr=wr, x1=x1, o1=o1, mask=mask, tmp=tmp, first=first):
                np.not_equal(x1, 0.0, out=mask)
                rows = wr[mask]                    # fixed-point synapse inputs are 0/1 spikes
                if first:
                    np.add.reduce(rows, axis=0, out=o1)
                else:
                    np.add.reduce(rows, axis=0, out=tmp)
                    np.add(o1, tmp, out=o1)
            return op
        wt = w.T                                   # the spec's x @ w.T (same BLAS call)
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

    def _conv_float_op(self, node, x, out, first):
        w = np.asarray(node.weight, dtype=np.float64)
        if isinstance(node, SumPool2d):
            c = x.shape[1]
            w = np.broadcast_to(w, (c, 1) + tuple(node.kernel))
            args = (w, node.stride, node.padding, (1, 1), c)
        else:
            args = (w, node.stride, node.padding, node.dilation, node.groups)
        shape = out.shape

        def op(t, x=x, out=out, first=first):
            a = conv2d(x, *args)
            if first:
                np.copyto(out, a.reshape(shape))
            else:
                np.add(out, a.reshape(shape), out=out)
        return op

    # ------------------------------------------------------------------ populations
    def _make_group(self, names: List[str]) -> _Group:
        g, n, fixed = self.g, self.n, self.fixed
        grp = _Group(names)
        sizes = [int(np.prod(self.shapes[p])) for p in names]
        offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        tot = int(offs[-1])
        grp.u = np.zeros((n, tot))
        grp.v = np.zeros((n, tot))
        grp.a = np.zeros((n, tot))
        grp.s = np.zeros((n, tot))
        grp.sb = np.zeros((n, tot), bool)
        grp.count = np.zeros((n, tot), np.int64)
        grp.slices = {}

        def per_neuron(values):
            return np.concatenate([np.broadcast_to(np.asarray(v, dtype=np.float64), self.shapes[p]).reshape(-1)
                                   for p, v in zip(names, values)])

        def compact(arr):
            return float(arr[0]) if arr.size and np.all(arr == arr[0]) else arr

        nodes = [g.nodes[p] for p in names]
        grp.kind = _reset_kind(nodes[0])
        if fixed:
            fxs = [g.fixed[p] for p in names]
            grp.cu = compact(per_neuron([(4096 - np.asarray(f.decay_u, np.int64)) / 4096.0 for f in fxs]))
            grp.cv = compact(per_neuron([(4096 - np.asarray(f.decay_v, np.int64)) / 4096.0 for f in fxs]))
            bias = per_neuron([np.asarray(f.bias_mant, dtype=np.int64) << int(f.bias_exp) for f in fxs])
            grp.vth = compact(per_neuron([np.asarray(getattr(f, "vth", 0), dtype=np.int64) << 6 for f in fxs]))
            refr = per_neuron([int(getattr(f, "refractory", 0)) for f in fxs])
            grp.out_scale = 1.0
            if grp.kind == "li":            # read-out: v_int / S
                grp.out_scale = compact(per_neuron([1.0 / state_scale(g, p) for p in names]))
        else:
            grp.cu = compact(per_neuron([1 - np.asarray(nd.current_decay, dtype=np.float64) for nd in nodes]))
            grp.cv = compact(per_neuron([1 - np.asarray(nd.voltage_decay, dtype=np.float64) for nd in nodes]))
            bias = per_neuron([nd.bias for nd in nodes])
            grp.vth = compact(per_neuron([getattr(nd, "threshold", 0.0) for nd in nodes]))
            refr = per_neuron([int(getattr(nd, "refractory", 0)) for nd in nodes])
            grp.out_scale = 1.0
        grp.bias = compact(bias) if np.any(bias != 0) else None
        grp.refr = refr if np.any(refr) else None
        grp.ref = np.zeros((n, tot)) if grp.refr is not None else None
        grp.ge = (not fixed) and getattr(nodes[0], "spike_compare", ">") != ">"
        grp.resets = []
        grp.a_bound = np.zeros(tot) if fixed else None
        grp.drive = None
        grp.drive_ops = []
        for p, nd, a, b in zip(names, nodes, offs[:-1], offs[1:]):
            shape = self._shape(p)
            sl = slice(int(a), int(b))
            grp.slices[p] = sl
            uv, vv = _view(grp.u[:, sl], shape), _view(grp.v[:, sl], shape)
            self.state[p] = dict(u=uv, v=vv)
            if grp.ref is not None:
                self.state[p]["ref"] = _view(grp.ref[:, sl], shape)
            self.values[p] = _view(grp.s[:, sl], shape)
            if getattr(nd, "reset_interval", 0):
                grp.resets.append((int(nd.reset_interval), int(nd.reset_offset) % int(nd.reset_interval),
                                   grp.u[:, sl], grp.v[:, sl]))
        return grp

    def _group_ops(self, grp: _Group):
        """Inputs of each population into ``grp.a`` (and bias drive), then the group update."""
        g, n, fixed = self.g, self.n, self.fixed
        scale = 64.0 if fixed else 1.0
        for p in grp.names:
            sl = grp.slices[p]
            a_view = grp.a[:, sl]
            preds = self.preds[p]
            bias_in = [q for q in preds if isinstance(g.nodes[q], Input) and g.nodes[q].kind == "bias"]
            syn = [q for q in preds if q not in bias_in]
            if syn and syn[0] in self._direct:
                # the synapses write straight into the population's input (scaled by 64 in fixed)
                for i, q in enumerate(syn):
                    if i == 0:
                        self._synapse_into(q, a_view, scale, first=True)
                    else:
                        tmp = np.zeros((n, sl.stop - sl.start))
                        self._synapse_into(q, tmp, scale, first=True)
                        self._ops.append(lambda t, a=a_view, tmp=tmp: np.add(a, tmp, out=a))
                if grp.a_bound is not None and fixed:
                    grp.a_bound[sl] = sum(self._bounds[q] for q in syn)
            elif syn:
                self._ops.append(self._sum_op(syn, a_view, scale))
                grp.a_bound = None                  # not bounded here: always check
            if bias_in:
                if grp.drive is None:
                    grp.drive = np.zeros_like(grp.a)
                d_view = grp.drive[:, sl]
                if fixed:
                    sc = float(state_scale(g, p))
                else:
                    sc = 1.0
                self._ops.append(self._sum_op(bias_in, d_view, sc))
                grp.drive_ops.append((p, d_view, sc))
        self._ops.append(self._update_op(grp))

    def _synapse_into(self, q, a_view, scale, first):
        node = self.g.nodes[q]
        shape = self._shape(q)
        v = _view(a_view, shape)
        self.values[q] = v if v is not None else a_view
        self._synapse_ops(q, node, a_view, scale)

    @staticmethod
    def _range_checks(grp: _Group):
        """Which of (u wrap, v > V_MAX, v < -V_MAX) can happen, from a static bound B on |a| per
        neuron: |u| <= B / (1 - cu) by induction (|trunc(cu * u)| <= cu * |u|; u starts at 0 and
        resets to 0); after a step v <= max(vth, 0), so before the compare v <= max(vth, 0) + Umax
        + bias, and v >= -(Umax + max(-bias, 0)) / (1 - cv). Where the bound cannot exclude it,
        the step tests the values (and then applies the spec's wrap/clip)."""
        if grp.a_bound is None or grp.drive is not None:
            return True, True, True
        if grp.kind != "zero":                  # v is not bounded by the threshold after a step
            return True, True, True
        one = np.ones_like(grp.a_bound)
        cu, cv = np.asarray(grp.cu) * one, np.asarray(grp.cv) * one
        if np.any(cu >= 1) or np.any(cv >= 1):
            return True, True, True
        umax = grp.a_bound / (1 - cu)
        bias = np.asarray(grp.bias if grp.bias is not None else 0.0) * one
        check_u = bool(np.any(umax > _HALF - 1))
        vth = np.maximum(np.asarray(grp.vth) * one, 0)
        check_vmax = check_u or bool(np.any(vth + umax + np.maximum(bias, 0) > _VMAX))
        check_vmin = check_u or bool(np.any((umax + np.maximum(-bias, 0)) / (1 - cv) > _VMAX))
        return check_u, check_vmax, check_vmin

    def _update_op(self, grp: _Group):
        u, v, a, s, sb, cnt = grp.u, grp.v, grp.a, grp.s, grp.sb, grp.count
        cu, cv, bias, vth, drive = grp.cu, grp.cv, grp.bias, grp.vth, grp.drive
        resets, refr, ref = grp.resets, grp.refr, grp.ref
        fixed = self.fixed
        compare = np.greater_equal if grp.ge else np.greater
        drive_checks = grp.drive_ops
        check_u, check_vmax, check_vmin = self._range_checks(grp)
        kind, out_scale = grp.kind, grp.out_scale
        late = np.zeros_like(v) if kind == "late" else None
        above, m = (np.zeros(v.shape, bool), np.zeros_like(v)) if kind == "snt" else (None, None)

        def update(t):
            for interval, offset, uu, vv in resets:
                if t % interval == offset:
                    uu[...] = 0.0
                    vv[...] = 0.0
            if above is not None:               # "subtract_snntorch": the stored v of the last step
                np.greater(v, vth, out=above)
            if fixed:
                np.multiply(u, cu, out=u)
                np.trunc(u, out=u)
                np.add(u, a, out=u)
                if check_u and (u.max() > _HALF or u.min() <= -_HALF):
                    np.copyto(u, np.where(u > _HALF, u - U_WRAP, u))
                    np.copyto(u, np.where(u <= -_HALF, u + U_WRAP, u))
                np.multiply(v, cv, out=v)
                np.trunc(v, out=v)
                np.add(v, u, out=v)
                if bias is not None:
                    np.add(v, bias, out=v)
                if drive is not None:
                    for p, dv, sc in drive_checks:
                        if not np.all(dv == np.round(dv)):
                            raise SnncError(f"population {p!r}: bias input is not a multiple of "
                                            f"1/{int(sc)} (the population's state unit)")
                    np.add(v, drive, out=v)
                if late is not None:            # delayed subtraction: after the decay, before the clip
                    np.multiply(s, vth, out=late)
                    np.subtract(v, late, out=v)
                if (check_vmax and v.max() > _VMAX) or (check_vmin and v.min() < -_VMAX):
                    np.clip(v, -_VMAX, _VMAX, out=v)
            else:
                np.multiply(u, cu, out=u)
                np.add(u, a, out=u)
                np.multiply(v, cv, out=v)
                np.add(v, u, out=v)
                if bias is not None:
                    np.add(v, bias, out=v)
                if drive is not None:
                    np.add(v, drive, out=v)
                if late is not None:
                    np.multiply(s, vth, out=late)
                    np.subtract(v, late, out=v)
            if kind == "li":                    # read-out: the output is v (fixed: in values)
                np.multiply(v, out_scale, out=s)
                return
            if refr is not None:
                held = ref > 0
                v[held] = 0.0
                np.maximum(ref - 1, 0, out=ref)
            if above is not None:
                np.multiply(above, vth, out=m)
                np.subtract(v, m, out=m)
                compare(m, vth, out=sb)
            else:
                compare(v, vth, out=sb)
            if kind == "zero":
                np.copyto(v, 0.0, where=sb)
            elif kind in ("sub", "snt"):
                np.subtract(v, vth, out=v, where=sb)
            np.copyto(s, sb)
            np.add(cnt, sb, out=cnt)
            if refr is not None:
                np.copyto(ref, np.broadcast_to(refr, ref.shape), where=sb)
        return update

    # ------------------------------------------------------------------ running
    def check_input(self, name: str, x: np.ndarray):
        if name in self._check_inputs and not np.all((x == 0) | (x == 1)):
            raise SnncError("fixed-point runs take binary spikes; got graded values at the input "
                            f"{name!r} of a synapse")

    def step(self, t: int, x: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """One step: ``x`` maps input names to (N, *shape) values; returns every node's value."""
        for name, buf in self._input_bufs.items():
            self.check_input(name, x[name])
            np.copyto(buf, x[name])
        self.run_step(t)
        return self.values

    def run_step(self, t: int) -> None:
        """One step on the values already in the input buffers (``input_buffers``)."""
        self.t = t
        for op in self._start_ops:
            op(t)
        for op in self._ops:
            op(t)

    @property
    def input_buffers(self) -> Dict[str, np.ndarray]:
        return self._input_bufs

    def counts(self) -> Dict[str, np.ndarray]:
        """Spikes per neuron so far, per population (N, *shape) int64."""
        out = {}
        for grp in self._groups:
            if grp.kind == "li":
                continue
            for p in grp.names:
                out[p] = grp.count[:, grp.slices[p]].reshape(self._shape(p)).copy()
        return out


def run_reference(graph: Graph, spikes, mode: str = "fixed", progress: bool = False,
                  batch_size: Optional[int] = None, plan: str = "auto") -> RunResult:
    """Run ``graph`` on ``spikes`` ``(N, *input_shape, T)`` (a dict by input name for several inputs).

    Returns the (first) output ``(N, *shape, T)`` and per-population spike counts.
    ``progress``: a tqdm bar over steps (and chunks); ``batch_size``: samples per chunk (memory).
    ``plan``: "auto" (fixed point, no cycle and enough synapse work per step: the time-batched plan
    of ``reference_batched``, one product per synapse for all steps; else the step plan), "step"
    or "batched".
    """
    if plan not in ("auto", "step", "batched"):
        raise SnncError(f"reference: plan must be 'auto', 'step' or 'batched', got {plan!r}")
    if plan == "batched" and (mode != "fixed" or not batchable(graph)):
        raise SnncError("reference: the time-batched plan needs a fixed-point graph without cycles whose "
                        "synapses read spikes; use plan='step'")
    start = time.perf_counter()
    validate(graph)
    inputs = host_io.check_batch(graph, spikes, f"reference-{mode}")
    first = np.asarray(next(iter(inputs.values())))
    n, steps = first.shape[0], first.shape[-1]
    if not supported(graph):
        from .reference_spec import run_reference_spec
        res = run_reference_spec(graph, spikes, mode)
        res.engine, res.plan = f"reference-{mode}", "spec"
        return res
    if any(graph.nodes[k].kind == "graded" for k in inputs if k in graph.nodes):
        from ..compiler.quantize import graded_values       # the host rounds graded inputs
        inputs = {k: (graded_values(graph, k, v) if k in graph.nodes and graph.nodes[k].kind == "graded"
                      else v) for k, v in inputs.items()}
    shapes = check(graph)
    for name, arr in inputs.items():
        want = (n,) + tuple(shapes[name]) + (steps,)
        if tuple(np.shape(arr)) != want:
            raise SnncError(f"input {name!r}: expected shape (N, {', '.join(map(str, shapes[name]))}, T) "
                            f"= {want}, got {tuple(np.shape(arr))}")
    chunk = n if not batch_size else max(1, int(batch_size))
    odt = np.float64 if any(isinstance(v, CubaLI) for v in graph.nodes.values()) else np.float32
    outs = {o: np.zeros((n,) + tuple(shapes[o]) + (steps,), odt) for o in graph.outputs}
    pops = [k for k, v in graph.nodes.items() if isinstance(v, CubaLIF)]
    counts = {p: np.zeros((n,) + tuple(shapes[p]), np.int64) for p in pops}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n * steps, unit="sample-step", unit_scale=True, desc=f"reference-{mode}")
    batched = plan == "batched" or (plan == "auto" and mode == "fixed" and batchable(graph)
                                    and batched_pays(graph, n))
    if batched:
        # time-batched (reference_batched): rows T * N per product; chunks sized to memory
        per_row = sum(int(np.prod(shapes[k])) for k in graph.nodes)
        chunk = min(chunk, max(1, BATCHED_ENTRIES // max(1, steps * per_row)))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        if batched:
            data = {k: np.ascontiguousarray(np.moveaxis(np.asarray(v)[lo:hi], -1, 0), dtype=np.float64)
                    for k, v in inputs.items()}
            vals, cnts = run_batched(graph, data, steps, hi - lo)
            for o in graph.outputs:
                outs[o][lo:hi] = np.moveaxis(vals[o], 0, -1)
            for p, c in cnts.items():
                counts[p][lo:hi] = c
            if bar is not None:
                bar.update((hi - lo) * steps)
            continue
        sim = _Sim(graph, mode, hi - lo)
        # time-major contiguous input, checked once
        data = {}
        for k, v in inputs.items():
            arr = np.asarray(v)[lo:hi]
            data[k] = np.ascontiguousarray(np.moveaxis(arr, -1, 0), dtype=np.float64)
            sim.check_input(k, data[k])
        rec = {o: np.zeros((steps, hi - lo) + tuple(shapes[o]), odt) for o in graph.outputs}
        bufs = sim.input_buffers
        feeds = [(bufs[k], data[k]) for k in bufs]
        ovals = [(rec[o], sim.values[o]) for o in graph.outputs]
        start_ops, ops = sim._start_ops, sim._ops
        every = max(1, steps // 100)
        for t in range(steps):
            for buf, d in feeds:
                np.copyto(buf, d[t])
            for op in start_ops:
                op(t)
            for op in ops:
                op(t)
            for r, val in ovals:
                np.copyto(r[t], val)
            if bar is not None and (t % every == every - 1 or t == steps - 1):
                bar.update((hi - lo) * (every if t % every == every - 1 else (t % every) + 1))
        sim.t = steps - 1
        for o in graph.outputs:
            outs[o][lo:hi] = np.moveaxis(rec[o], 0, -1)
        for p, c in sim.counts().items():
            counts[p][lo:hi] = c
    if bar is not None:
        bar.close()
    return RunResult(output=outs[graph.outputs[0]], counts=counts, engine=f"reference-{mode}",
                     seconds=time.perf_counter() - start, outputs=outs, plan="batched" if batched else "step")

