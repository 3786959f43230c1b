"""Lava backend: fixed_pt output spikes bit-identical to the SLAYER PyTorch forward (CPU).

The IR graphs are built here directly from the slayer blocks (netx's mapping: weights x64,
12-bit decays, vth = int(threshold*64), Delay(1) after every neuron, axonal delays as Delay).
Run: .venv/bin/python -m pytest tests/test_lava_backend.py -q -s   (-s shows the report)
"""
import time

import numpy as np
import pytest
import torch

from lava.lib.dl import slayer

from snnc.backends.lava_backend import _shift, plan_lava, run_lava
from snnc.compiler.fixed import FixedCubaLIF, FixedSynapse
from snnc.compiler.ir import (Conv2d, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                              SumPool2d)
from snnc.errors import SnncError

import slayer_nets
from slayer_nets import slayer_to_ir

B = slayer.block.cuba


def slayer_forward(net, x):
    """Output spikes and per-block spike counts (of the neurons, before the delays)."""
    neurons = [b.neuron for b in net.blocks if hasattr(b, "neuron")]
    counts = {id(m): 0 for m in neurons}     # a recurrent neuron is called once per step

    def hook(m, i, o):
        counts[id(m)] = counts[id(m)] + o.detach().numpy().sum(-1).astype(np.int64)
    hooks = [m.register_forward_hook(hook) for m in neurons]
    with torch.no_grad():
        y = net(x).numpy()
    for h in hooks:
        h.remove()
    return y, [counts[id(m)] for m in neurons]


# ----------------------------------------------------------------------------- fixtures
RESULTS = {}


def _run_all(name):
    if name in RESULTS:
        return RESULTS[name]
    net, x = slayer_nets.ALL[name]()
    ref, ref_counts = slayer_forward(net, x)
    g = slayer_to_ir(net, x.shape[1:-1])
    xs = x.numpy()
    fx = run_lava(g, xs, mode="fixed", timeout=600)
    fl = run_lava(g, xs, mode="float", timeout=600)
    RESULTS[name] = (ref, ref_counts, g, fx, fl)
    return RESULTS[name]


@pytest.mark.parametrize("name", ["dense", "delay", "conv", "recurrent"])
def test_fixed_bit_identical_to_slayer(name):
    ref, ref_counts, g, fx, fl = _run_all(name)
    assert fx.output.shape == ref.shape
    eq = fx.output == ref
    agree = float(np.mean(fl.output == ref))
    pops = [k for k in g.nodes if k.startswith("lif")]
    print(f"\n[{name}] slayer spikes {int(ref.sum())}, lava-fixed {int(fx.output.sum())} "
          f"(mismatches {int((~eq).sum())}/{eq.size}), lava-float {int(fl.output.sum())} "
          f"agreement {agree:.4f}; per population slayer/fixed/float: "
          + ", ".join(f"{p} {int(c.sum())}/{fx.layer_totals()[p]}/{fl.layer_totals()[p]}"
                      for p, c in zip(pops, ref_counts))
          + f"; time fixed {fx.seconds:.1f}s float {fl.seconds:.1f}s")
    assert ref.sum() > 0
    assert eq.all(), f"{int((~eq).sum())} mismatching entries"
    for p, c in zip(pops, ref_counts):
        np.testing.assert_array_equal(fx.counts[p], c.reshape(fx.counts[p].shape), err_msg=p)


def test_batch_samples_are_independent():
    """Sample 1 of a batch equals the same input run alone (per-sample reset is exact)."""
    ref, _, g, fx, _ = _run_all("recurrent")
    net, x = slayer_nets.recurrent_net()
    alone = run_lava(g, x.numpy()[1:2], mode="fixed")
    np.testing.assert_array_equal(alone.output[0], fx.output[1])
    assert fx.output[0].sum() != fx.output[1].sum() or not np.array_equal(fx.output[0], fx.output[1])


# ----------------------------------------------------------------------------- small graphs
def _lif(g, name, n, src, bias=0, vth=80, du=1024, dv=128):
    g.add(name, CubaLIF((n,), du / 4096, dv / 4096, vth / 64, bias=bias / 64), *src)
    g.fixed[name] = FixedCubaLIF(du, dv, vth, bias_mant=bias, bias_exp=6 if bias else 0)


