"""PilotNet SDNN (sigma-delta neurons, graded spikes): lava-dl's recorded ground truth reproduced
through snnc's own .net import and reference simulator (fixed point). netx is never called.

What is recorded in ``gts/pilotnet_sdnn`` (lava-dl 0.6.0 wheel) and compared here:
- ``output.npy`` (1, 9): the Sigma output of ``network.net`` for ``input.npy`` (one frame held
  for every step), the 9 steps of lava-dl's ``test_pilotnet_sdnn``, in Lava's integer units;
- ``act0.npy`` (x, y, f, 20): the input layer's (Delta's) graded messages;
- ``sigma1.npy``, ``sigma2.npy``: sigma of the first two conv layers, 20 steps;
- ``sigma{1..4}_square.npy``: sigma of the four conv layers of ``square_network.net`` (input
  ``act0[:33, :33]``), 20 steps (lava-dl's Loihi test reads their last step).

Time: every recording's index t is snnc's IR step t (netx's input layer has no synapse, so the
Delta sends the frame at its first step; each synapse adds one step). The per-layer sigmas were
recorded with netx's ``skip_layers=1`` (act0 fed straight into the first conv synapse); that
reaches the conv synapse at the same step as the Delta's messages do, so a full-network run
matches them as they are. Units: snnc holds values (integers / 64 in, Sigma output
integers / 2**18); messages and sigma are compared as Lava's integers.
"""
import os

import numpy as np
import pytest

from snnc.backends.reference import run_reference
try:            # the plain node-by-node simulator (graphs with sigma-delta nodes run on it)
    from snnc.backends.reference_spec import _Sim
except ImportError:  # pragma: no cover
    from snnc.backends.reference import _Sim
from snnc.compiler import artifact
from snnc.compiler.ir import Delta, Dense, Graph, Input, Output, Sigma, SigmaDelta, CubaLIF, Delay
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError
from snnc.frontends.netx_import import from_xyf, import_netx, sdnn_input

netx = pytest.importorskip("lava.lib.dl.netx")
from lava_dl_files import NETX_ROOT as ROOT  # noqa: E402
SDNN = os.path.join(ROOT, "gts", "pilotnet_sdnn")
if not os.path.isdir(SDNN):
    pytest.skip(f"lava-dl's PilotNet SDNN ground truth not found at {SDNN}", allow_module_level=True)

OUT_SCALE = 1 << 18          # Sigma output: integers in units of 1/2**18 (S of netx's SDNN)


def _run(net, frame, steps, layers):
    """Fixed-point run recording each layer's messages and sigma: {layer: {"s", "sigma"}}."""
    g = quantize(import_netx(os.path.join(SDNN, net)))
    x = sdnn_input(frame, steps)[None]
    sim = _Sim(g, "fixed", 1)
    rec = {k: {"s": [], "sigma": []} for k in layers}
    for t in range(steps):
        out = sim.step(t, {"input": x[..., t]})
        for k in layers:
            rec[k]["s"].append(out[k][0])
            rec[k]["sigma"].append(sim.state[k]["sigma"][0].copy())
    return g, {k: {q: np.stack(v, -1) for q, v in r.items()} for k, r in rec.items()}


@pytest.fixture(scope="module")
def pilotnet():
    frame = np.load(os.path.join(SDNN, "input.npy"))          # (100, 33, 3, 1) int32, (x, y, f, T)
    return _run("network.net", frame, 20, ["input0", "conv1", "conv2"])


def test_import_maps_every_layer():
    g = quantize(import_netx(os.path.join(SDNN, "network.net")))
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert kinds["input0"] == "Delta" and kinds["dense9"] == "Sigma"
    assert [k for k, v in kinds.items() if v == "SigmaDelta"] == \
        ["conv1", "conv2", "conv3", "conv4", "dense6", "dense7", "dense8"]
    # the file's integers come back exactly: no parameter rounded or clipped
    rep = g.metadata["quantization"]
    assert sum(r["rounded"] for r in rep) == 0 and sum(r["clipped"] for r in rep) == 0
    assert g.fixed["conv1"].vth == 13 and g.fixed["dense6"].vth == 23
    assert all(g.fixed[s].num_message_bits == 16 for s in g.nodes if s.endswith(".syn"))


