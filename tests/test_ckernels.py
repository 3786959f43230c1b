"""The reference's compiled kernels (snnc/backends/csrc/kernels.c through ckernels.py) against
independent numpy code written here, and the time-batched plan with them against its numpy path
(the library unloaded): the same integers, spikes and states."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from snnc.backends import ckernels
from snnc.backends import reference_batched as rb
from snnc.backends.plan import SynapseSpec
from snnc.backends.reference import run_reference
from snnc.errors import SnncError

from small_nets import branchy, chain_with_delays, conv_net, kinds_net


def test_the_install_built_them():
    assert ckernels.available(), "setup.py builds snnc/backends/_kernels*.so: run `make setup` (pip install -e .)"


def _patches(x, k, stride, pad, dil, out_hw):
    """(R, C*kh*kw, Ho*Wo) by explicit indexing of the zero-padded image."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = k, stride, pad, dil, out_hw
    r, c = x.shape[:2]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((r, c, kh, kw, ho, wo))
    for i in range(kh):
        for j in range(kw):
            rows = np.arange(ho) * sh + i * dh
            cols = np.arange(wo) * sw + j * dw
            out[:, :, i, j] = xp[:, :, rows][:, :, :, cols]
    return out.reshape(r, c * kh * kw, ho * wo)


CASES = [  # (R, C, H, W), kernel, stride, padding, dilation
    ((3, 2, 9, 11), (3, 3), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 13, 20), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 4, 7, 24), (3, 3), (2, 1), (0, 2), (1, 1)),
    ((1, 2, 10, 9), (5, 3), (3, 2), (3, 4), (1, 1)),      # padding beyond the kernel
    ((2, 2, 12, 12), (3, 3), (1, 2), (2, 2), (2, 3)),     # dilation
    ((2, 5, 4, 3), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 1, 2, 2), (3, 3), (1, 1), (1, 1), (1, 1)),       # image smaller than the kernel
    ((4, 3, 6, 15), (2, 4), (3, 3), (1, 0), (1, 2)),
]


@pytest.mark.parametrize("shape,k,stride,pad,dil", CASES)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_im2col_both_layouts(shape, k, stride, pad, dil, dt):
    x = (np.random.default_rng(sum(shape)).random(shape) < 0.4).astype(np.uint8) * np.uint8(1)
    x[0, 0, 0, 0] = 2                                                 # summed spikes of two sources
    h, w = shape[2:]
    ho = (h + 2 * pad[0] - dil[0] * (k[0] - 1) - 1) // stride[0] + 1
    wo = (w + 2 * pad[1] - dil[1] * (k[1] - 1) - 1) // stride[1] + 1
    want = _patches(x, k, stride, pad, dil, (ho, wo))
    r, kk, hw = want.shape
    a = np.full((r, kk, hw), -7, dt)
    ckernels.im2col(x, k, stride, pad, dil, (ho, wo), a, kk * hw, hw)
    assert np.array_equal(a, want)
    b = np.full((kk, r, hw), -7, dt)
    ckernels.im2col(x, k, stride, pad, dil, (ho, wo), b, hw, r * hw)
    assert np.array_equal(b.transpose(1, 0, 2), want)
    with pytest.raises(ValueError, match="too small"):
        ckernels.im2col(x, k, stride, pad, dil, (ho, wo), a[:-1], kk * hw, hw)


