"""netx vs snnc, side by side, in one run: wall time, steps/s, synaptic events/s, peak memory,
compile time, and whether the outputs are bit-identical.

    .venv/bin/python benchmarks/speed.py                  # default run (~10 min on 2 busy cores)
    .venv/bin/python benchmarks/speed.py --quick          # ~2 min: short N-TIDIGITS, small family
    .venv/bin/python benchmarks/speed.py --cases ntidigits --engines reference,lava-fused

Engines (every one reads the same netx ``.net`` file):
  netx          lava-dl's ``netx.hdf5.Network`` on Lava ``Loihi2SimCfg(fixed_pt)``, as lava-dl's own
                tests run it (RingBuffer source and sink; PilotNet: input through the input layer's
                bias, as netx requires)
  lava-layered  snnc's Lava backend (``lava-fixed``): one Lava process per layer (a population and
                its Dense synapses; Loihi's structure, whose hardware plan has a process per synapse too)
  lava-fused    snnc's fused Lava backend (``lava-fused-fixed``): the whole graph as one Lava process
  reference     snnc's reference simulator (numpy, fixed point; feed-forward graphs with enough
                work per step: the time-batched plan, one GEMM/im2col per synapse for all steps)
  reference-step  the same simulator forced onto its step plan (the reference before the batched plan)
  torch         snnc's torch engine (``--backend torch``: the batched plan on torch, CPU threads here)
Cases: ``ntidigits`` (64-256-256-242, axonal delays, 3000 steps), ``pilotnet`` (PilotNet LIF, conv,
input through bias), ``digits`` (the digits example's 360-sample test split as one batch, snnc
engines only: needs ``make demo``'s examples/digits/out/digits.snnc), ``family`` (generated 3-layer Dense chains exported to .net: synapses 1e3..1e6
at a fixed T, and T 10..1e4 at a fixed size).

Every measurement runs in a fresh child process (``--measure``) with a timeout; peak memory is the
largest sum of PSS over the child's process tree (Lava runs one OS process per Lava process;
PSS splits pages shared between them), sampled every 50 ms. Compile time is the model file
to a runnable network: ``snnc.compile`` (import + quantization) for snnc, ``netx.hdf5.Network`` for
netx; Lava's own build of the processes is part of the wall time, which covers everything a user
waits for (child start, Lava compile, run, read-back). Synaptic events: every spike (inputs and
populations) times its fan-out (non-zero weights), counted from the reference run.

Outputs: JSON (``--out``, default benchmarks/results/speed.json), a PNG plot next to it, and a
Markdown table (``--md``, default benchmarks/RESULTS.md). Timings on a shared machine are noisy:
compare the ratios within one run.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ENGINES = ["netx", "lava-layered", "lava-fused", "reference-step", "reference", "torch"]
WARM_ENGINES = ("reference", "reference-step", "torch")    # cheap to run again: a warm run too
WARM_RUNS = 5
WARM_GROUPS = ("ntidigits", "pilotnet")                   # the cases with a GEMM-limit column
SNNC_BACKEND = {"lava-layered": "lava-fixed", "lava-fused": "lava-fused-fixed", "reference": "reference",
                "reference-step": "reference", "torch": "torch"}


def gemm_rate(n=1500, reps=3):
    """This machine's dense GEMM rate now (GFLOP/s, float64 and float32): the limit column."""
    out = {}
    for dt in (np.float64, np.float32):
        a = np.random.default_rng(0).random((n, n)).astype(dt)
        a @ a
        t = time.perf_counter()
        for _ in range(reps):
            a @ a
        out[np.dtype(dt).name] = 2.0 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    return out


# ----------------------------------------------------------------------------- cases
def gts_dir():
    import lava.lib.dl.netx as nx
    return os.path.normpath(os.path.join(os.path.dirname(nx.__file__), *[".."] * 4, "tests", "lava",
                                         "lib", "dl", "netx", "gts"))


