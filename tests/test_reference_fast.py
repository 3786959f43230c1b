"""The fast reference simulator (snnc.backends.reference, a compiled step plan) against its
executable spec (snnc.backends.reference_spec, node by node): identical outputs, spike counts and
per-step u/v, in both modes, on every kind of graph the plan treats specially."""
import contextlib
import os

import numpy as np
import pytest

from snnc.backends import reference_spec
from snnc.backends.reference import _Sim, run_reference, supported
from snnc.backends.reference_spec import _Sim as _SpecSim, run_reference_spec
from snnc.compiler.fixed import FixedSynapse
from snnc.compiler.ir import CubaLIF, Dense, Graph, Input, Output
from snnc.compiler.quantize import quantize

from small_nets import branchy, chain_with_delays, conv_net, lif


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
    """The compiled plan (step or time-batched) == the spec. The plan must really have run (the
    spec blocked inside it), else the spec would be compared with itself."""
    assert supported(graph)
    with _spec_blocked():
        a = run_reference(graph, x, mode)
    b = run_reference_spec(graph, x, mode)
    assert a.plan in ("step", "batched") and b.plan == "spec", (a.plan, b.plan)
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
    g.add("l", lif((4,), current_decay=du, voltage_decay=dv, threshold=100000.0), "fc")
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


@pytest.mark.parametrize("plan", ["step", "batched"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_signed_bounds_keep_the_test_on_the_side_that_overflows(sign, plan):
    """Weights strong on one side only (a weak other side): u wraps and v saturates on the strong
    side exactly as in the spec, in both plans (the signed static bounds of
    ``CubaGroup.range_checks`` must keep that side's test)."""
    w = np.full((4, 64), sign * 3.9)
    w[:, :8] = -sign * 0.5
    g = Graph()
    g.add("in", Input((64,)))
    g.add("fc", Dense(w), "in")
    g.add("l", lif((4,), current_decay=0.5, voltage_decay=0.25, threshold=100000.0), "fc")
    g.add("out", Output((4,)), "l")
    q = quantize(g)
    q.fixed["fc"] = FixedSynapse(q.fixed["fc"].weight, weight_exp=3)
    x = np.ones((2, 64, 40), np.float32)
    with _spec_blocked():
        a = run_reference(q, x, "fixed", plan=plan)
    b = run_reference_spec(q, x, "fixed")
    assert a.plan == plan
    assert np.array_equal(a.output, b.output) and np.array_equal(a.counts["l"], b.counts["l"])
    sim, spec = _Sim(q, "fixed", 2), _SpecSim(q, "fixed", 2)
    wrapped = False
    for t in range(40):
        sim.step(t, {"in": x[..., t].astype(np.float64)})
        spec.step(t, {"in": x[..., t].astype(np.int64)})
        assert np.array_equal(sim.state["l"]["v"], spec.state["l"]["v"]), t
        wrapped |= bool((sign * sim.state["l"]["u"] < 0).any())
    assert wrapped                                # u did wrap on the strong side


def test_signed_bounds_skip_the_side_that_cannot_overflow():
    """``range_checks`` from (A_hi, A_lo): only the side whose bound reaches the 24-bit range is
    tested each step; an unknown drive bound tests everything."""
    from snnc.backends.populations import CubaGroup, cuba_params
    from snnc.compiler.lower import lower
    g = Graph()
    g.add("in", Input((2,)))
    g.add("fc", Dense(np.eye(2)), "in")
    g.add("l", lif((2,), current_decay=0.5, voltage_decay=0.25, threshold=1.0), "fc")
    g.add("out", Output((2,)), "l")
    params = cuba_params(lower(quantize(g)), ["l"], True)
    grp = CubaGroup(params, 1)
    grp.a_bound, grp.a_low = np.full(2, 64.0 * 255), np.full(2, float(1 << 22))
    assert grp.range_checks() == (True, True, True)          # u can reach 2**23 from below
    grp.a_low = np.full(2, float(1 << 21))            # u >= -2**22, v >= -2**24
    assert grp.range_checks() == (False, False, True)        # v can fall below -V_MAX only
    grp.a_low = np.full(2, 64.0 * 255)
    assert grp.range_checks() == (False, False, False)
    grp.drive = np.zeros((1, 2))
    assert grp.range_checks() == (True, True, True)          # a drive with no bound
    grp.drive_bound = (np.zeros(2), np.zeros(2))
    assert grp.range_checks() == (False, False, False)


def test_graded_input_rejected_in_fixed_mode():
    from snnc.errors import SnncError
    g, x = chain_with_delays()
    with pytest.raises(SnncError, match="binary spikes"):
        run_reference(g, x * 0.5, "fixed")


def test_pilotnet_and_tinynet_bias_inputs_and_resets(lava_dl):
    from snnc.frontends.netx_import import bias_input, import_netx
    root, GTS = lava_dl.NETX_ROOT, lava_dl.GTS
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
