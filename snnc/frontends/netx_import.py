"""Read lava-dl's netx HDF5 network files (``.net``) into the spiking IR.

What a ``.net`` file means is what lava-dl's ``netx.hdf5.Network`` builds and Lava runs
(``fixed_pt``); the graph snnc builds runs, in IR time, exactly that (docs/netx.md):

- every synapse has Lava's one-step latency, written as an explicit ``Delay`` of 1 step in
  front of it (so IR step t is Lava step t + 1, and a non-zero bias shows Lava's leading
  bias-only step just as Lava does);
- an axonal ``delay`` of a layer (one value per output neuron, or per channel for conv and
  pool) delays that layer's *output*, as SLAYER defines it: it is added to the next
  synapse's one-step delay (netx instead delays the layer's own input per neuron, which is the
  same thing when the layer has no bias and no periodic reset);
- an ``input`` layer with a ``neuron`` group takes its data through the neuron bias
  (netx's ``bias_mant``): the graph input is then a ``bias``-kind Input in threshold units,
  i.e. netx's integer ``bias_mant`` divided by 64 (use :func:`bias_input`);
- an ``input`` layer without a neuron is a spike input;
- values in the file are Loihi integers (weights, biases x64, ``vThMant``, 12-bit decays);
  the IR holds floats (weight/64, bias/64, vThMant/64, decay/4096), which quantize back to
  exactly the file's integers;
- shapes in the file are SLAYER's (C, H, W); netx turns them into Lava's (x, y, f) =
  (W, H, C). snnc keeps (C, H, W) for every node and every input/output array (time last);
  :func:`from_xyf` / :func:`to_xyf` convert arrays in netx's layout.

Supported layer types: input, flatten, dense, dense_rec, conv, pool, average; neurons
CUBA/LOIHI (as ``CubaLIF``) and SDNN (sigma-delta, graded spikes: an input layer becomes a
``Delta`` encoder reading the graph input directly, ``sigma_output`` a ``Sigma``, any other
layer a ``SigmaDelta`` with ReLU; state_scale 2**18, spike_exp = state_exp = 6, as netx sets
them; input values are netx's integers / 64, see :func:`sdnn_input`). Anything else raises
``SnncError`` naming the layer.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..compiler.ir import (Average, Conv2d, CubaLIF, Delay, Delta, Dense, Flatten, Graph, Input, Output,
                           ShapeError, Sigma, SigmaDelta, SumPool2d)
from ..errors import SnncError

SUPPORTED = ("input", "flatten", "dense", "dense_rec", "conv", "pool", "average")
NOT_SUPPORTED = {
    "convT": "transposed convolution", "unpool": "unpooling", "concat": "concatenation",
    "dense_comp": "complex (resonate-and-fire) dense",
}
CUBA_TYPES = ("CUBA", "LOIHI")
# netx's neuron for a dense layer without a 'neuron' group (hdf5.py create_dense): a
# non-leaky integrator. Its threshold is written `1 << 18 - 1`, which Python reads as 1 << 17.
NETX_DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}
W_SCALE = 64          # file integers are float values x 64 (SLAYER's w_scale)
STATE_SCALE = 4096    # SLAYER's s_scale / Lava's state unit


# ----------------------------------------------------------------------------- layouts
def from_xyf(x: np.ndarray) -> np.ndarray:
    """netx/Lava (x, y, f[, T]) = (W, H, C[, T]) array -> snnc's (C, H, W[, T]). 1-D unchanged."""
    x = np.asarray(x)
    if x.ndim in (3, 4):
        return np.ascontiguousarray(np.swapaxes(x, 0, 2))
    return x


def to_xyf(x: np.ndarray) -> np.ndarray:
    """snnc (C, H, W[, T]) -> netx/Lava (x, y, f[, T]) (the inverse of :func:`from_xyf`)."""
    return from_xyf(x)


def bias_input(bias_mant: np.ndarray, steps: int, layout: str = "xyf") -> np.ndarray:
    """The graph input for a netx input layer driven through its bias: netx's integer
    ``bias_mant`` (``layout`` 'xyf' as netx takes it, or 'chw') held for ``steps`` steps, in
    threshold units (``bias_mant / 64``), shape (C, H, W, T)."""
    b = np.asarray(bias_mant, dtype=np.float64)
    if layout == "xyf":
        b = from_xyf(b)
    elif layout != "chw":
        raise SnncError(f"bias_input: layout must be 'xyf' or 'chw', got {layout!r}")
    return np.repeat((b / W_SCALE)[..., None], steps, axis=-1)


