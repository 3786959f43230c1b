"""Run an IR graph on Lava's CPU simulation of Loihi 2 (``Loihi2SimCfg``).

``run_lava(graph, spikes, mode="fixed"|"float", timeout=600.0, conv_as="auto", io="channels",
layers=True) -> RunResult``

- ``fixed``: ``select_tag="fixed_pt"`` with the standard Lava processes (``Dense``/``DelayDense``,
  ``Conv``, ``LIF``, io ``RingBuffer`` source/sinks) and the integer parameters of
  ``graph.fixed`` -- the processes hardware would run. Bit-exact with the IR's fixed semantics.
- ``float``: ``select_tag="floating_pt"`` with the IR's float parameters (agreement reported only).
- sigma-delta graphs (``Delta``/``SigmaDelta``/``Sigma``) are the same plan with ``lava.proc.sdn``
  populations and graded synapses (fixed only; see ``lava_plan``).

``prepare`` (plan, input checks) is shared with the hardware path (``loihi_hw``), so both run one
plan; only the run configuration differs.

Timing: the plan (``lava_plan``) gives every population a Lava start offset so that each IR
path ``population -> Delay(d) -> synapse -> population`` gets exactly d steps (1 from the Lava
synapse, d-1 more from DelayDense); the output and per-population counts are cropped back to the
IR time axis and Delays at the graph output are applied on the host. Every sample starts from a
zero state (u, v, synapse buffers are reset with ``Var.set`` between samples, one channel message
per element; a layer, ``lava_layers``, zeroes its own at the first step of each sample), and non-zero bias
is held at 0 until a population's first IR step, so Lava's leading steps are exact too.
Periodic resets (``CubaLIF.reset_interval``) run as Lava ``LIFReset`` with the offset shifted by
the population's start offset, each sample padded to a multiple of the reset period; a
``bias``-kind input sets the populations' ``bias_mant`` once per sample (it must be constant over
a sample's steps); every Output (Delay, Flatten, Average after populations) is computed on the
host from the recorded spikes (``host_outputs``): ``result.outputs`` by name, ``result.spikes``
per population.

Speed (CPU simulation; see ``lava_plan``'s module doc): ``conv_as="auto"`` runs a Conv2d /
SumPool2d connection as a Lava ``Dense`` with its materialized weight matrix when that is exact and
small (``"conv"`` keeps Lava's ``Conv`` process, as on hardware; ``"dense"`` forces the lowering or
raises), ``io="channels"`` feeds the network with an io ``Injector`` (one message per step)
instead of a ``RingBuffer`` ``Var.set`` (one message per element), and one
``lava_recorder.Recorder`` process records every population (one host read per step, instead of a
sink process per population), and ``layers=True`` runs each population and the Dense synapses into
it as one Lava process (``lava_layers``: the same Lava models in one OS process; ``layers=False``
builds what hardware runs, one process per synapse too). A layer also takes the place of the
io processes where it can: the host pipes the input to the one layer it feeds, and every recorded
layer pipes its output to the host, one message per sample each (a 3-layer chain: 3 processes,
instead of 5 with the Injector and the Recorder, and 8 without layers). Synapse buffers whose source was silent at the end of a sample are not reset (they are
already zero). ``fixed_pt`` DelayDense runs with ``lava_fast_models.PyDelayDenseModelBitAccFast``
(Lava's model with the activation summed over the spiking inputs only, identical integers; Lava's
own rebuilds a (delays x out x in) matrix every step: N-TIDIGITS 3000 steps went from ~195 s to
~7 s). The child runs with one BLAS/OpenMP thread (Lava starts one OS process per Lava
process). ``result.timing`` reports where the time went.

The Lava simulation runs in a child process (``python -m snnc.backends.lava_worker``) with a
timeout; its process group is killed on timeout and ``SnncError`` reports the child's stderr.
"""
from __future__ import annotations

import time

import numpy as np

from ..compiler.lower import lower
from ..compiler.validate import validate
from ..errors import SnncError
from . import host_io
from .child import run_child
from .lava_plan import CONV_AS_DEFAULT, IO_DEFAULT, LAYERS_DEFAULT, LavaPlan, bias_drive, plan_lava
from .plan import input_values
from .result import RunResult

__all__ = ["run_lava", "plan_lava", "host_outputs", "prepare"]


def _run_worker(plan: LavaPlan, spikes, timeout: float, bias=None, record_state: bool = False) -> dict:
    return run_child("snnc.backends.lava_worker", {"plan": plan, "spikes": spikes, "bias": bias or {},
                                                   "record_state": record_state},
                     timeout, "Lava run")


