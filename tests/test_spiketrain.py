"""snnc.nn.SpikeTrainLevel: HM2-BP / ST-RSBP spike-train-level gradients (fast)."""
import numpy as np
import pytest
import torch

import snnc.nn as sn
from snnc.nn import readouts
from snnc.nn.spiketrain import (SpikeTrainLevel, effect_mean, effect_slope, psp_kernel, solve_transposed,
                                spike_psp)

torch.set_num_threads(1)
A, B, C = 7 / 8, 63 / 64, 1 / 8          # hm2(tau_m=64, tau_s=8): keep factors and input scale


def _net(q=False, hidden=12, out=4, inputs=16, lateral=True, recurrent=None, th=5.0, seed=0):
    torch.manual_seed(seed)
    n1 = sn.hm2(64.0, 8.0, threshold=th, quantize=q, recurrent=recurrent)
    kw = dict(recurrent="lateral", size=out) if lateral else {}
    n2 = sn.hm2(64.0, 8.0, threshold=th, quantize=q, **kw)
    wq = (lambda n: n.weight_quant()) if q else (lambda n: None)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(inputs, hidden, bias=False, weight_quant=wq(n1)), n1,
                              sn.Delay(1), sn.Linear(hidden, out, bias=False, weight_quant=wq(n2)), n2)
    with torch.no_grad():
        net[1].weight.uniform_(-1.0, 4.0)
        net[4].weight.uniform_(-1.0, 3.0)
    return net


def _x(n=6, c=16, T=40, p=0.25, seed=1):
    return (torch.rand(n, c, T, generator=torch.Generator().manual_seed(seed)) < p).float()


def _psp_loop(post, pre, refractory=2):
    """eij_step-style simulation of one (post, pre) pair: the trace of pre on a membrane reset
    (and held) at the given post spikes; sum of v at the post spikes."""
    u = v = 0.0
    ref, e = 0, 0.0
    for t in range(len(post)):
        u = A * u + C * pre[t]
        v = B * v + u
        if ref > 0:
            v, ref = 0.0, ref - 1
        if post[t]:
            e += v
            v, ref = 0.0, refractory
    return e


@pytest.mark.parametrize("q", [False, True])
def test_forward_identical(q):
    net = _net(q)
    x = _x()
    with torch.no_grad():
        ref = net(x)
    out = SpikeTrainLevel(net, "hm2bp", desired=8)(x)
    assert torch.equal(out, ref) and out.sum() > 0


def test_psp_pair_closed_form():
    T = 30
    pre, post = torch.zeros(1, 1, T), torch.zeros(1, 1, T)
    pre[0, 0, 3] = 1                         # arrives at step 3
    post[0, 0, 17] = 1
    e = spike_psp(post, pre, A, B, C, 2)[0, 0, 0].item()
    m = 17 - 3                                # discrete kernel: (b^(m+1) - a^(m+1)) / (1 - tau_s/tau_m)
    assert e == pytest.approx((B ** (m + 1) - A ** (m + 1)) / (1 - 8 / 64), rel=1e-12)
    assert e == pytest.approx(psp_kernel(A, B, C, T)[m], rel=1e-12)
    # an earlier post spike at 10 resets v; v held at 0 through step 12, integrates from 13:
    post[0, 0, 10] = 1
    e2 = spike_psp(post, pre, A, B, C, 2)[0, 0, 0].item()
    first = psp_kernel(A, B, C, T)[10 - 3]
    second = A ** (13 - 3) * psp_kernel(A, B, C, T)[17 - 13]
    assert e2 == pytest.approx(first + second, rel=1e-12)
    assert e2 == pytest.approx(_psp_loop(post[0, 0].tolist(), pre[0, 0].tolist()), rel=1e-12)


def test_psp_trains_match_step_simulation():
    g = torch.Generator().manual_seed(3)
    T = 50
    pre = (torch.rand(1, 5, T, generator=g) < 0.3).float()
    post = torch.zeros(1, 3, T)
    for i, times in enumerate([[4, 9, 20, 21, 40], [0, 3, 30], []]):
        post[0, i, [t for t in times]] = 1     # (21: one step after 20, inside the refractory hold)
    e = spike_psp(post, pre, A, B, C, 2, silent_value=0.1)
    for i in range(2):
        for j in range(5):
            assert e[0, i, j].item() == pytest.approx(_psp_loop(post[0, i].tolist(), pre[0, j].tolist()), abs=1e-12)
    assert torch.all(e[0, 2] == 0.1)          # silent post, active pre


