"""Where netx 0.6.0 cannot go: SLAYER nets written with their own ``export_hdf5``, read with
snnc's .net import and run on snnc's reference simulator (fixed point, bit-exact with Lava
fixed_pt), compared bit for bit with the SLAYER PyTorch forward (CPU).

netx raises NotImplementedError for pool and average layers, drops conv delays, and for
dense_rec with delays drops the weight exponent and reuses the input delays on the recurrent
synapse. Each case below runs through snnc exactly.

Timing: the import runs in Lava time (each synapse takes one step); SLAYER delays each block's
output by one step instead. With zero bias the two are the same sequence, so outputs are
compared at the same index over the whole run.
"""
import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("lava.lib.dl.slayer")
from lava.lib.dl import slayer  # noqa: E402

from snnc.backends.reference import run_reference  # noqa: E402
from snnc.compiler.quantize import quantize  # noqa: E402
from snnc.frontends.netx_import import import_netx  # noqa: E402

NEURON = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03,
              tau_grad=0.03, scale_grad=3, requires_grad=False)


def _spikes(shape, rate=0.3, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random(shape) < rate).astype(np.float32))


def _scale(blocks, gain=2.0):
    with torch.no_grad():
        for b in blocks:
            for name, p in b.named_parameters():
                if "weight" in name:
                    p.mul_(gain)


def _set_delays(block, x_run, blocks, high, seed):
    """lava-dl's Delay initialises on the first forward: run once, then set integer delays.
    The run takes zero spikes so that persistent state (Recurrent blocks) stays zero."""
    with torch.no_grad():
        y = torch.zeros_like(x_run)
        for b in blocks:
            y = b(y)
        d = block.delay.delay
        d.data = torch.from_numpy(np.random.default_rng(seed).integers(0, high, size=d.shape)).float()


def _forward(blocks, x):
    for b in blocks:        # Recurrent blocks keep spikes and neuron state across forwards
        if hasattr(b, "spike_state"):
            b.spike_state = torch.zeros_like(b.spike_state)
        n = getattr(b, "neuron", None)
        if getattr(n, "persistent_state", False):
            n.current_state = torch.zeros_like(n.current_state)
            n.voltage_state = torch.zeros_like(n.voltage_state)
    with torch.no_grad():
        for b in blocks:
            x = b(x)
    return x.numpy()


def _export(blocks, path, extra=None):
    with h5py.File(path, "w") as h:
        layer = h.create_group("layer")
        for i, b in enumerate(blocks):
            b.export_hdf5(layer.create_group(str(i)))
        for i, (typ, shape) in enumerate(extra or [], start=len(blocks)):
            g = layer.create_group(str(i))
            g.create_dataset("type", (1,), "S10", [typ.encode("ascii")])
            g.create_dataset("shape", data=np.array(shape))


def _compare(blocks, x, path, input_shape=None, extra=None, expect=None):
    for b in blocks:
        b.eval()
    want = _forward(blocks, x) if expect is None else expect    # (shapes are set on a forward)
    _export(blocks, path, extra)
    g = quantize(import_netx(str(path), input_shape=input_shape))
    got = run_reference(g, x.numpy()).output
    assert got.shape == want.shape
    assert np.array_equal(got, want.astype(np.float32)), \
        f"{int((got != want).sum())} of {want.size} values differ"
    assert want.sum() > 0
    return g, got


def test_pool_layer(tmp_path):
    """Conv -> Pool -> Conv -> Flatten -> Dense (netx: 'pool is not implemented')."""
    torch.manual_seed(0)
    blocks = [slayer.block.cuba.Conv(NEURON, 2, 8, 3, padding=1, weight_scale=2),
              slayer.block.cuba.Pool(NEURON, 2, stride=2, weight_scale=2),
              slayer.block.cuba.Conv(NEURON, 8, 8, 3, stride=2, weight_scale=2),
              slayer.block.cuba.Flatten(),
              slayer.block.cuba.Dense(NEURON, 8 * 2 * 2, 10, weight_scale=2)]
    _scale(blocks)
    x = _spikes((2, 2, 12, 12, 40))
    g, _ = _compare(blocks, x, tmp_path / "pool.net", input_shape=(2, 12, 12))
    assert any(type(n).__name__ == "SumPool2d" for n in g.nodes.values())


