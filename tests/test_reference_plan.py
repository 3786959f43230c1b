"""The reference engines read the lowered network (snnc.compiler.lower): sigma-delta and graded
graphs run on the fast step plan itself (the executable spec, reference_spec, is blocked while
the fast engine runs, then used as the oracle), fan-in and cycles through per-neuron delays; the torch engine runs snnTorch's subtraction reset bit-identically."""
import contextlib

import numpy as np
import pytest

from snnc.backends import reference_spec
from snnc.backends.plan import input_values
from snnc.backends.reference import _Sim, run_reference
from snnc.compiler.ir import CubaLIF, Delay, Delta, Dense, Graph, Input, Output, Sigma, SigmaDelta
from snnc.compiler.quantize import quantize


@contextlib.contextmanager
def spec_blocked(monkeypatch):
    """While active, any use of the executable spec fails: what runs is the fast plan."""
    def boom(*a, **k):
        raise AssertionError("the executable spec ran inside run_reference")
    with monkeypatch.context() as m:
        m.setattr(reference_spec, "_Sim", boom)
        m.setattr(reference_spec, "run_reference_spec", boom)
        yield


def _compare(monkeypatch, g, x, mode, state_keys):
    with spec_blocked(monkeypatch):
        fast = run_reference(g, x, mode)
        n, steps = x.shape[0], x.shape[-1]
        sim = _Sim(g, mode, n)
        states = []
        xv = input_values(g, {g.inputs[0]: x}, mode)[g.inputs[0]]    # graded: the host's messages
        for t in range(steps):
            sim.step(t, {g.inputs[0]: xv[..., t]})
            states.append({p: {k: np.array(sim.state[p][k]) for k in keys} for p, keys in state_keys.items()})
    spec = reference_spec.run_reference_spec(g, x, mode)
    assert fast.engine == f"reference-{mode}"
    for o in g.outputs:
        assert np.array_equal(fast.outputs[o], spec.outputs[o]), (mode, o)
    assert fast.counts.keys() == spec.counts.keys()
    for k in fast.counts:
        assert np.array_equal(fast.counts[k], spec.counts[k]), (mode, k)
    ssim = reference_spec._Sim(g, mode, n)
    xi = xv.astype(np.int64) if mode == "fixed" and np.all(xv == np.round(xv)) else xv
    for t in range(steps):
        ssim.step(t, {g.inputs[0]: xi[..., t]})
        for p, keys in state_keys.items():
            for k in keys:
                assert np.array_equal(states[t][p][k], ssim.state[p][k]), (mode, p, k, t)
    return fast


def sigma_delta_graph(cum=False):
    """Delta encoder -> delay -> Dense -> SigmaDelta (relu, bias) -> delay -> Dense -> Sigma, plus a
    second SigmaDelta read straight (no delay) by a Dense."""
    rng = np.random.default_rng(0)
    g = Graph()
    g.add("in", Input((4,)))
    g.add("enc", Delta((4,), threshold=0.05, cumulative_error=cum), "in")
    g.add("d", Delay(np.array([1, 2, 1, 3])), "enc")
    g.add("syn", Dense(rng.normal(0, 0.7, (5, 4))), "d")
    g.add("sd", SigmaDelta((5,), threshold=0.1, bias=rng.normal(0, 0.2, 5), cumulative_error=cum), "syn")
    g.add("syn1", Dense(rng.normal(0, 0.7, (3, 5))), "sd")
    g.add("sd1", SigmaDelta((3,), threshold=0.05, activation="identity"), "syn1")
    g.add("d2", Delay(np.array(1)), "sd1")
    g.add("syn2", Dense(rng.normal(0, 0.7, (2, 3))), "d2")
    g.add("sig", Sigma((2,)), "syn2")
    g.add("out", Output((2,)), "sig")
    return g


@pytest.mark.parametrize("cum", [False, True])
def test_sigma_delta_runs_on_the_step_plan(monkeypatch, cum):
    rng = np.random.default_rng(2)
    x = np.round(rng.uniform(-1.0, 1.0, (2, 4, 30)) * 64) / 64
    keys = {p: ("sigma", "act", "residue") for p in ("enc", "sd", "sd1", "sig")}
    a = _compare(monkeypatch, quantize(sigma_delta_graph(cum)), x, "fixed", keys)
    assert a.counts["sd"].sum() > 0 and np.any(a.output != 0)
    _compare(monkeypatch, sigma_delta_graph(cum), x, "float", keys)


