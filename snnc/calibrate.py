"""Calibrated quantization of float-trained graphs: run the float model and candidate fixed-point
views on calibration data, keep per population the scales whose spikes agree most with the float
model's (the choice itself: ``snnc/compiler/calibrate.py``).

Greedy, in the order spikes flow: population ``p`` is scored with every population before it
already calibrated (rounding and clipping upstream included), by the disagreement with the float
model of ``p`` and of every population after it (those still at the uncalibrated scales), so a
choice that helps ``p`` but hurts what it drives loses. If the result disagrees more than the
uncalibrated pass over the whole network, the uncalibrated scales are kept (and reported). For each ``p``: the
candidates ``(S, weight exponents)`` of the clip quantiles plus the uncalibrated pass's own
choice (so calibration is never worse on the calibration data); then bias correction (the
population's bias minus the mean input error of its rounded weights on the calibration data,
``(W_q - W) @ E[x]``, Nagel et al. 2019), kept if it lowers the downstream disagreement; then a
few threshold mantissas around the chosen one. A kept correction changes the float bias of the
returned graph (its float view is the float model plus the correction; the report gives its
size). The result is a quantized graph with the choices pinned in ``metadata["scales"]`` and the
per-layer report in ``metadata["calibration"]``.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from .backends.plan import input_values
from .backends.reference import _Sim
from .compiler import calibrate as sel
from .compiler.conv import conv2d
from .compiler.fixed import state_scale
from .compiler.fold import fold_pooling
from .compiler.ir import Conv2d, CubaLI, CubaLIF, Dense, Graph
from .compiler.lower import Connection, Network, lower
from .compiler.passes import topo_order
from .compiler.quantize import graded_values, quantize
from .errors import SnncError

POPULATIONS = (CubaLIF, CubaLI)
DERIVED = ("scales", "quantization", "state_scale", "calibration")


def _uncompiled(graph: Graph) -> Graph:
    """The float graph: no fixed view, no scales derived from an earlier quantization."""
    g = graph.copy()
    g.fixed = {}
    g.metadata = {k: v for k, v in g.metadata.items() if k not in DERIVED}
    return fold_pooling(g)


def _pinned(graph: Graph, scales: Dict) -> Graph:
    g = graph.copy()
    g.metadata = dict(g.metadata)
    g.metadata["scales"] = copy.deepcopy(scales)
    return g


def _data(graph: Graph, data, max_samples: int) -> np.ndarray:
    """Calibration spikes (a graded input: real values) as a float64 batch ``(N, *shape, T)``."""
    if len(graph.inputs) != 1:
        raise SnncError(f"calibration takes graphs with one input, this one has {graph.inputs}")
    name = graph.inputs[0]
    kind = graph.nodes[name].kind
    if kind not in ("spikes", "graded"):
        raise SnncError(f"calibration: input {name!r} is {kind!r}; calibration takes spike or graded inputs")
    x = np.asarray(data, dtype=np.float64)
    shape = tuple(graph.shapes()[name])
    if x.ndim == len(shape) + 1:
        x = x[None]
    if x.ndim != len(shape) + 2 or tuple(x.shape[1:-1]) != shape:
        want = ", ".join(map(str, shape))
        raise SnncError(f"calibration data: shape {x.shape} does not fit the model input: expected "
                        f"({want}, T) or a batch (N, {want}, T), time last")
    if kind == "spikes" and not np.all((x == 0) | (x == 1)):
        raise SnncError("calibration data must be binary spikes (0/1)")
    if not np.all(np.isfinite(x)):
        raise SnncError(f"calibration data for the graded input {name!r} must be finite (found NaN or inf)")
    return x[:max_samples]


def trace(graph: Graph, mode: str, x: np.ndarray, stats: bool = False):
    """Run ``graph`` on ``x`` in the reference engine; returns ``(activity, output, ranges)``:
    every population's spikes ``(N, *shape, T)`` (bool; a CubaLI read-out: its values), the
    first output ``(N, *shape, T)`` and (``stats``) per population the largest |u| and |v|
    (float units) seen. A graded input's ``x`` is what the host rounds (``plan.input_values``)."""
    n, steps = x.shape[0], x.shape[-1]
    sim = _Sim(graph, mode, n)
    x = input_values(graph, {graph.inputs[0]: x}, mode)[graph.inputs[0]]
    pops = [k for k, v in graph.nodes.items() if isinstance(v, POPULATIONS)]
    out_name = graph.outputs[0]
    spk = {p: np.zeros((steps,) + sim.values[p].shape, bool if isinstance(graph.nodes[p], CubaLIF) else np.float64)
           for p in pops}
    out = np.zeros((steps,) + sim.values[out_name].shape, np.float64)
    ranges = {p: [0.0, 0.0] for p in pops}
    xt = np.ascontiguousarray(np.moveaxis(x, -1, 0))
    inp = graph.inputs[0]
    for t in range(steps):
        vals = sim.step(t, {inp: xt[t]})
        for p in pops:
            if spk[p].dtype == bool:
                np.not_equal(vals[p], 0, out=spk[p][t])
            else:
                spk[p][t] = vals[p]
            if stats:
                st = sim.state[p]
                ranges[p][0] = max(ranges[p][0], float(np.max(np.abs(st["u"]), initial=0.0)))
                ranges[p][1] = max(ranges[p][1], float(np.max(np.abs(st["v"]), initial=0.0)))
        out[t] = vals[out_name]
    spikes = {p: np.moveaxis(a, 0, -1) for p, a in spk.items()}
    return spikes, np.moveaxis(out, 0, -1), ranges