def test_bias_fanin_skip_and_output_delay():
    """Non-zero bias in a deep layer, fan-in of two paths with different delays (DelayDense with
    per-population offsets), a recurrent edge and a per-neuron output delay."""
    rng = np.random.default_rng(3)
    g = Graph()
    g.add("in", Input((12,)))
    w1 = rng.integers(-30, 60, (10, 12)) * 2
    w2 = rng.integers(-30, 60, (8, 10)) * 2
    w3 = rng.integers(-20, 50, (8, 12)) * 2
    wr = rng.integers(-40, 20, (8, 8)) * 2
    for k, w in (("fc1", w1), ("fc2", w2), ("skip", w3), ("rec", wr)):
        g.fixed[k] = FixedSynapse(w)
    g.add("fc1", Dense(w1 / 64), "in")
    _lif(g, "lif1", 10, ["fc1"], bias=40)
    g.add("d1", Delay(np.array(2)), "lif1")
    g.add("fc2", Dense(w2 / 64), "d1")
    g.add("d0", Delay(np.arange(12) % 3), "in")
    g.add("skip", Dense(w3 / 64), "d0")
    g.add("rd", Delay(np.array(1)), "lif2")
    g.add("rec", Dense(wr / 64), "rd")
    _lif(g, "lif2", 8, ["fc2", "skip", "rec"], bias=-20)
    g.add("dout", Delay(np.arange(8) % 4), "lif2")
    g.add("out", Output((8,)), "dout")
    x = (rng.random((2, 12, 40)) < 0.3).astype(np.float32)
    plan = plan_lava(g, 40, "fixed")
    assert plan.pops["lif1"].offset == 1 and plan.pops["lif2"].offset == 1
    assert plan.pops["lif1"].gate_bias and plan.pops["lif2"].gate_bias
    ref = _oracle(g, x)
    res = run_lava(g, x, mode="fixed")
    assert ref["lif1"].sum() > 0 and ref["lif2"].sum() > 0
    np.testing.assert_array_equal(res.counts["lif1"], ref["lif1"].sum(-1))
    np.testing.assert_array_equal(res.counts["lif2"], ref["lif2"].sum(-1))
    np.testing.assert_array_equal(res.output, _shift(ref["lif2"].astype(np.float32), np.arange(8) % 4))


def _oracle(g, x):
    """Step-by-step fixed-point evaluation of the bias/fan-in test graph."""
    n, T = x.shape[0], x.shape[-1]
    xi = x.astype(np.int64)
    F = g.fixed
    s1 = np.zeros((n, 10, T), np.int64)
    s2 = np.zeros((n, 8, T), np.int64)
    st = {k: [np.zeros((n, m), np.int64), np.zeros((n, m), np.int64)] for k, m in (("lif1", 10), ("lif2", 8))}

    def lif(k, a):
        fx = F[k]
        u, v = st[k]
        rtz = lambda y, dd: np.sign(y * (4096 - dd)) * (np.abs(y * (4096 - dd)) >> 12)
        u = rtz(u, fx.decay_u) + (a << 6)
        v = rtz(v, fx.decay_v) + u + (np.int64(fx.bias_mant) << fx.bias_exp)
        s = v > (fx.vth << 6)
        v = np.where(s, 0, v)
        st[k] = [u, v]
        return s

    d0 = np.arange(12) % 3
    for t in range(T):
        s1[..., t] = lif("lif1", xi[..., t] @ F["fc1"].weight.T)
        a = s1[..., t - 2] @ F["fc2"].weight.T if t >= 2 else 0
        xd = np.stack([xi[:, j, t - d0[j]] if t >= d0[j] else np.zeros(n, np.int64) for j in range(12)], 1)
        a = a + xd @ F["skip"].weight.T
        if t >= 1:
            a = a + s2[..., t - 1] @ F["rec"].weight.T
        s2[..., t] = lif("lif2", a)
    return {"lif1": s1, "lif2": s2}


def test_unsupported_raise_clear_errors():
    g = Graph()
    g.add("in", Input((4,)))
    g.add("fc", Dense(np.ones((3, 4))), "in")
    with pytest.raises(SnncError, match="graded=True"):        # refused where it is made (ir.CubaLIF)
        CubaLIF((3,), 0.1, 0.1, 1.0, graded=True)
    g.add("lif", CubaLIF((3,), 0.1, 0.1, 1.0), "fc")
    g.add("out", Output((3,)), "lif")
    with pytest.raises(SnncError, match="quantization"):
        plan_lava(g, 10, "fixed")
    # a refractory period with a periodic reset runs on snnc's LIFResetRule (lava_neurons; Lava
    # fixed == reference in tests/test_per_neuron_decays.py)
    g.nodes["lif"] = CubaLIF((3,), 0.1, 0.1, 1.0, refractory=2, reset_interval=5)
    pp = plan_lava(g, 10, "float").pops["lif"]
    assert (pp.refractory, pp.reset_interval) == (2, 5)


