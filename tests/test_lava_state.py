"""u and v read back from Lava's Vars equal the reference simulator's, bit for bit in fixed
point: the neuron state, not only the spikes, is what Loihi 2's arithmetic gives. Covers Lava's
own fixed LIF (with per-population start offsets) and snnc's refractory LIF process model."""
import numpy as np
import pytest
import torch

import snnc
import snnc.frontends.torch_export  # noqa: F401
import snnc.nn as sn
from snnc.backends.lava_backend import run_lava
from snnc.backends.reference_spec import run_reference_spec


def _tssl_net():
    torch.manual_seed(0)
    n1, n2 = sn.tssl(5.0, 3.0, 1.0, quantize=True), sn.tssl(5.0, 3.0, 1.0, quantize=True)
    net = torch.nn.Sequential(sn.Linear(12, 20, bias=False, weight_quant=n1.weight_quant()), n1,
                              sn.Linear(20, 6, bias=False, weight_quant=n2.weight_quant()), n2)
    with torch.no_grad():
        net[0].weight.mul_(8.0)
        net[2].weight.mul_(6.0)
    return net


def _hm2_net():
    torch.manual_seed(0)
    w, mask = sn.reservoir((3, 3, 4), init_w=4.0, seed=0)
    n1 = sn.hm2(64.0, 8.0, threshold=5.0, quantize=True, recurrent=w, recurrent_mask=mask)
    n2 = sn.hm2(64.0, 8.0, threshold=5.0, quantize=True, recurrent="lateral", size=6)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(12, 36, bias=False, weight_quant=n1.weight_quant()), n1,
                              sn.Delay(1), sn.Linear(36, 6, bias=False, weight_quant=n2.weight_quant()), n2)
    with torch.no_grad():
        net[1].weight.uniform_(-10, 10)
        net[4].weight.uniform_(-3, 3)
    return net


@pytest.mark.parametrize("name,build", [("tssl (Lava LIF, offsets)", _tssl_net),
                                        ("hm2 (snnc refractory LIF, recurrence)", _hm2_net)])
def test_lava_state_equals_reference(name, build, tmp_path):
    net = build()
    x = (torch.rand(3, 12, 20, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    path = str(tmp_path / "m.onnx")
    snnc.export(net, x, path)
    g = snnc.compile(path)
    lava = run_lava(g, x.numpy(), mode="fixed", record_state=True, timeout=300)
    assert set(lava.state) == {k for k, v in g.nodes.items() if type(v).__name__ == "CubaLIF"}
    L = max(lava.state_steps.values())
    xp = np.concatenate([x.numpy(), np.zeros(x.shape[:-1] + (L - x.shape[-1],), np.float32)], -1)
    ref = run_reference_spec(g, xp, mode="fixed", state_steps=lava.state_steps)
    for pop in lava.state:
        for k in ("u", "v"):
            assert np.array_equal(lava.state[pop][k], ref.state[pop][k]), (pop, k)
        assert np.any(lava.state[pop]["u"] != 0) and np.any(lava.state[pop]["v"] != 0), pop
    assert lava.counts and all(v.sum() > 0 for v in lava.counts.values())
