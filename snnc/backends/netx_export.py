"""Write a compiled IR graph as a lava-dl netx HDF5 network (``.net``).

The file holds the graph's Loihi fixed-point view (``Graph.fixed``) in netx's integers:
weights as a_in integers (mantissa << exponent), ``bias`` in units of 64 (netx applies
``bias_mant << 6``), ``vThMant``, ``iDecay``/``vDecay``. Shapes are written in SLAYER's
(C, H, W) order, as slayer's ``export_hdf5`` does (netx reverses them to (x, y, f)).

Only a chain can be written (netx files are a sequence of layers):
``Input -> [Delay] [Flatten] synapse -> CubaLIF [+ recurrent Dense] -> [Delay] ... -> [Average] -> Output``,
read from the lowered network (``snnc.compiler.lower``): one connection per layer, each from the
previous layer's population alone, and the Output's host program at the end.

Timing. netx gives every synapse a one-step latency and puts a layer's ``delay`` (per output
neuron / channel) on top of it. So the delay between population i and the next synapse must be
1 + d_i (d_i >= 0 becomes layer i's ``delay``); what the input path lacks or has in excess of one
step is moved to the last layer's ``delay``, which shifts the whole output in time and nothing
else. Graphs imported from ``.net`` or exported from SLAYER map exactly. A SLAYER-timed graph
(no latency on the input synapse) with a non-zero bias runs in netx with Lava's leading
bias-only step per layer: the file is written, with a warning, since netx cannot express it.

Sigma-delta graphs (SDNN) are written in netx's SDNN form (see :func:`_export_sdnn`):
``Input -> Delta -> [Delay(1) [Flatten] Dense|Conv2d -> SigmaDelta]* -> Delay(1) [Flatten]
Dense|Conv2d -> SigmaDelta|Sigma -> Output``: the Delta is the ``input`` layer, every other node a
layer with neuron ``type`` SDNN, ``vThMant``, ``bias`` and, for a Sigma, ``sigma_output``.
"""
from __future__ import annotations

import os
import warnings
from typing import List, Optional, Tuple

import numpy as np

from ..compiler.fixed import FixedCubaLIF, FixedSynapse, state_scale as fixed_state_scale
from ..compiler.ir import Conv2d, CubaLIF, Delay, Dense, Flatten, Graph, Sigma, SigmaDelta
from ..compiler.lower import Connection, Network, lower
from ..compiler.pipeline import ensure_compiled
from ..errors import SnncError

SDNN_KINDS = ("delta", "sigma_delta", "sigma")


def _err(name: str, msg: str) -> SnncError:
    return SnncError(f"export-net: node {name!r}: {msg}")


def _next(net: Network, cur: str) -> Optional[Connection]:
    """The one connection out of ``cur`` (its recurrent ones aside), or None where an Output reads
    it; refuses branches and a chain that ends without an Output."""
    outs = [c for c in net.out_of(cur) if c.dst != cur]
    reads = net.readers(cur)
    if len(outs) + len(reads) > 1:
        raise _err(cur, f"feeds {[c.name for c in outs] + reads}; a netx file is a chain of layers (no branches)")
    if not outs and not reads:
        raise _err(cur, "the chain ends without an Output")
    return outs[0] if outs else None


def _source(net: Network, c: Connection):
    """The one source of connection ``c`` (netx layers read the previous layer only)."""
    if len(c.sources) != 1:
        raise _err(c.name, f"reads {[s.pop for s in c.sources]}; netx layers have one input")
    return c.sources[0]


def _recurrent(net: Network, pop: str) -> List[Connection]:
    """The recurrent connection of ``pop`` (pop -> Delay(1) -> Dense -> pop), at most one."""
    rec = [c for c in net.into(pop) if any(s.pop == pop for s in c.sources)]
    for c in rec:
        src = _source(net, c)
        if not isinstance(c.synapse, Dense):
            raise _err(pop, "only dense layers can be recurrent in a netx file")
        if c.path or src.flatten or np.any(src.delay != 1):
            d = next((n for n in src.path if isinstance(net.graph.nodes[n], Delay)), c.name)
            raise _err(d, "a recurrent connection with a delay other than one step cannot be written "
                          "(netx's dense_rec has exactly one)")
    if len(rec) > 1:
        raise _err(pop, f"has {len(rec)} recurrent connections {[c.name for c in rec]}; netx's dense_rec has one")
    return rec