def _tiny_plan(steps=10):
    g = Graph()
    g.add("in", Input((4,)))
    g.add("fc", Dense(np.ones((3, 4))), "in")
    g.add("lif", CubaLIF((3,), 0.1, 0.1, 1.0), "fc")
    g.add("out", Output((3,)), "lif")
    return plan_lava(g, steps, "float")


def test_worker_failure_and_timeout_raise_snnc_error():
    from snnc.backends.lava_backend import _run_worker
    x = np.zeros((1, 4, 10), np.int8)
    plan = _tiny_plan()
    plan.conns[0].weight = np.ones((5, 4))          # does not fit the LIF: Lava raises in the child
    with pytest.raises(SnncError, match="Lava run failed.*stderr tail"):
        _run_worker(plan, x, timeout=120)
    t = time.perf_counter()
    with pytest.raises(SnncError, match="timed out after 0.3 s"):       # 5,000 steps take seconds
        _run_worker(_tiny_plan(5000), np.zeros((1, 4, 5000), np.int8), timeout=0.3)
    assert time.perf_counter() - t < 30


# ----------------------------------------------------------------------------- vs the reference
def _mixed_graph(seed=1):
    """Conv + pool + per-channel delays + flatten, a skip path from the (C,H,W) input with its own
    delay (fan-in with unequal timing -> DelayDense), bias in the last layer, a weight exponent,
    a recurrent edge and a per-neuron delay at the output."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((2, 6, 6)))
    g.add("conv", Conv2d(rng.normal(0, 0.6, (4, 2, 3, 3)), padding=(1, 1)), "in")
    g.add("lif_a", CubaLIF((4, 6, 6), 0.25, 0.03, 1.25), "conv")
    g.add("da", Delay(np.array(1)), "lif_a")
    g.add("pool", SumPool2d((2, 2), (2, 2), weight=1.5), "da")
    g.add("lif_b", CubaLIF((4, 3, 3), 0.25, 0.03, 1.25), "pool")
    g.add("db", Delay(np.arange(1, 5).reshape(4, 1, 1)), "lif_b")
    g.add("flat", Flatten(), "db")
    g.add("fc", Dense(rng.normal(0.1, 0.5, (10, 36))), "flat")
    g.add("din", Delay(np.array(2)), "in")
    g.add("flat_in", Flatten(), "din")
    g.add("skip", Dense(rng.normal(0.0, 0.3, (10, 72))), "flat_in")
    g.add("rd", Delay(np.array(1)), "lif_c")
    g.add("rec", Dense(rng.normal(-0.5, 3.0, (10, 10))), "rd")       # large: weight_exp > 0
    g.add("lif_c", CubaLIF((10,), 0.1, 0.05, 1.0, bias=0.3), "fc", "skip", "rec")
    g.add("dout", Delay(np.arange(10) % 3 + 1), "lif_c")
    g.add("out", Output((10,)), "dout")
    x = (rng.random((2, 2, 6, 6, 30)) < 0.3).astype(np.float32)
    return g, x


def test_mixed_graph_equals_reference():
    from snnc.backends.reference import run_reference
    from snnc.compiler.quantize import quantize
    g, x = _mixed_graph()
    q = quantize(g)
    assert q.fixed["rec"].weight_exp != 0 and np.any(q.fixed["lif_c"].bias_mant != 0)
    plan = plan_lava(q, x.shape[-1], "fixed")
    kinds = {c.name.split("#")[0]: (c.kind, c.delays is not None) for c in plan.conns}
    assert kinds["skip"] == ("dense", True) and kinds["fc"] == ("dense", True)
    ref = run_reference(q, x, "fixed")
    res = run_lava(q, x, mode="fixed")
    reff = run_reference(q, x, "float")
    resf = run_lava(q, x, mode="float")
    print(f"\n[mixed] reference {ref.layer_totals()} lava-fixed {res.layer_totals()} "
          f"lava-float {resf.layer_totals()} float agreement with reference-float "
          f"{float(np.mean(resf.output == reff.output)):.4f}")
    assert all(v > 0 for v in ref.layer_totals().values())
    np.testing.assert_array_equal(res.output, ref.output)
    for k, v in ref.counts.items():
        np.testing.assert_array_equal(res.counts[k], v, err_msg=k)


def test_bias_gating_is_exact_and_needed():
    """Biased populations at Lava offsets 1 and 2 (an instantaneous lif1 -> lif2 edge): bias is
    held at 0 during the leading steps; without that, spikes come early."""
    from snnc.backends.lava_backend import _run_worker
    from snnc.backends.reference import run_reference
    from snnc.compiler.quantize import quantize
    rng = np.random.default_rng(5)
    g = Graph()
    g.add("in", Input((6,)))
    g.add("fc1", Dense(rng.normal(0.2, 0.5, (5, 6))), "in")
    g.add("lif1", CubaLIF((5,), 0.1, 0.05, 1.0, bias=0.3), "fc1")
    g.add("fc2", Dense(rng.normal(0.2, 0.5, (4, 5))), "lif1")          # no Delay: offset 2
    g.add("lif2", CubaLIF((4,), 0.1, 0.05, 1.0, bias=np.array([0.3, 0.2, 0.1, 0.0])), "fc2")
    g.add("out", Output((4,)), "lif2")
    q = quantize(g)
    x = (rng.random((2, 6, 24)) < 0.2).astype(np.float32)
    plan = plan_lava(q, 24, "fixed")
    assert (plan.pops["lif1"].offset, plan.pops["lif2"].offset) == (1, 2)
    ref = run_reference(q, x, "fixed")
    res = run_lava(q, x, mode="fixed")
    np.testing.assert_array_equal(res.output, ref.output)
    for k, v in ref.counts.items():
        np.testing.assert_array_equal(res.counts[k], v, err_msg=k)
    for p in plan.pops.values():
        p.gate_bias = False
    ungated = _run_worker(plan, x.astype(np.int8), 300)["spikes"]
    assert not np.array_equal(ungated["lif2"], ref.output.astype(np.int8))


@pytest.mark.parametrize("name", ["dense", "delay", "conv", "recurrent"])
def test_pipeline_export_compile_lava_fixed(name, tmp_path):
    """The real path: snnc.export -> snnc.compile (importer + quantize) -> Lava fixed_pt."""
    import snnc
    net, x = slayer_nets.ALL[name]()
    with torch.no_grad():
        y = net(x).numpy()
    path = str(tmp_path / f"{name}.onnx")
    snnc.export(net, x, path)
    res = run_lava(snnc.compile(path), x.numpy(), mode="fixed")
    print(f"\n[pipeline {name}] pytorch {int(y.sum())} lava-fixed {int(res.output.sum())} "
          f"{res.layer_totals()} {res.seconds:.1f}s")
    np.testing.assert_array_equal(res.output, y)


# ----------------------------------------------------------------------------- speed options
def test_conv_as_dense_and_channels_are_identical_to_conv():
    """conv_as="dense" (Conv2d/SumPool2d as Lava Dense with the materialized matrix) and
    conv_as="conv" (Lava Conv), with io "channels" and "ringbuffer", give the same spikes in
    fixed_pt, equal to the reference simulator and to the SLAYER forward; float agrees too."""
    from snnc.backends.reference import run_reference
    net, x = slayer_nets.conv_net()
    ref, _ = slayer_forward(net, x)
    g = slayer_to_ir(net, x.shape[1:-1])
    xs = x.numpy()
    kinds = {ca: sorted(c.kind for c in plan_lava(g, xs.shape[-1], "fixed", conv_as=ca).conns)
             for ca in ("conv", "dense", "auto")}
    assert kinds["conv"] == ["conv", "conv", "conv", "dense"]
    assert kinds["dense"] == kinds["auto"] == ["dense"] * 4
    rs = run_reference(g, xs, "fixed")
    runs = {(ca, io): run_lava(g, xs, mode="fixed", conv_as=ca, io=io)
            for ca, io in (("conv", "channels"), ("dense", "channels"), ("conv", "ringbuffer"))}
    assert ref.sum() > 0
    np.testing.assert_array_equal(rs.output, ref)
    for key, r in runs.items():
        np.testing.assert_array_equal(r.output, ref, err_msg=str(key))
        for k, v in rs.counts.items():
            np.testing.assert_array_equal(r.counts[k], v, err_msg=f"{key} {k}")
    fl = {ca: run_lava(g, xs, mode="float", conv_as=ca) for ca in ("conv", "dense")}
    np.testing.assert_array_equal(fl["conv"].output, fl["dense"].output)
    for k in fl["conv"].counts:
        np.testing.assert_array_equal(fl["conv"].counts[k], fl["dense"].counts[k], err_msg=k)
    print("\n[conv_as] times: " + ", ".join(f"{k} {r.seconds:.1f}s" for k, r in runs.items()))


def test_conv_matrix_matches_reference_convolution():
    """The materialized matrix is the IR convolution (strides, padding, dilation, groups)."""
    from snnc.backends.lava_plan import conv_matrix
    rng = np.random.default_rng(0)
    for (cin, cout, k, s, p, d, grp, h, w) in ((2, 4, 3, 1, 1, 1, 1, 7, 6), (4, 6, 3, 2, 0, 2, 2, 9, 10),
                                               (3, 3, 2, 2, 1, 1, 3, 5, 5)):
        wt = rng.integers(-5, 6, (cout, cin // grp, k, k))
        x = rng.integers(0, 2, (1, cin, h, w))
        y = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(wt).double(),
                                       stride=s, padding=p, dilation=d, groups=grp).numpy()[0]
        m = conv_matrix(wt, (cin, h, w), y.shape, (s, s), (p, p), (d, d), grp)
        np.testing.assert_array_equal(m @ x.ravel(), y.ravel())


def test_conv_as_dense_refuses_inexact_weights():
    """Odd mixed-sign weights are exact for Lava's Conv but Dense would truncate them: 'dense'
    raises, 'auto' keeps the Conv process."""
    g = Graph()
    g.add("in", Input((1, 4, 4)))
    w = np.array([[[[3, -1], [1, 5]]]], dtype=np.int64)
    g.add("conv", Conv2d(w / 64), "in")
    g.fixed["conv"] = FixedSynapse(w)
    g.add("lif", CubaLIF((1, 3, 3), 0.25, 0.03, 1.25), "conv")
    g.fixed["lif"] = FixedCubaLIF(1024, 128, 80)
    g.add("out", Output((1, 3, 3)), "lif")
    with pytest.raises(SnncError, match="conv_as='dense'"):
        plan_lava(g, 8, "fixed", conv_as="dense")
    assert plan_lava(g, 8, "fixed", conv_as="auto").conns[0].kind == "conv"
    assert plan_lava(g, 8, "float", conv_as="dense").conns[0].kind == "dense"


# ----------------------------------------------------------------------------- resets, bias input, average
def _all_outputs(g):
    """One extra Output per population (named '<pop>.out') so every engine reports its spikes."""
    for k, v in list(g.nodes.items()):
        if isinstance(v, CubaLIF):
            g.add(f"{k}.out", Output(tuple(v.shape)), k)
    return g


def _reset_graph(reset=True):
    """Periodic resets with different intervals and offsets (one negative), one population at
    Lava offset > 0 with a gated bias, an Average readout behind a delay."""
    import dataclasses
    from snnc.compiler.ir import Average
    rng = np.random.default_rng(11)
    g = Graph()
    g.add("in", Input((6,)))
    g.add("fc1", Dense(rng.normal(0.3, 0.4, (8, 6))), "in")
    g.add("lif1", CubaLIF((8,), 0.05, 0.02, 1.0, bias=0.05, reset_interval=5, reset_offset=2), "fc1")
    g.add("fc2", Dense(rng.normal(0.3, 0.5, (6, 8))), "lif1")                     # offset 2
    g.add("lif2", CubaLIF((6,), 0.1, 0.01, 1.0, bias=0.1, reset_interval=7, reset_offset=-1), "fc2")
    g.add("d", Delay(np.array([0, 1, 2, 0, 1, 2])), "lif2")
    g.add("avg", Average(3), "d")
    g.add("out", Output((3,)), "avg")
    if not reset:
        for k in ("lif1", "lif2"):
            g.nodes[k] = dataclasses.replace(g.nodes[k], reset_interval=0, reset_offset=0)
    return _all_outputs(g)


def test_periodic_reset_is_exact_over_a_batch():
    """LIFReset with the population's Lava offset: every sample's resets land on the same IR
    steps (the run is padded to a multiple of lcm(5, 7)); spikes per population, the Average
    readout and the other outputs equal the reference simulator; without the reset they differ."""
    from snnc.backends.reference import run_reference
    from snnc.compiler.quantize import quantize
    q = quantize(_reset_graph())
    x = (np.random.default_rng(2).random((3, 6, 23)) < 0.4).astype(np.float32)
    plan = plan_lava(q, 23, "fixed")
    p1, p2 = plan.pops["lif1"], plan.pops["lif2"]
    assert (p1.offset, p2.offset) == (1, 2) and p2.gate_bias
    assert (p1.reset_interval, p1.reset_offset) == (5, (2 + 1 + 1) % 5)
    assert (p2.reset_interval, p2.reset_offset) == (7, (-1 + 2 + 1) % 7)
    assert plan.run_steps == 35                          # 23 + 2, rounded up to lcm(5, 7)
    ref = run_reference(q, x, "fixed")
    res = run_lava(q, x, mode="fixed")
    assert set(res.outputs) == set(ref.outputs) == {"out", "lif1.out", "lif2.out"}
    for k in ref.outputs:
        np.testing.assert_array_equal(res.outputs[k], ref.outputs[k], err_msg=k)
    for k in ("lif1", "lif2"):
        assert ref.counts[k].sum() > 0
        np.testing.assert_array_equal(res.spikes[k], ref.outputs[f"{k}.out"], err_msg=k)
    assert res.output.dtype == np.float32 and not np.all(res.output == np.round(res.output))
    plain = run_reference(quantize(_reset_graph(reset=False)), x, "fixed")
    assert not np.array_equal(plain.outputs["lif1.out"], ref.outputs["lif1.out"])
    assert not np.array_equal(plain.outputs["lif2.out"], ref.outputs["lif2.out"])
    resf = run_lava(q, x, mode="float")                  # floating_pt LIFReset runs too
    assert resf.spikes["lif1"].shape == res.spikes["lif1"].shape


def test_reset_intervals_whose_lcm_is_too_long_are_refused():
    import dataclasses
    from snnc.compiler.quantize import quantize
    g = _reset_graph()
    g.nodes["lif1"] = dataclasses.replace(g.nodes["lif1"], reset_interval=4099)
    g.nodes["lif2"] = dataclasses.replace(g.nodes["lif2"], reset_interval=4111)
    with pytest.raises(SnncError, match=r"\['lif1', 'lif2'\].*least common multiple"):
        plan_lava(quantize(g), 100, "fixed")


def _bias_graph():
    from snnc.compiler.ir import Average
    rng = np.random.default_rng(4)
    g = Graph()
    g.add("in", Input((2, 3, 3), kind="bias"))
    g.add("enc", CubaLIF((2, 3, 3), 0.0, 0.1, 1.0, bias=np.linspace(-0.25, 0.25, 18).reshape(2, 3, 3),
                         reset_interval=6), "in")
    g.add("dl", Delay(np.array(1)), "enc")
    g.add("fl", Flatten(), "dl")
    g.add("fc", Dense(rng.normal(0.2, 0.5, (5, 18))), "fl")
    g.add("lif", CubaLIF((5,), 0.1, 0.05, 1.0), "fc")
    g.add("avg", Average(6), "enc")
    g.add("out", Output((5,)), "lif")
    g.add("rate", Output((6,)), "avg")
    return g


def test_bias_input_constant_per_sample():
    """A bias-kind input (netx's input layer): per-sample bias_mant, exact in 13 bits with one
    exponent per population; several samples with different values; equal to the reference."""
    from snnc.backends.lava_plan import bias_drive
    from snnc.backends.reference import run_reference
    from snnc.compiler.quantize import quantize
    q = quantize(_bias_graph())
    rng = np.random.default_rng(8)
    vals = rng.integers(-16, 44, (3, 2, 3, 3)) / 64             # threshold units, multiples of 1/64
    x = np.repeat(vals[..., None], 25, axis=-1).astype(np.float32)
    plan = plan_lava(q, 25, "fixed")
    assert plan.input_kind == "bias" and plan.root == "enc" and plan.pops["enc"].bias_input == "in"
    exp, mant = bias_drive(plan, x)["enc"]
    assert mant.shape == (3, 3, 3, 2) and np.abs(mant).max() <= 4095
    ref = run_reference(q, x, "fixed")
    res = run_lava(q, x, mode="fixed")
    assert ref.counts["enc"].sum() > 0 and ref.counts["lif"].sum() > 0
    for k in ("out", "rate"):
        np.testing.assert_array_equal(res.outputs[k], ref.outputs[k], err_msg=k)
    for k, v in ref.counts.items():
        np.testing.assert_array_equal(res.counts[k], v, err_msg=k)
    assert not np.array_equal(res.counts["enc"][0], res.counts["enc"][1])


def test_bias_input_refusals():
    from snnc.compiler.quantize import quantize
    q = quantize(_bias_graph())
    x = np.full((1, 2, 3, 3, 10), 0.5, np.float32)
    x[0, 1, 2, 0, 4] = 0.25
    with pytest.raises(SnncError, match=r"bias input 'in' .*changes over time.*step 4"):
        run_lava(q, x)
    with pytest.raises(SnncError, match=r"'enc'.*not a multiple of 1/4096"):
        run_lava(q, np.full((1, 2, 3, 3, 10), 1e-5, np.float32))
    with pytest.raises(SnncError, match=r"'enc'.*13-bit"):
        run_lava(q, np.full((1, 2, 3, 3, 10), 1 + 1 / 4096, np.float32))
    g = Graph()                                              # a bias input into a synapse
    g.add("in", Input((4,), kind="bias"))
    g.add("fc", Dense(np.ones((3, 4))), "in")
    g.add("lif", CubaLIF((3,), 0.1, 0.1, 1.0), "fc")
    g.add("out", Output((3,)), "lif")
    with pytest.raises(SnncError, match="'in'"):
        plan_lava(g, 10, "float")


def test_fast_delay_dense_model_equals_lavas():
    """lava_fast_models: the DelayDense activation over spiking inputs only is Lava's own
    calc_act, entry for entry (mixed-sign weights, delays 0..62, binary and graded input)."""
    from lava.proc.dense.models import PyDelayDenseModelBitAcc
    from snnc.backends.lava_fast_models import PyDelayDenseModelBitAccFast
    rng = np.random.default_rng(0)
    for n_out, n_in, dmax in ((7, 11, 0), (30, 50, 62), (256, 64, 5)):
        w = rng.integers(-256, 256, (n_out, n_in)).astype(np.int32)
        d = rng.integers(0, dmax + 1, (n_out, n_in)).astype(np.int32)
        models = []
        for cls in (PyDelayDenseModelBitAcc, PyDelayDenseModelBitAccFast):
            m = cls({})
            m.weights, m.delays = w, d
            m.a_buff = np.zeros((n_out, dmax + 1), np.int32)
            models.append(m)
        for p in (0.0, 0.1, 0.5, 1.0):
            s = rng.random(n_in) < p
            a, b = models[0].calc_act(s), models[1].calc_act(s)
            assert a.dtype == b.dtype and np.array_equal(a, b)
            g = (rng.integers(0, 100, n_in) * s).astype(np.int32)
            assert np.array_equal(models[0].calc_act(g), models[1].calc_act(g))


def test_fast_dense_model_equals_lavas():
    """lava_fast_models: the fixed_pt Dense model with its float64 product sends Lava's own
    model's messages, step for step (mixed-sign weights and the sign modes, positive and negative
    weight exponents, fewer weight bits, input rates 0 to 1, graded input, 2**12 inputs)."""
    from lava.proc.dense.models import PyDenseModelBitAcc
    from snnc.backends.lava_fast_models import PyDenseModelBitAccFast

    class Port:                              # the in-process ports of lava_layers
        def __init__(self):
            self.data, self.sent = None, []

        def recv(self):
            return self.data

        def send(self, data):
            self.sent.append(np.array(data))
    rng = np.random.default_rng(1)
    cases = [(7, 11, 0, 8, 0), (40, 300, 3, 8, 0), (64, 4096, -2, 6, 0), (5, 9, 1, 8, 16),
             (30, 50, 0, 8, 0), (12, 20, 1, 8, 0)]
    for k, (n_out, n_in, exp, bits, graded) in enumerate(cases):
        lo = 0 if k == 4 else -300                    # one excitatory-only matrix (another sign mode)
        w = rng.integers(lo, 300, (n_out, n_in)).astype(np.int32)     # beyond 8 bits: clipped
        models = []
        for cls in (PyDenseModelBitAcc, PyDenseModelBitAccFast):
            m = cls({"weight_exp": exp, "num_weight_bits": bits})
            m.weights, m.a_buff = w.copy(), np.zeros(n_out, np.int32)
            m.num_message_bits = np.array([graded])
            m.s_in, m.a_out = Port(), Port()
            models.append(m)
        for p in (0.0, 0.05, 0.5, 1.0, 0.3):
            s = rng.random(n_in) < p
            x = (rng.integers(0, 1000, n_in) * s).astype(np.int32) if graded else s
            for m in models:
                m.s_in.data = x
                m.run_spk()
            assert models[0].a_buff.dtype == models[1].a_buff.dtype
            assert np.array_equal(models[0].a_buff, models[1].a_buff), (k, p)
        sent = [np.array(m.a_out.sent) for m in models]
        assert np.array_equal(sent[0], sent[1]) and np.any(sent[0] != 0)


def test_fast_conv_model_equals_lavas_conv():
    """lava_fast_models: the fixed_pt Conv's im2col convolution is Lava's own ``conv_scipy``, entry
    for entry after Lava's cast (strides, padding, dilation, groups; binary and graded input up to
    2**20), and the fast model's step output is Lava's model's."""
    from lava.proc.conv import utils
    from snnc.backends.lava_fast_models import conv_lava_layout
    rng = np.random.default_rng(0)
    for trial in range(200):
        g = int(rng.choice([1, 1, 2, 3]))
        cg, og = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        kx, ky = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        s, p, d = (tuple(int(v) for v in rng.integers(lo, hi, 2)) for lo, hi in ((1, 4), (0, 3), (1, 3)))
        X, Y = int(rng.integers(kx * d[0], 14)), int(rng.integers(ky * d[1], 14))
        graded = rng.random() < 0.3
        x = rng.integers(-2**20, 2**20, (X, Y, cg * g)).astype(np.int32) if graded else rng.random((X, Y, cg * g)) < 0.4
        w = (rng.integers(-128, 128, (og * g, kx, ky, cg)) * 2).astype(np.int32)
        want = utils.conv_scipy(x, w, (kx, ky), s, p, d, g).astype(w.dtype)
        got = conv_lava_layout(x, w, s, p, d, g).astype(w.dtype)
        assert got.shape == want.shape and np.array_equal(got, want), trial


