"""The time-batched reference plan (snnc.backends.reference_batched: one product per synapse for
all steps) against the step plan (reference._Sim, step by step) and the executable spec:
identical outputs, spike counts and final u/v, on every kernel the cost model can choose."""
import os

import numpy as np
import pytest

from snnc.backends import reference_batched as rb
from snnc.backends.reference import _Sim, run_reference
from snnc.backends.reference_spec import run_reference_spec
from snnc.compiler.fixed import FixedSynapse
from snnc.compiler.ir import Conv2d, CubaLI, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError

from small_nets import branchy, chain_with_delays, conv_net, kinds_net, lif, spikes


def _same_three_ways(graph, x):
    """batched == step plan == spec (outputs, counts), and final u/v of batched == step plan."""
    a = run_reference(graph, x, "fixed", plan="batched")
    b = run_reference(graph, x, "fixed", plan="step")
    c = run_reference_spec(graph, x, "fixed")
    assert (a.plan, b.plan, c.plan) == ("batched", "step", "spec")    # no silent fallback to the spec
    for o in graph.outputs:
        assert np.array_equal(a.outputs[o], b.outputs[o]), o
        assert np.array_equal(a.outputs[o], c.outputs[o]), o
    assert a.counts.keys() == b.counts.keys()
    for k in a.counts:
        assert np.array_equal(a.counts[k], b.counts[k]), k
        assert np.array_equal(a.counts[k], c.counts[k]), k
    xs = x if isinstance(x, dict) else {graph.inputs[0]: x}
    n, steps = next(iter(xs.values())).shape[0], next(iter(xs.values())).shape[-1]
    run = rb.BatchedRun(graph, {k: np.ascontiguousarray(np.moveaxis(v, -1, 0), dtype=np.float64)
                                for k, v in xs.items()}, steps, n)
    run.run()
    sim = _Sim(graph, "fixed", n)
    for t in range(steps):
        sim.step(t, {k: np.asarray(v[..., t], dtype=np.float64) for k, v in xs.items()})
    for p, st in run.state.items():
        for q in ("u", "v"):
            assert np.array_equal(st[q], sim.state[p][q]), (p, q)
    return a, run


def test_chains_with_per_neuron_and_uniform_delays():
    for kw in (dict(), dict(per_neuron=False), dict(N=1), dict(N=4, T=80)):
        g, x = chain_with_delays(**kw)
        a, _ = _same_three_ways(g, x)
        assert a.output.sum() > 0


def test_conv_pool_groups_stride_padding():
    for kw in (dict(), dict(N=1), dict(N=6, T=12, seed=7)):
        g, x = conv_net(**kw)
        a, run = _same_three_ways(g, x)
        assert a.output.sum() > 0
        assert run.kernels["c1"].startswith("im2col") and run.kernels["p"].startswith("im2col")


def test_conv_dilation_groups_asymmetric_stride_padding(monkeypatch):
    """The channel-first im2col on dilation, groups and unequal strides/padding, in both
    kernel dtypes, equals the step plan and the spec."""
    rng = np.random.default_rng(11)
    g = Graph()
    g.add("in", Input((4, 11, 9)))
    g.add("c", Conv2d(rng.normal(0.4, 1.0, (6, 2, 3, 2)), stride=(2, 1), padding=(1, 2),
                      dilation=(2, 1), groups=2), "in")
    g.add("l", lif((6, 5, 12)), "c")
    g.add("out", Output((6, 5, 12)), "l")
    q = quantize(g)
    x = (rng.random((3, 4, 11, 9, 20)) < 0.35).astype(np.float32)
    a, run = _same_three_ways(q, x)
    assert a.output.sum() > 0 and run.kernels["c"] == "im2col-gemm32"
    monkeypatch.setattr(rb, "F32_EXACT", 1.0)               # no float32 proof: float64
    _, run = _same_three_ways(q, x)
    assert run.kernels["c"] == "im2col-gemm64"