def family_net(path, width, n_in=None, seed=0):
    """A 3-layer CUBA Dense chain n_in -> width -> width -> 10 (netx conventions: Delay(1) between
    layers and after the input), random weights scaled to keep every layer spiking, written as a netx .net file."""
    from snnc.backends.netx_export import export_netx
    from snnc.compiler.ir import CubaLIF, Delay, Dense, Graph, Input, Output
    from snnc.compiler.quantize import quantize
    n_in = n_in or width
    rng = np.random.default_rng(seed)
    g = Graph()
    prev = g.add("in", Input((n_in,)))
    sizes = [n_in, width, width, 10]
    for i in range(3):
        src = g.add(f"d{i}", Delay(np.array(1)), prev)
        fan = sizes[i]
        w = rng.normal(0.6, 2.0, (sizes[i + 1], fan)) * (8.0 / np.sqrt(fan))
        g.add(f"fc{i}", Dense(np.clip(np.round(w * 64) / 64, -4, 3.96875)), src)
        prev = g.add(f"lif{i}", CubaLIF((sizes[i + 1],), 0.25, 0.03, 1.25), f"fc{i}")
    g.add("out", Output((10,)), prev)
    export_netx(quantize(g), path)


def family_synapses(width, n_in=None):
    n_in = n_in or width
    return n_in * width + width * width + width * 10


def make_cases(args, work):
    """[(case dict)]: name, group, net path, input .npy (netx layout), steps, netx input mode."""
    gts = gts_dir()
    cases = []
    if "ntidigits" in args.cases:
        T = args.ntidigits_steps
        x = np.load(os.path.join(gts, "ntidigits", "input.npy"))[:, :T]
        xp = os.path.join(work, "ntidigits_in.npy")
        np.save(xp, x)
        cases.append(dict(name=f"N-TIDIGITS ({T} steps)", group="ntidigits",
                          net=os.path.join(gts, "ntidigits", "ntidigits.net"), input=xp, steps=T,
                          netx_options={"num_layers": 5}, snnc_shape=(1, 1, 64), feed="spikes"))
    if "pilotnet" in args.cases:
        T = args.pilotnet_steps
        img = np.load(os.path.join(gts, "pilotnet_lif", "image.npy"))
        xp = os.path.join(work, "pilotnet_image.npy")
        np.save(xp, img)
        cases.append(dict(name=f"PilotNet LIF ({T} steps)", group="pilotnet",
                          net=os.path.join(gts, "pilotnet_lif", "network.net"), input=xp, steps=T,
                          netx_options={}, feed="bias"))
    if "digits" in args.cases:
        model = os.path.join(ROOT, "examples", "digits", "out", "digits.snnc")
        if os.path.exists(model):
            sys.path.insert(0, os.path.join(ROOT, "examples", "digits"))
            import data
            _, _, x, y = data.load()
            xp = os.path.join(work, "digits_test.npy")
            np.save(xp, x)
            np.save(os.path.join(work, "digits_labels.npy"), y)
            cases.append(dict(name=f"digits test split ({len(x)} samples x {x.shape[-1]} steps)",
                              group="digits", net=model, input=xp, steps=int(x.shape[-1]),
                              labels=os.path.join(work, "digits_labels.npy"), netx_options={},
                              feed="batch", engines=["lava-fused", "reference-step", "reference", "torch"]))
        else:
            print(f"digits: {model} not found (run `make demo` first); case skipped")
    if "family" in args.cases:
        rng = np.random.default_rng(1)
        for width in args.widths:
            for T in ([args.family_steps] if width != args.t_width else sorted(set(args.t_steps + [args.family_steps]))):
                path = os.path.join(work, f"chain{width}.net")
                if not os.path.exists(path):
                    family_net(path, width)
                x = (rng.random((width, T)) < 0.2).astype(np.float64)
                xp = os.path.join(work, f"chain{width}_T{T}.npy")
                np.save(xp, x)
                cases.append(dict(name=f"chain {width} ({family_synapses(width)} syn, {T} steps)",
                                  group="family-size" if T == args.family_steps else "family-steps",
                                  net=path, input=xp, steps=T, netx_options={}, feed="spikes",
                                  width=width, synapses=family_synapses(width)))
    return cases


