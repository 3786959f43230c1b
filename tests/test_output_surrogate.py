"""Dead output neurons (docs/methods.md, "Silent output neurons"): with STBP's rectangular surrogate
(a = 1) a neuron whose membrane stays more than a/2 below threshold gets exactly no gradient, so
it cannot recover; a wider window or STBP's sigmoid surrogate (h3) on the output layer gives it
one. The forward pass (and so the deployed spikes) is the same for every surrogate."""
import importlib.util
import os
import sys

import pytest
import torch

import snnc.nn as sn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _silent_layer_grad(surrogate):
    torch.manual_seed(0)
    lin = sn.Linear(6, 3, bias=True)
    with torch.no_grad():
        lin.bias.fill_(-1.0)              # v - V_th < (-1 + 6 * 0.05) / 0.8 - 0.5 < -0.5: never in h1's window
        lin.weight.uniform_(-0.05, 0.05)
    lif = sn.stbp(decay=0.2, threshold=0.5, quantize=True, surrogate=surrogate)
    x = (torch.rand(4, 6, 8) < 0.5).float()
    s = lif(lin(x))
    ((s.mean(-1) - 1) ** 2).mean().backward()      # the loss wants the silent neurons to fire
    return s.detach(), lin.weight.grad.abs().sum(1)


def test_silent_output_neuron_gradient():
    s_rect, g_rect = _silent_layer_grad(sn.Rectangular(1.0))
    assert s_rect.sum() == 0 and torch.all(g_rect == 0)          # dead: no gradient at all
    for sur in (sn.Rectangular(4.0), sn.SigmoidDerivative(0.25)):
        s, g = _silent_layer_grad(sur)
        assert torch.equal(s, s_rect)                            # same forward
        assert torch.all(g > 0), sur                             # every silent neuron gets a gradient


def _load(method):
    path = os.path.join(ROOT, "examples", method, "run.py")
    sys.path.insert(0, os.path.join(ROOT, "examples", "common"))
    try:
        spec = importlib.util.spec_from_file_location(f"_run_{method}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod


@pytest.mark.parametrize("method", ["stbp", "st_rsbp"])
def test_example_output_surrogate_option(method):
    mod = _load(method)
    default = dict(mod.OPT)
    try:
        net = mod.build(True)
        assert isinstance(net[-1].surrogate, sn.Rectangular) == (default["out_surrogate"] == "rectangular")
        for kind, cls in (("rectangular", sn.Rectangular), ("sigmoid", sn.SigmoidDerivative)):
            mod.OPT.update(out_surrogate=kind, out_a=0.5)
            net = mod.build(True)
            assert isinstance(net[-1].surrogate, cls)
            assert all(not isinstance(m.surrogate, sn.SigmoidDerivative) or m is net[-1]
                       for m in net if isinstance(m, sn.LIF))         # output layer only
        mod.OPT.update(out_surrogate="gaussian")
        with pytest.raises(ValueError):
            mod.build(True)
    finally:
        mod.OPT.clear()
        mod.OPT.update(default)