def test_event_driven_and_float64_kernels(monkeypatch):
    """A low input rate takes the sparse (event) kernel; weights too large for float32 take
    float64; a negative weight exponent (floor after the sum) is applied as the spec."""
    g, x = chain_with_delays(n_in=200, hidden=(30, 10), T=50, N=3)
    x = spikes(x.shape, rate=0.01, seed=5)
    x[0, :5] = 1.0
    _, run = _same_three_ways(g, x)
    assert run.kernels["fc0"] == "gemm32"          # a small product: the GEMM (no event kernel's start-up)
    monkeypatch.setattr(rb, "SPARSE_MIN_MACS", 0)
    _, run = _same_three_ways(g, x)
    assert run.kernels["fc0"] == "sparse"
    monkeypatch.setattr(rb, "F32_EXACT", 1.0)             # no float32 proof: float64 everywhere
    monkeypatch.setattr(rb, "SPARSE_RATE", 0.0)
    _, run = _same_three_ways(g, x)
    assert run.kernels["fc0"] == "gemm64"

    rng = np.random.default_rng(3)
    g = Graph()
    g.add("in", Input((2, 8, 8)))
    g.add("c", Conv2d(rng.normal(0.5, 1.0, (3, 2, 3, 3))), "in")
    g.add("l", lif((3, 6, 6), threshold=1e6), "c")
    g.add("d", Delay(np.array(2)), "l")
    g.add("f", Flatten(), "d")
    g.add("fc", Dense(rng.normal(0.1, 1.0, (4, 108))), "f")
    g.add("l2", lif((4,)), "fc")
    g.add("fro", Dense(rng.normal(0.5, 1.0, (4, 4))), "l2")
    g.add("ro", CubaLI((4,), current_decay=0.1, voltage_decay=0.2), "fro")
    g.add("out", Output((4,)), "ro")
    g.add("out_l", Output((3, 6, 6)), "l")
    q = quantize(g)
    q.fixed["fc"] = FixedSynapse(q.fixed["fc"].weight, weight_exp=-3)                      # floor
    xq = (rng.random((2, 2, 8, 8, 30)) < 0.4).astype(np.float32)
    _, run = _same_three_ways(q, xq)
    assert run.kernels["c"] == "im2col-gemm64"
    monkeypatch.undo()
    _, run = _same_three_ways(q, xq)
    assert run.kernels["c"] == "im2col-gemm32"


def test_sumpool_and_fan_in():
    rng = np.random.default_rng(4)
    g = Graph()
    g.add("in", Input((2, 8, 8)))
    g.add("pool", SumPool2d((2, 2), (2, 2), weight=1.0), "in")
    g.add("l", lif((2, 4, 4)), "pool")
    g.add("d1", Delay(np.array(1)), "l")
    g.add("d2", Delay(rng.integers(0, 4, (2, 4, 4))), "l")
    g.add("f1", Flatten(), "d1")
    g.add("f2", Flatten(), "d2")
    g.add("fc", Dense(rng.normal(0.3, 1.0, (6, 32))), "f1", "f2")     # one synapse, two sources
    g.add("l2", lif((6,)), "fc")
    g.add("out", Output((6,)), "l2")
    a, _ = _same_three_ways(quantize(g), spikes((3, 2, 8, 8, 40), seed=9))
    assert a.output.sum() > 0


def test_branchy_and_cycles():
    """branchy (fan-in, a synapse feeding two populations, spikes straight into a population,
    refractory, '>=', Average) is feed-forward: batched; a recurrent loop takes the step plan."""
    g, x = branchy()
    assert rb.batchable(g)
    _same_three_ways(g, x)
    rng = np.random.default_rng(6)
    g = Graph()
    g.add("in", Input((10,)))
    g.add("fin", Dense(rng.normal(0.4, 1.0, (8, 10))), "in")
    g.add("l", lif((8,)), "fin", "rec")
    g.add("rd", Delay(np.array(1)), "l")
    g.add("rec", Dense(rng.normal(0.0, 0.5, (8, 8))), "rd")
    g.add("out", Output((8,)), "l")
    g, x = quantize(g), spikes((2, 10, 30), seed=3)
    assert not rb.batchable(g)
    with pytest.raises(SnncError, match="without cycles"):
        run_reference(g, x, "fixed", plan="batched")
    a = run_reference(g, x, "fixed")            # auto: the step plan
    b = run_reference_spec(g, x, "fixed")
    assert np.array_equal(a.output, b.output)