def test_pilotnet_sdnn_output():
    """The network output: all 9 values identical to output.npy (lava-dl's own test)."""
    g = quantize(import_netx(os.path.join(SDNN, "network.net")))
    x = sdnn_input(np.load(os.path.join(SDNN, "input.npy")), 9)[None]
    res = run_reference(g, x)
    gt = np.load(os.path.join(SDNN, "output.npy"))
    out = res.output[0] * OUT_SCALE
    assert out.shape == gt.shape == (1, 9)
    assert np.array_equal(out, gt), (out, gt)
    assert res.engine == "reference-fixed"


def test_pilotnet_sdnn_output_longer_run_is_a_prefix():
    g = quantize(import_netx(os.path.join(SDNN, "network.net")))
    x = sdnn_input(np.load(os.path.join(SDNN, "input.npy")), 20)[None]
    out = run_reference(g, x).output[0] * OUT_SCALE
    assert np.array_equal(out[:, :9], np.load(os.path.join(SDNN, "output.npy")))


def test_pilotnet_sdnn_input_delta_messages(pilotnet):
    """The Delta encoder's graded messages, 9,900 neurons x 20 steps: identical to act0.npy."""
    _, rec = pilotnet
    gt = from_xyf(np.load(os.path.join(SDNN, "act0.npy")))
    assert rec["input0"]["s"].shape == gt.shape == (3, 33, 100, 20)
    assert np.array_equal(rec["input0"]["s"], gt)


@pytest.mark.parametrize("layer,file", [("conv1", "sigma1"), ("conv2", "sigma2")])
def test_pilotnet_sdnn_sigma(pilotnet, layer, file):
    _, rec = pilotnet
    gt = from_xyf(np.load(os.path.join(SDNN, file + ".npy")))
    got = rec[layer]["sigma"]
    assert got.shape == gt.shape
    assert np.array_equal(got, gt), f"{int((got != gt).sum())} of {gt.size} differ"


def test_square_network_sigma():
    """square_network.net on act0[:33, :33]: sigma of all 4 conv layers identical, 20 steps."""
    frame = np.load(os.path.join(SDNN, "input.npy"))[:33, :33]
    layers = ["conv1", "conv2", "conv3", "conv4"]
    _, rec = _run("square_network.net", frame, 20, layers)
    for i, k in enumerate(layers):
        gt = from_xyf(np.load(os.path.join(SDNN, f"sigma{i + 1}_square.npy")))
        assert rec[k]["sigma"].shape == gt.shape
        assert np.array_equal(rec[k]["sigma"], gt), k


def test_sdnn_artifact_round_trip(tmp_path):
    g = quantize(import_netx(os.path.join(SDNN, "network.net")))
    p = str(tmp_path / "sdnn.snnc")
    artifact.save(g, p)
    h = artifact.load(p)
    assert type(h.nodes["conv1"]).__name__ == "SigmaDelta" and type(h.fixed["conv1"]).__name__ == "FixedSigmaDelta"
    assert h.fixed["conv1.syn"].num_message_bits == 16
    x = sdnn_input(np.load(os.path.join(SDNN, "input.npy")), 9)[None]
    assert np.array_equal(run_reference(g, x).output, run_reference(h, x).output)
    assert "SigmaDelta" in str(h) and "graded 16b" in str(h)


def test_float_mode_is_close():
    """Float mode (Lava floating_pt semantics on the IR's values) runs and is close, not equal:
    fixed point floors every message (s >> state_exp)."""
    g = quantize(import_netx(os.path.join(SDNN, "network.net")))
    x = sdnn_input(np.load(os.path.join(SDNN, "input.npy")), 9)[None]
    f = run_reference(g, x, mode="float").output[0] * OUT_SCALE
    gt = np.load(os.path.join(SDNN, "output.npy"))
    assert np.allclose(f, gt, rtol=0.02, atol=500)


