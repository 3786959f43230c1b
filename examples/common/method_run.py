"""Shared pipeline of the method examples: train (PyTorch, CPU), export, compile, run the test
split on every engine, write a JSON report.

Engines: PyTorch (the snnc.nn forward), onnxruntime (the exported file), the reference simulator
(fixed point), Lava floating_pt and Lava fixed_pt (Loihi2SimCfg). Per engine: test accuracy
(the method's read-out), output spike agreement with PyTorch, identical-or-not, per-layer spike
counts, and per layer the fraction of neurons whose spike count equals PyTorch's.
"""
import contextlib
import io
import json
import os
import sys
import time

import numpy as np

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    import torch            # (lava-dl prints notes on import; snnc imports it for slayer exports)
    import snnc
    import snnc.frontends.torch_export   # noqa: F401
from snnc.compiler.printing import table

torch.set_num_threads(1)      # tiny tensors: one thread is much faster (and the machine is shared)


def _f32(x):
    """Inputs may be stored compactly (uint8 spikes): the network sees float32."""
    return x if x.dtype == torch.float32 else x.float()


def _predict_batched(net, x, predict, batch=500):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(predict(net(_f32(torch.from_numpy(x[i:i + batch])))))
    return np.concatenate(out)


def train(net, x_tr, y_tr, loss_fn, epochs, batch=64, lr=1e-3, quick=False, seed=0, log=print,
          x_val=None, y_val=None, predict=None, val_label="train-subset accuracy", history=None,
          progress=False):
    """Adam on mini-batches; ``loss_fn(output_spikes, labels)``. Returns seconds spent. After each
    epoch, the accuracy on ``x_val, y_val`` is logged as ``val_label`` (say what it measures) and,
    with a list ``history``, appended to it as {epoch, loss, accuracy, seconds}. ``progress``: a
    tqdm bar over the mini-batches of each epoch (stderr)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    x_tr, y_tr = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    start = time.perf_counter()
    n = len(x_tr)
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(n)
        total, batches = 0.0, 0
        starts = range(0, n, batch)
        if progress and not quick:
            from tqdm import tqdm
            starts = tqdm(starts, desc=f"epoch {ep + 1}/{epochs}", unit="batch", leave=False, mininterval=5.0)
        for i in starts:
            idx = perm[i:i + batch]
            out = net(_f32(x_tr[idx]))
            loss = loss_fn(out, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, batches = total + float(loss), batches + 1
            if quick and batches >= 3:
                break
        sched.step()
        msg, acc = f"epoch {ep + 1}/{epochs}: loss {total / batches:.4f}", None
        if x_val is not None and predict is not None:
            net.eval()
            acc = float(np.mean(_predict_batched(net, x_val, predict) == y_val))
            msg += f", {val_label} {100 * acc:.1f} %"
        if history is not None:
            history.append(dict(epoch=ep + 1, loss=total / batches, accuracy=acc,
                                seconds=time.perf_counter() - start))
        log(msg + f" ({time.perf_counter() - start:.0f} s)")
        if quick:
            break
    net.eval()
    return time.perf_counter() - start


def _torch_counts(net):
    return {name.replace(".", "_") + "_neuron": m.counts.numpy().astype(np.int64)
            for name, m in net.named_modules() if isinstance(m, snnc.nn.LIF)}


FUSED_CHUNK = 100       # samples per fused Lava run (one run of 1,000 CNN samples overflows its channels)


def _run_chunked(graph, x, engine, timeout):
    """``snnc.run`` on ``x``; the fused Lava engines in runs of ``FUSED_CHUNK`` samples (each
    sample starts from a zero state, so the chunks are independent)."""
    step = FUSED_CHUNK if engine.startswith("lava-fused") else len(x)
    outs, counts = [], []
    for i in range(0, len(x), step):
        r = snnc.run(graph, x[i:i + step], backend=engine, timeout=timeout)
        outs.append(r.output)
        counts.append(r.counts)
    return np.concatenate(outs), {k: np.concatenate([c[k] for c in counts]) for k in counts[0]}


def evaluate(net, x_te, y_te, predict, out_dir, name, meta, timeout=1800.0,
             engines=("reference", "lava-float", "lava-fixed"), log=print, lava_samples=None, extra=None,
             engine_samples=None, calibration=None):
    """Export, compile, run every engine, write ``out_dir/report.json``; returns the report.
    ``lava_samples``: the Lava engines run only the first that many test samples (their accuracy
    and agreement are on those; each engine's ``samples`` says how many); ``engine_samples``:
    {engine: N} overrides that per engine (e.g. all images on ``lava-fused-fixed``, the first 100
    on the per-layer ``lava-fixed`` as a check). ``extra(graph, path)``:
    a dict merged into the report (e.g. the Loihi 2 mapping)."""
    from snnc.backends.onnx_runtime import run_onnxruntime
    from snnc.parity import agreement
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, f"{name}.onnx")
    net.eval()
    x_te = x_te if x_te.dtype == np.float32 else x_te.astype(np.float32)
    snnc.export(net, torch.from_numpy(x_te[:2]), onnx_path)
    graph_path = os.path.join(out_dir, f"{name}.snnc")
    graph = snnc.compile(onnx_path, graph_path)
    log(str(graph))
    lossy = [r for r in graph.metadata["quantization"] if r["rounded"] or r["clipped"]]
    log("quantization: " + ("exact (nothing rounded or clipped)" if not lossy else
                            f"{len(lossy)} parameters rounded/clipped: " +
                            ", ".join(f"{r['node']}.{r['param']} (max error {r['max_error']:.3g})" for r in lossy)))
    results, uncalibrated = {}, None
    if calibration is not None:
        t = time.perf_counter()
        uncalibrated = _run_chunked(graph, x_te, "reference", timeout) + (time.perf_counter() - t,)
        t = time.perf_counter()
        graph = snnc.compile(graph, os.path.join(out_dir, f"{name}.calibrated.snnc"),
                             calibrate=np.asarray(calibration, dtype=np.float32))
        cal_secs = time.perf_counter() - t
        log(f"calibrated on {len(calibration)} training samples ({cal_secs:.0f} s)")
        log(str(graph))
        lossy = [r for r in graph.metadata["quantization"] if r["rounded"] or r["clipped"]]
    t = time.perf_counter()
    ys, cs = [], []
    with torch.no_grad():
        for i in range(0, len(x_te), 500):
            ys.append(net(torch.from_numpy(x_te[i:i + 500])).numpy())
            cs.append(_torch_counts(net))
    y_torch = np.concatenate(ys)
    results["pytorch"] = (y_torch, {k: np.concatenate([c[k] for c in cs]) for k in cs[0]},
                          time.perf_counter() - t)
    r = run_onnxruntime(onnx_path, x_te)
    results["onnxruntime"] = (r.output, r.counts, r.seconds)
    if uncalibrated is not None:
        results["reference (uncalibrated)"] = uncalibrated
    for engine in engines:
        k = (engine_samples or {}).get(engine, lava_samples if engine.startswith("lava") else None)
        xe = x_te[:k] if k else x_te
        log(f"running {engine} on {len(xe)} samples ...")
        t = time.perf_counter()
        out, counts = _run_chunked(graph, xe, engine, timeout)
        results[engine] = (out, counts, time.perf_counter() - t)
    ref_counts = results["pytorch"][1]
    report = dict(meta, samples=int(len(x_te)), steps=int(x_te.shape[-1]),
                  quantization_exact=not lossy, quantization_lossy=lossy,
                  folds=graph.metadata.get("folds", []),
                  refractory_populations=[k for k, v in graph.nodes.items() if getattr(v, "refractory", 0)],
                  engines={})
    if calibration is not None:
        report.update(calibration=graph.metadata["calibration"], calibration_samples=int(len(calibration)),
                      calibration_seconds=cal_secs)
    rows = []
    for engine, (y, counts, secs) in results.items():
        m = len(y)
        acc = float(np.mean(predict(y) == y_te[:m]))
        y_pt = y_torch[:m]
        layers = {}
        for k, v in counts.items():
            v = np.asarray(v)
            ref = ref_counts.get(k)
            ref = None if ref is None else ref[:m]
            same = float(np.mean(v == ref)) if ref is not None and ref.shape == v.shape else None
            layers[k] = dict(spikes=int(v.sum()), neuron_counts_equal_to_pytorch=same)
        same = bool(np.array_equal(y, y_pt))
        y_ref = results["reference"][0][:m] if "reference" in results else None
        report["engines"][engine] = dict(
            samples=int(m), accuracy=acc, pytorch_accuracy_same_samples=float(np.mean(predict(y_pt) == y_te[:m])),
            spike_agreement_vs_pytorch=agreement(y, y_pt),
            identical_to_pytorch=same, output_spikes=int(y.sum()),
            identical_to_reference=None if y_ref is None or len(y) > len(y_ref) else bool(np.array_equal(y, y_ref)),
            layer_counts_identical_to_reference=None if y_ref is None else all(
                np.array_equal(np.asarray(v), np.asarray(results["reference"][1][k])[:m])
                for k, v in counts.items() if k in results["reference"][1]),
            seconds=secs, layers=layers)
        rows.append([engine, m, f"{100 * acc:.2f} %", f"{100 * agreement(y, y_pt):.4f} %",
                     "yes" if same else "no", int(y.sum()), f"{secs:.1f}"])
    log(table(rows, ["engine", "samples", "test accuracy", "spike agreement", "identical", "output spikes", "seconds"]))
    names = list(results["pytorch"][1])
    log(table([[k] + [report["engines"][e]["layers"].get(k, {}).get("spikes", "-") for e in results]
               for k in names], ["layer spikes"] + list(results)))
    fx = report["engines"].get("lava-fixed")
    if fx:
        report["lava_fixed_minus_pytorch_points"] = 100 * (fx["accuracy"] - fx["pytorch_accuracy_same_samples"])
        log(f"Lava fixed_pt {100 * fx['accuracy']:.2f} % vs PyTorch {100 * fx['pytorch_accuracy_same_samples']:.2f} % "
            f"on the same {fx['samples']} samples "
            f"({report['lava_fixed_minus_pytorch_points']:+.2f} points); identical spikes: {fx['identical_to_pytorch']}")
    if extra is not None:
        report.update(extra(graph, graph_path))
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"wrote {os.path.join(out_dir, 'report.json')}")
    return report


def save(net, path, meta):
    torch.save({"state_dict": net.state_dict(), "meta": meta}, path)


def load(net, path):
    ck = torch.load(path)
    net.load_state_dict(ck["state_dict"])
    return ck.get("meta", {})


def _engine_samples(text):
    """``lava-fixed=100,lava-float=50`` -> {"lava-fixed": 100, "lava-float": 50}."""
    out = {}
    for item in filter(None, text.split(",")):
        name, _, n = item.partition("=")
        if not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--engine-samples: {item!r} is not ENGINE=N (N a positive integer)")
        out[name] = int(n)
    return out


def _fmt(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def main(spec, argv=None):
    """Command line of every method example. ``spec``: dict with ``name``, ``method``,
    ``build(quantize) -> net``, ``data(quick) -> (x_tr, y_tr, x_te, y_te)``, ``loss``,
    ``predict``, ``epochs``, ``lr``, ``batch``, ``published`` (str), ``notes`` (list); optional
    ``trainers``: {name: (description, wrap[, defaults])}, ``wrap(net)`` -> the module trained in
    place of ``net`` (same parameters; e.g. a spike-train-level gradient), the first one the
    default; ``defaults``: the trainer's own defaults of ``lr`` and of ``options`` (chosen on the
    validation hold-out for that trainer);
    optional ``options``: {name: default} (int, float or str), each a flag ``--name`` whose
    value is written back into ``spec["options"]`` before ``build``/``loss`` run (they read it).
    Output: ``out/<qat|float>`` for the default trainer with its defaults and seed 0, else
    ``out/<trainer>-<qat|float>[-<option><value>...][-seed<k>]`` (options and lr named where they
    differ from the trainer's defaults).

    ``--validate``: train on the training split minus a stratified hold-out
    (``method_data.holdout``, 287 samples), report the PyTorch accuracy on the hold-out after
    the last epoch (no export, no Lava, the test split is not touched), write
    ``out/validate-<tag>/validation.json``. Settings are chosen with this, then trained on the
    full training split and tested once."""
    import argparse
    import method_data
    trainers = spec.get("trainers") or {"default": (spec["trainer"], lambda net: net)}
    pre = argparse.ArgumentParser(add_help=False)       # the trainer first: it sets defaults below
    pre.add_argument("--trainer", choices=list(trainers), default=list(trainers)[0],
                     help="; ".join(f"{k}: {v[0]}" for k, v in trainers.items()))
    chosen = trainers[pre.parse_known_args(argv)[0].trainer]
    p = argparse.ArgumentParser(description=f"{spec['method']} on {spec.get('data_name', 'digits')}: "
                                            "train, export, compile, Lava",
                                parents=[pre])
    p.add_argument("--out", default=os.path.join(spec["dir"], "out"))
    p.add_argument("--quick", action="store_true", help="a few training batches, 24 test samples (tests)")
    p.add_argument("--float", action="store_true", help="train with real-valued dynamics (no QAT)")
    p.add_argument("--calibrate", type=int, default=256,
                   help="--float: calibrate the compiled graph on this many training samples (0: uncalibrated)")
    trainer_defaults = dict(chosen[2]) if len(chosen) > 2 else {}
    lr_default = trainer_defaults.get("lr", spec["lr"])
    p.add_argument("--epochs", type=int, default=spec["epochs"])
    p.add_argument("--lr", type=float, default=lr_default, help="Adam learning rate (cosine schedule)")
    p.add_argument("--samples", type=int, default=None, help="test samples (default: all)")
    p.add_argument("--lava-samples", type=int, default=None,
                   help="run the Lava engines on only the first N test samples (default: all)")
    p.add_argument("--retrain", action="store_true", help="train even if the model file exists")
    p.add_argument("--validate", action="store_true",
                   help=f"train on the training split minus a {method_data.VAL_SIZE}-sample stratified hold-out, "
                        "report the hold-out accuracy (validation.json); no test split, no export")
    p.add_argument("--engine-samples", default="",
                   help="per engine, the first N test samples: e.g. lava-fixed=100,lava-float=100 "
                        "(overrides --lava-samples for those engines)")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--engines", default="reference,lava-float,lava-fixed")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and mini-batch order")
    options = spec.get("options") or {}
    defaults = dict(options, **{k: v for k, v in trainer_defaults.items() if k in options})
    for k, v in defaults.items():
        p.add_argument("--" + k.replace("_", "-"), dest="opt_" + k, type=type(v), default=v,
                       help=f"(default {v})")
    a = p.parse_args(argv)
    for k in defaults:
        options[k] = getattr(a, "opt_" + k)
    validation = spec.get("validation", method_data.validation)
    quantize = not a.float
    tag = "qat" if quantize else "float"
    if a.trainer != list(trainers)[0]:
        tag = f"{a.trainer}-{tag}"
    tag += "".join(f"-{k}{_fmt(options[k])}" for k in defaults if options[k] != defaults[k])
    if a.lr != lr_default:
        tag += f"-lr{_fmt(a.lr)}"
    if a.validate:
        tag = "validate-" + tag
    if a.seed:
        tag += f"-seed{a.seed}"
    out = os.path.join(a.out, tag) if not a.quick else os.path.join(a.out, "quick-" + tag)
    os.makedirs(out, exist_ok=True)
    spec["last_out"] = out              # for the caller: where this run's report / validation.json is
    x_tr, y_tr, x_te, y_te = spec["data"]()
    n = a.samples or (24 if a.quick else len(x_te))
    x_te, y_te = x_te[:n], y_te[:n]
    torch.manual_seed(a.seed)
    net = spec["build"](quantize)
    weights = os.path.join(out, "model.pt")
    epochs = 1 if a.quick else a.epochs
    settings = dict(options, lr=a.lr, batch=spec["batch"], epochs=epochs)
    meta = dict(method=spec["method"], example=spec["name"], dataset=spec["dataset"],
                training="quantization-aware (Loihi integer dynamics in the forward pass)" if quantize
                else "float (real-valued dynamics)", trainer=trainers[a.trainer][0], seed=a.seed,
                architecture=spec["architecture"]() if callable(spec["architecture"]) else spec["architecture"],
                settings=settings, published=spec["published"],
                notes=spec["notes"])
    if a.validate:
        x_fit, y_fit, x_val, y_val = validation(x_tr, y_tr)
        print(f"== validation: training {spec['method']} ({tag}) on {len(x_fit)} samples "
              f"(training split minus a {len(x_val)}-sample hold-out), T={x_tr.shape[-1]} ==")
        history = []
        secs = train(trainers[a.trainer][1](net), x_fit, y_fit, spec["loss"], epochs, spec["batch"], a.lr,
                     quick=a.quick, seed=a.seed, x_val=x_val, y_val=y_val, predict=spec["predict"],
                     val_label="hold-out (validation) accuracy", history=history, progress=spec.get("progress", False))
        net.eval()
        acc = float(np.mean(_predict_batched(net, x_val, spec["predict"]) == y_val))
        save(net, weights, meta)
        rep = dict(meta, validation_accuracy=acc, train_seconds=secs, epochs=epochs,
                   fit_samples=int(len(x_fit)), validation_samples=int(len(x_val)),
                   holdout=dict(size=int(len(x_val)), seed=method_data.VAL_SEED, stratified=True),
                   history=history, argv=list(sys.argv[1:] if argv is None else argv))
        with open(os.path.join(out, "validation.json"), "w") as f:
            json.dump(rep, f, indent=1)
        print(f"validation accuracy (PyTorch, {len(x_val)} held-out training samples): {100 * acc:.2f} % "
              f"({secs:.0f} s training); wrote {os.path.join(out, 'validation.json')}")
        return 0
    if a.retrain or a.quick or not os.path.exists(weights):
        print(f"== training {spec['method']} ({tag}) on {len(x_tr)} samples, T={x_tr.shape[-1]} ==")
        k = np.random.default_rng(0).choice(len(x_tr), min(300, len(x_tr)), replace=False)
        secs = train(trainers[a.trainer][1](net), x_tr, y_tr, spec["loss"], epochs,
                     spec["batch"], a.lr, quick=a.quick, seed=a.seed, x_val=x_tr[k], y_val=y_tr[k],
                     predict=spec["predict"], val_label=f"accuracy on {len(k)} training samples",
                     progress=spec.get("progress", False))
        meta.update(train_seconds=secs, epochs=epochs)
        save(net, weights, meta)
    else:
        print(f"== using {weights} (--retrain to train again) ==")
        meta.update(load(net, weights))
    print("== export, compile, test split ==")
    rep = evaluate(net, x_te, y_te, spec["predict"], out, spec["name"], meta, timeout=a.timeout,
                   engines=tuple(e for e in a.engines.split(",") if e), lava_samples=a.lava_samples,
                   engine_samples=_engine_samples(a.engine_samples),
                   extra=spec.get("extra"), calibration=_calibration(x_tr, a) if a.float else None)
    return 0 if rep else 1


def _calibration(x_tr, a):
    """``--calibrate N`` training samples (a fixed random subset, never the test split), or None."""
    n = min(8 if a.quick else a.calibrate, len(x_tr))
    return x_tr[np.sort(np.random.default_rng(7).choice(len(x_tr), n, replace=False))] if n > 0 else None
