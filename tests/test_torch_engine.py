"""``--backend torch`` (snnc.backends.torch_engine) against the reference step plan and the
executable spec: identical outputs and spike counts on the CPU, and on CUDA when a GPU is present."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from snnc import api  # noqa: E402
from snnc.backends.reference import run_reference  # noqa: E402
from snnc.backends.reference_spec import run_reference_spec  # noqa: E402
from snnc.backends.torch_engine import run_torch  # noqa: E402
from snnc.compiler.ir import Delay, Dense, Graph, Input, Output  # noqa: E402
from snnc.compiler.quantize import quantize  # noqa: E402
from snnc.errors import SnncError  # noqa: E402

from small_nets import branchy, chain_with_delays, conv_net, lif, spikes  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="no CUDA device"))]


def _same(graph, x, device):
    a = run_torch(graph, x, device=device)
    b = run_reference(graph, x, "fixed", plan="step")
    c = run_reference_spec(graph, x, "fixed")
    assert b.plan == "step" and c.plan == "spec"        # three independent paths (no silent fallback)
    for o in graph.outputs:
        assert np.array_equal(a.outputs[o], b.outputs[o]), o
        assert np.array_equal(a.outputs[o], c.outputs[o]), o
    assert a.counts.keys() == b.counts.keys()
    for k in b.counts:
        assert np.array_equal(a.counts[k], b.counts[k]), k
    return a


@pytest.mark.parametrize("device", DEVICES)
def test_chains_convs_and_branches(device):
    for g, x in (chain_with_delays(), chain_with_delays(per_neuron=False, N=1), conv_net(), conv_net(N=1),
                 branchy()):
        assert _same(g, x, device).output.sum() > 0


@pytest.mark.parametrize("device", DEVICES)
def test_wrap_saturation_readout_and_resets(device):
    from snnc.compiler.fixed import FixedSynapse
    from snnc.compiler.ir import CubaLI
    g = Graph()
    g.add("in", Input((64,)))
    g.add("fc", Dense(np.full((4, 64), 3.9)), "in")
    g.add("l", lif((4,), current_decay=0.5, voltage_decay=0.25, threshold=100000.0), "fc")
    g.add("fr", Dense(np.eye(4)), "l")
    g.add("ro", CubaLI((4,), current_decay=0.1, voltage_decay=0.2), "fr")
    g.add("out", Output((4,)), "ro")
    q = quantize(g)
    q.fixed["fc"] = FixedSynapse(q.fixed["fc"].weight, weight_exp=3)      # u wraps, v saturates
    _same(q, np.ones((2, 64, 40), np.float32), device)
    g2, x2 = chain_with_delays()
    import dataclasses
    g2.nodes["lif1"] = dataclasses.replace(g2.nodes["lif1"], reset_interval=7, reset_offset=2)
    _same(g2, x2, device)


def test_recurrent_graph_and_api_registration():
    """A cycle runs as the shared plan's step loop, bit-identical with the reference; sigma-delta
    graphs are refused with a pointer to the reference."""
    rng = np.random.default_rng(6)
    g = Graph()
    g.add("in", Input((10,)))
    g.add("fin", Dense(rng.normal(0.4, 1.0, (8, 10))), "in")
    g.add("l", lif((8,)), "fin", "rec")
    g.add("rd", Delay(np.array(1)), "l")
    g.add("rec", Dense(rng.normal(0.0, 0.5, (8, 8))), "rd")
    g.add("out", Output((8,)), "l")
    g.nodes["rd"] = Delay(rng.integers(1, 4, 8))             # per-neuron delays in the loop
    g = quantize(g)
    for x in (spikes((1, 10, 30), rate=0.5), spikes((3, 10, 30), rate=0.5, seed=2)):
        a = _same(g, x, "cpu")
        assert a.counts["l"].sum() > 0
    from snnc.compiler.ir import Delta, SigmaDelta
    h = Graph()
    h.add("in", Input((3,)))
    h.add("enc", Delta((3,), threshold=0.1), "in")
    h.add("w", Dense(np.ones((2, 3))), "enc")
    h.add("sd", SigmaDelta((2,), threshold=0.1), "w")
    h.add("out", Output((2,)), "sd")
    with pytest.raises(SnncError, match="sigma-delta"):
        run_torch(quantize(h), np.zeros((1, 3, 4)))
    assert "torch" in api.ENGINES
    h, x = chain_with_delays(N=2)
    r = api.run(h, x[0], backend="torch")
    assert np.array_equal(r.output, run_reference(h, x[:1]).output[0])


@pytest.mark.parametrize("device", DEVICES)
def test_pilotnetlif(device, lava_dl):
    from snnc.frontends.netx_import import bias_input, import_netx
    GTS = lava_dl.GTS
    g = quantize(import_netx(os.path.join(GTS, "pilotnet_lif", "network.net"), reset_interval=17))
    x = bias_input(np.load(os.path.join(GTS, "pilotnet_lif", "image.npy")), 24)[None]
    a = run_torch(g, x, device=device)
    b = run_reference(g, x, "fixed", plan="step")
    assert b.plan == "step"
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in b.counts)
    assert a.counts["conv1"].sum() > 0
