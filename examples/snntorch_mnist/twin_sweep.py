"""The twin's fine-tuning settings, chosen on the hold-out only (the test split is not read).

    python examples/snntorch_mnist/twin_sweep.py --net conv --out OUT --try count:2e-4 membrane:2e-4

Loads ``OUT/<net>/float.pt`` (``run.py``'s float model), compiles it calibrated on the same
``--calib`` fit images as ``run.py`` (or loads ``OUT/<net>/calibrated.snnc``), and fine-tunes a
fresh twin of it per ``loss:lr`` (``run.twin_loss``) on the fit images, reporting the hold-out
accuracy per epoch; writes ``results/<net>-twin-sweep.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from common import mnist  # noqa: E402
from model import build, rate  # noqa: E402
from run import SETTINGS, log, surrogate, tune_twin  # noqa: E402


def main(argv=None):
    import snnc
    from snnc.api import import_model
    from snnc.compiler import artifact

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=["fc", "conv"], default="conv")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--try", dest="tries", nargs="+", default=["count:2e-4", "membrane:2e-4"])
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    name, out_dir = a.net, os.path.join(a.out, a.net)
    img_tr, y_tr, _, _ = mnist.split()
    fit_i, val_i = mnist.holdout(y_tr)
    _, shape = build(name)
    x_tr = rate(img_tr, shape, seed=1)
    y_tr_t = torch.from_numpy(y_tr)
    x_fit, y_fit = x_tr[:, fit_i].movedim(0, -1).contiguous(), y_tr_t[fit_i]
    x_val, y_val = x_tr[:, val_i].movedim(0, -1).contiguous(), y_tr_t[val_i]
    cal_path = os.path.join(out_dir, "calibrated.snnc")
    if os.path.exists(cal_path):
        cal = artifact.load(cal_path)
    else:
        net, _ = build(name)
        net.load_state_dict(torch.load(os.path.join(out_dir, "float.pt")))
        onnx = os.path.join(out_dir, f"{name}.onnx")
        snnc.export(net.eval(), x_tr[:, :2], onnx, time_axis=0)
        cal = snnc.compile(import_model(onnx), calibrate=x_fit[:a.calib].numpy())
        snnc.compile(cal, cal_path)
    report = dict(net=name, fit_images=len(y_fit), holdout_images=len(y_val), runs=[])
    path = os.path.join(HERE, "results", f"{name}-twin-sweep.json")
    for t in a.tries:
        loss, lr = t.split(":")
        cfg = dict(SETTINGS[name], twin_epochs=a.epochs, patience=a.patience, twin_lr=float(lr))
        twin = snnc.twin(cal, surrogate=surrogate(name, "trained"))
        t0 = time.time()
        r = tune_twin(twin, x_fit, y_fit, x_val, y_val, cfg, loss=loss)
        r.update(loss=loss, lr=float(lr), seconds=time.time() - t0)
        log(f"{t}: best hold-out {100 * r['best_val_accuracy']:.2f} % at epoch {r['best_epoch']}")
        report["runs"].append(r)
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
