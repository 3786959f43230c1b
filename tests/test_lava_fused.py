"""The fused Lava backend (one Lava process for the whole graph, snnc.backends.lava_fused) against
the layered Lava backend (one Lava process per population/synapse, what hardware runs) and the
reference simulator: identical output spikes and per-population counts, fixed and float."""
import os

import numpy as np
import pytest

import slayer_nets
from slayer_nets import slayer_to_ir

import snnc
from snnc.backends.lava_backend import run_lava
from snnc.backends.lava_fused import run_lava_fused
from snnc.backends.reference import run_reference
from snnc.errors import SnncError


def _identical(a, b):
    assert np.array_equal(a.output, b.output), (a.engine, b.engine)
    assert a.counts.keys() == b.counts.keys()
    for k in a.counts:
        assert np.array_equal(a.counts[k], b.counts[k]), (a.engine, b.engine, k)


@pytest.mark.parametrize("name", list(slayer_nets.ALL))
def test_fused_equals_layered_and_reference(name):
    net, x = slayer_nets.ALL[name](N=3)
    g = slayer_to_ir(net, x.shape[1:-1])
    x = x.numpy()
    fused = run_lava_fused(g, x, "fixed", timeout=300)
    layered = run_lava(g, x, "fixed", timeout=300)
    ref = run_reference(g, x, "fixed")
    assert fused.engine == "lava-fused-fixed" and fused.output.sum() > 0
    _identical(fused, layered)
    _identical(fused, ref)
    # float: the fused process computes the reference's float mode
    _identical(run_lava_fused(g, x, "float", timeout=300), run_reference(g, x, "float"))


def test_fused_chunks_and_api_engine():
    """Several io chunks (buffers refilled between runs) give the same spikes; the API engine."""
    net, x = slayer_nets.ALL["recurrent"](N=2)
    g = slayer_to_ir(net, x.shape[1:-1])
    x = x.numpy()
    _identical(run_lava_fused(g, x, "fixed", chunk=7), run_reference(g, x, "fixed"))
    r = snnc.run(g, x[0], backend="lava-fused-fixed")
    assert r.engine == "lava-fused-fixed" and r.output.ndim == 2
    assert np.array_equal(r.output, run_reference(g, x[:1], "fixed").output[0])


def test_fused_refuses_graded_input_and_bad_shape():
    net, x = slayer_nets.ALL["dense"](N=1)
    g = slayer_to_ir(net, x.shape[1:-1])
    with pytest.raises(SnncError, match="binary spikes"):
        run_lava_fused(g, x.numpy() * 0.5, "fixed")
    with pytest.raises(SnncError, match="expects"):
        run_lava_fused(g, x.numpy()[:, :5], "fixed")


def test_fused_ntidigits_full_run(lava_dl):
    """N-TIDIGITS (3000 steps, axonal delays up to 62) on the fused process: every output spike and
    count identical with the reference simulator (which matches lava-dl's ground truth)."""
    from snnc.compiler.quantize import quantize
    from snnc.frontends.netx_import import import_netx
    d = os.path.join(lava_dl.GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net"), num_layers=5))
    x = np.load(os.path.join(d, "input.npy")).reshape((1, 1, 1, 64, -1))
    fused = run_lava_fused(g, x, "fixed", timeout=600)
    ref = run_reference(g, x, "fixed")
    _identical(fused, ref)
    gt = np.load(os.path.join(d, "output.npy"))
    assert np.array_equal(fused.output[0][:, :-1], gt[:, 1:])
