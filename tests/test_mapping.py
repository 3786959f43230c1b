"""Mapping onto Loihi 2 cores/chips: sizes from one core to several chips, conv synapse memory,
networks that do not fit (binding limit named), determinism, PilotNet LIF vs Intel's 74 cores."""
import json
import math
import os
import sys

import numpy as np
import pytest

from snnc.compiler.estimates import estimate
from snnc.compiler.ir import Conv2d, CubaLIF, Delay, Dense, Graph, Input, Output, SumPool2d
from snnc.compiler.mapping import map_graph, weight_bits
from snnc.compiler.quantize import quantize
from snnc.compiler.resources import CORE_LIMITS, LOIHI2, SOURCES, resource_table
from snnc.errors import SnncError

sys.path.insert(0, os.path.dirname(__file__))

LIF = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25)


def dense_net(sizes, seed=0, delay=0):
    rng = np.random.default_rng(seed)
    g = Graph()
    prev = g.add("in", Input((sizes[0],)))
    if delay:
        prev = g.add("d", Delay(np.array(delay)), prev)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.uniform(-1, 1, size=(b, a)).astype(np.float32)
        g.add(f"w{i}", Dense(w), prev)
        prev = g.add(f"lif{i}", CubaLIF((b,), **LIF), f"w{i}")
    g.add("out", Output((sizes[-1],)), prev)
    return quantize(g)


def conv_net(cin=3, hw=64, chans=(16, 32), seed=0):
    rng = np.random.default_rng(seed)
    g = Graph()
    prev = g.add("in", Input((cin, hw, hw)))
    c, h = cin, hw
    for i, co in enumerate(chans):
        w = rng.uniform(-1, 1, size=(co, c, 3, 3)) * 0.5
        syn = Conv2d(w, padding=(1, 1))
        g.add(f"conv{i}", syn, prev)
        prev = g.add(f"lif{i}", CubaLIF((co, h, h), **LIF), f"conv{i}")
        g.add(f"pool{i}", SumPool2d((2, 2), (2, 2), weight=0.5), prev)
        h //= 2
        prev = g.add(f"plif{i}", CubaLIF((co, h, h), **LIF), f"pool{i}")
        c = co
    g.add("out", Output((c, h, h)), prev)
    return quantize(g)


def within_limits(m):
    for core in m.cores:
        for k, fig in CORE_LIMITS.items():
            assert core.usage[k] <= LOIHI2.v(fig), (core.id, k, core.usage[k])


def test_resource_model_every_number_has_a_source_or_is_named_an_assumption():
    for name, f in LOIHI2.figures():
        assert f.kind in ("published", "lava-source", "observed", "loihi1", "assumption"), name
        assert f.sources or f.kind == "assumption", name
        for s in f.sources:
            assert s in SOURCES, (name, s)
    assert LOIHI2.v("cores_per_chip") == 128 and LOIHI2.v("max_delay") == 62
    assert LOIHI2.v("state_bits") == 24 and LOIHI2.v("decay_bits") == 12 and LOIHI2.v("weight_bits") == 8
    table = resource_table()
    assert "assumption" in table and "davies2018" in table


def test_weight_bits():
    assert weight_bits(np.array([0, 2, -4, 6])) == 3          # /2 -> [-2, 3]: 2 bits + sign
    assert weight_bits(np.array([0, 255])) == 8
    assert weight_bits(np.array([-256, 254])) == 8
    assert weight_bits(np.zeros(3)) == 1
    assert weight_bits(np.array([64, 128])) == 2               # common 2**6 goes to the exponent


def test_tiny_network_packs_onto_one_core():
    m = map_graph(dense_net([100, 10, 5]))                      # 10^3 synapses
    assert len(m.cores) == 1 and m.chips == 1
    assert m.cores[0].usage["groups"] == 2
    d = m.to_dict()
    assert d["cores"] == 1 and {L["name"] for L in d["layers"]} == {"lif0", "lif1"}
    within_limits(m)


def test_medium_dense_splits_on_synapse_memory():
    m = map_graph(dense_net([1000, 1000]))                      # 10^6 synapses, 8-bit weights
    L = m.layers["lif0"]
    # 1000 axons * ceil(n*bits/64) words <= 12000  ->  12 words per axon per core
    n_max = 12 * 64 // L.inputs[0].bits
    assert max(m.tiles[t].neurons for t in L.tiles) <= n_max
    assert len(m.layer_cores("lif0")) == math.ceil(1000 / n_max)
    assert L.binding == "synapse_words"
    within_limits(m)


def test_large_dense_needs_several_chips():
    m = map_graph(dense_net([4000, 3000, 3000]))               # 2.1 * 10^7 synapses
    per_core = {p: max(m.tiles[t].neurons for t in m.layers[p].tiles) for p in m.layers}
    bits = m.layers["lif0"].inputs[0].bits
    assert per_core["lif0"] <= 3 * 64 // bits                   # 4000 * 3 words = 12000 words
    assert m.chips >= 2 and len(m.cores) > 128
    assert m.inter_chip_links > 0
    assert all(m.layers[p].binding == "synapse_words" for p in m.layers)
    within_limits(m)
    with pytest.raises(SnncError, match=r"needs \d+ cores on \d+ chips; single-chip has 1 chip"):
        map_graph(dense_net([4000, 3000, 3000]), system="single-chip")


