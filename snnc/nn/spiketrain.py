"""Spike-train-level gradients of HM2-BP (Jin, Zhang & Li 2018) and ST-RSBP (Zhang & Li 2019).

``SpikeTrainLevel(net, method="hm2bp" | "strsbp")`` wraps a ``Sequential`` of ``Delay`` /
``Linear`` / ``LIF`` layers. Its forward pass *is* ``net``'s forward (the same modules run
unchanged, so the spikes are identical, float or QAT); its backward pass does not use a surrogate
or BPTT: it computes the weight gradients from the recorded spike trains, as the reference code
does (``jinyyy666/mm-bp-snn``, ``stonezwr/ST-RSBP``), batch-vectorised.

S-PSP (``spike_psp``)
    ``e_{i|j} = sum_f sum_g eps~(t_i^f, a_j^g)``: the membrane potential that the input train j
    (spike *arrival* steps ``a``, i.e. after the synaptic ``Delay``) leaves in neuron i at i's
    firing steps ``t_i^f``, truncated by i's resets. We use the *discrete* kernel of the actual
    neuron (the dynamics of ``snnc.nn.LIF``), not the continuous formula of the papers::

        kappa[m] = c * sum_{k=0..m} b^(m-k) a^k = c (b^(m+1) - a^(m+1)) / (b - a),  m = t - arrival >= 0

    with ``a = 1 - current_decay``, ``b = 1 - voltage_decay``, ``c = input_scale`` (HM2: a = 7/8,
    b = 63/64, c = 1/8; the continuous kernel is (e^(-m/tau_m) - e^(-m/tau_s)) / (1 - tau_s/tau_m)).
    Reset truncation with the refractory period R: after i's previous spike at ``t0``, v is 0
    up to step ``t0 + R`` and integrates again from ``rho = t0 + R + 1``; the synaptic current
    keeps flowing, so an input that arrived at ``a < rho`` contributes
    ``a^(rho - a) * kappa[t - rho]`` (its current at the restart, then the kernel), one that
    arrived at ``a >= rho`` contributes ``kappa[t - a]``. This makes the S-PSPs exact for float
    dynamics: ``sum_j w_ij e_{i|j} (+ recurrent terms) = sum_f v_i[t_f]`` (the membrane
    potentials at the firing steps, each just above V_th). (Quantized dynamics add Loihi's
    truncations, which the kernel ignores.) The reference code uses the continuous formula with
    the input shifted by T_REFRAC and a 4 tau_m window (T <= 4 tau_m here, so no window); the
    ST-RSBP effect-ratio generator (``eij_step.m``) uses this same step recursion.
    As in the reference: a silent post neuron with an active input gets ``e = 0.1``.

HM2-BP (``method="hm2bp"``, ``mm-bp-snn`` ``layers/Spiking.cu``), per layer, top down, with
``delta_i = dL/do_i`` (o: spike counts) and nu = V_th of the layer::

    side_i  = sum_j w_ij r_ij / nu,   r_ij = e_ij / o_i  (0.5 if o_i = 0)         "side effect"
    dL/dw_ij = (delta_i / nu) e_ij (1 + side_i) lat_i
    delta_j (layer below) = sum_i (delta_i / nu) w_ij e_ij / o_j   (w_ij if o_i or o_j is 0)

``lat_i`` (output layer with lateral connections only) = 1 / (1 - d_i sum_{l != i} ER_il d_l ER_li
w_li w_il) with ER_il = e_{l|i} / o_i (1 if a count is 0) and d = 1/nu for firing (or target)
neurons, else 0: the mutual-inhibition loop (reference: w0^2 with the uniform strength w0).

ST-RSBP (``method="strsbp"``, ``ST-RSBP`` ``layers/Spiking.cu`` and ``layers/Reservoir.cu``):
the count model ``nu o_i = sum_j w_ij e_ij + sum_k w^rec_ik e_ik`` is differentiated with
*effect ratios*: de_ij/do_j = e_ij / o_j, and de_ij/do_i = phi(o_j, o_i) (see ``effect_slope``).
Feed-forward layer: ``D_i = 1 - sum_j w_ij phi_ij / nu`` (phi = 0 for a silent neuron; a
silent *input* j counts as o_j = 1, as the reference reads its table at ``max(i_cnt, 1)``),
``dL/dw_ij = (delta_i/nu) e_ij lat_i / D_i``, ``delta_j = sum_i (delta_i/nu) w_ij e_ij / (o_j D_i)``
(0 if a count is 0). Recurrent layer (trainable ``W_rec``): the coupled count equations
``L do = (e_ij / nu) d w_ij + R do_in / nu`` with
``L = diag(D) - [w^rec_ik e^rec_ik / (o_k nu)]_{k != i}``, ``D_i = 1 - sum_j w_ij phi_ij / nu
- sum_k w^rec_ik phi_ik / nu`` (|D| >= 1e-4 as in the reference), ``R_ij = w_ij e_ij / o_j``, are
solved per sample: ``delta~ = L^-T delta / nu`` (one batched ``torch.linalg.solve``; the
reference solves ``L X = R`` with cuSOLVER QR, ``Reservoir::linearSolverQR``, which gives the same
``delta_in = delta~^T R``); ``dL/dW = delta~ e^T``, ``dL/dW_rec = delta~ e_rec^T``. The reference
uses ``delta_i / (nu D_i)`` (the diagonal of L only) for the weight gradients:
``reservoir_weights="diagonal"`` does that; the default ``"solve"`` uses the full solve, the
gradient of the count model.

Denominator guard (``denominator_floor``, a deviation from the reference, default 0.5): D is a
difference of large, noisy terms (``sum_j w_ij o_j`` is the *net* drive, and the per-sample
S-PSPs scatter around the random-timing mean ``o_j g(o_i)`` the effect ratio assumes). Its
expectation under the model, ``1 - o g'(o)/g(o)``, lies in [0.6, 3.4] for T = 48 ([0.4, 1.9]
for T = 400, o <= 50), but per sample D reaches 0 or goes negative (digits, T = 48: ~3 % of the output D
< 0.1, min -0.95). The reference only keeps ``|D| >= 1e-4``, so a few samples get factors up
to 1e4 or a flipped sign and dominate the batch gradient (output layer at initialisation:
cosine with the BPTT-surrogate gradient 0.18 without the silent-input rule above, 0.55 with it,
0.79 with ``D >= 0.5``, 0.96 for the S-PSP term alone). ``D >= floor`` bounds
the amplification by 1/floor; ``denominator_floor=None`` is the reference. A negative D is an
unstable fixed point of the count equation, not a physical response.

Side-effect floor (``side_floor``, off by default = the reference): for a firing neuron the
S-PSP identity gives ``sum_j w_ij e_ij = sum_f v_i[t_f]``, each v just above V_th, so
``side_i`` is about 1 and ``1 + side_i`` about 2. For an output neuron that is silent but should
fire, the S-PSPs are taken at the synthetic spikes, where v is whatever the (often strongly
inhibited) membrane holds: ``side_i = sum_f v_i[t_f] / (o_i nu)`` can be far below -1 (MNIST
784-800-10 at T = 30: down to -584), which flips the sign of that neuron's weight gradient and
keeps it silent for good (two of ten output neurons never fired after 10 epochs).
``side_floor=1`` bounds the factor below by the value it has without a side effect.

Shared details kept from the reference: the output error is the count error (here: whatever
``dL/do`` the loss gives: ``count_margin_mse`` gives ``(o - y)`` with the margin, scaled by the
batch mean); a silent output neuron that should fire (``dL/do < 0``) gets synthetic spikes every
``T // desired`` steps for its S-PSPs (``g_modifySpikes``; needs ``desired``); the lateral factor
uses the real output spikes.

Simplifications relative to the reference code (all documented in docs/methods.md):

* ``phi(o_j, o_i) = de_ij/do_i``: the reference loads a degree-4 polynomial fitted (per o_j) to
  Monte-Carlo means of ``e_ij`` over random spike trains at T = 400/800 (``eij_function.m``).
  We compute the same kind of table for the network's own T, kernel and refractory period at
  construction (``effect_slope``): with uniformly random pre spike times the mean S-PSP factorises
  exactly, ``E[e_ij] = o_j g(o_i)``, so ``phi = o_j g'(o_i)`` with ``g`` estimated from random
  refractory-spaced post trains (fixed seed) and fitted with a degree-4 polynomial as the
  reference does.
* Mini-batches: the per-sample quantities are computed per sample (the reference uses batch 1)
  and the weight gradients are summed over the batch; ``dL/do`` already carries the loss's
  ``1/N``, so the gradient matches the loss's batch mean.
* ``dL/do`` is taken from the gradient w.r.t. the output spikes ``(N, C, T)``: for a loss on the
  counts it is the same at every step; we use its mean over T (exactly ``dL/do`` then).
* Not included: the weight regulariser (LAMBDA_REG / BETA_REG), the weight limit, the per-sample
  boost, ``lr / sqrt(epoch)`` (the example's Adam + cosine schedule are used), biases.

The gradient reaches the ``Linear`` weights through ``effective_weight()`` (the QAT hook is
straight-through), the recurrent weight through ``effective_recurrent_weight()``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .layers import Delay, Linear
from .neurons import LIF

__all__ = ["SpikeTrainLevel", "spike_psp", "psp_kernel", "effect_slope", "effect_mean"]


# ------------------------------------------------------------------------------------ kernel
def _decays(lif: LIF):
    """(a, b, c): current keep factor, voltage keep factor, input scale of the neuron's dynamics."""
    if lif.quantize:
        return (4096 - lif.decay_u_int) / 4096.0, (4096 - lif.decay_v_int) / 4096.0, lif.input_scale
    return 1.0 - lif.current_decay, 1.0 - lif.voltage_decay, lif.input_scale


