"""Train the digits demo network (examples/digits/model.py) on CPU with SLAYER.

    python examples/digits/train.py [OUT] [--epochs E] [--quick]

Loss: ``slayer.loss.SpikeMax`` in softmax mode on LOGIT_SCALE x output spikes, i.e. the cross
entropy of softmax(LOGIT_SCALE * rate) with rate = output spikes per step (plain
``slayer.loss.SpikeRate`` trains far slower here). Adam with a cosine learning-rate decay;
seeded, deterministic on CPU (about 40-80 s on 2 cores, ~96% test accuracy). Saves
``{"state_dict", "meta"}`` with ``torch.save`` to OUT (default examples/digits/out/model.pt);
``meta`` holds the architecture, data settings, accuracies and spike counts. Reload the
network with ``model.load(OUT)``.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model  # noqa: E402
from lava.lib.dl import slayer  # noqa: E402

LOGIT_SCALE = 10.0


def evaluate(net, x, y, batch=360):
    """Return ``(accuracy, counts)`` of ``data.predict`` on spikes ``x`` (numpy) against ``y``.

    ``counts``: mean spikes per sample of the input and of each spiking block (Conv, Pool, Dense).
    """
    net.eval()
    correct, counts = 0, np.zeros(4)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch])
            layers = net.layer_spikes(xb)
            correct += int((data.predict(layers[-1]) == y[i:i + batch]).sum())
            counts += [float(s.sum()) for s in [xb] + layers]
    return correct / len(x), counts / len(x)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", default=os.path.join(here, "out", "model.pt"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a few seconds of training (for tests)")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x_tr, y_tr, x_te, y_te = data.load()
    if a.quick:
        x_tr, y_tr, a.epochs = x_tr[:256], y_tr[:256], 1

    net = model.Network()
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    spike_max = slayer.loss.SpikeMax(mode="softmax", reduction="mean")
    steps = a.epochs * -(-len(x_tr) // a.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(a.seed)
    start = time.time()
    for epoch in range(a.epochs):
        net.train()
        order = rng.permutation(len(x_tr))
        bar = tqdm(range(0, len(order), a.batch), desc=f"epoch {epoch + 1}/{a.epochs}")
        seen = correct = total_loss = 0
        for i in bar:
            idx = order[i:i + a.batch]
            x, y = torch.from_numpy(x_tr[idx]), torch.from_numpy(y_tr[idx])
            out = net(x)
            loss = spike_max(LOGIT_SCALE * out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            total_loss += loss.item() * len(idx)
            correct += int((data.predict(out) == y_tr[idx]).sum())
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
    train_time = time.time() - start

    train_acc, _ = evaluate(net, x_tr, y_tr)
    test_acc, counts = evaluate(net, x_te, y_te)
    counts = dict(zip(["input", "conv", "pool", "dense"], np.round(counts, 1).tolist()))
    print(f"trained in {train_time:.1f} s: train accuracy {train_acc:.4f}, "
          f"test accuracy {test_acc:.4f}")
    print(f"mean spikes per test sample: {counts}")
    meta = dict(model="examples/digits/model.py:Network", channels=model.CHANNELS,
                pool_weight=model.POOL_WEIGHT, neuron=model.NEURON, T=data.T,
                max_rate=data.MAX_RATE, epochs=a.epochs, batch=a.batch, lr=a.lr, seed=a.seed,
                loss="SpikeMax(softmax) on LOGIT_SCALE * spikes", logit_scale=LOGIT_SCALE,
                quick=a.quick, train_accuracy=train_acc, test_accuracy=test_acc, test_spikes=counts,
                train_seconds=train_time)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "meta": meta}, a.out)
    print(f"saved {a.out}")
    return net, meta


if __name__ == "__main__":
    main()
