"""One definition of a valid input, shared by every engine (the host side of a run).

An input array is valid for a graph when:

- it holds real numbers (bool, integer or floating point; not complex, text or objects), all finite;
- its shape is the model input's ``(C[, H, W], T)`` or a batch ``(N, C[, H, W], T)``, time last,
  with T >= 1 and N >= 1; shapes that differ from the model input only by axes of size 1 are
  accepted (lava-dl's N-TIDIGITS input ``(64, T)`` for an input layer ``(1, 1, 64)``, or
  ``(4, 1, T)`` for ``(4,)``) and reshaped to it;
- spike inputs (``Input.kind == "spikes"`` read by a synapse) are binary, 0 or 1, on every engine;
- graded inputs are on their declared grid's range: rounded (half to even) to ``2**-frac_bits``
  by the host, ``|x| * 2**frac_bits < 2**23`` (the Loihi graded payload); bias drives and the
  values a ``Delta`` encoder reads are any finite numbers.

``prepare(graph, x)`` checks a user array (one sample or a batch) and returns ``(N, *shape, T)``
float32 (laid out time-major in memory: ``time_major_f32``) and whether it was a batch;
``check_batch(net, inputs)`` checks the ``(N, *shape, T)`` arrays an engine receives (by input name) against the lowered network the engine runs (its
shapes, what each input feeds). Both raise ``SnncError`` naming the input.
"""
from __future__ import annotations

from typing import Dict, Tuple, Union

import numpy as np

from ..compiler.ir import Graph
from ..compiler.lower import Network, lower
from ..errors import SnncError

GRADED_LIMIT = 1 << 23          # Loihi 2 graded spike payload: |x_int| < 2**23


def _squeezed(shape) -> Tuple[int, ...]:
    return tuple(int(s) for s in shape if s != 1)


def _reads_spikes(net: Network, name: str) -> bool:
    """Whether Input ``name``'s values reach a synapse (through Delay/Flatten): binary spikes."""
    if any(c.synapse is not None for c in net.out_of(name)):
        return True
    for o in net.outputs:                   # a host synapse of an Output
        reached = {name}
        for node, kind, _, preds in o.program:
            if any(p in reached for p in preds):
                if kind == "synapse":
                    return True
                if kind in ("delay", "flatten"):
                    reached.add(node)
    return False


def _net(model: Union[Graph, Network]) -> Network:
    return model if isinstance(model, Network) else lower(model)


def _numbers(x, what: str) -> np.ndarray:
    try:
        a = np.asarray(x)
    except Exception as e:      # ragged lists and friends
        raise SnncError(f"{what}: not an array of numbers ({type(e).__name__})") from None
    if a.dtype.kind not in "biuf":
        raise SnncError(f"{what}: values of type {a.dtype} are not real numbers; give 0/1 spikes as bool, "
                        "int or float")
    return a


def check_values(net: Network, name: str, x: np.ndarray, what: str = "") -> None:
    """The values of Input ``name`` (any layout): finite; binary for spikes; graded in range."""
    what = what or f"input {name!r}"
    a = _numbers(x, what)
    if a.dtype.kind == "f" and not np.isfinite(a.sum()) and not np.all(np.isfinite(a)):
        bad = "NaN" if np.any(np.isnan(a)) else "inf"
        raise SnncError(f"{what}: values must be finite, found {bad}")
    node = net.graph.nodes[name]
    if node.kind == "spikes" and _reads_spikes(net, name) and a.dtype.kind != "b" \
            and not np.all((a == 0) | (a == 1)):
        v = a[(a != 0) & (a != 1)].ravel()[0]
        raise SnncError(f"{what}: spike inputs take binary spikes (0 or 1) on every engine; found {v!r}. "
                        "For analog values declare a graded input (snnc.nn.GradedInput)")
    if node.kind == "graded":
        k = int(node.frac_bits)
        m = max(float(a.max()), -float(a.min())) if a.size else 0.0
        if np.round(m * (1 << k)) >= GRADED_LIMIT:
            raise SnncError(f"{what}: graded values must satisfy |x| * 2**{k} < 2**23 (Loihi's graded payload), "
                            f"found |x| = {m:g}")