# ----------------------------------------------------------------------------- one measurement
def measure(spec):
    """In the child: compile + run one engine on one case; returns a dict (and saves the output)."""
    eng, case = spec["engine"], spec["case"]
    T = case["steps"]
    x = np.load(case["input"])
    res = {"engine": eng, "case": case["name"]}
    if eng == "netx":
        from lava.lib.dl import netx
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc import io
        t0 = time.perf_counter()
        net = netx.hdf5.Network(net_config=case["net"], **case["netx_options"])
        res["compile_s"] = time.perf_counter() - t0
        sink = io.sink.RingBuffer(shape=net.out.shape, buffer=T)
        net.out.connect(sink.a_in)
        if case["feed"] == "bias":
            net.in_layer.neuron.bias_mant.init = x
        else:
            src = io.source.RingBuffer(data=x)
            src.s_out.connect(net.inp)
        t1 = time.perf_counter()
        try:
            net.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            out = np.asarray(sink.data.get())
        finally:
            net.stop()
        res["run_s"] = time.perf_counter() - t1
        res["wall_s"] = time.perf_counter() - t0
    else:
        import snnc.api
        import snnc.backends.lava_backend  # noqa: F401  (imports outside the timing, as for netx)
        import snnc.backends.lava_fused  # noqa: F401
        import snnc.backends.reference  # noqa: F401
        import h5py  # noqa: F401  (netx's import of lava.lib.dl.netx loads it outside the timing too)
        if eng == "torch":
            import torch  # noqa: F401  (lazy: heavy; imported outside the timing)
        from snnc.api import run as snnc_run
        from snnc.backends.reference import run_reference
        from snnc.frontends.netx_import import bias_input
        t0 = time.perf_counter()
        g = snnc.api.compile(case["net"], **({"num_layers": case["netx_options"]["num_layers"]}
                                              if "num_layers" in case["netx_options"] else {}))
        net = snnc.api.lowered(g)       # validated and lowered: the network the engines read (as netx builds its own)
        res["compile_s"] = time.perf_counter() - t0
        if case["feed"] == "bias":
            xs = bias_input(x, T)[None]
        elif case["feed"] == "batch":
            xs = x
        else:
            shape = tuple(g.nodes[g.inputs[0]].shape)
            xs = x.reshape((1,) + shape + (T,))
        def run_once():
            if eng == "reference-step":
                return run_reference(net, np.asarray(xs), "fixed", plan="step")
            return snnc_run(net, xs, backend=SNNC_BACKEND[eng], timeout=spec["timeout"])
        t1 = time.perf_counter()
        r = run_once()
        res["run_s"] = time.perf_counter() - t1
        res["wall_s"] = time.perf_counter() - t0
        if eng in WARM_ENGINES and case["group"] in WARM_GROUPS:   # again in this process: warm memory, caches
            warm = []
            for _ in range(WARM_RUNS):
                t2 = time.perf_counter()
                run_once()
                warm.append(time.perf_counter() - t2)
            res["warm_run_s"] = float(np.median(warm))
        out = np.asarray(r.output).reshape((-1, T))
        if case.get("labels"):
            pred = np.asarray(r.output).sum(axis=-1).argmax(axis=1)
            res["accuracy"] = float((pred == np.load(case["labels"])).mean())
        np.savez(spec["counts_path"], **{k: v for k, v in r.counts.items()})
        if eng == "reference":
            from snnc.backends.reference_batched import macs_per_step
            res["synaptic_events"] = synaptic_events(g, r.counts, xs)
            res["macs"] = macs_per_step(g, int(np.asarray(xs).shape[0])) * T
    np.save(spec["out_path"], out.reshape((-1, T)))
    return res


def synaptic_events(g, counts, xs):
    """Sum over spiking sources (the input and every population) of spikes x fan-out."""
    from snnc.backends.reference import conv_matrix_sparse
    from snnc.compiler.ir import Conv2d, Dense, SumPool2d, _pair
    shapes = g.shapes()
    total = 0
    spikes = {k: np.asarray(v).sum(axis=0) for k, v in counts.items()}       # over the batch
    spikes[g.inputs[0]] = (np.asarray(xs).sum(axis=-1).sum(axis=0)
                           if g.nodes[g.inputs[0]].kind == "spikes" else None)
    for name, node in g.nodes.items():
        if not isinstance(node, (Dense, Conv2d, SumPool2d)):
            continue
        fx = g.fixed[name]
        if isinstance(node, Dense):
            fan = np.count_nonzero(np.asarray(fx.weight), axis=0)
        else:
            src_shape = shapes[g.predecessors(name)[0]]
            if isinstance(node, SumPool2d):
                c = src_shape[0]
                w = np.broadcast_to(np.asarray(fx.weight, float), (c, 1) + tuple(node.kernel))
                args = (w, src_shape, shapes[name], _pair(node.stride), _pair(node.padding), (1, 1), c)
            else:
                args = (np.asarray(fx.weight, float), src_shape, shapes[name], _pair(node.stride),
                        _pair(node.padding), _pair(node.dilation), node.groups)
            m = conv_matrix_sparse(*args)
            fan = np.diff(m.tocsc().indptr)
        # walk back through Delay/Flatten to the spiking source
        src = g.predecessors(name)[0]
        while src not in spikes:
            src = g.predecessors(src)[0]
        s = spikes[src]
        if s is not None:
            total += int(np.dot(np.asarray(s, np.int64).reshape(-1), fan.reshape(-1).astype(np.int64)))
    return total