def sdnn_input(data: np.ndarray, steps: Optional[int] = None, layout: str = "xyf") -> np.ndarray:
    """The graph input of an SDNN network (its input layer is a ``Delta`` encoder): netx's
    integer input (what netx's source sends to ``in_layer.neuron.a_in``), in ``layout`` 'xyf'
    ((x, y, f[, T]), as netx takes it) or 'chw', as values = integers / 64, shape (C, H, W, T).
    ``steps``: repeat a single frame (no time axis, or T = 1) for that many steps, as Lava's
    ``RingBuffer`` source does."""
    x = np.asarray(data, dtype=np.float64)
    if layout == "xyf":
        x = from_xyf(x)
    elif layout != "chw":
        raise SnncError(f"sdnn_input: layout must be 'xyf' or 'chw', got {layout!r}")
    if steps is not None:
        if x.ndim in (2, 4) and x.shape[-1] != 1:
            x = x[..., np.arange(steps) % x.shape[-1]]
        else:
            x = np.repeat(x.reshape(x.shape[:3] if x.ndim >= 3 else x.shape[:1])[..., None], steps, -1)
    return x / W_SCALE


# ----------------------------------------------------------------------------- file access
class _Layer:
    """One ``layer/<i>`` group with checked accessors (errors name the layer)."""

    def __init__(self, path: str, index: int, group):
        self.path, self.index, self.g = path, index, group
        self.type = "?"
        if "type" not in group:
            raise self.err("missing dataset 'type'")
        self.type = _string(group["type"][()])

    def err(self, msg: str) -> SnncError:
        return SnncError(f"{os.path.basename(self.path)}: layer {self.index} ({self.type}): {msg}")

    def has(self, key: str) -> bool:
        return key in self.g

    def array(self, key: str, required: bool = True):
        if key not in self.g:
            if required:
                raise self.err(f"missing dataset {key!r}")
            return None
        return np.asarray(self.g[key][()])

    def ints(self, key: str, n: Optional[int] = None, required: bool = True):
        a = self.array(key, required)
        if a is None:
            return None
        a = _numeric(self, a, key)
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise self.err(f"{key!r} must hold integers, got {a.tolist()}")
        a = a.astype(np.int64)
        if n is not None:
            if a.size == 1:
                a = np.full(n, int(a.flat[0]), np.int64)
            if a.size != n:
                raise self.err(f"{key!r} must have {n} values, got {a.tolist()}")
        return a

    def shape(self) -> Tuple[int, ...]:
        s = self.ints("shape")
        if s.ndim != 1 or s.size not in (1, 3) or np.any(s <= 0):
            raise self.err(f"'shape' must be (N,) or (C, H, W) of positive sizes, got {s.tolist()}")
        return tuple(int(v) for v in s)

    def neuron(self) -> Optional[Dict[str, object]]:
        if "neuron" not in self.g:
            return None
        n = self.g["neuron"]
        out = {}
        for k in n:
            v = n[k][()]
            out[k] = _string(v) if k in ("type", "activation") else v
        return out


def _numeric(L, v, key: str) -> np.ndarray:
    """Dataset ``key`` as float64; a clear error for text or other non-numbers."""
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":
        raise L.err(f"{key!r} must hold numbers, got {a.dtype}")
    return a.astype(np.float64)


def _scalar(L, v, key: str) -> float:
    a = _numeric(L, v, key).reshape(-1)
    if a.size < 1 or not np.isfinite(a[0]):
        raise L.err(f"{key!r} must be a finite number, got {a.tolist()[:3]}")
    return float(a[0])


def _string(v) -> str:
    v = np.asarray(v)
    if v.ndim:
        v = v.reshape(-1)[0]
    v = v.item() if hasattr(v, "item") else v
    return v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)


# ----------------------------------------------------------------------------- import


