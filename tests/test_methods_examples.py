"""The quick path of every method example (examples/<method>/run.py --quick): a few training
batches (quantization-aware), export, compile, 24 test samples on PyTorch, onnxruntime, the
reference, Lava floating_pt and Lava fixed_pt, JSON report. Lava fixed point must reproduce the
PyTorch spikes exactly (and so its accuracy)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("method", ["stbp", "tssl_bp", "hm2_bp", "st_rsbp"])
def test_example_quick(method, tmp_path):
    script = os.path.join(ROOT, "examples", method, "run.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, script, "--quick", "--out", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    with open(tmp_path / "quick-qat" / "report.json") as f:
        rep = json.load(f)
    eng = rep["engines"]
    assert rep["quantization_exact"]
    for e in ("onnxruntime", "reference", "lava-fixed"):
        assert eng[e]["identical_to_pytorch"], (e, eng[e])
        assert eng[e]["accuracy"] == eng["pytorch"]["accuracy"]
        for layer, v in eng[e]["layers"].items():
            assert v["neuron_counts_equal_to_pytorch"] == 1.0, (e, layer)
    assert "lava-float" in eng


def _method_data():
    sys.path.insert(0, os.path.join(ROOT, "examples", "common"))
    try:
        import method_data
    finally:
        sys.path.pop(0)
    return method_data


def test_validation_holdout():
    """The hold-out used for choosing settings (--validate): stratified, disjoint from the part
    trained on, covering the training split, deterministic, and leaving train/test untouched."""
    import numpy as np
    md = _method_data()
    _, y_tr, _, y_te = md.split()
    fit, val = md.holdout(y_tr)
    assert len(val) == md.VAL_SIZE == 287 and len(fit) == len(y_tr) - 287 == 1150
    assert not set(fit) & set(val) and sorted(np.concatenate([fit, val])) == list(range(len(y_tr)))
    f2, v2 = md.holdout(y_tr)
    assert np.array_equal(fit, f2) and np.array_equal(val, v2)
    share_tr = np.bincount(y_tr, minlength=10) / len(y_tr)
    assert np.abs(np.bincount(y_tr[val], minlength=10) / len(val) - share_tr).max() < 0.01
    x_tr, y_tr2, x_te, y_te2 = md.rows(2)                 # any generator: rows of its training arrays
    xf, yf, xv, yv = md.validation(x_tr, y_tr2)
    assert np.array_equal(xv, x_tr[val]) and np.array_equal(yf, y_tr[fit]) and len(x_te) == len(y_te) == 360
    assert np.array_equal(md.rows(2)[0], x_tr)           # generators unchanged by the hold-out


def test_example_validate_quick(tmp_path):
    """``--validate``: hold-out accuracy in validation.json, no export, no test report."""
    script = os.path.join(ROOT, "examples", "st_rsbp", "run.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, script, "--quick", "--validate", "--hidden", "20", "--out", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    d = tmp_path / "quick-validate-qat-hidden20"
    rep = json.load(open(d / "validation.json"))
    assert rep["validation_samples"] == 287 and rep["fit_samples"] == 1150
    assert rep["settings"]["hidden"] == 20 and 0 <= rep["validation_accuracy"] <= 1
    assert not (d / "report.json").exists()
