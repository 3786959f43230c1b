"""Sigma-delta (SDNN) graphs on the deployment path: the map (Delta, SigmaDelta, Sigma on cores,
graded synapses), estimates from graded-message counts, the bundle run in Lava fixed, and
``export-net`` into netx's SDNN format run by lava-dl's own netx (PilotNet SDNN ground truth)."""
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from snnc.compiler.estimates import counts_from_run, estimate
from snnc.compiler.ir import Delay, Delta, Dense, Graph, Input, Output, Sigma, SigmaDelta
from snnc.compiler.mapping import map_graph
from snnc.compiler.quantize import quantize
from snnc.compiler.resources import CORE_LIMITS, LOIHI2
from snnc.errors import SnncError

from lava_dl_files import GTS
from snnc_cli import run_python

netx = pytest.importorskip("lava.lib.dl.netx")

SDNN = os.path.join(GTS, "pilotnet_sdnn")
NET = os.path.join(SDNN, "network.net")
if not os.path.exists(NET):
    pytest.skip(f"lava-dl's PilotNet SDNN ground truth not found at {SDNN}", allow_module_level=True)
OUT_SCALE = 1 << 18


@pytest.fixture(scope="module")
def pilotnet():
    from snnc.frontends.netx_import import import_netx
    return quantize(import_netx(NET))


def _frame(steps):
    from snnc.frontends.netx_import import sdnn_input
    return sdnn_input(np.load(os.path.join(SDNN, "input.npy")), steps)


def within_limits(m):
    for core in m.cores:
        for k, fig in CORE_LIMITS.items():
            assert core.usage[k] <= LOIHI2.v(fig), (core.id, k, core.usage[k])


# ----------------------------------------------------------------------------- mapping
def test_pilotnet_sdnn_maps_every_layer(pilotnet):
    m = map_graph(pilotnet)
    models = {p: L.model for p, L in m.layers.items()}
    assert models["input0"] == "Delta" and models["dense9"] == "Sigma"
    assert [p for p, k in models.items() if k == "SigmaDelta"] == \
        ["conv1", "conv2", "conv3", "conv4", "dense6", "dense7", "dense8"]
    assert len(m.cores) == 14 and m.chips == 1
    within_limits(m)
    # the Delta's host input: one identity axon + synapse word per neuron; no links from it
    L0 = m.layers["input0"]
    assert [i.kind for i in L0.inputs] == ["host"]
    t0 = m.tiles[L0.tiles[0]]
    assert t0.usage["axons_in"] == t0.usage["synapse_words"] == t0.neurons
    # sigma-delta state: (sigma, act, residue 24-bit + 16-bit bias) + one 24-bit accumulator
    for p in ("conv1", "dense6"):
        t = m.tiles[m.layers[p].tiles[0]]
        assert t.usage["state_bytes"] == t.neurons * (11 + 3)
    t = m.tiles[m.layers["dense9"].tiles[0]]
    assert t.usage["state_bytes"] == 3 + 3                                  # Sigma: sigma only
    assert t0.usage["state_bytes"] == t0.neurons * (6 + 3)                  # Delta: act, residue
    assert m.layers["conv1"].binding == "state_bytes" and m.layers["dense6"].binding == "synapse_words"
    doc = m.to_dict()
    ins = {L["name"]: L["inputs"] for L in doc["layers"]}
    assert all(i["message_bits"] == 16 for p, v in ins.items() if p != "input0" for i in v)
    assert "SigmaDelta" in m.table() and "Delta" in m.table()


def test_tutorial_sdnn_shapes_vs_intels_61_cores():
    """The tutorial PilotNet SDNN's shapes (Intel: 61 cores, no Delta layer on the chip). See
    docs/deploy.md for the comparison; the conv synapse memory per core equals Intel's rows."""
    from pilotnet_sdnn_net import INTEL_TOTAL, tutorial_sdnn
    m = map_graph(tutorial_sdnn(delta=False))
    within_limits(m)
    cores = {p: len(m.layer_cores(p)) for p in m.layers}
    assert len(m.cores) == 35 and INTEL_TOTAL == 61
    assert cores["conv0"] == 22 and cores["fc0"] == 4
    words = {p: max(m.tiles[t].usage["synapse_words"] for t in m.layers[p].tiles) for p in m.layers}
    # Intel's per-core 'Synapses' for the tiles holding every channel: 81, 1620, 2592, 2880
    assert (words["conv0"], words["conv2"], words["conv3"], words["conv4"]) == (81, 1620, 2592, 2880)
    assert {m.layers[p].binding for p in ("conv0", "conv1", "conv2", "conv3")} == {"state_bytes"}
    assert len(map_graph(tutorial_sdnn(delta=True)).cores) == 45


