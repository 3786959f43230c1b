"""What the array engines (the step plan ``reference``, the time-batched plan ``reference_batched``
and the torch engine) build from the lowered network (``compiler.lower``), engine-independent:

- ``synapse_spec(conn, fixed)``: a connection's synapse as the engines compute it (weights with a
  positive exponent folded in, the floor after a negative one, Conv's 24-bit clamp, a bound on
  ``sum |w|`` per output neuron, whether it reads graded messages);
- ``synapse_inputs`` / ``ordered_into``: the sources of a connection grouped by the synapse input
  they reach and the connections into a population, in the spec's summation order (so float runs
  add in the same order as ``reference_spec``);
- ``host_synapse`` and ``run_output``: the outputs' host programs over recorded values;
- ``input_values``: the values an engine feeds (graded inputs rounded by the host).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..compiler.conv import conv2d
from ..compiler.ir import _pair, Dense, Graph, SumPool2d
from ..compiler.lower import Connection, Network, OutputRead, Source
from ..errors import SnncError

CLAMP = float(1 << 23)              # Lava Conv: 24-bit output
F32_EXACT = float(1 << 24)          # float32 sums of integers are exact below this
F64_EXACT = float(1 << 53)          # float64 sums of integers are exact below this
ROW_SUM_ENTRIES = 1 << 15          # weights per block of ``signed_row_sums`` (its temporary)
MESSAGE_MAX = float(1 << 32)        # |graded message| of a sigma-delta population (int32 state) or Input


@dataclass(frozen=True, eq=False)
class SynapseSpec:
    """A connection's synapse. ``kind`` "dense" or "conv"; ``weights`` as given (fixed: the Loihi
    integer weights, any integer dtype; float: the IR weights) and ``w_scale`` 2**exp for a
    positive exponent (1 otherwise): ``w = weights * w_scale``, made in float64 on first use
    (kernels that cast the weights to their own layout read ``weights``); ``floor_mul`` 2**exp
    for a negative exponent (floor after the sum), ``clamp`` Conv's 24-bit clamp can bind;
    ``bound`` max over output neurons of ``sum |w|``; ``graded``: reads graded messages (not 0/1
    spikes); ``conv``: (stride, padding, dilation, groups) with ``w`` (O, C/groups, kh, kw);
    ``cache``: the engines' kernel matrices derived from ``w``, made once."""
    name: str
    kind: str
    weights: np.ndarray
    w_scale: float
    floor_mul: Optional[float]
    clamp: bool
    bound: float
    graded: bool
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    conv: Optional[tuple] = None
    cache: dict = field(default_factory=dict, repr=False)   # kernel matrices made once per dtype

    @property
    def w(self) -> np.ndarray:
        """``weights * w_scale`` in float64, C-contiguous (made once, in ``cache``)."""
        w = self.cache.get("_w")
        if w is None:
            w = np.ascontiguousarray(self.weights, dtype=np.float64)
            if self.w_scale != 1.0:
                w = w * self.w_scale
            w = self.cache["_w"] = w
        return w

    @property
    def per_input(self) -> bool:
        """True when each synapse input is post-processed on its own (floor, clamp)."""
        return self.floor_mul is not None or self.clamp

    def exact_in_float64(self) -> bool:
        """Every partial sum below 2**53 (spikes, or graded messages up to MESSAGE_MAX)."""
        return self.bound * (MESSAGE_MAX if self.graded else 1.0) < F64_EXACT


_SPECS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def synapse_spec(conn: Connection, fixed: bool) -> SynapseSpec:
    """``conn``'s spec (module doc). Fixed point: kept per fixed-point view from run to run (with
    the kernel matrices in its ``cache``), reused while the view's weights equal a private copy
    of those it was made from and the synapse node is the same object (an edit in place or a
    replaced node makes a new one)."""
    fx = conn.fixed if fixed else None
    if fx is None:
        return _make_spec(conn, fixed)
    key = (conn.name, tuple(conn.in_shape), tuple(conn.out_shape))
    hit = _SPECS.get(fx)
    if hit is not None:
        node, hit_key, weight, spec = hit
        if node is conn.synapse and hit_key == key and np.array_equal(weight, fx.weight):
            return spec
    spec = _make_spec(conn, fixed)
    _SPECS[fx] = (conn.synapse, key, _copy_small(fx.weight), spec)
    return spec


def _copy_small(w) -> np.ndarray:
    """A private copy of integer weights in the smallest of int8 (Loihi's are 8-bit) and int16
    that holds them."""
    w = np.asarray(w)
    if w.dtype.kind in "iu" and w.size:
        lo, hi = int(w.min()), int(w.max())
        for dt in (np.int8, np.int16):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return w.astype(dt)
    return np.array(w, copy=True)


