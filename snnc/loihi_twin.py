"""A bit-exact PyTorch twin of a compiled graph: Loihi 2's integer dynamics, trainable.

``Twin(graph)`` (``snnc.twin(graph_or_path)``) computes, per step and in float64 (every value an
exact integer, as in the reference engine), what Lava's ``fixed_pt`` models and Loihi 2 compute
from ``graph.fixed``:

- a synapse sends ``a = (m @ s) << weight_exp`` with 8-bit mantissas ``m`` (Conv and pooling:
  ``conv(s, m)`` clamped to 24 bits, no exponent);
- a graded (analog) Input sends the integer graded spikes ``x_int = round(x * 2**k)`` (``k`` its
  ``frac_bits``; Lava's ``num_message_bits``) to Dense synapses, which send
  ``a = floor((m @ x_int) * 2**weight_exp)`` (there ``weight_exp = e - k``: an arithmetic shift);
- a CUBA population: ``u = rtz(u (4096 - decay_u) / 4096) + (a << 6)`` wrapping at 24 bits,
  ``v = rtz(v (4096 - decay_v) / 4096) + u + bias`` (``- (vth << 6) s[t-1]`` for the delayed
  subtraction) saturating at ±(2**23 - 1), held at 0 while refractory, ``s = v > vth << 6``,
  then the reset: ``v = 0`` (zero), ``v -= vth << 6`` (immediate subtraction) or none;
  "subtract_snntorch" tests ``v - (vth << 6) [v_prev > vth << 6] > vth << 6`` and subtracts;
- a ``CubaLI`` read-out: the same u and v without threshold; its output is ``v / S``;
- ``Delay``, ``Flatten`` and fan-in sums as in the IR, read from the lowered network
  (``snnc.compiler.lower``): populations in its order, each step's input the sum of its
  connections, the Output's host program.

Its parameters are the synapses' float weights in the model's threshold units (the IR's
``Dense.weight``/``Conv2d.weight``); each forward rounds them to the mantissas exactly as the
quantization pass does for the graph's state scale S and weight exponents (Lava's 8-bit rules:
even mantissas in [-256, 254] for mixed signs, [0, 255] / [-255, 0] for one sign), with a
straight-through gradient. Spikes have a surrogate gradient in ``(v - vth << 6) / S``
(threshold units); the 12-bit decays with round-toward-zero pass the gradient straight through.

``to_graph()`` returns the graph of the trained weights with S, the exponents and the threshold
mantissas pinned (``metadata["scales"]``): its compilation computes exactly what the twin does.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from typing import Dict, Union

import numpy as np

from .compiler import artifact
from .compiler.fixed import input_frac_bits
from .compiler.ir import Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d, _pair
from .compiler.lower import Connection, Network, lower
from .compiler.pipeline import ensure_compiled
from .compiler.quantize import ACC_LIMIT, GRADED_MESSAGE_BITS, quantize
from .errors import SnncError

SYNAPSES = (Dense, Conv2d, SumPool2d)
TWIN_NODES = (Input, Output, Dense, Conv2d, SumPool2d, Flatten, Delay, CubaLIF, CubaLI)
HALF = float(1 << 23)
WRAP = float(1 << 24)
V_MAX = float((1 << 23) - 1)


def _graph(model: Union[str, Graph]) -> Graph:
    if isinstance(model, Graph):
        return ensure_compiled(model)
    if str(model).endswith(".snnc"):
        return artifact.load(model)
    from .api import import_model       # an .onnx/.net path: compile it first
    return ensure_compiled(import_model(model))


def _check(graph: Graph) -> None:
    for name, node in graph.nodes.items():
        if not isinstance(node, TWIN_NODES):
            raise SnncError(f"twin: node {name!r} ({type(node).__name__}) is not supported yet; the twin "
                            "takes Dense, Conv2d, SumPool2d, Flatten, Delay and CubaLIF graphs")
        if isinstance(node, Input) and node.kind not in ("spikes", "graded"):
            raise SnncError(f"twin: input {name!r} is {node.kind!r}; the twin takes spike and graded inputs")
        if isinstance(node, CubaLIF) and node.graded:
            raise SnncError(f"twin: population {name!r} sends graded spikes; not supported yet")
    if len(graph.inputs) != 1:
        raise SnncError(f"twin: the graph must have one input, has {graph.inputs}")


def _reads_graded_input(net: Network, c: Connection) -> bool:
    """Connection ``c`` reads a graded Input (the quantization pass checked: a Dense reading only
    it, directly)."""
    pops = [net.populations[s.pop] for s in c.sources]
    return bool(pops) and all(p.kind == "input" and p.node.kind == "graded" for p in pops)


def _check_lowered(net: Network) -> None:
    for c in net.connections:
        if c.synapse is not None and getattr(c.fixed, "num_message_bits", 0) and not _reads_graded_input(net, c):
            raise SnncError(f"twin: synapse {c.name!r} reads graded spikes from a population; not supported yet")
        if c.synapse is None:
            raise SnncError(f"twin: population {c.dst!r} is fed by {c.sources[0].pop!r} without a synapse; "
                            "not supported")
    host = [n for n, kind, _, _ in net.outputs[0].program if kind == "synapse"]
    if host:
        raise SnncError(f"twin: output {net.graph.outputs[0]!r} reads synapses {host} on the host; not supported")


def _delayed(hist, steps: np.ndarray, t: int, shape):
    """The values of ``hist`` (one tensor per step, up to step t) ``steps`` steps ago, per
    neuron (``steps`` over ``shape[1:]``); zeros before the first step."""
    import torch  # lazy: heavy
    out = None
    for d in np.unique(steps):
        if t - d < 0:
            continue
        src = hist[t - d]
        if np.all(steps == d):
            return src
        mask = torch.as_tensor(np.broadcast_to(steps == d, shape[1:]).copy())
        out = torch.where(mask, src, torch.zeros(shape, dtype=torch.float64) if out is None else out)
    return torch.zeros(shape, dtype=torch.float64) if out is None else out


class _MantissaSTE:
    """Lava's 8-bit weight rules on ``x = W k / 2**e`` with a straight-through gradient."""

    @staticmethod
    def apply(x):
        import torch  # lazy: heavy
        xd = x.detach()
        if bool(torch.all(xd >= 0)):
            lo, hi, step = 0.0, 255.0, 1.0
        elif bool(torch.all(xd <= 0)):
            lo, hi, step = -255.0, 0.0, 1.0
        else:
            lo, hi, step = -256.0, 254.0, 2.0
        q = torch.clamp(torch.round(xd / step) * step, lo, hi)
        return x + (q - x).detach()