def _fit(x: np.ndarray, shape, what: str) -> Tuple[np.ndarray, bool]:
    """``x`` as ``(N, *shape, T)`` and whether it was a batch; SnncError if it does not fit."""
    shape = tuple(shape)
    if x.ndim == len(shape) + 2 and tuple(x.shape[1:-1]) == shape:
        return x, True
    if x.ndim == len(shape) + 1 and tuple(x.shape[:-1]) == shape:
        return x[None], False
    if x.ndim >= 2 and _squeezed(x.shape[:-1]) == _squeezed(shape):
        return x.reshape((1,) + shape + (x.shape[-1],)), False
    if x.ndim >= 3 and _squeezed(x.shape[1:-1]) == _squeezed(shape):
        return x.reshape((x.shape[0],) + shape + (x.shape[-1],)), True
    want = ", ".join(map(str, shape))
    raise SnncError(f"{what}: shape {tuple(x.shape)} does not fit the model input: expected ({want}, T) or a "
                    f"batch (N, {want}, T), time last (axes of size 1 may be added or left out)")


def _sizes(x: np.ndarray, what: str) -> None:
    if x.shape[-1] < 1:
        raise SnncError(f"{what}: no time steps (T = 0); give at least one step (time is the last axis)")
    if x.shape[0] < 1:
        raise SnncError(f"{what}: an empty batch (N = 0); give at least one sample")


def prepare(model: Union[Graph, Network], spikes, what: str = "input", in_place: bool = False) -> Tuple[np.ndarray, bool]:
    """A user's array for the (first) input of a graph or its lowered network -> ``(N, *shape, T)``
    float32 (``time_major_f32``), had_batch. ``in_place``: the engine reads bias inputs where
    they are (the reference): an input that ``reads_in_place`` allows is returned as given."""
    x = _numbers(spikes, what)
    net = _net(model)
    graph = net.graph
    shape = tuple(net.shapes[graph.inputs[0]])
    if x.ndim < 2:
        raise SnncError(f"{what}: shape {tuple(x.shape)} has no time axis: expected ({', '.join(map(str, shape))}, T)")
    xb, batched = _fit(x, shape, what)
    _sizes(xb, what)
    check_values(net, graph.inputs[0], xb, what)
    if in_place and reads_in_place(net, graph.inputs[0], xb):
        return xb, batched
    return time_major_f32(xb), batched


def drives_only(net: Network, name: str) -> bool:
    """Input ``name`` only drives populations (their bias inputs): no synapse reads it."""
    return any(name in p.bias_inputs for p in net.populations.values()) and \
        not any(s.pop == name for c in net.connections for s in c.sources)


def reads_in_place(net: Network, name: str, x: np.ndarray) -> bool:
    """Whether ``x`` (N, *shape, T) for Input ``name`` may be read as given, no copy: the input
    ``drives_only``, and ``x`` is C-contiguous float64 whose values are all exactly float32 (so
    the same values as ``time_major_f32``'s; one pass of the compiled kernels, when built)."""
    from . import ckernels      # lazy: ctypes
    return (x.dtype == np.float64 and x.flags.c_contiguous and ckernels.available() and drives_only(net, name)
            and ckernels.exact_f32(x))


def time_major_f32(x: np.ndarray) -> np.ndarray:
    """``x`` (N, *shape, T) as float32 (``check_values``'s values are exact in it) laid out
    time-major in memory: a (N, *shape, T) view of a C-contiguous (T, N, *shape) array, made in
    one cast copy, so that the engines' time-major copy (``plan.time_major``) is free."""
    if x.dtype == np.float32 and np.moveaxis(x, -1, 0).flags.c_contiguous:
        return x
    out = np.empty((x.shape[-1],) + tuple(x.shape[:-1]), np.float32)
    np.copyto(out, np.moveaxis(x, -1, 0), casting="unsafe")
    return np.moveaxis(out, 0, -1)


def check_batch(net: Network, inputs, engine: str = "") -> Dict[str, np.ndarray]:
    """What an engine receives: ``{input name: (N, *shape, T)}`` (or one array for the first input),
    checked against the lowered network ``net`` the engine runs."""
    graph, shapes = net.graph, net.shapes
    if not isinstance(inputs, dict):
        inputs = {graph.inputs[0]: inputs}
    n = t = None
    for name, x in inputs.items():
        what = f"{engine + ': ' if engine else ''}input {name!r}"
        if name not in graph.nodes or name not in graph.inputs:
            raise SnncError(f"{what}: the graph has no such input (inputs: {graph.inputs})")
        a = _numbers(x, what)
        want = tuple(shapes[name])
        if a.ndim != len(want) + 2 or tuple(a.shape[1:-1]) != want:
            raise SnncError(f"{what}: expects shape (N, {', '.join(map(str, want))}, T), got {tuple(a.shape)}")
        _sizes(a, what)
        if (n, t) != (None, None) and (a.shape[0], a.shape[-1]) != (n, t):
            raise SnncError(f"{what}: N and T {(a.shape[0], a.shape[-1])} differ from the other inputs' {(n, t)}")
        n, t = a.shape[0], a.shape[-1]
        check_values(net, name, a, what)
    return inputs

