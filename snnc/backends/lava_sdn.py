"""Sigma-delta graphs (``Delta``, ``SigmaDelta``, ``Sigma``) on Lava's CPU simulation (fixed_pt).

``run_lava_sdn(graph, x, mode="fixed", timeout=600.0) -> RunResult``, called by ``run_lava`` for
any graph with sigma-delta nodes. The processes are the ones netx builds for an SDNN ``.net``:
``lava.proc.sdn`` ``Delta`` / ``SigmaDelta`` / ``Sigma`` with the integers of ``graph.fixed``
(``vth``, ``bias``, ``spike_exp``, ``state_exp``, ``cum_error``, ReLU or UNIT), and graded
synapses: ``lava.proc.dense.Dense`` / ``lava.proc.conv.Conv`` with ``num_message_bits`` (so
they compute ``W @ s``), an io ``RingBuffer`` source feeding the Delta's ``a_in`` directly (no
synapse, as netx) and a ``RingBuffer`` sink on the output.

Supported structure (what netx SDNN files give): one Input -> Delta, then a chain of
``Delay(1) [-> Flatten] -> Dense/Conv2d -> SigmaDelta|Sigma`` (each Lava synapse takes exactly
the one step of its Delay, so Lava step t + 1 is IR step t with no offsets), the Output reading
the last node. Fixed point only. Anything else raises ``SnncError`` naming the node.
Each sample is a fresh network (zero state). Runs in a child process with a timeout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List

import numpy as np

from ..compiler.ir import SIGMA_DELTA, Conv2d, Delay, Delta, Dense, Flatten, Graph, Output, Sigma, SigmaDelta
from ..errors import SnncError
from .lava_plan import flat_perm, lava_shape, to_lava
from .child import run_child
from .result import RunResult


@dataclass
class _Layer:
    name: str
    kind: str                    # "sigma_delta" | "sigma"
    shape: tuple                 # Lava (x, y, f)
    syn: str                     # "dense" | "conv"
    weight: np.ndarray
    weight_exp: int = 0
    num_message_bits: int = 16
    conv: dict = field(default_factory=dict)
    flatten: bool = False
    params: dict = field(default_factory=dict)


@dataclass
class SdnPlan:
    input_name: str
    input_shape: tuple           # IR (C, H, W) or (N,)
    in_scale: int                # Delta's a_in integers per 1.0
    delta: dict                  # Delta process parameters
    delta_name: str
    layers: List[_Layer]
    out_name: str
    out_scale: int               # output integers per 1.0
    out_ir_shape: tuple
    steps: int = 0


def _err(name, node, msg) -> SnncError:
    return SnncError(f"Lava backend: node {name!r} ({type(node).__name__}): {msg}")


def plan_sdn(graph: Graph, mode: str = "fixed") -> SdnPlan:
    """Check the graph is an SDNN chain Lava can run and collect its processes' parameters."""
    from ..compiler.passes import check
    from ..compiler.quantize import _message_scale
    shapes = check(graph)
    if mode != "fixed":
        name = next(k for k, v in graph.nodes.items() if isinstance(v, SIGMA_DELTA))
        raise _err(name, graph.nodes[name], f"sigma-delta runs on Lava in fixed point only (mode {mode!r}); "
                   "use mode='fixed' or the reference backend")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SnncError("Lava backend: a sigma-delta graph needs exactly one Input and one Output")
    inp = graph.inputs[0]
    succ = graph.successors(inp)
    if len(succ) != 1 or not isinstance(graph.nodes[succ[0]], Delta):
        raise _err(inp, graph.nodes[inp], f"must feed exactly one Delta encoder, feeds {succ}")
    dname = succ[0]
    dnode = graph.nodes[dname]
    if dname not in graph.fixed:
        raise _err(dname, dnode, "no fixed-point view: run the quantization pass first")
    fx = graph.fixed[dname]
    delta = dict(vth=fx.vth, spike_exp=fx.spike_exp, state_exp=fx.state_exp, cum_error=bool(fx.cum_error))
    in_scale = int(dnode.state_scale) >> (fx.spike_exp + fx.state_exp)
    layers: List[_Layer] = []
    cur = dname
    while True:
        nxt = graph.successors(cur)
        outs = [n for n in nxt if isinstance(graph.nodes[n], Output)]
        rest = [n for n in nxt if n not in outs]
        if not rest:
            break
        if len(rest) != 1 or not isinstance(graph.nodes[rest[0]], Delay):
            raise _err(cur, graph.nodes[cur], f"must feed one Delay(1) before the next synapse, feeds {rest}")
        d = rest[0]
        if np.any(np.asarray(graph.nodes[d].steps) != 1) or len(graph.predecessors(d)) != 1:
            raise _err(d, graph.nodes[d], "sigma-delta chains on Lava take exactly a one-step Delay "
                       "before each synapse (Lava's synapse latency)")
        nxt = graph.successors(d)
        flatten = False
        if len(nxt) == 1 and isinstance(graph.nodes[nxt[0]], Flatten):
            flatten, d = True, nxt[0]
            nxt = graph.successors(d)
        if len(nxt) != 1 or not isinstance(graph.nodes[nxt[0]], (Dense, Conv2d)):
            raise _err(d, graph.nodes[d], f"must feed one Dense or Conv2d synapse, feeds {nxt}")
        sname = nxt[0]
        snode = graph.nodes[sname]
        sfx = graph.fixed.get(sname)
        if sfx is None or not getattr(sfx, "num_message_bits", 0):
            raise _err(sname, snode, "no graded fixed-point view (quantize the graph)")
        post = graph.successors(sname)
        if len(post) != 1 or not isinstance(graph.nodes[post[0]], (SigmaDelta, Sigma)) \
                or len(graph.predecessors(post[0])) != 1:
            raise _err(sname, snode, f"must be the only input of one SigmaDelta/Sigma, feeds {post}")
        pname = post[0]
        pnode = graph.nodes[pname]
        src_shape = shapes[cur]
        w = np.asarray(sfx.weight, dtype=np.int64)
        layer = _Layer(pname, "sigma" if isinstance(pnode, Sigma) else "sigma_delta",
                       lava_shape(shapes[pname]), "dense" if isinstance(snode, Dense) else "conv",
                       w, int(sfx.weight_exp), int(sfx.num_message_bits), flatten=flatten)
        if isinstance(snode, Dense):
            if flatten and len(src_shape) == 3:
                layer.weight = np.ascontiguousarray(w[:, flat_perm(src_shape)])
        else:
            if flatten:
                raise _err(sname, snode, "a Conv2d cannot follow a Flatten")
            layer.weight = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
            layer.conv = dict(input_shape=lava_shape(src_shape), stride=tuple(snode.stride[::-1]),
                              padding=tuple(snode.padding[::-1]), dilation=tuple(snode.dilation[::-1]),
                              groups=int(snode.groups))
        if isinstance(pnode, SigmaDelta):
            pf = graph.fixed[pname]
            bias = np.broadcast_to(np.asarray(pf.bias, dtype=np.int64), shapes[pname])
            if np.ndim(pf.vth) and np.unique(pf.vth).size > 1:
                raise _err(pname, pnode, "per-neuron thresholds: Lava's SigmaDelta has one vth")
            layer.params = dict(vth=int(np.ravel(pf.vth)[0]), bias=to_lava(np.array(bias), len(shapes[pname])),
                                spike_exp=pf.spike_exp, state_exp=pf.state_exp,
                                cum_error=bool(pf.cum_error), act_mode=pf.act_mode)
        layers.append(layer)
        cur = pname
    outs = graph.outputs
    if graph.predecessors(outs[0]) != [cur]:
        raise _err(outs[0], graph.nodes[outs[0]], f"must read the last sigma-delta node {cur!r} directly")
    out_scale = _message_scale(graph, cur)
    return SdnPlan(inp, tuple(shapes[inp]), in_scale, delta, dname, layers, outs[0], out_scale,
                   tuple(shapes[outs[0]]))


