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
