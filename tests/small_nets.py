"""Small IR graphs (with their inputs) shared by the engine tests: each builder returns
``(graph, spikes)``, spikes ``(N, *shape, T)``. Quantized unless said otherwise. Not a test file:
tests import it (or use the fixtures of conftest.py)."""
import numpy as np

from snnc.compiler.fixed import FixedSynapse
from snnc.compiler.ir import (Average, Conv2d, CubaLI, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                              SumPool2d)
from snnc.compiler.quantize import quantize


def _rng(seed=0):
    return np.random.default_rng(seed)


def spikes(shape, rate=0.3, seed=0):
    """Bernoulli 0/1 spikes, float32."""
    return (_rng(seed).random(shape) < rate).astype(np.float32)


def lif(shape, **kw):
    """A CubaLIF with the tests' usual decays and threshold (``kw`` overrides them)."""
    p = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25)
    p.update(kw)
    return CubaLIF(tuple(shape), **p)


def chain_with_delays(n_in=30, hidden=(40, 20), T=60, N=3, per_neuron=True, seed=0):
    """Input -> (Delay (per neuron or uniform) -> Dense -> CubaLIF) x len(hidden) -> Output, quantized."""
    rng = _rng(seed)
    g = Graph()
    prev = g.add("in", Input((n_in,)))
    size = n_in
    for i, h in enumerate(hidden):
        steps = rng.integers(1, 6, size) if per_neuron else np.array(2)
        g.add(f"d{i}", Delay(steps), prev)
        g.add(f"fc{i}", Dense(rng.normal(0.2, 0.8, (h, size))), f"d{i}")
        prev = g.add(f"lif{i}", lif((h,)), f"fc{i}")
        size = h
    g.add("out", Output((size,)), prev)
    return quantize(g), spikes((N, n_in, T), seed=seed)


def branchy(T=50, N=2, seed=1):
    """Fan-in of synapses, a synapse feeding two populations, a recurrent loop, a '>=' population,
    refractory, negative weight exponent, zero delays, two outputs and an Average readout."""
    rng = _rng(seed)
    g = Graph()
    g.add("in", Input((12,)))
    g.add("fa", Dense(rng.normal(0.3, 1.0, (16, 12))), "in")
    g.add("l1", lif((16,), refractory=2), "fa")
    g.add("db", Delay(np.array(3)), "in")
    g.add("fb", Dense(rng.normal(0.2, 1.0, (16, 12))), "db")
    g.add("rd", Delay(np.array(1)), "l1")
    g.add("rec", Dense(rng.normal(0.0, 0.5, (16, 16))), "rd")
    g.add("l2", lif((16,), spike_compare=">=", threshold=4097 / 4096), "fb", "rec")
    g.add("d2", Delay(rng.integers(0, 4, 16)), "l2")        # zero delays: not timed
    g.add("fc", Dense(rng.normal(0.1, 1.0, (8, 16)) * 0.05), "d2")
    g.add("sel", Dense(np.eye(16)[:8]), "l1")
    g.add("l3", lif((8,), voltage_decay=0.1), "fc")
    g.add("l5", lif((8,)), "sel")
    g.add("out5", Output((8,)), "l5")
    g.add("avg", Average(4), "l3")
    g.add("out", Output((8,)), "l3")
    g.add("out_avg", Output((4,)), "avg")
    q = quantize(g)
    # beyond what quantize accepts (Loihi cannot), but the IR's meaning is clear: the simulator's
    # generic input sums
    q.edges.append(("fa", "l2"))                            # a synapse feeding two populations
    q.edges.append(("l5", "l3"))                            # spikes straight into a population
    fx = q.fixed["fc"]
    q.fixed["fc"] = FixedSynapse(fx.weight, weight_exp=-2)  # floor after the sum
    return q, spikes((N, 12, T), seed=seed)


