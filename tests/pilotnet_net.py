"""Test-side helper: lava-dl's PilotNet LIF network (netx HDF5) as an snnc IR graph.

Used only for the mapping/estimate comparison with the 74 cores Intel reported; it reads just
what the mapping needs (shapes, integer weights, neuron parameters). The product importer is
snnc/frontends/netx_import.py (when it lands).
"""
import os

import numpy as np

from snnc.compiler.ir import Conv2d, CubaLIF, Dense, Flatten, Graph, Input, Output

from lava_dl_files import GTS as _GTS  # noqa: E402

GTS = os.path.join(_GTS, "pilotnet_lif")
NET = os.path.normpath(os.path.join(GTS, "network.net"))
LAYER_NAMES = ["input", "conv-0", "conv-1", "conv-2", "conv-3", "conv-4", "flatten",
               "fc-0", "fc-1", "fc-2", "fc-3"]


def _neuron(g, shape, bias=0.0):
    n = g["neuron"]
    return CubaLIF(shape=tuple(int(x) for x in shape),
                   current_decay=float(n["iDecay"][()]) / 4096, voltage_decay=float(n["vDecay"][()]) / 4096,
                   threshold=float(n["vThMant"][()]) / 64, bias=bias)


def pilotnet_graph(path: str = NET) -> Graph:
    import h5py
    f = h5py.File(path, "r")
    L = f["layer"]
    g = Graph(metadata={"source": "lava-dl pilotnet_lif network.net"})
    shape0 = tuple(int(x) for x in L["0"]["shape"][()])          # (C, H, W)
    g.add("image", Input(shape0, kind="bias"))
    prev = g.add("input", _neuron(L["0"], shape0), "image")
    prev_shape = shape0
    for i in range(1, len(L)):
        layer = L[str(i)]
        kind = layer["type"][0].decode()
        name = LAYER_NAMES[i]
        if kind == "flatten":
            prev = g.add(name, Flatten(), prev)
            prev_shape = (int(np.prod(prev_shape)),)
            continue
        w = layer["weight"][()].astype(np.float64) / 64
        bias = layer["bias"][()] / 64 if "bias" in layer else 0.0
        if kind == "conv":
            syn = Conv2d(w, stride=tuple(layer["stride"][()]), padding=tuple(layer["padding"][()]),
                         dilation=tuple(layer["dilation"][()]), groups=int(layer["groups"][()]))
            out_shape = syn.output_shape(prev_shape)
            b = np.broadcast_to(np.asarray(bias).reshape(-1, 1, 1), out_shape).copy() if np.ndim(bias) else bias
        else:
            if w.ndim == 1:
                w = w[None, :]
            syn = Dense(w)
            out_shape = (w.shape[0],)
            b = np.asarray(bias, dtype=np.float64) if np.ndim(bias) else bias
        g.add(name + ".w", syn, prev)
        prev = g.add(name, _neuron(layer, out_shape, b), name + ".w")
        prev_shape = out_shape
    g.add("out", Output(prev_shape), prev)
    return g


def pilotnet_counts():
    """Per-layer spike counts (C[,H,W]) summed over the 24 steps of lava-dl's golden run, and T."""
    counts = {}
    for name, fname in [("input", "input.npy")] + [(n, n + ".npy") for n in LAYER_NAMES[1:6]] + \
                       [(n, n + ".npy") for n in LAYER_NAMES[7:10]]:
        a = np.load(os.path.join(GTS, fname)).astype(np.int64)
        T = a.shape[-1]
        s = a.sum(-1)
        counts[name] = s.transpose(2, 1, 0) if s.ndim == 3 else s       # netx (W,H,C) -> (C,H,W)
    return counts, T
