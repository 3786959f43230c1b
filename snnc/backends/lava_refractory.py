"""A bit-accurate (``fixed_pt``) Lava process model for Lava's ``LIFRefractory`` process.

Open Lava ships ``LIFRefractory`` (CUBA LIF whose v is held after a spike) only as a floating-
point model. HM2-BP and ST-RSBP need its refractory period (2 steps) with Loihi's integer
dynamics, so snnc ships this model: Lava's bit-accurate LIF (``AbstractPyLifModelFixed``:
24-bit u that wraps, v that saturates, 12-bit decays with round-toward-zero, ``a_in << 6``,
``v > vth << 6``) plus the refractory rule of the float model, which is also the IR's:

    after a spike at step t, v is held at 0 during steps t+1 .. t+refractory (u integrates).

It is bit-exact with ``snnc.backends.reference`` (fixed mode). Loihi 2 hardware has no such
neuron in its standard LIF (refDelay 1): it needs a custom (microcoded) neuron program; ``snnc
info`` says so for every population with ``refractory > 0``.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed
from lava.proc.lif.process import LIFRefractory


@implements(proc=LIFRefractory, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLifRefractoryModelBitAcc(AbstractPyLifModelFixed):
    """Bit-accurate LIF with a refractory period (v held at 0 for ``refractory_period`` steps)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    refractory_period_end: np.ndarray = LavaPyType(np.ndarray, int)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.refractory_period = proc_params["refractory_period"]
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
        self.subthr_dynamics(activation_in=a_in_data)          # u (and v) as Loihi's LIF
        refractory = self.refractory_period_end >= self.time_step
        self.v[refractory] = 0                                   # held: v stays at 0
        s_out = self.spiking_activation()
        self.refractory_period_end[s_out] = self.time_step + self.refractory_period
        self.v[s_out] = 0
        self.s_out.send(s_out)


def model_map(plan) -> dict:
    """``exception_proc_model_map`` entries the run configuration needs for ``plan``."""
    if plan.mode == "fixed" and any(getattr(p, "refractory", 0) for p in plan.pops.values()):
        return {LIFRefractory: PyLifRefractoryModelBitAcc}
    return {}
