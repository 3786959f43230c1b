"""snnc: a dataflow compiler from PyTorch spiking neural networks to Intel Loihi through Lava.

``snnc.export(module, example_input, path)`` -> ONNX file (snnc dialect);
``snnc.compile(path_or_graph, output=None)`` -> quantized IR graph (and a .snnc file);
``snnc.run(model, spikes, backend="lava-fixed")`` -> RunResult (output spikes, counts).
Heavy dependencies (torch, Lava) are imported only when used.
"""
from .errors import SnncError

__all__ = ["SnncError", "export", "compile", "run"]

__version__ = "0.1.0"


def export(module, example_input, path):
    """Export a PyTorch SNN (lava-dl SLAYER blocks) to ONNX; see snnc.frontends.torch_export."""
    from .frontends.torch_export import export as _export
    return _export(module, example_input, path)


def compile(model, output=None, **netx_options):
    """ONNX or lava-dl .net path (or IR graph) -> checked, quantized IR graph; saved as .snnc if
    ``output``. ``netx_options`` (.net only): ``input_shape=(C, H, W)``, ``num_layers``,
    ``reset_interval``, ``reset_offset`` (see snnc.api.compile)."""
    from .api import compile as _compile
    return _compile(model, output, **netx_options)


def run(model, spikes, backend="lava-fixed", timeout=600.0):
    """Run a model on spikes ``C[,H,W],T`` or ``N,C[,H,W],T``; see snnc.api.run."""
    from .api import run as _run
    return _run(model, spikes, backend=backend, timeout=timeout)
