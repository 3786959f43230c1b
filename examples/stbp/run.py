"""STBP (Wu et al. 2018) on scikit-learn digits, deployed to Lava fixed point with snnc.

Neuron: u[t] = decay*u[t-1]*(1 - o[t-1]) + W o_in[t] + b, o = u > V_th (decay 0.2, V_th 0.5),
i.e. CUBA with no current filter, voltage_decay 1 - decay, reset to zero. Rectangular surrogate
(a = 1), loss MSE(firing rate, one-hot), average pooling on spikes (folded by the compiler into
the next synapse), Bernoulli input (x > rand), T = 8. Architecture (the repo's MNIST CNN, scaled
to 8x8): 16C3-AP2-32C3-AP2-10.

    python examples/stbp/run.py [--quick] [--float] [--epochs N]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import method_data  # noqa: E402
import method_run  # noqa: E402
from method_run import torch  # noqa: E402

import snnc.nn as sn  # noqa: E402
from snnc.nn import readouts  # noqa: E402

T = 8


def build(quantize):
    n1, n2, n3 = (sn.stbp(decay=0.2, threshold=0.5, quantize=quantize) for _ in range(3))
    wq = (lambda n, pool=1: n.weight_quant(pool)) if quantize else (lambda n, pool=1: None)
    net = torch.nn.Sequential(
        sn.Conv2d(1, 16, 3, padding=1, weight_quant=wq(n1)), n1, sn.AvgPool2d(2),
        sn.Conv2d(16, 32, 3, padding=1, weight_quant=wq(n2, 4)), n2, sn.AvgPool2d(2),
        sn.Flatten(), sn.Linear(32 * 2 * 2, 10, weight_quant=wq(n3, 4)), n3)
    with torch.no_grad():               # larger initial weights: pooled inputs are <= 1, rates low
        for i, gain in ((0, 2.0), (3, 4.0), (7, 4.0)):
            net[i].weight.mul_(gain)
    return net


SPEC = dict(
    name="stbp", method="STBP", dir=HERE, dataset=f"sklearn digits, Bernoulli rate code, T={T}",
    architecture="8x8-16C3-AP2-32C3-AP2-10 (conv/linear bias, avg pooling on spikes)",
    trainer="BPTT with STBP's rectangular surrogate (the method's own gradient)",
    data=lambda: method_data.static(T, 1.0, image=True),
    build=build, loss=lambda s, y: readouts.rate_mse(s, y), predict=lambda s: readouts.predict(readouts.spike_count(s)),
    epochs=60, lr=3e-3, batch=32,
    published="MNIST CNN 99.42 % (Wu et al. 2018); MNIST repo README ~99.4 %",
    notes=["zero-delay feed-forward in training: Lava runs each population 1 step later per layer "
           "(per-population start offsets), spikes identical after alignment",
           "bias of conv/linear becomes the neuron bias (exact: no current filter)",
           "average pooling folded into the next synapse (kernel 2k, stride 2 / replicated dense weights)"])

if __name__ == "__main__":
    sys.exit(method_run.main(SPEC))
