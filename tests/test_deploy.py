"""snnc deploy: dry run (map printed and written), no-fit error, fail-fast without Intel's runtime,
the bundle (contents, run script in bit-accurate simulation), and hardware = simulation processes."""
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from snnc.backends import loihi_hw
from snnc.compiler import artifact
from snnc.compiler.fixed import FixedCubaLIF, FixedSigmaDelta, FixedSynapse
from snnc.compiler.ir import Conv2d, CubaLIF, Delay, Delta, Dense, Flatten, Graph, Input, Output, Sigma, SigmaDelta
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


def conv_graph(seed=0):
    """in (2,6,6) -> conv -> p1 (3,4,4) -> Flatten -> dense -> p2 (5,) -> out."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((2, 6, 6)))
    g.add("conv", Conv2d(rng.uniform(-0.5, 1.5, (3, 2, 3, 3))), "in")
    g.add("p1", CubaLIF((3, 4, 4), **LIF), "conv")
    g.add("flat", Flatten(), "p1")
    g.add("dense", Dense(rng.uniform(-0.5, 1.5, (5, 48))), "flat")
    g.add("p2", CubaLIF((5,), **LIF), "dense")
    g.add("out", Output((5,)), "p2")
    return quantize(g)


def recurrent_graph(seed=0):
    """in (8,) -> fc -> r (6,), r -> Delay(1..2) -> rec -> r (a biased recurrent population)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((8,)))
    g.add("fc", Dense(rng.uniform(-0.5, 1.5, (6, 8))), "in")
    g.add("r", CubaLIF((6,), bias=0.125, **LIF), "fc")
    g.add("d", Delay(np.arange(6) % 2 + 1), "r")
    g.add("rec", Dense(rng.uniform(-1, 1, (6, 6))), "d")
    g.edges.append(("rec", "r"))
    g.add("out", Output((6,)), "r")
    return quantize(g)


def sdnn_graph():
    """in (3,) -> Delta -> dense -> SigmaDelta (biased) -> dense -> Sigma -> out, no Delays (as exported)."""
    g = Graph()
    g.add("in", Input((3,)))
    g.add("enc", Delta((3,), threshold=0.5), "in")
    g.add("syn", Dense(np.array([[1.0, 0.5, -0.25], [0.0, -1.0, 2.0]])), "enc")
    g.add("sd", SigmaDelta((2,), threshold=0.25, bias=np.array([0.5, -0.25])), "syn")
    g.add("syn2", Dense(np.array([[1.0, -1.0]])), "sd")
    g.add("sig", Sigma((1,)), "syn2")
    g.add("out", Output((1,)), "sig")
    return quantize(g)


def _described(procs):
    """Per Lava process, in build order: its type, port shapes and every Var's init value."""
    return [(type(p).__name__, {q.name: tuple(q.shape) for q in list(p.in_ports) + list(p.out_ports)},
             {v.name: np.asarray(v.init).tolist() for v in p.vars}) for p in procs]


def _unfused(procs):
    """``_described``, with each layer process (``lava_layers``) described as the neuron process
    and the Dense / DelayDense processes it runs (its Vars and ports with and without ``_k``)."""
    out = []
    for p in procs:
        if not type(p).__name__.startswith("Layer_"):
            out += _described([p])
            continue
        ports = {q.name: tuple(q.shape) for q in list(p.in_ports) + list(p.out_ports)}
        vals = {v.name: np.asarray(v.init).tolist() for v in p.vars}
        keys = [k for k in vals if k.startswith("weights_")]
        own = {k: v for k, v in vals.items() if not any(k.endswith("_" + w.split("_")[1]) for w in keys)}
        neuron_ports = {k: v for k, v in ports.items() if not k.startswith("s_in_") and k != "record"}
        out.append((type(p).__mro__[1].__name__, neuron_ports, own))
        for w in keys:
            k = w.split("_")[1]
            delayed = f"delays_{k}" in vals
            syn = {"weights": vals[w], "a_buff": vals[f"a_buff_{k}"], "num_message_bits": vals[f"num_message_bits_{k}"]}
            if delayed:
                syn["delays"] = vals[f"delays_{k}"]
            w_shape = np.shape(vals[w])
            s_in = ports[f"s_in_{k}"][:1]           # (a piped in-port's messages are (in, steps))
            out.append(("DelayDense" if delayed else "Dense", {"s_in": s_in, "a_out": (w_shape[0],)}, syn))
    return _sorted(out)


def _without_io(described):
    """``_described``'s entries without the io processes (Injector, Recorder)."""
    return [d for d in described if not d[0].startswith(("Injector", "Recorder"))]


def _recorder_ports(procs) -> int:
    return sum(len(list(p.in_ports)) for p in procs if type(p).__name__.startswith("Recorder"))


def _sorted(described):
    """``_described``'s entries as one order-free list (names and Vars sorted)."""
    return sorted(((t, dict(sorted(ports.items())), dict(sorted(vals.items()))) for t, ports, vals in described),
                  key=repr)


