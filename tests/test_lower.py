"""The lowered network (snnc/compiler/lower.py): what it holds for the structures the IR allows,
checked against the graph written by hand here (not against another walker of snnc)."""
import numpy as np
import pytest

from snnc.compiler import ir
from snnc.compiler.lower import lower
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError


def lif(shape, **kw):
    return ir.CubaLIF(shape, 0.5, 0.25, 1.0, **kw)


def conv_recurrent_graph():
    """in (2,6,6) -> conv -> p1 (3,4,4) -> Delay 2 -> Flatten -> dense -> p2 (5,) ; p2 -> Delay 1 -> rec -> p2;
    b (5,) bias input -> p2; p2 -> out, p1 -> Delay 3 -> out1."""
    rng = np.random.default_rng(0)
    g = ir.Graph()
    g.add("in", ir.Input((2, 6, 6)))
    g.add("b", ir.Input((5,), kind="bias"))
    g.add("conv", ir.Conv2d(rng.normal(size=(3, 2, 3, 3))), "in")
    g.add("p1", lif((3, 4, 4)), "conv")
    g.add("d1", ir.Delay(np.array(2)), "p1")
    g.add("flat", ir.Flatten(), "d1")
    g.add("dense", ir.Dense(rng.normal(size=(5, 48))), "flat")
    g.add("p2", lif((5,)), "dense", "b")
    g.add("d2", ir.Delay(np.arange(5) % 2 + 1), "p2")
    g.add("rec", ir.Dense(rng.normal(size=(5, 5))), "d2")
    g.edges.append(("rec", "p2"))
    g.add("out", ir.Output((5,)), "p2")
    g.add("d3", ir.Delay(np.array(3)), "p1")
    g.add("out1", ir.Output((3, 4, 4)), "d3")
    return g


def test_populations_connections_and_depth():
    net = lower(conv_recurrent_graph())
    assert {n: p.kind for n, p in net.populations.items()} == {"in": "input", "b": "input", "p1": "lif", "p2": "lif"}
    assert net.populations["p2"].bias_inputs == ("b",)
    by = {c.name: c for c in net.connections}
    assert set(by) == {"conv", "dense", "rec"}
    conv, dense, rec = by["conv"], by["dense"], by["rec"]
    assert [s.pop for s in conv.sources] == ["in"] and conv.dst == "p1"
    assert conv.in_shape == (2, 6, 6) and conv.out_shape == (3, 4, 4) and conv.min_delay == 0
    (s,) = dense.sources
    assert s.pop == "p1" and s.flatten and s.path == ("d1", "flat")
    assert s.delay.shape == (3, 4, 4) and np.all(s.delay == 2)
    assert dense.in_shape == (48,) and dense.out_shape == (5,)
    (r,) = rec.sources
    assert r.pop == "p2" and list(r.delay) == [1, 2, 1, 2, 1] and rec.min_delay == 1
    assert net.depth == {"in": 0, "b": 0, "p1": 1, "p2": 0}    # dense and rec are delayed
    assert [p.name for p in net.neurons] == ["p2", "p1"]
    assert [c.name for c in net.into("p2")] == ["dense", "rec"]
    o0, o1 = net.outputs
    assert o0.pops == ["p2"] and o1.pops == ["p1"]
    kinds = [(n, k) for n, k, _, _ in o1.program]
    assert kinds == [("p1", "pop"), ("d3", "delay"), ("out1", "output")]
    assert "rec" in str(net) and "p2" in str(net)


def test_fixed_view_and_state_scale_after_quantize():
    g = conv_recurrent_graph()
    assert not lower(g).fixed
    q = quantize(g)
    net = lower(q)
    assert net.fixed
    for c in net.connections:
        assert c.fixed is q.fixed[c.name]
    for n in ("p1", "p2"):
        assert net.populations[n].fixed is q.fixed[n]
        assert net.populations[n].state_scale == int(q.fixed[n].state_scale) > 0


def test_sigma_delta_chain_is_populations_and_a_direct_link():
    rng = np.random.default_rng(1)
    g = ir.Graph()
    g.add("in", ir.Input((4,), kind="graded"))
    g.add("enc", ir.Delta((4,), threshold=0.1), "in")
    g.add("d", ir.Delay(np.array(1)), "enc")
    g.add("w", ir.Dense(rng.normal(size=(3, 4))), "d")
    g.add("sd", ir.SigmaDelta((3,), threshold=0.1), "w")
    g.add("out", ir.Output((3,)), "sd")
    net = lower(g)
    assert net.populations["enc"].kind == "delta" and net.populations["sd"].kind == "sigma_delta"
    link = [c for c in net.connections if c.synapse is None]
    assert len(link) == 1 and link[0].name == "in->enc" and link[0].sources[0].pop == "in"
    (w,) = [c for c in net.connections if c.synapse is not None]
    assert w.sources[0].pop == "enc" and int(w.sources[0].delay.max()) == 1
    assert net.depth["enc"] == 1 and net.depth["sd"] == 0


def test_synapse_fed_by_a_synapse_is_refused_by_name():
    rng = np.random.default_rng(2)
    g = ir.Graph()
    g.add("in", ir.Input((4,)))
    g.add("a", ir.Dense(rng.normal(size=(4, 4))), "in")
    g.add("b", ir.Dense(rng.normal(size=(3, 4))), "a")
    g.add("p", lif((3,)), "b")
    g.add("out", ir.Output((3,)), "p")
    with pytest.raises(SnncError, match="node 'a' \\(Dense\\): feeds 'b' directly"):
        lower(g)


def test_cycle_without_delay_is_refused():
    g = ir.Graph()
    g.add("in", ir.Input((2,)))
    g.add("w", ir.Dense(np.eye(2)), "in")
    g.add("p", lif((2,)), "w")
    g.add("r", ir.Dense(np.eye(2)), "p")
    g.edges.append(("r", "p"))
    g.add("out", ir.Output((2,)), "p")
    with pytest.raises(SnncError, match="cycle"):
        lower(g)


def test_average_into_a_population_is_refused_not_dropped():
    """An Average is a host read-out: feeding a population with it is refused by name (the
    lowering once dropped that input silently, and reference-float ran the rest)."""
    g = ir.Graph()
    g.add("in", ir.Input((4,)))
    g.add("fc", ir.Dense(np.ones((4, 4))), "in")
    g.add("a", lif((4,)), "fc")
    g.add("avg", ir.Average(2), "a")
    g.add("b", lif((2,)), "avg")
    g.add("out", ir.Output((2,)), "b")
    g.lint()
    with pytest.raises(SnncError, match="node 'avg' \\(Average\\): feeds population 'b'.*feeds only Outputs"):
        lower(g)


def test_readers_and_connection_queries():
    """Network.readers (the Outputs reading a population), of_synapse, source_pops, last_hop and
    slot (the place among the destination's inputs), against the graph written here."""
    g = conv_recurrent_graph()
    net = lower(g)
    assert net.readers("p2") == ["out"] and net.readers("p1") == ["out1"] and net.readers("in") == []
    (dense,) = net.of_synapse("dense")
    assert dense.dst == "p2" and dense.source_pops == ["p1"] and dense.last_hop == "dense"
    assert g.predecessors("p2") == ["dense", "b", "rec"]          # b: a bias input, no connection
    assert {c.name: c.slot for c in net.into("p2")} == {"dense": 0, "rec": 2}
    (rec,) = net.of_synapse("rec")
    assert rec.last_hop == "rec" and rec.sources[0].path == ("d2",)