def psp_kernel(a: float, b: float, c: float, steps: int) -> np.ndarray:
    """``kappa[m]``, m = 0..steps-1: the membrane potential m steps after an input of weight 1
    arrived (step recursion of the CUBA neuron: u = a u + c x; v = b v + u; v counted at the
    arrival step as m = 0)."""
    k = np.zeros(steps)
    u = v = 0.0
    for m in range(steps):
        u = a * u + (c if m == 0 else 0.0)
        v = b * v + u
        k[m] = v
    return k


def _psp_table(a, b, c, refractory, T):
    """F[t, rho, A]: contribution at post spike step t of an input arriving at step A, when the
    membrane integrates again from step rho (0: no earlier post spike)."""
    kap = psp_kernel(a, b, c, T + 1)
    t = np.arange(T)[:, None, None]
    rho = np.arange(T + 1)[None, :, None]
    A = np.arange(T)[None, None, :]
    start = np.maximum(A, rho)
    ok = (A <= t) & (start <= t)
    val = np.where(ok, (a ** np.clip(start - A, 0, None)) * kap[np.clip(t - start, 0, T)], 0.0)
    return torch.from_numpy(val)


def _psp_matrix(post, a, b, c, refractory, table=None):
    """M[n, i, A] = sum_f F[t_i^f, rho_i^f, A]: e_{i|j} = sum_A M[n, i, A] x_j[n, A]."""
    N, I, T = post.shape
    F = _psp_table(a, b, c, refractory, T) if table is None else table
    times = torch.arange(T).expand(N, I, T)
    st = torch.where(post > 0, times, torch.full_like(times, -1))
    last = torch.cummax(st, dim=-1).values                        # last spike <= t
    prev = torch.cat([torch.full((N, I, 1), -1, dtype=last.dtype), last[..., :-1]], -1)   # < t
    rho = torch.where(prev >= 0, prev + refractory + 1, torch.zeros_like(prev)).clamp(max=T)
    n, i, t = torch.nonzero(post > 0, as_tuple=True)
    M = torch.zeros(N, I, T, dtype=torch.float64)
    if len(n):
        rows = F[t, rho[n, i, t]] * post[n, i, t].to(torch.float64)[:, None]
        M.index_put_((n, i), rows, accumulate=True)
    return M