# ----------------------------------------------------------------------------- semantics
def _toy(cum=False, act="relu"):
    g = Graph()
    g.add("in", Input((3,)))
    g.add("enc", Delta((3,), threshold=0.5, cumulative_error=cum), "in")
    g.add("d", Delay(np.array(1)), "enc")
    g.add("syn", Dense(np.array([[1.0, 0.5, -0.25], [0.0, -1.0, 2.0]])), "d")
    g.add("sd", SigmaDelta((2,), threshold=0.25, bias=np.array([0.5, -0.25]), activation=act,
                           cumulative_error=cum), "syn")
    g.add("d2", Delay(np.array(1)), "sd")
    g.add("syn2", Dense(np.array([[1.0, -1.0]])), "d2")
    g.add("sig", Sigma((1,)), "syn2")
    g.add("out", Output((1,)), "sig")
    return g


def _numpy_lava(x, cum, relu):
    """Lava's fixed_pt sdn models (lava/proc/sdn/models.py) written out for the toy graph."""
    W1 = np.array([[64, 32, -16], [0, -64, 128]])
    W2 = np.array([[64, -64]])
    b = np.array([32, -16]) << 12
    def delta_step(st, act, vth):
        d = act - st["act"] + st["res"]
        if cum:
            st["err"] = st["err"] + d
            s = np.where(np.abs(st["err"]) >= vth, d, 0)
            st["err"] = st["err"] * (1 - (np.abs(s) > 0))
        else:
            s = np.where(np.abs(d) >= vth, d, 0)
        st["res"], st["act"] = d - s, act
        return s >> 6
    z = lambda n: dict(act=np.zeros(n, np.int64), res=np.zeros(n, np.int64), err=np.zeros(n, np.int64))
    e, s1 = z(3), z(2)
    sig1, sig2 = np.zeros(2, np.int64), np.zeros(1, np.int64)
    m0, m1, out = np.zeros(3, np.int64), np.zeros(2, np.int64), []
    for t in range(x.shape[-1]):
        sig2 = sig2 + W2 @ m1                       # synapses send what they computed last step
        sig1 = sig1 + W1 @ m0
        a = sig1 + b
        m1 = delta_step(s1, np.maximum(a, 0) if relu else a, 16 << 12)
        m0 = delta_step(e, (x[:, t].astype(np.int64)) << 12, 32 << 12)
        out.append(sig2.copy())
    return np.stack(out, -1)


@pytest.mark.parametrize("cum", [False, True])
@pytest.mark.parametrize("act", ["relu", "identity"])
def test_semantics_match_lava_sdn_models(cum, act):
    rng = np.random.default_rng(0)
    xi = rng.integers(-90, 90, size=(3, 30))
    g = quantize(_toy(cum, act))
    out = run_reference(g, (xi / 64.0)[None]).output[0] * OUT_SCALE
    assert np.array_equal(out, _numpy_lava(xi, cum, act == "relu"))


# ----------------------------------------------------------------------------- errors
from lava_dl_files import write_net as _write  # noqa: E402  (the same minimal .net writer)


def _sd(**kw):
    n = {"type": b"SDNN", "activation": b"relu", "vThMant": 4}
    n.update(kw)
    return n


def test_sdnn_non_relu_activation_refused(tmp_path):
    p = _write(tmp_path / "t.net", [
        dict(type="input", shape=np.array([4]), neuron=_sd()),
        dict(type="dense", shape=np.array([2]), weight=np.full((2, 4), 2.0, np.float32),
             neuron=_sd(activation=b"tanh"))])
    with pytest.raises(SnncError, match=r"layer 1 \(dense\).*activation 'tanh'"):
        import_netx(p)


def test_sdnn_sigma_output_with_bias_refused(tmp_path):
    p = _write(tmp_path / "t.net", [
        dict(type="input", shape=np.array([4]), neuron=_sd()),
        dict(type="dense", shape=np.array([2]), weight=np.full((2, 4), 2.0, np.float32),
             bias=np.ones(2, np.float32), neuron=_sd(sigma_output=True))])
    with pytest.raises(SnncError, match=r"layer 1 \(dense\).*sigma_output.*bias"):
        import_netx(p)


def test_binary_spikes_into_sigma_delta_refused():
    g = Graph()
    g.add("in", Input((3,)))
    g.add("syn", Dense(np.ones((2, 3))), "in")
    g.add("sd", SigmaDelta((2,), threshold=0.25), "syn")
    g.add("out", Output((2,)), "sd")
    with pytest.raises(SnncError, match=r"'sd'.*binary spikes"):
        quantize(g)