# ----------------------------------------------------------------------------- process tree memory
def _tree_rss(pid):
    """Sum of the proportional set size (PSS: shared pages split between the processes that share
    them; VmRSS where smaps_rollup is unavailable), in bytes, of ``pid`` and its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        for fname, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
            try:
                with open(f"/proc/{p}/{fname}") as f:
                    for line in f:
                        if line.startswith(key):
                            total += int(line.split()[1]) * 1024
                            break
                break
            except OSError:
                continue
    return total


def run_child(spec, timeout):
    """Run ``measure(spec)`` in a child process; returns its result dict (with peak memory)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    res_path = spec_path + ".out"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--measure", spec_path, res_path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            stop.wait(0.05)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        import signal
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        err = b""
        result = {"error": f"timeout after {timeout:.0f} s"}
    else:
        if proc.returncode == 0 and os.path.exists(res_path):
            with open(res_path) as f:
                result = json.load(f)
        else:
            tail = "\n".join(err.decode("utf-8", "replace").strip().splitlines()[-5:])
            result = {"error": f"exit code {proc.returncode}: {tail}"}
    finally:
        stop.set()
        th.join()
        for p in (spec_path, res_path):
            if os.path.exists(p):
                os.remove(p)
    result["peak_mem_mb"] = peak[0] / 2 ** 20
    result["child_wall_s"] = time.perf_counter() - t0
    return result