def test_conv_counts_shared_weights_once_per_core():
    g = conv_net()
    m = map_graph(g)
    for name, cin in (("lif0", 3), ("lif1", 16)):
        L = m.layers[name]
        bits = L.inputs[0].bits
        for t in L.tiles:
            (c0, c1), _, _ = m.tiles[t].box
            assert m.tiles[t].usage["synapse_words"] == cin * 9 * math.ceil((c1 - c0) * bits / 64)
            assert m.tiles[t].usage["axons_in"] <= 4                  # shared conv axons
    # 16x64x64 = 65536 neurons at <= 4096 per core
    assert len(m.layer_cores("lif0")) >= 16
    assert m.layers["lif0"].binding == "neurons"
    within_limits(m)


def test_does_not_fit_dense_fan_in():
    with pytest.raises(SnncError) as e:
        map_graph(dense_net([5000, 10]))
    msg = str(e.value)
    assert "'lif0'" in msg and "input axons per core" in msg and "4096" in msg and "Would fit" in msg


def test_does_not_fit_conv_kernel():
    rng = np.random.default_rng(0)
    g = Graph()
    g.add("in", Input((1400, 5, 5)))
    g.add("c", Conv2d(rng.uniform(-1, 1, (8, 1400, 3, 3)) * 0.01), "in")
    g.add("lif", CubaLIF((8, 3, 3), **LIF), "c")
    g.add("out", Output((8, 3, 3)), "lif")
    with pytest.raises(SnncError) as e:
        map_graph(quantize(g))
    msg = str(e.value)
    assert "'lif'" in msg and "synapse memory" in msg and "Would fit: at most 1333 input channels" in msg


def test_does_not_fit_delay():
    with pytest.raises(SnncError, match="'lif0'.*delay of 80 steps needs a synaptic delay of 79 .* maximum of 62"):
        map_graph(dense_net([10, 10], delay=80))


def test_long_delays_cost_neurons():
    short = map_graph(dense_net([50, 4000]))
    long = map_graph(dense_net([50, 4000], delay=40))
    assert len(long.layer_cores("lif0")) > len(short.layer_cores("lif0"))
    assert long.layers["lif0"].binding == "state_bytes"


def test_deterministic():
    a = json.dumps(map_graph(conv_net()).to_dict(), sort_keys=True)
    b = json.dumps(map_graph(conv_net()).to_dict(), sort_keys=True)
    assert a == b


def test_estimate_hand_computed():
    g = dense_net([4, 3])
    m = map_graph(g)
    counts = {"lif0": np.array([2, 0, 1])}
    e = estimate(m, counts, steps=4, input_counts={"in": np.array([4, 0, 0, 4])})
    # 8 input spikes over 4 steps, each hits the 3 neurons' synapses
    assert e.totals["synops_per_step"] == pytest.approx(8 * 3 / 4)
    assert e.totals["spikes_per_step"] == pytest.approx(3 / 4)
    assert e.totals["energy_per_step_uj"] > 0 and e.totals["step_time_us"] > 0


def test_pilotnet_lif_maps_and_estimate_is_in_range():
    pytest.importorskip("h5py")
    from pilotnet_net import NET, pilotnet_counts, pilotnet_graph
    if not os.path.exists(NET):
        pytest.skip("lava-dl's PilotNet test network is not installed")
    m = map_graph(quantize(pilotnet_graph()))
    cores = {p: len(m.layer_cores(p)) for p in m.layers}
    # see docs/deploy.md: Intel's compiler used 74 cores (13, 25, 13, 3, 3, 2, 12, 1, 1, 1)
    assert len(m.cores) == 41 and m.chips == 1
    assert cores["conv-0"] == 20 and cores["input"] == 10 and cores["fc-0"] == 2
    assert m.layers["conv-0"].binding == "neurons" and m.layers["fc-0"].binding == "synapse_words"
    within_limits(m)
    counts, T = pilotnet_counts()
    e = estimate(m, counts, T)
    per_inference_mj = e.totals["energy_per_step_uj"] * 16 / 1000      # 16 steps per inference
    assert 0.3 < per_inference_mj / 1.09 < 3.0                          # Intel: 1.09 mJ dynamic


def test_pilotnet_lif_through_the_netx_importer_maps_the_same():
    pytest.importorskip("h5py")
    from pilotnet_net import NET
    if not os.path.exists(NET):
        pytest.skip("lava-dl's PilotNet test network is not installed")
    from snnc import api
    m = map_graph(quantize(api.import_model(NET)))
    assert len(m.cores) == 41 and m.chips == 1