def test_psp_identity_with_membrane():
    """Float dynamics: sum_j w_ij e_ij = sum of v at i's firing steps (exactly: the discrete kernel
    with reset truncation and refractory period is the neuron's own linear response)."""
    torch.manual_seed(0)
    n1 = sn.hm2(64.0, 8.0, threshold=5.0)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(30, 7, bias=False), n1)
    with torch.no_grad():
        net[1].weight.uniform_(-1, 3)
    x = _x(4, 30, 60, 0.1)
    s = net(x).detach()
    W = net[1].weight.detach().double()
    arrival = torch.cat([torch.zeros(4, 30, 1), x[..., :-1]], -1).double()
    lhs = torch.einsum("ij,nij->ni", W, spike_psp(s, arrival, A, B, C, 2))
    u = torch.zeros(4, 7, dtype=torch.float64)
    v, ref, vsum = torch.zeros_like(u), torch.zeros_like(u), torch.zeros_like(u)
    for t in range(60):                      # the hm2 neuron, float64
        u = A * u + C * (arrival[..., t] @ W.T)
        v = torch.where(ref > 0, torch.zeros_like(u), B * v + u)
        ref = (ref - 1).clamp(min=0)
        sp = v > 5.0
        assert torch.equal(sp.float(), s[..., t])
        vsum += torch.where(sp, v, torch.zeros_like(v))
        v, ref = torch.where(sp, torch.zeros_like(v), v), torch.where(sp, torch.full_like(ref, 2), ref)
    assert torch.allclose(lhs, vsum, rtol=0, atol=1e-9) and s.sum() > 20


def test_hm2bp_gradient_by_hand_one_layer():
    """One layer, no lateral: dL/dw_ij = (delta_i/nu) e_ij (1 + side_i), side_i = sum_j w_ij e_ij/(o_i nu)."""
    torch.manual_seed(0)
    n = sn.hm2(64.0, 8.0, threshold=5.0)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(10, 3, bias=False), n)
    with torch.no_grad():
        net[1].weight.uniform_(0.0, 4.0)
    x = _x(2, 10, 40, 0.3)
    y = torch.tensor([0, 2])
    w = SpikeTrainLevel(net, "hm2bp")
    out = w(x)
    loss = readouts.count_margin_mse(out, y, 6, 1, 0)
    loss.backward()
    s, W = out.detach(), net[1].weight.detach().double()
    o = s.sum(-1).double()
    target = torch.full_like(o, 1.0)
    target[torch.arange(2), y] = 6.0
    delta = (o - target) / 2                                    # d(mean over batch)/do
    arrival = torch.cat([torch.zeros(2, 10, 1), x[..., :-1]], -1)
    e = spike_psp(s, arrival, A, B, C, 2, silent_value=0.1)
    ratio = torch.where(o[..., None] > 0, e / o.clamp(min=1)[..., None], torch.full_like(e, 0.5))
    side = (W * ratio).sum(-1) / 5.0
    expect = torch.einsum("ni,nij->ij", delta / 5.0 * (1 + side), e)
    assert torch.allclose(net[1].weight.grad.double(), expect, rtol=1e-5, atol=1e-7)


