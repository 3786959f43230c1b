"""Calibrated quantization of float-trained models (``snnc.compile(..., calibrate=x)``,
``snnc compile --calibrate``).

The float model is a snnc.nn conv net trained here for a few seconds with real-valued dynamics
(``quantize=False``); its float spikes come from the float reference engine (equal to the PyTorch
forward, tests/test_methods_nn.py). Calibration chooses scales on one set of samples; the
agreement with the float model is measured on other samples, naive (today's pass) vs calibrated.
"""

import numpy as np
import pytest
import torch

import snnc
import snnc.nn as sn
from snnc.api import import_model
from snnc.calibrate import trace
from snnc.compiler import calibrate as sel
from snnc.compiler.calibrate import calibration_table
from snnc.compiler.fold import fold_pooling
from snnc.compiler.ir import Conv2d, CubaLIF, Dense, Graph, Input, Output
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError


def bars(n, seed, T=12):
    """Four rate-coded 8x8 patterns (horizontal, vertical, two diagonals) in noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.zeros(4, 8, 8)
    protos[0, 2:6, :] = 1
    protos[1, :, 2:6] = 1
    for i in range(8):
        protos[2, i, max(0, i - 2):i + 2] = 1
        protos[3, i, max(0, 5 - i):8 - i] = 1
    y = torch.randint(0, 4, (n,), generator=g)
    p = 0.15 + 0.25 * protos[y]
    return (torch.rand(n, 1, 8, 8, T, generator=g) < p[:, None, ..., None]).float(), y


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    """Conv(1->6) -> LIF -> AvgPool -> Flatten -> Linear(96->32) -> LIF -> Linear(32->4) -> LIF,
    real-valued dynamics, trained 80 Adam steps (a few seconds) on ``bars``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        lif = [sn.LIF(current_decay=0.5, voltage_decay=0.1, threshold=0.7, surrogate=sn.SigmoidDerivative(0.3))
               for _ in range(3)]
        net = torch.nn.Sequential(sn.Conv2d(1, 6, 3, padding=1, bias=False), lif[0], sn.AvgPool2d(2), sn.Flatten(),
                                  sn.Linear(96, 32, bias=False), lif[1], sn.Linear(32, 4, bias=False), lif[2])
        x, y = bars(128, 0)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        for _ in range(80):
            loss = torch.nn.functional.cross_entropy(net(x).sum(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    path = str(tmp_path_factory.mktemp("calib") / "float.onnx")
    snnc.export(net, x[:2], path)
    return path, x[:64].numpy(), bars(256, 1)[0].numpy()


def test_calibration_recovers_spikes(float_model, capsys):
    """Held-out data: every population agrees with the float model at least as well as with the
    naive pass, and the disagreeing entries over all populations drop by at least a quarter."""
    path, calib, test = float_model
    g = import_model(path)
    naive = quantize(fold_pooling(g))
    cal = snnc.compile(path, calibrate=calib)
    fs, fo, _ = trace(fold_pooling(g), "float", test)
    ns, no, _ = trace(naive, "fixed", test)
    cs, co, _ = trace(cal, "fixed", test)
    miss_n = sum(int(np.sum(ns[p] != fs[p])) for p in fs)
    miss_c = sum(int(np.sum(cs[p] != fs[p])) for p in fs)
    with capsys.disabled():
        print("\n" + calibration_table(cal))
        for p in fs:
            print(f"held-out {p}: agreement naive {100 * np.mean(ns[p] == fs[p]):.3f} %, calibrated "
                  f"{100 * np.mean(cs[p] == fs[p]):.3f} % (float spikes {int(fs[p].sum())})")
        print(f"held-out differing entries, all populations: naive {miss_n}, calibrated {miss_c}; output "
              f"agreement naive {100 * np.mean(no == fo):.3f} %, calibrated {100 * np.mean(co == fo):.3f} %")
    for p in fs:
        assert np.mean(cs[p] == fs[p]) >= np.mean(ns[p] == fs[p]), p
    assert miss_c <= 0.75 * miss_n
    assert np.mean(co == fo) > np.mean(no == fo)
    rep = cal.metadata["calibration"]
    assert rep["samples"] == 64 and rep["output_agreement"] >= rep["output_agreement_naive"]
    assert {r["population"] for r in rep["layers"]} == set(fs)


def test_calibrated_graph_runs_the_same_everywhere(float_model, tmp_path):
    """The pinned scales survive the artifact: recompiling the saved .snnc gives the same fixed
    view; Lava fixed point runs it spike for spike like the reference."""
    path, calib, test = float_model
    out = str(tmp_path / "m.snnc")
    cal = snnc.compile(path, out, calibrate=calib)
    again = snnc.compile(out)
    for k, fx in cal.fixed.items():
        for field in ("weight", "weight_exp", "vth", "decay_u", "decay_v", "bias_mant"):
            if hasattr(fx, field):
                assert np.array_equal(getattr(fx, field), getattr(again.fixed[k], field)), (k, field)
    x = test[:4]
    ref = snnc.run(again, x, backend="reference")
    lava = snnc.run(again, x, backend="lava-fixed", timeout=300)
    assert np.array_equal(ref.output, lava.output) and ref.output.sum() > 0


def test_cli_calibrate(float_model, tmp_path, cli):
    path, calib, _ = float_model
    np.save(tmp_path / "calib.npy", calib[:16])
    np.save(tmp_path / "bad.npy", calib[:16, :, :4])
    cmd = ["compile", path, "-o", tmp_path / "m.snnc", "--calibrate"]
    rc, out, err = cli(*cmd, tmp_path / "calib.npy")
    assert rc == 0, err
    assert "agreement calibrated" in out and "16 calibration samples" in out
    rc, out, err = cli(*cmd, tmp_path / "bad.npy")
    assert rc == 2 and err.count("\n") == 1 and "does not fit the model input" in err
    rc, out, err = cli(*cmd, tmp_path / "none.npy")
    assert rc == 2 and "no such calibration file" in err
    rc, out, err = cli("info", tmp_path / "m.snnc")
    assert rc == 0 and "calibration report" in out


def test_calibration_refuses_bad_data(float_model):
    path, calib, _ = float_model
    with pytest.raises(SnncError, match="binary spikes"):
        snnc.compile(path, calibrate=calib * 0.5)
    with pytest.raises(SnncError, match="does not fit"):
        snnc.compile(path, calibrate=calib[:, 0])


# ------------------------------------------------------------------ the selection logic
def test_scales_put_the_clip_level_at_the_top_of_the_range():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.1, (20, 30))
    w[0, 0] = 3.0                                            # an outlier
    c = sel.clip_levels(w, (0.99,))[0]
    S, exps = sel.scales_for_clip({"d": (w, True)}, 0.99, k_max=10 ** 6)
    k, e = S // 64, exps["d"]
    assert 254 * 2 ** e / k >= c > 254 * 2 ** e / (k + 1)     # the clip level, to one step of k
    S2, _ = sel.scales_for_clip({"d": (w, True)}, 0.99, k_max=50)
    assert S2 <= 64 * 50
    Sc, ec = sel.scales_for_clip({"c": (w, False)}, 1.0, k_max=10 ** 6)
    assert ec == {"c": 0} and Sc // 64 == int(254 // 3.0)    # no exponent: S sets the step
    Sf, ef = sel.scales_for_clip({"d": (w, True)}, 1.0, k_max=0, fixed_k=64)
    assert Sf == 4096 and 254 * 2 ** ef["d"] / 64 >= 3.0


def test_scale_limit_and_threshold_candidates():
    assert sel.scale_limit(1.0, 2.0, 1.0) == (1 << 22) // 128
    assert sel.scale_limit(100.0, 0.0, 0.0) == (1 << 22) // 6400     # the threshold bounds the state
    assert sel.scale_limit(1.0, 0.0, 0.0, bias=1.0) == 4095 * 128 // 64
    c = sel.threshold_candidates(np.int64(200))
    assert [int(v) for v in c] == [194, 197, 203, 206]
    assert sel.best([(0.1, 0.0), (0.05, 0.2), (0.05, 0.1)], [64, 64, 128]) == 2


def test_weight_stats():
    w = np.array([[0.25, -0.25, 0.26, 10.0]])
    q = np.array([[128, -128, 134, 254]])                       # k = 512, e = 0; 10.0 clipped
    st = sel.weight_stats(w, q, 0, 512)
    assert st["clipped"] == 0.25 and st["rounded"] == 0.25     # 0.26 * 512 = 133.12 -> 134
    assert st["effective_bits"] == pytest.approx(np.log2((254 + 128) / 2 + 1))
    assert st["rms_error"] == pytest.approx(np.sqrt(np.mean((w - q / 512) ** 2)))


def _tiny(state_scale=0):
    g = Graph()
    g.add("x", Input((3,)))
    g.add("d", Dense(np.array([[0.5, -0.25, 3.0]] * 2)), "x")
    g.add("p", CubaLIF((2,), 0.5, 0.1, 0.7, state_scale=state_scale), "d")
    g.add("y", Output((2,)), "p")
    return g


def test_pinned_scales_in_the_quantize_pass():
    g = _tiny()
    g.metadata["scales"] = {"state_scale": {"p": 64 * 100}, "weight_exp": {"d": 0}, "vth": {"p": 71}}
    q = quantize(g)
    assert q.fixed["p"].state_scale == 6400 and q.fixed["p"].vth == 71
    assert q.fixed["d"].weight.tolist() == [[50, -24, 254]] * 2    # 300 clipped to 254; -25 -> -24 (half to even)
    row = next(r for r in q.metadata["quantization"] if r["node"] == "d")
    assert row["clipped"] == 2
    for bad, msg in (({"state_scale": {"p": 100}}, "multiple of 64"),
                     ({"weight_exp": {"d": 9}}, "0..7")):
        g.metadata["scales"] = bad
        with pytest.raises(SnncError, match=msg):
            quantize(g)
    g2 = _tiny(state_scale=4096)
    g2.metadata["scales"] = {"state_scale": {"p": 8192}}
    with pytest.raises(SnncError, match="model's own 4096"):
        quantize(g2)
    g3 = Graph()
    g3.add("x", Input((1, 4, 4)))
    g3.add("c", Conv2d(np.full((1, 1, 3, 3), 0.1)), "x")
    g3.add("p", CubaLIF((1, 2, 2), 0.5, 0.1, 0.7, state_scale=0), "c")
    g3.add("y", Output((1, 2, 2)), "p")
    g3.metadata["scales"] = {"weight_exp": {"c": 1}}
    with pytest.raises(SnncError, match="Conv has no weight exponent"):
        quantize(g3)


def test_calibrate_reset_by_subtraction_and_readout():
    """Subtract reset (one step late), a bias-driven population and a CubaLI read-out scored by
    its relative RMS error; the chosen S keeps the bias in its 13-bit mantissa."""
    from small_nets import reset_net
    g, _ = reset_net("subtract", True, readout=True)
    x = (np.random.default_rng(1).random((64, 20, 40)) < 0.3).astype(np.float32)
    cal = snnc.compile(g, calibrate=x)
    rows = {r["population"]: r for r in cal.metadata["calibration"]["layers"]}
    assert rows["o"]["readout_error"] <= rows["o"]["readout_error_naive"]
    assert rows["h"]["agreement"] >= rows["h"]["agreement_naive"]
    assert abs(int(cal.fixed["b"].bias_mant)) <= 4095
    assert "rms err" in calibration_table(cal)


def _dense_net(seed=0, n_in=200):
    """Input(200 spikes) -> Dense -> CubaLIF(current decay 0.5) -> Dense -> CubaLIF, float
    weights with a mean offset (their rounding errors add up over many active inputs)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((n_in,)))
    g.add("w1", Dense(rng.normal(0.004, 0.03, (24, n_in))), "x")
    g.add("l1", CubaLIF((24,), current_decay=0.5, voltage_decay=0.1, threshold=1.0, state_scale=0), "w1")
    g.add("w2", Dense(rng.normal(0.1, 0.4, (6, 24))), "l1")
    g.add("l2", CubaLIF((6,), current_decay=0.5, voltage_decay=0.1, threshold=1.0, state_scale=0), "w2")
    g.add("y", Output((6,)), "l2")
    x = (rng.random((64, n_in, 30)) < rng.uniform(0.05, 0.5, (1, n_in, 1))).astype(np.float64)
    return g, x


def test_bias_correction():
    """A kept correction is ``-(W_q - W) @ E[x] / current_decay`` per neuron (W_q: the chosen
    mantissas dequantized; E[x]: the input rates), and the calibration data's disagreement over
    all populations with it is not above the one without it."""
    from snnc.calibrate import calibrate
    g, x = _dense_net()
    with_bc, without = calibrate(g, x), calibrate(g, x, bias_correction=False)
    row = with_bc.metadata["calibration"]["layers"][0]
    assert row["population"] == "l1" and row["bias_correction"] is not None
    S = with_bc.fixed["l1"].state_scale
    fx = with_bc.fixed["w1"]
    wq = np.asarray(fx.weight, np.float64) * 2.0 ** fx.weight_exp / (S // 64)
    want = -((wq - g.nodes["w1"].weight) @ x.mean(axis=(0, 2))) / 0.5
    assert np.allclose(np.asarray(with_bc.nodes["l1"].bias) - 0.0, want, rtol=0, atol=1e-12)
    assert row["bias_correction"]["max_abs"] == pytest.approx(np.max(np.abs(want)))
    fs, _, _ = trace(g, "float", x)

    def miss(q):
        s, _, _ = trace(q, "fixed", x)
        return sum(int(np.sum(s[p] != fs[p])) for p in fs)
    assert miss(with_bc) <= miss(without)
    print(f"bias correction: calibration-data disagreement {miss(without)} -> {miss(with_bc)} entries")