def test_average_layer(tmp_path):
    """Dense -> Dense -> Average (netx: 'average is not implemented'). SLAYER's Average block
    cannot export itself (its export_hdf5 reads a neuron it does not have), so its group is
    written as in lava-dl's own ntidigits.net: type 'average', shape [groups, 1, 1]."""
    torch.manual_seed(1)
    blocks = [slayer.block.cuba.Dense(NEURON, 30, 24, weight_scale=2),
              slayer.block.cuba.Dense(NEURON, 24, 12, weight_scale=2)]
    _scale(blocks)
    avg = slayer.block.cuba.Average(num_outputs=4)
    x = _spikes((2, 30, 50), seed=1)
    want = avg(torch.from_numpy(_forward(blocks, x))).numpy()
    g, got = _compare(blocks, x, tmp_path / "avg.net", extra=[("average", [4, 1, 1])], expect=want)
    assert got.shape == (2, 4, 50)


def test_conv_delays(tmp_path):
    """Conv with per-channel axonal delays (netx ignores them) -> Conv -> Flatten -> Dense."""
    torch.manual_seed(2)
    blocks = [slayer.block.cuba.Conv(NEURON, 2, 6, 3, padding=1, weight_scale=2, delay=True),
              slayer.block.cuba.Conv(NEURON, 6, 6, 3, stride=2, weight_scale=2),
              slayer.block.cuba.Flatten(),
              slayer.block.cuba.Dense(NEURON, 6 * 3 * 3, 10, weight_scale=2)]
    _scale(blocks)
    x = _spikes((2, 2, 8, 8, 48), seed=2)
    _set_delays(blocks[0], x, blocks, 6, seed=2)
    assert blocks[0].delay.delay.detach().numpy().max() > 0
    g, _ = _compare(blocks, x, tmp_path / "convdelay.net", input_shape=(2, 8, 8))
    assert max(n.max_steps for n in g.nodes.values() if type(n).__name__ == "Delay") > 1


def test_recurrent_with_delays(tmp_path):
    """dense_rec with axonal delays (netx drops the weight exponent and puts the input delays
    on the recurrent synapse): snnc delays the layer's output only, as SLAYER does."""
    torch.manual_seed(3)
    blocks = [slayer.block.cuba.Recurrent(NEURON, 20, 16, weight_scale=2, delay=True),
              slayer.block.cuba.Dense(NEURON, 16, 8, weight_scale=2)]
    _scale(blocks)
    x = _spikes((2, 20, 64), seed=3)
    _set_delays(blocks[0], x, blocks, 5, seed=3)
    for b in blocks:
        b.eval()
    g, _ = _compare(blocks, x, tmp_path / "recdelay.net", input_shape=(20,))
    assert any(name.endswith(".rec") for name in g.nodes)


def test_dense_delays_and_recurrent_roundtrip_through_export(tmp_path):
    """snnc export-net of an imported net writes a file snnc re-imports to the same spikes."""
    from snnc.backends.netx_export import export_netx
    torch.manual_seed(4)
    blocks = [slayer.block.cuba.Dense(NEURON, 20, 16, weight_scale=2, delay=True),
              slayer.block.cuba.Recurrent(NEURON, 16, 12, weight_scale=2),
              slayer.block.cuba.Dense(NEURON, 12, 6, weight_scale=2)]
    _scale(blocks)
    x = _spikes((2, 20, 64), seed=4)
    _set_delays(blocks[0], x, blocks, 5, seed=4)
    g, got = _compare(blocks, x, tmp_path / "a.net", input_shape=(20,))
    export_netx(g, str(tmp_path / "b.net"))
    g2 = quantize(import_netx(str(tmp_path / "b.net")))
    assert np.array_equal(run_reference(g2, x.numpy()).output, got)
