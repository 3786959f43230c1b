"""lava-dl's tutorial networks, as their authors wrote them (tests/lava_dl_tutorials.py, copied
verbatim from lava-nc/lava-dl d825ac5), through snnc.export -> snnc.compile -> engines.

The PyTorch forward (slayer, CPU) is the oracle: onnxruntime on the exported file, the reference
simulator and (Oxford) Lava fixed point give identical spikes, on small random spike inputs
(untrained weights, scaled up where the network would otherwise be nearly silent).
"""
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from lava.lib.dl import slayer

import lava_dl_tutorials as tut
import snnc
from snnc.errors import SnncError
from snnc.parity import run_parity


def spikes(shape, p, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def export_noted(net, x, path):
    """snnc.export, returning the notes it warned about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        snnc.export(net, x, str(path))
    return [str(w.message) for w in caught if str(w.message).startswith("snnc.export")]


def run_onnx(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})[0]


def test_oxford_identical_on_every_engine_and_lava_fixed(tmp_path):
    torch.manual_seed(0)
    net = tut.OxfordNetwork().eval()
    x = spikes((2, 200, 40), 0.1, 1)
    with torch.no_grad():
        y = net(x).numpy()
    path = tmp_path / "oxford.onnx"
    assert export_noted(net, x, path) == []
    results, _, _ = run_parity(str(path), x.numpy(), engines=["reference", "lava-fixed"],
                               torch_output=y, timeout=300)
    print(f"Oxford 200-256-200, T=40: {int(y.sum())} output spikes")
    assert y.sum() > 1000
    for engine in ("onnxruntime", "reference", "lava-fixed"):
        assert np.array_equal(results[engine].output, y), engine


def test_nmnist_with_axonal_delays_dropout_weight_norm(tmp_path):
    torch.manual_seed(1)
    net = tut.NmnistNetwork()
    x = spikes((2, 34 * 34 * 2, 30), 0.15, 2)
    with torch.no_grad():
        net(x)                                           # slayer initialises the delays here
        for b in net.blocks:
            b.synapse.weight_g.mul_(3.0)
            if b.delay is not None:
                b.delay.delay.data = torch.rand(b.delay.delay.shape) * 4
    net.eval()
    with torch.no_grad():
        y = net(x).numpy()
    path = tmp_path / "nmnist.onnx"
    export_noted(net, x, path)
    results, _, _ = run_parity(str(path), x.numpy(), engines=["reference"], torch_output=y)
    print(f"NMNIST 2312-512-512-10 (delays 0-4, dropout, weight norm): {int(y.sum())} output spikes")
    assert y.sum() > 20
    for engine in ("onnxruntime", "reference"):
        assert np.array_equal(results[engine].output, y), engine


def test_xor_counts_forward_input_and_affine_blocks(tmp_path):
    """forward() returns (x, torch.as_tensor(count)) with count built by .item(): torch.fx cannot
    trace it; snnc records one call, keeps the spike path and names what it dropped."""
    torch.manual_seed(666)
    net = tut.XorNetwork().eval()
    x = spikes((2, 2, 50), 0.5, 3)
    with torch.no_grad():
        y, count = net(x)
    path = tmp_path / "xor.onnx"
    notes = export_noted(net, x, path)
    print("\n".join(notes))
    assert any("not torch.fx-traceable" in n and ".item()" in n for n in notes)
    assert any("output 1" in n and "dropped" in n for n in notes)
    assert any("mean x4" in n for n in notes)
    got = run_onnx(path, x)
    assert (y != 0).sum() > 10                         # the Affine read-out (real-valued)
    assert np.array_equal(got, y.numpy())
    # another batch size and length, same file
    x2 = spikes((3, 2, 37), 0.5, 4)
    with torch.no_grad():
        y2, _ = net(x2)
    assert np.array_equal(run_onnx(path, x2), y2.numpy())


def test_input_block_dense_chain_compiles_and_matches(tmp_path):
    """slayer.block.cuba.Input (with a weight) -> Dense -> Dense on every engine."""
    torch.manual_seed(5)
    p = dict(threshold=0.5, current_decay=0.3, voltage_decay=0.1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([
                slayer.block.cuba.Input(dict(p), weight=1.5),
                slayer.block.cuba.Dense(dict(p), 12, 16, weight_scale=3),
                slayer.block.cuba.Dense(dict(p), 16, 5, weight_scale=3)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    net = Net().eval()
    x = spikes((2, 12, 40), 0.3, 5)
    with torch.no_grad():
        y = net(x).numpy()
    path = tmp_path / "inp.onnx"
    assert export_noted(net, x, path) == []
    results, _, _ = run_parity(str(path), x.numpy(), engines=["reference"], torch_output=y)
    assert y.sum() > 10
    for engine in ("onnxruntime", "reference"):
        assert np.array_equal(results[engine].output, y), engine


class MyDense(slayer.block.cuba.Dense):
    """A user's subclass: extra methods, slayer's forward."""

    def describe(self):
        return f"dense {self.synapse.weight.shape}"


class MyOverride(slayer.block.cuba.Dense):
    def forward(self, x):
        return super().forward(x) * 2


def test_user_subclass_of_a_block(tmp_path):
    torch.manual_seed(6)
    p = dict(threshold=0.5, current_decay=0.3, voltage_decay=0.1)
    net = torch.nn.Sequential(MyDense(dict(p), 10, 8, weight_scale=3),
                              slayer.block.cuba.Dense(dict(p), 8, 4, weight_scale=3)).eval()
    x = spikes((2, 10, 30), 0.3, 6)
    with torch.no_grad():
        y = net(x).numpy()
    snnc.export(net, x, str(tmp_path / "sub.onnx"))
    assert y.sum() > 5 and np.array_equal(run_onnx(tmp_path / "sub.onnx", x), y)
    bad = torch.nn.Sequential(MyOverride(dict(p), 10, 8)).eval()
    with pytest.raises(SnncError, match=r"block '0' \(MyOverride, a subclass of .*cuba\.Dense\) "
                                        r"overrides forward"):
        snnc.export(bad, x, str(tmp_path / "bad.onnx"))


def test_data_dependent_branch_is_still_refused(tmp_path):
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = slayer.block.cuba.Dense(dict(threshold=0.5, current_decay=0.3,
                                                  voltage_decay=0.1), 8, 4)

        def forward(self, x):
            count = []
            y = self.a(x)
            count.append(len(count))
            return y if y.sum() > 0 else x

    with pytest.raises(SnncError, match="data-dependent control flow"):
        snnc.export(Branchy().eval(), spikes((1, 8, 10), 0.3, 7), str(tmp_path / "x.onnx"))
