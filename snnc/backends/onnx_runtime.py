"""Run an snnc ONNX file in onnxruntime: the exported file as its own reference."""
from __future__ import annotations

import time

import numpy as np
import onnx

from .result import RunResult
from ..errors import SnncError
from ..frontends.onnx_import import DOMAIN, load_onnx

NEURON_OPS = ("CubaLIF", "RecurrentCubaLIF")


def run_onnxruntime(path: str, spikes: np.ndarray) -> RunResult:
    """Run ``path`` on ``spikes`` (N, C[,H,W], T) float32; output and per-population counts.

    Population outputs are exposed as extra graph outputs; counts are keyed by ONNX node name
    (the name the importer gives the population).
    """
    import onnxruntime as ort

    model = load_onnx(path)
    pops = {n.output[0]: n.name for n in model.graph.node if n.domain == DOMAIN and n.op_type in NEURON_OPS}
    existing = {o.name for o in model.graph.output}
    for value in pops:
        if value not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(value, onnx.TensorProto.FLOAT, None))
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise SnncError(f"{path}: onnxruntime cannot load the model: {str(e)[:300]}") from None
    start = time.perf_counter()
    names = [o.name for o in sess.get_outputs()]
    x = np.asarray(spikes)
    if x.dtype.kind not in "biuf" or x.ndim < 3 or x.shape[0] < 1 or x.shape[-1] < 1 or \
            (x.dtype.kind == "f" and not np.all(np.isfinite(x))):
        raise SnncError(f"onnxruntime: input of shape {x.shape} ({x.dtype}) is not a finite (N, C[, H, W], T) "
                        "array with N, T >= 1")
    feed = {sess.get_inputs()[0].name: x.astype(np.float32)}
    try:
        values = dict(zip(names, sess.run(names, feed)))
    except Exception as e:
        raise SnncError(f"{path}: onnxruntime failed on the input: {str(e)[:300]}") from None
    counts = {pops[v]: np.rint(values[v].sum(axis=-1)).astype(np.int64) for v in pops}
    first = model.graph.output[0].name
    return RunResult(output=values[first].astype(np.float32), counts=counts, engine="onnxruntime",
                     seconds=time.perf_counter() - start)
