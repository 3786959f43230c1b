"""``FusedNetwork``: the whole IR graph as one Lava process, and its ProcessModels (tags
``fixed_pt`` and ``floating_pt``). See ``snnc.backends.lava_fused``.

Absolute imports only: Lava executes this file stand-alone while it looks for ProcessModels.
"""
import pickle

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class FusedNetwork(AbstractProcess):
    """The whole IR graph as one Lava process.

    ``graph``: the pickled (quantized) ``Graph``; ``mode``: "fixed" or "float"; ``batch``: samples
    stepped together. ``s_in``: (batch * input size,) per step; ``s_out``: (out_size,) per step,
    the graph outputs then every population's spikes, each (batch, size) in C order
    (``snnc.backends.lava_fused.layout``)."""

    def __init__(self, *, graph: bytes, mode: str, batch: int, in_size: int, out_size: int, **kwargs):
        super().__init__(graph=graph, mode=mode, batch=batch, in_size=in_size, out_size=out_size,
                         **kwargs)
        self.s_in = InPort(shape=(in_size,))
        self.s_out = OutPort(shape=(out_size,))


class PyFusedModel(PyLoihiProcessModel):
    """One IR step of the whole graph per Lava step (the reference simulator's step plan)."""
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        from snnc.backends.lava_fused import layout
        from snnc.backends.reference import _Sim
        graph = pickle.loads(proc_params["graph"])
        n = int(proc_params["batch"])
        self._sim = _Sim(graph, proc_params["mode"], n)
        iname, _, outs, pops, total = layout(self._sim.net, n)
        self._inbuf = self._sim.input_buffers[iname]
        self._out = np.zeros(total)
        parts, k = [], 0
        for name, size in outs + pops:
            parts.append((self._out[k:k + n * size].reshape(n, size),
                          self._sim.values[name].reshape(n, size)))
            k += n * size
        self._parts = parts

    def run_spk(self):
        x = self.s_in.recv()
        np.copyto(self._inbuf, x.reshape(self._inbuf.shape))
        self._sim.run_step(self.time_step - 1)      # Lava step k is IR step k - 1
        for dst, src in self._parts:
            np.copyto(dst, src)
        self.s_out.send(self._out)


@implements(proc=FusedNetwork, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFusedFixedModel(PyFusedModel):
    """Loihi 2 fixed-point arithmetic (bit-exact with Lava's fixed_pt LIF/Dense/Conv)."""


@implements(proc=FusedNetwork, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyFusedFloatModel(PyFusedModel):
    """Lava's floating_pt semantics (the reference simulator's float mode)."""