def test_graded_input_rejected_and_chunks():
    g, x = chain_with_delays(N=5)
    with pytest.raises(SnncError, match="binary spikes"):
        run_reference(g, x * 0.5, "fixed", plan="batched")
    a = run_reference(g, x, "fixed", plan="batched")
    b = run_reference(g, x, "fixed", plan="batched", batch_size=2)
    assert np.array_equal(a.output, b.output)


def test_pilotnet_lif_and_ntidigits(lava_dl):
    from snnc.frontends.netx_import import bias_input, import_netx
    GTS = lava_dl.GTS
    g = quantize(import_netx(os.path.join(GTS, "pilotnet_lif", "network.net"), reset_interval=17))
    x = bias_input(np.load(os.path.join(GTS, "pilotnet_lif", "image.npy")), 24)[None]
    assert rb.batchable(g)
    a = run_reference(g, x, "fixed", plan="batched")
    b = run_reference(g, x, "fixed", plan="step")
    assert (a.plan, b.plan) == ("batched", "step")
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in b.counts)
    assert a.counts["conv1"].sum() > 0
    d = os.path.join(GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net"), num_layers=5))
    x = (np.random.default_rng(0).random((1, 1, 1, 64, 400)) < 0.05).astype(np.float32)
    a = run_reference(g, x, "fixed", plan="batched")
    b = run_reference(g, x, "fixed", plan="step")
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in b.counts)


def test_time_chunks_and_every_update_path(monkeypatch):
    """The population update a few steps at a time (a tiny chunk budget), on both update paths
    and every reset kind, with a bias-input drive: identical to the step plan and the spec."""
    g, x = kinds_net()
    whole, _ = _same_three_ways(g, x)
    assert whole.counts["fast"].sum() > 0 and whole.counts["late"].sum() > 0
    monkeypatch.setattr(rb.NumpyArrays, "chunk_bytes", 4 * 24 * 5 * 3)   # three steps per chunk
    seen = []
    orig = rb.CubaStepper._advance

    def advance(self, grp, t0, t1, *a):
        seen.append((self.params.names[0], t1 - t0, rb._input_only(grp)))
        return orig(self, grp, t0, t1, *a)
    monkeypatch.setattr(rb.CubaStepper, "_advance", advance)
    chunked, _ = _same_three_ways(g, x)
    assert np.array_equal(chunked.output, whole.output)
    assert {k for name, k, _ in seen if name != "ro"} == {3, 1}      # 40 steps: chunks of 3, then 1
    fast = {name for name, _, fast in seen if fast}
    assert {"fast", "fast_bias", "driven"} <= fast and not fast & {"usual", "sub", "late", "snt", "none", "refr"}


def test_bias_input_state_unit_checked_in_chunks():
    g, x = kinds_net()
    x["drive"][1, 3, 17] += 1e-5                            # not a multiple of the state unit
    with pytest.raises(SnncError, match="bias input is not a multiple"):
        run_reference(g, x, "fixed", plan="batched")


def test_synapse_spec_kept_until_the_weights_change():
    """The spec (and its kernel matrices) is reused from run to run, and made again when the
    fixed-point weights are edited in place: the run then equals a fresh copy's."""
    g, x = chain_with_delays(N=2)
    a = run_reference(g, x, "fixed", plan="batched")
    run1 = rb.BatchedRun(g, {"in": np.ascontiguousarray(np.moveaxis(x, -1, 0))}, x.shape[-1], 2)
    run1.run()
    run2 = rb.BatchedRun(g, {"in": np.ascontiguousarray(np.moveaxis(x, -1, 0))}, x.shape[-1], 2)
    run2.run()
    assert run1._specs["fc1"] is run2._specs["fc1"]          # kept
    g.fixed["fc1"].weight[:] = -g.fixed["fc1"].weight       # edited in place
    b = run_reference(g, x, "fixed", plan="batched")
    fresh = g.copy()
    fresh.fixed = {k: (FixedSynapse(np.array(v.weight), v.weight_exp) if isinstance(v, FixedSynapse) else v)
                   for k, v in g.fixed.items()}
    c = run_reference(fresh, x, "fixed", plan="step")
    assert not np.array_equal(a.output, b.output)
    assert np.array_equal(b.output, c.output)
    for k in c.counts:
        assert np.array_equal(b.counts[k], c.counts[k]), k
