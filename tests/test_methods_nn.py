"""snnc.nn (STBP, TSSL-BP, HM2-BP, ST-RSBP neurons): export, compile and parity.

For every method, a network built with quantize=True and 8-bit weight hooks (what
quantization-aware training produces) must give identical spikes in PyTorch, onnxruntime, the
reference simulator (fixed point) and Lava fixed_pt. Float-trained networks run too; their
difference to Lava fixed point is measured (printed), not asserted.
"""
import numpy as np
import pytest
import torch

import snnc
import snnc.nn as sn
from snnc.errors import SnncError
from snnc.backends.onnx_runtime import run_onnxruntime

from nn_nets import NETS, hm2_net, stbp_net


def _export(tmp_path, net, x):
    path = str(tmp_path / "m.onnx")
    with torch.no_grad():
        y = net(x).numpy()
    snnc.export(net, x, path)
    return path, y


@pytest.mark.parametrize("method", list(NETS))
def test_qat_exact_reference(method, tmp_path):
    torch.manual_seed(0)
    net, x = NETS[method](True)
    path, y = _export(tmp_path, net, x)
    assert y.sum() > 0
    assert np.array_equal(run_onnxruntime(path, x.numpy()).output, y)
    g = snnc.compile(path)
    lossy = [r for r in g.metadata["quantization"] if r["rounded"] or r["clipped"]]
    assert not lossy, lossy
    r = snnc.run(g, x.numpy(), backend="reference")
    assert np.array_equal(r.output, y)
    counts = {k: int(v.sum()) for k, v in r.counts.items()}
    torch_counts = {n.replace(".", "_") + "_neuron": int(m.counts.sum())
                    for n, m in net.named_modules() if isinstance(m, sn.LIF)}
    assert counts == torch_counts


@pytest.mark.parametrize("method", list(NETS))
def test_qat_exact_lava_fixed(method, tmp_path):
    torch.manual_seed(0)
    net, x = NETS[method](True)
    path, y = _export(tmp_path, net, x)
    r = snnc.run(snnc.compile(path), x.numpy(), backend="lava-fixed")
    assert np.array_equal(r.output, y)


@pytest.mark.parametrize("method", list(NETS))
def test_float_model(method, tmp_path, capsys):
    """Real-valued dynamics: exact in onnxruntime and the float reference; measured on Lava
    fixed point (the compiler's chosen scale rounds weights and decays)."""
    torch.manual_seed(0)
    net, x = NETS[method](False)
    path, y = _export(tmp_path, net, x)
    assert np.array_equal(run_onnxruntime(path, x.numpy()).output, y)
    g = snnc.compile(path)
    assert np.array_equal(snnc.run(g, x.numpy(), backend="reference-float").output, y)
    fixed = snnc.run(g, x.numpy(), backend="reference").output
    with capsys.disabled():
        print(f"\n{method} float model on fixed point: output spike agreement "
              f"{100 * np.mean(fixed == y):.2f} %, spikes {int(fixed.sum())} vs {int(y.sum())}")


def test_refractory_lava_float_equals_reference_float(tmp_path):
    net, x = hm2_net(False)
    path, y = _export(tmp_path, net, x)
    g = snnc.compile(path)
    r = snnc.run(g, x.numpy(), backend="lava-float")
    assert np.array_equal(r.output, snnc.run(g, x.numpy(), backend="reference-float").output)


def test_refractory_matters():
    """Without the refractory period the same weights give other spikes (the mapping needs it)."""
    torch.manual_seed(0)
    net, x = hm2_net(True)
    with torch.no_grad():
        a = net(x)
        for m in net.modules():
            if isinstance(m, sn.LIF):
                m.refractory = 0
        b = net(x)
    assert not torch.equal(a, b)


def test_fold_exact():
    """Average pooling folded into the next conv/dense gives the unfolded float result."""
    from snnc.compiler.fold import fold_pooling
    from snnc.backends.reference import run_reference
    from snnc.frontends.onnx_import import import_onnx
    import tempfile
    import os
    torch.manual_seed(0)
    net, x = stbp_net(False)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        snnc.export(net, x, path)
        g = import_onnx(path)
    f = fold_pooling(g)
    assert len(f.metadata["folds"]) == 2
    assert not any(type(n).__name__ == "SumPool2d" for n in f.nodes.values())
    with torch.no_grad():
        y = net(x).numpy()
    assert np.array_equal(run_reference(f, x.numpy(), "float").output, y)


def test_export_errors(tmp_path):
    n = sn.tssl()
    net = torch.nn.Sequential(sn.Linear(4, 3, bias=True), n)
    with pytest.raises(SnncError, match="current filter"):
        snnc.export(net, torch.zeros(1, 4, 5), str(tmp_path / "a.onnx"))
    net = torch.nn.Sequential(sn.Linear(4, 3), sn.LIF(spike_compare=">="))
    with pytest.raises(SnncError, match="spike_compare"):
        snnc.export(net, torch.zeros(1, 4, 5), str(tmp_path / "b.onnx"))
    # reset="subtract" exports (the general CubaLIF body): tests/test_neurons.py