def test_plan_reads_only_the_lowered_network():
    """lava_plan walks no graph itself (no predecessors/successors/edges, no shape inference of
    its own): every structure comes from compiler.lower; and a plan's connections are the lowered
    connections' source paths, one Lava synapse each, with offsets from their delays."""
    import inspect
    import snnc.backends.lava_plan as lp
    from snnc.compiler.lower import lower
    from snnc.compiler.quantize import quantize
    src = inspect.getsource(lp)
    for walk in (".predecessors(", ".successors(", ".edges", "output_shape(", "check("):
        assert walk not in src, walk
    g = Graph()
    g.add("in", Input((5,)))
    g.add("fc1", Dense(np.full((5, 5), 0.5)), "in")
    g.add("lif1", CubaLIF((5,), 0.1, 0.05, 1.0), "fc1")
    g.add("d", Delay(np.array(3)), "lif1")
    g.add("fc2", Dense(np.full((4, 5), 0.5)), "d", "in")             # two source paths, one synapse
    g.add("lif2", CubaLIF((4,), 0.1, 0.05, 1.0), "fc2")
    g.add("out", Output((4,)), "lif2")
    q = quantize(g)
    plan = plan_lava(q, 10, "fixed")
    paths = [(s.pop, c.dst) for c in lower(q).connections for s in c.sources]
    assert sorted((c.src, c.dst) for c in plan.conns) == sorted(paths) == \
        [("in", "lif1"), ("in", "lif2"), ("lif1", "lif2")]
    # lif1 at offset 1; lif2 >= max(in + 1, lif1 + 1 - 3) = 1; extra steps: in->lif2 0, lif1->lif2 3 - 1 = 2
    assert (plan.pops["lif1"].offset, plan.pops["lif2"].offset) == (1, 1)
    extra = {c.src: (0 if c.delays is None else int(c.delays.max())) for c in plan.conns if c.dst == "lif2"}
    assert extra == {"in": 0, "lif1": 2}


