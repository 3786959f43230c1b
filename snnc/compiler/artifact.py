"""The compiled artifact (``.snnc``): a zip holding ``graph.json`` and ``arrays.npz``.

``graph.json``: ``{"format": "snnc", "version": 1, "nodes": [{"name", "type", "params"}],
"edges": [[src, dst]], "inputs", "outputs", "fixed": [{"name", "type", "params"}], "metadata"}``.
A parameter that is an array is stored as ``{"array": key}`` with the array in ``arrays.npz``;
everything else is plain JSON. Documented in docs/artifact.md.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import fields, replace

import numpy as np

from ..errors import SnncError
from ..files import write_atomic
from .fixed import FixedCubaLI, FixedCubaLIF, FixedSigmaDelta, FixedSynapse
from .ir import NODE_TYPES, Graph, Input
from .validate import validate

FORMAT_VERSION = 1
FIXED_TYPES = {c.__name__: c for c in (FixedSynapse, FixedCubaLIF, FixedCubaLI, FixedSigmaDelta)}


def _encode(obj, arrays, key):
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            arrays[f"{key}.{f.name}"] = v
            out[f.name] = {"array": f"{key}.{f.name}"}
        elif isinstance(v, (np.integer, np.floating)):
            out[f.name] = v.item()
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def _decode(cls, params, arrays):
    kw = {}
    for f in fields(cls):
        if f.name not in params:
            continue
        v = params[f.name]
        if isinstance(v, dict) and "array" in v:
            v = arrays[v["array"]]
        elif isinstance(v, list):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


def save(graph: Graph, path: str) -> None:
    """Write ``graph`` (with its fixed view and metadata) to ``path``."""
    arrays = {}
    doc = {
        "format": "snnc", "version": FORMAT_VERSION,
        "nodes": [{"name": n, "type": type(v).__name__, "params": _encode(v, arrays, f"node.{n}")}
                  for n, v in graph.nodes.items()],
        "edges": [list(e) for e in graph.edges],
        "inputs": graph.inputs, "outputs": graph.outputs,
        "fixed": [{"name": n, "type": type(v).__name__, "params": _encode(v, arrays, f"fixed.{n}")}
                  for n, v in graph.fixed.items()],
        "metadata": graph.metadata,
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    text = json.dumps(doc, indent=1, default=_json_default)

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("graph.json", text)
            z.writestr("arrays.npz", buf.getvalue())
    write_atomic(path, write)


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in graph.json")


def load(path: str) -> Graph:
    """Read a ``.snnc`` file; SnncError if it is missing, not one, damaged, or its parameters are
    invalid, outside Loihi 2's ranges, or its float and fixed views disagree (``validate``)."""
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise SnncError(f"{path}: not a file (a compiled .snnc artifact is a zip file)")
    try:
        with zipfile.ZipFile(path) as z:
            doc = json.loads(z.read("graph.json"))
            arrays = dict(np.load(io.BytesIO(z.read("arrays.npz")), allow_pickle=False))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
        raise SnncError(f"{path}: not a compiled snnc artifact ({type(e).__name__}: {str(e)[:120]}); compile a "
                        "model first: snnc compile model.onnx -o model.snnc") from None
    if not isinstance(doc, dict) or doc.get("format") != "snnc" or doc.get("version") != FORMAT_VERSION:
        got = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else type(doc).__name__
        raise SnncError(f"{path}: unsupported artifact format/version {got}")
    try:
        g = _graph(doc, arrays)
    except _Damaged as e:
        raise SnncError(f"{path}: damaged artifact: {e}; compile the model again") from None
    except SnncError as e:          # a node its constructor refuses (e.g. CubaLIF graded=True)
        raise SnncError(f"{path}: {e}") from None
    _upgrade(g)
    return validate(g, where=path, views=True)


def _upgrade(g: Graph) -> None:
    """Artifacts written before the fixed views held the state scale and the graded-input bits:
    ``metadata["state_scale"]`` {population: S} moves into the views (``FixedCubaLIF.state_scale``,
    ...), and a synapse reading a graded Input gets ``input_frac_bits``; the loader's view check
    then compares them with a fresh quantization as for any field."""
    old = g.metadata.pop("state_scale", None)
    for name, fx in list(g.fixed.items()):
        if isinstance(old, dict) and name in old and getattr(fx, "state_scale", None) == 0:
            g.fixed[name] = replace(fx, state_scale=old[name])
        elif isinstance(fx, FixedSigmaDelta) and fx.state_scale == 0:
            g.fixed[name] = replace(fx, state_scale=int(getattr(g.nodes.get(name), "state_scale", 0)))
        elif isinstance(fx, FixedSynapse) and fx.num_message_bits and not fx.input_frac_bits:
            graded = [s for s in g.predecessors(name)
                      if isinstance(g.nodes.get(s), Input) and g.nodes[s].kind == "graded"]
            if graded:
                g.fixed[name] = replace(fx, input_frac_bits=g.nodes[graded[0]].frac_bits)


class _Damaged(Exception):
    """graph.json does not describe a graph (wrong types, unknown names, missing arrays)."""


def _entries(doc, key):
    v = doc.get(key)
    if not isinstance(v, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str)
                                          and isinstance(e.get("params"), dict) for e in v):
        raise _Damaged(f"{key!r} must be a list of {{name, type, params}}")
    return v


def _decode_checked(types, entry, arrays):
    cls = types.get(entry.get("type"))
    if cls is None:
        raise _Damaged(f"{entry['name']!r} has unknown type {entry.get('type')!r}")
    known = {f.name for f in fields(cls)}
    extra = sorted(set(entry["params"]) - known)
    if extra:
        raise _Damaged(f"{entry['name']!r} ({cls.__name__}) has unknown parameters {extra}")
    for v in entry["params"].values():
        if isinstance(v, dict) and v.get("array") not in arrays:
            raise _Damaged(f"{entry['name']!r}: array {v.get('array')!r} is missing from arrays.npz")
    try:
        return _decode(cls, entry["params"], arrays)
    except TypeError as e:
        raise _Damaged(f"{entry['name']!r} ({cls.__name__}): {e}") from None


def _graph(doc, arrays) -> Graph:
    meta = doc.get("metadata", {})
    g = Graph(metadata=meta if isinstance(meta, dict) else {})
    for n in _entries(doc, "nodes"):
        g.nodes[n["name"]] = _decode_checked(NODE_TYPES, n, arrays)
    edges, ins, outs = doc.get("edges"), doc.get("inputs"), doc.get("outputs")
    if not isinstance(edges, list) or not all(isinstance(e, list) and len(e) == 2 for e in edges):
        raise _Damaged("'edges' must be a list of [source, destination]")
    g.edges = [tuple(e) for e in edges]
    for what, names in (("edges", [n for e in g.edges for n in e]), ("inputs", ins), ("outputs", outs)):
        if not isinstance(names, list) or any(not isinstance(n, str) or n not in g.nodes for n in names):
            raise _Damaged(f"{what!r} must name nodes of the graph, got {str(names)[:80]}")
    g.inputs, g.outputs = list(ins), list(outs)
    for f in _entries(doc, "fixed"):
        g.fixed[f["name"]] = _decode_checked(FIXED_TYPES, f, arrays)
    return g