def test_surrogates_and_readouts():
    x = torch.linspace(-1, 1, 9, requires_grad=True)
    for s in (sn.Rectangular(1.0), sn.SigmoidDerivative(0.25), sn.Exponential(0.25, 1.0)):
        from snnc.nn.surrogates import spike
        y = spike(x, s)
        y.sum().backward()
        assert torch.equal(y, (x > 0).float()) and x.grad.abs().sum() > 0
        x.grad = None
    from snnc.nn import readouts
    s = torch.zeros(1, 2, 5)
    s[0, 0, 0] = 1
    # sum_t a[t] with a = (1-1/3) a + s/3: a spike at t=0 contributes 1 - (2/3)^5
    assert abs(float(readouts.summed_trace(s, 3.0)[0, 0]) - (1 - (2 / 3) ** 5)) < 1e-6


def test_lava_fixed_samples_independent(tmp_path):
    """Each sample starts from a zero state on Lava, also when the previous sample's input ended
    with spikes and this one's ends silent (regression: a skipped synapse-buffer reset)."""
    torch.manual_seed(0)
    net, x = hm2_net(True)
    x = x[:3].clone()
    x[0, :, -1] = 1
    x[1, :, -1] = 0
    x[2, :, -3:] = 0
    path, y = _export(tmp_path, net, x)
    r = snnc.run(snnc.compile(path), x.numpy(), backend="lava-fixed")
    assert np.array_equal(r.output, y)
    assert all(np.array_equal(r.counts[k], snnc.run(snnc.compile(path), x.numpy(), backend="reference").counts[k])
               for k in r.counts)


def test_tsslbp_gradient_hand_case():
    """TSSL-BP's backward on one neuron, T = 4, tau_m 5, tau_s 3, spikes at t = 1 and 3."""
    from snnc.nn.surrogates import TSSLBP, tsslbp_spikes
    v = torch.tensor([[0.5, 1.5, 0.4, 1.2]], dtype=torch.float64)      # membrane before reset
    du = torch.tensor([[0.5, 1.0, 0.4, 0.8]], dtype=torch.float64)     # rise v[t] - v[t-1]
    s = torch.tensor([[0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    f = np.exp(2.5)
    fallback = f / ((1 + f) ** 2 * 0.2)                                 # sigmoid derivative at v = 0.5, a = 0.2

    def grad(g):
        cur = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
        y = tsslbp_spikes(cur, v, du, s, 1.0, 5.0, 3.0, TSSLBP())
        assert torch.equal(y, s)
        (y * torch.tensor([g], dtype=torch.float64)).sum().backward()
        return cur.grad[0].numpy()
    # inter-neuron only: error on the spike at t=1 -> -clamp(-1/du) = 1/du[1] at t=1, nothing else
    assert np.allclose(grad([0, 1, 0, 0]), [0, 1.0, 0, 0])
    # error on the last spike: inter at t=3 (1/0.8), intra through the leak at t=2 (theta (1-1/5)),
    # intra through the reset at t=1 (theta v[1] (1/5) / du[1]); t=0 is silent (a[0] = 0 < 1/12)
    assert np.allclose(grad([0, 0, 0, 1]), [0, 0.3, 1.0, 1.25])
    # silent neuron: the sigmoid-derivative fallback times the error
    assert np.allclose(grad([1, 0, 0, 0]), [fallback, 0, 0, 0])
    # the clamp: a tiny rise gives at most 8
    du2 = du.clone()
    du2[0, 1] = 1e-6
    cur = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    tsslbp_spikes(cur, v, du2, s, 1.0, 5.0, 3.0, TSSLBP())[0, 1].backward()
    assert float(cur.grad[0, 1]) == 8.0


@pytest.mark.parametrize("q", [False, True])
def test_tsslbp_in_lif(q):
    """The tssl preset trains with TSSLBP; its forward equals the plain forward; gradients are
    finite, shaped like the input, and reach silent neurons (fallback)."""
    assert isinstance(sn.tssl().surrogate, sn.TSSLBP)
    torch.manual_seed(0)
    x = torch.randn(3, 6, 10) * 2
    x[:, 0] = -1.0                                       # neuron 0 never fires
    x.requires_grad_(True)
    n = sn.tssl(quantize=q)
    y = n(x)
    ref = sn.tssl(quantize=q, surrogate=sn.Rectangular(1.0))(x.detach())
    assert torch.equal(y, ref) and y[:, 0].sum() == 0 and y.sum() > 0
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    assert x.grad[:, 0].abs().sum() > 0                  # silent neuron: sigmoid fallback
    with pytest.raises(ValueError, match="TSSLBP"):
        sn.LIF(recurrent="lateral", size=3, surrogate=sn.TSSLBP())(torch.zeros(1, 3, 4))
