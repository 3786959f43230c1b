"""One Lava process per layer in the CPU simulation: a neuron population and its Dense synapses.

Lava runs every process as an OS process stepped in lock step with the others (a phase command
and an answer per process and step, and a channel message per connection): on small networks
that synchronization, not the arithmetic, is most of a step. ``lava-fixed`` builds
Loihi's structure, a synapse process (``Dense``/``DelayDense``) feeding a neuron process
(``LIF`` ...). In the CPU simulation (``LavaPlan.layers``), a population and the Dense synapses
into it run as one process, a ``layer`` (a 3-layer chain: 5 processes instead of 8):

- the process is a subclass of the population's neuron process (``LIF``, ``LIFReset``,
  ``LIFRefractory``, ``LIFResetRule``, ``LeakyIntegrator``): its Vars, ports and parameters are
  the neuron's, plus, per synapse k, the synapse's Vars ``weights_k``, ``a_buff_k`` (the
  activation buffer), ``delays_k``, ``num_message_bits_k`` and an in-port ``s_in_k`` that the
  source's spikes reach as they reached the synapse;
- its model is a subclass of the neuron's own model (the one the simulation selects), and runs,
  per synapse, an instance of the synapse's model (fixed point: ``lava_fast_models``'
  ``PyDenseModelBitAccFast`` and ``PyDelayDenseModelBitAccFast``, Lava's own models with the
  activation computed faster, the same integers; float: Lava's own) with in-process ports;
- a step does what the two processes did, in their order: the neuron's ``run_spk`` receives on
  ``a_in`` the synapses' messages (what each synapse model sends first in its ``run_spk``: its
  buffer from the last step, ``a_buff`` or ``a_buff[:, 0]``), cast to the synapse's ``a_out``
  channel type and reshaped as the channel did, added to what reaches the real ``a_in`` (Conv
  synapses stay processes) in the port's own sum; then each synapse model receives this step's
  spikes and computes its next buffer.

Host pipes instead of io processes (``piped``, ``recorded``), one message per sample of L
(``pipe_steps``) steps: when the network's input feeds exactly one connection, a fused one, the
host sends each sample's (inputs, L) spikes straight into that synapse's in-port ``s_in_k``
through an external pipe (float, as the io ``Injector``'s out-port sent them), and the layer's
synapse takes column t at the sample's step t; a recorded layer keeps, at each step, the message
its neuron model sends on ``s_out`` (cast to the port's type, as the channel did, then to
float64, as the ``Recorder`` did) and sends the sample's (*shape, L) to the host through its own
external out-port ``record`` at the sample's last step. A 3-layer chain runs 3 processes instead
of 5, and a step sends no host message.

Between samples a layer zeroes its own state (``sample_steps`` L, the plan's steps per sample:
at Lava ``time_step`` i*L + 1, before the step, the Vars the host would otherwise set to zero one
channel message per element: neuron state and synapse buffers); the host still sets biases.

So the arithmetic is Lava's own models' (the neurons'; the synapses' exact faster versions of
them), only the transport is in-process: the spikes are identical (tests compare ``layers`` on,
and off, which runs Lava's own Dense and neuron processes, on every neuron kind, against the
reference).
Fused: the ``"dense"`` connections into ``"lif"``/``"li"`` populations; in float mode only a
population with a single input (a float sum over several ports depends on their order).
Loihi hardware keeps the two processes (``loihi_hw`` plans with ``layers=False``).
"""
from __future__ import annotations

import functools
from typing import Dict, List, Tuple

import numpy as np

NEURON_KINDS = ("lif", "li")


def fused_connections(plan) -> Dict[str, List]:
    """{population: [its fused connections, in plan order]} of ``plan`` (module doc)."""
    if not getattr(plan, "layers", False):
        return {}
    into: Dict[str, List] = {}
    for c in plan.conns:
        into.setdefault(c.dst, []).append(c)
    out = {}
    for dst, conns in into.items():
        if plan.pops[dst].kind not in NEURON_KINDS:
            continue
        dense = [c for c in conns if c.kind == "dense"]
        if plan.mode != "fixed" and len(conns) != 1:
            continue
        if dense:
            out[dst] = dense
    return out


def synapse_model(plan, conn):
    """The process model the simulation runs for connection ``conn``'s Lava synapse."""
    from lava.proc.dense import models
    if plan.mode == "fixed":
        from .lava_fast_models import PyDelayDenseModelBitAccFast, PyDenseModelBitAccFast
        return PyDenseModelBitAccFast if conn.delays is None else PyDelayDenseModelBitAccFast
    return models.PyDenseModelFloat if conn.delays is None else models.PyDelayDenseModelFloat


class _Inbox:
    """An in-process in-port: ``recv`` returns what was put."""

    def __init__(self):
        self.data = None

    def recv(self):
        return self.data


