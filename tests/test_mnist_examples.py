"""examples/mnist (issue 13): the event version of the MNIST split, and ``--quick`` end to end
per method (a few QAT training batches, export, compile, a few test images on the reference and
Lava fixed point: spikes identical to PyTorch, layer by layer)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = os.path.join(ROOT, "examples", "common")


@pytest.fixture(scope="module")
def ev():
    sys.path.insert(0, COMMON)
    try:
        import mnist_events
    finally:
        sys.path.pop(0)
    return mnist_events


def _bar(w=2):
    """A 28x28 image with one vertical bright bar (columns 13..13+w)."""
    img = np.zeros((1, 28, 28))
    img[0, 4:24, 13:13 + w] = 1.0
    return img


def test_events_shape_dtype_seeded(ev):
    img = np.random.default_rng(0).random((3, 28, 28))
    a, b = ev.events(img, 12, seed=5), ev.events(img, 12, seed=5)
    assert a.shape == (3, 2, 34, 34, 12) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, b)
    assert not np.array_equal(a, ev.events(img, 12, seed=6))          # noise and mismatch follow the seed
    assert ev.events(img, 12, seed=5, flat=True).shape == (3, 2 * 34 * 34, 12)


def test_events_blank_image_only_noise(ev):
    """No brightness change, no events: a black image gives background noise only, at NOISE."""
    e = ev.events(np.zeros((50, 28, 28)), 30, seed=1)
    assert abs(e.mean() - ev.NOISE) < 0.3 * ev.NOISE
    assert not ev.events(np.zeros((2, 28, 28)), 30, seed=1, noise=0).any()


def test_events_follow_the_saccades(ev):
    """A vertical bar moving right (saccade 1, dx 0 -> 3) gives ON events at its right (leading)
    edge and OFF at its left (trailing) edge; moving back left (saccade 3) the reverse; events
    occur in each of the three saccades and only within the 34x34 field the digit sweeps."""
    T = 30
    e = ev.events(_bar(), T, seed=0, noise=0)[0].astype(int)          # (2, 34, 34, T)
    first, third = slice(0, T // 3), slice(2 * T // 3, T)
    cols = np.arange(34)

    def mean_col(pol, seg):
        w = e[pol, :, :, seg].sum(axis=(0, 2))
        return (w * cols).sum() / w.sum()
    assert mean_col(0, first) > mean_col(1, first)       # moving right: ON leads (to the right)
    assert mean_col(0, third) < mean_col(1, third)       # moving left: ON leads (to the left)
    per_saccade = [e[..., s].sum() for s in (first, slice(T // 3, 2 * T // 3), third)]
    assert min(per_saccade) > 0
    assert e[:, :, :13].sum() == 0 and e[:, :, 13 + 2 + 7:].sum() == 0     # bar columns 13..14, travel <= 6 (+1 bilinear)


def test_events_split_has_both_polarities_and_digits_differ(ev):
    import mnist
    img, _, _, _ = mnist.split()
    e = ev.events(img[:20], 30, seed=11)
    on, off = e[:, 0].sum(), e[:, 1].sum()
    assert on > 0 and off > 0 and 0.5 < on / off < 2
    per_digit = e.reshape(20, -1).sum(1)
    assert per_digit.min() > 50                          # every digit makes events
    assert not np.array_equal(e[0], e[1])


def _quick(method, arch, tmp_path, samples=4, fused=True):
    """``fused``: also the fused Lava process on all ``samples`` (binary inputs only), the
    per-layer Lava fixed point then on the first 2 (``--engine-samples``)."""
    script = os.path.join(ROOT, "examples", "mnist", "run.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    engines = "reference,lava-fused-fixed,lava-fixed" if fused else "reference,lava-fixed"
    p = subprocess.run([sys.executable, script, "--method", method, "--arch", arch, "--quick",
                        "--samples", str(samples), "--engines", engines, "--out", str(tmp_path)]
                       + (["--engine-samples", "lava-fixed=2"] if fused else []),
                       env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    rep = json.load(open(tmp_path / "quick-qat" / "report.json"))      # each method's default trainer
    eng = rep["engines"]
    assert rep["quantization_exact"] and rep["samples"] == samples
    for e in ("onnxruntime", "reference", "lava-fixed") + (("lava-fused-fixed",) if fused else ()):
        assert eng[e]["samples"] == (2 if fused and e == "lava-fixed" else samples)
        assert eng[e]["identical_to_pytorch"], (e, eng[e])
        assert eng[e]["accuracy"] == eng[e]["pytorch_accuracy_same_samples"]
        for layer, v in eng[e]["layers"].items():
            assert v["neuron_counts_equal_to_pytorch"] == 1.0, (e, layer)
    layers = rep["loihi2"]["layers"]                    # populations may share a core (ST-RSBP's RNN: 1)
    assert len(layers) >= 2 and rep["loihi2"]["cores"] >= max(L["cores"] for L in layers) >= 1
    return rep


@pytest.mark.timeout(900)
def test_quick_stbp_mlp(tmp_path):
    rep = _quick("stbp", "mlp", tmp_path)
    assert rep["architecture"].startswith("784-800-10")


@pytest.mark.timeout(900)
def test_quick_float_trained_calibrated(tmp_path):
    """--float: the float-trained net compiled with calibration on training images; both Lava
    fixed-point engines give the reference's spikes on the calibrated graph, in every layer."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "mnist", "run.py"), "--method", "stbp",
                        "--arch", "mlp", "--quick", "--float", "--samples", "4", "--out", str(tmp_path),
                        "--engines", "reference,lava-fused-fixed,lava-fixed", "--engine-samples", "lava-fixed=2"],
                       env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    rep = json.load(open(tmp_path / "quick-float" / "report.json"))
    assert rep["calibration_samples"] == 8 and rep["calibration"]
    assert (tmp_path / "quick-float" / "stbp_mlp.calibrated.snnc").exists()
    eng = rep["engines"]
    assert eng["reference (uncalibrated)"]["samples"] == 4 and eng["reference"]["identical_to_reference"]
    for e in ("lava-fused-fixed", "lava-fixed"):
        assert eng[e]["identical_to_reference"] and eng[e]["layer_counts_identical_to_reference"], (e, eng[e])
    assert 0.9 < eng["reference"]["spike_agreement_vs_pytorch"] <= 1.0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("method,arch", [("tssl_bp", "mlp"), ("hm2_bp", "mlp"), ("st_rsbp", "rnn"),
                                         ("stbp", "nmnist-mlp")])
