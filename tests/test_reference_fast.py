"""The fast reference simulator (snnc.backends.reference, a compiled step plan) against its
executable spec (snnc.backends.reference_spec, node by node): identical outputs, spike counts and
per-step u/v, in both modes, on every kind of graph the plan treats specially."""
import contextlib
import os

import numpy as np
import pytest

from snnc.backends import reference_spec
from snnc.backends.reference import _Sim, run_reference
from snnc.backends.reference_spec import _Sim as _SpecSim, run_reference_spec
from snnc.compiler.fixed import FixedSynapse
from snnc.compiler.ir import (Average, Conv2d, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output,
                              SumPool2d)
from snnc.compiler.quantize import quantize


@contextlib.contextmanager
def _spec_blocked():
    """Any use of the executable spec inside fails: the fast engine computes what is compared."""
    def boom(*a, **k):
        raise AssertionError("the executable spec ran inside the fast engine")
    saved = reference_spec._Sim, reference_spec.run_reference_spec
    reference_spec._Sim = reference_spec.run_reference_spec = boom
    try:
        yield
    finally:
        reference_spec._Sim, reference_spec.run_reference_spec = saved


def _same(graph, x, mode, states=True):
    with _spec_blocked():
        a = run_reference(graph, x, mode)
    b = run_reference_spec(graph, x, mode)
    for o in graph.outputs:
        assert np.array_equal(a.outputs[o], b.outputs[o]), (mode, o)
    assert a.counts.keys() == b.counts.keys()
    for k in a.counts:
        assert np.array_equal(a.counts[k], b.counts[k]), (mode, k)
    if states:
        xs = x if isinstance(x, dict) else {graph.inputs[0]: x}
        n = next(iter(xs.values())).shape[0]
        fast, spec = _Sim(graph, mode, n), _SpecSim(graph, mode, n)
        pops = [k for k, v in graph.nodes.items() if isinstance(v, CubaLIF)]
        for t in range(next(iter(xs.values())).shape[-1]):
            xt = {k: np.asarray(v[..., t], dtype=np.float64) for k, v in xs.items()}
            if mode == "fixed":
                xt_spec = {k: v.astype(np.int64) if np.all(v == np.round(v)) else v for k, v in xt.items()}
            else:
                xt_spec = xt
            fast.step(t, xt)
            spec.step(t, xt_spec)
            for p in pops:
                for q in ("u", "v"):
                    assert np.array_equal(fast.state[p][q], spec.state[p][q]), (mode, p, q, t)
    return a


def _rng(seed=0):
    return np.random.default_rng(seed)


def _spikes(shape, rate=0.3, seed=0):
    return (_rng(seed).random(shape) < rate).astype(np.float32)


def _lif(shape, **kw):
    p = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25)
    p.update(kw)
    return CubaLIF(tuple(shape), **p)


def chain_with_delays(n_in=30, hidden=(40, 20), T=60, N=3, per_neuron=True, seed=0):
    rng = _rng(seed)
    g = Graph()
    prev = g.add("in", Input((n_in,)))
    size = n_in
    for i, h in enumerate(hidden):
        steps = rng.integers(1, 6, size) if per_neuron else np.array(2)
        g.add(f"d{i}", Delay(steps), prev)
        g.add(f"fc{i}", Dense(rng.normal(0.2, 0.8, (h, size))), f"d{i}")
        prev = g.add(f"lif{i}", _lif((h,)), f"fc{i}")
        size = h
    g.add("out", Output((size,)), prev)
    return quantize(g), _spikes((N, n_in, T), seed=seed)


def branchy(T=50, N=2, seed=1):
    """Fan-in of synapses, a synapse feeding two populations, a recurrent loop, a '>=' population,
    refractory, negative weight exponent, zero delays, two outputs and an Average readout."""
    rng = _rng(seed)
    g = Graph()
    g.add("in", Input((12,)))
    g.add("fa", Dense(rng.normal(0.3, 1.0, (16, 12))), "in")
    g.add("l1", _lif((16,), refractory=2), "fa")
    g.add("db", Delay(np.array(3)), "in")
    g.add("fb", Dense(rng.normal(0.2, 1.0, (16, 12))), "db")
    g.add("rd", Delay(np.array(1)), "l1")
    g.add("rec", Dense(rng.normal(0.0, 0.5, (16, 16))), "rd")
    g.add("l2", _lif((16,), spike_compare=">=", threshold=4097 / 4096), "fb", "rec")
    g.add("d2", Delay(rng.integers(0, 4, 16)), "l2")        # zero delays: not timed
    g.add("fc", Dense(rng.normal(0.1, 1.0, (8, 16)) * 0.05), "d2")
    g.add("sel", Dense(np.eye(16)[:8]), "l1")
    g.add("l3", _lif((8,), voltage_decay=0.1), "fc")
    g.add("l5", _lif((8,)), "sel")
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
    return q, _spikes((N, 12, T), seed=seed)


