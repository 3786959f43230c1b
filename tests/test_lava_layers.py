"""lava-fixed's layers (``snnc.backends.lava_layers``): a population and its Dense synapses as one
Lava process in the CPU simulation. Each network runs twice on the real Lava, with layers
(the default) and without (``layers=False``: Lava's own Dense / DelayDense / LIF processes, what
the hardware path builds), and on the reference simulator: every recorded population's spikes,
the outputs and the final u, v are identical, over several samples (the synapse buffers are
reset between them)."""
import numpy as np
import pytest

import snnc
from snnc.backends import lava_worker
from snnc.backends.lava_backend import prepare, run_lava
from snnc.backends.reference import run_reference

import small_nets


def _layer_count(g, x, mode="fixed", **kw):
    procs = lava_worker.build_processes(prepare(g, x, mode, **kw)[0])
    return sum(type(p).__name__.startswith("Layer_") for p in procs), len(procs)


def _kinds(g, x, mode="fixed", **kw):
    """The sorted class names of the processes a run builds, layers as "Layer"."""
    procs = lava_worker.build_processes(prepare(g, x, mode, **kw)[0])
    return sorted("Layer" if type(p).__name__.startswith("Layer_") else type(p).__name__ for p in procs)


def _same_runs(g, x, mode="fixed", **kw):
    """Lava with and without layers, and the reference: equal spikes, outputs, final u and v."""
    on = run_lava(g, x, mode, timeout=240, record_state=True, **kw)
    off = run_lava(g, x, mode, timeout=240, record_state=True, layers=False, **kw)
    ref = run_reference(g, x, mode)
    assert on.spikes.keys() == off.spikes.keys()
    for pop in on.spikes:
        assert np.array_equal(on.spikes[pop], off.spikes[pop]), pop
    for name in on.outputs:
        assert np.array_equal(on.outputs[name], off.outputs[name]), name
        assert np.array_equal(on.outputs[name], ref.outputs[name]), name
    for pop, s in on.state.items():
        for k in ("u", "v"):
            assert np.array_equal(s[k], off.state[pop][k]), (pop, k)
    assert any(np.asarray(c).sum() > 10 for c in ref.counts.values())
    return on


def _fan_in_graph(T=40, N=2, seed=1):
    """Two synapses into one population (one delayed, and a recurrent loop), per-neuron delays
    (a DelayDense), a refractory population, a '>=' threshold, a synapse fed by the input and
    one by a population."""
    from snnc.compiler.ir import Delay, Dense, Graph, Input, Output
    from snnc.compiler.quantize import quantize
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((12,)))
    g.add("fa", Dense(rng.normal(0.3, 1.0, (16, 12))), "in")
    g.add("l1", small_nets.lif((16,), refractory=2), "fa")
    g.add("db", Delay(np.array(3)), "in")
    g.add("fb", Dense(rng.normal(0.2, 1.0, (16, 12))), "db")
    g.add("rd", Delay(np.array(1)), "l1")
    g.add("rec", Dense(rng.normal(0.0, 0.5, (16, 16))), "rd")
    g.add("l2", small_nets.lif((16,), spike_compare=">=", threshold=4097 / 4096), "fb", "rec")
    g.add("d2", Delay(rng.integers(1, 5, 16)), "l2")
    g.add("fc", Dense(rng.normal(0.3, 1.0, (8, 16))), "d2")
    g.add("l3", small_nets.lif((8,), voltage_decay=0.1), "fc")
    g.add("out", Output((8,)), "l3")
    return quantize(g), small_nets.spikes((N, 12, T), seed=seed)


@pytest.mark.timeout(600)
def test_layers_fan_in_recurrence_delays_refractory():
    g, x = _fan_in_graph()
    layers, procs = _layer_count(g, x)
    assert layers == 3
    # its 4 Dense / DelayDense processes, and the Recorder: every recorded population is a layer
    # and sends to the host itself; the input feeds two synapses, so an Injector still sends it
    assert procs == _layer_count(g, x, layers=False)[1] - 4 - 1
    assert _kinds(g, x) == ["Injector", "Layer", "Layer", "Layer"]
    _same_runs(g, x)


@pytest.mark.timeout(600)
def test_a_chain_runs_only_its_layers_with_host_pipes():
    """An input that feeds one layer is piped to it by the host, and every recorded layer pipes
    its output to the host: a 3-layer chain is 3 processes (no Injector, no Recorder), and its
    spikes are those of Lava's own processes (7 of them) and of the reference, over samples."""
    g, x = small_nets.chain_with_delays(hidden=(40, 20, 10), T=30, N=3)
    assert _kinds(g, x) == ["Layer"] * 3
    assert _kinds(g, x, layers=False) == ["DelayDense"] * 3 + ["Injector"] + ["LIF"] * 3 + ["Recorder3"]
    on = _same_runs(g, x)
    assert len(on.spikes) == 3 and all(np.any(s) for s in on.spikes.values())


@pytest.mark.timeout(600)
def test_layers_with_per_neuron_delays_over_samples():
    g, x = small_nets.chain_with_delays(T=40, N=3)
    assert _layer_count(g, x)[0] == 2
    _same_runs(g, x)


@pytest.mark.timeout(600)
def test_layers_beside_conv_processes():
    """Lava Conv processes (conv_as="conv") feed layers through the layer's own a_in; the last
    Dense is fused."""
    g, x = small_nets.conv_net(T=20)
    _same_runs(g, x, conv_as="conv")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("reset,delay,readout", [("subtract", True, False), ("none", False, False),
                                                  ("subtract_snntorch", False, True)])
def test_layers_every_reset_rule_and_read_out(reset, delay, readout):
    """snnc's LIFResetRule and LeakyIntegrator models as layers; a bias-driven population (its
    zero-weight synapse from the input is fused too); two synapses into the read-out."""
    g, x = small_nets.reset_net(reset, delay, readout=readout)
    q = snnc.compile(g)
    _same_runs(q, x)


@pytest.mark.timeout(600)
def test_layers_periodic_reset_per_neuron_decays_and_float():
    """LIFResetRule with periodic resets and per-neuron decays, LIFRefractory; and float mode,
    where a population with one input is fused."""
    g, x = small_nets.mixed_neurons()
    q = snnc.compile(g)
    _same_runs(q, x)
    assert _layer_count(g, x, "float")[0] == 4
    on = run_lava(g, x, "float", timeout=240)
    off = run_lava(g, x, "float", timeout=240, layers=False)
    assert np.array_equal(on.output, off.output) and np.any(on.output != 0)
    for pop in on.spikes:
        assert np.array_equal(on.spikes[pop], off.spikes[pop]), pop


def test_float_layers_only_with_one_input():
    """A float sum over several in-ports depends on their order: such a population keeps its
    synapse processes in float mode (fused in fixed point)."""
    g, x = small_nets.reset_net("zero", False)
    plan = prepare(g, x, "float")[0]
    fused = lava_worker.plan_layers(plan)
    assert "o" not in fused and {"h", "b"} <= set(fused)
    assert "o" in lava_worker.plan_layers(prepare(snnc.compile(g), x, "fixed")[0])
