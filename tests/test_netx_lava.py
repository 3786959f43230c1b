"""lava-dl's shipped netx ground truth on snnc's Lava backend (Lava fixed_pt CPU simulation).

The same files and comparisons as tests/test_netx_groundtruth.py (which runs the reference
simulator), through snnc's netx import and ``snnc.run(..., backend="lava-fixed")`` /
``run_lava``: bias-driven input layers (per-sample ``bias_mant``), netx's staggered periodic
reset (``LIFReset``), Average readout on the host. Each run is also checked equal, for every
population and every step, to the reference simulator.
"""
import os

import numpy as np
import pytest

import snnc
from snnc.backends.lava_backend import run_lava
from snnc.backends.reference import run_reference
from snnc.compiler.quantize import quantize
from snnc.frontends.netx_import import bias_input, import_netx

from lava_dl_files import GTS, NETX_ROOT as ROOT

netx = pytest.importorskip("lava.lib.dl.netx")
if not os.path.isdir(GTS):
    pytest.skip(f"lava-dl's netx ground truth not found at {GTS}", allow_module_level=True)


def _same_as_reference(g, x, res):
    """Every population's spikes and every output of the Lava run equal the reference's."""
    ref = run_reference(g, x)
    for k, v in ref.counts.items():
        np.testing.assert_array_equal(res.counts[k], v, err_msg=k)
    for k, v in ref.outputs.items():
        np.testing.assert_array_equal(res.outputs[k], v, err_msg=k)
    return ref


# ----------------------------------------------------------------------------- tinynet
@pytest.fixture(scope="module")
def tinynet():
    g = quantize(import_netx(os.path.join(ROOT, "tiny.net"), reset_interval=17, all_outputs=True))
    x = bias_input(np.load(os.path.join(GTS, "tinynet", "input_bias.npy")), 20)[None]
    res = run_lava(g, x, mode="fixed")
    gt = {k: np.load(os.path.join(GTS, "tinynet", f"{k}.npy"))[0] for k in ("input", "layer1", "output")}
    return g, x, res, gt


def test_tinynet_lava_ground_truth(tinynet):
    """Output 36x15, input layer 768x15 and conv1 864x15 identical to lava-dl's recording
    (same index shifts as the reference test)."""
    g, x, res, gt = tinynet
    out = res.outputs
    assert res.output.sum() > 0
    assert np.array_equal(out["output"][0, ..., 2:17], gt["output"][..., 1:])
    assert np.array_equal(out["input0.out"][0, ..., 0:15], gt["input"][..., 1:16])
    assert np.array_equal(out["conv1.out"][0, ..., 1:16], gt["layer1"][..., 1:16])


def test_tinynet_lava_equals_reference(tinynet):
    g, x, res, gt = tinynet
    _same_as_reference(g, x, res)
    # the reset matters here: 20 steps, resets at IR steps 17, 18, 19 for the three layers
    assert res.timing.get("compile", 0) > 0


def test_tinynet_through_snnc_run_batch():
    """snnc.run(backend="lava-fixed") on a batch of 3 images: each sample from a zero state,
    resets on the same IR steps in every sample (run padded to 34 = 2 x 17 steps); identical
    to the reference for every population; sample 0 is the ground-truth image."""
    g = quantize(import_netx(os.path.join(ROOT, "tiny.net"), reset_interval=17, all_outputs=True))
    x = bias_input(np.load(os.path.join(GTS, "tinynet", "input_bias.npy")), 20)[None]
    xb = np.concatenate([x, x[..., ::-1, :, :], np.roll(x, 3, axis=2)], 0)
    res = snnc.run(g, xb, backend="lava-fixed")
    ref = run_reference(g, xb.astype(np.float32))
    for k, v in ref.counts.items():
        np.testing.assert_array_equal(res.counts[k], v, err_msg=k)
    np.testing.assert_array_equal(res.output, ref.output)
    gt = np.load(os.path.join(GTS, "tinynet", "output.npy"))[0]
    assert np.array_equal(res.output[0, ..., 2:17], gt[..., 1:])
    assert not np.array_equal(res.counts["conv1"][0], res.counts["conv1"][1])


