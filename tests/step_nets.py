"""Helpers for the snnTorch / Norse export tests: run the library's own forward (the oracle) and
snnc's engines on the exported file, time last."""
import warnings

import numpy as np
import torch

import snnc
from snnc.frontends.step_export import time_last
from snnc.parity import run_parity


def spikes(shape, p, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def run_steps(net, x, reset=None):
    """A step module's own forward over x (T first): the library's loop, outputs stacked."""
    if reset is not None:
        reset(net)
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            o = net(x[t]) if state is False else (net(x[t], state) if state is not None else net(x[t]))
            if isinstance(o, tuple) and len(o) == 2 and isinstance(o[1], list):   # norse SequentialState
                o, state = o
            elif isinstance(o, tuple):
                o = o[0]
                state = False
            else:
                state = False
            outs.append(o)
    if reset is not None:
        reset(net)
    return torch.stack(outs, 0)


def export_and_run(net, x, y_time_first, path, engines=("reference-float", "reference"), static_steps=None):
    """Export ``net`` with example ``x``; run onnxruntime and ``engines`` on ``time_last(x)``.

    Returns (torch output time last, results by engine, export notes)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snnc.export(net, x, str(path))
    notes = [str(w.message) for w in caught if str(w.message).startswith("snnc.export")]
    xin = time_last(x, steps=static_steps).numpy()
    y = time_last(y_time_first).numpy()
    results, _, _ = run_parity(str(path), xin, engines=list(engines), torch_output=y, timeout=300)
    return y, results, notes


def mismatches(results, y, engine):
    return int(np.sum(results[engine].output != y))
