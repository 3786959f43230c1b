"""CUBA population updates of the numpy engines (the step plan and the time-batched plan).

``cuba_params(net, names, fixed)`` reads the per-neuron parameters of CUBA populations of a
lowered network (``compiler.lower``), concatenated in C order: the update rule (``reset_kind``),
decay factors, bias, threshold, refractory period, read-out scale and reset schedule. A
``CubaGroup`` holds their state ``(N, total)`` in float64 buffers and ``update(t)`` advances it
in place. Fixed point (Loihi integers held in float64, exact: |u|, |v| < 2**25)::

    u = trunc(u * (4096 - decay_u) / 4096) + a          a = a_in << 6; u wraps at 24 bits
    v = trunc(v * (4096 - decay_v) / 4096) + u + bias   v saturates at +-(2**23 - 1)
    s = v > vth << 6                                     then the reset (CubaLIF docstring)

Float (Lava ``floating_pt``): ``u = u * (1 - du) + a``, ``v = v * (1 - dv) + u + bias``,
``s = v > vth``. A CubaLI read-out outputs ``v / S`` (fixed) or ``v`` (float).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..compiler.fixed import U_WRAP, V_MAX
from ..compiler.ir import CubaLI
from ..errors import SnncError

HALF = float(U_WRAP >> 1)
SMALL = 4096                # neurons x samples of a group whose update is ruled by per-call costs
VMAX = float(V_MAX)


def reset_kind(node) -> str:
    """The update rule: "li" (read-out), "zero", "sub" (immediate subtraction), "late"
    (subtraction one step late), "snt" (snnTorch's immediate subtraction) or "none"."""
    if isinstance(node, CubaLI):
        return "li"
    if node.reset == "subtract":
        return "late" if node.reset_delay else "sub"
    if node.reset == "subtract_snntorch":
        return "snt"
    return node.reset


def _compact(arr):
    """A scalar where every neuron has the same value (cheaper broadcasts)."""
    if np.ndim(arr) == 0:
        return float(arr)
    return float(arr[0]) if arr.size and np.all(arr == arr[0]) else arr


@dataclass(eq=False)
class CubaParams:
    """Per-neuron parameters of CUBA populations updated together (module doc). ``slices``: each
    population's columns; ``resets``: (interval, offset, slice) of ``reset_interval``; ``cache``:
    arrays an engine derives from them, made once (the compiled update's per-neuron rows)."""
    names: List[str]
    shapes: Dict[str, Tuple[int, ...]]
    slices: Dict[str, slice]
    size: int
    kind: str
    fixed: bool
    cu: object
    cv: object
    bias: object
    vth: object
    refr: Optional[np.ndarray]
    out_scale: object
    ge: bool
    resets: List[Tuple[int, int, slice]] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False)


def cuba_params(net, names: List[str], fixed: bool) -> CubaParams:
    """The parameters of CUBA populations ``names`` (one kind of update) of lowered ``net``."""
    pops = [net.populations[p] for p in names]
    sizes = [p.size for p in pops]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def per_neuron(values):
        """One value per neuron (C order), or one float when every neuron has the same (the
        usual case: no per-neuron array is made)."""
        if all(np.ndim(v) == 0 for v in values) and len(set(float(v) for v in values)) == 1:
            return float(values[0])                     # one number for all (no array made)
        arrs = [np.asarray(v, dtype=np.float64) for v in values]
        if all(a.size for a in arrs):
            first = float(arrs[0].reshape(-1)[0])
            if all(np.all(a == first) for a in arrs):
                return first
        return np.concatenate([np.broadcast_to(a, p.shape).reshape(-1) for p, a in zip(pops, arrs)])

    nodes = [p.node for p in pops]
    kind = reset_kind(nodes[0])
    out_scale = 1.0
    if fixed:
        fxs = [p.fixed for p in pops]
        cu = per_neuron([(4096 - np.asarray(f.decay_u, np.int64)) / 4096.0 for f in fxs])
        cv = per_neuron([(4096 - np.asarray(f.decay_v, np.int64)) / 4096.0 for f in fxs])
        bias = per_neuron([np.asarray(f.bias_mant, dtype=np.int64) << int(f.bias_exp) for f in fxs])
        vth = per_neuron([np.asarray(getattr(f, "vth", 0), dtype=np.int64) << 6 for f in fxs])
        refr = np.broadcast_to(per_neuron([int(getattr(f, "refractory", 0)) for f in fxs]), (int(offs[-1]),))
        if kind == "li":                    # read-out: v_int / S
            out_scale = _compact(per_neuron([1.0 / p.state_scale for p in pops]))
    else:
        cu = per_neuron([1 - np.asarray(nd.current_decay, dtype=np.float64) for nd in nodes])
        cv = per_neuron([1 - np.asarray(nd.voltage_decay, dtype=np.float64) for nd in nodes])
        bias = per_neuron([nd.bias for nd in nodes])
        vth = per_neuron([getattr(nd, "threshold", 0.0) for nd in nodes])
        refr = np.broadcast_to(per_neuron([int(getattr(nd, "refractory", 0)) for nd in nodes]), (int(offs[-1]),))
    slices = {p.name: slice(int(a), int(b)) for p, a, b in zip(pops, offs[:-1], offs[1:])}
    resets = [(int(nd.reset_interval), int(nd.reset_offset) % int(nd.reset_interval), slices[p.name])
              for p, nd in zip(pops, nodes) if getattr(nd, "reset_interval", 0)]
    return CubaParams(list(names), {p.name: p.shape for p in pops}, slices, int(offs[-1]), kind, fixed,
                      _compact(cu), _compact(cv), _compact(bias) if np.any(bias != 0) else None, _compact(vth),
                      np.array(refr) if np.any(refr) else None, out_scale,
                      (not fixed) and getattr(nodes[0], "spike_compare", ">") != ">", resets)