# ----------------------------------------------------------------------------- child process
def _build(plan: SdnPlan, data: np.ndarray):
    """Lava processes for one sample; ``data`` Lava-layout integers (..., T). Returns (procs, sink)."""
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense as LDense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.sdn.process import ActivationMode, Delta as LDelta, Sigma as LSigma, SigmaDelta as LSD
    shape = lava_shape(plan.input_shape)
    src = Source(data=data)
    delta = LDelta(shape=shape, **plan.delta)
    src.s_out.connect(delta.a_in)
    prev = delta
    for L in plan.layers:
        port = prev.s_out.flatten() if L.flatten and len(prev.s_out.shape) > 1 else prev.s_out
        if L.syn == "dense":
            syn = LDense(weights=L.weight, weight_exp=L.weight_exp, num_weight_bits=8,
                         num_message_bits=L.num_message_bits)
        else:
            c = L.conv
            syn = Conv(weight=L.weight, input_shape=c["input_shape"], stride=c["stride"],
                       padding=c["padding"], dilation=c["dilation"], groups=c["groups"],
                       num_message_bits=L.num_message_bits)
        port.connect(syn.s_in)
        if L.kind == "sigma":
            neuron = LSigma(shape=L.shape)
        else:
            p = dict(L.params)
            act = ActivationMode.RELU if p.pop("act_mode") == "relu" else ActivationMode.UNIT
            neuron = LSD(shape=L.shape, act_mode=act, **p)
        syn.a_out.connect(neuron.a_in)
        prev = neuron
    sink = Sink(shape=prev.s_out.shape, buffer=data.shape[-1])
    prev.s_out.connect(sink.a_in)
    return src, sink


