"""The time-batched plan of a lowered network (``compiler.lower``), fixed point, feed-forward:
few kernel calls per synapse for all steps of a batch, population by population in topological
order. One plan, two array libraries: numpy here (``NumpyArrays``), torch in ``torch_engine``.

Without cycles, a synapse's input at every step is known as soon as its source populations have
run all their steps; so a connection is one product over many ``T * N`` rows (time-major, row
``t * N + i``) instead of ``T`` products over ``N``. Only the neuron update is sequential in
time, and it is elementwise. A population runs a chunk of steps at a time (``CHUNK_BYTES``):
its connections' products for those steps, then its update for those steps
(``CubaStepper``: the step plan's update ``populations.CubaGroup``, or, where u is the step's
input and no bound can be reached, the same arithmetic with the input, bias and drive added
for the chunk at once). A delay is a row offset
(the synapse reads its source ``d`` steps back); a flatten is a reshape. Spikes are stored as
uint8 (the compare writes them in place); a chunk's products, patches and one step's input are
reused per-thread buffers (``WORKSPACE``: fresh memory costs a page fault per 4 KiB).

Every value is an integer held in float (Loihi fixed point), so each product is exact whatever
the kernel's summation order: float64 always (|sums| < 2**53), float32 when the compile-time
bound ``max_rows sum|w| * max|x| < 2**24`` proves every partial sum exact. Kernel per synapse,
by a small cost model (``choose_kernel``): dense GEMM; im2col convolution (a GEMM per group);
or event-driven sparse accumulation (CSR of the input spikes times the weights) when the
measured spike rate is low. Results are bit-identical to the step plan
(tests/test_reference_batched.py). Compiled C, when the install built it (``ckernels``,
``csrc/kernels.c``; else numpy, with the same operations): the im2col patches of uint8 spikes,
the update of LIF populations that no bound reaches (``_no_bound_reached``: one pass per step),
and an event-driven convolution (each output sums the weights of the spiking inputs it reads,
listed per input pixel), chosen over im2col and GEMM at low measured input rates
(``conv_events_pay``); a bias input given in float64 is read where it is (``host_io``).

Graphs with cycles, float mode, sigma-delta populations and graded synapses use the step plan.
"""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..compiler.ir import _pair, Conv2d, Dense, Graph
from ..compiler.lower import Connection, Network, lower
from ..errors import SnncError
from . import ckernels
from .plan import CLAMP, SynapseSpec, ordered_into, output_units, post_synapse_bounds, run_output, shift_time, \
    signed_row_sums, synapse_inputs, synapse_spec
from .populations import CubaGroup, CubaParams, cuba_params

F32_EXACT = float(1 << 24)          # float32 sums of integers are exact below this
IM2COL_ENTRIES = 1 << 18            # entries of patches per im2col chunk (a reused buffer, in L2)
CONV_COST = dict(mac=0.04, patch=0.4, spike=1.0, add=0.08, scan=0.3)   # ns per unit (``conv_events_pay``)
ONE_GEMM_PIXELS = 256               # conv outputs of fewer pixels: one GEMM over all rows (``conv_all_steps``)
WORKSPACE_MAX = 1 << 26             # bytes of one reused buffer, at most
CHUNK_BYTES = 1 << 21               # a time chunk's synapse output or patches (float32), at most
SPARSE_RATE = 0.02                  # event-driven below this input spike rate (cost model)
SPARSE_MIN_MACS = 1 << 27           # ... and from this many dense multiply-adds (smaller: a GEMM of ~1 ms)
BATCHED_MIN_MACS = 1 << 16          # "auto": the time-batched plan from this many multiply-adds per step


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
def choose_kernel(spec: SynapseSpec, x_max: float, rate: float, rows: int = 0) -> str:
    """The cheapest exact kernel: "sparse" (event-driven; Dense with binary input at a low spike
    rate, over ``rows`` rows whose dense product is large enough to pay for it: ``SPARSE_MIN_MACS``),
    else "gemm32" when every partial sum is provably below 2**24, else "gemm64"."""
    if spec.kind == "dense" and x_max <= 1.0 and rate < SPARSE_RATE and rows * spec.weights.size >= SPARSE_MIN_MACS:
        return "sparse"
    return "gemm32" if spec.bound * x_max < F32_EXACT else "gemm64"


