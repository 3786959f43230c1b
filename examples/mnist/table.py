"""The README table of examples/mnist from the committed reports (results/*.json).

One row per network and training setting; several seeds (``-seed<k>`` reports) give the mean and
std (sample, ddof 1) of the PyTorch test accuracy. ``PUBLISHED``: the paper's number for the same architecture
and data set (from the papers' tables), None where the paper has none.

    python examples/mnist/table.py [--readme]     # --readme: also into this README.md and the project's (between the markers)
"""
import glob
import json
import os
import re
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLISHED = {         # example name -> (best published accuracy %, source)
    "stbp_mlp": (98.89, "Wu et al. 2018, MNIST 784-800-10"),
    "stbp_cnn": (99.42, "Wu et al. 2018, MNIST 28x28-15C5-P2-40C5-P2-300-10"),
    "stbp_nmnist_mlp": (98.78, "Wu et al. 2018, N-MNIST 34x34x2-800-10"),
    "tssl_bp_mlp": (None, "Zhang & Li 2020 report no MNIST MLP"),
    "tssl_bp_cnn": (99.53, "Zhang & Li 2020, MNIST 15C5-P2-40C5-P2-300-10, T=5"),
    "hm2_bp_mlp": (98.93, "Jin, Zhang & Li 2018, MNIST 784-800-10, T=400 (mean about 98.84)"),
    "hm2_bp_nmnist_mlp": (98.88, "Jin, Zhang & Li 2018, N-MNIST 34x34x2-800-10, T=540"),
    "st_rsbp_rnn": (None, "Zhang & Li 2019 report no sequential MNIST (Fashion-MNIST 400-R400: 90.13)"),
}


FIXED = ("lava-fused-fixed", "lava-fixed")     # Lava fixed point: the fused process, the per-layer processes


def _lava_fixed(r):
    """The Lava fixed-point engines of a report, the one with the most samples first."""
    e = [(k, r["engines"][k]) for k in FIXED if k in r["engines"]]
    return sorted(e, key=lambda kv: -kv[1]["samples"])


def _n(m):
    return "all 1,000" if m == 1000 else f"first {m}"


def _fixed(r):
    """The accuracy of the Lava fixed engine that ran the most images; the other one's spikes."""
    e = _lava_fixed(r)
    if not e:
        return "-"
    (k, fx), rest = e[0], e[1:]
    s = f"{100 * fx['accuracy']:.2f} % ({k}"
    if fx["samples"] != 1000:
        s += f", {_n(fx['samples'])}; PyTorch on them {100 * fx['pytorch_accuracy_same_samples']:.2f} %"
    for k2, f2 in rest:         # QAT: the same spikes as PyTorch; float-trained: as the reference
        on = "" if f2["samples"] == fx["samples"] else f" ({_n(f2['samples'])})"
        same = f2.get("identical_to_reference") if _float(r) else f2["identical_to_pytorch"]
        s += f"; {k2}{on}: {'identical' if same else 'differs'}"
    return s + ")"


def _fixed_same(reps):
    """QAT rows: Lava fixed = PyTorch. Float-trained rows: Lava fixed = the reference simulator
    (the same quantized graph), and how many of PyTorch's float output spikes it reproduces."""
    e = [fx for r in reps for _, fx in _lava_fixed(r)]
    if not e:
        return "-"
    if all(fx["identical_to_pytorch"] for fx in e):
        return "yes"
    if not _float(reps[0]):
        return "no"
    ref = all(fx.get("identical_to_reference") and fx.get("layer_counts_identical_to_reference") for fx in e)
    return (f"no: float vs fixed point, {100 * min(fx['spike_agreement_vs_pytorch'] for fx in e):.2f} % of output "
            f"spikes agree; = reference: {'yes' if ref else 'no'}")


def _float(r):
    return "calibration" in r