def spike_psp(post: torch.Tensor, pre: torch.Tensor, a: float, b: float, c: float, refractory: int,
              silent_value: Optional[float] = None) -> torch.Tensor:
    """S-PSPs ``e[n, i, j]`` of the input trains ``pre`` (N, J, T), given as *arrival* steps,
    on the neurons with spike trains ``post`` (N, I, T) (discrete kernel, reset truncation,
    refractory; see the module doc). ``silent_value``: e for a silent post with an active pre
    (the reference's 0.1)."""
    post = torch.as_tensor(post).detach().to(torch.float64)
    pre = torch.as_tensor(pre).detach().to(torch.float64)
    M = _psp_matrix(post, a, b, c, int(refractory))
    e = torch.einsum("nia,nja->nij", M, pre)
    if silent_value is not None:
        silent = (post.sum(-1) == 0)[:, :, None] & (pre.sum(-1) > 0)[:, None, :]
        e = torch.where(silent, torch.full_like(e, float(silent_value)), e)
    return e


# ------------------------------------------------------------------------------ effect ratio
_FITS = {}


def _effect_fit(a, b, c, refractory, T, samples=2000, degree=4, seed=0):
    """(g, gp): the fitted mean S-PSP per pre spike ``g(o)`` and its slope ``g'(o)``, o = 0..Cmax
    (index 0: 0); see ``effect_slope``."""
    key = (round(a, 12), round(b, 12), round(c, 12), int(refractory), int(T), samples, degree, seed)
    if key in _FITS:
        return _FITS[key]
    R = int(refractory)
    cmax = (T + R) // (R + 1)
    rng = np.random.default_rng(seed)
    posts = np.zeros((cmax, samples, T))
    for o in range(1, cmax + 1):
        free = T - (o - 1) * R                                   # slots for o spikes R apart
        u = np.sort(np.argsort(rng.random((samples, free)), axis=1)[:, :o], axis=1)
        times = u + np.arange(o) * R
        np.put_along_axis(posts[o - 1], times, 1.0, axis=1)
    F = _psp_table(a, b, c, R, T)
    M = _psp_matrix(torch.from_numpy(posts.reshape(cmax * samples, 1, T)), a, b, c, R, F)
    g = M.reshape(cmax, samples, T).mean(1).sum(-1).numpy() / T   # E[e] per pre spike
    x = np.arange(1, cmax + 1, dtype=float)
    p = np.polyfit(x, g, min(degree, cmax - 1)) if cmax > 1 else np.array([g[0]])
    dp = np.polyder(p) if len(p) > 1 else np.array([0.0])
    gfit = np.concatenate([[0.0], np.polyval(p, x)])
    gp = np.concatenate([[0.0], np.polyval(dp, x)])
    _FITS[key] = (gfit, gp)
    return _FITS[key]