# ----------------------------------------------------------------------------- pilotnet LIF
from lava_dl_files import PILOT, PILOT_LAYERS, pilot_gt as _gt  # noqa: E402  (same files, same reading)


@pytest.fixture(scope="module")
def pilotnet():
    g = quantize(import_netx(os.path.join(PILOT, "network.net"), reset_interval=17))
    x = bias_input(np.load(os.path.join(PILOT, "image.npy")), 24)[None]
    return g, x, run_lava(g, x, mode="fixed", record_state=True)


@pytest.mark.parametrize("layer", list(PILOT_LAYERS))
def test_pilotnet_lif_lava_spikes(pilotnet, layer):
    """Per-layer spikes, 24 steps, identical to lava-dl's recording."""
    g, x, res = pilotnet
    s = res.spikes[layer][0].astype(np.int64)
    s_gt = _gt(PILOT_LAYERS[layer], s)
    assert s_gt.shape == s.shape
    assert np.array_equal(s, s_gt), f"{int((s != s_gt).sum())} spikes differ"


def test_pilotnet_lif_lava_equals_reference(pilotnet):
    g, x, res = pilotnet
    _same_as_reference(g, x, res)


def test_pilotnet_lif_lava_state_equals_reference(pilotnet):
    """u and v read back from Lava's Vars at the end of the run (every population, incl. the
    LIFReset ones) equal the reference simulator's (which reproduces the recorded u and v),
    at each population's own step count. The bias input is constant over the run."""
    from snnc.backends.reference_spec import run_reference_spec
    g, x, res = pilotnet
    L = max(res.state_steps.values())
    xp = np.concatenate([x] + [x[..., -1:]] * (L - x.shape[-1]), axis=-1)
    ref = run_reference_spec(g, xp, mode="fixed", state_steps=res.state_steps)
    assert len(res.state) == 10                # input layer, 5 conv, 4 dense populations
    for pop, st in res.state.items():
        for k in ("u", "v"):
            assert np.array_equal(st[k], ref.state[pop][k]), (pop, k, int((st[k] != ref.state[pop][k]).sum()))


def test_pilotnet_lif_lava_last_layer():
    """fc-3 (the output integrator), recorded with reset_interval=16, reset_offset=-1: its
    spikes over 25 steps, and every population equal to the reference."""
    g = quantize(import_netx(os.path.join(PILOT, "network.net"), reset_interval=16, reset_offset=-1))
    x = bias_input(np.load(os.path.join(PILOT, "image.npy")), 25)[None]
    res = run_lava(g, x, mode="fixed")
    want = np.load(os.path.join(PILOT, "fc-3-s.npy")).astype(np.int64)
    assert np.array_equal(res.spikes["dense10"][0].reshape(want.shape), want)
    np.testing.assert_array_equal(res.output[0].reshape(want.shape), want)
    _same_as_reference(g, x, res)


# ----------------------------------------------------------------------------- N-TIDIGITS
def test_ntidigits_average_readout_lava():
    """The whole file with its 'average' layer (11 groups of 22), all 3000 steps: the host-side
    readout from Lava's spikes equals the recording's group means (the recording is one step
    later than Lava)."""
    d = os.path.join(GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net")))
    x = np.load(os.path.join(d, "input.npy")).reshape((1, 1, 1, 64, -1)).astype(np.float32)
    res = run_lava(g, x, mode="fixed", timeout=1200)
    gt = np.load(os.path.join(d, "output.npy"))
    assert res.output.shape == (1, 11, 3000) and res.spikes["dense4"].sum() == 22572
    assert np.array_equal(res.output[0, :, :-1], gt[:, 1:].reshape(11, 22, -1).mean(1).astype(np.float32))
    _same_as_reference(g, x, res)