def _bias_per_neuron(L, b: np.ndarray, shape):
    """A file's bias (integers, a_in units): a scalar, one per channel, or one per neuron ->
    the float bias (threshold units) as a scalar or broadcast to ``shape``."""
    try:
        if b.size == 1:
            return float(b.reshape(-1)[0]) / W_SCALE
        if len(shape) == 3 and b.size == shape[0]:
            return np.ascontiguousarray(np.broadcast_to(b.reshape(-1, 1, 1), shape)) / W_SCALE
        return b.reshape(shape) / W_SCALE
    except ValueError:
        raise L.err(f"bias of {b.size} values fits neither the {shape[0]} channels nor "
                    f"the neurons {tuple(shape)}") from None


class _Builder:
    def __init__(self, path: str, reset_interval: Optional[int], reset_offset: int,
                 input_shape: Optional[Sequence[int]], all_outputs: bool):
        self.path = path
        self.g = Graph()
        self.reset_interval = int(reset_interval or 0)
        self.reset_offset = int(reset_offset)
        self.input_shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
        self.all_outputs = all_outputs
        self.src: Optional[str] = None          # node feeding the next layer
        self.src_shape: Optional[Tuple[int, ...]] = None
        self.src_delay = None                   # axonal delay steps of src (per neuron) or None
        self.flatten = False
        self.n_neuron_layers = 0
        self.pops: List[str] = []
        self.final: Optional[str] = None        # an Average, which ends the chain

    # ---- helpers
    def _spike_input(self, shape):
        self.g.add("input", Input(tuple(shape)))
        self.src, self.src_shape, self.src_delay = "input", tuple(shape), None

    def _ensure_source(self, L: _Layer, want_1d: Optional[int] = None):
        if self.final is not None:
            raise L.err(f"follows an 'average' layer ({self.final}), which must be the last layer")
        if self.src is not None:
            return
        if L.type in ("dense", "dense_rec") and want_1d:
            self._spike_input((want_1d,))
        elif self.input_shape is not None:
            self._spike_input(self.input_shape)
        else:
            raise L.err("the file has no input layer before it; give input_shape=(C, H, W) "
                        "(snnc compile --input-shape C,H,W; SLAYER order; netx's input_shape is (x, y, f) = "
                        "(W, H, C))")

    def _pre(self, L: _Layer, name: str) -> str:
        """Delay (Lava's 1-step synapse latency + the source's axonal delay) and flatten in
        front of the synapse of layer ``name``; returns the node the synapse reads."""
        steps = np.array(1, np.int64) if self.src_delay is None else self.src_delay + 1
        d = self.g.add(f"{name}.delay", Delay(steps), self.src)
        if self.flatten:
            d = self.g.add(f"{name}.flatten", Flatten(), d)
        return d

    def _in_features(self) -> int:
        return int(np.prod(self.src_shape))

    def _check_dense_input(self, L: _Layer, n_in: int):
        if len(self.src_shape) != 1 and not self.flatten:
            raise L.err(f"a dense layer needs 1-D input but the previous layer is "
                        f"{self.src_shape} (C, H, W); the file needs a 'flatten' layer before it")
        if n_in != self._in_features():
            raise L.err(f"weight expects {n_in} inputs but the previous layer has "
                        f"{self._in_features()} neurons {self.src_shape}")

    def _neuron(self, L: _Layer, shape, bias=None, default: bool = False) -> CubaLIF:
        p = L.neuron()
        if p is None:
            if not default:
                raise L.err("missing group 'neuron'")
            p = dict(NETX_DEFAULT_NEURON)
        typ = str(p.get("type", ""))
        if typ == "SDNN":
            return self._sdnn(L, p, shape, bias)
        if typ not in CUBA_TYPES:
            raise L.err(f"neuron type {typ!r} is not supported; snnc reads CUBA/LOIHI neurons")
        for k in ("iDecay", "vDecay", "vThMant"):
            if k not in p:
                raise L.err(f"missing dataset 'neuron/{k}'")
        if bool(np.asarray(p.get("gradedSpike", False)).reshape(-1)[0]):
            raise L.err("graded CUBA spikes (neuron/gradedSpike) are not supported")
        i_decay, v_decay, vth = (_scalar(L, p[k], f"neuron/{k}") for k in ("iDecay", "vDecay", "vThMant"))
        if not (0 <= i_decay <= 4096 and 0 <= v_decay <= 4096) or i_decay % 1 or v_decay % 1:
            raise L.err(f"decays must be integers in [0, 4096], got iDecay {i_decay}, vDecay {v_decay}")
        if not 0 < vth <= 1 << 17 or vth % 1:     # 1 << 17: netx's own default for a layer without
            raise L.err(f"vThMant must be an integer in 1..131072, got {vth}")   # neuron (lava-dl's mnist.net)
        b = 0.0
        if bias is not None:
            b = _bias_per_neuron(L, _numeric(L, bias, "bias"), shape)
        k = self.n_neuron_layers
        self.n_neuron_layers += 1
        return CubaLIF(tuple(shape), current_decay=i_decay / 4096, voltage_decay=v_decay / 4096,
                       threshold=vth / W_SCALE, bias=b, state_scale=STATE_SCALE,
                       reset_interval=self.reset_interval,
                       reset_offset=(self.reset_offset + k) if self.reset_interval else 0)

    def _sdnn(self, L: _Layer, p, shape, bias=None, encoder: bool = False):
        """An SDNN neuron group as netx builds it (hdf5.py get_neuron_params): the input layer a
        ``Delta`` (vth, spike_exp 6, state_exp 6), ``sigma_output`` a ``Sigma``, else a ReLU
        ``SigmaDelta`` (vth, bias, spike_exp 6, state_exp 6). Values are the file's integers / 64."""
        act = str(p.get("activation", "relu")).lower()
        if act != "relu":
            raise L.err(f"SDNN activation {act!r} is not supported: Lava's SigmaDelta has ReLU only "
                        "(netx would silently run this layer as ReLU)")
        if "vThMant" not in p and "sigma_output" not in p:
            raise L.err("missing dataset 'neuron/vThMant'")
        self.n_neuron_layers += 1
        if "sigma_output" in p:
            if encoder:
                raise L.err("an input layer cannot be a sigma_output")
            if bias is not None:
                raise L.err("a sigma_output layer cannot have a bias (Lava's Sigma has none)")
            return Sigma(tuple(shape))
        vth = float(np.asarray(p["vThMant"]).reshape(-1)[0])
        if vth < 0:
            raise L.err(f"vThMant must be >= 0, got {vth}")
        if encoder:
            return Delta(tuple(shape), threshold=vth / W_SCALE)
        b = 0.0
        if bias is not None:
            # netx passes the bias as int32 (truncation toward zero), per channel or per neuron
            b = _bias_per_neuron(L, np.trunc(_numeric(L, bias, "bias")), shape)
        return SigmaDelta(tuple(shape), threshold=vth / W_SCALE, bias=b)

    def _delay(self, L: _Layer, shape, rec: bool = False):
        d = L.array("delay", required=False)
        if d is None:
            return None
        d = _numeric(L, d, "delay")
        if not np.all(np.isfinite(d)) or np.any(d != np.floor(d)) or np.any(d < 0):
            raise L.err(f"'delay' must hold whole steps >= 0, got {d[~np.isfinite(d) | (d != np.floor(d)) | (d < 0)][0]}")
        d = d.astype(np.int64)
        n = int(np.prod(shape))
        if d.size == 1:
            return d.reshape(())
        if d.size == n:
            return d.reshape(shape)
        if len(shape) == 3 and d.size == shape[0]:
            return d.reshape(shape[0], 1, 1)
        raise L.err(f"'delay' has {d.size} values; expected one per output neuron ({n}) "
                    + (f"or per channel ({shape[0]})" if len(shape) == 3 else ""))

    def _finish_layer(self, L: _Layer, pop: str, shape, delay):
        self.src, self.src_shape, self.src_delay = pop, tuple(shape), delay
        self.flatten = False
        self.pops.append(pop)

    def _check_shape(self, L: _Layer, name: str, declared):
        try:
            got = self.g.shapes()[name]
        except SnncError as e:
            raise L.err(str(e)) from None
        if int(np.prod(got)) != int(np.prod(declared)):
            raise L.err(f"'shape' {list(declared)} does not match the computed output {list(got)}")

    # ---- layer types
    def input(self, L: _Layer):
        if self.src is not None:
            raise L.err("an 'input' layer must come first")
        shape = L.shape()
        if self.input_shape is not None and tuple(self.input_shape) != shape:
            raise L.err(f"input_shape {self.input_shape} differs from the file's shape {list(shape)}")
        if L.neuron() is None:
            self._spike_input(shape)
            return
        if str(L.neuron().get("type", "")) == "SDNN":
            # netx: a Delta process whose a_in takes the data directly (no synapse)
            self.g.add("input", Input(shape))
            pop = f"input{L.index}"
            self.g.add(pop, self._sdnn(L, L.neuron(), shape, encoder=True), "input")
            self._finish_layer(L, pop, shape, self._delay(L, shape))
            return
        self.g.add("input", Input(shape, kind="bias"))
        pop = f"input{L.index}"
        self.g.add(pop, self._neuron(L, shape), "input")
        self._finish_layer(L, pop, shape, self._delay(L, shape))
        self.g.metadata["netx_input_transform"] = {
            k: _scalar(L, L.array(k), k) for k in ("weight", "bias") if L.has(k)}

    def flatten_(self, L: _Layer):
        if self.src is None:
            raise L.err("'flatten' needs a layer before it")
        if self.flatten:
            raise L.err("two 'flatten' layers in a row")
        self.flatten = True

    def dense(self, L: _Layer, rec: bool = False):
        w = _numeric(L, L.array("weight"), "weight")
        shape = L.shape()
        n_out = int(np.prod(shape))
        if w.ndim == 1:
            if w.size % n_out:
                raise L.err(f"weight of {w.size} values does not fit {n_out} outputs")
            w = w.reshape(n_out, -1)
        if w.ndim != 2 or w.shape[0] != n_out:
            raise L.err(f"weight {list(w.shape)} does not fit 'shape' {list(shape)} ({n_out} outputs)")
        for key, want in (("outFeatures", w.shape[0]), ("inFeatures", w.shape[1])):
            v = L.ints(key, required=False)
            if v is not None and int(v.reshape(-1)[0]) != want:
                raise L.err(f"{key!r} is {int(v.reshape(-1)[0])} but the weight is {list(w.shape)}")
        self._ensure_source(L, want_1d=w.shape[1])
        self._check_dense_input(L, w.shape[1])
        name = f"{L.type}{L.index}"
        pre = self._pre(L, name)
        self.g.add(f"{name}.syn", Dense(w / W_SCALE), pre)
        out_shape = (n_out,)
        neuron = self._neuron(L, out_shape, L.array("bias", required=False), default=not rec)
        sources = [f"{name}.syn"]
        if rec:
            wr = L.array("weight_rec").astype(np.float64)
            if wr.ndim == 1 and wr.size == n_out * n_out:
                wr = wr.reshape(n_out, n_out)
            if wr.shape != (n_out, n_out):
                raise L.err(f"weight_rec {list(wr.shape)} must be {n_out}x{n_out}")
        self.g.add(name, neuron, *sources)
        if rec:
            # s_out[t-1] -> recurrent synapse -> same population (Lava: 1-step synapse latency)
            self.g.add(f"{name}.rec_delay", Delay(np.array(1, np.int64)), name)
            self.g.add(f"{name}.rec", Dense(wr / W_SCALE), f"{name}.rec_delay")
            self.g.connect(f"{name}.rec", name)
        delay = self._delay(L, out_shape)
        if delay is not None and delay.ndim == 1 and delay.size != n_out:
            raise L.err("per-input delays are not supported")
        self._check_shape(L, name, shape)
        self._finish_layer(L, name, out_shape, delay)

    def conv(self, L: _Layer):
        w = _numeric(L, L.array("weight"), "weight")
        if w.ndim == 5 and w.shape[-1] == 1:
            w = w[..., 0]
        if w.ndim != 4:
            raise L.err(f"weight must be (out, in/groups, kH, kW[, 1]), got {list(w.shape)}")
        self._ensure_source(L)
        if len(self.src_shape) != 3:
            raise L.err(f"a conv layer needs (C, H, W) input, the previous layer is {self.src_shape}")
        if self.flatten:
            raise L.err("a conv layer cannot follow a 'flatten' layer")
        groups = int(L.ints("groups", required=False).reshape(-1)[0]) if L.has("groups") else 1
        for key, want in (("outChannels", w.shape[0]), ("inChannels", w.shape[1] * groups)):
            v = L.ints(key, required=False)
            if v is not None and int(v.reshape(-1)[0]) != want:
                raise L.err(f"{key!r} is {int(v.reshape(-1)[0])} but the weight is {list(w.shape)} "
                            f"with groups {groups}")
        if w.shape[1] * groups != self.src_shape[0]:
            raise L.err(f"weight {list(w.shape)} (groups {groups}) expects {w.shape[1] * groups} input "
                        f"channels, the previous layer has {self.src_shape[0]}")
        kernel = L.ints("kernelSize", 2, required=False)
        if kernel is not None and tuple(kernel) != w.shape[2:]:
            raise L.err(f"kernelSize {kernel.tolist()} does not match the weight {list(w.shape)}")
        stride = tuple(L.ints("stride", 2, required=False) if L.has("stride") else (1, 1))
        padding = tuple(L.ints("padding", 2, required=False) if L.has("padding") else (0, 0))
        dilation = tuple(L.ints("dilation", 2, required=False) if L.has("dilation") else (1, 1))
        shape = L.shape()
        name = f"conv{L.index}"
        pre = self._pre(L, name)
        self.g.add(f"{name}.syn", Conv2d(w / W_SCALE, stride, padding, dilation, groups), pre)
        self._synapse_shape(L, f"{name}.syn", shape)
        self.g.add(name, self._neuron(L, shape, L.array("bias", required=False)), f"{name}.syn")
        self._finish_layer(L, name, shape, self._delay(L, shape))

    def pool(self, L: _Layer):
        self._ensure_source(L)
        if len(self.src_shape) != 3 or self.flatten:
            raise L.err(f"a pool layer needs (C, H, W) input, the previous layer is {self.src_shape}")
        w = _numeric(L, L.array("weight"), "weight")
        kernel = tuple(L.ints("kernelSize", 2))
        if w.size != kernel[0] * kernel[1]:
            raise L.err(f"weight of {w.size} values does not fit kernelSize {list(kernel)}")
        w = w.reshape(kernel)
        stride = tuple(L.ints("stride", 2, required=False) if L.has("stride") else kernel)
        padding = tuple(L.ints("padding", 2, required=False) if L.has("padding") else (0, 0))
        dilation = tuple(L.ints("dilation", 2, required=False) if L.has("dilation") else (1, 1))
        C, H, W = self.src_shape
        if padding[0] != 0 or H % kernel[0] or W % kernel[1] or (H - dilation[0] * (kernel[0] - 1) - 1) % stride[0]:
            # SLAYER pools over the flattened C*H axis after padding H and W at the end by
            # (size % kernel): only when nothing is padded in H and the windows tile H exactly is
            # that the per-channel pooling Lava (and snnc) can run.
            raise L.err(f"pooling kernel {list(kernel)} stride {list(stride)} padding {list(padding)} "
                        f"on {H}x{W}: SLAYER's pool pads H and W at the end by (size % kernel) and "
                        "pools across channel boundaries unless H padding is 0 and the windows tile "
                        "H and W exactly; snnc supports only that case")
        shape = L.shape()
        name = f"pool{L.index}"
        pre = self._pre(L, name)
        if np.all(w == w.flat[0]) and dilation == (1, 1):
            syn = SumPool2d(kernel, stride, padding, float(w.flat[0]) / W_SCALE)
        else:
            syn = Conv2d(np.tile(w[None, None] / W_SCALE, (C, 1, 1, 1)), stride, padding, dilation, C)
        self.g.add(f"{name}.syn", syn, pre)
        self._synapse_shape(L, f"{name}.syn", shape)
        self.g.add(name, self._neuron(L, shape, L.array("bias", required=False)), f"{name}.syn")
        self._finish_layer(L, name, shape, self._delay(L, shape))

    def _synapse_shape(self, L: _Layer, syn: str, declared):
        try:
            got = self.g.nodes[syn].output_shape(self.src_shape)
        except ShapeError as e:
            raise L.err(str(e)) from None
        if tuple(got) != tuple(declared):
            raise L.err(f"'shape' {list(declared)} does not match the computed output {list(got)} "
                        f"of input {list(self.src_shape)}")

    def average(self, L: _Layer):
        self._ensure_source(L)
        shape = L.shape()
        groups = int(np.prod(shape))
        if self._in_features() % groups:
            raise L.err(f"{groups} output groups do not divide the {self._in_features()} neurons "
                        f"of the previous layer")
        name = f"average{L.index}"
        src = self.src
        if self.src_delay is not None:
            src = self.g.add(f"{name}.delay", Delay(self.src_delay), src)
        self.g.add(name, Average(groups), src)
        self.final = name