def _one_of_each_lava_process():
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF, LIFReset
    from lava.proc.sdn.process import Delta, Sigma, SigmaDelta
    return [Dense(weights=np.eye(2)), DelayDense(weights=np.eye(2), delays=np.ones((2, 2), int)),
            LIF(shape=(2,)), LIFReset(shape=(2,), reset_interval=2),
            Conv(weight=np.ones((1, 1, 1, 1)), input_shape=(2, 2, 1)), RingBuffer(data=np.zeros((2, 3))),
            Sigma(shape=(2,)), Delta(shape=(2,), vth=1), SigmaDelta(shape=(2,), vth=1)]


@pytest.mark.parametrize("tag", ["fixed_pt", "floating_pt"])
def test_named_models_are_the_ones_lava_would_search_and_select(tag):
    from lava.proc.dense.process import Dense
    """lava_models.LAVA_PICKS names, for every Lava process snnc builds, the model that Lava's
    own search (_find_proc_models) and Loihi2SimCfg's selection give."""
    from lava.magma.compiler.compiler_graphs import ProcGroupDiGraphs
    from lava.magma.core.run_configs import Loihi2SimCfg

    from snnc.backends.lava_models import LAVA_PICKS, lava_pick, name_models
    procs = _one_of_each_lava_process()
    assert {(type(p).__module__, type(p).__name__) for p in procs} == set(LAVA_PICKS)
    for p in procs:
        found = ProcGroupDiGraphs._find_proc_models(p)
        assert lava_pick(type(p), tag) is Loihi2SimCfg(select_tag=tag).select(p, found), type(p).__name__
    cfg = name_models(Loihi2SimCfg(select_tag=tag, exception_proc_model_map={Dense: int}), procs)
    assert all(p in cfg.exception_proc_model_map for p in procs)
    assert cfg.exception_proc_model_map[procs[0]] is int        # a class entry wins over the pick
