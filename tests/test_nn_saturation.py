"""snnc.nn's quantization-aware forward models Loihi's 24-bit state: u wraps around and v
saturates at +-(2**23 - 1). Strong synapses (the HM2-BP MNIST row: first-layer mantissas up to
-212, tau_s 8) drive u past 2**23; the compiled network on the reference simulator and on Lava
fixed point then still reproduces every PyTorch spike."""
import numpy as np
import pytest
import torch

import snnc
import snnc.frontends.torch_export  # noqa: F401
import snnc.nn as sn


def _net(sign):
    """Delay -> Dense 256 -> 12 HM2-BP neurons; weights at the 8-bit grid's extreme (sign +1: u
    wraps to negative; -1: v saturates at -(2**23 - 1), then u wraps to positive)."""
    torch.manual_seed(0)
    n = sn.hm2(64.0, 8.0, threshold=5.0, quantize=True)
    lin = sn.Linear(256, 12, bias=False, weight_quant=n.weight_quant())
    with torch.no_grad():
        lo, hi = n.weight_quant().range
        w = torch.rand(12, 256)
        lin.weight.copy_(sign * (0.6 + 0.4 * w) * (hi if sign > 0 else -lo))
        lin.weight[:, :4] = -sign * hi          # a few of the other sign
    return torch.nn.Sequential(sn.Delay(1), lin, n).eval(), n


def _inputs(n=4, T=30, p=0.9):
    return (torch.rand(n, 256, T, generator=torch.Generator().manual_seed(1)) < p).float()


def neuron_lin_weight(net):
    return net[1].weight_quant(net[1].weight).detach()


def _peak_u(net, x):
    """Largest |u| without the wrap (integers, float64), to show the case reaches it."""
    w = neuron_lin_weight(net).double() * net[2].state_scale * net[2].input_scale
    a = torch.einsum("oi,nit->not", w, torch.nn.functional.pad(x.double(), (1, 0))[..., :-1])
    u, peak = torch.zeros(a.shape[:-1], dtype=torch.float64), 0.0
    ku = (4096 - net[2].decay_u_int) / 4096.0
    for t in range(a.shape[-1]):
        u = torch.trunc(u * ku) + torch.round(a[..., t])
        peak = max(peak, float(u.abs().max()))
    return peak


@pytest.mark.parametrize("sign", [1, -1])
def test_u_wrap_v_saturation_reference(sign, tmp_path):
    net, _ = _net(sign)
    x = _inputs()
    assert _peak_u(net, x) > 2 ** 23                # the case does reach the 24-bit limit
    with torch.no_grad():
        y = net(x).numpy()
    path = str(tmp_path / "m.onnx")
    snnc.export(net, x[:1], path)
    r = snnc.run(snnc.compile(path), x.numpy(), backend="reference")
    assert y.sum() > 0
    assert np.array_equal(r.output, y)


@pytest.mark.timeout(300)
def test_u_wrap_v_saturation_lava_fixed(tmp_path):
    net, _ = _net(1)
    x = _inputs(n=2)
    with torch.no_grad():
        y = net(x).numpy()
    path = str(tmp_path / "m.onnx")
    snnc.export(net, x[:1], path)
    r = snnc.run(snnc.compile(path), x.numpy(), backend="lava-fixed", timeout=240)
    assert np.array_equal(r.output, y)
