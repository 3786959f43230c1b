"""The ``snnc`` command: compile, info, run, eval, parity, deploy.

Bad input exits with code 2 and one clear line naming the file, node or layer; never a traceback
(set SNNC_DEBUG=1 to see one).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from . import files
from .backends import registry
from .backends.child import Terminated, terminating_signals as _terminating_signals
from .errors import SnncError


def _load_input(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such input file")
    if not os.path.isfile(path):
        raise SnncError(f"{path}: not a file; give a .npy (or .npz) spike array")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            keys = list(data.keys())
            if "input" in keys:
                return data["input"]
            if len(keys) == 1:
                return data[keys[0]]
            raise SnncError(f"{path}: .npz holds {keys}; name the input array 'input'")
        return data
    except SnncError:
        raise
    except Exception as e:
        raise SnncError(f"{path}: not a NumPy .npy/.npz array file ({type(e).__name__}: {str(e)[:100]})") from None


def _out_path(path: str, inputs, flag: str = "-o") -> str:
    return files.check_output(path, inputs, flag)


def _warn_lossy(graph) -> None:
    """One line on stderr when the model's quantization rounded or clipped parameters."""
    from .compiler.printing import lossy_summary
    line = lossy_summary(graph)
    if line:
        print(f"snnc: note: {line}", file=sys.stderr)


def _netx_options(a) -> dict:
    opts = {k: getattr(a, k, None) for k in ("reset_interval", "reset_offset", "input_shape", "num_layers")}
    opts = {k: v for k, v in opts.items() if v is not None}
    if opts and not a.model.lower().endswith(".net"):
        flags = ", ".join("--" + k.replace("_", "-") for k in opts)
        raise SnncError(f"{flags}: appl(ies) to lava-dl .net models only, not {a.model}")
    return opts


def cmd_compile(a) -> int:
    from . import api
    from .compiler.printing import quantization_table
    out = _out_path(a.output or os.path.splitext(a.model)[0] + ".snnc", [a.model])
    opts = _netx_options(a)
    nir_opts = _nir_options(a)
    if nir_opts and not a.model.lower().endswith(".nir"):
        raise SnncError(f"{', '.join('--' + k.replace('_', '-') for k in nir_opts)} apply to NIR .nir graphs only")
    opts.update(nir_opts)
    calib = None
    if getattr(a, "calibrate", None):
        from .calibrate import load_data
        calib = load_data(a.calibrate)
    graph = api.compile(a.model, out, calibrate=calib, **opts)
    report = graph.metadata.get("quantization", [])
    lossy = [r for r in report if r["rounded"] or r["clipped"]]
    print(f"compiled {a.model} -> {out}: {len(graph.nodes)} nodes, "
          f"{sum(1 for n in graph.fixed)} with a fixed-point view")
    for n in graph.metadata.get("nir_notes", ()):       # what the NIR import assumed or changed
        print(f"note: {n}")
    if lossy:
        clipped = [r for r in lossy if r["clipped"]]
        print("quantization " + ("clipped" if clipped else "rounded") + " some parameters"
              + (" (clipped: outside Loihi 2's range, set to the nearest value that fits)" if clipped else "") + ":")
        print(quantization_table(type(graph)(metadata={"quantization": lossy})))
    else:
        print("quantization exact: every parameter is representable in Loihi 2 fixed point")
    if "calibration" in graph.metadata:
        from .compiler.calibrate import calibration_table
        print("calibration (scales chosen on the calibration data):")
        print(calibration_table(graph))
    return 0


def _nir_options(a) -> dict:
    keys = ("dt", "convention", "integrator", "reset", "reset_delay", "recurrent_delay", "rounding")
    out = {k: getattr(a, k, None) for k in keys}
    if getattr(a, "reset_timing", None):
        out["reset_delay"] = a.reset_timing == "delayed"
    return {k: v for k, v in out.items() if v is not None}


def cmd_export_nir(a) -> int:
    from . import api
    from .backends.nir_export import export_nir
    out = _out_path(a.output, [a.model])
    graph = api._as_graph(a.model)
    notes = export_nir(graph, out, dt=a.dt, compat=a.nir_compat)
    print(f"exported {a.model} -> {out} (NIR {a.nir_compat or 'current'})")
    for n in notes:
        print(f"note: {n}")
    return 0


def cmd_export_net(a) -> int:
    import warnings
    from . import api
    from .backends.netx_export import export_netx
    out = _out_path(a.output, [a.model])
    graph = api._as_graph(a.model)
    notes = []

    def write(tmp):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notes.extend(export_netx(graph, tmp))
    files.write_atomic(out, write)
    print(f"exported {a.model} -> {out} (netx HDF5)")
    for n in notes:
        print(f"note: {n}")
    return 0