@pytest.mark.parametrize("shape,k,stride,pad,dil", CASES)
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("opg", [3, 37, 70])      # outputs per group: 1 to 8 vectors, and blocks of 8
def test_event_driven_conv_against_torch(shape, k, stride, pad, dil, groups, dt, opg):
    r, c, h, w = shape
    c *= groups
    rng = np.random.default_rng(sum(shape) + groups)
    x = (rng.random((r, c, h, w)) < 0.2).astype(np.uint8)
    x[0, 0, 0, 0] = 2                                                 # summed spikes of two sources
    wt = rng.integers(-60, 60, (groups * opg, c // groups) + tuple(k)).astype(np.float64)
    want = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(wt), stride=stride,
                                      padding=pad, dilation=dil, groups=groups).numpy()
    w_cio = ckernels.events_weights(wt, groups, dt)
    assert w_cio.shape[-1] % (32 // np.dtype(dt).itemsize) == 0 and not w_cio[..., opg:].any()
    assert np.array_equal(w_cio[2 * (c // groups) - 1 if groups == 2 else 0, :, :, :opg],
                          wt[(groups - 1) * opg:groups * opg, c // groups - 1 if groups == 2 else 0].transpose(1, 2, 0))
    out = np.full(want.shape, -7, dt)
    ckernels.conv_events(x, w_cio, stride, pad, dil, groups, out)
    assert np.array_equal(out, want)
    with pytest.raises(ValueError, match="conv_events"):             # not whole vectors: refused
        ckernels.conv_events(x, np.ascontiguousarray(w_cio[..., :opg]), stride, pad, dil, groups, out)


def test_conv_cost_model_picks_events_at_low_rates():
    """PilotNet's conv2 (24 -> 36 channels, 3x3, stride 2): events at its ~8 % input rate, im2col
    at conv1's ~90 % (and on its 3-channel input, where patches are few)."""
    conv2 = SynapseSpec("c2", "conv", np.ones((36, 24, 3, 3)), 1.0, None, False, 1e4, False, (24, 32, 99), (36, 15, 49),
                        ((2, 2), (0, 0), (1, 1), 1), cache={})
    conv1 = SynapseSpec("c1", "conv", np.ones((24, 3, 3, 3)), 1.0, None, False, 1e4, False, (3, 66, 200), (24, 32, 99),
                        ((2, 2), (0, 0), (1, 1), 1), cache={})
    assert rb.conv_events_pay(conv2, 0.08) and not rb.conv_events_pay(conv2, 0.9)
    assert not rb.conv_events_pay(conv1, 0.9)


def _lif_numpy(v, a, drive, scale, bias, cv, vth, ge, u=None, cu=None):
    """The kernel's equations, step by step, in numpy float64 (``u``, ``cu``: u decays; else u
    is the step's input)."""
    out = []
    for t in range(len(a if a is not None else drive)):
        inp = 0.0 if a is None else a[t].astype(np.float64) * 64.0
        if u is not None:
            u = np.trunc(u * cu) + inp
            inp = u
        add = bias + inp
        if drive is not None:
            add = add + drive[t].astype(np.float64) * scale
        v = np.trunc(v * cv) + add
        s = (v >= vth) if ge else (v > vth)
        out.append(s)
        v = np.where(s, 0.0, v)
    return v, np.array(out, np.uint8), u


@pytest.mark.parametrize("a_dt", [None, np.float32, np.float64])
@pytest.mark.parametrize("d_dt", [None, np.float32, np.float64, "time-last view"])
@pytest.mark.parametrize("ge", [False, True])
@pytest.mark.parametrize("u_decays", [False, True])
def test_lif_zero_equations(a_dt, d_dt, ge, u_decays):
    rng = np.random.default_rng(3)
    k, n, m = 7, 3, 37
    if a_dt is None and d_dt is None:
        d_dt = np.float32
    a = None if a_dt is None else rng.integers(-300, 400, (k, n, m)).astype(a_dt)
    if d_dt == "time-last view":     # float64 (n, m, k) read in place: strides (1, m * k, k)
        drive = np.moveaxis(rng.integers(-20, 40, (n, m, k)) / 4, -1, 0)
        assert not drive.flags.c_contiguous
    else:
        drive = None if d_dt is None else (rng.integers(-20, 40, (k, n, m)) / 4).astype(d_dt)
    bias = rng.integers(-500, 500, m).astype(np.float64) * 64
    cv = (4096 - rng.integers(0, 4096, m)) / 4096.0
    vth = np.full(m, 64.0 * 2000)
    v0 = rng.integers(-3000, 3000, (n, m)).astype(np.float64) * 64
    vth[:5], bias[:5], v0[:, :5] = 64.0 * 64, 0.0, 0.0           # neurons 0-4 reach v == vth at step 0
    if a is not None:
        a[0, :, :5] = 64
    if drive is not None:
        drive[0, :, :5] = 0.0 if a is not None else 16.0
    u0 = cu = None
    if u_decays:                     # u decays too: a negative, a positive and a zero u at step 0
        u0 = rng.integers(-2000, 2000, (n, m)).astype(np.float64) * 64
        cu = (4096 - rng.integers(1, 4096, m)) / 4096.0
        u0[:, :5] = 0.0
    v, u = v0.copy(), None if u0 is None else u0.copy()
    out = np.zeros((k, n, m), np.uint8)
    bad = ckernels.lif_zero(v, a, drive, 256.0, bias, cv, vth, ge, out, u, cu)
    want_v, want_s, want_u = _lif_numpy(v0, a, drive, 256.0, bias, cv, vth, ge, u0, cu)
    assert bad == 0
    assert np.array_equal(v, want_v) and np.array_equal(out, want_s)
    if u_decays:
        assert np.array_equal(u, want_u) and np.any(u != u0) and np.any(u < 0) and np.any(u % 64 != 0)
    assert 0 < out.sum() < out.size
    assert (out[0, :, :5] == ge).all()                             # '>=' spikes at v == vth, '>' does not
    if drive is not None:
        drive[2, 1, 4] += 0.001                                    # not a multiple of 1/256
        u1 = None if u0 is None else u0.copy()
        assert ckernels.lif_zero(v0.copy(), a, drive, 256.0, bias, cv, vth, ge, out, u1, cu) == 1
    with pytest.raises(ValueError):                                # u without its decay
        ckernels.lif_zero(v0.copy(), a, drive, 256.0, bias, cv, vth, ge, out, v0.copy(), None)


def _no_kernels(monkeypatch):
    monkeypatch.setattr(ckernels, "_LIB", None)
    assert not ckernels.available()


def _runs(graph, x, monkeypatch):
    compiled = run_reference(graph, x, "fixed", plan="batched")
    with monkeypatch.context() as m:
        _no_kernels(m)
        plain = run_reference(graph, x, "fixed", plan="batched")
    return compiled, plain


@pytest.mark.parametrize("one_gemm", [0, 10 ** 9])
def test_conv_layouts_against_torch(one_gemm, monkeypatch):
    """Both patch layouts, compiled and numpy patches, against torch's float64 convolution."""
    monkeypatch.setattr(rb, "ONE_GEMM_PIXELS", one_gemm)
    rng = np.random.default_rng(5)
    x = (rng.random((5, 4, 17, 23)) < 0.3).astype(np.uint8)
    spec = SynapseSpec(
        "c", "conv", rng.integers(-60, 60, (6, 2, 3, 3)), 1.0, None, False, 1e4, False,
        (4, 17, 23), (6, 9, 12), ((2, 2), (1, 1), (1, 1), 2), cache={})
    want = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(spec.w),
                                      stride=2, padding=1, groups=2).numpy()
    for kernel in ("gemm32", "gemm64"):
        got = rb.conv_all_steps(spec, x, kernel, lead=2)
        assert np.array_equal(got[2:], want) and not got[:2].any()
        with monkeypatch.context() as m:
            _no_kernels(m)
            assert np.array_equal(rb.conv_all_steps(spec, x, kernel), want)


@pytest.mark.parametrize("make", [conv_net, branchy, chain_with_delays])
def test_networks_same_with_and_without_kernels(make, monkeypatch):
    g, x = make()
    a, b = _runs(g, x, monkeypatch)
    assert a.plan == b.plan == "batched"
    assert np.array_equal(a.output, b.output) and a.output.sum() > 0
    for k in b.counts:
        assert np.array_equal(a.counts[k], b.counts[k]), k


def test_pilotnet_same_with_and_without_kernels(lava_dl, monkeypatch):
    from snnc.frontends.netx_import import bias_input, import_netx
    from snnc.compiler.quantize import quantize
    g = quantize(import_netx(os.path.join(lava_dl.GTS, "pilotnet_lif", "network.net")))
    x = bias_input(np.load(os.path.join(lava_dl.GTS, "pilotnet_lif", "image.npy")), 24)[None]
    seen = []
    orig = rb.conv_events_all_steps
    monkeypatch.setattr(rb, "conv_events_all_steps", lambda spec, *a, **k: seen.append(spec.name) or orig(spec, *a, **k))
    a, b = _runs(g, x, monkeypatch)
    assert np.array_equal(a.output, b.output)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in b.counts)
    assert a.counts["conv3"].sum() > 0
    assert {"conv2.syn", "conv3.syn", "conv4.syn"} <= set(seen) and "conv1.syn" not in seen   # the cost model


def _batched_state(g, x, monkeypatch, kernels: bool):
    """Final u, v and spike counts of a time-batched run, with or without the library."""
    with monkeypatch.context() as m:
        if not kernels:
            _no_kernels(m)
        run = rb.BatchedRun(g, {g.inputs[0]: np.ascontiguousarray(np.moveaxis(x, -1, 0))}, x.shape[-1], len(x))
        run.run()
    return run.state, run.counts


def test_decaying_u_by_the_kernel(lava_dl, monkeypatch):
    """Populations whose u decays, with no bound reached, are updated by the compiled kernel too:
    N-TIDIGITS's three (decay_u 1024) and chain_with_delays' two; the same spikes, counts and
    final u and v as numpy's update (``CubaGroup``)."""
    from snnc.frontends.netx_import import import_netx
    from snnc.compiler.quantize import quantize
    nt = quantize(import_netx(os.path.join(lava_dl.GTS, "ntidigits", "ntidigits.net"), num_layers=5))
    x_nt = np.load(os.path.join(lava_dl.GTS, "ntidigits", "input.npy"))[:, :400]
    x_nt = x_nt.reshape((1,) + tuple(nt.nodes[nt.inputs[0]].shape) + (400,))
    seen = []
    orig = rb.CubaStepper._advance_compiled

    def compiled(self, grp, *a):
        seen.append((self.params.names[0], grp._u_is_a))
        return orig(self, grp, *a)
    monkeypatch.setattr(rb.CubaStepper, "_advance_compiled", compiled)
    for g, x in ((nt, x_nt), chain_with_delays()):
        (sa, ca), (sb, cb) = (_batched_state(g, x, monkeypatch, k) for k in (True, False))
        assert ca.keys() == cb.keys() and all(np.array_equal(ca[k], cb[k]) for k in cb)
        assert sum(int(np.sum(c)) for c in ca.values()) > 100
        for pop in sb:
            for var in ("u", "v"):
                assert np.array_equal(sa[pop][var], sb[pop][var]), (pop, var)
    decaying = {name for name, u_is_a in seen if not u_is_a}
    assert {"dense2", "dense3", "dense4", "lif0", "lif1"} <= decaying


def test_bias_drive_checked_by_the_kernel(monkeypatch):
    g, x = kinds_net()
    a, b = _runs(g, x, monkeypatch)
    assert np.array_equal(a.output, b.output)
    x["drive"][1, 3, 17] += 1e-5                            # not a multiple of the state unit
    with pytest.raises(SnncError, match="population 'driven': bias input is not a multiple"):
        run_reference(g, x, "fixed", plan="batched")


def test_switched_off_by_environment():
    code = "from snnc.backends import ckernels; print(ckernels.available())"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, SNNC_NO_CKERNELS="1"),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_exact_f32_against_numpy():
    rng = np.random.default_rng(9)
    x = rng.integers(-(1 << 24), 1 << 24, 1001) / 64.0
    assert ckernels.exact_f32(x) == np.array_equal(x.astype(np.float32).astype(np.float64), x) is True
    for bad in (0.1, float(1 << 25) + 1, 1e300):
        y = x.copy()
        y[500] = bad
        assert ckernels.exact_f32(y) is False
    assert ckernels.exact_f32(np.zeros(0)) is True