def _toy(cum=False, bits=16):
    g = Graph()
    g.add("in", Input((8,)))
    g.add("enc", Delta((8,), threshold=0.0), "in")
    g.add("d", Delay(np.array(1)), "enc")
    g.add("syn", Dense(np.random.default_rng(0).uniform(-1, 1, (4, 8))), "d")
    g.add("sd", SigmaDelta((4,), threshold=0.1, cumulative_error=cum), "syn")
    g.add("out", Output((4,)), "sd")
    g = quantize(g)
    if bits != 16:
        g.fixed["syn"] = replace(g.fixed["syn"], num_message_bits=bits)
    return g


def test_cumulative_error_costs_state_and_wide_messages_are_refused():
    plain, cum = map_graph(_toy()), map_graph(_toy(cum=True))
    assert cum.tiles[cum.layers["sd"].tiles[0]].usage["state_bytes"] == \
        plain.tiles[plain.layers["sd"].tiles[0]].usage["state_bytes"] + 4 * 3
    with pytest.raises(SnncError) as e:
        map_graph(_toy(bits=32))
    msg = str(e.value)
    assert "layer 'sd'" in msg and "32-bit graded messages" in msg and "limit is 24" in msg


def test_estimate_counts_graded_messages(pilotnet):
    from snnc.backends.reference import run_reference
    from snnc.deploy import input_messages
    x = _frame(9)
    res = run_reference(pilotnet, x[None])
    counts = counts_from_run(res, pilotnet.shapes())
    # the reference counts messages (non-zero deltas), not values
    assert "dense9" not in counts and counts["input0"].max() <= 9
    inp = input_messages(pilotnet, x)
    assert inp.sum() == np.count_nonzero(x)
    m = map_graph(pilotnet)
    e = estimate(m, counts, 9, input_counts={"input": inp})
    sd = sum(int(counts[p].sum()) for p in m.layers if p in counts)
    assert e.totals["graded_messages_per_step"] == pytest.approx(sd / 9)
    # Delta tiles: one synaptic op per non-zero input value (host -> identity synapse)
    silent = {p: np.zeros_like(c) for p, c in counts.items()}
    e0 = estimate(m, silent, 9, input_counts={"input": inp})
    assert e0.totals["synops_per_step"] == pytest.approx(np.count_nonzero(x) / 9)
    assert e.totals["synops_per_step"] > 0 and "graded" in e.summary()


# ----------------------------------------------------------------------------- CLI
def test_deploy_dry_run_of_the_net_file(tmp_path, cli):
    code, out, err = cli("deploy", NET, "--dry-run", "--map", tmp_path / "m.json")
    assert code == 0, err
    assert "SigmaDelta" in out and "total: 14 cores on 1 chip(s)" in out
    doc = json.load(open(tmp_path / "m.json"))
    assert doc["map"]["cores"] == 14


def test_bundle_runs_in_lava_fixed_and_matches_ground_truth(tmp_path, pilotnet, cli):
    from snnc.compiler import artifact
    model = str(tmp_path / "x.snnc")
    artifact.save(pilotnet, model)
    np.save(tmp_path / "sdnn_input.npy", _frame(9).astype(np.float32))
    b = tmp_path / "bundle"
    code, out, err = cli("deploy", model, "--bundle", b, "--input", tmp_path / "sdnn_input.npy")
    assert code == 0, err
    exp = np.load(b / "expected_output.npz")["output"]
    gt = np.load(os.path.join(SDNN, "output.npy"))
    assert np.array_equal(exp * OUT_SCALE, gt)
    assert json.load(open(b / "map.json"))["estimate"]["totals"]["graded_messages_per_step"] > 0
    code, out, err = run_python(b / "run.py", cwd=tmp_path)
    assert code == 0, out + err
    assert "lava-fixed" in out and "MATCH" in out
    assert np.array_equal(np.load(b / "output.npz")["output"] * OUT_SCALE, gt)


def test_default_test_input_for_a_delta_is_a_held_frame_on_its_grid(pilotnet):
    from snnc.deploy import test_input
    x = test_input(pilotnet, steps=4)
    assert x.shape == (3, 33, 100, 4) and np.all(x == x[..., :1])
    assert np.all(x * 64 == np.round(x * 64)) and x.max() > 0


# ----------------------------------------------------------------------------- export-net
_NETX_CHILD = textwrap.dedent('''
    import sys, numpy as np
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc import io
    path, data, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    net = netx.hdf5.Network(net_config=path)
    src = io.source.RingBuffer(data=np.load(data))
    sink = io.sink.RingBuffer(shape=net.out_layer.shape, buffer=steps)
    src.s_out.connect(net.in_layer.neuron.a_in)          # as lava-dl's test_pilotnet_sdnn
    net.out_layer.out.connect(sink.a_in)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        np.save(out, sink.data.get())
    finally:
        net.stop()
''')


