"""The engines snnc runs a model on, by name: one registry that the API, ``snnc run --backend``,
``snnc eval --engine``, ``snnc parity --engines``, the CLI help and the error messages read.

An ``Engine`` has a name, a one-line description, the keyword options its ``run`` takes, what it
reads (``graph``: the compiled, quantized IR graph; ``onnx``: the ``.onnx`` file itself) and
whether it runs Lava (a child process per run, so longer shards in ``snnc eval``); ``lowered``:
its runner also takes the lowered ``Network`` of a validated graph in place of the graph (what
``api.run`` passes it: validated and lowered once per run); ``reads_in_place``: it reads a bias
input's float64 values where they are (``host_io.prepare``'s ``in_place``).
``engine.run(model, x, **options) -> RunResult`` takes a checked batch ``x`` ``(N, *shape, T)``
(``host_io.prepare``); options it does not take are refused by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from ..errors import SnncError
from .result import RunResult


@dataclass(frozen=True)
class Engine:
    """One engine: ``run(model, x, **options) -> RunResult`` (``model`` a Graph, or the .onnx
    path when ``reads == "onnx"``)."""
    name: str
    description: str
    runner: Callable[..., RunResult]
    options: Tuple[str, ...] = ()
    reads: str = "graph"
    lava: bool = False
    lowered: bool = False
    reads_in_place: bool = False

    def run(self, model, x, **options) -> RunResult:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            took = ", ".join(self.options) or "none"
            raise SnncError(f"engine {self.name!r} takes no option {', '.join(unknown)} (its options: {took})")
        return self.runner(model, x, **options)

    def accepted(self, options: dict) -> dict:
        """The subset of ``options`` this engine takes (a caller's common options)."""
        return {k: v for k, v in options.items() if k in self.options}


def _reference(mode):
    def run(graph, x, progress=False, batch_size=None, plan="auto"):
        from .reference import run_reference      # lazy: keeps `import snnc` light
        return run_reference(graph, x, mode, progress=progress, batch_size=batch_size, plan=plan)
    return run


def _torch(graph, x, device=None, batch_size=None, threads=None):
    from .torch_engine import run_torch           # lazy: heavy (torch)
    return run_torch(graph, x, device=device, batch_size=batch_size, threads=threads)


def _lava(mode):
    def run(graph, x, timeout=600.0, conv_as="auto", io="channels", record_state=False):
        from .lava_backend import run_lava        # lazy: Lava runs in a child process
        return run_lava(graph, x, mode=mode, timeout=timeout, conv_as=conv_as, io=io, record_state=record_state)
    return run


def _lava_fused(mode):
    def run(graph, x, timeout=600.0, chunk=None):
        from .lava_fused import run_lava_fused    # lazy: Lava runs in a child process
        return run_lava_fused(graph, x, mode=mode, timeout=timeout, chunk=chunk)
    return run


def _onnxruntime(path, x):
    from .onnx_runtime import run_onnxruntime     # lazy: heavy (onnxruntime)
    return run_onnxruntime(path, x)


ENGINES: Dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    """Add ``engine`` (a name may be registered once)."""
    if engine.name in ENGINES:
        raise SnncError(f"engine {engine.name!r} is already registered")
    ENGINES[engine.name] = engine
    return engine


for _e in (
    Engine("lava-fixed", "Lava CPU simulation, Loihi 2 bit-accurate fixed_pt, one Lava process per layer "
           "(as on hardware)", _lava("fixed"), ("timeout", "conv_as", "io", "record_state"), lava=True),
    Engine("lava-float", "Lava CPU simulation, floating_pt, one Lava process per layer", _lava("float"),
           ("timeout", "conv_as", "io", "record_state"), lava=True),
    Engine("lava-fused-fixed", "the whole network as one Lava process, fixed point (= reference)",
           _lava_fused("fixed"), ("timeout", "chunk"), lava=True),
    Engine("lava-fused-float", "the whole network as one Lava process, float (= reference-float)",
           _lava_fused("float"), ("timeout", "chunk"), lava=True),
    Engine("reference", "numpy simulator, Loihi 2 fixed point, bit-exact with lava-fixed", _reference("fixed"),
           ("progress", "batch_size", "plan"), lowered=True, reads_in_place=True),
    Engine("reference-float", "numpy simulator, the float model (= lava-float's dynamics)", _reference("float"),
           ("progress", "batch_size", "plan"), lowered=True),
    Engine("torch", "fixed point on torch (CUDA when present, else CPU), = reference; feed-forward graphs",
           _torch, ("device", "batch_size", "threads")),
    Engine("onnxruntime", "onnxruntime on the exported .onnx file itself (the file as its own reference)",
           _onnxruntime, (), reads="onnx"),
):
    register(_e)


def names(reads: str = "") -> Tuple[str, ...]:
    """Registered engine names (only those that read ``reads``, "graph" or "onnx", if given)."""
    return tuple(n for n, e in ENGINES.items() if not reads or e.reads == reads)


def get(name: str, what: str = "engine", reads: str = "") -> Engine:
    """The engine called ``name``; SnncError listing the choices otherwise (``what`` names the
    flag or argument; ``reads`` restricts the choice)."""
    engine = ENGINES.get(name)
    if engine is None:
        raise SnncError(f"unknown {what} {name!r}; choose one of {', '.join(names(reads))}")
    if reads and engine.reads != reads:
        raise SnncError(f"{what} {name!r} runs the exported .{engine.reads} file, not a compiled {reads}; "
                        f"choose one of {', '.join(names(reads))}")
    return engine


def describe(reads: str = "") -> str:
    """One line per engine: name and description (CLI help, docs)."""
    width = max(len(n) for n in names(reads))
    return "\n".join(f"{n:<{width}}  {ENGINES[n].description}" for n in names(reads))