# ----------------------------------------------------------------------------- report
def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        if v >= 100:
            return f"{v:.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def table(rows, cols):
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(out)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    colors = {"netx": "tab:red", "lava-layered": "tab:orange", "lava-fused": "tab:blue", "reference": "tab:green",
              "reference-step": "tab:olive", "torch": "tab:purple"}
    for key, ax, xkey, title in (("family-size", axes[0], "synapses", "generated chains: cost vs size"),
                                 ("family-steps", axes[1], "steps", "generated chains: cost vs T")):
        for eng in ENGINES:
            pts = sorted((r["case_info"][xkey], r["wall_s"]) for r in results
                         if r["group"] == key and r["engine"] == eng and "wall_s" in r)
            if pts:
                ax.loglog(*zip(*pts), "o-", label=eng, color=colors[eng])
        ax.set_xlabel(xkey)
        ax.set_ylabel("wall time (s)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    ax = axes[2]
    cases = [c for c in dict.fromkeys(r["case"] for r in results
                                      if r["group"] in ("ntidigits", "pilotnet", "digits"))]
    width = 0.2
    for i, eng in enumerate(ENGINES):
        vals = []
        for c in cases:
            rr = [r for r in results if r["case"] == c and r["engine"] == eng and "wall_s" in r]
            vals.append(rr[0]["wall_s"] if rr else np.nan)
        ax.bar(np.arange(len(cases)) + (i - 1.5) * width, vals, width, label=eng, color=colors[eng])
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cases)))
    ax.set_xticklabels(cases, fontsize=8)
    ax.set_ylabel("wall time (s)")
    ax.set_title("lava-dl networks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--report-only", action="store_true",
                    help="re-render the Markdown table and plot from the JSON at --out (no runs)")
    ap.add_argument("--quick", action="store_true", help="short runs (~2 min)")
    ap.add_argument("--no-eval", action="store_true", help="skip snnc eval throughput vs workers")
    ap.add_argument("--eval-engines", default="lava-fixed,lava-fused-fixed,reference,torch")
    ap.add_argument("--cases", default="ntidigits,pilotnet,digits,family")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "speed.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "benchmarks", "RESULTS.md"))
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    ap.add_argument("--lava-max-events", type=float, default=3e6,
                    help="family: skip Lava engines (netx, layered) where T x synapses exceeds this "
                         "many times 1e3 (they would take minutes)")
    a = ap.parse_args()
    if a.measure:
        with open(a.measure[0]) as f:
            spec = json.load(f)
        res = measure(spec)
        with open(a.measure[1], "w") as f:
            json.dump(res, f)
        sys.stdout.flush()
        os._exit(0)

    if a.report_only:
        with open(a.out) as f:
            d = json.load(f)
        png = os.path.splitext(a.out)[0] + ".png"
        plot(d["results"], png)
        write_md(a.md, d["meta"], d["results"], a.out, png)
        print(f"-> {a.md}, {png}")
        return
    a.cases = a.cases.split(",")
    engines = a.engines.split(",")
    a.ntidigits_steps = 300 if a.quick else 3000
    a.pilotnet_steps = 10 if a.quick else 24
    # chains n -> n -> n -> 10 with 2n^2 + 10n synapses: ~1e3, ~1e4, ~1e5, ~1e6
    a.widths = [18, 64, 220] if a.quick else [18, 64, 220, 706]
    a.family_steps = 100 if a.quick else 1000
    a.t_width = 64
    a.t_steps = [10, 100, 1000] if a.quick else [10, 100, 1000, 10000]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    work = tempfile.mkdtemp(prefix="snnc-bench-")
    cases = make_cases(a, work)
    gemm = gemm_rate()
    print(f"GEMM: float64 {gemm['float64']:.1f} GFLOP/s, float32 {gemm['float32']:.1f} GFLOP/s", flush=True)
    results = []
    started = time.perf_counter()
    for case in cases:
        outs = {}
        for eng in engines:
            if case.get("engines") and eng not in case["engines"]:
                continue
            if case["group"].startswith("family") and eng in ("netx", "lava-layered"):
                if case["steps"] * case["synapses"] > a.lava_max_events * 1e3:
                    print(f"{case['name']:45s} {eng:13s} skipped (T x synapses > {a.lava_max_events:g}e3)",
                          flush=True)
                    continue
            spec = {"engine": eng, "case": case, "timeout": a.timeout,
                    "out_path": os.path.join(work, f"out_{len(results)}.npy"),
                    "counts_path": os.path.join(work, f"counts_{len(results)}.npz")}
            r = run_child(spec, a.timeout + 60)
            r.update(engine=eng, case=case["name"], group=case["group"],
                     case_info={k: case.get(k) for k in ("steps", "synapses", "width")})
            if "error" not in r:
                outs[eng] = np.load(spec["out_path"])
                r["steps_per_s"] = case["steps"] / r["wall_s"]
                if eng != "netx" and os.path.exists(spec["counts_path"]):
                    r["_counts"] = spec["counts_path"]
            results.append(r)
            print(f"{case['name']:45s} {eng:13s} " + (f"wall {r['wall_s']:8.2f} s  compile {r['compile_s']:.3f} s  "
                  f"peak {r['peak_mem_mb']:7.0f} MB" if "error" not in r else r["error"]), flush=True)
        # identity and ratios against the reference simulator's output (and counts)
        rows = [r for r in results if r["case"] == case["name"]]
        ref = next((r for r in rows if r["engine"] == "reference" and "error" not in r), None)
        events = ref.get("synaptic_events") if ref else None
        macs = ref.get("macs") if ref else None
        ref_counts = np.load(ref["_counts"]) if ref and "_counts" in ref else None
        netx_row = next((r for r in rows if r["engine"] == "netx" and "error" not in r), None)
        for r in rows:
            if "error" in r:
                continue
            if "reference" in outs:
                same = np.array_equal(outs[r["engine"]], outs["reference"])
                if "_counts" in r and ref_counts is not None:
                    c = np.load(r["_counts"])
                    same = same and all(np.array_equal(c[k], ref_counts[k]) for k in ref_counts.files)
                r["identical_to_reference"] = bool(same)
            if events is not None:
                r["synaptic_events"] = events
                r["events_per_s"] = events / r["wall_s"]
            if netx_row:
                r["speedup_vs_netx"] = netx_row["wall_s"] / r["wall_s"]
            if macs:
                # the GEMM limit: every connection of every step as dense float64 GEMM at this
                # machine's measured rate; the ratio is of the run time (compile excluded)
                r["gemm_limit_s"] = 2.0 * macs / (gemm["float64"] * 1e9)
                r["x_gemm_limit"] = r["run_s"] / r["gemm_limit_s"]
                if "warm_run_s" in r:
                    r["x_gemm_limit_warm"] = r["warm_run_s"] / r["gemm_limit_s"]
            r.pop("_counts", None)
    total = time.perf_counter() - started
    import shutil
    shutil.rmtree(work, ignore_errors=True)

    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "total_s": total,
            "command": " ".join(["benchmarks/speed.py"] + sys.argv[1:]), "quick": a.quick,
            "gemm_gflops": gemm}
    if not a.no_eval:
        meta["eval_workers"] = eval_workers(a)
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=float)
    png = os.path.splitext(a.out)[0] + ".png"
    try:
        plot(results, png)
    except Exception as e:  # the plot is a convenience
        print(f"plot failed: {e}")
    write_md(a.md, meta, results, a.out, png)
    print(f"\n{len(results)} measurements in {total:.0f} s -> {a.out}, {png}, {a.md}")