class _Discard:
    """An in-process out-port whose message is not needed (it was read before: module doc)."""

    def send(self, data):
        pass


class _Tee:
    """The layer's ``s_out`` as the neuron model sees it: the real port's send, and the same
    message kept in ``store`` (cast to ``dtype``, the channel's, then to store's float64)."""

    def __init__(self, port, store, dtype):
        self.port, self.store, self.dtype = port, store, dtype

    def send(self, data):
        self.port.send(data)
        self.store[...] = np.asarray(data).astype(self.dtype)


class _Summed:
    """The layer's ``a_in`` as the neuron model sees it: the real port's sum, then each synapse's
    message added, as Lava's in-port adds its channels."""

    def __init__(self, port, messages):
        self.port, self.messages = port, messages

    def recv(self):
        acc = self.port.recv()
        for m in self.messages:
            acc = acc + m
        return acc


def _synapse_vars(k: int) -> Tuple[str, ...]:
    return tuple(f"{v}_{k}" for v in ("weights", "a_buff", "delays", "num_message_bits"))


@functools.lru_cache(maxsize=None)
def layer_classes(neuron_proc: type, neuron_model: type, synapse_models: Tuple[type, ...],
                  piped: Tuple[int, ...] = (), recorded: bool = False):
    """(process class, model class) of a layer: ``neuron_proc`` run by ``neuron_model`` with the
    synapses ``synapse_models`` (one per fused connection, in order); ``piped``: the synapses
    whose in-port the host feeds, ``recorded``: the layer has the out-port ``record`` to the host
    (module doc)."""
    from lava.magma.core.decorator import implements, requires
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.variable import Var
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    def __init__(self, *, synapses: List[dict], sample_steps: int = 0, pipe_steps: int = 0, **neuron_kw):
        """``synapses``: per connection {weights (out, in), delays (out, in) or None,
        num_message_bits, and the synapse's proc params weight_exp, num_weight_bits};
        ``sample_steps`` L > 0: the state Vars named by ``set_sample_reset`` are zeroed at the
        start of every L-step sample after the first; ``pipe_steps``: the L steps of a host
        pipe's message (module doc)."""
        neuron_proc.__init__(self, **neuron_kw)
        self.proc_params["sample_steps"] = int(sample_steps)
        if (piped or recorded) and pipe_steps <= 0:
            raise ValueError(f"layer {self.name!r}: host pipes need pipe_steps > 0")
        self.proc_params["pipe_steps"] = int(pipe_steps)
        if recorded:
            self.record = OutPort(shape=tuple(self.s_out.shape) + (int(pipe_steps),))
            self.record.flag_external_pipe(buffer_size=1)
        params = []
        for k, s in enumerate(synapses):
            w = np.asarray(s["weights"])
            n = int(np.prod(self.a_in.shape))
            if w.ndim != 2 or w.shape[0] != n:       # as Lava's connect refuses a Dense that does not fit
                raise ValueError(f"layer {self.name!r}: synapse {k}'s weights {w.shape} do not fit its "
                                 f"{n} neurons")
            depth = 1 + (int(np.max(s["delays"])) if s.get("delays") is not None else 0)
            if k in piped:
                setattr(self, f"s_in_{k}", InPort(shape=(w.shape[1], int(pipe_steps))))
                getattr(self, f"s_in_{k}").flag_external_pipe(buffer_size=1)
            else:
                setattr(self, f"s_in_{k}", InPort(shape=(w.shape[1],)))
            setattr(self, f"weights_{k}", Var(shape=w.shape, init=w))
            buf = (w.shape[0],) if s.get("delays") is None else (w.shape[0], depth)
            setattr(self, f"a_buff_{k}", Var(shape=buf, init=0))
            if s.get("delays") is not None:
                setattr(self, f"delays_{k}", Var(shape=w.shape, init=s["delays"]))
            setattr(self, f"num_message_bits_{k}", Var(shape=(1,), init=int(s.get("num_message_bits", 0))))
            params.append({key: s[key] for key in ("weight_exp", "num_weight_bits") if key in s})
        self.proc_params["synapse_params"] = params

    name = f"Layer_{neuron_model.__name__}_" + "_".join(m.__name__ for m in synapse_models)
    name += "".join(f"_piped{k}" for k in piped) + ("_recorded" if recorded else "")
    proc = type(name, (neuron_proc,), {"__init__": __init__, "__doc__": "A layer (lava_layers)."})

    def run_spk(self):
        syns = self._synapses()
        steps = self.proc_params["sample_steps"]
        if steps and self.time_step > 1 and (self.time_step - 1) % steps == 0:
            for var in self.proc_params["reset_vars"]:             # a new sample: zero state
                getattr(self, var)[...] = 0
        msgs = []
        for k in range(len(syns)):
            buf = getattr(self, f"a_buff_{k}")
            sent = buf if buf.ndim == 1 else buf[:, 0]            # what the model sends first
            out = np.empty(self._msg_shape, dtype=self._msg_types[k])
            out.ravel()[:] = np.ravel(sent)                        # the channel's buffer copy
            msgs.append(out)
        port, out = self.a_in, self.s_out
        self.a_in = _Summed(port, msgs)
        col = (self.time_step - 1) % self.proc_params["pipe_steps"] if piped or recorded else 0
        if recorded:
            self.s_out = _Tee(out, self._kept[..., col], neuron_model.s_out.d_type)
        try:
            neuron_model.run_spk(self)
        finally:
            self.a_in, self.s_out = port, out
        if recorded and col == self.proc_params["pipe_steps"] - 1:
            self.record.send(self._kept)                       # the sample's last step
        for k, syn in enumerate(syns):
            if k in piped:
                if col == 0:                                    # the sample's first step
                    self._fed[k] = getattr(self, f"s_in_{k}").recv()
                syn.s_in.data = self._fed[k][:, col]
            else:
                syn.s_in.data = getattr(self, f"s_in_{k}").recv()
            syn.a_buff = getattr(self, f"a_buff_{k}")              # the host may have set it
            syn.run_spk()
            setattr(self, f"a_buff_{k}", syn.a_buff)

    def _synapses(self):
        if self._syn is None:
            self._syn = []
            self._msg_shape = tuple(self.a_in._shape)
            self._msg_types = [m.a_out.d_type for m in synapse_models]
            for k, m in enumerate(synapse_models):
                syn = m(dict(self.proc_params["synapse_params"][k]))
                w, _, d, nb = _synapse_vars(k)
                syn.weights = getattr(self, w)
                if hasattr(self, d):
                    syn.delays = getattr(self, d)
                syn.num_message_bits = getattr(self, nb)
                syn.s_in, syn.a_out = _Inbox(), _Discard()
                self._syn.append(syn)
            self._fed = {}
            if recorded:
                self._kept = np.zeros(tuple(self.s_out._shape) + (self.proc_params["pipe_steps"],))
        return self._syn

    def init(self, proc_params):
        neuron_model.__init__(self, proc_params)
        self._syn = None

    attrs = {"__init__": init, "run_spk": run_spk, "_synapses": _synapses,
             "implements_process": None, "__doc__": "A layer's model (lava_layers)."}
    if recorded:
        attrs["record"] = LavaPyType(PyOutPort.VEC_DENSE, float)
    for k, m in enumerate(synapse_models):
        attrs[f"s_in_{k}"] = LavaPyType(PyInPort.VEC_DENSE, float) if k in piped else m.s_in
        for var, own in zip(_synapse_vars(k), ("weights", "a_buff", "delays", "num_message_bits")):
            if hasattr(m, own):
                attrs[var] = getattr(m, own)
    model = type(f"{name}_Model", (neuron_model,), attrs)   # (its tags: the neuron model's)
    model = requires(CPU)(implements(proc=proc, protocol=LoihiProtocol)(model))
    # Lava's compiler looks for a process's models among the members of the process's module
    proc.__module__ = model.__module__ = __name__
    globals()[proc.__name__], globals()[model.__name__] = proc, model
    return proc, model