def conv_net(T=30, N=2, seed=2, big=False):
    rng = _rng(seed)
    g = Graph()
    hw = 40 if big else 10
    g.add("in", Input((2, hw, hw)))
    g.add("c1", Conv2d(rng.normal(0.3, 1.0, (6, 2, 3, 3)), padding=(1, 1)), "in")
    g.add("l1", _lif((6, hw, hw)), "c1")
    g.add("d1", Delay(np.array(1)), "l1")
    g.add("p", SumPool2d((2, 2), (2, 2), weight=1.0), "d1")
    g.add("l2", _lif((6, hw // 2, hw // 2)), "p")
    g.add("c2", Conv2d(rng.normal(0.2, 1.0, (4, 3, 3, 3)), stride=(2, 2), groups=2), "l2")
    g.add("l3", _lif((4, hw // 4, hw // 4)), "c2")
    g.add("f", Flatten(), "l3")
    g.add("fc", Dense(rng.normal(0.1, 0.5, (5, 4 * (hw // 4) ** 2))), "f")
    g.add("l4", _lif((5,)), "fc")
    g.add("out", Output((5,)), "l4")
    return quantize(g), _spikes((N, 2, hw, hw, T), seed=seed)


CASES = {"chain-delays": chain_with_delays, "chain-uniform-delay": lambda: chain_with_delays(per_neuron=False),
         "chain-one-sample": lambda: chain_with_delays(N=1), "branchy": branchy,
         "branchy-one-sample": lambda: branchy(N=1), "conv": conv_net, "conv-one-sample": lambda: conv_net(N=1)}


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_equals_spec(case, mode):
    g, x = CASES[case]()
    res = _same(g, x, mode)
    assert res.output.sum() > 0


def test_sparse_conv_and_large_delay_table(monkeypatch):
    """The scipy-sparse conv matrix and the on-the-fly delay indices (past the size limits)."""
    import snnc.backends.reference as ref
    monkeypatch.setattr(ref, "DENSE_CONV_ENTRIES", 10)
    monkeypatch.setattr(ref, "INDEX_TABLE_ENTRIES", 10)
    for build in (conv_net, chain_with_delays, branchy):
        g, x = build()
        _same(g, x, "fixed", states=False)


@pytest.mark.parametrize("du,dv", [(0.0, 0.0), (0.5, 0.25)])
def test_u_wrap_and_v_saturation(du, dv):
    """Strong input: u wraps at 24 bits and v saturates, on the steps where they do (also with
    decays, where the plan's static bound must not skip the range tests)."""
    g = Graph()
    g.add("in", Input((64,)))
    g.add("fc", Dense(np.full((4, 64), 3.9)), "in")
    g.add("l", _lif((4,), current_decay=du, voltage_decay=dv, threshold=100000.0), "fc")
    g.add("out", Output((4,)), "l")
    q = quantize(g)
    q.fixed["fc"] = FixedSynapse(q.fixed["fc"].weight, weight_exp=3)
    x = np.ones((2, 64, 40), np.float32)
    _same(q, x, "fixed")
    sim = _Sim(q, "fixed", 2)
    seen_neg = False
    for t in range(40):
        sim.step(t, {"in": x[..., t]})
        seen_neg |= bool((sim.state["l"]["u"] < 0).any())
    assert seen_neg                               # u did wrap


def test_graded_input_rejected_in_fixed_mode():
    from snnc.errors import SnncError
    g, x = chain_with_delays()
    with pytest.raises(SnncError, match="binary spikes"):
        run_reference(g, x * 0.5, "fixed")


netx = pytest.importorskip("lava.lib.dl.netx")
from lava_dl_files import GTS  # noqa: E402


@pytest.mark.skipif(not os.path.isdir(GTS), reason="lava-dl's netx ground truth not found")
def test_pilotnet_and_tinynet_bias_inputs_and_resets():
    from snnc.frontends.netx_import import bias_input, import_netx
    root = os.path.dirname(GTS)
    g = quantize(import_netx(os.path.join(root, "tiny.net"), reset_interval=17, all_outputs=True))
    x = bias_input(np.load(os.path.join(GTS, "tinynet", "input_bias.npy")), 20)[None]
    _same(g, x, "fixed")
    g = quantize(import_netx(os.path.join(GTS, "pilotnet_lif", "network.net"), reset_interval=17))
    x = bias_input(np.load(os.path.join(GTS, "pilotnet_lif", "image.npy")), 12)[None]
    _same(g, x, "fixed", states=False)


def test_chunks_and_progress_bar_do_not_change_results(capsys):
    g, x = conv_net(N=5)
    a = run_reference(g, x, "fixed")
    b = run_reference(g, x, "fixed", progress=True, batch_size=2)
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in a.counts)
    assert "reference-fixed" in capsys.readouterr().err