def _inputs(g, seed=1):
    shape = g.nodes[g.inputs[0]].shape
    rng = np.random.default_rng(seed)
    if any(type(v).__name__ == "Delta" for v in g.nodes.values()):
        return rng.integers(-90, 90, (2,) + tuple(shape) + (12,)) / 64.0
    return (rng.random((2,) + tuple(shape) + (12,)) < 0.3).astype(np.float32)


@pytest.mark.parametrize("make", [small_graph, conv_graph, recurrent_graph, sdnn_graph],
                         ids=["dense", "conv", "recurrent", "sigma-delta"])
def test_hardware_path_builds_the_lava_fixed_processes(make):
    """The processes the hardware path builds (``loihi_hw.hardware_plan`` -> lava_worker) and
    those a lava-fixed run builds (``lava_backend.prepare``, what ``run_lava`` sends) are equal:
    types, port shapes, every Var's initial value; and they hold the graph's fixed-point integers."""
    from snnc.backends import lava_backend, lava_worker
    g = make()
    x = _inputs(g)
    hw_plan = loihi_hw.hardware_plan(g, x)[0]
    sim_plan = lava_backend.prepare(g, x, "fixed", layers=False)[0]
    hw, sim = lava_worker.build_processes(hw_plan), lava_worker.build_processes(sim_plan)
    assert _described(hw) == _described(sim)
    # lava-fixed's default runs a population and its Dense synapses as one process (lava_layers):
    # the same neuron and synapse Vars, integers and ports
    layered = lava_worker.build_processes(lava_backend.prepare(g, x, "fixed")[0])
    assert any(type(p).__name__.startswith("Layer_") for p in layered) == (make is not sdnn_graph)
    assert _without_io(_unfused(layered)) == _sorted(_without_io(_described(hw)))
    # the io: each layer that sends its output to the host itself stands for one of the
    # Recorder's ports, and a layer the host feeds the input to for the Injector (lava_layers)
    assert _recorder_ports(layered) + sum(hasattr(p, "record") for p in layered) == _recorder_ports(hw)
    piped = [p for p in layered if "_piped" in type(p).__name__]
    assert len(piped) + sum(type(p).__name__ == "Injector" for p in layered) == \
        sum(type(p).__name__ == "Injector" for p in hw)
    by = {}
    for p in hw:
        by.setdefault(type(p).__name__, []).append(p)
    for name, fx in g.fixed.items():
        if isinstance(fx, FixedSynapse) and isinstance(g.nodes[name], Dense):     # one Dense per source
            mats = [np.asarray(p.vars.weights.init) for p in by.get("Dense", []) + by.get("DelayDense", [])
                    if p.name.startswith(name + "#")]
            w = np.asarray(fx.weight)
            if w.shape[1] == 48:                   # fed by (3, 4, 4): Lava's (x, y, f) flat order
                w = w[:, np.arange(48).reshape(3, 4, 4).transpose(2, 1, 0).ravel()]
            assert len(mats) == 1 and np.array_equal(mats[0], w), name
        elif isinstance(fx, FixedCubaLIF):
            lif = [p for p in by["LIF"] if p.name == name]
            assert len(lif) == 1 and int(lif[0].vars.vth.init) == int(fx.vth), name
        elif isinstance(fx, FixedSigmaDelta) and type(g.nodes[name]).__name__ == "SigmaDelta":
            (sd,) = by["SigmaDelta"]             # Lava step 1 is its IR step 0: bias held at 0 until then
            assert hw_plan.pops[name].gate_bias and not np.any(sd.vars.bias.init)
            assert hw_plan.pops[name].bias_mant.tolist() == [int(b) << 12 for b in np.ravel(fx.bias)]
            assert int(np.ravel(sd.vars.vth.init)[0]) == int(fx.vth) << 12
    kinds = sorted(by)
    rec = f"Recorder{len(lava_worker.recorded_populations(hw_plan))}"      # one recorder of every recorded population
    expect = {"dense": ["Dense", "Injector", "LIF", rec],
              "conv": ["Conv", "Dense", "Injector", "LIF", rec] if hw_plan.conns[0].kind == "conv"
              else ["Dense", "Injector", "LIF", rec],
              "recurrent": ["DelayDense", "Dense", "Injector", "LIF", rec],
              "sigma-delta": ["Delta", "Dense", rec, "RingBuffer", "Sigma", "SigmaDelta"]}
    assert kinds == expect[{small_graph: "dense", conv_graph: "conv", recurrent_graph: "recurrent",
                            sdnn_graph: "sigma-delta"}[make]]
    # the other options reach both paths alike (Lava Conv processes, RingBuffer io)
    hw = lava_worker.build_processes(loihi_hw.hardware_plan(g, x, conv_as="conv", io="ringbuffer")[0])
    sim = lava_worker.build_processes(lava_backend.prepare(g, x, "fixed", conv_as="conv", io="ringbuffer",
                                                           layers=False)[0])
    assert _described(hw) == _described(sim)
    assert ("Conv" in {type(p).__name__ for p in hw}) == (make is conv_graph)


def test_hardware_processes_are_the_bit_accurate_simulation_processes(tmp_path):
    """The hardware path run with only the run configuration swapped for the CPU simulation's
    (``run_config("sim-fixed")``) gives lava-fixed's spikes."""
    g = small_graph()
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
