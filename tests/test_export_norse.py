"""snnc.export of Norse 1.1 cells, checked against Norse's own forward (the oracle).

Norse integrates with forward Euler (dt = 1 ms by default); snnc folds dt * tau_mem_inv into the
synapse weights (the input gain) and runs the same decays. Inputs are time first (T, N, ...).
"""
import numpy as np
import norse.torch as norse
import pytest
import torch
import torch.nn as nn

import snnc
from snnc.errors import SnncError
from step_nets import export_and_run, mismatches, run_steps, spikes

T, N = 40, 3


@pytest.mark.parametrize("cell,gain", [(norse.LIFBoxCell, 25.0), (norse.LIFCell, 8.0), (norse.IAFCell, 3.0)],
                         ids=["LIFBoxCell", "LIFCell", "IAFCell"])
def test_sequential_state(cell, gain, tmp_path):
    torch.manual_seed(0)
    net = norse.SequentialState(nn.Linear(16, 20, bias=False), cell(), nn.Linear(20, 6, bias=False), cell())
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(gain)
    x = spikes((T, N, 16), 0.3, 1)
    y, res, notes = export_and_run(net, x, run_steps(net, x), tmp_path / "n.onnx")
    print(f"{cell.__name__}: {int(y.sum())} output spikes; notes {notes}")
    assert y.sum() > 10
    for engine in ("onnxruntime", "reference-float"):
        assert mismatches(res, y, engine) == 0, engine


def test_conv_lif_sequential_state(tmp_path):
    torch.manual_seed(1)
    net = norse.SequentialState(nn.Conv2d(2, 4, 3, bias=False), norse.LIFCell(), nn.AvgPool2d(2), nn.Flatten(),
                                nn.Linear(4 * 3 * 3, 5, bias=False), norse.LIFBoxCell())
    with torch.no_grad():
        net[0].weight.mul_(20.0)
        net[4].weight.mul_(30.0)
    x = spikes((T, N, 2, 8, 8), 0.3, 2)
    y, res, _ = export_and_run(net, x, run_steps(net, x), tmp_path / "c.onnx")
    print(f"Conv LIFCell -> AvgPool -> Linear LIFBoxCell: {int(y.sum())} output spikes")
    assert y.sum() > 10
    for engine in ("onnxruntime", "reference-float"):
        assert mismatches(res, y, engine) == 0, engine


class LoopedReadout(nn.Module):
    """A looped forward with a non-spiking LICell read-out (its membrane is the output)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 20, bias=False)
        self.lif = norse.LIFCell()
        self.out = nn.Linear(20, 4, bias=False)
        self.li = norse.LICell()

    def forward(self, x):
        s1 = s2 = None
        vs = []
        for t in range(x.shape[0]):
            z, s1 = self.lif(self.fc(x[t]), s1)
            v, s2 = self.li(self.out(z), s2)
            vs.append(v)
        return torch.stack(vs)


def test_looped_lif_with_li_readout(tmp_path):
    torch.manual_seed(2)
    net = LoopedReadout()
    with torch.no_grad():
        net.fc.weight.mul_(8.0)
    x = spikes((T, N, 16), 0.3, 3)
    with torch.no_grad():
        v = net(x)
    y, res, _ = export_and_run(net, x, v, tmp_path / "li.onnx")
    errs = {e: float(np.max(np.abs(res[e].output - y))) for e in ("onnxruntime", "reference-float")}
    print(f"LICell read-out: |v| up to {np.abs(y).max():.3f}; max abs difference {errs}")
    assert np.abs(y).max() > 0.1
    for e, err in errs.items():                 # float32 (Norse) against float64 (snnc) rounding
        assert err < 1e-6 * max(1.0, float(np.abs(y).max())), e


def test_norse_reset_and_leak_must_be_zero(tmp_path):
    p = norse.LIFBoxParameters(v_reset=torch.as_tensor(-0.2))
    net = norse.SequentialState(nn.Linear(4, 3, bias=False), norse.LIFBoxCell(p))
    with pytest.raises(SnncError, match=r"layer '1' \(norse LIFBoxCell\) has v_reset"):
        snnc.export(net, spikes((5, 2, 4), 0.3, 4), str(tmp_path / "x.onnx"))


def test_norse_sequence_module_is_refused(tmp_path):
    net = norse.SequentialState(nn.Linear(4, 3, bias=False), norse.LIF())
    with pytest.raises(SnncError, match=r"norse LIF, which snnc cannot export"):
        snnc.export(net, spikes((5, 2, 4), 0.3, 5), str(tmp_path / "x.onnx"))
