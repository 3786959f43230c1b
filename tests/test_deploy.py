"""snnc deploy: dry run (map printed and written), no-fit error, fail-fast without Intel's runtime,
the bundle (contents, run script in bit-accurate simulation), and hardware = simulation processes."""
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

from snnc.backends import loihi_hw
from snnc.compiler import artifact
from snnc.compiler.ir import CubaLIF, Dense, Graph, Input, Output
from snnc.compiler.quantize import quantize
from snnc.deploy import BUNDLE_FILES

SNNC = [sys.executable, "-m", "snnc.cli"]
LIF = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25)


def snnc(*args, cwd=None):
    p = subprocess.run(SNNC + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600)
    return p.returncode, p.stdout, p.stderr


def small_graph(n_in=20, hidden=12, n_out=4, seed=0):
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((n_in,)))
    g.add("w0", Dense(rng.uniform(-0.5, 1.5, (hidden, n_in))), "in")
    g.add("h", CubaLIF((hidden,), **LIF), "w0")
    g.add("w1", Dense(rng.uniform(-0.5, 1.5, (n_out, hidden))), "h")
    g.add("o", CubaLIF((n_out,), **LIF), "w1")
    g.add("out", Output((n_out,)), "o")
    return quantize(g)


@pytest.fixture
def model(tmp_path):
    path = str(tmp_path / "net.snnc")
    artifact.save(small_graph(), path)
    x = (np.random.default_rng(1).random((20, 16)) < 0.3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return path, str(tmp_path / "x.npy")


def test_hardware_run_without_runtime_fails_fast_and_clearly(model, tmp_path):
    assert not loihi_hw.runtime_status()[0], "this test expects a machine without Intel's Loihi runtime"
    path, x = model
    t0 = time.perf_counter()
    code, out, err = snnc("deploy", path, "--target", "loihi2", "--input", x, "-o", tmp_path / "o.npz")
    assert code == 2 and "Traceback" not in err
    assert err.startswith("snnc: error: Intel's Loihi 2 runtime is not installed")
    for words in ("lava-loihi", "INRC", "--dry-run", "--backend lava-fixed"):
        assert words in err, err
    assert not (tmp_path / "o.npz").exists()
    assert time.perf_counter() - t0 < 60
    # and before loading anything: a missing model gives the same runtime error
    code, _, err2 = snnc("deploy", tmp_path / "missing.snnc", "--target", "loihi2")
    assert code == 2 and "runtime is not installed" in err2


def test_dry_run_prints_and_writes_the_map(model, tmp_path):
    path, x = model
    code, out, err = snnc("deploy", path, "--target", "loihi2", "--dry-run", "--input", x)
    assert code == 0, err
    assert "binding limit" in out and "total: 1 cores on 1 chip(s)" in out and "synaptic ops" in out
    doc = json.load(open(os.path.splitext(path)[0] + ".map.json"))
    assert doc["map"]["cores"] == 1 and doc["map"]["chips"] == 1
    layer = {L["name"]: L for L in doc["map"]["layers"]}
    assert set(layer) == {"h", "o"}
    assert layer["h"]["max_per_tile"]["axons_in"] == 20 and layer["h"]["binding_limit"]
    core = doc["map"]["cores_detail"][0]
    assert {"neurons", "synapse_words", "axons_in", "axons_out", "fan_in_cores", "fan_out_cores"} <= set(core)
    assert doc["estimate"]["totals"]["synops_per_step"] > 0


def test_dry_run_of_a_network_that_does_not_fit(tmp_path):
    path = str(tmp_path / "big.snnc")
    artifact.save(small_graph(n_in=5000), path)
    code, out, err = snnc("deploy", path, "--target", "loihi2", "--dry-run")
    assert code == 2 and "Traceback" not in err
    assert "layer 'h'" in err and "input axons per core" in err and "Would fit" in err


def test_bundle_contains_what_it_claims_and_runs_from_its_script(model, tmp_path):
    path, x = model
    b = tmp_path / "bundle"
    code, out, err = snnc("deploy", path, "--target", "loihi2", "--bundle", b, "--input", x)
    assert code == 0, err
    assert sorted(os.listdir(b)) == sorted(BUNDLE_FILES)
    manifest = json.load(open(b / "manifest.json"))
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(open(b / name, "rb").read()).hexdigest() == digest, name
    assert json.load(open(b / "map.json"))["map"]["cores"] == manifest["cores"] == 1
    np.testing.assert_array_equal(np.load(b / "test_input.npy"), np.load(x))
    # the expected spikes are the bit-accurate simulation's
    from snnc import api
    ref = api.run(str(b / "model.snnc"), np.load(x), backend="reference")
    np.testing.assert_array_equal(np.load(b / "expected_output.npz")["output"], ref.output)
    assert ref.output.sum() > 0
    # its own script, in the bit-accurate simulation (no runtime here: auto -> lava-fixed)
    for args in (["--backend", "reference"], []):
        p = subprocess.run([sys.executable, str(b / "run.py")] + args, capture_output=True, text=True,
                           timeout=600, cwd=tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "MATCH" in p.stdout
    assert "lava-fixed" in p.stdout
    out = np.load(b / "output.npz")
    np.testing.assert_array_equal(out["output"], ref.output)
    # a bundle never overwrites
    code, _, err = snnc("deploy", path, "--target", "loihi2", "--bundle", b)
    assert code == 2 and "not empty" in err


def test_hardware_processes_are_the_bit_accurate_simulation_processes(tmp_path):
    """The plan sent to Loihi is plan_lava(..., 'fixed'); run through the hardware path with only
    the run configuration swapped for Loihi2SimCfg(fixed_pt), it gives lava-fixed's spikes."""
    from snnc.backends.lava_plan import plan_lava
    g = small_graph()
    assert pickle.dumps(loihi_hw.hardware_plan(g, 16)) == pickle.dumps(plan_lava(g, 16, "fixed"))
    path = str(tmp_path / "net.snnc")
    artifact.save(g, path)
    x = (np.random.default_rng(1).random((20, 16)) < 0.3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, os\n"
        "from snnc.backends import loihi_hw\n"
        "from snnc.compiler import artifact\n"
        f"g = artifact.load({path!r})\n"
        f"r = loihi_hw.run_hw(g, np.load({str(tmp_path / 'x.npy')!r}), "
        "config='sim-fixed')\n"
        f"np.save({str(tmp_path / 'hw.npy')!r}, r.output)\n"
        "sys.stdout.flush(); os._exit(0)\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    from snnc import api
    sim = api.run(g, x, backend="lava-fixed")
    hw_path = np.load(tmp_path / "hw.npy")
    np.testing.assert_array_equal(hw_path, sim.output)
    assert sim.output.sum() > 0