def _ste(x, y):
    """``y`` in the forward, the gradient of ``x`` in the backward."""
    return x + (y - x).detach()


def _decay_factor(decay):
    """``(4096 - decay) / 4096``: a float, or a float64 tensor of per-neuron decays."""
    import torch  # lazy: heavy
    a = (4096 - np.asarray(decay, np.int64)) / 4096.0
    return float(a) if a.ndim == 0 else torch.as_tensor(a, dtype=torch.float64)


def _trunc(x):
    import torch  # lazy: heavy
    return torch.where(x >= 0, torch.floor(x), torch.ceil(x))


def make_twin(model: Union[str, Graph], surrogate=None, detach_reset: bool = True):
    """``snnc.twin``: the bit-exact torch twin of a compiled graph (or a model path)."""
    import torch  # lazy: heavy

    from .nn.surrogates import Rectangular, spike

    class Twin(torch.nn.Module):
        """Loihi 2 integer dynamics of ``graph`` as a torch module (see the ``snnc.loihi_twin`` module doc).

        ``forward(x)``: spikes (a graded input: real values, rounded to its grid) ``(N,
        *input_shape, T)`` -> the first Output ``(N, *shape, T)`` (float64); ``self.spikes`` then
        holds every spiking population's spikes, ``self.membranes`` their membranes as tested
        against the threshold (``(v - pending reset) / S``, threshold units: snnTorch's ``mem``) and
        ``self.readouts`` every CubaLI read-out's values ``(N, *shape, T)``."""

        def __init__(self, graph: Graph):
            super().__init__()
            _check(graph)
            net = lower(graph)
            _check_lowered(net)
            self.graph, self.net = graph, net
            self.shapes = net.shapes
            self._dst = {c.name: c.dst for c in net.connections}
            self.surrogate = surrogate or Rectangular(1.0)
            self.detach_reset = bool(detach_reset)
            self.weights = torch.nn.ParameterDict()
            self._key: Dict[str, str] = {}
            self.spikes: Dict[str, torch.Tensor] = {}
            self.membranes: Dict[str, torch.Tensor] = {}
            self.state_scale = {p.name: p.state_scale for p in net.populations.values() if p.kind != "input"}
            self.readouts: Dict[str, torch.Tensor] = {}
            self.graded = graph.nodes[graph.inputs[0]].kind == "graded"   # analog input: graded spikes
            self.frac_bits = {c.name: input_frac_bits(graph, c.name) for c in net.connections
                              if c.synapse is not None and _reads_graded_input(net, c)}   # k (may be 0)
            for c in net.connections:
                if isinstance(c.synapse, (Dense, Conv2d)) and c.name not in self._key:
                    key = re.sub(r"\W", "_", c.name)
                    while key in self.weights:
                        key += "_"
                    self._key[c.name] = key
                    self.weights[key] = torch.nn.Parameter(torch.tensor(np.asarray(c.synapse.weight, np.float64)))
            for name in self._key:            # the twin starts as the compiled graph, exactly
                m = self.mantissas(name).detach().numpy()
                if not np.array_equal(m, np.asarray(graph.fixed[name].weight, np.float64)):
                    raise SnncError(f"twin: synapse {name!r}: the fixed view is not the quantization of its "
                                    "float weights; compile the graph again")

        # ------------------------------------------------------------------ parameters
        def w_scale(self, syn: str) -> int:
            return self.state_scale[self._dst[syn]] // 64

        def mantissas(self, syn: str):
            """The 8-bit weight mantissas of ``syn`` (straight-through gradient to its weight)."""
            w = self.weights[self._key[syn]]
            return _MantissaSTE.apply(w * float(self.w_scale(syn)) / (2.0 ** self.mantissa_exp(syn)))

        def mantissa_exp(self, syn: str) -> int:
            """The exponent ``e`` of ``W k / 2**e``: the fixed view's ``weight_exp`` plus the graded
            input's ``frac_bits`` (a synapse reading one has ``weight_exp = e - frac_bits``)."""
            return int(self.graph.fixed[syn].own_weight_exp)

        # ------------------------------------------------------------------ dynamics
        def _synapse(self, name, x, m):
            node, fx = self.graph.nodes[name], self.graph.fixed[name]
            if isinstance(node, Dense):
                a = x @ m[name].T
                if name in self.frac_bits:          # graded: (m @ x_int) >> (k - e), a floor
                    a = a * (2.0 ** int(fx.weight_exp))
                    return _ste(a, torch.floor(a.detach()))
                return a * float(2 ** int(fx.weight_exp)) if fx.weight_exp else a
            if isinstance(node, SumPool2d):
                c = x.shape[1]
                w = torch.full((c, 1) + tuple(_pair(node.kernel)), float(fx.weight), dtype=torch.float64)
                a = torch.nn.functional.conv2d(x, w, None, _pair(node.stride), _pair(node.padding), 1, c)
            else:
                a = torch.nn.functional.conv2d(x, m[name], None, _pair(node.stride),
                                               _pair(node.padding), _pair(node.dilation), int(node.groups))
            return _ste(a, torch.clamp(a.detach(), -HALF, HALF - 1))        # Lava Conv: 24-bit clamp

        def _integrate(self, fx, a, st):
            """u and v of one step before the threshold (Loihi CUBA integers)."""
            u = st["u"] * _decay_factor(fx.decay_u)
            u = _ste(u, _trunc(u.detach())) + a * 64.0
            ud = u.detach()
            u = _ste(u, torch.where(ud > HALF, ud - WRAP, torch.where(ud <= -HALF, ud + WRAP, ud)))
            v = st["v"] * _decay_factor(fx.decay_v)
            bias = np.asarray(fx.bias_mant, np.int64) << int(fx.bias_exp)
            return u, _ste(v, _trunc(v.detach())) + u + torch.as_tensor(bias.astype(np.float64))

        def _readout(self, name, a, st):
            u, v = self._integrate(self.graph.fixed[name], a, st)
            v = _ste(v, torch.clamp(v.detach(), -V_MAX, V_MAX))
            st["u"], st["v"] = u, v
            return v * (1.0 / float(self.state_scale[name]))

        def _neuron(self, name, a, st, t):
            node, fx = self.graph.nodes[name], self.graph.fixed[name]
            if node.reset_interval and t % node.reset_interval == node.reset_offset % node.reset_interval:
                st["u"], st["v"] = torch.zeros_like(st["u"]), torch.zeros_like(st["v"])
            vth = torch.as_tensor((np.asarray(fx.vth, np.int64) << 6).astype(np.float64))
            carry = (vth * (st["v"].detach() > vth)) if node.reset == "subtract_snntorch" else 0.0
            u, v = self._integrate(fx, a, st)
            if node.delayed_subtract:
                v = v - vth * (st["s"].detach() if self.detach_reset else st["s"])
            v = _ste(v, torch.clamp(v.detach(), -V_MAX, V_MAX))
            if fx.refractory:
                held = st["ref"] > 0
                v = torch.where(held, torch.zeros_like(v), v)
                st["ref"] = torch.clamp(st["ref"] - 1, min=0)
            S = float(self.state_scale[name])
            st["m"] = (v - carry) * (1.0 / S)
            s = spike((v - carry - vth) / S, self.surrogate, ">")
            r = s.detach() if self.detach_reset else s
            if node.reset == "zero":
                v = v * (1 - r)
            elif (node.reset == "subtract" and not node.reset_delay) or node.reset == "subtract_snntorch":
                v = v - vth * r
            if fx.refractory:
                st["ref"] = torch.where(s.detach() > 0, torch.full_like(st["ref"], int(fx.refractory)), st["ref"])
            st["u"], st["v"], st["s"] = u, v, s
            return s

        def forward(self, x):
            x = torch.as_tensor(x, dtype=torch.float64)
            net = self.net
            n, steps = x.shape[0], x.shape[-1]
            want = (n,) + tuple(self.shapes[net.graph.inputs[0]]) + (steps,)
            if tuple(x.shape) != want:
                raise SnncError(f"twin: input shape {tuple(x.shape)}, expected {want} (N, *shape, T)")
            mant = {k: self.mantissas(k) for k in self._key}         # once per forward
            if self.graded:
                x = self._graded_messages(x, mant)
            elif not bool(torch.all((x == 0) | (x == 1))):
                raise SnncError("twin: the input must be binary spikes (0/1)")
            state = {p.name: self._state((n,) + p.shape) for p in net.neurons}
            hist: Dict[str, list] = {p: [] for p in net.populations}  # every population's output per step
            mem: Dict[str, list] = {p.name: [] for p in net.neurons if p.kind == "lif"}
            host: Dict[str, list] = {}                                # the output's delays
            outs = []
            for t in range(steps):
                for name in net.order:
                    p = net.populations[name]
                    if p.kind == "input":
                        hist[name].append(x[..., t])
                        continue
                    a = sum((self._connection(c, t, hist, mant, n) for c in net.into(name)), 0.0)
                    step = self._neuron(name, a, state[name], t) if p.kind == "lif" else \
                        self._readout(name, a, state[name])
                    hist[name].append(step)
                    if name in mem:
                        mem[name].append(state[name]["m"])
                outs.append(self._output(net.outputs[0], t, hist, host, n))
            self.spikes = {p.name: torch.stack(hist[p.name], -1) for p in net.populations.values()
                           if p.kind == "lif"}
            self.membranes = {p: torch.stack(v, -1) for p, v in mem.items()}
            self.readouts = {p.name: torch.stack(hist[p.name], -1) for p in net.populations.values()
                             if p.kind == "li"}
            return torch.stack(outs, -1)

        def _graded_messages(self, x, mant):
            """The host's integer graded spikes ``round(x * 2**k)`` (half to even, as
            ``quantize.graded_messages``), refusing non-finite values, messages beyond 24 bits and
            sums ``|m| @ |x_int|`` that could overflow Lava's int32 accumulator (current mantissas)."""
            name = self.graph.inputs[0]
            k = int(self.graph.nodes[name].frac_bits)
            if not bool(torch.all(torch.isfinite(x))):
                raise SnncError(f"twin: graded input {name!r}: values must be finite (found NaN or inf)")
            xi = torch.round(x * float(1 << k))
            if bool(torch.any(xi.abs() >= float(1 << (GRADED_MESSAGE_BITS - 1)))):
                raise SnncError(f"twin: graded input {name!r}: |x| * 2**{k} must be below "
                                f"2**{GRADED_MESSAGE_BITS - 1} (Loihi graded spike payload)")
            ax = xi.abs().movedim(-1, 1).reshape(-1, xi.shape[1])            # (N*T, C)
            for syn in self.frac_bits:
                if ax.numel():
                    bound = float((ax @ mant[syn].detach().abs().T).max())
                    if bound >= ACC_LIMIT:
                        raise SnncError(f"twin: graded input {name!r}: sum |W| * |x| * 2**{k} into synapse "
                                        f"{syn!r} can reach {int(bound)} >= 2**31 (Lava's int32 "
                                        "accumulator); lower frac_bits or scale the input")
            return xi

        @staticmethod
        def _state(shape) -> dict:
            zeros = lambda dtype=torch.float64: torch.zeros(shape, dtype=dtype)
            return dict(u=zeros(), v=zeros(), s=zeros(), ref=zeros(torch.int64))

        def _connection(self, c: Connection, t: int, hist, mant, n: int):
            """What connection ``c`` adds to its population at step t (lowered network's equation):
            per distinct post-synaptic delay d, the synapse of the sources' (delayed, flattened)
            outputs at t - d."""
            out = None
            for d in np.unique(c.post_delay):
                x = sum(self._source(s, t - int(d), hist, n) for s in c.sources)
                a = self._synapse(c.name, x, mant) if t - d >= 0 else \
                    torch.zeros((n,) + c.out_shape, dtype=torch.float64)
                if np.all(c.post_delay == d):
                    out = a
                    break
                mask = torch.as_tensor(np.broadcast_to(c.post_delay == d, c.out_shape).copy())
                out = torch.where(mask, a, torch.zeros_like(a) if out is None else out)
            return out.reshape(n, -1) if c.post_flatten else out

        def _source(self, s, t: int, hist, n: int):
            shape = (n,) + tuple(self.shapes[s.pop])
            v = _delayed(hist[s.pop], s.delay, t, shape) if t >= 0 else torch.zeros(shape, dtype=torch.float64)
            return v.reshape(n, -1) if s.flatten else v

        def _output(self, o, t: int, hist, host, n: int):
            """Output ``o``'s value at step t: its host program (delays, flatten, sums)."""
            val = {}
            for name, kind, arg, preds in o.program:
                if kind == "pop":
                    val[name] = hist[name][t]
                    continue
                v = sum(val[p] for p in preds)
                if kind == "delay":
                    host.setdefault(name, []).append(v)
                    v = _delayed(host[name], arg, t, tuple(v.shape))
                elif kind == "flatten":
                    v = v.reshape(n, -1)
                val[name] = v
            return val[o.name]

        # ------------------------------------------------------------------ back to a graph
        def to_graph(self) -> Graph:
            """The graph of the current weights, compiled, with S, the weight exponents and the
            threshold mantissas pinned: it runs exactly as this twin does."""
            g = self.graph.copy()
            g.metadata = copy.deepcopy(dict(g.metadata))
            for name, key in self._key.items():
                w = self.weights[key].detach().numpy().astype(np.float64).copy()
                g.nodes[name] = dataclasses.replace(g.nodes[name], weight=w)
            g.metadata["scales"] = dict(
                state_scale=dict(self.state_scale),
                weight_exp={s: self.mantissa_exp(s) for s in self._key},
                vth={p: (int(self.graph.fixed[p].vth) if np.ndim(self.graph.fixed[p].vth) == 0
                         else np.asarray(self.graph.fixed[p].vth).astype(int).tolist())
                     for p in self.state_scale if isinstance(self.graph.nodes[p], CubaLIF)})
            g.fixed = {}
            for k in ("quantization", "state_scale"):
                g.metadata.pop(k, None)
            out = quantize(g)
            out.metadata["twin"] = dict(fine_tuned=True)
            return out

    return Twin(_graph(model))