class CubaGroup:
    """The state of CUBA populations updated together, ``(N, total)`` float64, and their update.

    ``a``: synaptic input (fixed: already ``<< 6``); ``drive``: bias-input drive or None;
    ``s``: output (spikes, or the read-out's value); ``a_bound``: a static bound on ``a`` per
    neuron, or None, and ``a_low`` one on ``-a`` (None: ``a_bound``); ``drive_bound``: (bound on
    the drive, on its negative) per neuron, or None (see ``range_checks``)."""

    def __init__(self, params: CubaParams, n: int, buffers: bool = True):
        """``buffers``: make u, v, a, s, sb, stay and count (False: the caller assigns them)."""
        self.p, self.n = params, n
        tot = params.size
        self.u = self.v = self.a = self.s = self.sb = self.stay = self.count = None
        self._uv = None
        if buffers:                             # u and v in one buffer: one decay call for both
            self._uv = np.zeros((2, n, tot))
            self.u, self.v = self._uv[0], self._uv[1]
            self.a, self.s = np.zeros((n, tot)), np.zeros((n, tot))
            self.sb = np.zeros((n, tot), bool)
            self.stay = np.zeros((n, tot), bool)    # not spiked (the reset's multiplier)
            self.count = np.zeros((n, tot), np.int64)
        self.ref = np.zeros((n, tot)) if params.refr is not None else None
        self.drive: Optional[np.ndarray] = None
        self.drive_checks: List[Tuple[str, np.ndarray, float]] = []
        self.a_bound: Optional[np.ndarray] = np.zeros(tot) if params.fixed else None
        self.a_low: Optional[np.ndarray] = None
        self.drive_bound: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self.late = np.zeros((n, tot)) if params.kind == "late" else None
        self.above = np.zeros((n, tot), bool) if params.kind == "snt" else None
        self.m = np.zeros((n, tot)) if params.kind == "snt" else None
        self._checks = None
        self._plain = self._small = False       # set by ``finish``
        self._cu = self._cv = self._vth = None
        self._u_is_a = bool(params.fixed and np.all(np.asarray(params.cu) == 0))
        self.s_is_sb = False                    # the caller made s a view of sb (no copy)
        self.counting = True                    # count spikes here (else the caller counts)

    @property
    def names(self) -> List[str]:
        return self.p.names

    @property
    def kind(self) -> str:
        return self.p.kind

    def view(self, buf: np.ndarray, pop: str) -> np.ndarray:
        """Population ``pop``'s columns of a group buffer, as (N, *shape) (a view)."""
        v = buf[:, self.p.slices[pop]].view()
        v.shape = (self.n,) + tuple(self.p.shapes[pop])
        return v

    def state(self, pop: str) -> Dict[str, np.ndarray]:
        st = dict(u=self.view(self.u, pop), v=self.view(self.v, pop))
        if self.ref is not None:
            st["ref"] = self.view(self.ref, pop)
        return st

    def add_drive(self, pop: str, scale: float) -> np.ndarray:
        """The drive columns of ``pop`` (bias inputs times ``scale``, written by the caller)."""
        if self.drive is None:
            self.drive = np.zeros((self.n, self.p.size))
        d = self.drive[:, self.p.slices[pop]]
        self.drive_checks.append((pop, d, scale))
        return d

    def range_checks(self) -> Tuple[bool, bool, bool]:
        """Which of (u wrap, v > V_MAX, v < -V_MAX) can happen, from the static bounds
        ``-A_lo <= a <= A_hi`` (``a_low``, ``a_bound``) and ``-D_lo <= drive <= D_hi``: by
        induction (u starts at 0, trunc moves toward 0) ``-A_lo / (1 - cu) <= u <= A_hi / (1 - cu)``;
        after a step v <= max(vth, 0), so before the compare v <= max(vth, 0) + U_hi + bias+ + D_hi,
        and v >= -(U_lo + bias- + D_lo) / (1 - cv). Where the bounds cannot exclude it, the step
        tests the values."""
        p = self.p
        unknown_drive = self.drive is not None and self.drive_bound is None
        if self.a_bound is None or unknown_drive or p.kind != "zero":
            return True, True, True
        if all(np.ndim(x) == 0 for x in (p.cu, p.cv, p.vth)):
            return self._range_checks_uniform()
        one = np.ones_like(self.a_bound)
        cu, cv = np.asarray(p.cu) * one, np.asarray(p.cv) * one
        if np.any(cu >= 1) or np.any(cv >= 1):
            return True, True, True
        u_hi = self.a_bound / (1 - cu)
        u_lo = (self.a_low if self.a_low is not None else self.a_bound) / (1 - cu)
        bias = np.asarray(p.bias if p.bias is not None else 0.0) * one
        b_hi, b_lo = np.maximum(bias, 0), np.maximum(-bias, 0)
        if self.drive is not None:
            b_hi, b_lo = b_hi + self.drive_bound[0], b_lo + self.drive_bound[1]
        check_u = bool(np.any(u_hi > HALF - 1) or np.any(u_lo > HALF - 1))
        vth = np.maximum(np.asarray(p.vth) * one, 0)
        check_vmax = check_u or bool(np.any(vth + u_hi + b_hi > VMAX))
        check_vmin = check_u or bool(np.any((u_lo + b_lo) / (1 - cv) > VMAX))
        return check_u, check_vmax, check_vmin

    def _range_checks_uniform(self) -> Tuple[bool, bool, bool]:
        """``range_checks`` when decays and threshold are the same for every neuron: each test
        increases with the per-neuron bounds and bias, so taking each one's maximum over the
        neurons (no per-neuron arrays) can only add a run-time test, never skip a needed one."""
        p = self.p
        cu, cv = float(p.cu), float(p.cv)
        if cu >= 1 or cv >= 1:
            return True, True, True
        a_hi = float(np.max(self.a_bound)) if np.size(self.a_bound) else 0.0
        a_lo = float(np.max(self.a_low if self.a_low is not None else self.a_bound)) if np.size(self.a_bound) else 0.0
        bias = np.asarray(p.bias if p.bias is not None else 0.0)
        b_hi, b_lo = max(float(bias.max()), 0.0), max(-float(bias.min()), 0.0)
        if self.drive is not None:
            d_hi, d_lo = self.drive_bound
            b_hi += float(np.max(d_hi)) if np.size(d_hi) else 0.0
            b_lo += float(np.max(d_lo)) if np.size(d_lo) else 0.0
        u_hi, u_lo = a_hi / (1 - cu), a_lo / (1 - cu)
        check_u = u_hi > HALF - 1 or u_lo > HALF - 1
        check_vmax = check_u or max(float(p.vth), 0.0) + u_hi + b_hi > VMAX
        check_vmin = check_u or (u_lo + b_lo) / (1 - cv) > VMAX
        return bool(check_u), bool(check_vmax), bool(check_vmin)

    def finish(self) -> None:
        """Call once the inputs are wired (``a_bound``, ``drive``): fixes the range tests."""
        self._checks = self.range_checks()
        p = self.p
        self._plain = bool(p.fixed and p.kind == "zero" and not p.resets and not p.ge and self.ref is None
                           and self.drive is None and not any(self._checks))
        small = self.n * p.size <= SMALL
        self._small = small                     # small groups: per-call cost rules (``_update_plain``)
        self._cu, self._cv, self._vth = ((np.full((self.n, p.size), x) if small and np.ndim(x) == 0 else x)
                                         for x in (p.cu, p.cv, p.vth))
        self._cuv = None
        if self._uv is not None and not self._u_is_a:      # both decays, stacked like u and v
            self._cuv = np.stack([np.broadcast_to(c, (self.n, p.size)) for c in (p.cu, p.cv)]) if small or \
                np.ndim(p.cu) or np.ndim(p.cv) else np.array([p.cu, p.cv]).reshape(2, 1, 1)

    # ------------------------------------------------------------------ the step
    def update(self, t: int) -> None:
        if self._plain:
            return self._update_plain()
        p = self.p
        for interval, offset, sl in p.resets:
            if t % interval == offset:
                self.u[:, sl] = 0.0
                self.v[:, sl] = 0.0
        if self.above is not None:              # "subtract_snntorch": the stored v of the last step
            np.greater(self.v, p.vth, out=self.above)
        if p.fixed:
            self._integrate_fixed()
        else:
            self._integrate_float()
        if p.kind == "li":                      # read-out: the output is v (fixed: in values)
            np.multiply(self.v, p.out_scale, out=self.s)
            return
        self._spike()

    def _update_plain(self) -> None:
        """``update`` of the common fixed-point LIF (``_plain``: reset to zero, no refractory
        period, schedule or drive, and bounds that exclude every wrap and saturation): the same
        operations, without the tests between them."""
        p, u, v, sb = self.p, self.u, self.v, self.sb
        if self._cuv is not None and u.base is self._uv:   # u, v decayed together (their buffer)
            np.multiply(self._uv, self._cuv, out=self._uv)
            np.trunc(self._uv, out=self._uv)
            np.add(u, self.a, out=u)
        else:
            if self._u_is_a:
                np.copyto(u, self.a)
            else:
                np.multiply(u, self._cu, out=u)
                np.trunc(u, out=u)
                np.add(u, self.a, out=u)
            np.multiply(v, self._cv, out=v)
            np.trunc(v, out=v)
        np.add(v, u, out=v)
        if p.bias is not None:
            np.add(v, p.bias, out=v)
        np.greater(v, self._vth, out=sb)
        self._reset_zero(v, sb)
        self._emit(sb)

    def _reset_zero(self, v: np.ndarray, sb: np.ndarray) -> None:
        """v = 0 where it spiked: one masked copy on a small group (fewer calls), else v * (not
        spiked) (a masked copy is slower on many neurons)."""
        if self._small:
            np.copyto(v, 0.0, where=sb)
        else:
            np.logical_not(sb, out=self.stay)
            np.multiply(v, self.stay, out=v)

    def _emit(self, sb: np.ndarray) -> None:
        """The step's spikes into ``s`` (unless ``s`` is ``sb`` itself) and the counts."""
        if not self.s_is_sb:
            np.copyto(self.s, sb)
        if self.counting:
            np.add(self.count, sb, out=self.count)

    def _integrate_fixed(self) -> None:
        p, u, v = self.p, self.u, self.v
        check_u, check_vmax, check_vmin = self._checks
        if self._u_is_a:                        # decay_u = 4096: u = trunc(u * 0) + a = a
            np.copyto(u, self.a)
        else:
            np.multiply(u, p.cu, out=u)
            np.trunc(u, out=u)
            np.add(u, self.a, out=u)
        if check_u and (u.max() > HALF or u.min() <= -HALF):
            np.copyto(u, np.where(u > HALF, u - U_WRAP, u))
            np.copyto(u, np.where(u <= -HALF, u + U_WRAP, u))
        np.multiply(v, p.cv, out=v)
        np.trunc(v, out=v)
        np.add(v, u, out=v)
        if p.bias is not None:
            np.add(v, p.bias, out=v)
        if self.drive is not None:
            for pop, dv, sc in self.drive_checks:
                if not np.all(dv == np.round(dv)):
                    raise SnncError(f"population {pop!r}: bias input is not a multiple of "
                                    f"1/{int(sc)} (the population's state unit)")
            np.add(v, self.drive, out=v)
        if self.late is not None:               # delayed subtraction: after the decay, before the clip
            np.multiply(self.s, p.vth, out=self.late)
            np.subtract(v, self.late, out=v)
        if (check_vmax and v.max() > VMAX) or (check_vmin and v.min() < -VMAX):
            np.clip(v, -VMAX, VMAX, out=v)

    def _integrate_float(self) -> None:
        p, u, v = self.p, self.u, self.v
        np.multiply(u, p.cu, out=u)
        np.add(u, self.a, out=u)
        np.multiply(v, p.cv, out=v)
        np.add(v, u, out=v)
        if p.bias is not None:
            np.add(v, p.bias, out=v)
        if self.drive is not None:
            np.add(v, self.drive, out=v)
        if self.late is not None:
            np.multiply(self.s, p.vth, out=self.late)
            np.subtract(v, self.late, out=v)

    def _spike(self) -> None:
        p, v, sb, ref = self.p, self.v, self.sb, self.ref
        compare = np.greater_equal if p.ge else np.greater
        if ref is not None:
            v[ref > 0] = 0.0
            np.maximum(ref - 1, 0, out=ref)
        if self.above is not None:
            np.multiply(self.above, p.vth, out=self.m)
            np.subtract(v, self.m, out=self.m)
            compare(self.m, p.vth, out=sb)
        else:
            compare(v, p.vth, out=sb)
        if p.kind == "zero":
            self._reset_zero(v, sb)
        elif p.kind in ("sub", "snt"):
            np.subtract(v, p.vth, out=v, where=sb)
        self._emit(sb)
        if ref is not None:
            np.copyto(ref, np.broadcast_to(p.refr, ref.shape), where=sb)