def conv_net(T=30, N=2, seed=2, big=False):
    """Conv2d -> LIF -> Delay -> SumPool2d -> LIF -> grouped, strided Conv2d -> LIF -> Flatten -> Dense -> LIF."""
    rng = _rng(seed)
    g = Graph()
    hw = 40 if big else 10
    g.add("in", Input((2, hw, hw)))
    g.add("c1", Conv2d(rng.normal(0.3, 1.0, (6, 2, 3, 3)), padding=(1, 1)), "in")
    g.add("l1", lif((6, hw, hw)), "c1")
    g.add("d1", Delay(np.array(1)), "l1")
    g.add("p", SumPool2d((2, 2), (2, 2), weight=1.0), "d1")
    g.add("l2", lif((6, hw // 2, hw // 2)), "p")
    g.add("c2", Conv2d(rng.normal(0.2, 1.0, (4, 3, 3, 3)), stride=(2, 2), groups=2), "l2")
    g.add("l3", lif((4, hw // 4, hw // 4)), "c2")
    g.add("f", Flatten(), "l3")
    g.add("fc", Dense(rng.normal(0.1, 0.5, (5, 4 * (hw // 4) ** 2))), "f")
    g.add("l4", lif((5,)), "fc")
    g.add("out", Output((5,)), "l4")
    return quantize(g), spikes((N, 2, hw, hw, T), seed=seed)


def reset_net(reset, reset_delay, seed=0, readout=False):
    """Input(20) -> Dense -> CubaLIF(reset) -> Delay(1) -> Dense -> CubaLIF or CubaLI read-out,
    plus a bias-driven population (no input) summed into the output's synapse; float weights."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((20,)))
    g.add("w1", Dense(rng.normal(0.1, 0.5, (16, 20))), "x")
    g.add("h", CubaLIF((16,), 0.4, 0.1, 1.0, reset=reset, reset_delay=reset_delay, state_scale=0), "w1")
    g.add("d", Delay(np.array(1)), "h")
    g.add("b", CubaLIF((4,), 1.0, 0.2, 1.0, bias=0.3, reset=reset, reset_delay=reset_delay, state_scale=0))
    g.add("db", Delay(np.array(1)), "b")
    g.add("w2", Dense(rng.normal(0.2, 0.6, (6, 16))), "d")
    g.add("w3", Dense(rng.normal(0.2, 0.6, (6, 4))), "db")
    if readout:
        g.add("o", CubaLI((6,), 0.5, 0.1, state_scale=0), "w2", "w3")
    else:
        g.add("o", CubaLIF((6,), 0.5, 0.1, 0.8, reset=reset, reset_delay=reset_delay, state_scale=0), "w2", "w3")
    g.add("y", Output((6,)), "o")
    x = (rng.random((3, 20, 40)) < 0.3).astype(np.float32)
    return g, x


def mixed_neurons(seed=1):
    """Every neuron Lava refused before: per-neuron decays with a refractory period (zero reset),
    per-neuron decays with a periodic reset and a delayed subtraction, a refractory period with a
    periodic reset (scalar decays), and a CubaLI read-out with per-neuron decays. Input(12) -> h1(16) -> h2(10) -> h3(8) -> r(4, read-out)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((12,)))
    g.add("w1", Dense(rng.normal(0.5, 0.5, (16, 12))), "x")
    g.add("h1", CubaLIF((16,), rng.uniform(0.05, 0.6, 16), rng.uniform(0.02, 0.3, 16), 1.0, refractory=2,
                        state_scale=0), "w1")
    g.add("d1", Delay(np.array(1)), "h1")
    g.add("w2", Dense(rng.normal(0.4, 0.6, (10, 16))), "d1")
    g.add("h2", CubaLIF((10,), rng.uniform(0.1, 0.9, 10), rng.uniform(0.05, 0.3, 10), 0.9, reset="subtract",
                        reset_delay=True, reset_interval=20, reset_offset=3, state_scale=0), "w2")
    g.add("d2", Delay(np.array(1)), "h2")
    g.add("w3", Dense(rng.normal(0.5, 0.6, (8, 10))), "d2")
    g.add("h3", CubaLIF((8,), 0.3, 0.1, 0.7, refractory=1, reset_interval=20, reset_offset=7,
                        state_scale=0), "w3")
    g.add("d3", Delay(np.array(1)), "h3")
    g.add("w4", Dense(rng.normal(0.2, 0.5, (4, 8))), "d3")
    g.add("r", CubaLI((4,), rng.uniform(0.1, 0.9, 4), rng.uniform(0.05, 0.5, 4), state_scale=0), "w4")
    g.add("y", Output((4,)), "r")
    x = (rng.random((2, 12, 60)) < 0.3).astype(np.float32)
    return g, x


def kinds_net(seed=12):
    """Input + a bias-input drive -> one population of each update path and reset kind: u = the
    step's input (current_decay 1: ``_input_only``) with and without bias, the usual decays,
    subtract (immediate and one step late), snnTorch's subtract, no reset, refractory, and a
    read-out; fan-in of a delayed and an undelayed synapse."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((12,)))
    g.add("drive", Input((24,), kind="bias"))
    kinds = dict(fast=dict(current_decay=1.0), fast_bias=dict(current_decay=1.0, bias=0.25),
                 usual=dict(), sub=dict(reset="subtract", reset_delay=False),
                 late=dict(reset="subtract", reset_delay=True), snt=dict(reset="subtract_snntorch"),
                 none=dict(reset="none", voltage_decay=0.2), refr=dict(refractory=2))
    g.add("fd", Dense(rng.normal(0.3, 1.0, (24, 12))), "in")
    g.add("driven", lif((24,), current_decay=1.0), "fd", "drive")
    prev = "driven"
    for name, kw in kinds.items():
        g.add(f"w_{name}", Dense(rng.normal(0.2, 1.0, (24, 24))), prev)
        g.add(f"d_{name}", Delay(np.array(2)), prev)
        g.add(f"x_{name}", Dense(rng.normal(0.1, 0.5, (24, 24))), f"d_{name}")
        prev = g.add(name, lif((24,), **kw), f"w_{name}", f"x_{name}")
    g.add("ro_w", Dense(rng.normal(0.5, 1.0, (3, 24))), prev)
    g.add("ro", CubaLI((3,), current_decay=0.1, voltage_decay=0.2), "ro_w")
    g.add("out", Output((3,)), "ro")
    g.add("out_fast", Output((24,)), "fast")
    x = {"in": spikes((5, 12, 40), rate=0.4, seed=seed),
         "drive": np.round(rng.normal(0.3, 0.5, (5, 24, 40)) * 64) / 64}
    return quantize(g), x