def flow_order(graph: Graph, net: Optional[Network] = None) -> List[str]:
    """Populations in the order spikes reach them: by the fewest edges from an input (delays
    included, cycles cut where they close), then topologically; bias-driven ones first. The
    distances are the lowered network's: a connection is its sources' wires, its synapse, its
    post-synaptic wires."""
    net = net or lower(graph)
    dist = {k: 0 for k in graph.inputs}
    for p in net.populations.values():
        if p.bias_inputs:
            dist[p.name] = 1
    for _ in range(len(net.populations) + 1):
        changed = False
        for c in net.connections:
            hop = len(c.path) + (2 if c.synapse is not None else 1)
            for s in c.sources:
                if s.pop in dist and dist[s.pop] + len(s.path) + hop < dist.get(c.dst, np.inf):
                    dist[c.dst] = dist[s.pop] + len(s.path) + hop
                    changed = True
        if not changed:
            break
    topo = {k: i for i, k in enumerate(topo_order(graph))}
    pops = [p.name for p in net.populations.values() if p.kind in ("lif", "li")]
    return sorted(pops, key=lambda k: (dist.get(k, 0), topo[k]))


def _synapses(net: Network, pop: str) -> Dict:
    """{synapse: (float weight, is Dense)} of the connections into ``pop``."""
    return {c.name: (np.asarray(c.synapse.weight, dtype=np.float64), isinstance(c.synapse, Dense))
            for c in net.into(pop) if c.synapse is not None}


def _with(scales: Dict, pop: str, S: int, exps: Dict[str, int], vth=None) -> Dict:
    out = copy.deepcopy(scales)
    out["state_scale"][pop] = int(S)
    out["weight_exp"].update({k: int(v) for k, v in exps.items()})
    if vth is not None:
        out["vth"][pop] = int(vth) if np.ndim(vth) == 0 else np.asarray(vth).astype(int).tolist()
    else:
        out["vth"].pop(pop, None)
    return out


