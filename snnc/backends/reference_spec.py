"""The reference simulator's executable specification: the plain, node-by-node form.

``snnc.backends.reference`` is the fast engine (a step plan compiled from the lowered network,
``compiler.lower``); this module is an INDEPENDENT interpreter of the IR graph itself (its own
walk over the nodes in topological order, int64 arithmetic, no lowering, no plan), the readable
statement of the same semantics. It is the oracle of the tests (tests/test_reference_fast.py,
test_reference_plan.py: bit-identical outputs, counts and states, both modes) and is not used to
run models: ``run_reference`` never calls it, for any graph (sigma-delta and graded ones
included).

Reference simulator of the IR: numpy, batch-vectorized, time-stepped.

Two modes, each equal to one Lava target by construction:
- ``fixed``: Loihi 2 integer arithmetic on ``Graph.fixed`` (run ``quantize`` first), bit-exact
  with Lava's ``fixed_pt`` models (24-bit u that wraps, v that saturates, 12-bit decays with
  round-toward-zero, ``a_in << 6``, ``v > vth << 6``, Conv output clamped to 24 bits);
- ``float``: Lava's ``floating_pt`` semantics on the IR's float parameters
  (``u = u*(1-du) + a``, ``v = v*(1-dv) + u + bias``, ``v > vth``).

It runs in IR time (synapses instantaneous, ``Delay`` nodes explicit), so its output is aligned
step for step with the model's own time axis.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from ..compiler.conv import conv2d  # noqa: F401  (re-exported)
from ..compiler.fixed import U_WRAP, V_MAX, message_scale, state_scale
from ..compiler.ir import Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d
from ..compiler.passes import check, topo_order
from ..errors import SnncError
from . import reference_sdn as sdn
from .result import RunResult


def _reset(node: CubaLIF, v: np.ndarray, s: np.ndarray, vth) -> np.ndarray:
    """v after the spike test: zero reset, immediate subtraction, or unchanged (none, delayed)."""
    if node.reset == "zero":
        return np.where(s, 0, v)
    if (node.reset == "subtract" and not node.reset_delay) or node.reset == "subtract_snntorch":
        return np.where(s, v - vth, v)
    return v


def _tested(node: CubaLIF, v: np.ndarray, v_prev: np.ndarray, vth) -> np.ndarray:
    """The value the spike test reads: v, or for "subtract_snntorch" v - vth * H(v_prev - vth)."""
    if node.reset == "subtract_snntorch":
        return v - vth * (v_prev > vth)
    return v


def _rtz_decay(x: np.ndarray, decay: int) -> np.ndarray:
    """``sign(x * (4096 - decay)) * (|x * (4096 - decay)| >> 12)`` in int64."""
    y = x * (4096 - decay)
    return np.sign(y) * (np.abs(y) >> 12)


def _output_scales(graph: Graph) -> Dict[str, int]:
    """Per Output that reads graded messages (through Delay/Flatten): their integer units per 1.0.
    The spec's own walk of the graph (it is the oracle of the lowered engines: it never reads
    ``compiler.lower``)."""
    out = {}
    for o in graph.outputs:
        srcs, todo = [], list(graph.predecessors(o))
        while todo:
            n = todo.pop()
            if isinstance(graph.nodes[n], (Delay, Flatten)):
                todo.extend(graph.predecessors(n))
            elif n not in srcs:
                srcs.append(n)
        scales = {message_scale(graph, n) for n in srcs}
        if scales - {0}:
            if len(scales) != 1:
                raise SnncError(f"output {o!r} reads messages of different units {sorted(scales)}")
            out[o] = scales.pop()
    return out


class _Sim:
    def __init__(self, graph: Graph, mode: str, batch: int):
        if mode not in ("fixed", "float"):
            raise ValueError(f"mode must be 'fixed' or 'float', got {mode!r}")
        self.g, self.mode, self.n = graph, mode, batch
        self.shapes = check(graph)
        self.order = topo_order(graph)
        self.dtype = np.int64 if mode == "fixed" else np.float64
        if mode == "fixed":
            missing = [k for k, v in graph.nodes.items()
                       if (isinstance(v, (CubaLIF, CubaLI, Dense, Conv2d, SumPool2d))
                           or type(v).__name__ in ("Delta", "SigmaDelta")) and k not in graph.fixed]
            if missing:
                raise SnncError(f"fixed-point run needs the quantization pass first (no fixed view for {missing})")
        self.state: Dict[str, Dict[str, np.ndarray]] = {}
        for name, node in graph.nodes.items():
            shape = (batch,) + tuple(self.shapes[name])
            if isinstance(node, CubaLIF):
                self.state[name] = dict(u=np.zeros(shape, self.dtype), v=np.zeros(shape, self.dtype),
                                        ref=np.zeros(shape, np.int64), s=np.zeros(shape, bool))
            elif isinstance(node, CubaLI):
                self.state[name] = dict(u=np.zeros(shape, self.dtype), v=np.zeros(shape, self.dtype))
            elif isinstance(node, sdn.SIGMA_DELTA):
                self.state[name] = sdn.init_state(shape, self.dtype)
            elif isinstance(node, Delay):
                steps = np.broadcast_to(np.asarray(node.steps, dtype=np.int64), self.shapes[name])
                self.state[name] = dict(hist=np.zeros((node.max_steps + 1,) + shape, self.dtype),
                                        steps=steps)
        self.timed = [k for k, v in graph.nodes.items() if isinstance(v, Delay) and v.min_steps >= 1]
        self.out_scale = _output_scales(graph) if mode == "fixed" else {}    # graded: integers -> values
        self.li_scale = {k: state_scale(graph, k) for k, v in graph.nodes.items()
                         if isinstance(v, CubaLI)}        # fixed: v integers -> values

    def _delay_out(self, name: str, t: int) -> np.ndarray:
        st = self.state[name]
        hist, steps = st["hist"], st["steps"]
        depth = hist.shape[0]
        src_t = t - steps                                  # per neuron
        idx = np.mod(src_t, depth)
        out = np.take_along_axis(hist, np.broadcast_to(idx, (1, self.n) + steps.shape), axis=0)[0]
        return np.where(src_t >= 0, out, 0)

    def _sum_inputs(self, name: str, out: Dict[str, np.ndarray]) -> np.ndarray:
        return sum(out[s] for s in self.g.predecessors(name))

    def _synapse(self, name: str, node, x: np.ndarray) -> np.ndarray:
        fixed = self.mode == "fixed"
        if fixed:
            fx = self.g.fixed[name]
            w = np.asarray(fx.weight, dtype=np.int64)
            if not getattr(fx, "num_message_bits", 0) and not np.all((x == 0) | (x == 1)):
                raise SnncError(f"synapse {name!r}: fixed-point runs take binary spikes; got graded values")
            x = x.astype(np.int64)
        else:
            w = np.asarray(node.weight, dtype=np.float64)
        if isinstance(node, Dense):
            a = x @ w.T
            if fixed and fx.weight_exp:
                a = a << fx.weight_exp if fx.weight_exp > 0 else a >> -fx.weight_exp
            return a
        if isinstance(node, SumPool2d):
            c = x.shape[1]
            w = np.broadcast_to(w, (c, 1) + tuple(node.kernel))
            a = conv2d(x, w, node.stride, node.padding, (1, 1), c)
        else:
            a = conv2d(x, w, node.stride, node.padding, node.dilation, node.groups)
        if fixed:
            a = np.clip(a, -(1 << 23), (1 << 23) - 1)       # Lava Conv: signed_clamp(24 bits)
        return a

    def _neuron(self, name: str, node: CubaLIF, a, drive=None) -> np.ndarray:
        """``a``: summed synaptic input (or 0); ``drive``: summed bias-kind inputs (or None)."""
        st = self.state[name]
        if node.reset_interval and self.t % node.reset_interval == node.reset_offset % node.reset_interval:
            st["u"] = np.zeros_like(st["u"])
            st["v"] = np.zeros_like(st["v"])
        if self.mode == "fixed":
            fx = self.g.fixed[name]
            u = _rtz_decay(st["u"], fx.decay_u) + (a << 6)
            u = np.where(u > (U_WRAP >> 1), u - U_WRAP, u)
            u = np.where(u <= -(U_WRAP >> 1), u + U_WRAP, u)
            bias = np.asarray(fx.bias_mant, dtype=np.int64) << fx.bias_exp
            if drive is not None:
                scale = state_scale(self.g, name)
                d = np.asarray(drive, dtype=np.float64) * scale
                if not np.all(d == np.round(d)):
                    raise SnncError(f"population {name!r}: bias input is not a multiple of 1/{scale} "
                                    "(the population's state unit)")
                bias = bias + d.astype(np.int64)
            vth = np.asarray(fx.vth, dtype=np.int64) << 6
            v = _rtz_decay(st["v"], fx.decay_v) + u + bias
            if node.delayed_subtract:
                v = v - vth * st["s"]                      # one step late, after the decay
            v = np.clip(v, -V_MAX, V_MAX)
            refractory = fx.refractory
        else:
            u = st["u"] * (1 - node.current_decay) + a
            v = st["v"] * (1 - node.voltage_decay) + u + node.bias
            if drive is not None:
                v = v + drive
            vth = node.threshold
            if node.delayed_subtract:
                v = v - vth * st["s"]
            refractory = node.refractory
        if refractory:
            held = st["ref"] > 0
            v = np.where(held, 0, v)
            st["ref"] = np.maximum(st["ref"] - 1, 0)
        m = _tested(node, v, st["v"], vth)
        s = m > vth if node.spike_compare == ">" or self.mode == "fixed" else m >= vth
        v = _reset(node, v, s, vth)
        if refractory:
            st["ref"] = np.where(s, refractory, st["ref"])
        st["u"], st["v"], st["s"] = u, v, s
        return s.astype(self.dtype)

    def _leaky_integrator(self, name: str, node: CubaLI, a) -> np.ndarray:
        """CubaLI: as a CUBA neuron without threshold; returns v (fixed: Loihi integers)."""
        st = self.state[name]
        if self.mode == "fixed":
            fx = self.g.fixed[name]
            u = _rtz_decay(st["u"], fx.decay_u) + (a << 6)
            u = np.where(u > (U_WRAP >> 1), u - U_WRAP, u)
            u = np.where(u <= -(U_WRAP >> 1), u + U_WRAP, u)
            bias = np.asarray(fx.bias_mant, dtype=np.int64) << fx.bias_exp
            v = np.clip(_rtz_decay(st["v"], fx.decay_v) + u + bias, -V_MAX, V_MAX)
        else:
            u = st["u"] * (1 - node.current_decay) + a
            v = st["v"] * (1 - node.voltage_decay) + u + node.bias
        st["u"], st["v"] = u, v
        return v

    def _output(self, name: str, inp):
        """An Output's value: graded messages and fixed-point read-out v converted to values."""
        if name in self.out_scale:
            return inp / self.out_scale[name]
        li = [p for p in self.g.predecessors(name) if p in self.li_scale]
        if li and self.mode == "fixed":
            scales = {self.li_scale[p] for p in li}
            if len(scales) != 1 or len(li) != len(self.g.predecessors(name)):
                raise SnncError(f"output {name!r} sums read-outs of different state scales or other sources")
            return inp / float(scales.pop())
        return inp

    def step(self, t: int, x: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self.t = t
        out: Dict[str, np.ndarray] = {k: self._delay_out(k, t) for k in self.timed}
        for name in self.order:
            node = self.g.nodes[name]
            if isinstance(node, Input):
                out[name] = x[name]
                continue
            if isinstance(node, (Dense, Conv2d, SumPool2d)):
                inp = None
            else:
                inp = self._sum_inputs(name, out)
            if isinstance(node, Delay):
                st = self.state[name]
                st["hist"][t % st["hist"].shape[0]] = inp
                if name not in self.timed:
                    out[name] = self._delay_out(name, t)
            elif isinstance(node, (Dense, Conv2d, SumPool2d)):
                # one synapse per source, summed at the neuron: what Lava does with fan-in
                out[name] = sum(self._synapse(name, node, out[s]) for s in self.g.predecessors(name))
            elif isinstance(node, Flatten):
                out[name] = inp.reshape(self.n, -1)
            elif isinstance(node, CubaLI):
                out[name] = self._leaky_integrator(name, node, inp)
            elif isinstance(node, CubaLIF):
                preds = self.g.predecessors(name)
                bias_in = [p for p in preds if isinstance(self.g.nodes[p], Input) and self.g.nodes[p].kind == "bias"]
                if bias_in:
                    syn = [out[p] for p in preds if p not in bias_in]
                    a = sum(syn) if syn else np.zeros((self.n,) + tuple(self.shapes[name]), self.dtype)
                    out[name] = self._neuron(name, node, a, sum(out[p] for p in bias_in))
                else:
                    out[name] = self._neuron(name, node, inp)
            elif isinstance(node, Average):
                out[name] = inp.reshape(self.n, node.groups, -1).mean(axis=2)
            elif isinstance(node, sdn.SIGMA_DELTA):
                out[name] = sdn.step(self.g, self.mode, name, node, self.state[name], inp)
            elif isinstance(node, Output):
                out[name] = self._output(name, inp)
        return out


def run_reference_spec(graph: Graph, spikes, mode: str = "fixed",
                       state_steps: Optional[Dict[str, int]] = None) -> RunResult:
    """Run ``graph`` on ``spikes`` ``(N, *input_shape, T)`` (a dict by input name for several inputs).

    Returns the (first) output ``(N, *shape, T)`` and per-population spike counts.
    ``state_steps``: {CUBA population: k}: ``result.state[pop]`` = its ``u`` and ``v`` after its
    first k steps (1 <= k <= T; fixed point: Loihi integers), to compare with a Lava run's
    ``record_state``.
    """
    start = time.perf_counter()
    inputs = spikes if isinstance(spikes, dict) else {graph.inputs[0]: spikes}
    first = np.asarray(next(iter(inputs.values())))
    n, steps = first.shape[0], first.shape[-1]
    sim = _Sim(graph, mode, n)
    for name, arr in inputs.items():
        want = (n,) + tuple(sim.shapes[name]) + (steps,)
        if tuple(np.shape(arr)) != want:
            raise SnncError(f"input {name!r}: expected shape (N, {', '.join(map(str, sim.shapes[name]))}, T) "
                            f"= {want}, got {tuple(np.shape(arr))}")
    data = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    from ..compiler.quantize import graded_messages, graded_values
    if mode == "fixed":
        data = {k: (graded_messages(graph, k, v) if graph.nodes[k].kind == "graded"
                    else v.astype(np.int64) if np.all(v == np.round(v)) else v) for k, v in data.items()}
    else:
        data = {k: (graded_values(graph, k, v) if graph.nodes[k].kind == "graded" else v)
                for k, v in data.items()}
    li = any(isinstance(v, CubaLI) for v in graph.nodes.values())
    odt = np.float64 if sdn.has_sigma_delta(graph) or li else np.float32     # graded values: float64
    outs = {o: np.zeros((n,) + tuple(sim.shapes[o]) + (steps,), odt) for o in graph.outputs}
    pops = [k for k, v in graph.nodes.items() if isinstance(v, CubaLIF)]
    sd_pops = [k for k, v in graph.nodes.items() if isinstance(v, sdn.SIGMA_DELTA) and type(v).__name__ != "Sigma"]
    counts = {p: np.zeros((n,) + tuple(sim.shapes[p]), np.int64) for p in pops + sd_pops}
    state = {}
    for t in range(steps):
        res = sim.step(t, {k: v[..., t] for k, v in data.items()})
        for p, k in (state_steps or {}).items():
            if k == t + 1:
                state[p] = {key: np.array(sim.state[p][key]) for key in ("u", "v")}
        for o in graph.outputs:
            outs[o][..., t] = res[o]
        for p in pops:
            counts[p] += res[p].astype(np.int64)
        for p in sd_pops:                       # sigma-delta: number of non-zero messages
            counts[p] += (res[p] != 0).astype(np.int64)
    result = RunResult(output=outs[graph.outputs[0]], counts=counts, engine=f"reference-spec-{mode}",
                       seconds=time.perf_counter() - start, plan="spec")
    result.outputs = outs
    if state_steps:
        missing = sorted(set(state_steps) - set(state))
        if missing:
            raise SnncError(f"reference: no state recorded for {missing} (steps must be in 1..{steps})")
        result.state, result.state_steps = state, dict(state_steps)
    return result
