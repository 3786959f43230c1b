"""snnc.export: lava-dl SLAYER networks -> snnc ONNX dialect, checked against SLAYER itself.

Every test exports a network, checks the file with onnx.checker (full_check), runs it in
onnxruntime and asserts that the output spikes are identical (np.array_equal) to the SLAYER
PyTorch forward on CPU, on the example input and on an input of another batch size and length.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from lava.lib.dl import slayer

import snnc
from snnc.errors import SnncError
from snnc.frontends import onnx_ops

from slayer_nets import ALL, Branchy, Chain, ConvReshape, neuron, reset_state, spikes

cuba = slayer.block.cuba


def reference(net, x):
    reset_state(net)
    with torch.no_grad():
        return net(x).numpy()


def run_onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x.numpy()})[0]


def export_and_compare(net, x, path, other_input, label):
    """Export, check the file, compare onnxruntime with slayer on two inputs; spike counts."""
    model = snnc.export(net, x, str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    counts = []
    for inp in (x, other_input):
        ref, got = reference(net, inp), run_onnx(path, inp)
        assert got.shape == ref.shape
        assert np.array_equal(got, ref), f"{label}: {int(np.sum(got != ref))} spikes differ"
        counts.append(int(ref.sum()))
    print(f"{label}: slayer spikes {counts}, onnxruntime identical")
    assert counts[0] > 0 and counts[1] > 0, "a silent network proves nothing"
    return model


def _other_input(name, x):
    """Batch 3 and a different length (and seed) than the example input."""
    shape = (3,) + tuple(x.shape[1:-1]) + (x.shape[-1] + 13,)
    return spikes(shape, rate=0.3, seed=7)


@pytest.mark.parametrize("name", list(ALL))
def test_slayer_nets_match_onnxruntime(name, tmp_path):
    net, x = ALL[name]()
    model = export_and_compare(net, x, tmp_path / f"{name}.onnx", _other_input(name, x), name)
    assert model.ir_version == onnx_ops.IR_VERSION
    assert {o.domain: o.version for o in model.opset_import} == {"": 17, "snnc": 1}
    props = {p.key: p.value for p in model.metadata_props}
    assert props["snnc.dialect_version"] == "1" and "slayer" in props["snnc.source"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "N" and dims[-1] == "T" and dims[1:-1] == list(x.shape[1:-1])
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    assert ("snnc", "CubaLIF") in ops or ("snnc", "RecurrentCubaLIF") in ops
    assert ("snnc", "Delay") in ops


def test_skip_and_concat_forward(tmp_path):
    torch.manual_seed(1)
    net = Branchy()
    x = spikes((2, 20, 50), seed=1)
    with torch.no_grad():  # lava-dl initialises axonal delays on the first forward
        net(x)
        net.c.delay.delay.data = torch.arange(8, dtype=torch.float32) * 0.7  # floored: 0,0,1,2,2,3,4,4
    net.eval()
    model = export_and_compare(net, x, tmp_path / "branchy.onnx", spikes((3, 20, 61), seed=2),
                               "skip+concat")
    ops = [n.op_type for n in model.graph.node]
    assert "Add" in ops and "Concat" in ops


def test_conv_reshape_weightnorm_bias(tmp_path):
    torch.manual_seed(2)
    net = ConvReshape()
    net.conv.neuron.norm.running_mean.data = torch.linspace(-0.3, 0.4, 6)
    with torch.no_grad():  # synapse.weight is now stale: slayer recomputes it from g, v
        net.conv.synapse.weight_v.mul_(1.5)
    net.eval()
    x = spikes((2, 2, 10, 10, 30), seed=3)  # 10x10 -> pool 2 -> 5x5
    model = export_and_compare(net, x, tmp_path / "convr.onnx", spikes((1, 2, 10, 10, 45), seed=4),
                               "conv+reshape+weightnorm+bias")
    bias = [i for i in model.graph.initializer if i.name.startswith("conv_bias")]
    assert bias and np.any(onnx.numpy_helper.to_array(bias[0]) != 0)


@pytest.mark.parametrize("block", [
    lambda: cuba.KWTA(neuron(), 10, 5, num_winners=2),
    lambda: slayer.block.alif.Dense(neuron(threshold_step=0.5, refractory_decay=0.5,
                                         threshold_decay=0.5), 10, 5),
    lambda: slayer.block.sigma_delta.Average(5),     # (sigma_delta Dense and others export: test_export_sdnn.py)
])
def test_unsupported_block_is_named(block, tmp_path):
    net = Chain(cuba.Dense(neuron(), 8, 10), block()).eval()
    with pytest.raises(SnncError, match=r"block 'blocks\.1'.*(KWTA|alif|sigma_delta)"):
        snnc.export(net, spikes((1, 8, 10)), str(tmp_path / "x.onnx"))


def test_untraceable_forward_is_explained(tmp_path):
    class Dynamic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = cuba.Dense(neuron(), 8, 4)

        def forward(self, x):
            return self.a(x) if x.sum() > 0 else x

    with pytest.raises(SnncError, match="torch.fx"):
        snnc.export(Dynamic().eval(), spikes((1, 8, 10)), str(tmp_path / "x.onnx"))


class TwoOutputs(torch.nn.Module):
    """Conv with per-channel (non-integer) axonal delays, a 3x3 Pool, a Dense on 5-D input
    (a 1x1 conv), Flatten, and two outputs."""

    def __init__(self, pool):
        super().__init__()
        self.c = cuba.Conv(neuron(), 2, 4, 3, padding=1, weight_scale=4, delay=True)
        self.p = cuba.Pool(neuron(), pool, weight_scale=2)
        self.d = cuba.Dense(neuron(), 4, 6, weight_scale=4)
        self.f = cuba.Flatten()
        self.o = cuba.Dense(neuron(), 6 * 3 * 3, 5, weight_scale=4)

    def forward(self, x):
        y = self.d(self.p(self.c(x)))
        return self.o(self.f(y)), y


@pytest.mark.parametrize("pool,size", [(3, 9), (2, 5)])  # 5x5: slayer pads to 6x6 (asymmetric)
def test_conv_delays_pool_two_outputs(pool, size, tmp_path):
    torch.manual_seed(3)
    net = TwoOutputs(pool)
    x = spikes((2, 2, size, size, 30), seed=3)
    with torch.no_grad():
        net(x)
        net.c.delay.delay.data = torch.tensor([0.0, 1.5, 3.0, 2.2])
    net.eval()
    path = tmp_path / "two.onnx"
    model = snnc.export(net, x, str(path))
    assert [o.name for o in model.graph.output] == ["output_0", "output_1"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for inp in (x, spikes((1, 2, size, size, 41), seed=9)):
        reset_state(net)
        with torch.no_grad():
            ref = [t.numpy() for t in net(inp)]
        got = sess.run(None, {"input": inp.numpy()})
        assert all(np.array_equal(a, b) for a, b in zip(ref, got))
        print(f"pool {pool} on {size}x{size}: slayer spikes {[int(a.sum()) for a in ref]}, "
              "onnxruntime identical")
        assert all(a.sum() > 0 for a in ref)


def test_pool_crossing_channels_is_refused(tmp_path):
    """slayer pools over the flattened C*H axis: kernel 3, stride 1 on 2 channels of height 4
    (padded to 5) has windows straddling channels, which no per-channel pooling reproduces."""
    net = Chain(cuba.Pool(neuron(), 3, stride=1, weight_scale=2)).eval()
    with pytest.raises(SnncError, match=r"block 'blocks\.0' \(Pool.*cross channel"):
        snnc.export(net, spikes((1, 2, 4, 4, 10)), str(tmp_path / "x.onnx"))
