"""Write a compiled IR graph as a lava-dl netx HDF5 network (``.net``).

The file holds the graph's Loihi fixed-point view (``Graph.fixed``) in netx's integers:
weights as a_in integers (mantissa << exponent), ``bias`` in units of 64 (netx applies
``bias_mant << 6``), ``vThMant``, ``iDecay``/``vDecay``. Shapes are written in SLAYER's
(C, H, W) order, as slayer's ``export_hdf5`` does (netx reverses them to (x, y, f)).

Only a chain can be written (netx files are a sequence of layers):
``Input -> [Delay] [Flatten] synapse -> CubaLIF [+ recurrent Dense] -> [Delay] ... -> [Average] -> Output``.

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

from ..compiler.fixed import FixedCubaLIF, FixedSynapse
from ..compiler.ir import (Average, Conv2d, CubaLI, CubaLIF, Delay, Delta, Dense, Flatten, Graph, Output,
                           Sigma, SigmaDelta, SumPool2d)
from ..compiler.pipeline import ensure_compiled
from ..errors import SnncError
from .reference_sdn import has_sigma_delta


def _err(name: str, msg: str) -> SnncError:
    return SnncError(f"export-net: node {name!r}: {msg}")


def _single_next(g: Graph, name: str, skip: Optional[str] = None) -> Optional[str]:
    nxt = [d for d in g.successors(name) if d != skip]
    if len(nxt) > 1:
        raise _err(name, f"feeds {nxt}; a netx file is a chain of layers (no branches)")
    return nxt[0] if nxt else None


def _steps(node: Delay) -> np.ndarray:
    return np.asarray(node.steps, dtype=np.int64)


class _Writer:
    def __init__(self, g: Graph):
        self.g = g
        self.shapes = g.shapes()
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


def _refuse_neurons(g: Graph) -> None:
    """Populations a .net file cannot hold: CubaLI read-outs, populations without input."""
    for name, node in g.nodes.items():
        if isinstance(node, CubaLI):
            raise _err(name, "a non-spiking leaky-integrator read-out (CubaLI) cannot be written: netx "
                             "has no such layer")
        if isinstance(node, CubaLIF) and not g.predecessors(name):
            raise _err(name, "a bias-driven population without input cannot be written: a netx file is "
                             "a chain of layers from its input")


def export_netx(graph: Graph, path: str) -> List[str]:
    """Write ``graph`` (quantized) to ``path`` as a netx ``.net`` file; returns warnings."""
    g = ensure_compiled(graph)
    if len(g.inputs) != 1 or len(g.outputs) < 1:
        raise SnncError("export-net: netx files have exactly one input")
    if has_sigma_delta(g):
        return _export_sdnn(g, path)
    _refuse_neurons(g)
    w = _Writer(g)
    shapes = w.shapes
    inp = g.inputs[0]
    layers: List[dict] = []
    cur = inp
    node = g.nodes[inp]
    # ---- input layer
    if node.kind == "bias":
        pop = _single_next(g, inp)
        if pop is None or not isinstance(g.nodes[pop], CubaLIF):
            raise _err(inp, "a bias input must drive one CubaLIF population")
        if [p for p in g.predecessors(pop) if p != inp]:
            raise _err(pop, "an input population driven by bias cannot also take synaptic input")
        neuron, bias = w.neuron(pop, g.nodes[pop])
        layers.append(dict(type="input", shape=shapes[pop], neuron=neuron))
        for k, v in ((g.metadata or {}).get("netx_input_transform") or {}).items():
            layers[-1][k] = np.array([v], np.float32)     # netx's (unused) input transform
        cur = pop
        input_lag = 1             # the input population is a layer like the others
    else:
        layers.append(dict(type="input", shape=tuple(node.shape)))
        input_lag = None          # steps between the input and the first synapse (netx: 1)
    final_delay = None
    while True:
        if isinstance(g.nodes[cur], CubaLIF):
            # a population's recurrent Dense hangs off it: skip it (written with the population)
            rec = _recurrent(g, cur)
            outs = [d for d in g.successors(cur) if d not in rec]
            if len(outs) > 1:
                raise _err(cur, f"feeds {outs}; a netx file is a chain of layers (no branches)")
            nxt = outs[0] if outs else None
        else:
            nxt = _single_next(g, cur)
        if nxt is None:
            raise _err(cur, "the chain ends without an Output")
        # delays and flatten between cur and the next synapse
        steps = np.zeros((), np.int64)
        flatten = False
        while isinstance(g.nodes[nxt], (Delay, Flatten)):
            if isinstance(g.nodes[nxt], Delay):
                if flatten:
                    raise _err(nxt, "a delay after a flatten cannot be written")
                steps = steps + _steps(g.nodes[nxt])
            else:
                flatten = True
            prev, nxt = nxt, _single_next(g, nxt)
            if nxt is None:
                raise _err(prev, "the chain ends without an Output")
        n = g.nodes[nxt]
        if isinstance(n, Output):
            final_delay = steps
            break
        if isinstance(n, Average):
            if flatten:
                raise _err(nxt, "a flatten before an average cannot be written")
            final_delay = steps
            layers.append(dict(type="average", shape=(n.groups, 1, 1)))
            out = _single_next(g, nxt)
            if out is None or not isinstance(g.nodes[out], Output):
                raise _err(nxt, "an average must feed the Output directly")
            break
        if not isinstance(n, (Dense, Conv2d, SumPool2d)):
            raise _err(nxt, f"{type(n).__name__} cannot be written to a netx file here")
        # the delay in front of this synapse: 1 step is netx's synapse latency, the rest is the
        # previous layer's axonal delay
        if input_lag is None:
            input_lag = steps
            if np.ndim(steps) and np.unique(steps).size > 1:
                raise _err(nxt, "per-neuron delays on the input cannot be written")
            input_lag = int(np.max(steps))
        else:
            extra = steps - 1
            if np.any(extra < 0):
                raise _err(nxt, "no delay between two layers: netx's synapses always take one step")
            d = _delay_field(extra, shapes[cur])
            if d is not None:
                layers[-1]["delay"] = d
        if flatten:
            layers.append(dict(type="flatten", shape=(int(np.prod(shapes[cur])), 1, 1)))
        syn = nxt
        pop = _single_next(g, syn)
        if pop is None or not isinstance(g.nodes[pop], CubaLIF):
            raise _err(syn, "a synapse must feed a CubaLIF population")
        others = [p for p in g.predecessors(pop) if p != syn and p not in _recurrent(g, pop)]
        if others:
            raise _err(pop, f"takes input from {others} besides {syn!r}; netx layers have one input")
        neuron, bias = w.neuron(pop, g.nodes[pop])
        layer = dict(shape=shapes[pop], neuron=neuron)
        if bias is not None:
            layer["bias"] = bias
        if isinstance(n, Dense):
            wt = w.weight(syn, allow_exp=True)
            layer.update(type="dense", weight=wt, inFeatures=wt.shape[1], outFeatures=wt.shape[0])
            rec = _recurrent(g, pop)
            if rec:
                layer["type"] = "dense_rec"
                layer["weight_rec"] = w.weight(rec[-1], allow_exp=True)
        elif isinstance(n, Conv2d):
            wt = w.weight(syn, allow_exp=False)
            layer.update(type="conv", weight=wt, inChannels=wt.shape[1] * n.groups, outChannels=wt.shape[0],
                         kernelSize=np.array(wt.shape[2:]), stride=np.array(n.stride),
                         padding=np.array(n.padding), dilation=np.array(n.dilation), groups=n.groups)
        else:
            fx = w.fixed(syn)
            wv = int(np.asarray(fx.weight).reshape(-1)[0]) << max(fx.weight_exp, 0)
            layer.update(type="pool", weight=np.full((1, 1) + tuple(n.kernel), wv, np.float32),
                         kernelSize=np.array(n.kernel), stride=np.array(n.stride),
                         padding=np.array(n.padding), dilation=np.array([1, 1]))
        if _recurrent(g, pop) and not isinstance(n, Dense):
            raise _err(pop, "only dense layers can be recurrent in a netx file")
        layers.append(layer)
        cur = pop
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
            d = _delay_field(shift, shapes[cur])
            if d is not None:
                last["delay"] = d
    if input_lag == 0 and any(np.any(np.asarray(getattr(g.nodes[p], "bias", 0))) for p in g.nodes
                              if isinstance(g.nodes[p], CubaLIF)):
        w.warnings.append("the graph has SLAYER timing and non-zero biases: netx/Lava run one "
                          "bias-only step per layer before the input arrives, so its spikes can "
                          "differ at the start")
    _write(path, layers, g.metadata)
    for m in w.warnings:
        warnings.warn(m)
    return w.warnings


def _recurrent(g: Graph, pop: str) -> List[str]:
    """Recurrent Dense synapses of ``pop``: pop -> Delay(1) -> Dense -> pop."""
    out = []
    for d in g.successors(pop):
        if isinstance(g.nodes[d], Delay):
            for s in g.successors(d):
                if isinstance(g.nodes[s], Dense) and pop in g.successors(s):
                    if np.any(_steps(g.nodes[d]) != 1):
                        raise _err(d, "a recurrent connection with a delay other than one step "
                                      "cannot be written (netx's dense_rec has exactly one)")
                    out.extend([d, s])
    return out


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


def _sdnn_neuron(g: Graph, name: str) -> dict:
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
    if int(node.state_scale) != NETX_SDNN["state_scale"]:
        raise _err(name, f"state_scale {node.state_scale}: netx's SDNN neurons have 2**18")
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


def _export_sdnn(g: Graph, path: str) -> List[str]:
    """Write a sigma-delta chain in netx's SDNN format; returns warnings (none so far)."""
    w = _Writer(g)
    shapes = w.shapes
    inp = g.inputs[0]
    if g.nodes[inp].kind != "spikes":
        raise _err(inp, f"a {g.nodes[inp].kind!r} input cannot be written for an SDNN: netx's SDNN "
                        "input layer is a Delta encoder reading the data")
    cur = _single_next(g, inp)
    if cur is None or not isinstance(g.nodes[cur], Delta) or g.predecessors(cur) != [inp]:
        raise _err(inp, "must feed exactly one Delta encoder (netx's SDNN input layer)")
    layers: List[dict] = [dict(type="input", shape=shapes[cur], neuron=_sdnn_neuron(g, cur))]
    while True:
        nxt = _single_next(g, cur)
        if nxt is None:
            raise _err(cur, "the chain ends without an Output")
        if isinstance(g.nodes[nxt], Output):
            break
        if not isinstance(g.nodes[nxt], Delay) or np.any(_steps(g.nodes[nxt]) != 1):
            raise _err(nxt, "sigma-delta layers are written with exactly netx's one-step synapse "
                            "latency between them (a Delay of 1); axonal delays cannot be written")
        d = nxt
        nxt = _single_next(g, d)
        flatten = False
        if nxt is not None and isinstance(g.nodes[nxt], Flatten):
            flatten, d = True, nxt
            nxt = _single_next(g, d)
        if nxt is None or not isinstance(g.nodes[nxt], (Dense, Conv2d)):
            raise _err(d, f"must feed a Dense or Conv2d synapse, feeds {nxt!r}")
        syn, n = nxt, g.nodes[nxt]
        sfx = w.fixed(syn)
        if not getattr(sfx, "num_message_bits", 0):
            raise _err(syn, "reads binary spikes; netx's SDNN synapses read graded messages")
        if int(sfx.num_message_bits) != NETX_SDNN_MESSAGE_BITS:
            # netx takes a synapse's message width from the previous layer's neuron/messageBits
            layers[-1]["neuron"]["messageBits"] = int(sfx.num_message_bits)
        pop = _single_next(g, syn)
        if pop is None or not isinstance(g.nodes[pop], (SigmaDelta, Sigma)) or g.predecessors(pop) != [syn]:
            raise _err(syn, "must be the only input of one SigmaDelta or Sigma")
        if flatten:
            layers.append(dict(type="flatten", shape=(int(np.prod(shapes[cur])), 1, 1)))
        neuron = _sdnn_neuron(g, pop)
        layer = dict(shape=shapes[pop], neuron=neuron)
        if isinstance(g.nodes[pop], SigmaDelta):
            b = _sdnn_bias(g, pop, shapes[pop])
            if b is not None:
                layer["bias"] = b
        if isinstance(n, Dense):
            if len(shapes[cur]) != 1 and not flatten:
                raise _err(syn, "a dense synapse needs a flatten before it")
            wt = w.weight(syn, allow_exp=True)
            layer.update(type="dense", weight=wt, inFeatures=wt.shape[1], outFeatures=wt.shape[0])
        else:
            if flatten:
                raise _err(syn, "a Conv2d cannot follow a Flatten")
            wt = w.weight(syn, allow_exp=False)
            layer.update(type="conv", weight=wt, inChannels=wt.shape[1] * n.groups, outChannels=wt.shape[0],
                         kernelSize=np.array(wt.shape[2:]), stride=np.array(n.stride),
                         padding=np.array(n.padding), dilation=np.array(n.dilation), groups=n.groups)
        layers.append(layer)
        cur = pop
    if len(layers) < 2:
        raise SnncError("export-net: the graph has no synapse")
    if [o for o in g.outputs if g.predecessors(o) != [cur]]:
        raise SnncError(f"export-net: the Output must read the last sigma-delta node {cur!r} directly")
    _write(path, layers, g.metadata)
    return w.warnings
