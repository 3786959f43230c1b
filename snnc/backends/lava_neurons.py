"""snnc's own Lava processes and process models for the neurons Lava's ``LIF`` lacks.

Open Lava's LIF resets v to 0 at a spike and always spikes. snnTorch, Sinabs and NIR models need
reset by subtraction (immediate, or one step late as snnTorch's default ``reset_delay=True``),
no reset, and non-spiking leaky-integrator read-outs. snnc ships, as it does for the refractory
neuron (``lava_refractory``):

- ``LIFResetRule`` (a Lava ``LIF`` with the proc params ``reset``, ``reset_delay``, ``refractory``,
  ``reset_interval``/``reset_offset``, the Vars ``s_prev`` (last step's spikes) and ``ref_left``
  (refractory steps left), and per-neuron ``du``/``dv`` Vars when the decays differ per neuron)
  with a ``fixed_pt`` model (Lava's bit-accurate LIF,
  ``AbstractPyLifModelFixed``: 24-bit u that wraps, v that saturates, 12-bit decays with
  round-toward-zero, ``a_in << 6``, ``v > vth << 6``) and a ``floating_pt`` model, where the
  reset is the IR's (``ir.CubaLIF``)::

      "zero":                 v[s] = 0
      "subtract", immediate:  v[s] -= vth << 6                (float: vth)
      "subtract", delayed:    v = rtz(v (4096 - dv)) + u + bias - (vth << 6) s_prev, then the
                              saturation; no change at the spike step
      "none":                 no reset
      "subtract_snntorch":    the spike test reads v - (vth << 6) [v_prev > vth << 6] (v_prev: the
                              stored v of the last step); v[s] -= vth << 6    (float: vth)

  and, in the IR's order (``ir.CubaLIF``, ``reference``): at a step with ``time_step % interval ==
  offset`` u = v = 0 first (Lava's ``LIFReset``); after the update, v = 0 where ``ref_left > 0``
  (then ``ref_left`` counts down), then the spike test and the reset; a spike sets ``ref_left =
  refractory`` (held during the next ``refractory`` steps, as Lava's ``LIFRefractory``). So one
  model runs every combination of reset rule, refractory period, periodic reset and per-neuron
  decays.

- ``LeakyIntegrator`` (a Lava ``LIF`` process whose models never spike; per-neuron ``du``/``dv``
  Vars when the decays differ per neuron): u and v as Lava's LIF, and ``s_out`` sends v itself
  every step (graded; fixed point: the Loihi integer v, which the
  host divides by the population's state scale).

Both are bit-exact with ``snnc.backends.reference`` (fixed mode); the float models compute the
reference-float operations in the same order. Loihi 2 hardware runs neither with its standard
CUBA neuron: they need custom (microcoded) neuron programs; ``snnc info`` says so per population.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat
from lava.proc.lif.process import LIF


def _per_neuron_decays(proc, kw) -> None:
    """Per-neuron ``du``/``dv`` (arrays): Vars of the population's shape (Lava's LIF makes scalars)."""
    for k in ("du", "dv"):
        if np.ndim(kw.get(k, 0)):
            setattr(proc, k, Var(shape=kw["shape"], init=np.asarray(kw[k])))


class LIFResetRule(LIF):
    """Lava LIF whose reset is ``reset`` ("zero", "subtract", "none", "subtract_snntorch"),
    immediate or (``reset_delay``) one step late, with an optional refractory period and periodic
    reset (module doc); ``s_prev`` holds the last step's spikes, ``ref_left`` the refractory steps
    left."""

    def __init__(self, *, reset: str, reset_delay: bool = False, refractory: int = 0,
                 reset_interval: int = 0, reset_offset: int = 0, **kw):
        super().__init__(**kw)
        _per_neuron_decays(self, kw)
        if reset not in ("zero", "subtract", "none", "subtract_snntorch"):
            raise ValueError(f"reset must be zero, subtract, none or subtract_snntorch, got {reset!r}")
        if int(refractory) < 0 or int(reset_interval) < 0:
            raise ValueError(f"refractory and reset_interval must be >= 0, got {refractory}, {reset_interval}")
        self.proc_params["reset"] = reset
        self.proc_params["reset_delay"] = bool(reset_delay)
        self.proc_params["refractory"] = int(refractory)
        self.proc_params["reset_interval"] = int(reset_interval)
        self.proc_params["reset_offset"] = int(reset_offset) % int(reset_interval) if reset_interval else 0
        self.s_prev = Var(shape=kw["shape"], init=0)
        self.ref_left = Var(shape=kw["shape"], init=0)


class LeakyIntegrator(LIF):
    """Non-spiking CUBA read-out: ``s_out`` sends v every step (``vth`` is unused)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        _per_neuron_decays(self, kw)


def _reset(model, s: np.ndarray, vth) -> None:
    """The reset of ``LIFResetRule`` at the spike step (the delayed subtraction is in the update)."""
    if model.reset == "zero":
        model.v[s] = 0
    elif (model.reset == "subtract" and not model.reset_delay) or model.reset == "subtract_snntorch":
        model.v[s] = model.v[s] - vth


def _rule_params(model, proc_params) -> None:
    for k in ("reset", "reset_delay", "refractory", "reset_interval", "reset_offset"):
        setattr(model, k, proc_params[k])