def test_quick_method(method, arch, tmp_path):
    _quick(method, arch, tmp_path, fused=method != "tssl_bp")     # TSSL-BP's MLP input is graded
    if method == "hm2_bp":          # the state check: with Loihi's 24-bit limits, equal to the reference
        p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "mnist", "state_check.py"),
                            "--method", method, "--arch", arch, "--quick", "--tag", "quick-qat",
                            "--out", str(tmp_path)], env=dict(os.environ, PYTHONPATH=ROOT),
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        rep = json.load(open(tmp_path / "quick-qat" / "state_check.json"))
        assert rep["images"] == 24 and rep["differ_from_reference_with_limits"] == []


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("method", ["stbp", "tssl_bp"])
def test_quick_cnn(method, tmp_path):
    rep = _quick(method, "cnn", tmp_path, samples=2)
    assert "15C5" in rep["architecture"]


def _report(seed, acc, fixed_samples):
    eng = lambda n, a, same=True: dict(samples=n, accuracy=a, pytorch_accuracy_same_samples=a,   # noqa: E731
                                      identical_to_pytorch=same, spike_agreement_vs_pytorch=1.0)
    return dict(method="STBP", example="stbp_mlp", architecture="784-800-10 (bias)", dataset="MNIST, Bernoulli",
                steps=8, seed=seed, train_seconds=120.0, settings=dict(epochs=15), loihi2=dict(cores=4),
                engines={"pytorch": eng(1000, acc), "reference": eng(1000, acc),
                         "lava-fixed": eng(fixed_samples, acc), "lava-float": eng(50, acc, same=False)})


def test_table_seeds_and_images_per_engine(tmp_path):
    """table.py: three seeds give mean +- sample std; the per-engine image counts of seed 0."""
    sys.path.insert(0, os.path.join(ROOT, "examples", "mnist"))
    try:
        import table
    finally:
        sys.path.pop(0)
    for seed, acc, name in ((0, 0.90, "stbp-mlp-qat"), (1, 0.92, "stbp-mlp-qat-seed1"), (2, 0.94, "stbp-mlp-qat-seed2")):
        json.dump(_report(seed, acc, 1000 if seed == 0 else 10), open(tmp_path / f"{name}.json", "w"))
    (row,) = table.rows(sorted(str(p) for p in tmp_path.glob("*.json")))
    cols = dict(zip(table.HEAD, row))
    assert cols["PyTorch (1,000 test images)"].startswith("92.00 ± 2.00 % (seeds 0, 1, 2")
    assert cols["Lava fixed point"] == "90.00 % (lava-fixed)"
    assert cols["test images per engine (seed 0)"] == "1,000: pytorch, reference, lava-fixed; 50: lava-float"
    assert cols["gap (points)"] == "-6.89" and cols["training"] == "QAT"
    fl = _report(0, 0.95, 1000)
    fl.update(calibration={"1_neuron": {}}, calibration_samples=256)
    fl["engines"]["reference (uncalibrated)"] = dict(fl["engines"]["reference"], accuracy=0.93)
    for e in ("reference", "lava-fixed"):
        fl["engines"][e].update(identical_to_pytorch=False, spike_agreement_vs_pytorch=0.99,
                                identical_to_reference=True, layer_counts_identical_to_reference=True)
    json.dump(fl, open(tmp_path / "stbp-mlp-float.json", "w"))
    rows = table.rows(sorted(str(p) for p in tmp_path.glob("*.json")))
    cols = dict(zip(table.HEAD, rows[-1]))                         # float-trained rows come last
    assert cols["training"] == "float, then calibrated PTQ (256 training images; uncalibrated: 93.00 %)"
    assert cols["Lava fixed = PyTorch (those images)"].endswith("99.00 % of output spikes agree; = reference: yes")
