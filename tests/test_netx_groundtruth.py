"""lava-dl's shipped netx ground truth, reproduced through snnc's own .net import and backend.

Engine: snnc's reference simulator in fixed-point mode (``run_reference`` / its ``_Sim`` for
per-layer u and v), which is bit-exact with Lava's ``fixed_pt`` models. netx is never called.

Time axis: snnc's netx import runs in Lava time (IR step t = Lava time step t + 1). Arrays
in the ground-truth folders are in netx's (x, y, f, T) layout and are converted with
``from_xyf``. Where a file is offset in time or differs in places, the test says why.
"""
import os

import numpy as np
import pytest

from snnc.backends.reference import _Sim, run_reference
from snnc.compiler.quantize import quantize
from snnc.frontends.netx_import import bias_input, import_netx

netx = pytest.importorskip("lava.lib.dl.netx")
# lava-dl's wheel ships its tests (and ground truth) next to the package: site-packages/tests/...
from lava_dl_files import GTS, NETX_ROOT as ROOT  # noqa: E402
if not os.path.isdir(GTS):
    pytest.skip(f"lava-dl's netx ground truth not found at {GTS}", allow_module_level=True)


def _run_layers(graph, x, steps, layers):
    """Reference run recording spikes, u and v of ``layers`` at every step: {layer: {s,u,v}}."""
    sim = _Sim(graph, "fixed", 1)
    rec = {k: {"s": [], "u": [], "v": []} for k in layers}
    for t in range(steps):
        out = sim.step(t, {graph.inputs[0]: x[..., t]})
        for k in layers:
            rec[k]["s"].append(out[k][0].astype(np.int64))
            rec[k]["u"].append(sim.state[k]["u"][0].copy())
            rec[k]["v"].append(sim.state[k]["v"][0].copy())
    return {k: {q: np.stack(v, -1) for q, v in r.items()} for k, r in rec.items()}


# ----------------------------------------------------------------------------- tinynet
@pytest.fixture(scope="module")
def tinynet():
    # netx's test_tinynet: per-layer io.reset.Reset(interval=17, offset=i-1) on u and v, i.e.
    # layer i is zeroed before IR step i, 17 + i, ...: snnc's reset_interval=17, reset_offset=0.
    g = quantize(import_netx(os.path.join(ROOT, "tiny.net"), reset_interval=17, all_outputs=True))
    x = bias_input(np.load(os.path.join(GTS, "tinynet", "input_bias.npy")), 20)[None]
    res = run_reference(g, x)
    gt = {k: np.load(os.path.join(GTS, "tinynet", f"{k}.npy"))[0] for k in ("input", "layer1", "output")}
    return res.outputs, gt


def test_tinynet_output(tinynet):
    """Output spikes (36 neurons x 15 steps) identical: snnc step t = SLAYER step t - 1."""
    out, gt = tinynet
    assert out["output"][0, ..., 2:17].shape == gt["output"][..., 1:].shape
    assert np.array_equal(out["output"][0, ..., 2:17], gt["output"][..., 1:])


def test_tinynet_input_and_conv_layers(tinynet):
    out, gt = tinynet
    # input layer (3x16x16, driven by bias): snnc step t = SLAYER step t + 1, 15 steps
    assert np.array_equal(out["input0.out"][0, ..., 0:15], gt["input"][..., 1:16])
    # first conv layer (24x6x6): same step index, steps 1..15
    assert np.array_equal(out["conv1.out"][0, ..., 1:16], gt["layer1"][..., 1:16])


@pytest.mark.xfail(strict=True, reason=(
    "Lava's leading bias-only step: at its first step each Lava layer integrates its bias "
    "before any input arrives (144 spikes in conv1 at step 0, 4 output spikes at step 1); "
    "SLAYER's recording has none (its step 0 is empty). netx's own test skips these steps."))
def test_tinynet_leading_step(tinynet):
    out, gt = tinynet
    assert np.array_equal(out["conv1.out"][0, ..., 0], gt["layer1"][..., 0])
    assert np.array_equal(out["output"][0, ..., 1], gt["output"][..., 0])


# ----------------------------------------------------------------------------- pilotnet LIF
from lava_dl_files import PILOT, PILOT_LAYERS, pilot_gt as _gt  # noqa: E402,F401


@pytest.fixture(scope="module")
def pilotnet():
    # The per-layer files were recorded with a 17-step reset period: input layer reset before
    # steps 0 and 17, layer k before k and 17 + k (found from input.npy: resetting before 16,
    # as a 16-period would, differs from step 17 on; before 17 matches all 24 steps).
    g = quantize(import_netx(os.path.join(PILOT, "network.net"), reset_interval=17))
    x = bias_input(np.load(os.path.join(PILOT, "image.npy")), 24)[None]
    return _run_layers(g, x, 24, list(PILOT_LAYERS))


