"""Runs of one lowered network (``api.lowered``): validated and lowered once, the reference's
per-network data kept between runs, results equal to runs of the graph; and a bias input read
in place (float64, no time-major copy) giving the spikes of its float32 copy."""
import numpy as np
import pytest

from snnc import api
from snnc.backends import ckernels, host_io
from snnc.backends import reference_batched as rb
from snnc.compiler.ir import Dense, Graph, Input, Output
from snnc.compiler.quantize import quantize
from snnc.evaluate import evaluate

from small_nets import chain_with_delays, lif


def _same(a, b):
    assert np.array_equal(a.output, b.output)
    assert a.counts.keys() == b.counts.keys() and all(np.array_equal(a.counts[k], b.counts[k]) for k in a.counts)


def test_a_lowered_network_runs_as_its_graph():
    g, x = chain_with_delays(N=4)
    net = api.lowered(g)
    assert api.lowered(net) is net
    first = api.run(net, x, backend="reference", plan="batched")
    kept = dict(net.cache)
    assert any(k[0] == "reference_batched.population" for k in kept if isinstance(k, tuple))
    again = api.run(net, x, backend="reference", plan="batched")
    assert all(net.cache[k] is v for k, v in kept.items())              # made once, reused
    _same(first, again)
    _same(first, api.run(g, x, backend="reference", plan="batched"))      # the graph, lowered anew
    _same(first, api.run(g, x, backend="reference", plan="step"))
    _same(first, api.run(net, x, backend="torch"))
    assert first.output.sum() > 0
    labels = np.arange(len(x)) % 3
    by_net, by_graph = (evaluate(m, x, labels, engine="reference") for m in (net, g))
    assert by_net.predictions == by_graph.predictions and by_net.spikes == by_graph.spikes


def _driven(seed=4):
    """A bias input (the first input) driving 30 neurons -> Dense -> 20 neurons -> Output."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("drive", Input((30,), kind="bias"))
    g.add("p", lif((30,), current_decay=1.0, threshold=1.0), "drive")
    g.add("w", Dense(rng.normal(0.4, 1.0, (20, 30))), "p")
    g.add("q", lif((20,)), "w")
    g.add("out", Output((20,)), "q")
    x = np.round(rng.normal(0.3, 0.4, (3, 30, 50)) * 64) / 64          # multiples of 1/64: exact in float32
    return quantize(g), x


def test_bias_input_read_in_place(monkeypatch):
    g, x = _driven()
    net = api.lowered(g)
    assert host_io.drives_only(net, "drive") and ckernels.exact_f32(x)
    given, _ = host_io.prepare(net, x, in_place=True)
    assert given is x                                                    # no copy for the reference
    copied, _ = host_io.prepare(net, x)
    assert copied.dtype == np.float32 and np.array_equal(copied, x)
    seen = []
    orig = ckernels._drive

    def drive(d):
        seen.append(None if d is None else (d.dtype, d.flags.c_contiguous))
        return orig(d)
    monkeypatch.setattr(ckernels, "_drive", drive)
    in_place = api.run(net, x, backend="reference", plan="batched")
    assert (np.dtype(np.float64), False) in seen                         # the strided float64 view
    _same(in_place, api.run(net, x.astype(np.float32), backend="reference", plan="batched"))
    _same(in_place, api.run(net, x, backend="reference", plan="step"))
    _same(in_place, api.run(net, x, backend="torch"))
    monkeypatch.setattr(ckernels, "_LIB", None)                          # numpy's update
    _same(in_place, api.run(net, x, backend="reference", plan="batched"))
    assert 0 < in_place.counts["p"].sum() and 0 < in_place.output.sum()


def test_values_float32_rounds_are_copied_as_every_engine_reads_them():
    g, x = _driven()
    net = api.lowered(g)
    y = x.copy()
    y[1, 7, 3] += 2.0 ** -40                                             # float32 rounds it back
    assert not ckernels.exact_f32(y)
    got, _ = host_io.prepare(net, y, in_place=True)
    assert got is not y and got.dtype == np.float32
    _same(api.run(net, y, backend="reference", plan="batched"), api.run(net, x, backend="reference", plan="batched"))
    assert not host_io.reads_in_place(net, "drive", np.asfortranarray(x))   # not C-contiguous: copied


@pytest.mark.parametrize("rows,cols", [(100, 2560), (3, 70000), (50, 1), (0, 5)])
def test_signed_row_sums_in_blocks(rows, cols):
    from snnc.backends.plan import signed_row_sums
    w = np.random.default_rng(rows).integers(-128, 128, (rows, cols))
    pos, neg = signed_row_sums(w)
    assert np.array_equal(pos, np.where(w > 0, w, 0).sum(axis=1)) and np.array_equal(neg, np.where(w < 0, -w, 0).sum(axis=1))
    assert pos.dtype == neg.dtype == np.float64


def test_stepper_takes_a_strided_drive():
    """``CubaStepper``'s drive bound and kernel take the time-last view as it is: the counts and
    final u, v of its float32 copy."""
    g, x = _driven()
    net = api.lowered(g)
    view = np.moveaxis(x, -1, 0)
    run = rb.BatchedRun(g, {"drive": view}, x.shape[-1], len(x), net=net)
    run.run()
    want = rb.BatchedRun(g, {"drive": np.ascontiguousarray(view, np.float32)}, x.shape[-1], len(x), net=net)
    want.run()
    assert all(np.array_equal(run.counts[k], want.counts[k]) for k in want.counts)
    assert all(np.array_equal(run.state[p][v], want.state[p][v]) for p in want.state for v in ("u", "v"))
