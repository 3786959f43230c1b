"""Per-neuron decays (NIR graphs with per-neuron tau, snnTorch/Norse per-neuron beta): compiled to
per-neuron 12-bit decays and run exactly on every fixed-point engine (reference fast and spec, the
twin, Lava fixed through snnc's LIFResetRule with per-neuron du/dv Vars); ``snnc info`` names what
Loihi 2 hardware needs for them."""
import numpy as np
import pytest
import torch

import snnc

import small_nets
from snnc.backends.reference import run_reference
from snnc.backends.reference_spec import run_reference_spec
from snnc.compiler.ir import CubaLIF, Delay, Dense, Graph, Input, Output
from snnc.compiler.notes import custom_neuron_programs
from snnc.frontends.nir_import import import_nir


def _graph(reset="zero", seed=0):
    """Input(12) -> Dense -> CubaLIF(16, per-neuron decays) -> Delay(1) -> Dense -> CubaLIF(5, per-neuron)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((12,)))
    g.add("w1", Dense(rng.normal(0.3, 0.5, (16, 12))), "x")
    g.add("h", CubaLIF((16,), rng.uniform(0.05, 0.6, 16), rng.uniform(0.02, 0.3, 16), 1.0, reset=reset,
                       state_scale=0), "w1")
    g.add("d", Delay(np.array(1)), "h")
    g.add("w2", Dense(rng.normal(0.3, 0.6, (5, 16))), "d")
    g.add("o", CubaLIF((5,), rng.uniform(0.1, 0.9, 5), rng.uniform(0.05, 0.3, 5), 0.8, state_scale=0), "w2")
    g.add("y", Output((5,)), "o")
    x = (rng.random((2, 12, 50)) < 0.3).astype(np.float32)
    return g, x


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_per_neuron_decays_every_fixed_engine(reset):
    g, x = _graph(reset)
    q = snnc.compile(g)
    du = np.asarray(q.fixed["h"].decay_u)
    assert du.shape == (16,) and np.unique(du).size == 16
    ref = run_reference(q, x).output
    assert ref.sum() > 100
    assert np.array_equal(run_reference_spec(q, x, "fixed").output, ref)
    with torch.no_grad():
        assert np.array_equal(snnc.twin(q)(x).numpy(), ref)
    assert np.array_equal(run_reference(g, x, "float").output, run_reference_spec(g, x, "float").output)
    notes = custom_neuron_programs(q)
    assert "per-neuron decays" in notes["h"] and "per-neuron decays" in notes["o"]


@pytest.mark.timeout(300)
def test_per_neuron_decays_lava_fixed():
    g, x = _graph("zero")
    q = snnc.compile(g)
    lava = snnc.run(q, x, backend="lava-fixed", timeout=240)
    assert np.array_equal(lava.output, run_reference(q, x).output) and lava.output.sum() > 100


@pytest.mark.timeout(300)
def test_nir_lif_with_per_neuron_tau(tmp_path):
    """A NIR LIF layer with a tau per neuron (Norse's convention): compiles, float reference ==
    fixed reference on this input, and Lava fixed == reference bit for bit."""
    import nir  # lazy: heavy
    rng = np.random.default_rng(3)
    tau = rng.uniform(2e-3, 2e-2, 8)
    nodes = {"input": nir.Input(np.array([6])), "lin": nir.Linear(rng.normal(0.0, 1.5, (8, 6)) * 200),
             "lif": nir.LIF(tau=tau, r=np.ones(8), v_leak=np.zeros(8), v_threshold=np.ones(8),
                            v_reset=np.zeros(8)),
             "output": nir.Output(np.array([8]))}
    path = tmp_path / "lif.nir"
    nir.write(str(path), nir.NIRGraph(nodes, [("input", "lin"), ("lin", "lif"), ("lif", "output")]))
    g = import_nir(str(path), convention="norse")
    q = snnc.compile(g)
    assert np.unique(np.asarray(q.fixed[next(k for k, v in q.nodes.items() if isinstance(v, CubaLIF))]
                                .decay_v)).size == 8
    x = (rng.random((2, 6, 60)) < 0.3).astype(np.float32)
    ref = run_reference(q, x).output
    assert ref.sum() > 20
    lava = snnc.run(q, x, backend="lava-fixed", timeout=240)
    assert np.array_equal(lava.output, ref)


@pytest.mark.timeout(300)
def test_lava_fixed_runs_every_formerly_refused_neuron():
    """Lava fixed point (snnc's LIFResetRule / LeakyIntegrator models with per-neuron du/dv Vars,
    refractory counter and periodic reset) == the reference, bit for bit: the read-out's v at every
    step and every population's spike counts."""
    g, x = small_nets.mixed_neurons()
    q = snnc.compile(g)
    for pop in ("h1", "h2", "r"):
        assert np.unique(np.asarray(q.fixed[pop].decay_v)).size > 1
    ref = run_reference(q, x)
    assert np.array_equal(run_reference_spec(q, x, "fixed").output, ref.output)
    assert all(ref.counts[p].sum() > 20 for p in ("h1", "h2", "h3")), {p: ref.counts[p].sum() for p in ref.counts}
    lava = snnc.run(q, x, backend="lava-fixed", timeout=240)
    assert np.array_equal(lava.output, ref.output) and np.any(ref.output != 0)
    for p in ("h1", "h2", "h3"):
        assert np.array_equal(lava.counts[p], ref.counts[p]), p


@pytest.mark.timeout(300)
def test_lava_float_runs_per_neuron_decays():
    """Lava floating point runs the same graph (snnc's float models with per-neuron du/dv): read-out
    and spike counts identical to reference-float (the same float64 operations in the same order;
    measured: max |difference| 0)."""
    from snnc.backends.lava_backend import run_lava
    g, x = small_nets.mixed_neurons()
    ref = run_reference(g, x, "float")
    lava = run_lava(g, x, "float", timeout=240)
    assert np.array_equal(lava.output, ref.output) and np.any(ref.output != 0)
    for p in ("h1", "h2", "h3"):
        assert np.array_equal(lava.counts[p], ref.counts[p]), p
