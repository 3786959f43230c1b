"""snnc's own Lava processes and process models for the neurons Lava's ``LIF`` lacks.

Open Lava's LIF resets v to 0 at a spike and always spikes. snnTorch, Sinabs and NIR models need
reset by subtraction (immediate, or one step late as snnTorch's default ``reset_delay=True``),
no reset, and non-spiking leaky-integrator read-outs. snnc ships, as it does for the refractory
neuron (``lava_refractory``):

- ``LIFResetRule`` (a Lava ``LIF`` with the proc params ``reset`` and ``reset_delay`` and a Var
  ``s_prev``, last step's spikes) with a ``fixed_pt`` model (Lava's bit-accurate LIF,
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

- ``LeakyIntegrator`` (a Lava ``LIF`` process whose models never spike): u and v as Lava's LIF,
  and ``s_out`` sends v itself every step (graded; fixed point: the Loihi integer v, which the
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


class LIFResetRule(LIF):
    """Lava LIF whose reset is ``reset`` ("zero", "subtract", "none"), immediate or (``reset_delay``)
    one step late; ``s_prev`` holds the last step's spikes."""

    def __init__(self, *, reset: str, reset_delay: bool = False, **kw):
        super().__init__(**kw)
        for k in ("du", "dv"):                 # per-neuron decays: Vars of the population's shape
            if np.ndim(kw.get(k, 0)):
                setattr(self, k, Var(shape=kw["shape"], init=np.asarray(kw[k])))
        if reset not in ("zero", "subtract", "none", "subtract_snntorch"):
            raise ValueError(f"reset must be zero, subtract, none or subtract_snntorch, got {reset!r}")
        self.proc_params["reset"] = reset
        self.proc_params["reset_delay"] = bool(reset_delay)
        self.s_prev = Var(shape=kw["shape"], init=0)


class LeakyIntegrator(LIF):
    """Non-spiking CUBA read-out: ``s_out`` sends v every step (``vth`` is unused)."""


def _reset(model, s: np.ndarray, vth) -> None:
    """The reset of ``LIFResetRule`` at the spike step (the delayed subtraction is in the update)."""
    if model.reset == "zero":
        model.v[s] = 0
    elif (model.reset == "subtract" and not model.reset_delay) or model.reset == "subtract_snntorch":
        model.v[s] = model.v[s] - vth


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
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)    # one, or one per neuron
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset = proc_params["reset"]
        self.reset_delay = proc_params["reset_delay"]
        self.effective_vth = 0

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        return self.v > self.effective_vth

    def run_spk(self):
        a_in_data = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        if self.reset == "subtract" and self.reset_delay:
            # v = rtz(v) + u + bias - (vth << 6) s_prev, saturated once, as the reference does
            self.effective_bias = self.effective_bias - self.effective_vth * self.s_prev.astype(np.int32)
        carry = _carry(self, self.effective_vth)
        self.subthr_dynamics(activation_in=a_in_data)
        s = (self.v - carry) > self.effective_vth
        _reset(self, s, self.effective_vth)
        self.s_prev[:] = s
        self.s_out.send(s)


@implements(proc=LIFResetRule, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLifResetRuleModelFloat(AbstractPyLifModelFloat):
    """Floating-point LIF with the IR's reset rules (module doc)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    s_prev: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset = proc_params["reset"]
        self.reset_delay = proc_params["reset_delay"]

    def spiking_activation(self):
        return self.v > self.vth

    def run_spk(self):
        a_in_data = self.a_in.recv()
        carry = _carry(self, self.vth)
        self.subthr_dynamics(activation_in=a_in_data)
        if self.reset == "subtract" and self.reset_delay:
            self.v[:] = self.v - self.vth * self.s_prev
        s = (self.v - carry) > self.vth
        _reset(self, s, self.vth)
        self.s_prev[:] = s
        self.s_out.send(s)


@implements(proc=LeakyIntegrator, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLeakyIntegratorModelFixed(AbstractPyLifModelFixed):
    """Bit-accurate CUBA u and v (Lava's LIF), no spike: sends the integer v."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

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

    def run_spk(self):
        a_in_data = self.a_in.recv()
        self.subthr_dynamics(activation_in=a_in_data)
        self.s_out.send(self.v.copy())


def make_population(pp, **kw):
    """The Lava process of a plan population that Lava's LIF cannot run (None when it can)."""
    if pp.kind == "li":
        return LeakyIntegrator(**kw)
    if pp.reset != "zero" or np.ndim(pp.du):
        return LIFResetRule(reset=pp.reset, reset_delay=pp.reset_delay, **kw)
    return None


def model_map(plan) -> dict:
    """``exception_proc_model_map`` entries for the populations of ``plan`` run by these models."""
    fixed = plan.mode == "fixed"
    out = {}
    if any(p.kind == "li" for p in plan.pops.values()):
        out[LeakyIntegrator] = PyLeakyIntegratorModelFixed if fixed else PyLeakyIntegratorModelFloat
    if any(p.kind == "lif" and (p.reset != "zero" or np.ndim(p.du)) for p in plan.pops.values()):
        out[LIFResetRule] = PyLifResetRuleModelFixed if fixed else PyLifResetRuleModelFloat
    return out
