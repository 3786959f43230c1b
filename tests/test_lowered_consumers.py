"""The mapper and the .net exporter read the lowered network (snnc/compiler/lower.py): what they
take from it (sources, delays, recurrent connections) checked against values written by hand
for small graphs, and what a netx chain cannot hold refused by name."""
import h5py
import numpy as np
import pytest

from snnc.backends.netx_export import export_netx
from snnc.compiler import ir
from snnc.compiler.mapping import map_graph
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError


def _lif(shape):
    return ir.CubaLIF(shape, 0.25, 0.25, 1.0)


def _chain(rec_delay=1, second_rec=False):
    """in -> Delay 1 -> w1 -> p1 (8) -> Delay 3 -> w2 -> p2 (3) [-> Delay k -> r -> p2] -> Delay 2 -> out."""
    rng = np.random.default_rng(0)
    g = ir.Graph()
    g.add("in", ir.Input((4,)))
    g.add("d0", ir.Delay(np.array(1)), "in")
    g.add("w1", ir.Dense(rng.normal(size=(8, 4)) / 4), "d0")
    g.add("p1", _lif((8,)), "w1")
    g.add("d1", ir.Delay(np.array(3)), "p1")
    g.add("w2", ir.Dense(rng.normal(size=(3, 8)) / 4), "d1")
    g.add("p2", _lif((3,)), "w2")
    for k in (("r",) + (("r2",) if second_rec else ())):
        g.add(f"{k}.d", ir.Delay(np.array(rec_delay)), "p2")
        g.add(k, ir.Dense(rng.normal(size=(3, 3)) / 4), f"{k}.d")
        g.edges.append((k, "p2"))
    g.add("d2", ir.Delay(np.array(2)), "p2")
    g.add("out", ir.Output((3,)), "d2")
    return g


def test_netx_layer_delays_come_from_the_connections(tmp_path):
    """netx: one step of every synapse is its latency; the rest is the previous layer's delay
    (p1: 3 - 1 = 2); the output's Delay 2 plus the input's lag 1, less netx's one step, goes to
    the last layer (2); the recurrent Delay(1) is netx's dense_rec."""
    g = quantize(_chain())
    export_netx(g, str(tmp_path / "c.net"))
    with h5py.File(tmp_path / "c.net") as h:
        types = [h[f"layer/{i}/type"][0].decode() for i in range(len(h["layer"]))]
        assert types == ["input", "dense", "dense_rec"]
        assert np.all(h["layer/1/delay"][()] == 2) and h["layer/1/delay"].shape == (8,)
        assert np.all(h["layer/2/delay"][()] == 2) and h["layer/2/delay"].shape == (3,)
        w = np.asarray(g.fixed["r"].weight, np.int64) << g.fixed["r"].weight_exp
        assert np.array_equal(h["layer/2/weight_rec"][()], w)


def test_netx_refuses_two_recurrent_connections_by_name(tmp_path):
    """Before the lowered network, the exporter wrote only the last of two recurrent Dense
    synapses (silently dropping the other)."""
    with pytest.raises(SnncError, match=r"node 'p2': has 2 recurrent connections \['r', 'r2'\]"):
        export_netx(quantize(_chain(second_rec=True)), str(tmp_path / "r.net"))
    assert not (tmp_path / "r.net").exists()


def test_netx_refuses_a_recurrent_delay_other_than_one(tmp_path):
    with pytest.raises(SnncError, match=r"node 'r.d': a recurrent connection with a delay other than one step"):
        export_netx(quantize(_chain(rec_delay=2)), str(tmp_path / "r.net"))


def test_mapper_inputs_are_the_lowered_connections():
    """Each layer's inputs: source population, kind, fan-in and the synaptic delay on the core
    (IR delay - 1, the synapse's own step)."""
    m = map_graph(quantize(_chain(rec_delay=2)))
    got = {p: [(i.synapse, i.kind, i.source, i.in_features, i.max_delay) for i in L.inputs]
           for p, L in m.layers.items()}
    assert got == {"p1": [("w1", "dense", "in", 4, 0)],
                   "p2": [("w2", "dense", "p1", 8, 2), ("r", "dense", "p2", 3, 1)]}
    assert [L.model for L in m.layers.values()] == ["CubaLIF", "CubaLIF"]
