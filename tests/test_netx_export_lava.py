"""``snnc export-net`` files load and run in lava-dl's own ``netx.hdf5.Network`` (Lava
``fixed_pt`` CPU simulation) to the same spikes as snnc's reference simulator."""
import numpy as np
import pytest

pytest.importorskip("lava.lib.dl.netx")

from snnc.backends.netx_export import export_netx  # noqa: E402
from snnc.backends.reference import run_reference  # noqa: E402
from snnc.compiler.quantize import quantize  # noqa: E402
from snnc.frontends.netx_import import import_netx  # noqa: E402


def _netx_run(path, x):
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io
    net = netx.hdf5.Network(net_config=path)
    steps = x.shape[-1]
    src = io.source.RingBuffer(data=x)
    sink = io.sink.RingBuffer(shape=net.out.shape, buffer=steps)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return sink.data.get()
    finally:
        net.stop()


@pytest.mark.slow
def test_exported_ntidigits_prefix_runs_in_netx(tmp_path, lava_dl):
    """N-TIDIGITS (dense layers with axonal delays), 200 steps: import, export, netx run."""
    import os
    d = os.path.join(lava_dl.GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net"), num_layers=5))
    out = str(tmp_path / "nti.net")
    export_netx(g, out)
    x = np.load(os.path.join(d, "input.npy"))[:, :200]
    want = run_reference(g, x.reshape(1, 1, 1, 64, -1)).output[0]
    got = _netx_run(out, x)
    assert want.sum() > 0
    assert np.array_equal(got, want), f"{int((got != want).sum())} spikes differ"


def test_exported_slayer_dense_runs_in_netx(tmp_path):
    """A SLAYER Dense(delays) -> Recurrent-free Dense net, imported, exported by snnc, run by netx."""
    import h5py
    import torch
    from lava.lib.dl import slayer
    torch.manual_seed(0)
    neuron = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, requires_grad=False)
    blocks = [slayer.block.cuba.Dense(neuron, 20, 16, weight_scale=4, delay=True),
              slayer.block.cuba.Dense(neuron, 16, 8, weight_scale=4)]
    with torch.no_grad():
        z = torch.zeros(1, 20, 8)
        for b in blocks:
            z = b(z)
        blocks[0].delay.delay.data = torch.from_numpy(
            np.random.default_rng(0).integers(0, 5, size=blocks[0].delay.delay.shape)).float()
    src = str(tmp_path / "slayer.net")
    with h5py.File(src, "w") as h:
        for i, b in enumerate(blocks):
            b.export_hdf5(h.create_group(f"layer/{i}"))
    g = quantize(import_netx(src, input_shape=(20,)))
    out = str(tmp_path / "snnc.net")
    export_netx(g, out)
    x = (np.random.default_rng(1).random((20, 60)) < 0.3).astype(float)
    want = run_reference(g, x[None]).output[0]
    got = _netx_run(out, x)
    assert want.sum() > 0
    assert np.array_equal(got, want), f"{int((got != want).sum())} spikes differ"