def effect_slope(a: float, b: float, c: float, refractory: int, T: int, samples: int = 2000,
                 degree: int = 4, seed: int = 0) -> np.ndarray:
    """``gp[o]`` = g'(o), o = 0..Cmax (Cmax = max spike count in T steps with the refractory
    period): the ST-RSBP effect ratio ``de_ij/do_i = o_j g'(o_i)``. ``g(o) = E[e_ij] / o_j`` for
    random post trains of o spikes (refractory-spaced, uniform) and uniformly random pre spikes,
    a Monte-Carlo mean (``samples`` trains per count, fixed seed) fitted with a degree-4
    polynomial in o (as ``eij_function.m`` does for the reference's table)."""
    return _effect_fit(a, b, c, refractory, T, samples, degree, seed)[1]


def effect_mean(a: float, b: float, c: float, refractory: int, T: int, samples: int = 2000,
                degree: int = 4, seed: int = 0) -> np.ndarray:
    """``g[o]``, the fitted polynomial itself (mean S-PSP per pre spike of a post train with o
    spikes), o = 0..Cmax; ``g'/g`` is the effect ratio per unit S-PSP of
    ``effect_ratio="psp"``."""
    return _effect_fit(a, b, c, refractory, T, samples, degree, seed)[0]


# --------------------------------------------------------------------------------- wrapper
def _shift(x, steps):
    if steps == 0:
        return x
    pad = torch.zeros(x.shape[:-1] + (steps,), dtype=x.dtype)
    return torch.cat([pad, x[..., :x.shape[-1] - steps]], -1)