def _refuse_neurons(net: Network) -> None:
    """Populations a .net file cannot hold: CubaLI read-outs, populations without input."""
    for p in net.populations.values():
        if p.kind == "li":
            raise _err(p.name, "a non-spiking leaky-integrator read-out (CubaLI) cannot be written: netx "
                               "has no such layer")
        if p.kind == "lif" and not net.into(p.name) and not p.bias_inputs:
            raise _err(p.name, "a bias-driven population without input cannot be written: a netx file is "
                               "a chain of layers from its input")


def export_netx(graph: Graph, path: str) -> List[str]:
    """Write ``graph`` (quantized) to ``path`` as a netx ``.net`` file; returns warnings."""
    g = ensure_compiled(graph)
    if len(g.inputs) != 1 or len(g.outputs) < 1:
        raise SnncError("export-net: netx files have exactly one input")
    net = lower(g)
    if any(p.kind in SDNN_KINDS for p in net.populations.values()):
        return _export_sdnn(net, path)
    return _export_cuba(net, path)


def _export_cuba(net: Network, path: str) -> List[str]:
    """Write a CUBA chain (module doc); returns warnings."""
    _refuse_neurons(net)
    w = _Writer(net)
    layers, cur, input_lag = _cuba_input(net, w)
    while True:
        c = _next(net, cur)
        if c is None:
            break
        input_lag = _gap(net, c, layers, input_lag)
        layers.extend(_cuba_layer(net, w, c))
        cur = c.dst
    final_delay, tail = _cuba_tail(net, cur)
    layers.extend(tail)
    _shift_output(net, layers, cur, final_delay, input_lag)
    if input_lag == 0 and any(np.any(np.asarray(p.node.bias)) for p in net.populations.values() if p.kind == "lif"):
        w.warnings.append("the graph has SLAYER timing and non-zero biases: netx/Lava run one "
                          "bias-only step per layer before the input arrives, so its spikes can "
                          "differ at the start")
    _write(path, layers, net.graph.metadata)
    for m in w.warnings:
        warnings.warn(m)
    return w.warnings


def _cuba_input(net: Network, w: "_Writer") -> Tuple[List[dict], str, Optional[int]]:
    """The input layer: (layers, the chain's first node, input lag or None). A bias input drives
    netx's input population (a layer like the others: lag 1); a spike input is the data (its lag,
    the steps before the first synapse, is read at that synapse)."""
    inp = net.graph.inputs[0]
    node = net.populations[inp].node
    if node.kind != "bias":
        return [dict(type="input", shape=tuple(node.shape))], inp, None
    driven = [p for p in net.populations.values() if inp in p.bias_inputs]
    if len(driven) != 1 or net.out_of(inp) or net.readers(inp):
        raise _err(inp, "a bias input must drive one CubaLIF population")
    pop = driven[0]
    if net.into(pop.name) or len(pop.bias_inputs) > 1:
        raise _err(pop.name, "an input population driven by bias cannot also take synaptic input")
    neuron, _ = w.neuron(pop.name, pop.node)
    layer = dict(type="input", shape=net.shapes[pop.name], neuron=neuron)
    for k, v in ((net.graph.metadata or {}).get("netx_input_transform") or {}).items():
        layer[k] = np.array([v], np.float32)     # netx's (unused) input transform
    return [layer], pop.name, 1


def _refuse_delay_after_flatten(net: Network, path) -> None:
    flat = False
    for n in path:
        if isinstance(net.graph.nodes[n], Flatten):
            flat = True
        elif flat:
            raise _err(n, "a delay after a flatten cannot be written")


