"""snnc: a dataflow compiler from PyTorch spiking neural networks to Intel Loihi through Lava.

``snnc.export(module, example_input, path)`` -> ONNX file (snnc dialect);
``snnc.compile(path_or_graph, output=None)`` -> quantized IR graph (and a .snnc file);
``snnc.run(model, spikes, backend="lava-fixed")`` -> RunResult (output spikes, counts);
``snnc.twin(model)`` -> a torch module with the compiled graph's Loihi integer dynamics (fine-tune it,
then ``twin.to_graph()``).
Heavy dependencies (torch, Lava) are imported only when used.
"""
from .errors import SnncError

__all__ = ["SnncError", "export", "compile", "run", "twin"]

__version__ = "0.1.0"


def export(module, example_input, path, time_axis=None):
    """Export a PyTorch SNN (lava-dl SLAYER blocks, snnc.nn, snnTorch, Norse) to ONNX; see
    snnc.frontends.torch_export. snnTorch/Norse inputs are time first (``time_axis`` 0); the
    file is time last: feed it ``snnc.frontends.step_export.time_last(x)``."""
    from .frontends.torch_export import export as _export
    return _export(module, example_input, path, time_axis=time_axis)


def compile(model, output=None, calibrate=None, **options):
    """ONNX, lava-dl .net or NIR .nir path (or IR graph) -> checked, quantized IR graph; saved as
    .snnc if ``output``. ``calibrate``: calibration spikes ``(N, *shape, T)`` (or a .npy path):
    scales chosen on them (see snnc.calibrate). ``options``: for .net ``input_shape=(C, H, W)``,
    ``num_layers``, ``reset_interval``, ``reset_offset``; for .nir ``dt``, ``convention``, ...
    (see snnc.api.compile)."""
    from .api import compile as _compile
    return _compile(model, output, calibrate=calibrate, **options)


def twin(model, surrogate=None, detach_reset=True):
    """The bit-exact PyTorch twin of a compiled graph (or .snnc/.onnx path); see snnc.loihi_twin."""
    from .loihi_twin import make_twin
    return make_twin(model, surrogate=surrogate, detach_reset=detach_reset)


def run(model, spikes, backend="lava-fixed", timeout=600.0, **options):
    """Run a model on spikes ``C[,H,W],T`` or ``N,C[,H,W],T`` on the engine ``backend`` (a name of
    snnc.backends.registry; ``options``: that engine's options); see snnc.api.run."""
    from .api import run as _run
    return _run(model, spikes, backend=backend, timeout=timeout, **options)