def _rate(net: Network, c: Connection, float_spk: Dict, x: np.ndarray):
    """Mean value per neuron (over samples and steps) of what connection ``c``'s synapse reads in
    the float model: its sources' spike rates (an Input: its mean value), flattened where the
    path flattens, summed (a delay shifts spikes in time, not their mean). None where a source is
    not a spiking population or an Input (a read-out, a sigma-delta population)."""
    r = 0.0
    for s in c.sources:
        p = net.populations[s.pop]
        if p.kind == "input":
            v = graded_values(net.graph, s.pop, x) if p.node.kind == "graded" else x
            m = np.asarray(v, np.float64).mean(axis=(0, -1))
        elif p.kind == "lif":
            m = float_spk[s.pop].mean(axis=(0, -1))
        else:
            return None
        r = r + (m.reshape(-1) if s.flatten else m)
    return r


def _current_error(net: Network, q: Graph, c: Connection, S: int, float_spk: Dict, x: np.ndarray):
    """The mean synaptic input error per target neuron (threshold units per step) that the weight
    rounding of connection ``c`` causes on the calibration data: ``(W_q - W) @ E[x]`` (a
    convolution of the mean input map for Conv), with ``W_q = m 2**e / k`` the dequantized
    mantissas (``e``: the weight's own exponent); None if unknown."""
    node = c.synapse
    if not isinstance(node, (Dense, Conv2d)):
        return None                     # pooling weights are exact (a power of two times S/64)
    r = _rate(net, c, float_spk, x)
    if r is None:
        return None
    fx = q.fixed[c.name]
    dw = np.asarray(fx.weight, np.float64) * 2.0 ** fx.own_weight_exp / (S // 64) - node.weight
    if isinstance(node, Dense):
        e = dw @ r
    else:
        e = conv2d(np.asarray(r, np.float64)[None], dw, node.stride, node.padding, node.dilation, node.groups)[0]
    return e.reshape(-1) if c.post_flatten else e


def _bias_corrected(g0: Graph, net: Network, q: Graph, pop: str, S: int, float_spk: Dict, x: np.ndarray):
    """``g0`` with population ``pop``'s float bias corrected for the mean input error of its
    rounded weights (bias correction, Nagel et al. 2019, "Data-free quantization through weight
    equalization and bias correction"): ``bias - E[dI] / current_decay`` (the steady state of u
    under a constant input error dI). Returns ``(graph, correction)`` or None (nothing to correct)."""
    node = g0.nodes[pop]
    du = np.asarray(node.current_decay, np.float64)
    if np.any(du <= 0):
        return None                     # u integrates without leak: a constant error has no steady state
    errs = [_current_error(net, q, c, S, float_spk, x) for c in net.into(pop) if c.synapse is not None]
    if not errs or any(e is None for e in errs):
        return None
    corr = -sum(errs) / du
    if not np.any(corr):
        return None
    g = g0.copy()
    bias = np.broadcast_to(np.asarray(node.bias, np.float64), tuple(node.shape)) + corr
    g.nodes[pop] = dataclasses.replace(node, bias=bias)
    return g, corr


def _try_bias_correction(g0, net, scales, p, S, score, float_spk, x, downstream):
    """The bias correction of ``p`` under ``scales``: ``(graph, correction, score, tried)`` with
    the corrected graph and its downstream score, or None (nothing to correct, or the corrected
    bias does not fit this S's 13-bit mantissa)."""
    bc = _bias_corrected(g0, net, quantize(_pinned(g0, scales)), p, S, float_spk, x)
    if bc is None:
        return None
    try:
        spk = trace(quantize(_pinned(bc[0], scales)), "fixed", x)[0]
    except SnncError:
        return None
    sc = _downstream(spk, float_spk, downstream)
    kept = sel.best([score, sc], [S, S]) == 1 and sc != score
    tried = dict(kept=bool(kept), max_abs=float(np.max(np.abs(bc[1]))), mean_abs=float(np.mean(np.abs(bc[1]))),
                 downstream_error_without=score[0], downstream_error_with=sc[0])
    return bc[0], bc[1], sc, tried


def calibrate(graph: Graph, data, quantiles: Sequence[float] = sel.QUANTILES, refine_threshold: bool = True,
              max_samples: int = 512, progress: Optional[callable] = None, bias_correction: bool = True) -> Graph:
    """Quantize ``graph`` (IR, float-trained or not; a compiled graph is re-quantized from its
    float parameters) with scales chosen on calibration spikes ``data`` ``(N, *shape, T)``
    (a graded input: its real values); ``bias_correction``: try the per-population bias
    correction (module doc).

    Returns the quantized graph; ``metadata["scales"]`` pins the choices, ``metadata
    ["calibration"]`` is the per-layer report (see ``snnc.compiler.calibrate.calibration_table``)."""
    g0 = _uncompiled(graph)
    x = _data(g0, data, max_samples)
    float_spk, float_out, ranges = trace(g0, "float", x, stats=True)
    naive = quantize(g0)
    naive_spk, naive_out, _ = trace(naive, "fixed", x)
    scales: Dict = {"state_scale": {}, "weight_exp": {}, "vth": {}}
    net = lower(g0)
    pops = flow_order(g0, net)
    tried: Dict[str, int] = {}
    corrected: Dict[str, np.ndarray] = {}         # population -> its bias correction (threshold units)
    bias_tried: Dict[str, Dict] = {}              # population -> the correction tried and its scores
    g_float = g0
    for i_p, p in enumerate(pops):
        node = g0.nodes[p]
        syns = _synapses(net, p)
        fixed_k = int(node.state_scale) // 64 if node.state_scale else 0
        k_max = fixed_k or sel.scale_limit(getattr(node, "threshold", 0.0), *ranges[p], node.bias)
        cands = sel.candidates(syns, k_max, fixed_k, quantiles)
        own = (state_scale(naive, p), {s: naive.fixed[s].own_weight_exp for s in syns})
        k_hard = fixed_k or sel.scale_limit(getattr(node, "threshold", 0.0), *ranges[p], node.bias,
                                            state_limit=float(1 << 23))
        if own not in cands and own[0] <= 64 * k_hard:      # (it may break the bias or 24-bit limits)
            cands.insert(0, own)
        results = []
        for S, exps in cands:
            trial = _with(scales, p, S, exps)
            try:
                spk, _, _ = trace(quantize(_pinned(g0, trial)), "fixed", x)
            except SnncError:
                continue                    # e.g. '>=' thresholds that this S cannot express
            results.append((trial, _downstream(spk, float_spk, pops[i_p:]), S))
        if not results:
            raise SnncError(f"calibration: no candidate scale fits population {p!r}")
        i = sel.best([r[1] for r in results], [r[2] for r in results])
        scales, score, S = results[i]
        n_tried = len(results)
        bc = _try_bias_correction(g0, net, scales, p, S, score, float_spk, x, pops[i_p:]) if bias_correction \
            else None
        if bc is not None:
            n_tried += 1
            bias_tried[p] = bc[3]
            if bc[3]["kept"]:
                g0, corrected[p], score = bc[0], bc[1], bc[2]
        if refine_threshold and isinstance(node, CubaLIF) and node.spike_compare == ">":
            vth0 = quantize(_pinned(g0, scales)).fixed[p].vth
            for vth in sel.threshold_candidates(vth0):
                trial = _with(scales, p, S, {}, vth)
                spk, _, _ = trace(quantize(_pinned(g0, trial)), "fixed", x)
                sc = _downstream(spk, float_spk, pops[i_p:])
                n_tried += 1
                if sel.best([score, sc], [S, S]) == 1 and sc != score:
                    scales, score = trial, sc
        tried[p] = n_tried
        if progress:
            progress(f"{p}: S {S}, error {100 * score[0]:.3f} % ({n_tried} candidates)")
    cal = quantize(_pinned(g0, scales))
    cal_spk, cal_out, _ = trace(cal, "fixed", x)
    kept = _downstream(naive_spk, float_spk, pops) < _downstream(cal_spk, float_spk, pops)
    if kept:       # the greedy choice lost to the uncalibrated pass over the whole network: keep that
        g0, corrected = g_float, {}
        scales = {"state_scale": {p: state_scale(naive, p) for p in pops},
                  "weight_exp": {k: v.own_weight_exp for k, v in naive.fixed.items() if hasattr(v, "weight_exp")},
                  "vth": {}}
        cal = quantize(_pinned(g0, scales))
        cal_spk, cal_out = naive_spk, naive_out
    cal.metadata["calibration"] = _report(net, cal, pops, float_spk, naive_spk, cal_spk, tried, x,
                                          float_out, naive_out, cal_out)
    for row in cal.metadata["calibration"]["layers"]:
        c = corrected.get(row["population"])
        row["bias_correction"] = None if c is None else dict(
            max_abs=float(np.max(np.abs(c))), mean_abs=float(np.mean(np.abs(c))))
        if row["population"] in bias_tried:        # downstream errors: summed mismatch fractions
            row["bias_correction_tried"] = dict(bias_tried[row["population"]], kept=c is not None)
    cal.metadata["calibration"]["kept_uncalibrated"] = bool(kept)
    return cal


def _score(fixed, ref):
    """Spikes: (fraction of differing entries, count error); read-out values: (relative RMS error, 0)."""
    return sel.spike_score(fixed, ref) if ref.dtype == bool else (sel.readout_error(fixed, ref), 0.0)


def _downstream(act, ref, pops) -> tuple:
    """The score of a choice for ``pops[0]``: its own error and that of every population after
    it, summed (each population weighted equally), then the spike-count errors summed."""
    scores = [_score(act[q], ref[q]) for q in pops]
    return (sum(m for m, _ in scores), sum(c for _, c in scores))


def _agree(a, b) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b))) if np.size(b) else 1.0