class _Workspace(threading.local):
    """Buffers of one thread reused from call to call and run to run (fresh memory costs a page
    fault per 4 KiB on first touch: more than the arithmetic on it); each at most
    ``WORKSPACE_MAX`` bytes (larger requests get fresh arrays)."""

    def __init__(self):
        self.bufs: Dict[str, np.ndarray] = {}

    def get(self, key: str, shape, dt) -> np.ndarray:
        """An uninitialised array ``shape`` of ``dt``, the buffer ``key`` (valid until the next
        ``get`` of ``key`` in this thread)."""
        shape = tuple(int(v) for v in shape)
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
        if nbytes > WORKSPACE_MAX:
            return np.empty(shape, dt)
        buf = self.bufs.get(key)
        if buf is None or buf.nbytes < nbytes:
            buf = self.bufs[key] = np.empty(max(nbytes, 2 * (0 if buf is None else buf.nbytes)), np.uint8)
        return buf[:nbytes].view(dt).reshape(shape)


WORKSPACE = _Workspace()


def _output(rows: int, lead: int, cols, dt, reuse: bool = False) -> np.ndarray:
    """An output of ``lead + rows`` rows whose first ``lead`` rows are zero (a delay's first
    steps); ``reuse``: the workspace's synapse output (valid until the next synapse's)."""
    shape = (lead + rows,) + tuple(cols)
    out = WORKSPACE.get("synapse_out", shape, dt) if reuse else np.empty(shape, dt)
    out[:lead] = 0
    return out


def dense_all_steps(spec: SynapseSpec, x: np.ndarray, kernel: str, lead: int = 0, reuse: bool = False) -> np.ndarray:
    """``x (R, in) @ w.T`` for all R = T * N rows at once, exact, after ``lead`` zero rows:
    (lead + R, out), float32 for "gemm32" (integers below 2**24), else float64; ``reuse``: in
    the workspace's synapse output."""
    if kernel == "sparse":
        import scipy.sparse as sp
        out = _output(x.shape[0], lead, (spec.weights.shape[0],), np.float64, reuse)
        out[lead:] = sp.csr_matrix(x) @ spec.w.T
        return out
    dt = np.float32 if kernel == "gemm32" else np.float64
    key = "_dense_t_" + np.dtype(dt).name
    wt = spec.cache.get(key)
    if wt is None:                  # from the integer weights: no float64 copy first
        wt = spec.cache[key] = np.ascontiguousarray(spec.weights.T, dtype=dt)
        if spec.w_scale != 1.0:     # a power of two: exact
            wt *= spec.w_scale
    out = _output(x.shape[0], lead, (spec.weights.shape[0],), dt, reuse)
    np.matmul(x.astype(dt, copy=False), wt, out=out[lead:])
    return out