def _make_spec(conn: Connection, fixed: bool) -> SynapseSpec:
    node = conn.synapse
    fx = conn.fixed if fixed else None
    if fixed and fx is None:
        raise SnncError(f"synapse {conn.name!r}: fixed-point run needs the quantization pass first")
    given = np.asarray(fx.weight if fixed else node.weight)
    if given.dtype.kind not in "iuf":
        given = given.astype(np.float64)
    graded = bool(getattr(fx, "num_message_bits", 0)) if fixed else False
    if isinstance(node, Dense):
        exp = int(fx.weight_exp) if fixed else 0
        cache: dict = {}
        scale = float(2 ** max(exp, 0))
        bound = _row_bound(given, fixed, cache, scale)
        return SynapseSpec(conn.name, "dense", given, scale, float(2.0 ** exp) if exp < 0 else None, False, bound,
                           graded, conn.in_shape, conn.out_shape, cache=cache)
    c = conn.in_shape[0]
    if isinstance(node, SumPool2d):
        given = np.broadcast_to(given, (c, 1) + tuple(_pair(node.kernel)))
        args = (_pair(node.stride), _pair(node.padding), (1, 1), c)
    else:
        args = (_pair(node.stride), _pair(node.padding), _pair(node.dilation), int(node.groups))
    cache = {}
    bound = _row_bound(given.reshape(given.shape[0], -1), fixed, cache)   # the weights as given (integers)
    return SynapseSpec(conn.name, "conv", given, 1.0, None, fixed and bound >= CLAMP, bound, graded,
                       conn.in_shape, conn.out_shape, args, cache=cache)


def _row_bound(w2: np.ndarray, fixed: bool, cache: dict, scale: float = 1.0) -> float:
    """max over rows of ``sum |w| * scale``; fixed point: from ``signed_row_sums`` (of the
    integer weights as given: no float temporaries), kept in ``cache`` (``"_row_sums"``: the
    engines' range bounds read them)."""
    if not w2.size:
        return 0.0
    if not fixed:
        return float(np.abs(w2).sum(axis=1).max()) * scale
    pos, neg = signed_row_sums(w2)
    if scale != 1.0:
        pos, neg = pos * scale, neg * scale
    cache["_row_sums"] = (pos, neg)
    return float((pos + neg).max())


def _next_to(seq_last: Tuple[str, ...], default: str) -> str:
    return seq_last[-1] if seq_last else default