@pytest.mark.parametrize("layer", list(PILOT_LAYERS))
def test_pilotnet_lif_spikes_and_u(pilotnet, layer):
    rec = pilotnet[layer]
    s_gt = _gt(PILOT_LAYERS[layer], rec["s"])
    assert s_gt.shape == rec["s"].shape
    assert np.array_equal(rec["s"], s_gt), f"{int((rec['s'] != s_gt).sum())} spikes differ"
    if layer != "input0":                       # no u/v files for the input layer
        u_gt = _gt(PILOT_LAYERS[layer] + "-u", rec["u"])
        assert np.array_equal(rec["u"], u_gt), f"{int((rec['u'] != u_gt).sum())} u values differ"


@pytest.mark.parametrize("layer", [k for k in PILOT_LAYERS if k != "input0"])
def test_pilotnet_lif_v(pilotnet, layer):
    """v is identical wherever the neuron did not spike. At a spike, the recording reads 128
    in every layer (a marker of the recorder: the next step only matches with v reset to 0,
    which is what Lava's LIF does and what snnc holds), so there it is checked to be 128."""
    rec = pilotnet[layer]
    v_gt = _gt(PILOT_LAYERS[layer] + "-v", rec["v"])
    spiked = rec["s"] > 0
    assert np.array_equal(rec["v"][~spiked], v_gt[~spiked])
    assert np.all(v_gt[spiked] == 128) and np.all(rec["v"][spiked] == 0)


def test_pilotnet_lif_last_layer():
    """fc-3 (the 1-neuron integrator, 25 steps) was recorded in another run: netx's
    reset_interval=16 with reset_offset=-1 (layer k zeroed before steps t % 16 == k - 1, so
    this layer at 8 and 24). With that schedule s, u and v are identical at every step."""
    g = quantize(import_netx(os.path.join(PILOT, "network.net"), reset_interval=16, reset_offset=-1))
    x = bias_input(np.load(os.path.join(PILOT, "image.npy")), 25)[None]
    rec = _run_layers(g, x, 25, ["dense10"])["dense10"]
    for q in ("s", "u", "v"):
        want = np.load(os.path.join(PILOT, f"fc-3-{q}.npy")).astype(np.int64)
        assert np.array_equal(rec[q].reshape(want.shape), want), q


# ----------------------------------------------------------------------------- N-TIDIGITS
def test_ntidigits_full_run():
    """3000 steps, axonal delays up to 62: every output spike identical over the whole run.
    output.npy is one step later than Lava (output.npy[:, t + 1] == snnc[:, t] for all 2999
    overlapping steps; its step 0 is empty). The trailing 'average' layer is left out, as the
    recording (242 neurons) is the last dense layer's spikes."""
    d = os.path.join(GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net"), num_layers=5))
    x = np.load(os.path.join(d, "input.npy"))            # (64, T): the file's input is (1, 1, 64)
    res = run_reference(g, x.reshape((1, 1, 1, 64, -1)))
    out, gt = res.output[0], np.load(os.path.join(d, "output.npy"))
    assert out.shape == gt.shape == (242, 3000)
    assert not gt[:, 0].any()
    assert np.array_equal(out[:, :-1], gt[:, 1:]), f"{int((out[:, :-1] != gt[:, 1:]).sum())} differ"
    assert out.sum() == gt.sum() == 22572


def test_ntidigits_average_readout():
    """The whole file, with its 'average' layer (11 groups of 22 neurons), which netx rejects."""
    d = os.path.join(GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net")))
    x = np.load(os.path.join(d, "input.npy"))[:, :500]
    out = run_reference(g, x.reshape((1, 1, 1, 64, -1))).output[0]
    gt = np.load(os.path.join(d, "output.npy"))[:, 1:501]
    assert out.shape == (11, 500)
    assert np.array_equal(out, gt.reshape(11, 22, -1).mean(1).astype(np.float32))


# ----------------------------------------------------------------------------- PilotNet SDNN
def test_pilotnet_sdnn_imports():
    """Sigma-delta neurons are imported (Delta, SigmaDelta, Sigma); the ground-truth comparisons
    are in tests/test_netx_sdnn.py."""
    g = import_netx(os.path.join(GTS, "pilotnet_sdnn", "network.net"))
    assert type(g.nodes["input0"]).__name__ == "Delta"


def test_ntidigits_full_run_lava_backend():
    """The same 3000-step comparison on snnc's Lava backend (Lava fixed_pt CPU, ~7 s with
    lava_fast_models' DelayDense; ~140-200 s with Lava's own DelayDense model)."""
    from snnc.backends.lava_backend import run_lava
    d = os.path.join(GTS, "ntidigits")
    g = quantize(import_netx(os.path.join(d, "ntidigits.net"), num_layers=5))
    x = np.load(os.path.join(d, "input.npy")).reshape((1, 1, 1, 64, -1)).astype(np.float32)
    out = run_lava(g, x, mode="fixed", timeout=1200).output[0]
    gt = np.load(os.path.join(d, "output.npy"))
    assert np.array_equal(out[:, :-1], gt[:, 1:])