def _hm2bp_dense(net, x, out, y, desired, lateral):
    """HM2-BP's two-layer gradients written out on the (N, I, J) S-PSP tensors (module doc):
    dL/dw_ij = (delta_i/nu) e_ij (1 + side_i) lat_i, delta_j = sum_i (delta_i/nu) w_ij e_ij/o_j
    (w_ij where a count is 0); synthetic output spikes every T // desired steps."""
    nu, N, T = 5.0, x.shape[0], x.shape[-1]
    W1, W2 = net[1].weight.detach().double(), net[4].weight.detach().double()
    arrival = torch.cat([torch.zeros(N, x.shape[1], 1), x[..., :-1]], -1).double()
    hidden = net[2](net[1](net[0](x))).detach().double()
    s2 = out.detach().double()
    o2 = s2.sum(-1)
    delta = torch.autograd.functional.jacobian(                         # dL/do

        lambda o: readouts.count_margin_mse(o[..., None] * torch.ones(1, 1, T) / T, y, desired, 1, 0), o2)
    train = torch.zeros(T, dtype=torch.float64)
    train[T // desired::T // desired] = 1.0
    post2 = torch.where(((o2 == 0) & (delta < 0))[..., None], train.expand_as(s2), s2)
    lat = SpikeTrainLevel(net, "hm2bp")._lateral_factor(net[5], s2, delta, nu, A, B, C) if lateral else 1.0
    grads, d = [], delta
    for W, post, pre, f in ((W2, post2, torch.cat([torch.zeros(N, 12, 1), hidden[..., :-1]], -1), lat),
                            (W1, hidden, arrival, 1.0)):
        o, oj = post.sum(-1), pre.sum(-1)
        e = spike_psp(post, pre, A, B, C, 2, silent_value=0.1)
        ratio = torch.where(o[..., None] > 0, e / o.clamp(min=1)[..., None], torch.full_like(e, 0.5))
        dn = d / nu
        grads.append(torch.einsum("ni,nij->ij", dn * (1 + (W * ratio).sum(-1) / nu) * f, e))
        on = (o[:, :, None] > 0) & (oj[:, None, :] > 0)
        d = torch.einsum("ni,nij->nj", dn, torch.where(on, W * e / oj.clamp(min=1)[:, None, :], W.expand_as(e)))
    return grads[1], grads[0]


@pytest.mark.parametrize("lateral", [False, True])
def test_hm2bp_two_layers_equal_the_dense_formulas(lateral):
    """Both layers' weight gradients (hidden: through delta_j) equal the formulas on the full
    (N, I, J) S-PSP tensors, synthetic spikes and the lateral factor included."""
    net = _net(False, lateral=lateral)
    with torch.no_grad():                                   # silent hidden neurons (and outputs: synthetic spikes)
        net[1].weight.uniform_(-4.0, 4.0)
        net[4].weight.uniform_(-1.0, 3.0)
    x, y = _x(8), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    out = SpikeTrainLevel(net, "hm2bp", desired=8)(x)
    readouts.count_margin_mse(out, y, 8, 1, 0).backward()
    g1, g2 = _hm2bp_dense(net, x, out, y, 8, lateral)
    hidden = net[2](net[1](net[0](x)))
    assert (hidden.sum(-1) == 0).any() and (hidden.sum(-1) > 0).any()
    assert (out.sum(-1) == 0).any() == lateral
    assert torch.allclose(net[1].weight.grad.double(), g1, rtol=1e-6, atol=1e-9)   # float32 grads
    assert torch.allclose(net[4].weight.grad.double(), g2, rtol=1e-6, atol=1e-9)
    assert g1.abs().sum() > 0 and g2.abs().sum() > 0


@pytest.mark.parametrize("floor", [None, 1.0])
def test_hm2bp_silent_inhibited_output_side_floor(floor):
    """An output neuron that should fire but is silent under inhibitory weights: its S-PSPs
    are taken at synthetic spikes, where v is strongly negative, so 1 + side_i < 0 and the
    reference's gradient step lowers its drive (it stays silent); side_floor=1 raises it."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(20, 1, bias=False), sn.hm2(64.0, 8.0, threshold=5.0))
    with torch.no_grad():
        net[1].weight.uniform_(-3.0, 0.5)
    x = _x(16, 20, 40, 0.3, seed=3)
    w = SpikeTrainLevel(net, "hm2bp", desired=8, side_floor=floor)
    out = w(x)
    assert out.sum() == 0                                       # silent on every sample
    (out.sum(-1) - 8.0).pow(2).mean().backward()                # it should fire 8 times
    W = net[1].weight
    drive_change = -(W.grad.double() * x.sum(-1).double().mean(0)).sum()      # one descent step's effect
    assert (drive_change > 0) == (floor is not None)


def test_hm2bp_step_raises_too_low_counts():
    """A gradient step on a too-low output count raises it (and lowers the loss)."""
    torch.manual_seed(0)
    n = sn.hm2(64.0, 8.0, threshold=5.0)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(20, 4, bias=False), n)
    with torch.no_grad():
        net[1].weight.uniform_(-0.5, 1.5)
    x = _x(64, 20, 60, 0.2, seed=5)
    y = torch.zeros(64, dtype=torch.long)                        # class 0 should fire 12 times
    w = SpikeTrainLevel(net, "hm2bp", desired=12)
    loss_fn = lambda s: readouts.count_margin_mse(s, y, 12, 1, 0)  # noqa: E731
    out = w(x)
    before, c0 = float(loss_fn(out)), out[:, 0].sum(-1).mean().item()
    loss_fn(out).backward()
    with torch.no_grad():
        net[1].weight -= 0.05 * net[1].weight.grad / net[1].weight.grad.abs().max()
        out2 = net(x)
    assert c0 < 12 and out2[:, 0].sum(-1).mean().item() > c0
    assert float(loss_fn(out2)) < before


def test_gradient_reaches_qat_weights_and_lateral_factor():
    net = _net(True)
    x = _x()
    w = SpikeTrainLevel(net, "hm2bp", desired=8)
    loss = readouts.count_margin_mse(w(x), torch.tensor([0, 1, 2, 3, 0, 1]), 8, 1, 1)
    loss.backward()
    for p in net.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_recurrent_solve_closed_form():
    """delta~^T = delta^T (diag(D) - A)^-1 (the coupled count equations of a recurrent layer)."""
    rng = np.random.default_rng(0)
    I = 5
    Aoff = rng.normal(0, 0.1, (I, I))
    np.fill_diagonal(Aoff, 0)
    D = 1 + rng.random(I) * 0.2
    delta = rng.normal(size=I)
    L = np.diag(D) - Aoff
    got = solve_transposed(torch.from_numpy(L)[None], torch.from_numpy(delta)[None])[0].numpy()
    assert np.allclose(got, delta @ np.linalg.inv(L))
    # with D = 1: do = (I - A)^-1 b; the back-propagated error is delta^T (I - A)^-1
    b = rng.normal(size=I)
    M = np.eye(I) - Aoff
    y = solve_transposed(torch.from_numpy(M)[None], torch.from_numpy(delta)[None])[0].numpy()
    assert np.isclose(y @ b, delta @ np.linalg.solve(M, b))


def test_strsbp_recurrent_gradients():
    g = torch.Generator().manual_seed(0)
    w_rec = (torch.rand(12, 12, generator=g) * 2 - 1) * 0.5
    for q in (False, True):
        net = _net(q, recurrent=w_rec)
        x = _x()
        with torch.no_grad():
            ref = net(x)
        for mode in ("solve", "diagonal"):
            net.zero_grad()
            w = SpikeTrainLevel(net, "strsbp", desired=8, reservoir_weights=mode)
            out = w(x)
            assert torch.equal(out, ref)
            readouts.count_margin_mse(out, torch.tensor([0, 1, 2, 3, 0, 1]), 8, 1, 1).backward()
            assert net[2].recurrent_weight.grad is not None and net[2].recurrent_weight.grad.abs().sum() > 0
            assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_refuses_unsupported():
    with pytest.raises(ValueError, match="trainable recurrent"):
        SpikeTrainLevel(_net(recurrent=torch.zeros(12, 12)), "hm2bp")
    with pytest.raises(ValueError, match="bias"):
        SpikeTrainLevel(torch.nn.Sequential(sn.Linear(4, 3), sn.hm2()), "hm2bp")
    with pytest.raises(ValueError, match="supports Delay"):
        SpikeTrainLevel(torch.nn.Sequential(sn.Flatten(), sn.Linear(4, 3, bias=False), sn.hm2()), "hm2bp")
    with pytest.raises(ValueError, match="reset='zero'"):
        SpikeTrainLevel(torch.nn.Sequential(sn.Linear(4, 3, bias=False), sn.LIF(reset="subtract")), "hm2bp")
    with pytest.raises(ValueError, match="method"):
        SpikeTrainLevel(_net(), "bptt")
    with pytest.raises(ValueError, match="end with a LIF"):
        SpikeTrainLevel(torch.nn.Sequential(sn.Linear(4, 3, bias=False), sn.hm2(), sn.Linear(3, 2, bias=False)))


def _one_layer_strsbp(**kw):
    torch.manual_seed(0)
    n = sn.hm2(64.0, 8.0, threshold=5.0)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(10, 3, bias=False), n)
    with torch.no_grad():
        net[1].weight.uniform_(-2.0, 4.0)
    x = _x(4, 10, 40, 0.3)
    x[:, 0] = 0                                   # a silent input
    y = torch.tensor([0, 2, 1, 0])
    w = SpikeTrainLevel(net, "strsbp", **kw)
    w._stats = []
    out = w(x)
    readouts.count_margin_mse(out, y, 8, 1, 0).backward()
    s, W = out.detach(), net[1].weight.detach().double()
    o = s.sum(-1).double()
    target = torch.full_like(o, 1.0)
    target[torch.arange(4), y] = 8.0
    delta = (o - target) / 4
    arrival = torch.cat([torch.zeros(4, 10, 1), x[..., :-1]], -1)
    oj = arrival.sum(-1).double()
    e = spike_psp(s, arrival, A, B, C, 2, silent_value=0.1)
    gp = torch.from_numpy(effect_slope(A, B, C, 2, 40))
    # the reference reads the effect-ratio table at max(o_j, 1) (a silent input counts)
    D = 1 - (W * oj.clamp(min=1)[:, None, :]).sum(-1) * gp[o.long()] / 5.0
    return net[1].weight.grad.double(), delta, e, D, w._stats[0]


def test_strsbp_gradient_by_hand_reference_denominator():
    """denominator_floor=None: the reference's dL/dw_ij = (delta_i/nu) e_ij / D_i,
    D_i = 1 - sum_j w_ij phi(o_j, o_i)/nu (|D| >= 1e-4 only; may be negative)."""
    grad, delta, e, D, used = _one_layer_strsbp(denominator_floor=None)
    D = torch.where(D.abs() < 1e-4, torch.copysign(torch.full_like(D, 1e-4), D), D)
    assert torch.allclose(used, D)
    expect = torch.einsum("ni,nij->ij", delta / 5.0 / D, e)
    assert torch.allclose(grad, expect, rtol=1e-5, atol=1e-7)


def test_strsbp_denominator_floor():
    """The default guard: D >= 0.5 (a D near 0 or negative would inflate or flip the gradient)."""
    grad, delta, e, D, used = _one_layer_strsbp()
    assert torch.allclose(used, D.clamp(min=0.5)) and used.min() >= 0.5
    expect = torch.einsum("ni,nij->ij", delta / 5.0 / D.clamp(min=0.5), e)
    assert torch.allclose(grad, expect, rtol=1e-5, atol=1e-7)
    grad2, *_ = _one_layer_strsbp(denominator_floor=2.0)
    assert not torch.allclose(grad, grad2)


def test_strsbp_denominator_floor_bounds_the_factor():
    """On the recurrent example network (trainable reservoir, lateral output), every D of both
    layers is >= the floor; the reference guard leaves some near 0 or negative."""
    g = torch.Generator().manual_seed(0)
    w_rec = (torch.rand(12, 12, generator=g) * 2 - 1) * 0.5
    net = _net(False, recurrent=w_rec)
    x, y = _x(), torch.tensor([0, 1, 2, 3, 0, 1])
    for floor in (None, 0.5):
        w = SpikeTrainLevel(net, "strsbp", desired=8, denominator_floor=floor)
        w._stats = []
        readouts.count_margin_mse(w(x), y, 8, 1, 1).backward()
        assert len(w._stats) == 2 and all(torch.isfinite(d).all() for d in w._stats)
        if floor is not None:
            assert all(d.min() >= floor for d in w._stats)


def test_strsbp_psp_effect_ratio_and_options():
    g = torch.Generator().manual_seed(0)
    w_rec = (torch.rand(12, 12, generator=g) * 2 - 1) * 0.5
    net = _net(True, recurrent=w_rec)
    w = SpikeTrainLevel(net, "strsbp", desired=8, effect_ratio="psp")
    readouts.count_margin_mse(w(_x()), torch.tensor([0, 1, 2, 3, 0, 1]), 8, 1, 1).backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in net.parameters())
    assert np.allclose(effect_mean(A, B, C, 2, 40)[0], 0.0) and effect_mean(A, B, C, 2, 40)[1] > 0
    with pytest.raises(ValueError, match="effect_ratio"):
        SpikeTrainLevel(net, "strsbp", effect_ratio="poly")
    with pytest.raises(ValueError, match="denominator_floor"):
        SpikeTrainLevel(net, "strsbp", denominator_floor=0.0)