def conv_all_steps(spec: SynapseSpec, x: np.ndarray, kernel: str, lead: int = 0, reuse: bool = False) -> np.ndarray:
    """Convolution of ``x (R, C, H, W)`` by im2col in channel-first order, chunked over R to bound
    memory (the patches are the workspace's buffer): per chunk the patches are made once, cast to
    the kernel's dtype (``_patches``), and multiplied by the kernel matrix (groups, O/groups,
    C/groups*kh*kw). Patches (R, K, Ho*Wo) and a GEMM per row give the product (R, O, Ho*Wo)
    directly; for small images (Ho*Wo below ``ONE_GEMM_PIXELS``, where a GEMM per row is slow)
    patches (K, R, Ho*Wo) and one GEMM over all rows, then a transposed copy. Returns (lead + R,
    O, Ho, Wo), the first ``lead`` rows zero, float32 for "gemm32" (integers below 2**24), else
    float64; ``reuse``: in the workspace's synapse output."""
    o_n, cpg, kh, kw = spec.weights.shape
    r, c = x.shape[:2]
    _, ho, wo = spec.out_shape
    g, hw, k = spec.conv[3], ho * wo, c * kh * kw
    dt = np.float32 if kernel == "gemm32" else np.float64
    wm = _conv_matrix(spec, dt)                                                   # (g, opg, K)
    fill = _patches(spec, x)
    out = _output(r, lead, (o_n, ho, wo), dt, reuse)
    per = max(1, IM2COL_ENTRIES // max(1, hw * k))
    one_gemm = hw < ONE_GEMM_PIXELS and r > 1
    for lo in range(0, r, per):
        hi = min(r, lo + per)
        n, y = hi - lo, out[lead + lo:lead + hi]
        if one_gemm:
            cols = WORKSPACE.get("im2col", (k, n, hw), dt)
            fill(lo, hi, cols, hw, n * hw)
            prod = WORKSPACE.get("im2col_product", (g, o_n // g, n, hw), dt)
            np.matmul(wm, cols.reshape(g, k // g, n * hw), out=prod.reshape(g, o_n // g, n * hw))
            np.copyto(y.reshape(n, g, o_n // g, hw), prod.transpose(2, 0, 1, 3))
        else:
            cols = WORKSPACE.get("im2col", (n, k, hw), dt)
            fill(lo, hi, cols, k * hw, hw)
            np.matmul(wm, cols.reshape(n, g, k // g, hw), out=y.reshape(n, g, o_n // g, hw))
    return out


def conv_events_pay(spec: SynapseSpec, rate: float) -> bool:
    """Whether the event-driven convolution (``conv_events_all_steps``) costs less than im2col
    and GEMM at input spike rate ``rate``, by the cost model of ``CONV_COST`` (ns per unit of
    work, measured on PilotNet's layers): per row, a GEMM multiply-add per weight and output
    pixel plus a patch entry per kernel tap and output pixel, against, per input spike, a
    vector add of its group's outputs for every output it reaches, plus a scan of the input and
    a store of each output. (The constants were measured on the scatter kernel before the
    output-stationary one; halving the per-spike ones, as that kernel measures, moved the digits
    net's second conv onto events, 1.4x slower there, so they stay.)"""
    o_n, cpg, kh, kw = spec.weights.shape
    g, (sh, sw) = spec.conv[3], spec.conv[0]
    c, h, w = (int(v) for v in spec.in_shape)
    _, ho, wo = (int(v) for v in spec.out_shape)
    hw, cost = ho * wo, CONV_COST
    dense = o_n * cpg * kh * kw * hw * cost["mac"] + c * kh * kw * hw * cost["patch"]
    reach = max(1.0, kh * kw / (sh * sw))
    events = (rate * c * h * w * reach * (cost["spike"] + (o_n // g) * cost["add"]) + c * h * w * cost["scan"]
              + hw * o_n * cost["patch"])
    return events < dense


def conv_events_all_steps(spec: SynapseSpec, x: np.ndarray, kernel: str, lead: int = 0,
                          reuse: bool = False) -> np.ndarray:
    """``conv_all_steps`` event-driven (``ckernels.conv_events``): each non-zero entry of the
    uint8 ``x`` (R, C, H, W) adds its weights to the outputs it reaches; the same integers, in
    float32 for "gemm32" (every partial sum below 2**24) else float64. Returns (lead + R, O, Ho,
    Wo), the first ``lead`` rows zero."""
    dt = np.float32 if kernel == "gemm32" else np.float64
    key = "_conv_events_" + np.dtype(dt).name
    w_cio = spec.cache.get(key)
    if w_cio is None:
        w_cio = spec.cache[key] = ckernels.events_weights(spec.weights, spec.conv[3], dt)
    out = _output(x.shape[0], lead, tuple(spec.out_shape), dt, reuse)
    (sh, sw), (ph, pw), (dh, dw), g = spec.conv
    ckernels.conv_events(np.ascontiguousarray(x), w_cio, (sh, sw), (ph, pw), (dh, dw), g, out[lead:])
    return out


def _patches(spec: SynapseSpec, x: np.ndarray):
    """``fill(lo, hi, buf, row, entry)``: the im2col patches of rows ``lo .. hi - 1`` of ``x``
    (R, C, H, W) into ``buf`` (float32 or float64), entry ``q = (c * kh + i) * kw + j`` of row r
    at ``r * row + q * entry`` (elements), each (Ho, Wo) contiguous: the compiled kernel for uint8
    spikes (``ckernels.im2col``), else numpy's strided copy of a window view."""
    (sh, sw), (ph, pw), (dh, dw), _ = spec.conv
    kh, kw = spec.weights.shape[2:]
    _, ho, wo = spec.out_shape
    c = x.shape[1]
    if ckernels.available() and x.dtype == np.uint8:
        x = np.ascontiguousarray(x)

        def fill(lo, hi, buf, row, entry):
            ckernels.im2col(x[lo:hi], (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo), buf, row, entry)
        return fill
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo].transpose(0, 1, 4, 5, 2, 3)  # (R, C, kh, kw, Ho, Wo)

    def fill(lo, hi, buf, row, entry):
        b = buf.itemsize
        view = np.lib.stride_tricks.as_strided(
            buf, (hi - lo, c, kh, kw, ho, wo), (row * b, kh * kw * entry * b, kw * entry * b, entry * b, wo * b, b))
        np.copyto(view, win[lo:hi], casting="same_kind")
    return fill


def _conv_matrix(spec: SynapseSpec, dt) -> np.ndarray:
    """The kernel as (groups, O/groups, C/groups*kh*kw) in ``dt``, made once per synapse."""
    key = "_conv_matrix_" + np.dtype(dt).name
    m = spec.cache.get(key)
    if m is None:
        o_n = spec.weights.shape[0]
        g = spec.conv[3]
        m = spec.cache[key] = np.ascontiguousarray(spec.weights.reshape(g, o_n // g, -1), dtype=dt)
    return m


class NumpyArrays:
    """The time-batched plan's numpy kernels (``kernels``: the one chosen per synapse)."""

    chunk_bytes = CHUNK_BYTES

    def __init__(self):
        self.kernels: Dict[str, str] = {}

    def asarray(self, x) -> np.ndarray:
        """An input's values: float32 as given (``plan.time_major``: exact in it), else float64."""
        x = np.asarray(x)
        return x if x.dtype == np.float32 else x.astype(np.float64, copy=False)

    def numpy(self, x) -> np.ndarray:
        return x

    def shift(self, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
        return shift_time(x, steps)

    def synapse(self, spec: SynapseSpec, x: np.ndarray, lead: int = 0, x_max: float = 1.0,
                reuse: bool = False) -> np.ndarray:
        """One synapse input over all rows ``x (R, *in_shape)`` (values in [0, x_max]: summed
        spikes) after ``lead`` zero rows -> (lead + R, out), post-processed; float32 where the
        kernel's integers are exact in it. ``reuse``: the output may be the workspace's buffer,
        overwritten by the next synapse (the caller uses it before)."""
        rows = x.shape[0]
        if spec.kind == "dense":
            x2 = x.reshape(rows, -1)
            kernel = choose_kernel(spec, x_max, float(np.count_nonzero(x2)) / max(1, x2.size), rows)
            y = dense_all_steps(spec, x2, kernel, lead, reuse)
        else:
            kernel = choose_kernel(spec, x_max, 1.0)
            if x.dtype == np.uint8 and ckernels.available() and conv_events_pay(
                    spec, float(np.count_nonzero(x)) / max(1, x.size)):
                y = conv_events_all_steps(spec, x, kernel, lead, reuse).reshape(lead + rows, -1)
                kernel = "events-" + kernel
            else:
                y = conv_all_steps(spec, x, kernel, lead, reuse).reshape(lead + rows, -1)
                kernel = "im2col-" + kernel
        self.kernels[spec.name] = kernel
        if spec.floor_mul is not None:
            y = y.astype(np.float64, copy=False)
            np.multiply(y, spec.floor_mul, out=y)
            np.floor(y, out=y)
        if spec.clamp:                          # +-2**23 and integers below: exact in float32 too
            np.clip(y, -CLAMP, CLAMP - 1, out=y)
        return y

    def zeros(self, shape) -> np.ndarray:
        return np.zeros(shape, np.float64)

    def at(self, x: np.ndarray, t: int, steps: np.ndarray) -> np.ndarray:
        """``x[t - d]`` per neuron of a series ``x`` (T, N, *shape) (zero where t < d)."""
        return _at(x, t, steps, np.zeros, lambda i: i)

    def start(self, params: CubaParams, n: int, a_bound, drive: bool, scale: float,
              drive_bound=None, buffers: bool = True) -> CubaGroup:
        """A population's state; ``a_bound``: (A_hi, A_lo) or None, ``drive_bound``: (D_hi, D_lo)
        or None (``CubaGroup.range_checks``); ``buffers``: ``CubaGroup``'s."""
        grp = CubaGroup(params, n, buffers)
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

    def stepper(self, params: CubaParams, T: int, n: int, d_all, a_bound, scale: float) -> "CubaStepper":
        """The update of CUBA populations over T steps, advanced a chunk of steps at a time."""
        return CubaStepper(self, params, T, n, d_all, a_bound, scale)


def _chunk_input(a_in, shape) -> np.ndarray:
    """A chunk's synapse sums ``a_in`` (k, N, size) x 64 (Loihi's ``a << 6``) in the workspace's
    float64 ``chunk_add``: a cast copy, then x 64 (cheaper than one mixed-type multiply); zeros
    when ``a_in`` is None."""
    buf = WORKSPACE.get("chunk_add", shape, np.float64)
    if a_in is None:
        buf.fill(0.0)
    else:
        np.copyto(buf, a_in)
        buf *= 64.0
    return buf


class CubaStepper:
    """CUBA populations through the step plan's update (``populations.CubaGroup``), a chunk of
    steps at a time: ``advance(t0, t1, a)`` with ``a`` (t1 - t0, N, size) the synapse sums of
    those steps (each step's input is ``a[t] * 64``) or None; ``d_all`` (T, N, size) the bias
    inputs' values (drive ``d_all[t] * scale``) or None. Outputs go to ``out`` (T, N, size):
    uint8 spikes (the compare writes them in place as bool; the next synapse's kernel casts
    them in its copy), float64 for a read-out. One step's input and drive are workspace
    buffers. (One thread: numpy's calls here are short, and Python threads taking turns at
    them, beside BLAS's own, measured 1.7-2.5x slower on PilotNet and the digits split.)"""

    def __init__(self, xp: NumpyArrays, params: CubaParams, T: int, n: int, d_all, a_bound, scale: float):
        self.T, self.n, self.params, self.d_all, self.scale = T, n, params, d_all, scale
        size = params.size
        d_bound = None
        if d_all is not None:         # the drive is known for all steps: bound it once
            axis = None if _uniform(params) else (0, 1)     # (per neuron, or its maxima: ``_a_bound``)
            d_bound = (np.maximum(d_all.max(axis=axis), 0) * scale, np.maximum(-d_all.min(axis=axis), 0) * scale)
        self.out = np.empty((T, n, size), np.float64 if params.kind == "li" else np.uint8)
        grp = self.grp = xp.start(params, n, a_bound, d_all is not None, scale, d_bound, buffers=False)
        grp.drive_checks = []                   # tested in ``_advance``, each step
        grp.u, grp.v = np.zeros((n, size)), np.zeros((n, size))
        grp.s_is_sb = grp.late is None and self.out.dtype == np.uint8
        grp.counting = not grp.s_is_sb          # else counted in ``result``, over all steps at once
        if grp.counting:
            grp.count = np.zeros((n, size), np.int64)
        if not grp.s_is_sb:                     # s: the step's output; sb its spikes
            grp.s, grp.sb = np.zeros((n, size)), np.zeros((n, size), bool)

    def advance(self, t0: int, t1: int, a) -> None:
        """Steps ``t0 .. t1 - 1``; ``a`` (t1 - t0, N, size) their synapse sums, or None."""
        self._advance(self.grp, t0, t1, a, self.d_all, self.out)

    def _advance(self, grp: CubaGroup, t0: int, t1: int, a_in, d_all, out) -> None:
        if _no_bound_reached(grp) and ckernels.available():
            return self._advance_compiled(grp, t0, t1, a_in, d_all, out)
        if _input_only(grp):
            return self._advance_input_only(grp, t0, t1, a_in, d_all, out)
        shape = (self.n, grp.p.size)
        grp.stay = WORKSPACE.get("step_stay", shape, np.bool_)
        if a_in is None:
            grp.a = WORKSPACE.get("step_a", shape, np.float64)
            grp.a.fill(0.0)
        else:
            a64 = _chunk_input(a_in, a_in.shape)
        if d_all is not None:
            drive = grp.drive = WORKSPACE.get("step_drive", shape, np.float64)
            rounded = WORKSPACE.get("step_round", shape, np.float64)
        direct = grp.late is None               # "late" reads the last step's output
        spikes = out.view(np.bool_) if direct and grp.s_is_sb else None
        for t in range(t0, t1):
            if a_in is not None:
                grp.a = a64[t - t0]
            if d_all is not None:
                self._drive(d_all[t], drive, rounded)
            if direct:
                grp.s = out[t]
                if spikes is not None:
                    grp.sb = spikes[t]
            grp.update(t)
            if not direct:
                out[t] = grp.s

    def _drive(self, values, drive, rounded):
        """One step's bias-input drive ``values * scale`` into ``drive`` (returned); SnncError
        when it is not a whole number of the population's state units."""
        np.copyto(drive, values)
        drive *= self.scale
        if not np.array_equal(np.round(drive, out=rounded), drive):
            raise SnncError(self._drive_error())
        return drive

    def _drive_error(self) -> str:
        return (f"population {self.params.names[0]!r}: bias input is not a multiple of "
                f"1/{int(self.scale)} (the population's state unit)")

    def _advance_input_only(self, grp: CubaGroup, t0: int, t1: int, a_in, d_all, out) -> None:
        """``_advance`` where u is each step's input (decay_u 4096) and nothing can wrap or
        saturate (``_input_only``): then ``v = trunc(v * cv) + (a * 64 + bias + drive)``, the
        bracket made for the whole chunk at once; the same integers as ``CubaGroup.update`` (the
        numpy path: the compiled kernel, when it is built, takes these, ``_advance``)."""
        p, n, k = grp.p, self.n, t1 - t0
        add = _chunk_input(a_in, (k, n, p.size))      # a * 64, then + bias + drive
        np.copyto(grp.u, add[-1])                       # u = the last step's input
        if p.bias is not None:
            add += p.bias
        if d_all is not None:                           # one step at a time: two rows of memory
            drive = WORKSPACE.get("step_drive", (n, p.size), np.float64)
            rounded = WORKSPACE.get("step_round", (n, p.size), np.float64)
            for t in range(t0, t1):
                add[t - t0] += self._drive(d_all[t], drive, rounded)
        v, cv, vth = grp.v, p.cv, p.vth
        decays = not (np.ndim(cv) == 0 and cv == 1.0)
        compare = np.greater_equal if p.ge else np.greater
        grp.stay = WORKSPACE.get("step_stay", v.shape, np.bool_)
        for t in range(t0, t1):
            if decays:
                np.multiply(v, cv, out=v)
                np.trunc(v, out=v)
            np.add(v, add[t - t0], out=v)
            sb = out[t].view(np.bool_)
            compare(v, vth, out=sb)
            grp._reset_zero(v, sb)

    def _advance_compiled(self, grp: CubaGroup, t0: int, t1: int, a_in, d_all, out) -> None:
        """``_advance`` of a group with no bound reached (``_no_bound_reached``) by
        ``ckernels.lif_zero``: the operations of ``CubaGroup.update`` (of ``_advance_input_only``
        where u is the step's input) on each neuron, in one pass per step (no chunk-sized
        temporaries)."""
        p, n, k = grp.p, self.n, t1 - t0
        rows = p.cache.get("lif_zero")
        if rows is None:          # bias, cu (size,) float64; cv, vth one number when uniform
            rows = p.cache["lif_zero"] = (_per_neuron_row(0.0 if p.bias is None else p.bias, p.size),) + tuple(
                float(x) if np.ndim(x) == 0 else _per_neuron_row(x, p.size) for x in (p.cv, p.vth)) + (
                None if grp._u_is_a else _per_neuron_row(p.cu, p.size),)
        a = None if a_in is None else np.ascontiguousarray(a_in).reshape(k, n, p.size)
        d = None if d_all is None else d_all[t0:t1].reshape(k, n, p.size)     # float64: any strides (in place)
        if d is not None and d.dtype != np.float64:
            d = np.ascontiguousarray(d)
        u = None if grp._u_is_a else grp.u              # (n, size) float64, C order (``__init__``)
        if ckernels.lif_zero(grp.v, a, d, self.scale, *rows[:3], p.ge, out[t0:t1], u, rows[3]):
            raise SnncError(self._drive_error())
        if u is not None:
            return
        if a is None:
            grp.u.fill(0.0)
        else:
            np.multiply(a[-1], 64.0, out=grp.u, dtype=np.float64)

    def result(self):
        """(out (T, N, size), spike counts (N, size) int64, state {"u", "v"} (N, size))."""
        grp, T = self.grp, self.T
        if grp.s_is_sb:                         # small sums in a small type: fewer bytes
            count = self.out.sum(axis=0, dtype=np.uint8 if T < 256 else np.int32 if T < 2 ** 31 else np.int64)
            count = count.astype(np.int64)
        else:
            count = grp.count
        return self.out, count, dict(u=grp.u, v=grp.v)


def channel_row_sums(spec: SynapseSpec) -> Tuple[np.ndarray, np.ndarray, int]:
    """``plan.signed_row_sums`` per output row and how many neurons (C order, consecutive) share
    each: dense: per neuron (1); conv: per output channel over the whole kernel (an edge neuron
    sees fewer taps, so it bounds them too), Ho * Wo neurons each."""
    sums = spec.cache.get("_row_sums")
    if sums is None:                            # made once per spec (the spec is kept: plan)
        w = spec.w
        sums = spec.cache["_row_sums"] = signed_row_sums(w if spec.kind == "dense" else w.reshape(w.shape[0], -1))
    return sums + ((1,) if spec.kind == "dense" else (int(np.prod(spec.out_shape[1:])),))


def _per_neuron_row(x, size: int) -> np.ndarray:
    """A parameter (one number or one per neuron) as a C-contiguous (size,) float64 array."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float64), (size,)))


def _no_bound_reached(grp: CubaGroup) -> bool:
    """A fixed-point CUBA LIF group of the common kind: reset to zero, uint8 spikes written in
    place, no refractory period, reset schedule or late subtraction, and bounds that exclude
    every wrap and saturation (its update is then a few exact operations per neuron)."""
    p = grp.p
    return bool(p.fixed and p.kind == "zero" and grp.s_is_sb and grp.ref is None
                and not p.resets and not any(grp._checks))


def _input_only(grp: CubaGroup) -> bool:
    """``_no_bound_reached``, and u is the step's input (decay_u 4096)."""
    return bool(grp._u_is_a and _no_bound_reached(grp))


def _uniform(params: CubaParams) -> bool:
    """Decays and threshold the same for every neuron (``CubaGroup._range_checks_uniform``)."""
    return all(np.ndim(x) == 0 for x in (params.cu, params.cv, params.vth))


def _total(parts):
    """The sum of an iterable of arrays; the one array itself (no copy) when there is one."""
    total = None
    for x in parts:
        total = x if total is None else total + x
    return total


def _sum(a, b):
    """``a + b`` of two contributions, in float64 unless both are float64 already: two float32
    terms below 2**24 each can sum above it."""
    if a.dtype == b.dtype and a.dtype != np.float32:
        return a + b
    return a.astype(np.float64) + b


def _one_delay(sources, T: int) -> Optional[int]:
    """The delay (steps, at most ``T``) that every neuron of every source has, or None when
    they differ."""
    d = None
    for s in sources:
        flat = np.asarray(s.delay).reshape(-1)
        if not flat.size or np.any(flat != flat[0]) or (d is not None and int(flat[0]) != d):
            return None
        d = int(flat[0])
    return None if d is None else min(d, T)


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
        self._specs: Dict[str, SynapseSpec] = self.net.cache.setdefault("reference_batched.specs", {})

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
        """A connection's contribution over all steps, (T, N, size of its population). Sources
        delayed by one number of steps ``d`` feed the synapse their first ``T - d`` steps, and
        its output starts with ``d`` zero steps (no shifted copy of the input)."""
        T, n = self.T, self.n
        if c.synapse is None:
            y = _total(self._source(s, (T, n, -1)) for s in c.sources)
        else:
            spec = self._spec(c)
            y = None
            for grp in synapse_inputs(self.net, c):
                d = _one_delay(grp, T)
                if d is None:
                    x, lead = _total(self._source(s, (T * n,) + tuple(c.in_shape)) for s in grp), 0
                else:
                    x = _total(self.values[s.pop][:T - d].reshape(((T - d) * n,) + tuple(c.in_shape)) for s in grp)
                    lead = d * n
                part = self.xp.synapse(spec, x, lead, float(len(grp)))
                y = part if y is None else _sum(y, part)
            y = y.reshape((T, n) + tuple(c.out_shape))
            if c.post_delay.any():
                y = self.xp.shift(y, c.post_delay)
        return y.reshape(T, n, -1)

    def _bound(self, c: Connection) -> Optional[Tuple[np.ndarray, np.ndarray, int]]:
        """Bounds (on a_in, on -a_in) per output row of a connection (its inputs are spikes, a
        synapse input the sum of its group's sources) and the neurons per row
        (``channel_row_sums``), or None."""
        if c.synapse is None:
            return None
        spec = self._spec(c)
        hi, lo, per = channel_row_sums(spec)
        parts = [post_synapse_bounds(spec, hi * len(grp), lo * len(grp)) for grp in synapse_inputs(self.net, c)]
        return sum(p[0] for p in parts), sum(p[1] for p in parts), per

    def _a_bound(self, conns, size: int, uniform: bool = False):
        """(A_hi, A_lo) per neuron of a population's input ``a`` (x 64), or None (populations).
        ``uniform``: the population's decays and threshold are the same for every neuron, so its
        range tests read only the bounds' maxima (``CubaGroup._range_checks_uniform``): two
        numbers, each the sum of the connections' maxima (at least every neuron's sum)."""
        if not conns:                                  # no synapse: a = 0
            return (0.0, 0.0) if uniform else (np.zeros(size), np.zeros(size))
        bounds = [self._bound(c) for c in conns]
        if None in bounds:
            return None
        if uniform:
            return tuple(64.0 * sum(float(np.max(b[i])) if np.size(b[i]) else 0.0 for b in bounds) for i in (0, 1))
        return tuple(np.broadcast_to(64.0 * sum(np.repeat(b[i], b[2]) for b in bounds), (size,)).copy()
                     for i in (0, 1))

    def _population(self, name: str):
        """All T steps of one population, a chunk of steps at a time (``_chunk_steps``): per
        chunk its connections' sums for those steps (``_feed``), then the update of those steps
        (``stepper``: it scales the sums by 64 (``<< 6``) and the bias inputs' values by the
        state scale one step at a time). A chunk's synapse output and patches stay in cache and
        in reused buffers."""
        pop = self.net.populations[name]
        conns = ordered_into(self.net, name)
        params, a_bound = self._params(name, conns)
        d_all, sc = None, float(pop.state_scale)
        if pop.bias_inputs:
            d_all = _total(self.values[b].reshape(self.T, self.n, -1) for b in pop.bias_inputs)
        run = self.xp.stepper(params, self.T, self.n, d_all, a_bound, sc)
        feeds = [self._feed(c, alone=len(conns) == 1) for c in conns]
        k = self._chunk_steps(conns, pop.size)
        for t0 in range(0, self.T, k):
            t1 = min(self.T, t0 + k)
            a = None
            for feed in feeds:
                y = feed(t0, t1)
                a = y if a is None else _sum(a, y)
            run.advance(t0, t1, a)
        out, count, state = run.result()
        shape = (self.n,) + pop.shape
        if pop.kind == "lif":               # made for this run: no copy
            self.counts[name] = np.asarray(self.xp.numpy(count)).reshape(shape)
        self.state[name] = {k: np.asarray(self.xp.numpy(v)).reshape(shape) for k, v in state.items()}
        return out.reshape(self._rows(name))

    def _params(self, name: str, conns):
        """(``cuba_params``, ``_a_bound``) of population ``name``: made on the network's first run
        and kept in its ``cache`` (they depend on the network only, not on the input)."""
        key = ("reference_batched.population", name)
        hit = self.net.cache.get(key)
        if hit is None:
            params = cuba_params(self.net, [name], True)
            hit = self.net.cache[key] = (params, self._a_bound(conns, params.size, _uniform(params)))
        return hit

    def _chunk_steps(self, conns, size: int) -> int:
        """Steps per chunk: the array library's choice (``chunk_bytes``: None = all steps), so that
        one chunk's synapse output or patches fit in it."""
        budget = getattr(self.xp, "chunk_bytes", None)
        if budget is None:
            return self.T
        per_step = size
        for c in conns:
            if c.synapse is not None and self._spec(c).kind == "conv":
                _, ho, wo = c.out_shape
                kh, kw = self._spec(c).weights.shape[2:]
                per_step = max(per_step, int(c.in_shape[0]) * int(kh) * int(kw) * int(ho) * int(wo))
        return max(1, min(self.T, budget // max(1, 4 * per_step * self.n)))

    def _feed(self, c: Connection, alone: bool):
        """``feed(t0, t1)``: connection ``c``'s contribution at steps ``t0 .. t1 - 1``,
        (t1 - t0, N, size of its population). A synapse whose sources share one delay ``d`` and
        with no delay after it reads only the source steps it needs (``t - d``; zero rows before
        ``d``: no shifted copy); ``alone`` (the population's only input, used before the next
        synapse runs): its output is the workspace's buffer. Otherwise the contribution of all
        steps is made once (``_connection``) and sliced."""
        T, n = self.T, self.n
        groups = synapse_inputs(self.net, c) if c.synapse is not None else []
        delays = [_one_delay(grp, T) for grp in groups]
        if c.synapse is None or c.post_delay.any() or None in delays:
            whole = []

            def sliced(t0, t1):
                if not whole:
                    whole.append(self._connection(c))
                return whole[0][t0:t1]
            return sliced
        spec = self._spec(c)
        reuse = alone and len(groups) == 1

        def feed(t0, t1):
            y = None
            for grp, d in zip(groups, delays):
                lo, hi = max(t0 - d, 0), t1 - d          # source steps read
                lead = (t1 - t0) - max(hi - lo, 0)        # steps before the delay has passed: zero
                if hi <= lo:
                    part = self.xp.zeros(((t1 - t0) * n, int(np.prod(c.out_shape))))
                else:
                    x = _total(self.values[s.pop][lo:hi].reshape(((hi - lo) * n,) + tuple(c.in_shape)) for s in grp)
                    part = self.xp.synapse(spec, x, lead * n, float(len(grp)), reuse)
                y = part if y is None else _sum(y, part)
            return y.reshape(t1 - t0, n, -1)
        return feed

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