def _shift(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """y[..., t] = x[..., t - d] per neuron (x: (N, *shape, T), d: shape)."""
    T = x.shape[-1]
    y = np.zeros_like(x)
    for k in np.unique(d):
        k = int(k)
        if k >= T:
            continue
        mask = np.broadcast_to(d == k, x.shape[1:-1])
        src = x[..., :T - k] if k else x
        y[:, mask, k:] = src[:, mask, :]
    return y


def host_outputs(plan: LavaPlan, x: np.ndarray, pops) -> dict:
    """Every graph Output from the recorded population spikes ``pops`` ({name: (N, *shape, T)})
    and the input ``x`` (N, *shape, T), as the reference simulator computes them (float64,
    returned as float32 (N, *shape, T) by output name; float64 when the plan records values:
    CubaLI read-outs, sigma-delta messages)."""
    n, T = x.shape[0], x.shape[-1]
    odt = np.float64 if any(p.records_values for p in plan.pops.values()) else np.float32
    outs = {}
    for op in plan.outputs:
        val = {}
        for name, kind, arg, preds in op.program:
            if kind == "pop":
                val[name] = (x if name == plan.input_name else pops[name]).astype(np.float64)
                continue
            v = val[preds[0]]
            for p in preds[1:]:
                v = v + val[p]
            if kind == "delay":
                v = _shift(v, arg)
            elif kind == "flatten":
                v = v.reshape((n, -1, T))
            elif kind == "average":
                v = v.reshape((n, arg, -1, T)).mean(axis=2)
            val[name] = v
        outs[op.name] = val[op.name].reshape((n,) + tuple(op.shape) + (T,)).astype(odt)
    return outs


def check_lava_input(plan: LavaPlan, x: np.ndarray, graph=None):
    """Validate the input for ``plan``: returns (spikes int8, or the integers a graded or Delta
    input sends, or None; per-sample biases); a graded input: its integer messages
    ``x * 2**frac_bits`` (fixed) or its values (float); a Delta input: ``x * input_scale``."""
    if plan.input_kind == "graded":
        from ..compiler.quantize import graded_messages, graded_values
        if plan.mode == "float":
            return graded_values(graph, plan.input_name, x), {}
        return graded_messages(graph, plan.input_name, x).astype(np.int32), {}
    ishape = plan.pops[plan.input_name].shape if plan.input_kind != "bias" else None
    if ishape is not None and tuple(x.shape[1:-1]) != tuple(ishape):
        raise SnncError(f"Lava backend: input {plan.input_name!r} expects (N, "
                        f"{', '.join(map(str, ishape))}, T), got {x.shape}")
    if plan.input_kind == "delta":
        xi = np.asarray(x, dtype=np.float64) * plan.input_scale
        if not np.all(xi == np.round(xi)):
            who = [p.name for p in plan.pops.values() if p.kind == "delta"]
            raise SnncError(f"delta encoder {who[0]!r}: input is not a multiple of 1/{plan.input_scale} "
                            "(Lava's Delta takes integers a_in in that unit)")
        return xi.astype(np.int32), {}
    if plan.input_kind == "spikes":
        if not np.all((x == 0) | (x == 1)):
            raise SnncError("Lava backend: input must be binary spikes (0/1)")
        return x.astype(np.int8), {}
    return None, bias_drive(plan, x)


def prepare(graph, spikes, mode: str = "fixed", conv_as: str = CONV_AS_DEFAULT, io: str = IO_DEFAULT,
            layers: bool = LAYERS_DEFAULT):
    """What a Lava run sends to the worker: ``(plan, x, lava input, per-sample biases)`` for
    ``spikes`` ``(N, *input_shape, T)``; ``run_lava`` and the hardware path (``loihi_hw``) both
    call it, so they run one plan (only the run configuration differs)."""
    validate(graph)
    net = lower(graph)
    x = np.asarray(host_io.check_batch(net, spikes, f"lava-{mode}")[graph.inputs[0]])
    if x.ndim < 2:
        raise SnncError(f"Lava backend: spikes must be (N, *input_shape, T), got shape {x.shape}")
    plan = plan_lava(graph, x.shape[-1], mode, conv_as=conv_as, io=io, net=net, layers=layers)
    ishape = tuple(graph.nodes[plan.input_name].shape)
    if tuple(x.shape[1:-1]) != ishape:
        raise SnncError(f"Lava backend: input {plan.input_name!r} expects (N, {', '.join(map(str, ishape))}, T), "
                        f"got {x.shape}")
    xs, bias = check_lava_input(plan, x, graph)
    return plan, x, xs, bias


def result_of(plan: LavaPlan, x: np.ndarray, pops: dict, timing: dict, engine: str, start: float) -> RunResult:
    """The RunResult of a Lava run: every Output from the recorded populations (``host_outputs``),
    spike (or message) counts, the recorded populations and the worker's timing."""
    outs = host_outputs(plan, x, pops)
    counts = {k: (v != 0).sum(axis=-1, dtype=np.int64) for k, v in pops.items() if plan.pops[k].kind != "li"}
    result = RunResult(output=outs[plan.output.name], counts=counts, engine=engine,
                       seconds=time.perf_counter() - start)
    result.outputs, result.spikes, result.timing = outs, pops, timing
    return result


def run_lava(graph, spikes, mode: str = "fixed", timeout: float = 600.0, conv_as: str = CONV_AS_DEFAULT,
             io: str = IO_DEFAULT, record_state: bool = False, layers: bool = LAYERS_DEFAULT) -> RunResult:
    """Run ``graph`` on Lava. ``spikes``: binary ``(N, *input_shape, T)`` (a bias-kind input:
    its values, constant over T per sample; a Delta encoder's input: its values); see module doc.
    ``result.outputs`` holds every Output by name, ``result.spikes`` every recorded population's
    spikes ``(N, *shape, T)`` (sigma-delta: the messages, in values, of those an Output reads).
    ``record_state``: ``result.state`` = every CUBA population's final ``u`` and ``v`` read back
    from Lava's Vars (fixed point: Loihi integers), after ``result.state_steps[pop]`` of that
    population's own steps (the run is ``T`` + the largest start offset long; a population that
    starts ``o`` steps late has run ``T + max_offset - o`` steps, on zero input after ``T``)."""
    start = time.perf_counter()
    plan, x, xs, bias = prepare(graph, spikes, mode, conv_as, io, layers)
    res = _run_worker(plan, xs, timeout, bias, record_state)
    x = input_values(graph, {graph.inputs[0]: x}, "float")[graph.inputs[0]]   # what the host sent (grid)
    result = result_of(plan, x, res["spikes"], res.get("timing", {}), f"lava-{mode}", start)
    if record_state:
        result.state = result.timing.pop("state")
        result.state_steps = {k: plan.run_steps - plan.pops[k].offset for k in result.state}
    return result