class HostFeed:
    """The host's side of a layer's piped input (module doc): ``send(sample)`` puts one sample of
    the input population ((*lava_shape, L)) into each piped in-port, each step flattened as the
    connection read it (C order, as Lava's ``flatten``)."""

    def __init__(self, proc, piped: Tuple[int, ...]):
        self.proc = proc
        self.ports = [getattr(proc, f"s_in_{k}") for k in piped]

    def send(self, sample: np.ndarray) -> None:
        for port in self.ports:
            port.external_pipe_csp_send_port.send(np.reshape(sample, port.shape))


def receive_record(proc) -> np.ndarray:
    """One sample of a recorded layer's output from its pipe: (*lava_shape, L) float64."""
    return np.asarray(proc.record.external_pipe_csp_recv_port.recv())


def set_sample_reset(proc, names) -> None:
    """Name the Vars a layer made with ``sample_steps`` zeroes at each new sample (call before
    the run compiles): its neuron's state and its synapses' buffers, those the host would set."""
    proc.proc_params["reset_vars"] = tuple(names)


def synapse_params(conn, fixed: bool) -> dict:
    """A fused connection's synapse for ``layer_classes``' process: the arguments
    ``lava_worker`` gives its Dense / DelayDense (``fixed``: the plan is in fixed point)."""
    out = dict(weights=conn.weight if fixed else np.asarray(conn.weight, float),
               delays=None if conn.delays is None else conn.delays.astype(int),
               num_message_bits=int(conn.num_message_bits))
    if fixed:
        out.update(weight_exp=conn.weight_exp, num_weight_bits=conn.num_weight_bits)
    return out