def _training(r):
    """QAT or float + calibrated PTQ; and the trainer where it is not the method's own gradient."""
    other = "; BPTT-surrogate trainer, not the method's gradient" if "not " in r.get("trainer", "") else ""
    if not _float(r):
        return "QAT" + other
    unc = r["engines"].get("reference (uncalibrated)")
    return (f"float, then calibrated PTQ ({r['calibration_samples']} training images"
            + (f"; uncalibrated: {100 * unc['accuracy']:.2f} %" if unc else "") + ")" + other)


def _ref(reps):
    """Reference simulator (bit-exact with Lava fixed point) vs PyTorch on all test images."""
    agree = [r["engines"]["reference"]["spike_agreement_vs_pytorch"] for r in reps]
    if all(r["engines"]["reference"]["identical_to_pytorch"] for r in reps):
        return "yes"
    return f"no ({100 * min(agree):.3f} % of output spikes agree{'; float-trained' if _float(reps[0]) else ''})"


def _images(r):
    """How many test images each engine ran, grouped by count: '1,000: pytorch, reference; 50: lava-float'."""
    by = defaultdict(list)
    for k, e in r["engines"].items():
        by[e["samples"]].append(k)
    return "; ".join(f"{n:,}: {', '.join(ks)}" for n, ks in sorted(by.items(), reverse=True))


def rows(paths):
    groups = defaultdict(list)
    for p in sorted(paths, key=lambda p: ("-float" in p, p)):     # QAT rows first, then float-trained
        key = re.sub(r"-seed\d+$", "", os.path.splitext(os.path.basename(p))[0])
        groups[key].append(json.load(open(p)))
    out = []
    for key, reps in groups.items():
        r0 = min(reps, key=lambda r: r["seed"])
        acc = np.array([100 * r["engines"]["pytorch"]["accuracy"] for r in reps])
        pub = PUBLISHED.get(r0["example"], (None, ""))[0]
        seeds = ", ".join(str(r["seed"]) for r in sorted(reps, key=lambda r: r["seed"]))
        acc_s = f"{acc.mean():.2f} ± {acc.std(ddof=1):.2f} % (seeds {seeds}; Lava column: seed {r0['seed']})" if len(acc) > 1 else f"{acc[0]:.2f} %"
        out.append([r0["method"], r0["architecture"].split(",")[0].split(" (")[0], re.split(r",(?![^(]*\))", r0["dataset"])[0],
                    str(r0["steps"]), _training(r0), acc_s,
                    _fixed(r0), _fixed_same(reps),
                    _ref(reps), _images(r0),
                    str(r0["loihi2"]["cores"]), f"{r0['train_seconds'] / 60:.1f} min, {r0['settings']['epochs']} epoch{'s' * (r0['settings']['epochs'] != 1)}",
                    f"{pub:.2f} %" if pub else "-", f"{acc.mean() - pub:+.2f}" if pub else "-"])
    return out


HEAD = ["method", "architecture", "data", "T", "training", "PyTorch (1,000 test images)", "Lava fixed point",
        "Lava fixed = PyTorch (those images)", "reference = PyTorch (all 1,000)",
        "test images per engine (seed 0)", "Loihi 2 cores", "training time", "published", "gap (points)"]


def markdown(table):
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table])


README = (os.path.join(HERE, "README.md"), os.path.join(HERE, "..", "..", "README.md"))   # this one, the project's


def write_readme(text, path=README[0]):
    """Replace what stands between ``<!-- mnist table -->`` and ``<!-- /mnist table -->``."""
    doc = open(path).read()
    head, rest = doc.split("<!-- mnist table -->", 1)
    _, tail = rest.split("<!-- /mnist table -->", 1)
    with open(path, "w") as f:
        f.write(f"{head}<!-- mnist table -->\n{text}\n<!-- /mnist table -->{tail}")


if __name__ == "__main__":
    import sys
    md = markdown(rows(glob.glob(os.path.join(HERE, "results", "*.json"))))
    print(md)
    if "--readme" in sys.argv[1:]:
        for path in README:
            write_readme(md, path)
