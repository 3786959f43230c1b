"""snnc's Python API: ``compile`` a model to a quantized IR graph, ``run`` it on an engine."""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from . import files
from .backends import host_io, registry
from .backends.result import RunResult
from .compiler import artifact
from .compiler.ir import Graph
from .compiler.lower import Network, lower
from .compiler.pipeline import compile_graph, ensure_compiled
from .compiler.validate import validate
from .errors import SnncError

ENGINES = registry.names("graph")       # the engines that run a compiled graph (backends/registry.py)


def import_model(path: str, **netx_options) -> Graph:
    """Read a model file into the IR by its extension (.onnx; .net = lava-dl netx HDF5, with
    ``netx_options`` for ``import_netx``; .nir = a NIR graph, the options of ``import_nir``: dt,
    convention, integrator, reset, reset_delay, ...; .snnc is already compiled)."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".snnc":
        return artifact.load(path)
    if ext == ".net":
        from .frontends.netx_import import import_netx
        return import_netx(path, **netx_options)
    if ext == ".nir":
        from .frontends.nir_import import import_nir
        return import_nir(path, **netx_options)
    if ext == ".onnx" or ext == "":
        from .frontends.onnx_import import import_onnx
        return import_onnx(path)
    raise SnncError(f"{path}: unknown model type {ext!r}; snnc reads .onnx, netx .net and NIR .nir files "
                   "(and compiled .snnc)")


def compile(model: Union[str, Graph], output: Optional[str] = None, calibrate=None, **netx_options) -> Graph:
    """Model (``.onnx``/``.net``/``.nir`` path or IR graph) -> checked, validated, quantized graph;
    saved to ``output`` if given. ``netx_options``: for ``.net``, ``input_shape`` (C, H, W) when
    the file has no input layer, ``num_layers``, ``reset_interval``, ``reset_offset``,
    ``all_outputs``; for ``.nir``, ``dt``, ``convention``, ``integrator``, ``reset``,
    ``reset_delay``, ``recurrent_delay``, ``rounding`` (see ``snnc.frontends.nir_import``).
    ``calibrate``: calibration spikes ``(N, *shape, T)`` or a ``.npy`` path: per-population scales
    chosen on them (``snnc.calibrate``; report in ``graph.metadata["calibration"]``)."""
    if netx_options and not (isinstance(model, str) and model.lower().endswith((".net", ".nir"))):
        raise SnncError(f"options {sorted(netx_options)} apply to lava-dl .net models only "
                        "(or, dt/convention/integrator/reset..., to NIR .nir graphs)")
    if output:
        files.check_output(output, [model] if isinstance(model, str) else [], "output")
    graph = import_model(model, **netx_options) if isinstance(model, str) else model
    if isinstance(model, str):
        graph.metadata.setdefault("source", os.path.basename(model))
    graph = compile_graph(graph, calibrate=_calibration_pass(calibrate), where=model if isinstance(model, str) else "")
    if output:
        artifact.save(graph, output)
    return graph


def _calibration_pass(data):
    """The calibrating quantizer bound to ``data`` (spikes or a .npy path); None without data."""
    if data is None:
        return None
    from .calibrate import calibrate, load_data     # lazy: runs the reference engine
    x = load_data(data) if isinstance(data, str) else data
    return lambda graph: calibrate(graph, x)


def _as_graph(model: Union[str, Graph]) -> Graph:
    if isinstance(model, Graph):
        return validate(model) if model.fixed else ensure_compiled(model)
    graph = import_model(model)
    return graph if graph.fixed else ensure_compiled(graph, model)


def lowered(model: Union[str, Graph, Network]) -> Network:
    """The validated, lowered network of ``model`` (a path or a Graph): give it to ``run`` (or
    ``evaluate``) in place of the model to run it many times, validated and lowered once and with
    the engines' per-network data kept from run to run. Edits to the graph after this are not
    seen: lower it again."""
    return model if isinstance(model, Network) else lower(_as_graph(model))


def check_input(graph: Union[Graph, Network], spikes: np.ndarray, what: str = "input", in_place: bool = False):
    """Validate ``spikes`` against the graph input: returns (batched array, had_batch)
    (see ``backends.host_io``: one definition of a valid input for every engine; ``in_place``:
    the engine's ``reads_in_place``)."""
    return host_io.prepare(graph, spikes, what, in_place)


def run(model: Union[str, Graph, Network], spikes: np.ndarray, backend: str = "lava-fixed",
        timeout: float = 600.0, progress: bool = False, **options) -> RunResult:
    """Run ``model`` on spikes ``C[,H,W],T`` or ``N,C[,H,W],T``; output in the same layout.

    ``backend``: a name of ``backends.registry`` (``snnc run --help`` lists them): ``lava-fixed``
    (Lava Loihi2SimCfg fixed_pt, bit-accurate), ``lava-float`` (floating_pt),
    ``lava-fused-fixed``/``lava-fused-float`` (the whole graph as one Lava process, bit-identical
    with ``reference``/``reference-float``), ``reference`` (numpy, bit-exact with lava-fixed),
    ``reference-float``, ``torch`` (fixed point on torch, = ``reference``; feed-forward graphs),
    ``onnxruntime`` (the ``.onnx`` file itself: ``model`` must be its path). ``model`` may be the
    ``lowered`` network of a model, run as it is (no second validation and lowering).
    ``timeout``: seconds before a Lava run is stopped; ``progress``: a progress bar (reference);
    each is passed to the engines that take it. ``options``: engine options (``registry``), e.g.
    ``plan="step"`` for ``reference``, ``record_state=True`` for ``lava-fixed``.
    """
    engine = registry.get(backend, "backend")
    if engine.reads == "onnx" and not (isinstance(model, str) and model.lower().endswith(".onnx")):
        raise SnncError(f"backend {backend!r} runs the exported .onnx file itself; give the .onnx model "
                        f"(not {model if isinstance(model, str) else 'a compiled graph'})")
    net = lowered(model)
    graph = net.graph
    x, batched = check_input(net, spikes, in_place=engine.reads_in_place)
    common = engine.accepted(dict(timeout=timeout, progress=progress))
    given = model if engine.reads == "onnx" else net if engine.lowered else graph
    result = engine.run(given, x, **common, **options)
    return result if batched else result.sample(0)