def _gap(net: Network, c: Connection, layers: List[dict], input_lag: Optional[int]) -> int:
    """The delay in front of synapse ``c``: 1 step is netx's synapse latency, the rest is the
    previous layer's axonal delay (written on it); before the first synapse it is the input lag."""
    src = _source(net, c)
    _refuse_delay_after_flatten(net, src.path)
    if input_lag is None:
        if np.unique(src.delay).size > 1:
            raise _err(c.name, "per-neuron delays on the input cannot be written")
        return int(np.max(src.delay))
    extra = src.delay - 1
    if np.any(extra < 0):
        raise _err(c.name, "no delay between two layers: netx's synapses always take one step")
    d = _delay_field(extra, net.shapes[src.pop])
    if d is not None:
        layers[-1]["delay"] = d
    return input_lag


def _cuba_layer(net: Network, w: "_Writer", c: Connection) -> List[dict]:
    """[flatten,] the layer of connection ``c``: its synapse and its CubaLIF population."""
    src, n = _source(net, c), c.synapse
    if n is None:
        raise _err(c.dst, "is fed without a synapse; a netx layer is a synapse into its neurons")
    pop = net.populations[c.dst]
    if c.path or pop.kind != "lif":
        raise _err(c.name, "a synapse must feed a CubaLIF population")
    rec = _recurrent(net, pop.name)
    others = [o.name for o in net.into(pop.name) if o is not c and o not in rec] + list(pop.bias_inputs)
    if others:
        raise _err(pop.name, f"takes input from {others} besides {c.name!r}; netx layers have one input")
    neuron, bias = w.neuron(pop.name, pop.node)
    layer = dict(shape=pop.shape, neuron=neuron)
    if bias is not None:
        layer["bias"] = bias
    layer.update(_synapse_fields(w, c.name, n))
    if rec:
        if not isinstance(n, Dense):
            raise _err(pop.name, "only dense layers can be recurrent in a netx file")
        layer["type"] = "dense_rec"
        layer["weight_rec"] = w.weight(rec[0].name, allow_exp=True)
    flat = [dict(type="flatten", shape=(int(np.prod(net.shapes[src.pop])), 1, 1))] if src.flatten else []
    return flat + [layer]


def _synapse_fields(w: "_Writer", syn: str, n) -> dict:
    """A dense, conv or pool layer's synapse datasets."""
    if isinstance(n, Dense):
        wt = w.weight(syn, allow_exp=True)
        return dict(type="dense", weight=wt, inFeatures=wt.shape[1], outFeatures=wt.shape[0])
    if isinstance(n, Conv2d):
        wt = w.weight(syn, allow_exp=False)
        return dict(type="conv", weight=wt, inChannels=wt.shape[1] * n.groups, outChannels=wt.shape[0],
                    kernelSize=np.array(wt.shape[2:]), stride=np.array(n.stride),
                    padding=np.array(n.padding), dilation=np.array(n.dilation), groups=n.groups)
    fx = w.fixed(syn)
    wv = int(np.asarray(fx.weight).reshape(-1)[0]) << max(fx.weight_exp, 0)
    return dict(type="pool", weight=np.full((1, 1) + tuple(n.kernel), wv, np.float32),
                kernelSize=np.array(n.kernel), stride=np.array(n.stride),
                padding=np.array(n.padding), dilation=np.array([1, 1]))


def _cuba_tail(net: Network, cur: str) -> Tuple[np.ndarray, List[dict]]:
    """The Output's host program after the last population ``cur``: Delays (their sum over
    ``cur``'s shape, moved to the last layer), a Flatten, an Average layer."""
    (o,) = [o for o in net.outputs if cur in o.pops]
    steps = np.zeros(net.shapes[cur], np.int64)
    flatten, average, tail = False, None, []
    for name, kind, arg, preds in o.program:
        if kind == "pop":
            if name != cur:
                raise _err(o.name, f"reads {o.pops}; a netx file is a chain of layers ending in one Output")
            continue
        if len(preds) > 1:
            raise _err(name, f"sums {list(preds)}; a netx file is a chain of layers (no branches)")
        if average is not None and kind != "output":
            raise _err(average, "an average must feed the Output directly")
        if kind == "delay":
            if flatten:
                raise _err(name, "a delay after a flatten cannot be written")
            steps = steps + arg
        elif kind == "flatten":
            flatten = True
        elif kind == "average":
            if flatten:
                raise _err(name, "a flatten before an average cannot be written")
            average = name
            tail.append(dict(type="average", shape=(arg, 1, 1)))
        elif kind == "synapse":
            raise _err(name, "a synapse must feed a CubaLIF population")
    return steps, tail