def cmd_info(a) -> int:
    from . import api
    from .compiler.printing import graph_table, quantization_table
    graph = api.import_model(a.model)
    if a.passes:                              # the float view through every pass, printed after each
        from .compiler.pipeline import describe
        graph = graph.copy()
        graph.fixed = {}
        print(describe(graph))
        return 0
    if not graph.fixed:
        graph = api._as_graph(graph)          # fold pooling, quantize
    print(graph_table(graph))
    notes = graph.metadata.get("nir_notes", ())
    if notes:
        print()
        print("import notes")
        print("\n".join(f"- {n}" for n in notes))
    print()
    print("quantization report")
    print(quantization_table(graph))
    if "calibration" in graph.metadata:
        from .compiler.calibrate import calibration_table
        print()
        print("calibration report")
        print(calibration_table(graph))
    from .compiler.notes import deployment_notes
    notes = deployment_notes(graph)
    if notes:
        print()
        print("deployment notes")
        print("\n".join(f"- {n}" for n in notes))
    return 0


def cmd_run(a) -> int:
    from . import api
    x = _load_input(a.input)
    out = _out_path(a.output, [a.model, a.input])
    engine = registry.get(a.backend, "--backend")
    graph = api._as_graph(a.model)
    model = a.model if engine.reads == "onnx" else graph       # onnxruntime runs the .onnx file itself
    result = api.run(model, x, backend=a.backend, timeout=a.timeout, progress=a.progress)
    result.to_npz(out)
    totals = ", ".join(f"{k} {v}" for k, v in result.layer_totals().items())
    binary = bool(np.all((result.output == 0) | (result.output == 1)))
    what = f"{int(result.output.sum())} output spikes" if binary else \
        f"output values in [{float(result.output.min()):.6g}, {float(result.output.max()):.6g}] (read-out)"
    print(f"{result.engine}: {what} in {result.seconds:.2f} s "
          f"-> {out}\nspikes per population: {totals}")
    _warn_lossy(graph)
    return 0


def cmd_parity(a) -> int:
    from .parity import parity_table, run_parity
    from . import api
    x = _load_input(a.input)
    engines = None
    if a.engines is not None:
        engines = [e.strip() for e in a.engines.split(",") if e.strip()]
        bad = [e for e in engines if e not in api.ENGINES]
        if bad or not engines:
            raise SnncError(f"--engines {a.engines!r}: choose from {', '.join(api.ENGINES)} "
                            "(onnxruntime always runs)")
    if not a.model.lower().endswith(".onnx"):
        raise SnncError(f"{a.model}: parity compares an ONNX model with its compiled engines; give the .onnx file")
    graph = api.compile(a.model)
    _, summary, reference = run_parity(a.model, x, engines=engines, timeout=a.timeout, graph=graph)
    print(parity_table(summary, reference))
    _warn_lossy(graph)
    return 0


def cmd_deploy(a) -> int:
    from . import deploy
    if a.target != "loihi2":
        raise SnncError(f"unknown deploy target {a.target!r}; snnc deploys to loihi2")
    if not (a.dry_run or a.bundle):
        from .backends import loihi_hw
        loihi_hw.require_runtime()          # fail fast, before loading anything
        if not a.input or not a.output:
            raise SnncError("a hardware run needs --input spikes.npy and -o output.npz")
        x = _load_input(a.input)
        out = _out_path(a.output, [a.model, a.input])
        result = deploy.run_hardware(a.model, x)
        result.to_npz(out)
        print(f"{result.engine}: {int(result.output.sum())} output spikes -> {out}")
        return 0
    from . import api
    x = _load_input(a.input) if a.input else None
    if a.bundle:
        files.check_output_dir(a.bundle, "--bundle")
    path = None
    if a.dry_run:
        path = _out_path(a.map or os.path.splitext(a.model)[0] + ".map.json", [a.model, a.input], "--map")
    graph = api._as_graph(a.model)
    if a.bundle:
        manifest = deploy.write_bundle(graph, a.bundle, spikes=x, system=a.system, chips=a.chips)
        print(f"bundle -> {a.bundle}: {', '.join(sorted(manifest['files']))}, manifest.json "
              f"({manifest['cores']} cores on {manifest['chips']} chip(s); expected output from "
              f"{manifest['sim_backend']}); check it with: python {os.path.join(a.bundle, 'run.py')}")
        if not a.dry_run:
            _warn_lossy(graph)
            return 0
    m, est, report = deploy.dry_run(graph, system=a.system, chips=a.chips, spikes=x)
    deploy.write_json(report, path)
    print(m.table())
    if est is not None:
        print(est.summary())
    print(f"map -> {path}")
    _warn_lossy(graph)
    return 0