class _Group:
    def __init__(self):
        self.modules, self.linear, self.lif, self.delay = [], None, None, 0


class _SpikeTrainFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, owner, out, *weights):
        ctx.owner = owner
        ctx.record = owner._record
        ctx.weights = [w.detach() for w in weights]
        return out.clone()

    @staticmethod
    def backward(ctx, grad_out):
        grads = ctx.owner._backward(grad_out, ctx.record, ctx.weights)
        return (None, None) + tuple(grads)


class SpikeTrainLevel(torch.nn.Module):
    """Train ``net`` (a ``Sequential`` of ``Delay`` / ``Linear`` / ``LIF``, all the LIFs with
    ``reset="zero"``, no bias) with HM2-BP's (``method="hm2bp"``) or ST-RSBP's
    (``"strsbp"``) spike-train-level gradient; see the module doc. The forward pass returns
    ``net``'s output spikes (identical); the parameters are ``net``'s. Input (N, C, T).

    ``desired``: spike count of the synthetic train given to a silent output neuron that should
    fire (the reference uses the desired level); None: no synthetic spikes.
    ``silent_effect``: e for a silent post neuron with an active input (0.1).
    ``reservoir_weights``: ``"solve"`` (default: delta~ = L^-T delta) or ``"diagonal"``
    (the reference: delta / D) for the weight gradients of a recurrent layer (ST-RSBP).
    ``min_denominator``: the reference's guard ``|D| >= 1e-4`` (sign kept).
    ``denominator_floor``: ST-RSBP's ``D >= floor`` after that (default 0.5; None: the
    reference, D may be ~0 or negative; see the module doc).
    ``side_floor``: HM2-BP's factor ``1 + side_i`` is kept >= this (None: the reference, no
    floor; see the module doc's "side-effect floor").
    ``effect_ratio``: ``"count"`` (the reference: phi_ij = max(o_j, 1) g'(o_i)) or ``"psp"``
    (phi_ij = e_ij g'(o_i) / g(o_i): the same model with the measured S-PSP in place of its
    random-timing mean o_j g(o_i); experimental, not better on digits).
    """

    def __init__(self, net: torch.nn.Module, method: str = "hm2bp", desired: Optional[int] = None,
                 silent_effect: float = 0.1, reservoir_weights: str = "solve",
                 min_denominator: float = 1e-4, effect_ratio: str = "count",
                 denominator_floor: Optional[float] = 0.5, side_floor: Optional[float] = None):
        super().__init__()
        if method not in ("hm2bp", "strsbp"):
            raise ValueError(f"method must be 'hm2bp' or 'strsbp', got {method!r}")
        if reservoir_weights not in ("solve", "diagonal"):
            raise ValueError(f"reservoir_weights must be 'solve' or 'diagonal', got {reservoir_weights!r}")
        if effect_ratio not in ("count", "psp"):
            raise ValueError(f"effect_ratio must be 'count' or 'psp', got {effect_ratio!r}")
        if denominator_floor is not None and not denominator_floor > 0:
            raise ValueError(f"denominator_floor must be None or > 0, got {denominator_floor!r}")
        self.effect_ratio = effect_ratio
        self.side_floor = None if side_floor is None else float(side_floor)
        self.denominator_floor = None if denominator_floor is None else float(denominator_floor)
        self.net, self.method, self.desired = net, method, desired
        self.silent_effect, self.reservoir_weights = float(silent_effect), reservoir_weights
        self.min_denominator = float(min_denominator)
        self.groups = self._parse(net)
        self._record = None
        self._stats = None          # a list: the denominators D of every backward are appended (diagnostics)

    # structure ---------------------------------------------------------------------------
    def _parse(self, net):
        mods = list(net.children()) if isinstance(net, torch.nn.Sequential) else None
        if not mods:
            raise ValueError("SpikeTrainLevel needs a torch.nn.Sequential of snnc.nn Delay/Linear/LIF layers")
        groups, g = [], _Group()
        for m in mods:
            g.modules.append(m)
            if isinstance(m, Delay):
                g.delay += m.steps
            elif isinstance(m, Linear):
                if g.linear is not None:
                    raise ValueError("SpikeTrainLevel: two Linear layers without a LIF between them")
                if m.bias is not None:
                    raise ValueError("SpikeTrainLevel: Linear layers must have bias=False "
                                     "(no spike-train-level bias gradient)")
                g.linear = m
            elif isinstance(m, LIF):
                if g.linear is None:
                    raise ValueError("SpikeTrainLevel: every LIF needs a Linear synapse before it")
                if m.reset != "zero":
                    raise ValueError("SpikeTrainLevel: the S-PSP reset truncation needs reset='zero'")
                g.lif = m
                groups.append(g)
                g = _Group()
            else:
                raise ValueError(f"SpikeTrainLevel supports Delay, Linear and LIF layers only, got "
                                 f"{type(m).__name__} (HM2-BP / ST-RSBP are fully connected)")
        if g.modules:
            raise ValueError("SpikeTrainLevel: the network must end with a LIF layer")
        for k, g in enumerate(groups):
            kind = g.lif.recurrent_kind
            last = k == len(groups) - 1
            if kind == "lateral" and not last:
                raise ValueError("SpikeTrainLevel: lateral inhibition is supported on the output layer only")
            if kind == "trainable":
                if self.method != "strsbp":
                    raise ValueError("a trainable recurrent layer needs method='strsbp' (HM2-BP is feed-forward)")
                if last:
                    raise ValueError("SpikeTrainLevel: the output layer cannot be a trainable recurrent layer")
        return groups

    # forward -----------------------------------------------------------------------------
    def forward(self, x):
        if x.dim() != 3:
            raise ValueError("SpikeTrainLevel takes (N, C, T) input")
        if not torch.is_grad_enabled():
            return self.net(x)
        record = []
        h = x
        with torch.no_grad():
            for g in self.groups:
                arrival = _shift(h.detach(), g.delay)        # Delays commute with Linear
                for m in g.modules:
                    h = m(h)
                record.append(dict(arrival=arrival.to(torch.float64), post=h.detach().to(torch.float64)))
        self._record = record
        weights = []
        for g in self.groups:
            weights.append(g.linear.effective_weight())
            if g.lif.recurrent_kind == "trainable":
                weights.append(g.lif.effective_recurrent_weight())
        return _SpikeTrainFn.apply(self, h, *weights)

    # backward ----------------------------------------------------------------------------
    def _modify(self, post, delta):
        """Synthetic spikes for silent output neurons that should fire (reference g_modifySpikes)."""
        if not self.desired:
            return post
        T = post.shape[-1]
        interval = max(1, T // int(self.desired))
        train = torch.zeros(T, dtype=post.dtype)
        train[interval::interval] = 1.0
        want = (post.sum(-1) == 0) & (delta < 0)
        return torch.where(want[..., None], train.expand_as(post), post)

    def _lateral_factor(self, lif, post, delta, nu, a, b, c):
        w = lif.effective_recurrent_weight().detach().to(torch.float64)
        o = post.sum(-1)
        e = spike_psp(post, _shift(post, 1), a, b, c, lif.refractory)   # e[n, l, j]: j -> l
        zero = (o[:, None, :] == 0) | (o[:, :, None] == 0)
        fill = 1.0 if self.method == "hm2bp" else 0.0
        er = torch.where(zero, torch.full_like(e, fill), e / o.clamp(min=1)[:, None, :])   # ER[l, j] = e_{l|j}/o_j
        d = ((o > 0) | (delta < 0)).to(torch.float64) / nu
        ww = w * w.T                                                     # w_lj w_jl
        ww = ww - torch.diag(torch.diag(ww))
        # S_j = d_j sum_l ER[l, j] d_l ER[j, l] w_lj w_jl
        s = d * torch.einsum("nlj,nl,njl,lj->nj", er, d, er, ww)
        return 1.0 / (1.0 - s)

    def _backward(self, grad_out, record, weights):
        delta = grad_out.detach().to(torch.float64).mean(-1)      # dL/do (N, C)
        grads = [None] * len(weights)
        widx, k = [], 0
        for g in self.groups:
            widx.append(k)
            k += 2 if g.lif.recurrent_kind == "trainable" else 1
        for li in range(len(self.groups) - 1, -1, -1):
            g, rec = self.groups[li], record[li]
            lif = g.lif
            a, b, c = _decays(lif)
            R, nu = lif.refractory, float(lif.threshold)
            post, x = rec["post"], rec["arrival"]
            W = weights[widx[li]].to(torch.float64)
            last = li == len(self.groups) - 1
            lat = None
            if last and lif.recurrent_kind == "lateral":
                lat = self._lateral_factor(lif, post, delta, nu, a, b, c)
            if last:
                post = self._modify(post, delta)
            dn = delta / nu
            if self.method == "hm2bp":
                grads[widx[li]], delta = _hm2bp_layer(post, x, W, dn, lat, nu, (a, b, c, R), self.silent_effect,
                                                      below=li > 0, side_floor=self.side_floor)
                continue
            o, oj = post.sum(-1), x.sum(-1)
            e = spike_psp(post, x, a, b, c, R, self.silent_effect)
            pair_on = (o[:, :, None] > 0) & (oj[:, None, :] > 0)
            # ST-RSBP
            T = post.shape[-1]
            gfit, gp = (torch.from_numpy(v) for v in _effect_fit(a, b, c, R, T))
            cmax = len(gp) - 1
            recurrent = lif.recurrent_kind == "trainable"
            o_eff = (o.clamp(1, cmax) if recurrent else o.clamp(0, cmax)).long()
            if self.effect_ratio == "count":
                phi_i = gp[o_eff]                                     # g'(o_i) (0 for silent, feed-forward)
                sum_in = (W * oj.clamp(min=1)[:, None, :]).sum(-1) * phi_i / nu
            else:
                phi_i = torch.where(o_eff > 0, gp[o_eff] / gfit[o_eff].clamp(min=1e-12), torch.zeros_like(gp[o_eff]))
                sum_in = (W * e).sum(-1) * phi_i / nu
            R_ = torch.where(pair_on, W * e / oj.clamp(min=1)[:, None, :], torch.zeros_like(e))
            if not recurrent:
                D = self._denominator(1.0 - sum_in)
                f = 1.0 / D if lat is None else lat / D
                grads[widx[li]] = torch.einsum("ni,nij->ij", dn * f, e)
                if li > 0:
                    delta = torch.einsum("ni,nij->nj", dn / D, R_)
                continue
            Wr = weights[widx[li] + 1].to(torch.float64)
            xr = _shift(rec["post"], 1)
            er = spike_psp(rec["post"], xr, a, b, c, R, self.silent_effect)
            orr = xr.sum(-1)
            if self.effect_ratio == "count":
                sum_rec = (Wr * orr.clamp(min=1)[:, None, :]).sum(-1) * phi_i / nu
            else:
                sum_rec = (Wr * er).sum(-1) * phi_i / nu
            D = self._denominator(1.0 - sum_in - sum_rec)
            rec_on = (o[:, :, None] > 0) & (orr[:, None, :] > 0)
            A = torch.where(rec_on, Wr * er / orr.clamp(min=1)[:, None, :], torch.zeros_like(er)) / nu
            eye = torch.eye(A.shape[-1], dtype=A.dtype)
            L = torch.diag_embed(D) + (-A) * (1 - eye)
            dt = solve_transposed(L, dn)
            dw = dt if self.reservoir_weights == "solve" else dn / D
            grads[widx[li]] = torch.einsum("ni,nij->ij", dw, e)
            grads[widx[li] + 1] = torch.einsum("ni,nik->ik", dw, er)
            if li > 0:
                delta = torch.einsum("ni,nij->nj", dt, R_)
        return [gr.to(w.dtype) if gr is not None else None for gr, w in zip(grads, weights)]

    def _denominator(self, D):
        """The reference's guard (|D| >= min_denominator, sign kept), then, with
        ``denominator_floor``, D >= floor."""
        m = self.min_denominator
        D = torch.where(D.abs() < m, torch.where(D >= 0, torch.full_like(D, m), torch.full_like(D, -m)), D)
        if self.denominator_floor is not None:
            D = D.clamp(min=self.denominator_floor)
        if self._stats is not None:
            self._stats.append(D.detach())
        return D

    def extra_repr(self):
        return f"method={self.method}, desired={self.desired}, reservoir_weights={self.reservoir_weights}"


def _hm2bp_layer(post, x, W, dn, lat, nu, dynamics, silent_effect, below, side_floor=None):
    """One HM2-BP layer (module doc): ``dL/dW`` (I, J) and, if ``below``, the error ``delta_j``
    (N, J) of the layer below. ``post`` (N, I, T), ``x`` (N, J, T) arrival trains, ``dn`` =
    delta / nu (N, I), ``lat`` the lateral factor (N, I) or None; ``side_floor``: 1 + side_i
    kept >= it (None: no floor).

    The S-PSPs ``e = M x^T + s [o_i = 0][o_j > 0]`` (M: ``_psp_matrix``, s: ``silent_effect``)
    are never formed as an (N, I, J) tensor: every sum over i or j of e is taken through M and
    x (two GEMMs over N T), the silent-post term as a rank-one product."""
    a, b, c, R = dynamics
    M = _psp_matrix(post, a, b, c, R)                                  # (N, I, T)
    o, oj = post.sum(-1), x.sum(-1)
    fire, silent, active = (o > 0).double(), (o == 0).double(), (oj > 0).double()
    we = (M * torch.einsum("ij,nja->nia", W, x)).sum(-1)               # sum_j W_ij e_ij (firing i)
    side = torch.where(o > 0, we / o.clamp(min=1), 0.5 * W.sum(-1).expand_as(o)) / nu
    f = 1.0 + side if side_floor is None else (1.0 + side).clamp(min=side_floor)
    g = dn * f * (1.0 if lat is None else lat)
    N, I, T = M.shape
    grad = ((g[..., None] * M).permute(1, 0, 2).reshape(I, N * T) @ x.permute(0, 2, 1).reshape(N * T, -1)
            + silent_effect * (g * silent).T @ active)
    if not below:
        return grad, None
    # delta_j = sum_i dn_i (W_ij e_ij / o_j if o_i, o_j > 0 else W_ij)
    p = (torch.einsum("ij,nia->nja", W, (dn * fire)[..., None] * M) * x).sum(-1)
    delta = torch.where(oj > 0, p / oj.clamp(min=1) + (dn * silent) @ W, dn @ W)
    return grad, delta


def solve_transposed(L: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``y`` with ``L^T y = d`` per sample (L: (N, I, I), d: (N, I)), i.e. ``y^T = d^T L^-1``: the
    error of a recurrent layer through its coupled count equations (ST-RSBP)."""
    return torch.linalg.solve(L.transpose(-1, -2), d.unsqueeze(-1)).squeeze(-1)
