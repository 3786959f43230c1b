"""One Lava process that records every population's output spikes (simulation and hardware runs).

``Recorder(shapes, buffer_size)``: k in-ports ``in_0 .. in_{k-1}`` (Lava shapes), one external
pipe to the host. At every step its model receives each port and sends their concatenation,
``concat(in_i.ravel())`` as float64 (spikes 0/1, or a read-out's integer or float v, exact), so
the host calls ``receive()`` once per step for the whole network instead of once per population,
and the network has one recording process instead of one sink process per population (each Lava
process is an OS process stepped in lock step: fewer processes, a faster build and run).
``split(recorder, data)`` cuts the host's (total, L) array back into per-port (*shape, L) arrays.

The classes are made per number of ports k (a Lava process model declares its ports as class
attributes); ``model_map(k)`` gives the ``exception_proc_model_map`` entry.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Sequence, Tuple

import numpy as np


@functools.lru_cache(maxsize=None)
def _classes(k: int):
    """(process class, model class) of a recorder with ``k`` in-ports."""
    from lava.magma.core.decorator import implements, requires
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    def __init__(self, shapes: Sequence[Tuple[int, ...]], buffer_size: int, **kwargs):
        AbstractProcess.__init__(self, **kwargs)
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        for i, s in enumerate(self.shapes):
            setattr(self, f"in_{i}", InPort(shape=s))
        total = int(sum(int(np.prod(s)) for s in self.shapes))
        self.out_port = OutPort(shape=(total,))
        self.out_port.flag_external_pipe(buffer_size=int(buffer_size))

    def receive(self) -> np.ndarray:
        """One step of every port, concatenated (float64, (total,))."""
        return np.asarray(self.out_port.external_pipe_csp_recv_port.recv())

    proc = type(f"Recorder{k}", (AbstractProcess,), {"__init__": __init__, "receive": receive,
                                                      "__doc__": "Records k populations (module doc)."})

    def run_spk(self) -> None:
        data = np.concatenate([np.ravel(getattr(self, f"in_{i}").recv()) for i in range(k)])
        self.out_port.csp_ports[-1].send(data.astype(np.float64))

    attrs = {f"in_{i}": LavaPyType(PyInPort.VEC_DENSE, float) for i in range(k)}
    attrs.update(out_port=LavaPyType(PyOutPort.VEC_DENSE, float), run_spk=run_spk)
    model = type(f"PyRecorder{k}Model", (PyLoihiProcessModel,), attrs)
    model = requires(CPU)(implements(proc=proc, protocol=LoihiProtocol)(model))
    # Lava's compiler looks for a process's models among the members of the process's module
    proc.__module__ = model.__module__ = __name__
    globals()[proc.__name__], globals()[model.__name__] = proc, model
    return proc, model


def Recorder(shapes: Sequence[Tuple[int, ...]], buffer_size: int, name: str = "recorder"):
    """A recorder of len(shapes) ports (module doc)."""
    proc, _ = _classes(len(shapes))
    return proc(shapes=shapes, buffer_size=buffer_size, name=name)


def model_map(k: int) -> Dict[type, type]:
    """The ``exception_proc_model_map`` entry of a recorder of ``k`` ports (its model carries no
    tag, so a run configuration must name it, as for Lava's io Extractor); {} when k is 0."""
    if not k:
        return {}
    proc, model = _classes(k)
    return {proc: model}


def split(recorder, data: np.ndarray) -> List[np.ndarray]:
    """(total, L) host data -> per-port arrays (*shape, L), in port order."""
    out, at = [], 0
    for s in recorder.shapes:
        n = int(np.prod(s))
        out.append(data[at:at + n].reshape(tuple(s) + data.shape[1:]))
        at += n
    return out
