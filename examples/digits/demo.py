"""snnc's end-to-end demo on scikit-learn's digits (what `make demo` runs).

1. trains a SLAYER network (Conv -> Pool -> Flatten -> Dense, CUBA-LIF) on rate-coded digits
   (skipped when a trained model is already there; --retrain forces it);
2. exports it to ONNX with snnc.export, compiles it (IR + Loihi 2 fixed point) with snnc.compile;
3. runs the 360-sample test split in PyTorch, onnxruntime, the reference simulator, Lava
   floating_pt and Lava fixed_pt (bit-accurate Loihi 2 simulation);
4. prints accuracy and spike agreement per engine and spike counts per layer, and writes
   out/report.json and out/parity.png (spike raster PyTorch vs Lava, per-layer counts).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def torch_forward(net, x):
    """PyTorch forward: output spikes (N, 10, T) and per-population spike counts (N, ...).

    Counts are taken at each block's neuron (before SLAYER's one-step delay_shift), keyed by the
    name snnc gives the population (module path with '_' + '_neuron').
    """
    import torch
    counts, hooks = {}, []
    for name, mod in net.named_modules():
        neuron = getattr(mod, "neuron", None)
        if neuron is not None and hasattr(mod, "synapse"):
            key = name.replace(".", "_") + "_neuron"
            hooks.append(neuron.register_forward_hook(
                lambda m, i, o, key=key: counts.__setitem__(key, o.detach().sum(-1).numpy().astype(np.int64))))
    try:
        with torch.no_grad():
            y = net(torch.from_numpy(x)).numpy()
    finally:
        for h in hooks:
            h.remove()
    return y, counts


def plot(path, y_torch, y_lava, layers, engines):
    """Raster of one sample's output spikes (PyTorch vs Lava fixed) and per-layer totals."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    for label, y, marker, color in (("PyTorch", y_torch, "|", "tab:blue"), ("Lava fixed_pt", y_lava, "_", "tab:red")):
        n, t = np.nonzero(y)
        ax[0].scatter(t, n, marker=marker, s=120 if marker == "|" else 60, color=color, label=label)
    ax[0].set(xlim=(-0.5, y_torch.shape[-1] - 0.5), xlabel="time step", ylabel="output neuron (class)",
              title="test sample 0: output spikes",
              yticks=range(y_torch.shape[0]))
    ax[0].legend(loc="upper right")
    width = 0.8 / len(engines)
    for k, e in enumerate(engines):
        ax[1].bar(np.arange(len(layers)) + k * width, [layers[l].get(e, 0) for l in layers], width, label=e)
    ax[1].set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
    ax[1].set_xticklabels([l.replace("blocks_", "block ").replace("_neuron", "") for l in layers])
    ax[1].set(ylabel="spikes (test split, all samples)", title="spikes per layer", yscale="log")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(HERE, "out"))
    p.add_argument("--retrain", action="store_true", help="train even if out/model.pt exists")
    p.add_argument("--quick", action="store_true", help="seconds of training and 40 test samples (tests)")
    p.add_argument("--samples", type=int, default=None, help="test samples to run (default: all 360)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per Lava run")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)

    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import torch                  # lava-dl prints notes about optional datasets and CUDA on import
        import data
        import model as model_lib
        import train
    import snnc
    from snnc.compiler.printing import graph_table, quantization_table
    from snnc.backends.onnx_runtime import run_onnxruntime
    from snnc.parity import agreement
    torch.set_num_threads(2)

    weights = os.path.join(a.out, "model.pt")
    if a.retrain or a.quick or not os.path.exists(weights):
        print("== 1. training (PyTorch, SLAYER) ==")
        train.main([weights] + (["--quick"] if a.quick else []))
    else:
        print(f"== 1. using the trained model {weights} (--retrain to train again) ==")
    ckpt = torch.load(weights)
    net = model_lib.Network()
    _, _, x_te, y_te = data.load()
    n = a.samples or (40 if a.quick else len(x_te))
    x_te, y_te = x_te[:n], y_te[:n]
    with torch.no_grad():
        net(torch.from_numpy(x_te[:1]))            # lazy shapes (SLAYER) before loading weights
    net.load_state_dict(ckpt["state_dict"])
    net.eval()

    print("\n== 2. export to ONNX and compile ==")
    onnx_path, snnc_path = os.path.join(a.out, "digits.onnx"), os.path.join(a.out, "digits.snnc")
    snnc.export(net, torch.from_numpy(x_te[:2]), onnx_path)
    graph = snnc.compile(onnx_path, snnc_path)
    print(graph_table(graph))
    lossy = [r for r in graph.metadata["quantization"] if r["rounded"] or r["clipped"]]
    print("quantization: " + ("exact, nothing rounded or clipped" if not lossy else "\n" + quantization_table(graph)))

    print(f"\n== 3. test split: {n} samples, {x_te.shape[-1]} steps each ==")
    results = {}
    t = time.perf_counter()
    y_torch, c_torch = torch_forward(net, x_te)
    results["pytorch"] = (y_torch, c_torch, time.perf_counter() - t)
    r = run_onnxruntime(onnx_path, x_te)
    results["onnxruntime"] = (r.output, r.counts, r.seconds)
    for engine in ("reference", "lava-float", "lava-fixed"):
        print(f"running {engine} ...", flush=True)
        t = time.perf_counter()
        r = snnc.run(graph, x_te, backend=engine, timeout=a.timeout)
        results[engine] = (r.output, r.counts, time.perf_counter() - t)

    rows, report = [], {"samples": n, "steps": int(x_te.shape[-1]), "engines": {}}
    for engine, (y, counts, secs) in results.items():
        acc = float(np.mean(data.predict(y) == y_te))
        agree = agreement(y, y_torch)
        same = bool(np.array_equal(y, y_torch))
        rows.append([engine, f"{100 * acc:.2f} %", f"{100 * agree:.4f} %", "yes" if same else "no",
                     int(y.sum()), f"{secs:.1f}"])
        report["engines"][engine] = dict(accuracy=acc, spike_agreement_vs_pytorch=agree, identical_to_pytorch=same,
                                         output_spikes=int(y.sum()), seconds=secs,
                                         layer_spikes={k: int(v.sum()) for k, v in counts.items()})
    from snnc.compiler.printing import table
    print("\n== 4. parity (reference: PyTorch forward on CPU) ==")
    print(table(rows, ["engine", "test accuracy", "spike agreement", "identical", "output spikes", "seconds"]))
    layers = {}
    for engine, (_, counts, _) in results.items():
        for k, v in counts.items():
            layers.setdefault(k, {})[engine] = int(v.sum())
    print()
    print(table([[k] + [layers[k].get(e, "-") for e in results] for k in layers], ["layer spikes"] + list(results)))
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    plot(os.path.join(a.out, "parity.png"), y_torch[0], results["lava-fixed"][0][0], layers, list(results))
    print(f"\nwrote {os.path.join(a.out, 'report.json')} and {os.path.join(a.out, 'parity.png')}")
    fixed, torch_acc = report["engines"]["lava-fixed"], report["engines"]["pytorch"]["accuracy"]
    ok = fixed["identical_to_pytorch"] and fixed["accuracy"] == torch_acc
    print(f"Lava fixed_pt accuracy {100 * fixed['accuracy']:.2f} % vs PyTorch {100 * torch_acc:.2f} %: "
          + ("identical spikes, equal accuracy" if ok else "MISMATCH"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
