"""ST-RSBP's sparse reservoir (snnc.nn.reservoir + LIF(recurrent_mask)): the connectivity of the
reference code, kept through training, exported with only its synapses, exact on Lava fixed_pt."""
import numpy as np
import torch

import snnc
import snnc.frontends.torch_export  # noqa: F401
import snnc.nn as sn
from snnc.backends.onnx_runtime import run_onnxruntime


def test_reservoir_connectivity():
    w, m = sn.reservoir((5, 5, 8), init_w=1.0, seed=0)
    assert w.shape == m.shape == (200, 200)
    assert torch.all(w[~m] == 0) and torch.all(w[m] != 0) and w.abs().max() <= 1.0
    density = m.float().mean().item()
    assert 0.02 < density < 0.1                       # sparse (reference: a few %)
    # probability falls with grid distance: neighbours are far more often connected
    w2, m2 = sn.reservoir((5, 5, 8), seed=1)
    assert not torch.equal(m, m2)
    idx = np.arange(200)
    coords = np.stack(np.unravel_index(idx, (5, 5, 8)), -1)
    d2 = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    near, far = m.numpy()[d2 == 1].mean(), m.numpy()[d2 >= 9].mean()
    assert near > 10 * max(far, 1e-3)


def _net(quantize):
    w, mask = sn.reservoir((4, 4, 4), init_w=4.0, seed=0)
    n1 = sn.hm2(64.0, 8.0, threshold=5.0, quantize=quantize, recurrent=w, recurrent_mask=mask)
    n2 = sn.hm2(64.0, 8.0, threshold=5.0, quantize=quantize, recurrent="lateral", size=4)
    wq = (lambda n: n.weight_quant()) if quantize else (lambda n: None)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(8, 64, bias=False, weight_quant=wq(n1)), n1,
                              sn.Delay(1), sn.Linear(64, 4, bias=False, weight_quant=wq(n2)), n2)
    with torch.no_grad():
        net[1].weight.uniform_(-10, 10)
        net[4].weight.uniform_(-3, 3)
    return net, mask


def test_mask_survives_training():
    torch.manual_seed(0)
    net, mask = _net(True)
    x = (torch.rand(4, 8, 30) < 0.3).float()
    net(x).sum().backward()
    g = net[2].recurrent_weight.grad
    assert torch.all(g[~mask] == 0) and g[mask].abs().sum() > 0
    with torch.no_grad():
        net[2].recurrent_weight.add_(1.0)             # an update everywhere: masked ones stay absent
    assert torch.all(net[2].effective_recurrent_weight()[~mask] == 0)


def test_sparse_reservoir_exact_on_lava_fixed(tmp_path):
    torch.manual_seed(0)
    net, mask = _net(True)
    x = (torch.rand(3, 8, 30) < 0.3).float()
    with torch.no_grad():
        y = net(x).numpy()
    assert net[2].counts.sum() > 50
    path = str(tmp_path / "r.onnx")
    snnc.export(net, x, path)
    g = snnc.compile(path)
    rec = [n for n, v in g.nodes.items() if type(v).__name__ == "Dense" and v.weight.shape == (64, 64)]
    assert len(rec) == 1 and np.count_nonzero(g.nodes[rec[0]].weight) <= int(mask.sum())
    assert not [r for r in g.metadata["quantization"] if r["rounded"] or r["clipped"]]
    assert np.array_equal(run_onnxruntime(path, x.numpy()).output, y)
    r = snnc.run(g, x.numpy(), backend="lava-fixed", timeout=300)
    assert np.array_equal(r.output, y)
