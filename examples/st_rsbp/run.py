"""ST-RSBP (Zhang & Li 2019, recurrent SNNs) on row-by-row sequential digits, Lava fixed point.

Same neuron as HM2-BP (CUBA, tau_s 8, tau_m 64, refractory 2, one-step delays), with a trainable
recurrent hidden layer (ep <- ... + W s_in[t-1] + W_rec s[t-1]) and an output layer with lateral
inhibition. Data: each digit is presented one row per 6 steps (8 input channels = the row's
pixels, Bernoulli), T = 48; the read-out is the output spike count over the whole sequence.
Reservoir R200 (ST-RSBP uses R200-R400), recurrent weights U(-0.5, 0.5), input weights U(-10, 10)
(scaled to V_th = 5), count targets 15 / 2 with margin 2.
Trainer: BPTT with a rectangular surrogate (ST-RSBP's own gradient is spike-train level with
effect ratios; this is a BPTT-surrogate trainer, named as such).

    python examples/st_rsbp/run.py [--quick] [--float] [--epochs N]
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

STEPS_PER_ROW, TAU_M, TAU_S, HIDDEN = 6, 64.0, 8.0, 200
DESIRED, UNDESIRED, MARGIN = 15, 2, 2     # output counts over T = 48 (ST-RSBP: 35 / 5, margin 5 at T = 400+)


def build(quantize):
    g = torch.Generator().manual_seed(0)
    w_rec = (torch.rand(HIDDEN, HIDDEN, generator=g) * 2 - 1) * 0.5
    n1 = sn.hm2(TAU_M, TAU_S, threshold=5.0, quantize=quantize, recurrent=w_rec)
    n2 = sn.hm2(TAU_M, TAU_S, threshold=5.0, quantize=quantize, recurrent="lateral", size=10)
    wq = (lambda n: n.weight_quant()) if quantize else (lambda n: None)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(8, HIDDEN, bias=False, weight_quant=wq(n1)), n1,
                              sn.Delay(1), sn.Linear(HIDDEN, 10, bias=False, weight_quant=wq(n2)), n2)
    with torch.no_grad():
        net[1].weight.uniform_(-10, 10)       # 2 V_th: a row's pixel makes a neuron fire within a few steps
        net[4].weight.uniform_(-3, 3)
    return net


SPEC = dict(
    name="st_rsbp", method="ST-RSBP", dir=HERE,
    dataset=f"row-by-row sequential digits (8 channels, {STEPS_PER_ROW} steps per row), T={8 * STEPS_PER_ROW}",
    architecture=f"8-R{HIDDEN}-10, trainable recurrent hidden layer, output lateral inhibition -1, "
                 "tau_m 64, tau_s 8, refractory 2, V_th 5",
    trainer="BPTT-surrogate trainer (rectangular surrogate), count loss with margin; not ST-RSBP's spike-train-level gradient",
    data=lambda: method_data.rows(STEPS_PER_ROW),
    build=build,
    loss=lambda s, y: readouts.count_margin_mse(s, y, DESIRED, UNDESIRED, MARGIN) / 10,
    predict=lambda s: readouts.predict(readouts.spike_count(s)),
    epochs=30, lr=1e-2, batch=32,
    published="Fashion-MNIST 90.13 % (400-R400), N-TIDIGITS 93.90 % (400-R400-400, T=700) [log]",
    notes=["refractory period (2 steps): Lava LIFRefractory with snnc's fixed_pt model; Loihi 2 needs a custom neuron program",
           "recurrent and lateral connections: Dense through a one-step Delay (Lava Dense's own step)"])

if __name__ == "__main__":
    sys.exit(method_run.main(SPEC))