def _periodic_reset(model) -> None:
    """u = v = 0 at the steps of the periodic reset (before the update, as Lava's LIFReset)."""
    if model.reset_interval and model.time_step % model.reset_interval == model.reset_offset:
        model.u[:] = 0
        model.v[:] = 0


def _hold(model) -> None:
    """v = 0 where the refractory period runs (after the update, before the spike test)."""
    if model.refractory:
        held = model.ref_left > 0
        model.v[held] = 0
        model.ref_left[:] = np.maximum(model.ref_left - 1, 0)


def _spiked(model, s: np.ndarray) -> None:
    if model.refractory:
        model.ref_left[s] = model.refractory
    model.s_prev[:] = s


def _carry(model, vth) -> np.ndarray:
    """"subtract_snntorch": ``vth`` where the stored v of the last step is above it, else 0."""
    if model.reset != "subtract_snntorch":
        return 0
    return vth * (model.v > vth).astype(model.v.dtype)


@implements(proc=LIFResetRule, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLifResetRuleModelFixed(AbstractPyLifModelFixed):
    """Bit-accurate LIF with the IR's reset rules (module doc)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    s_prev: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    ref_left: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)    # one, or one per neuron
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        _rule_params(self, proc_params)
        self.effective_vth = 0

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        return self.v > self.effective_vth

    def run_spk(self):
        a_in_data = self.a_in.recv()
        _periodic_reset(self)
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        if self.reset == "subtract" and self.reset_delay:
            # v = rtz(v) + u + bias - (vth << 6) s_prev, saturated once, as the reference does
            self.effective_bias = self.effective_bias - self.effective_vth * self.s_prev.astype(np.int32)
        carry = _carry(self, self.effective_vth)
        self.subthr_dynamics(activation_in=a_in_data)
        _hold(self)
        s = (self.v - carry) > self.effective_vth
        _reset(self, s, self.effective_vth)
        _spiked(self, s)
        self.s_out.send(s)


@implements(proc=LIFResetRule, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLifResetRuleModelFloat(AbstractPyLifModelFloat):
    """Floating-point LIF with the IR's reset rules (module doc)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    s_prev: np.ndarray = LavaPyType(np.ndarray, float)
    ref_left: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        _rule_params(self, proc_params)

    def spiking_activation(self):
        return self.v > self.vth

    def run_spk(self):
        a_in_data = self.a_in.recv()
        _periodic_reset(self)
        carry = _carry(self, self.vth)
        self.subthr_dynamics(activation_in=a_in_data)
        if self.reset == "subtract" and self.reset_delay:
            self.v[:] = self.v - self.vth * self.s_prev
        _hold(self)
        s = (self.v - carry) > self.vth
        _reset(self, s, self.vth)
        _spiked(self, s)
        self.s_out.send(s)


@implements(proc=LeakyIntegrator, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLeakyIntegratorModelFixed(AbstractPyLifModelFixed):
    """Bit-accurate CUBA u and v (Lava's LIF), no spike: sends the integer v."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)    # one, or one per neuron
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)

    def scale_threshold(self):
        self.isthrscaled = True

    def run_spk(self):
        a_in_data = self.a_in.recv()
        self.scale_bias()
        self.subthr_dynamics(activation_in=a_in_data)
        self.s_out.send(self.v.copy())


@implements(proc=LeakyIntegrator, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyIntegratorModelFloat(AbstractPyLifModelFloat):
    """Floating-point CUBA u and v (Lava's LIF), no spike: sends v."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self):
        a_in_data = self.a_in.recv()
        self.subthr_dynamics(activation_in=a_in_data)
        self.s_out.send(self.v.copy())


def own_model(pp) -> bool:
    """True when a plan population runs on snnc's models here rather than on a Lava process model:
    a read-out, a reset other than zero, per-neuron decays, or a refractory period with a
    periodic reset (Lava has each of the last two alone only)."""
    if pp.kind == "li":
        return True
    if pp.kind != "lif":
        return False
    return (pp.reset != "zero" or bool(np.ndim(pp.du)) or bool(np.ndim(pp.dv))
            or bool(pp.refractory and pp.reset_interval))


def population_class(pp):
    """(process class, its extra arguments) of a plan population that Lava's LIF cannot run
    (None when it can)."""
    if not own_model(pp):
        return None
    if pp.kind == "li":
        return LeakyIntegrator, {}
    return LIFResetRule, dict(reset=pp.reset, reset_delay=pp.reset_delay, refractory=pp.refractory,
                              reset_interval=pp.reset_interval, reset_offset=pp.reset_offset)


def model_map(plan) -> dict:
    """``exception_proc_model_map`` entries for the populations of ``plan`` run by these models."""
    fixed = plan.mode == "fixed"
    out = {}
    if any(p.kind == "li" for p in plan.pops.values()):
        out[LeakyIntegrator] = PyLeakyIntegratorModelFixed if fixed else PyLeakyIntegratorModelFloat
    if any(p.kind == "lif" and own_model(p) for p in plan.pops.values()):
        out[LIFResetRule] = PyLifResetRuleModelFixed if fixed else PyLifResetRuleModelFloat
    return out