def import_netx(path: str, reset_interval: Optional[int] = None, reset_offset: int = 0,
                input_shape: Optional[Sequence[int]] = None, num_layers: Optional[int] = None,
                all_outputs: bool = False) -> Graph:
    """Read a netx ``.net`` file into an (unquantized) IR graph.

    ``reset_interval``/``reset_offset``: netx's periodic state reset; layer k (0-based, counting
    neuron layers) resets u and v at the start of IR steps t with
    ``t % reset_interval == (reset_offset + k) % reset_interval`` (netx's staggering).
    ``input_shape``: (C, H, W) when the file has no input layer. ``num_layers``: read only the
    first layers (as netx's ``num_layers``). ``all_outputs``: one Output per neuron layer
    (named ``<layer>.out``; the last layer's output stays first).
    """
    try:
        import h5py
    except ImportError:  # pragma: no cover
        raise SnncError("reading .net files needs h5py (pip install h5py)") from None
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise SnncError(f"{path}: not an HDF5 (netx .net) file ({e})") from None
    base = os.path.basename(path)
    with f:
        if "layer" not in f or not hasattr(f["layer"], "keys"):
            raise SnncError(f"{base}: no group 'layer'; not a netx network description")
        keys = list(f["layer"].keys())
        if not keys:
            raise SnncError(f"{base}: group 'layer' is empty")
        try:
            idx = sorted(int(k) for k in keys)
        except ValueError:
            raise SnncError(f"{base}: layer names must be 0, 1, 2, ...; found {sorted(keys)}") from None
        if idx != list(range(len(idx))):
            missing = sorted(set(range(idx[-1] + 1)) - set(idx))
            raise SnncError(f"{base}: missing group layer/{missing[0]} (layers are {idx})")
        if num_layers is not None:
            idx = idx[:num_layers]
        b = _Builder(path, reset_interval, reset_offset, input_shape, all_outputs)
        for i in idx:
            L = _Layer(path, i, f["layer"][str(i)])
            if L.type in NOT_SUPPORTED:
                raise L.err(f"{NOT_SUPPORTED[L.type]} layers are not supported by snnc")
            if L.type not in SUPPORTED:
                raise L.err(f"unknown layer type {L.type!r}; snnc reads {', '.join(SUPPORTED)}")
            if L.type == "input":
                b.input(L)
            elif L.type == "flatten":
                b.flatten_(L)
            elif L.type in ("dense", "dense_rec"):
                b.dense(L, rec=L.type == "dense_rec")
            else:
                getattr(b, L.type)(L)
        meta = {}
        if "simulation" in f:
            for k in ("Ts", "tSample"):
                if k in f["simulation"]:
                    meta[k] = np.asarray(f["simulation"][k][()]).reshape(-1)[0].item()
    g = b.g
    if not b.pops and b.final is None:
        raise SnncError(f"{base}: the network has no neuron layer")
    if b.flatten:
        raise SnncError(f"{base}: the last layer is a 'flatten' with nothing after it")
    last = b.final or b.src
    src = last
    if b.final is None and b.src_delay is not None:
        src = g.add(f"{last}.out_delay", Delay(b.src_delay), last)
    shapes = g.shapes()
    g.add("output", Output(tuple(shapes[src])), src)
    if all_outputs:
        for p in b.pops:
            g.add(f"{p}.out", Output(tuple(shapes[p])), p)
    g.metadata.update(dict(format="netx", netx_simulation=meta, input_layout="C,H,W (netx: x,y,f = W,H,C)",
                           input_kind=g.nodes["input"].kind, timing="lava",
                           reset_interval=int(reset_interval or 0), reset_offset=int(reset_offset)))
    return g