def _shift_output(net: Network, layers: List[dict], cur: str, final_delay: np.ndarray,
                  input_lag: Optional[int]) -> None:
    """What the input path lacks or has beyond netx's one step, with the Output's delays, goes to
    the last layer's ``delay`` (it shifts the whole output in time and nothing else)."""
    if input_lag is None:
        raise SnncError("export-net: the graph has no synapse")
    shift = final_delay + input_lag - 1
    if np.any(shift < 0):
        raise SnncError("export-net: the graph has no latency between its input and the first "
                        "synapse nor after the last layer; netx adds one step there, so the file "
                        "would run one step late")
    if np.any(shift):
        last = [l for l in layers if l["type"] not in ("average", "flatten")][-1]
        if "neuron" in last and last["type"] != "input":
            d = _delay_field(shift, net.shapes[cur])
            if d is not None:
                last["delay"] = d


class _Writer:
    def __init__(self, net: Network):
        self.g = net.graph
        self.shapes = net.shapes
        self.layers: List[dict] = []
        self.warnings: List[str] = []

    def fixed(self, name):
        fx = self.g.fixed.get(name)
        if fx is None:
            raise _err(name, "has no fixed-point view; compile (quantize) the graph first")
        return fx

    def neuron(self, name: str, node: CubaLIF) -> Tuple[dict, Optional[np.ndarray]]:
        fx: FixedCubaLIF = self.fixed(name)
        if node.refractory or fx.refractory:
            raise _err(name, "refractory periods cannot be written: netx ignores neuron/refDelay")
        if node.graded:
            raise _err(name, "graded CUBA spikes cannot be written")
        if node.reset != "zero":
            raise _err(name, f"reset {node.reset!r} cannot be written: netx's CUBA neuron resets v to 0 "
                             "(run it with snnc's Lava models, or on hardware as a custom neuron program)")
        bias = np.asarray(fx.bias_mant, dtype=np.int64) << int(fx.bias_exp)
        if np.any(bias % 64):
            raise _err(name, "bias is not a multiple of 64 state units: netx applies bias << 6 "
                             "and cannot express it")
        neuron = {"type": "CUBA", "iDecay": int(fx.decay_u), "vDecay": int(fx.decay_v),
                  "vThMant": int(np.max(fx.vth)), "refDelay": 1, "gradedSpike": False}
        if np.ndim(fx.vth) and np.unique(fx.vth).size > 1:
            raise _err(name, "per-neuron thresholds cannot be written (netx has one vThMant per layer)")
        if node.reset_interval:
            msg = (f"periodic resets (every {node.reset_interval} steps) are not stored in .net "
                   "files; pass reset_interval to netx.hdf5.Network")
            if msg not in self.warnings:
                self.warnings.append(msg)
        b = bias // 64
        if not np.any(b):
            return neuron, None
        shape = self.shapes[name]
        b = np.broadcast_to(b, shape)
        if len(shape) == 3 and np.all(b == b[:, :1, :1]):
            b = b[:, 0, 0]                                  # netx's per-channel bias
        return neuron, b.reshape(-1).astype(np.float32)

    def weight(self, name: str, allow_exp: bool) -> np.ndarray:
        fx: FixedSynapse = self.fixed(name)
        w = np.asarray(fx.weight, dtype=np.int64)
        if fx.weight_exp:
            if not allow_exp:
                raise _err(name, "convolution weights with an exponent cannot be written")
            w = w << fx.weight_exp if fx.weight_exp > 0 else w >> -fx.weight_exp
        lo, hi = (-256, 254) if (w.min() < 0 < w.max()) else (-256, 255)
        if w.min() < lo or w.max() > hi:
            raise _err(name, f"weights {w.min()}..{w.max()} exceed netx's 8-bit range [{lo}, {hi}]")
        return w.astype(np.float32)


def _delay_field(steps: np.ndarray, shape) -> Optional[np.ndarray]:
    steps = np.broadcast_to(steps, shape)
    if not np.any(steps):
        return None
    if len(shape) == 3 and np.all(steps == steps[:, :1, :1]):
        return steps[:, 0, 0].astype(np.float32)
    return steps.reshape(-1).astype(np.float32)