def test_graded_input_runs_on_the_step_plan(monkeypatch):
    """Graded messages into a Dense with num_message_bits (negative weight exponent: floor)."""
    rng = np.random.default_rng(0)
    g = Graph()
    g.add("x", Input((6,), kind="graded", frac_bits=8))
    g.add("fc1", Dense(rng.normal(0, 0.6, (8, 6))), "x")
    g.add("l1", CubaLIF((8,), current_decay=0.25, voltage_decay=0.1, threshold=1.0), "fc1")
    g.add("fc2", Dense(rng.normal(0, 0.8, (3, 8))), "l1")
    g.add("l2", CubaLIF((3,), current_decay=0.25, voltage_decay=0.1, threshold=1.0), "fc2")
    g.add("out", Output((3,)), "l2")
    q = quantize(g)
    assert q.fixed["fc1"].num_message_bits
    x = np.round(rng.uniform(-0.5, 1.5, (3, 6, 16)) * 256) / 256
    for n in (1, 3):                                    # N = 1: no event-driven product on messages
        a = _compare(monkeypatch, q, x[:n], "fixed", {"l1": ("u", "v"), "l2": ("u", "v")})
        assert a.counts["l1"].sum() > 0


def wired_graph():
    """A recurrent loop through per-neuron delays, fan-in of three synapses into one population
    (one of them recurrent), a subtraction reset, two outputs."""
    rng = np.random.default_rng(5)
    g = Graph()
    g.add("in", Input((6,)))
    g.add("fa", Dense(rng.normal(0.4, 1.0, (7, 6))), "in")
    g.add("a", CubaLIF((7,), 0.3, 0.1, 1.2), "fa", "rec")
    g.add("fb", Dense(rng.normal(0.3, 1.0, (6, 7))), "a")
    g.add("fb2", Dense(rng.normal(0.3, 1.0, (6, 6))), "in")
    g.add("dc", Delay(np.array(2)), "c")
    g.add("fb3", Dense(rng.normal(0.0, 1.0, (6, 6))), "dc")
    g.add("b", CubaLIF((6,), 0.2, 0.05, 1.0), "fb", "fb2", "fb3")
    g.add("fc", Dense(rng.normal(0.3, 1.0, (6, 7))), "a")
    g.add("c", CubaLIF((6,), 0.5, 0.2, 0.8, reset="subtract"), "fc")
    g.add("rd", Delay(rng.integers(1, 4, 6)), "c")                 # per-neuron delays in a loop
    g.add("rec", Dense(rng.normal(0.0, 0.8, (7, 6))), "rd")
    g.add("out", Output((6,)), "b")
    g.add("out_c", Output((6,)), "c")
    return g


def test_cycles_fan_in_and_delays(monkeypatch):
    x = (np.random.default_rng(3).random((2, 6, 40)) < 0.4).astype(np.float32)
    keys = {p: ("u", "v") for p in ("a", "b", "c")}
    for mode, g in (("fixed", quantize(wired_graph())), ("float", wired_graph())):
        a = _compare(monkeypatch, g, x, mode, keys)
        assert all(a.counts[p].sum() > 0 for p in ("a", "b", "c")), mode
        _compare(monkeypatch, g, x[:1], mode, keys)


def test_torch_runs_snntorch_subtraction():
    torch = pytest.importorskip("torch")  # noqa: F841
    from snnc.backends.torch_engine import run_torch
    rng = np.random.default_rng(1)
    g = Graph()
    g.add("in", Input((10,)))
    g.add("fc", Dense(rng.normal(0.5, 1.0, (8, 10))), "in")
    g.add("l", CubaLIF((8,), 0.3, 0.1, 1.0, reset="subtract_snntorch"), "fc")
    g.add("fc2", Dense(rng.normal(0.3, 1.0, (4, 8))), "l")
    g.add("l2", CubaLIF((4,), 0.3, 0.1, 1.0, reset="subtract", reset_delay=True), "fc2")
    g.add("out", Output((4,)), "l2")
    q = quantize(g)
    x = (rng.random((3, 10, 30)) < 0.5).astype(np.float32)
    a = run_torch(q, x, device="cpu")
    b = reference_spec.run_reference_spec(q, x, "fixed")
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in b.counts)
    assert a.counts["l"].sum() > 0


def test_torch_step_loop_on_cycles_and_fan_in():
    pytest.importorskip("torch")
    from snnc.backends.torch_engine import run_torch
    q = quantize(wired_graph())
    x = (np.random.default_rng(4).random((2, 6, 40)) < 0.4).astype(np.float32)
    a = run_torch(q, x, device="cpu")
    b = reference_spec.run_reference_spec(q, x, "fixed")
    for o in q.outputs:
        assert np.array_equal(a.outputs[o], b.outputs[o]), o
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in b.counts)
    assert a.counts["c"].sum() > 0