def signed_row_sums(w) -> Tuple[np.ndarray, np.ndarray]:
    """(sum of the positive weights, sum of the negative weights' magnitudes) per row of ``w``
    (2-D, dense or scipy CSR; integer-valued: Loihi weights): what a row's output can rise and
    fall by on 0/1 input."""
    if hasattr(w, "indptr"):
        def reduce(x):
            rows = np.add.reduceat(np.append(x, 0.0), w.indptr[:-1])
            rows[np.diff(w.indptr) == 0] = 0.0          # reduceat of an empty row
            return rows
        return reduce(np.maximum(w.data, 0.0)), reduce(np.maximum(-w.data, 0.0))
    w = np.asarray(w)
    pos, neg = np.empty(w.shape[0]), np.empty(w.shape[0])
    step = max(1, ROW_SUM_ENTRIES // max(1, w.shape[1]))
    for lo in range(0, w.shape[0], step):           # integer-valued: exact; small temporaries
        blk = w[lo:lo + step]
        p = np.maximum(blk, 0).sum(axis=1)          # (10x a ``where=`` sum's speed)
        pos[lo:lo + step], neg[lo:lo + step] = p, p - blk.sum(axis=1)
    return pos, neg


def post_synapse_bounds(spec: SynapseSpec, hi: np.ndarray, lo: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Bounds (on the output, on its negative) after the spec's post-processing: the floor after a
    negative exponent (it can lower a value by less than 1) and Conv's 24-bit clamp."""
    fm = spec.floor_mul
    if fm is not None:
        hi, lo = hi * fm, lo * fm + 1.0
    if spec.clamp:
        hi, lo = np.minimum(hi, CLAMP - 1), np.minimum(lo, CLAMP)
    return hi, lo


def synapse_inputs(net: Network, conn: Connection) -> List[List[Source]]:
    """The sources of ``conn`` grouped by the synapse input (the synapse's predecessor) they reach,
    in the predecessors' order (the lowering lists sources in that order): the spec sums the
    sources of one input, then applies the synapse to each input and sums the results."""
    if conn.synapse is None:
        return [list(conn.sources)]
    groups: Dict[str, List[Source]] = {}
    for s in conn.sources:
        groups.setdefault(_next_to(s.path, s.pop), []).append(s)
    return list(groups.values())


def ordered_into(net: Network, pop: str) -> List[Connection]:
    """The connections into ``pop`` in the order of ``pop``'s predecessors (the spec's sum)."""
    return sorted(net.into(pop), key=lambda c: c.slot)


def shared_synapses(net: Network) -> Dict[str, int]:
    """How many connections each synapse feeds (a synapse followed by a fork feeds several)."""
    out: Dict[str, int] = {}
    for c in net.connections:
        if c.synapse is not None:
            out[c.name] = out.get(c.name, 0) + 1
    return out


def input_values(graph: Graph, inputs: Dict[str, np.ndarray], mode: str) -> Dict[str, np.ndarray]:
    """The values each input sends: graded inputs on their grid (fixed point: integer messages
    ``round(x * 2**frac_bits)``; float: ``x`` rounded to the grid), others as given."""
    from ..compiler.quantize import graded_messages, graded_values
    conv = graded_messages if mode == "fixed" else graded_values
    return {k: (conv(graph, k, v) if graph.nodes[k].kind == "graded" else v) for k, v in inputs.items()}


def result_buffers(net: Network, n: int, steps: int):
    """What a run returns, zeroed: outputs ``{o: (N, *shape, T)}`` (float32 spikes; float64 when a
    read-out or graded messages can be read) and counts ``{population: (N, *shape)}`` int64 of
    the CubaLIF spikes and the sigma-delta messages sent."""
    odt = np.float64 if any(p.kind != "lif" for p in net.neurons) else np.float32
    outs = {o: np.zeros((n,) + tuple(net.shapes[o]) + (steps,), odt) for o in net.graph.outputs}
    counts = {p.name: np.zeros((n,) + p.shape, np.int64) for p in net.neurons
              if p.kind in ("lif", "delta", "sigma_delta")}
    return outs, counts


def time_major(inputs: Dict[str, np.ndarray], lo: int, hi: int, views=()) -> Dict[str, np.ndarray]:
    """Samples ``lo:hi`` of ``{name: (N, *shape, T)}`` as contiguous ``(T, n, *shape)``: float32
    when given in float32 (``host_io.prepare``'s values, exact in it), else float64; the inputs
    named in ``views`` given in float64: a (T, n, *shape) view, no copy (read in place)."""
    def one(k, v):
        v = np.asarray(v)[lo:hi]
        if k in views and v.dtype == np.float64:
            return np.moveaxis(v, -1, 0)
        return np.ascontiguousarray(np.moveaxis(v, -1, 0), dtype=np.float32 if v.dtype == np.float32 else np.float64)
    return {k: one(k, v) for k, v in inputs.items()}


def host_synapse(graph: Graph, name: str, node, x: np.ndarray, fixed: bool) -> np.ndarray:
    """A synapse computed on the host for an output (``x`` (R, *in_shape)): the spec's arithmetic."""
    if fixed:
        fx = graph.fixed[name]
        w, x = np.asarray(fx.weight, dtype=np.int64), np.asarray(x).astype(np.int64)
    else:
        w = np.asarray(node.weight, dtype=np.float64)
    if isinstance(node, Dense):
        a = x @ w.T
        if fixed and fx.weight_exp:
            a = a << fx.weight_exp if fx.weight_exp > 0 else a >> -fx.weight_exp
        return a
    if isinstance(node, SumPool2d):
        c = x.shape[1]
        a = conv2d(x, np.broadcast_to(w, (c, 1) + tuple(node.kernel)), node.stride, node.padding, (1, 1), c)
    else:
        a = conv2d(x, w, node.stride, node.padding, node.dilation, node.groups)
    return np.clip(a, -(1 << 23), (1 << 23) - 1) if fixed else a


def output_units(net: Network, mode: str) -> Dict[str, int]:
    """Per Output that reads graded messages (fixed point): their integer units per 1.0."""
    return net.output_units() if mode == "fixed" else {}


def shift_time(x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``out[t] = x[t - d]`` per neuron along axis 0 of ``x`` (T, N, *shape); zero while t < d."""
    T = x.shape[0]
    steps = np.broadcast_to(steps, x.shape[2:]).reshape(-1)
    if steps.size and np.all(steps == steps[0]):            # one delay: a copy, zeros only for t < d
        d = min(int(steps[0]), T)
        out = np.empty_like(x)
        out[:d] = 0
        out[d:] = x[:T - d]
        return out
    out = np.zeros_like(x)
    xf, of = x.reshape(T, x.shape[1], -1), out.reshape(T, x.shape[1], -1)
    for d in np.unique(steps):
        d = int(d)
        if d >= T:
            continue
        if np.all(steps == d):
            of[d:] = xf[:T - d]
            break
        idx = np.nonzero(steps == d)[0]
        of[d:, :, idx] = xf[:T - d, :, idx]
    return out


def run_output(net: Network, read: OutputRead, values: Dict[str, np.ndarray], fixed: bool,
               units: Dict[str, int]) -> np.ndarray:
    """Output ``read`` over all steps from recorded ``values`` {population or input: (T, N, *shape)}."""
    graph = net.graph
    vals: Dict[str, np.ndarray] = {}
    for node, kind, arg, preds in read.program:
        if kind == "pop":
            vals[node] = values[node]
            continue
        x = vals[preds[0]] if len(preds) == 1 else sum(vals[p] for p in preds)
        if kind == "delay":
            vals[node] = shift_time(x, arg)
        elif kind == "flatten":
            vals[node] = x.reshape(x.shape[:2] + (-1,))
        elif kind == "average":
            vals[node] = x.reshape(x.shape[:2] + (arg, -1)).mean(axis=3)
        elif kind == "synapse":
            y = host_synapse(graph, node, arg, x.reshape((-1,) + x.shape[2:]), fixed)
            vals[node] = y.reshape(x.shape[:2] + y.shape[1:]).astype(np.float64)
        else:                                   # the Output
            vals[node] = x / units[node] if node in units else x
    return vals[read.name]