def _slope(pts):
    """Least-squares slope of log(y) against log(x)."""
    pts = [(x, y) for x, y in pts if x and y]
    if len(pts) < 2:
        return None
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def summary(results):
    ok = [r for r in results if "error" not in r]
    out = ["## Summary", ""]
    nti = [r for r in ok if r["group"] == "ntidigits"]
    if nti:
        parts = [f"{r['engine']} {r['wall_s']:.2f} s" + (f" ({r['speedup_vs_netx']:.0f}x)" if r["engine"] != "netx"
                                                       and "speedup_vs_netx" in r else "")
                 for r in nti]
        same = all(r.get("identical_to_reference") for r in nti)
        out.append(f"- {nti[0]['case']}: " + ", ".join(parts) + f"; outputs identical: {same}.")
    dig = [r for r in ok if r["group"] == "digits"]
    for r in dig:
        out.append(f"- {r['case']}: {r['engine']} {r['wall_s']:.2f} s (compile {r['compile_s']:.3f} s), "
                   f"accuracy {100 * r.get('accuracy', float('nan')):.1f} %, identical: {r.get('identical_to_reference')}.")
    pil = [r for r in ok if r["group"] == "pilotnet"]
    if pil:
        comp = [r["compile_s"] for r in pil if r["engine"] != "netx"]
        parts = [f"{r['engine']} {r['wall_s']:.2f} s" for r in pil]
        out.append(f"- {pil[0]['case']}: " + ", ".join(parts) + f"; snnc compile (import + quantize) "
                   f"{min(comp):.3f}-{max(comp):.3f} s.")
    fam = [r for r in ok if r["group"] == "family-size"]
    if fam:
        parts = []
        for eng in ENGINES:
            sl = _slope([(r["case_info"]["synapses"], r["wall_s"]) for r in fam if r["engine"] == eng])
            if sl is not None:
                parts.append(f"{eng} {sl:.2f}")
        cs = _slope([(r["case_info"]["synapses"], r["compile_s"]) for r in fam if r["engine"] == "reference"])
        out.append("- growth with size (log-log slope of wall time vs synapses, generated chains; "
                   "1 = linear, below 1 = fixed costs dominate): " + ", ".join(parts)
                   + (f"; snnc compile time slope {cs:.2f}." if cs is not None else "."))
    fs = [r for r in ok if r["group"] == "family-steps"]
    if fs:
        parts = []
        for eng in ENGINES:
            sl = _slope([(r["case_info"]["steps"], r["wall_s"]) for r in fs if r["engine"] == eng])
            if sl is not None:
                parts.append(f"{eng} {sl:.2f}")
        out.append("- growth with T (log-log slope of wall time vs steps): " + ", ".join(parts) + ".")
    return out


def eval_workers(a):
    """``snnc eval`` throughput vs workers (benchmarks/eval_workers.py, in a child): its rows."""
    out = os.path.join(tempfile.mkdtemp(prefix="snnc-evalw-"), "eval_workers.json")
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "eval_workers.py"), "--engines", a.eval_engines,
           "--out", out] + (["--samples", "32"] if a.quick else [])
    try:
        subprocess.run(cmd, check=True, timeout=a.timeout, env=dict(os.environ, PYTHONPATH=ROOT))
        with open(out) as f:
            return json.load(f)["results"]
    except (subprocess.SubprocessError, OSError, KeyError, ValueError) as e:
        print(f"eval_workers failed: {e}")
        return []