def _write(path: str, layers: List[dict], meta: dict):
    import h5py
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as h:
        for i, L in enumerate(layers):
            grp = h.create_group(f"layer/{i}")
            grp.create_dataset("type", (1,), "S10", [L["type"].encode("ascii")])
            grp.create_dataset("shape", data=np.array(L["shape"], dtype=np.int64))
            for k, v in L.items():
                if k in ("type", "shape"):
                    continue
                if k == "neuron":
                    for nk, nv in v.items():
                        if nk == "type":
                            grp.create_dataset("neuron/type", data=nv.encode("ascii"))
                        else:
                            grp.create_dataset(f"neuron/{nk}", data=nv)
                else:
                    grp.create_dataset(k, data=v)
        sim = (meta or {}).get("netx_simulation", {}) or {}
        h.create_dataset("simulation/Ts", data=sim.get("Ts", 1))
        if "tSample" in sim:
            h.create_dataset("simulation/tSample", data=sim["tSample"])
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- sigma-delta
# what netx builds for an SDNN layer (hdf5.py get_neuron_params): Delta / SigmaDelta with
# spike_exp 6 (Network's default) and state_exp 6, ReLU, no cumulative error, state unit 2**-18
NETX_SDNN = dict(spike_exp=6, state_exp=6, state_scale=1 << 18)
NETX_SDNN_MESSAGE_BITS = 16


def _sdnn_neuron(net: Network, name: str) -> dict:
    g = net.graph
    node = g.nodes[name]
    if isinstance(node, Sigma):
        if int(node.state_scale) != NETX_SDNN["state_scale"]:
            raise _err(name, f"state_scale {node.state_scale}: netx's Sigma has 2**18")
        return {"type": "SDNN", "activation": "relu", "sigma_output": True}
    fx = g.fixed.get(name)
    if fx is None:
        raise _err(name, "has no fixed-point view; compile (quantize) the graph first")
    for k in ("spike_exp", "state_exp"):
        if int(getattr(fx, k)) != NETX_SDNN[k]:
            raise _err(name, f"{k} {getattr(fx, k)}: netx's SDNN neurons have {k} {NETX_SDNN[k]} "
                             "(a .net file cannot store another)")
    if fixed_state_scale(g, name) != NETX_SDNN["state_scale"]:
        raise _err(name, f"state_scale {fixed_state_scale(g, name)}: netx's SDNN neurons have 2**18")
    if fx.cum_error:
        raise _err(name, "cumulative error cannot be written: netx's SDNN neurons never use it")
    if isinstance(node, SigmaDelta) and fx.act_mode != "relu":
        raise _err(name, f"activation {fx.act_mode!r} cannot be written: netx runs every SDNN "
                         "layer with ReLU")
    vth = np.asarray(fx.vth, dtype=np.int64)
    if vth.size > 1 and np.unique(vth).size > 1:
        raise _err(name, "per-neuron thresholds cannot be written (netx has one vThMant per layer)")
    return {"type": "SDNN", "activation": "relu", "vThMant": int(vth.reshape(-1)[0])}


def _sdnn_bias(g: Graph, name: str, shape) -> Optional[np.ndarray]:
    fx = g.fixed[name]
    b = np.broadcast_to(np.asarray(fx.bias, dtype=np.int64), shape)
    if not np.any(b):
        return None
    if len(shape) == 3:
        if not np.all(b == b[:, :1, :1]):
            raise _err(name, "per-neuron biases of a conv layer cannot be written (netx's bias is "
                             "per channel)")
        b = b[:, 0, 0]
    return b.reshape(-1).astype(np.float32)