def _quality(a, ref) -> Dict:
    """Spike agreement of a spiking population, relative RMS error of a read-out."""
    if ref.dtype == bool:
        return {"agreement": _agree(a, ref)}
    return {"readout_error": sel.readout_error(a, ref)}


def _report(net, cal, pops, float_spk, naive_spk, cal_spk, tried, x, float_out, naive_out, cal_out) -> Dict:
    layers = []
    for p in pops:
        S = state_scale(cal, p)
        syn = {}
        for s, (w, _) in _synapses(net, p).items():
            fx = cal.fixed[s]
            e = fx.own_weight_exp        # the weight's exponent (a graded input's frac bits not in it)
            syn[s] = dict(weight_exp=e, **sel.weight_stats(w, fx.weight, e, S // 64))
        row = dict(population=p, state_scale=S, synapses=syn, candidates=tried[p])
        if net.populations[p].kind == "lif":
            vth = cal.fixed[p].vth
            row.update(vth=int(vth) if np.ndim(vth) == 0 else "per neuron",
                       spikes_float=int(float_spk[p].sum()), spikes_naive=int(naive_spk[p].sum()),
                       spikes=int(cal_spk[p].sum()))
        else:
            row["vth"] = "-"
        row.update({f"{k}_naive": v for k, v in _quality(naive_spk[p], float_spk[p]).items()})
        row.update(_quality(cal_spk[p], float_spk[p]))
        layers.append(row)
    out = dict(samples=int(x.shape[0]), steps=int(x.shape[-1]), layers=layers,
               output_agreement_naive=_agree(naive_out, float_out), output_agreement=_agree(cal_out, float_out))
    if any(net.populations[q].kind == "li" for q in net.outputs[0].pops):
        out.update(output_error_naive=sel.readout_error(naive_out, float_out),
                   output_error=sel.readout_error(cal_out, float_out))
    return out


def load_data(path: str) -> np.ndarray:
    """Calibration spikes from a ``.npy`` file (or the ``input`` array of an ``.npz``)."""
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such calibration file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:
        raise SnncError(f"{path}: not a NumPy .npy/.npz file ({type(e).__name__})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        if "input" not in keys and len(keys) != 1:
            raise SnncError(f"{path}: .npz holds {keys}; name the calibration array 'input'")
        return data["input" if "input" in keys else keys[0]]
    return data
