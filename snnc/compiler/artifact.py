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
from dataclasses import fields

import numpy as np

from ..errors import SnncError
from .fixed import FixedCubaLI, FixedCubaLIF, FixedSigmaDelta, FixedSynapse
from .ir import NODE_TYPES, Graph

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
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("graph.json", json.dumps(doc, indent=1, default=_json_default))
        z.writestr("arrays.npz", buf.getvalue())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in graph.json")


def load(path: str) -> Graph:
    """Read a ``.snnc`` file; SnncError if it is missing or not one."""
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as z:
            doc = json.loads(z.read("graph.json"))
            arrays = dict(np.load(io.BytesIO(z.read("arrays.npz"))))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise SnncError(f"{path}: not a compiled snnc artifact ({e}); compile a model first: "
                        "snnc compile model.onnx -o model.snnc") from None
    if doc.get("format") != "snnc" or doc.get("version") != FORMAT_VERSION:
        raise SnncError(f"{path}: unsupported artifact format/version {doc.get('format')}/{doc.get('version')}")
    g = Graph(metadata=doc.get("metadata", {}))
    for n in doc["nodes"]:
        g.nodes[n["name"]] = _decode(NODE_TYPES[n["type"]], n["params"], arrays)
    g.edges = [tuple(e) for e in doc["edges"]]
    g.inputs, g.outputs = list(doc["inputs"]), list(doc["outputs"])
    for f in doc["fixed"]:
        g.fixed[f["name"]] = _decode(FIXED_TYPES[f["type"]], f["params"], arrays)
    return g