def _export_sdnn(net: Network, path: str) -> List[str]:
    """Write a sigma-delta chain in netx's SDNN format; returns warnings (none so far)."""
    g = net.graph
    w = _Writer(net)
    inp = g.inputs[0]
    if g.nodes[inp].kind != "spikes":
        raise _err(inp, f"a {g.nodes[inp].kind!r} input cannot be written for an SDNN: netx's SDNN "
                        "input layer is a Delta encoder reading the data")
    cur = _sdnn_encoder(net, inp)
    layers: List[dict] = [dict(type="input", shape=net.shapes[cur], neuron=_sdnn_neuron(net, cur))]
    while True:
        c = _next(net, cur)
        if c is None:
            break
        layers.extend(_sdnn_layer(net, w, c, layers[-1]))
        cur = c.dst
    if len(layers) < 2:
        raise SnncError("export-net: the graph has no synapse")
    if [o for o in net.outputs if [n for n, _, _, _ in o.program] != [cur, o.name]]:
        raise SnncError(f"export-net: the Output must read the last sigma-delta node {cur!r} directly")
    _write(path, layers, g.metadata)
    return w.warnings


def _sdnn_encoder(net: Network, inp: str) -> str:
    """The Delta encoder the input feeds directly and alone (netx's SDNN input layer)."""
    links = net.out_of(inp)
    c = links[0] if len(links) == 1 and not net.readers(inp) else None
    if (c is None or c.synapse is not None or net.populations[c.dst].kind != "delta" or c.sources[0].path
            or len(c.sources) != 1 or net.into(c.dst) != [c]):
        raise _err(inp, "must feed exactly one Delta encoder (netx's SDNN input layer)")
    return c.dst


def _sdnn_path(net: Network, c: Connection) -> bool:
    """Checks the wires before synapse ``c``: exactly a Delay of 1 (netx's synapse latency), then
    an optional Flatten; returns whether there is the Flatten."""
    g, src = net.graph, _source(net, c)
    path = src.path
    if not path or not isinstance(g.nodes[path[0]], Delay) or np.any(src.delay != 1) or \
            sum(isinstance(g.nodes[n], Delay) for n in path) != 1:
        raise _err(path[0] if path else c.name, "sigma-delta layers are written with exactly netx's one-step "
                   "synapse latency between them (a Delay of 1); axonal delays cannot be written")
    flatten = len(path) > 1 and isinstance(g.nodes[path[1]], Flatten)
    if len(path) > 1 + flatten or not isinstance(c.synapse, (Dense, Conv2d)):
        at = path[min(len(path) - 1, int(flatten))]
        nxt = path[int(flatten) + 1] if len(path) > 1 + flatten else (c.name if c.synapse is not None else c.dst)
        raise _err(at, f"must feed a Dense or Conv2d synapse, feeds {nxt!r}")
    return flatten


def _sdnn_layer(net: Network, w: "_Writer", c: Connection, prev: dict) -> List[dict]:
    """[flatten,] the SDNN layer of connection ``c`` (its synapse and SigmaDelta/Sigma)."""
    g, syn, n = net.graph, c.name, c.synapse
    flatten = _sdnn_path(net, c)
    cur = c.sources[0].pop
    sfx = w.fixed(syn)
    if not getattr(sfx, "num_message_bits", 0):
        raise _err(syn, "reads binary spikes; netx's SDNN synapses read graded messages")
    if int(sfx.num_message_bits) != NETX_SDNN_MESSAGE_BITS:
        # netx takes a synapse's message width from the previous layer's neuron/messageBits
        prev["neuron"]["messageBits"] = int(sfx.num_message_bits)
    pop = c.dst
    if c.path or net.populations[pop].kind not in ("sigma_delta", "sigma") or net.into(pop) != [c]:
        raise _err(syn, "must be the only input of one SigmaDelta or Sigma")
    shapes = net.shapes
    layer = dict(shape=shapes[pop], neuron=_sdnn_neuron(net, pop))
    if isinstance(g.nodes[pop], SigmaDelta):
        b = _sdnn_bias(g, pop, shapes[pop])
        if b is not None:
            layer["bias"] = b
    if isinstance(n, Dense):
        if len(shapes[cur]) != 1 and not flatten:
            raise _err(syn, "a dense synapse needs a flatten before it")
    elif flatten:
        raise _err(syn, "a Conv2d cannot follow a Flatten")
    layer.update(_synapse_fields(w, syn, n))
    flat = [dict(type="flatten", shape=(int(np.prod(shapes[cur])), 1, 1))] if flatten else []
    return flat + [layer]