def _netx_run(tmp_path, path, data_xyf, steps):
    """lava-dl's netx on ``path`` in a child process (Lava can hang: timeout)."""
    script, data, out = tmp_path / "netx_child.py", tmp_path / "netx_in.npy", tmp_path / "netx_out.npy"
    script.write_text(_NETX_CHILD)
    np.save(data, data_xyf)
    p = subprocess.run([sys.executable, str(script), str(path), str(data), str(steps), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return np.load(out)


@pytest.mark.parametrize("net,crop", [("network.net", None), ("square_network.net", 33)])
def test_export_net_round_trip_through_lava_dl_netx(tmp_path, net, crop, cli):
    """import .net -> snnc export-net -> lava-dl netx runs it: output identical to snnc's
    reference and, for network.net, to lava-dl's recorded ground truth (output.npy)."""
    from snnc.backends.reference import run_reference
    from snnc.frontends.netx_import import from_xyf, import_netx, sdnn_input
    g = quantize(import_netx(os.path.join(SDNN, net)))
    out = tmp_path / "y.net"
    code, o, err = cli("export-net", _save(g, tmp_path), "-o", out)
    assert code == 0, err
    h = quantize(import_netx(str(out)))                       # snnc reads its own file back
    frame = np.load(os.path.join(SDNN, "input.npy"))
    if crop:
        frame = frame[:crop, :crop]
    steps = 9 if crop is None else 12
    x = sdnn_input(frame, steps)[None]
    from snnc.compiler.fixed import message_scale
    scale = message_scale(g, g.predecessors(g.outputs[0])[0])   # netx's integers per 1.0
    assert scale == (OUT_SCALE if crop is None else OUT_SCALE >> 6)   # Sigma / SigmaDelta output
    want = run_reference(g, x).output[0] * scale
    assert np.array_equal(run_reference(h, x).output[0] * scale, want)
    got = from_xyf(_netx_run(tmp_path, out, frame, steps))            # netx (x, y, f) -> (C, H, W)
    assert got.shape == want.shape and np.any(want != 0)
    assert np.array_equal(got, want), (got, want)
    if crop is None:
        assert np.array_equal(got, np.load(os.path.join(SDNN, "output.npy")))


def _save(g, tmp_path):
    from snnc.compiler import artifact
    p = str(tmp_path / "x.snnc")
    artifact.save(g, p)
    return p


def test_export_net_sdnn_refuses_what_netx_cannot_express(tmp_path):
    from snnc.backends.netx_export import export_netx
    with pytest.raises(SnncError, match="cumulative error"):
        export_netx(_toy(cum=True), str(tmp_path / "a.net"))
    g = Graph()
    g.add("in", Input((8,)))
    g.add("enc", Delta((8,), threshold=0.0), "in")
    g.add("d", Delay(np.array(2)), "enc")
    g.add("syn", Dense(np.ones((4, 8)) / 4), "d")
    g.add("s", Sigma((4,)), "syn")
    g.add("out", Output((4,)), "s")
    with pytest.raises(SnncError, match="node 'd'.*Delay of 1"):
        export_netx(quantize(g), str(tmp_path / "b.net"))
    assert not os.path.exists(tmp_path / "b.net")
    # a toy chain that can be written re-imports to the same structure
    export_netx(_toy(), str(tmp_path / "c.net"))
    from snnc.frontends.netx_import import import_netx
    h = import_netx(str(tmp_path / "c.net"))
    assert [type(v).__name__ for v in h.nodes.values()].count("SigmaDelta") == 1


def test_sdnn_hardware_path_gives_lava_dls_ground_truth(pilotnet):
    """A sigma-delta graph through the hardware path (the lava.proc.sdn processes given to Loihi 2),
    with only the run configuration swapped for Loihi2SimCfg(fixed_pt), against two independent
    sides: lava-dl's own recorded PilotNet SDNN output (its netx on the same frame) and snnc's
    numpy reference simulator (no Lava)."""
    from snnc.backends import loihi_hw
    from snnc.backends.reference import run_reference
    x = _frame(9)
    hw = loihi_hw.run_hw(pilotnet, x, config="sim-fixed", timeout=600)
    assert hw.engine == "loihi2-plan-simulated"
    gt = np.load(os.path.join(SDNN, "output.npy"))
    assert np.any(gt != 0)
    np.testing.assert_array_equal(hw.output * OUT_SCALE, gt)
    np.testing.assert_array_equal(hw.output, run_reference(pilotnet, x[None]).output[0])