def write_md(path, meta, results, json_path, png):
    cols = ["case", "engine", "wall_s", "run_s", "speedup_vs_netx", "x_gemm_limit", "warm_run_s",
            "x_gemm_limit_warm", "accuracy", "steps_per_s",
            "events_per_s", "peak_mem_mb", "compile_s", "identical_to_reference"]
    rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(path)))  # noqa: E731
    lines = ["# Benchmark results (latest run)", "",
             f"Command: `.venv/bin/python {meta['command']}` — {meta['date']}, {meta['machine']}, "
             f"{meta['cpus']} CPUs (shared with other jobs: compare ratios within the run), "
             f"{meta['total_s']:.0f} s in total. Raw data: [{rel(json_path)}]({rel(json_path)}), "
             f"plot: [{rel(png)}]({rel(png)}).", "",
             "Columns: wall time (compile + Lava build + run + read-back, everything the user waits "
             "for), speed-up = netx wall / engine wall, steps/s (time steps per second; a batch steps all "
             "its samples at once), synaptic events/s "
             "(spikes x fan-out), peak memory (PSS summed over the process tree), compile = model file to a "
             "runnable network (snnc: `api.compile` and `api.lowered`, its validated lowered network; netx: "
             "`netx.hdf5.Network`), identical = output spikes (and, for snnc engines, every population's "
             "spike counts) equal to the reference simulator's; run = the engine's run alone (compile "
             "excluded), the first run in a fresh process; warm_run = the median of "
             f"{WARM_RUNS} more runs in that process (engines {', '.join(WARM_ENGINES)}, lava-dl cases: memory, caches "
             "and BLAS warm, as the GEMM rate is measured); x_gemm_limit (_warm) = run (warm_run) / the GEMM "
             "limit, the time of every connection of every "
             "step as one dense float64 GEMM at this machine's measured rate "
             f"({meta.get('gemm_gflops', {}).get('float64', float('nan')):.1f} GFLOP/s float64, "
             f"{meta.get('gemm_gflops', {}).get('float32', float('nan')):.1f} float32, measured in the run).", "",
             "Engines: **netx** = lava-dl's `netx.hdf5.Network` on Lava `Loihi2SimCfg(fixed_pt)` "
             "(as lava-dl's tests run it); **lava-layered** = snnc's Lava backend (`lava-fixed`, one "
             "Lava process per layer: a population and its Dense synapses, `lava_layers`; a Conv "
             "synapse is its own process); **lava-fused** = snnc's "
             "fused Lava backend (`lava-fused-fixed`: the whole graph as one Lava process, batch "
             "vectorized, io Injector/Extractor); **reference** = snnc's numpy simulator "
             "(`reference`: the time-batched plan, one GEMM/im2col per synapse over all steps, for "
             "feed-forward graphs with >= 2^16 multiply-adds per step, else its compiled step plan); "
             "**reference-step** = the same simulator on its step plan (the reference before the "
             "batched plan); **torch** = `--backend torch` (the batched plan on torch, CPU threads). "
             "All read the same netx `.net` file; all are "
             "bit-exact Loihi fixed point. Reproduce: `make bench` (or "
             "`.venv/bin/python benchmarks/speed.py [--quick]`).", ""]
    lines += summary(results) + [""]
    for title, groups in (("lava-dl networks", ("ntidigits", "pilotnet")),
                          ("Digits test split (batch)", ("digits",)),
                          ("Generated 3-layer chains: growing size", ("family-size",)),
                          ("Generated 3-layer chains: growing T", ("family-steps",))):
        rows = [r for r in results if r["group"] in groups]
        if not rows:
            continue
        lines += [f"## {title}", "", table(rows, cols), ""]
    if any(r["group"] == "pilotnet" for r in results):
        lines += ["Note: PilotNet LIF's output (one integrating neuron with a threshold of 2048) does "
                  "not spike in these steps, so its netx comparison is of an all-zero output; the snnc "
                  "engines are also compared on every population's spike counts (identical).", ""]
    ev = meta.get("eval_workers") or []
    if ev:
        lines += ["## `snnc eval`: throughput vs workers", "",
                  "benchmarks/eval_workers.py (the digits demo's shape, seeded random weights, Bernoulli "
                  "spikes); identical = predictions and per-layer spike totals equal to the 1-worker run.", "",
                  table(ev, ["engine", "cluster", "workers", "samples", "seconds", "samples_per_second",
                             "speedup_vs_1", "identical_to_1_worker"]), ""]
    errs = [r for r in results if "error" in r]
    if errs:
        lines += ["## Errors", ""] + [f"- {r['case']} / {r['engine']}: {r['error']}" for r in errs] + [""]
    lines += [f"![plot]({rel(png)})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