def test_graded_spikes_into_cuba_refused():
    g = Graph()
    g.add("in", Input((3,)))
    g.add("enc", Delta((3,)), "in")
    g.add("syn", Dense(np.ones((2, 3))), "enc")
    g.add("lif", CubaLIF((2,), 0.5, 0.5, 1.0), "syn")
    g.add("out", Output((2,)), "lif")
    with pytest.raises(SnncError, match=r"'lif'.*graded spikes"):
        quantize(g)


def test_delta_input_off_grid_refused():
    g = quantize(_toy())
    with pytest.raises(SnncError, match=r"'enc'.*1/64"):
        run_reference(g, np.full((1, 3, 4), 0.001))


# ----------------------------------------------------------------------------- Lava backend
def test_pilotnet_sdnn_lava_fixed_equals_reference_and_ground_truth():
    """snnc's Lava backend (lava.proc.sdn Delta/SigmaDelta/Sigma, graded Dense/Conv with
    num_message_bits, Loihi2SimCfg fixed_pt; ~5 s): identical to the reference and output.npy."""
    from snnc.backends.lava_backend import run_lava
    g = quantize(import_netx(os.path.join(SDNN, "network.net")))
    x = sdnn_input(np.load(os.path.join(SDNN, "input.npy")), 9)[None]
    res = run_lava(g, x, mode="fixed", timeout=600)
    assert res.engine == "lava-fixed"
    assert np.array_equal(res.output, run_reference(g, x).output)
    assert np.array_equal(res.output[0] * OUT_SCALE, np.load(os.path.join(SDNN, "output.npy")))


@pytest.mark.parametrize("cum", [False, True])
def test_toy_lava_fixed_equals_reference(cum):
    """Cumulative error, identity activation, negative messages: Lava equals the reference."""
    from snnc.backends.lava_backend import run_lava
    rng = np.random.default_rng(1)
    g = quantize(_toy(cum, "identity"))
    x = (rng.integers(-90, 90, size=(2, 3, 12)) / 64.0)
    res = run_lava(g, x, mode="fixed", timeout=600)
    assert np.array_equal(res.output, run_reference(g, x).output)


def test_lava_refuses_sigma_delta_float_and_plans_it_as_populations():
    """Sigma-delta is a population kind of the one layered plan (lava-fixed and hardware): the
    toy's Delay(1) before each synapse is the Lava synapse's own step (offsets 0), the Delta reads
    the Input through a link, the synapses carry graded messages; float is refused by name."""
    from snnc.backends.lava_backend import run_lava
    from snnc.backends.lava_plan import plan_lava
    g = quantize(_toy())
    with pytest.raises(SnncError, match=r"'enc'.*fixed point only"):
        run_lava(g, np.zeros((1, 3, 4)), mode="float")
    with pytest.raises(SnncError, match=r"'enc' \(Delta\).*fixed point only"):
        plan_lava(g, 4, "float")
    plan = plan_lava(g, 4)
    assert {n: (p.kind, p.offset) for n, p in plan.pops.items()} == \
        {"in": ("input", 0), "enc": ("delta", 0), "sd": ("sigma_delta", 0), "sig": ("sigma", 0)}
    kinds = sorted((c.kind, c.src, c.dst, c.num_message_bits > 0) for c in plan.conns)
    assert kinds == [("dense", "enc", "sd", True), ("dense", "sd", "sig", True), ("link", "in", "enc", False)]
    assert plan.input_kind == "delta" and plan.input_scale == (1 << 18) >> 12 and plan.io == "ringbuffer"
    assert plan.pops["sd"].bias_mant.tolist() == [32 << 12, -16 << 12] and plan.pops["sd"].vth == 16


def test_lava_plan_refuses_what_lava_sdn_cannot_run_by_name():
    """Graded messages through a synapse that would need a DelayDense: refused at planning,
    naming the synapse (a Delta reading its Input through a Delay is refused by quantize)."""
    from snnc.backends.lava_plan import plan_lava
    g = _toy()
    g.nodes["d"] = Delay(np.array(3))                 # 3 steps before syn: 2 more than Lava's own
    with pytest.raises(SnncError, match=r"'syn' \(Dense\).*graded messages through a delayed synapse"):
        plan_lava(quantize(g), 4)
