"""examples/snntorch_mnist/run.py --quick, per net: snnTorch's tutorial FC and conv nets trained one
epoch on 32 MNIST images, snnc.export -> compile (uncalibrated, calibrated) -> Lava on 8 test images,
the twin fine-tuned one epoch. Asserted: snnc's float reference == snnTorch's forward; Lava
fixed_pt (a process per layer) == the one-process Lava engine; the twin == Lava, output and every
population; (FC) snnTorch's export_to_nir -> snnc equals the ONNX path spike for spike."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("net", ["fc", pytest.param("conv", marks=pytest.mark.slow),     # conv: ~1 min
                                 pytest.param("fc-analog", marks=pytest.mark.slow),   # lava-fixed: ~2 min
                                 pytest.param("conv-membrane", marks=pytest.mark.slow)])  # the twin: membrane loss
@pytest.mark.timeout(900)
def test_snntorch_mnist_quick(net, tmp_path):
    """``fc-analog``: tutorial 5's analog image at every step (a graded input): the table's
    engine is lava-fixed, checked against the reference engine. ``conv-membrane``: the twin
    fine-tuned with the tutorial's membrane loss (``--twin-loss membrane``)."""
    script = os.path.join(ROOT, "examples", "snntorch_mnist", "run.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = ["--net", net.split("-")[0]] + (["--input", "analog"] if net.endswith("analog") else []) + \
        (["--twin-loss", "membrane"] if net.endswith("membrane") else [])
    p = subprocess.run([sys.executable, script, *args, "--quick", "--out", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=900, check=False)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    with open(tmp_path / f"{net.replace('-membrane', '')}-quick" / "report.json") as f:
        rep = json.load(f)
    loss = "membrane" if net.endswith("membrane") else "count"
    assert rep["twin_training"]["loss"] == loss
    assert 0 < rep["twin_training"]["history"][1]["loss"] < float("inf")
    net = net.split("-")[0]
    assert rep["test_images"] == 8
    assert rep["snntorch float"]["reference_float_identical"]
    rows = ["snnc PTQ (uncalibrated)", "snnc PTQ (calibrated)", "fine-tuned twin"]
    for row in rows:
        assert rep[row]["check_identical"], row          # lava-fixed == lava-fused-fixed
        assert all(0.5 < v <= 1.0 for v in rep[row]["agreement"].values()), (row, rep[row]["agreement"])
    tw = rep["fine-tuned twin"]
    assert tw["twin_identical"] and tw["twin_accuracy"] == tw["accuracy"]
    assert tw["twin_populations_identical_to_reference"] and all(tw["twin_populations_identical_to_reference"].values())
    n_pops = 2 if net == "fc" else 3 + 2           # conv: 3 Leaky + 2 max-pool populations
    assert len(rep[rows[0]]["agreement"]) == n_pops, rep[rows[0]]["agreement"]
    if net == "fc":
        assert all(rep[row]["output_spikes"] > 0 for row in rows)     # (the 1-epoch conv net is silent)
    if "nir" in rep:
        nir = rep["nir"]
        assert nir["float_identical_to_snntorch"] and nir["identical_to_onnx_ptq"]
        assert nir["accuracy"] == rep[rows[0]]["accuracy"]