def cmd_eval(a) -> int:
    from . import evaluate
    x, y = _load_input(a.data), _load_input(a.labels)
    out = _out_path(a.json, [a.model, a.data, a.labels]) if a.json else None
    report = evaluate.evaluate(a.model, x, y, engine=a.engine, workers=a.workers, ray=a.ray,
                               readout=a.readout, shard_size=a.shard_size, timeout=a.timeout,
                               progress=not a.quiet)
    print(report.summary())
    if out:
        evaluate.write_json(report, out)
        print(f"report -> {out}")
    return 0


def _positive(text: str, unit: str = "") -> float:
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number{unit}, got {text!r}")
    return v


def _seconds(text: str) -> float:
    return _positive(text, " of seconds")


def _count(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v
    parse.__name__ = "integer"
    return parse


def _shape(text: str) -> tuple:
    try:
        dims = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        dims = ()
    if len(dims) not in (1, 3) or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"must be C,H,W (or N) of positive integers, got {text!r}")
    return dims


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="snnc", description="Compile spiking neural networks to Loihi via Lava.")
    p.add_argument("--version", action="version", version=f"snnc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="ONNX, netx .net or NIR .nir model -> compiled .snnc artifact (checked and quantized)")
    c.add_argument("model")
    c.add_argument("-o", "--output", help="output .snnc path (default: next to the model)")
    c.add_argument("--reset-interval", type=_count(1), help=".net only: netx's periodic state reset (steps)")
    c.add_argument("--reset-offset", type=_count(0), help=".net only: netx's reset phase (default 0)")
    c.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                   help=".net only: the input shape when the file has no input layer (SLAYER order C,H,W, or N)")
    c.add_argument("--num-layers", type=_count(1), metavar="N",
                   help=".net only: read only the first N layers (as netx's num_layers)")
    c.add_argument("--dt", type=_positive, help=".nir only: the time step in the graph's time unit (NIR stores none)")
    c.add_argument("--convention", choices=["snntorch", "norse", "sinabs", "rockpool", "spyx", "spyx-2023",
                                             "spikingjelly", "lava"],
                   help=".nir only: read the graph as this library writes/runs it (presets dt, integrator, "
                        "reset; refuses graphs that contradict it; docs/nir.md)")
    c.add_argument("--integrator", choices=["euler", "exact"], help=".nir only: forward Euler or exact decay")
    c.add_argument("--reset", choices=["zero", "subtract", "none"],
                   help=".nir only: reset mode (default: the graph's v_reset, which must be 0)")
    c.add_argument("--reset-timing", choices=["immediate", "delayed"],
                   help=".nir only: subtract at the spike step, or one step late (snnTorch's reset_delay)")
    c.add_argument("--recurrent-delay", type=_count(1), help=".nir only: steps on a cycle's back edge (default 1)")
    c.add_argument("--rounding", choices=["nir_to_lava"],
                   help=".nir only: the integer grid of the NIR paper's Lava script (reproduces its traces)")
    c.add_argument("--calibrate", metavar="CALIB.npy",
                   help="calibration spikes N,C[,H,W],T: choose each population's scales on them "
                        "(float-trained models)")
    c.set_defaults(fn=cmd_compile)
    x = sub.add_parser("export-nir", help="compiled model -> NIR graph (.nir, discrete convention)")
    x.add_argument("model", help=".snnc (or .onnx/.net/.nir)")
    x.add_argument("-o", "--output", required=True, help="output .nir path")
    x.add_argument("--dt", type=_positive, help="time step to write (default: the model's, else 1e-4)")
    x.add_argument("--nir-compat", choices=["1.0.4"],
                   help="write what readers pinned to nir <= 1.0.4 load (Sinabs, Rockpool): no v_reset, no gzip")
    x.set_defaults(fn=cmd_export_nir)
    e = sub.add_parser("export-net", help="compiled model -> lava-dl netx .net (HDF5) file")
    e.add_argument("model", help=".snnc (or .onnx/.net)")
    e.add_argument("-o", "--output", required=True, help="output .net path")
    e.set_defaults(fn=cmd_export_net)
    i = sub.add_parser("info", help="print the spiking graph and the quantization report")
    i.add_argument("model", help=".snnc or .onnx")
    i.add_argument("--passes", action="store_true", help="print the graph after each compiler pass")
    i.set_defaults(fn=cmd_info)
    r = sub.add_parser("run", help="run a model on a spike array (Lava CPU simulation, reference, ...)",
                       description="engines (--backend):\n" + registry.describe(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("model", help=".snnc or .onnx")
    r.add_argument("--input", required=True, help=".npy spikes C[,H,W],T or N,C[,H,W],T (time last)")
    r.add_argument("-o", "--output", required=True,
                   help="output .npz (keys 'output', 'outputs/<Output>', 'counts/<population>', 'engine', "
                        "'seconds', 'timing/<phase>'; snnc.backends.result)")
    r.add_argument("--backend", default="lava-fixed", choices=registry.names(),
                   help="engine (default lava-fixed; listed above; onnxruntime needs the .onnx model)")
    r.add_argument("--timeout", type=_seconds, default=600.0, help="seconds before a Lava run is stopped (> 0)")
    r.add_argument("--progress", action="store_true", help="show a progress bar (reference engines)")
    r.set_defaults(fn=cmd_run)
    q = sub.add_parser("parity", help="onnxruntime vs Lava float vs Lava fixed vs reference, side by side")
    q.add_argument("model", help=".onnx")
    q.add_argument("--input", required=True)
    q.add_argument("--engines", help="comma-separated, of " + ", ".join(registry.names("graph"))
                   + " (default reference,lava-float,lava-fixed; onnxruntime always runs)")
    q.add_argument("--timeout", type=_seconds, default=600.0, help="seconds before a Lava run is stopped (> 0)")
    q.set_defaults(fn=cmd_parity)
    v = sub.add_parser("eval", help="accuracy over a labelled data set, sharded over processes or a Ray cluster",
                       description="engines (--engine):\n" + registry.describe("graph"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("model", help=".snnc (or .onnx/.net)")
    v.add_argument("--data", required=True, help=".npy samples N,C[,H,W],T (time last)")
    v.add_argument("--labels", required=True, help=".npy classes (N,)")
    v.add_argument("--engine", default="reference", help="one of: " + ", ".join(registry.names("graph")))
    v.add_argument("--workers", type=_count(1), default=1, help="local processes (or Ray CPUs with --ray local)")
    v.add_argument("--ray", metavar="ADDRESS", help="run shards as Ray tasks: 'local' starts a cluster here, "
                   "else a cluster address ('auto', 'ray://host:10001')")
    v.add_argument("--readout", help="count (default), trace:TAU, max, mean, last")
    v.add_argument("--shard-size", type=_count(1), help="samples per shard (default: about 4 shards per worker)")
    v.add_argument("--timeout", type=_seconds, default=600.0, help="seconds before one shard's Lava run is stopped (> 0)")
    v.add_argument("--json", help="write the report as JSON here")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.set_defaults(fn=cmd_eval)
    d = sub.add_parser("deploy", help="map onto Loihi 2 cores/chips (--dry-run), write a bundle, or run on Loihi 2")
    d.add_argument("model", help=".snnc or .onnx")
    d.add_argument("--target", default="loihi2", help="deployment target (loihi2)")
    d.add_argument("--dry-run", action="store_true", help="map and check the fit only; print and write the map")
    d.add_argument("--system", default="kapoho-point", choices=["single-chip", "kapoho-point", "hala-point"],
                   help="Loihi 2 system (chips available)")
    d.add_argument("--chips", type=_count(1), help="number of chips available (overrides --system's)")
    d.add_argument("--map", help="where to write the JSON map (default: MODEL.map.json)")
    d.add_argument("--input", help=".npy spikes: estimates (dry run), test input (bundle), data (hardware)")
    d.add_argument("--bundle", metavar="DIR", help="write a deployment bundle to DIR")
    d.add_argument("-o", "--output", help="hardware run: output .npz (same format as snnc run)")
    d.set_defaults(fn=cmd_deploy)
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        with _terminating_signals():
            return args.fn(args)
    except SnncError as e:
        print(f"snnc: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:                 # snnc ... | head: the reader left; not an error of ours
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        print("snnc: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"snnc: stopped by {e.name}", file=sys.stderr)
        return 128 + e.signum
    except Exception as e:  # an snnc bug, not the user's: say so, briefly
        if os.environ.get("SNNC_DEBUG"):
            raise
        print(f"snnc: internal error: {type(e).__name__}: {e} (set SNNC_DEBUG=1 for a traceback; "
              "please report it)", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