def _work(job: dict) -> dict:
    from lava.magma.core.run_conditions import RunSteps
    from .loihi_hw import run_config
    plan, x = job["plan"], job["x"]
    config = job.get("config", "sim-fixed")
    outs, t_run = [], 0.0
    for sample in x:                                   # (*shape, T) integers
        data = to_lava(sample, len(plan.input_shape)).astype(np.int32)
        src, sink = _build(plan, data)
        t0 = time.perf_counter()
        try:
            src.run(condition=RunSteps(num_steps=data.shape[-1]), run_cfg=run_config(config))
            outs.append(sink.data.get())
        finally:
            src.stop()
        t_run += time.perf_counter() - t0
    return {"out": outs, "seconds": t_run}


def run_lava_sdn(graph: Graph, spikes, mode: str = "fixed", timeout: float = 600.0,
                 config: str = "sim-fixed") -> RunResult:
    """Run a quantized sigma-delta graph on Lava (fixed_pt); output in values, as the reference.
    ``config``: ``loihi_hw.run_config`` name: ``"sim-fixed"`` (Loihi2SimCfg fixed_pt) or
    ``"loihi2"`` (Loihi2HwCfg: the same processes on Loihi 2, needs Intel's runtime)."""
    start = time.perf_counter()
    plan = plan_sdn(graph, mode)
    x = np.asarray(spikes, dtype=np.float64)
    want = tuple(plan.input_shape)
    if x.ndim != len(want) + 2 or tuple(x.shape[1:-1]) != want:
        raise SnncError(f"input {plan.input_name!r}: expected shape (N, {', '.join(map(str, want))}, T), "
                        f"got {tuple(x.shape)}")
    xi = x * plan.in_scale
    if not np.all(xi == np.round(xi)):
        raise SnncError(f"delta encoder {plan.delta_name!r}: input is not a multiple of 1/{plan.in_scale}")
    xi = xi.astype(np.int64)
    res = run_child("snnc.backends.lava_sdn", {"plan": plan, "x": xi, "config": config}, timeout,
                    "Loihi 2 run" if config == "loihi2" else "Lava run")
    nd = len(plan.out_ir_shape)
    out = np.stack([to_lava(y, nd) for y in res["out"]]).astype(np.float64) / plan.out_scale
    result = RunResult(output=out, counts={}, engine="loihi2" if config == "loihi2" else "lava-fixed",
                       seconds=time.perf_counter() - start)
    result.outputs = {plan.out_name: out}
    result.timing = {"lava_run_s": res["seconds"]}
    return result


if __name__ == "__main__":
    from .child import child_main
    child_main(_work)
