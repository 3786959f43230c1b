"""Child-process entry of the Lava backend: ``python -m snnc.backends.lava_worker JOB_DIR``.

Reads ``JOB_DIR/job.pkl`` (``{"plan": LavaPlan, "spikes": (N, *shape, T) or None, "bias":
{pop: (bias_exp, bias_mant (N, *lava_shape))}}``), builds the Lava network once, runs every sample
from a zero state (state Vars are reset between samples) and writes ``JOB_DIR/result.pkl``
(``{"spikes": {pop: (N, *shape, T) int8, or float64 values for read-outs and sigma-delta
messages}, "timing": {...}}``). ``build_processes(plan)`` returns the processes a run would
compile, without running them (the hardware path's test compares them with lava-fixed's).
Any failure: traceback on stderr, exit code 1.
"""
from __future__ import annotations

import time
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .lava_plan import SDN_KINDS, LavaPlan, from_lava, to_lava
from .lava_layers import HostFeed, receive_record, set_sample_reset, synapse_params
from .lava_models import lava_pick, name_models
from .lava_recorder import Recorder, model_map as recorder_model_map, split

SDN_STATE = ("sigma", "act", "residue", "error")   # lava.proc.sdn state Vars (reset between samples)


def build(plan: LavaPlan, first_input: Optional[np.ndarray] = None, bias: Optional[dict] = None):
    """Instantiate the Lava processes of ``plan``; returns (procs, sinks, source, state_vars).

    ``plan.io == "ringbuffer"``: the source is an io ``RingBuffer`` holding ``first_input`` (zeros
    when None); ``"channels"``: an io ``Injector`` buffering L steps, or, when the input feeds one
    layer (``Layer.piped``), a ``lava_layers.HostFeed`` into that layer's pipe (no process). Every
    recorded layer sends its output through its own pipe (``Layer.recorded``: ``sinks`` maps it to
    itself); the other recorded populations' outputs go to one ``lava_recorder.Recorder``
    (``sinks`` maps each to it); after each sample the host reads the Recorder's message of each
    step and each layer's one message (``read_recorded``). A bias input has no source (None): the
    populations it feeds start with bias ``bias[pop]`` of sample 0 (``lava_plan.bias_drive``).
    Populations with a periodic reset are ``LIFReset``; sigma-delta kinds are ``lava.proc.sdn``
    processes.
    ``state_vars`` lists (Var, conn or None): every population's state (LIF u and v; sigma, act,
    residue, error) and every synapse's activation buffer with its connection; a layer's
    (``lava_layers``) are not listed: it zeroes them itself at each sample.
    """
    procs, sinks, state = {}, {}, []
    source = None
    layers = plan_layers(plan)
    fed = next((name for name, layer in layers.items() if layer.piped), None)
    for name, p in plan.pops.items():
        if p.kind == "input":
            if fed is None:
                source = procs[name] = _source(plan, p, first_input)
            continue
        layer = layers.get(name)
        if layer is not None:
            layer = (layer.proc, [synapse_params(c, plan.mode == "fixed") for c in layer.conns], plan.run_steps)
        proc, pstate = _population(p, bias, layer)
        procs[name] = proc
        if layer is None:
            state += [(v, None) for v in pstate]
        else:                       # the layer zeroes these itself at each sample (lava_layers)
            set_sample_reset(proc, [v.name for v in pstate] + [f"a_buff_{k}" for k in range(len(layer[1]))])
    if fed is not None:
        source = HostFeed(procs[fed], layers[fed].piped)
    fused = {id(c): (c.dst, k) for name, layer in layers.items() for k, c in enumerate(layer.conns)}
    for c in plan.conns:
        if id(c) in fused:
            dst, k = fused[id(c)]
            if k not in layers[dst].piped:                # (a piped in-port is the host's)
                _out_port(plan, c, procs, source).connect(getattr(procs[dst], f"s_in_{k}"))
            continue
        syn = _synapse(plan, c, procs, source)
        if syn is not None:
            procs[c.name] = syn
            state.append((syn.a_buff if c.kind == "dense" else syn.a_buf, c))
    sinks = {n: procs[n] for n in recorded_populations(plan) if n in layers and layers[n].recorded}
    recorded = recorder_populations(plan, layers)
    if recorded:
        rec = Recorder([plan.pops[n].lshape for n in recorded], plan.run_steps)
        for i, n in enumerate(recorded):
            procs[n].s_out.connect(getattr(rec, f"in_{i}"))
        sinks.update({n: rec for n in recorded})
    return procs, sinks, source, state


def recorded_populations(plan: LavaPlan):
    """The populations whose output the host records (``PopPlan.record``), in plan order."""
    return [n for n, p in plan.pops.items() if p.kind != "input" and p.record]


def recorder_populations(plan: LavaPlan, layers: dict) -> List[str]:
    """The recorded populations the ``Recorder`` records: those that are not recorded layers."""
    return [n for n in recorded_populations(plan) if not (n in layers and layers[n].recorded)]


def read_recorded(sinks: dict, steps: int) -> Dict[str, np.ndarray]:
    """{recorded population: its next ``steps`` steps (*lava_shape, steps) float64}: one receive
    per step from the Recorder (if any), one per sample (``steps``) from each recorded layer's
    pipe."""
    out, recorders = {}, {}
    for name, sink in sinks.items():
        if hasattr(sink, "record"):
            out[name] = receive_record(sink)
        else:
            recorders.setdefault(id(sink), (sink, []))[1].append(name)
    for rec, names in recorders.values():
        data = split(rec, np.stack([rec.receive() for _ in range(steps)], axis=-1))
        out.update(zip(names, data))
    return out


def build_processes(plan: LavaPlan) -> list:
    """Every Lava process of ``plan`` as ``build`` makes it (source, populations, synapses, sinks;
    zero input), built and not run: what a run would compile."""
    procs, sinks, _, _ = build(plan, None, None)
    return all_processes(procs, sinks)


def all_processes(procs: dict, sinks: dict) -> list:
    """``build``'s processes and its sinks (one Recorder, shared by the populations it records;
    a recorded layer is its own sink)."""
    seen = {id(p) for p in procs.values()}
    return list(procs.values()) + list({id(r): r for r in sinks.values() if id(r) not in seen}.values())


def _source(plan: LavaPlan, p, first_input):
    if plan.io == "channels":
        from lava.proc.io.injector import Injector
        return Injector(shape=p.lshape, buffer_size=plan.run_steps)
    from lava.proc.io.source import RingBuffer as Source
    if first_input is None:
        first_input = lava_input(plan, np.zeros(p.shape + (plan.steps,)))
    return Source(data=first_input)


def _population(p, bias, layer=None):
    """The Lava process of a neuron population and its state Vars (reset between samples);
    ``layer``: (layer process class, its synapses' arguments, steps per sample) when it runs as
    a layer (``lava_layers``)."""
    exp, mant = (bias[p.name][0], bias[p.name][1][0]) if bias and p.name in bias else (p.bias_exp, p.bias_mant)
    mant = np.zeros_like(mant) if p.gate_bias else mant
    if p.kind in SDN_KINDS:
        proc = _sdn_population(p, mant)
        return proc, [getattr(proc, v) for v in SDN_STATE if hasattr(proc, v)]
    cls, extra = neuron_class(p)
    kw = dict(shape=p.lshape, du=p.du, dv=p.dv, vth=p.vth, bias_mant=mant, bias_exp=exp, name=p.name, **extra)
    if layer is not None:
        cls, kw["synapses"], kw["sample_steps"] = layer
        kw["pipe_steps"] = kw["sample_steps"]             # host pipes hold one sample
    lif = cls(**kw)
    state = [getattr(lif, k) for k in ("s_prev", "ref_left", "refractory_period_end") if hasattr(lif, k)]
    return lif, state + [lif.u, lif.v]


def neuron_class(p):
    """(Lava process class, its extra arguments) of a ``"lif"``/``"li"`` plan population: snnc's
    models for reset rules and read-outs (``lava_neurons``), else Lava's ``LIFRefractory``,
    ``LIFReset`` or ``LIF``."""
    from lava.proc.lif.process import LIF, LIFRefractory, LIFReset
    from .lava_neurons import population_class
    own = population_class(p)
    if own is not None:
        return own
    if getattr(p, "refractory", 0):
        return LIFRefractory, dict(refractory_period=int(p.refractory))
    if p.reset_interval:
        return LIFReset, dict(reset_interval=p.reset_interval, reset_offset=p.reset_offset)
    return LIF, {}


class Layer(NamedTuple):
    """A population run as one process with its Dense synapses (``lava_layers``)."""
    proc: type                  # the layer's process class
    model: type                 # its model class
    conns: list                 # its fused connections, in order (synapse k: conns[k])
    piped: Tuple[int, ...]      # the synapses the host feeds the input to (``HostFeed``)
    recorded: bool              # the layer sends its output to the host (``receive_record``)


def plan_layers(plan: LavaPlan) -> Dict[str, Layer]:
    """{population: Layer} of the populations that run as one process with their Dense synapses
    (``lava_layers``; ``plan.layers``): those whose neuron model the simulation knows. A recorded
    layer records through its own pipe; the input is piped to the layer it feeds when that is
    its only connection (``piped_input``)."""
    from .lava_layers import fused_connections, layer_classes, synapse_model
    fused = fused_connections(plan)
    if not fused:
        return {}
    models = _sim_models(plan)
    tag = _tag(plan)
    known = {}
    for name, conns in fused.items():
        cls, _ = neuron_class(plan.pops[name])
        model = models.get(cls) or lava_pick(cls, tag)
        if model is not None:
            known[name] = (cls, model, conns)
    fed = piped_input(plan, {name: conns for name, (_, _, conns) in known.items()})
    out = {}
    for name, (cls, model, conns) in known.items():
        piped = tuple(k for k, c in enumerate(conns) if name == fed and c.src == plan.input_name)
        recorded = bool(plan.pops[name].record)
        proc, layer_model = layer_classes(cls, model, tuple(synapse_model(plan, c) for c in conns),
                                          piped, recorded)
        out[name] = Layer(proc, layer_model, conns, piped, recorded)
    return out


def piped_input(plan: LavaPlan, fused: Dict[str, list]) -> Optional[str]:
    """The layer the host feeds the input's spikes to, instead of an io Injector: in a
    "channels" plan whose input feeds exactly one connection, fused into that layer (``fused``:
    {layer: its fused connections}); else None. (The input is then a leaf of the network: the
    processes stay connected without it.)"""
    if plan.io != "channels" or plan.input_kind == "bias":
        return None
    reads = [c for c in plan.conns if c.src == plan.input_name]
    if len(reads) == 1 and any(c is reads[0] for c in fused.get(reads[0].dst, ())):
        return reads[0].dst
    return None


def _sdn_population(p, bias):
    """Lava's ``lava.proc.sdn`` Delta / SigmaDelta / Sigma with the plan's integers."""
    from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta

    if p.kind == "sigma":
        return Sigma(shape=p.lshape)
    kw = dict(shape=p.lshape, vth=p.vth, spike_exp=p.spike_exp, state_exp=p.state_exp, cum_error=p.cum_error)
    if p.kind == "delta":
        return Delta(**kw)
    act = ActivationMode.RELU if p.act_mode == "relu" else ActivationMode.UNIT
    # Lava's SigmaDelta scales its bias argument by 2**(spike_exp + state_exp) into its Var;
    # the plan holds the Var's value (what a bias set writes)
    return SigmaDelta(act_mode=act, bias=np.asarray(bias, dtype=np.int64) >> (p.spike_exp + p.state_exp), **kw)


def _synapse(plan: LavaPlan, c, procs, source):
    """The Lava synapse of connection ``c``, connected (None for a link: a port into a_in)."""
    from lava.proc.dense.process import DelayDense, Dense

    fixed = plan.mode == "fixed"
    dst = procs[c.dst]
    out_port = _out_port(plan, c, procs, source)
    if c.kind == "link":
        out_port.connect(dst.a_in)
        return None
    if c.kind == "dense":
        kw = synapse_params(c, fixed)                    # what a layer's synapse gets too
        w, delays = kw.pop("weights"), kw.pop("delays")
        if not kw["num_message_bits"]:                   # graded messages (a = W @ s) only
            del kw["num_message_bits"]
        if delays is None:
            syn = Dense(weights=w, name=c.name, **kw)
        else:
            syn = DelayDense(weights=w, delays=delays, name=c.name, **kw)
        out_port.connect(syn.s_in)
        a_out = syn.a_out.reshape(plan.pops[c.dst].lshape) if c.dst_reshape else syn.a_out
        a_out.connect(dst.a_in)
        return syn
    kw = dict(num_weight_bits=c.num_weight_bits) if fixed else {}
    if c.num_message_bits:
        kw["num_message_bits"] = c.num_message_bits      # graded messages: a = W @ s
    from lava.proc.conv.process import Conv     # lazy: imports scipy.signal/stats
    syn = Conv(weight=c.weight, input_shape=plan.pops[c.src].lshape, padding=c.padding,
               stride=c.stride, dilation=c.dilation, groups=c.groups, name=c.name, **kw)
    out_port.connect(syn.s_in)
    syn.a_out.connect(dst.a_in)
    return syn


def _out_port(plan: LavaPlan, c, procs, source):
    """The port connection ``c`` reads: its source's spikes (flattened when a Dense reads a
    (C, H, W) population)."""
    src = procs[c.src]
    out_port = src.out_port if src is source and plan.io == "channels" else src.s_out
    return out_port.flatten() if c.src_flatten and len(out_port.shape) > 1 else out_port


def lava_input(plan: LavaPlan, sample: np.ndarray) -> np.ndarray:
    """One sample (*shape, T) -> the source buffer (*lava_shape, L), zero-padded."""
    inp = plan.pops[plan.input_name]
    buf = np.zeros(inp.lshape + (plan.run_steps,), dtype=np.int32 if plan.mode == "fixed" else float)
    buf[..., :plan.steps] = to_lava(np.asarray(sample), len(inp.shape))
    return buf


def _buffer_is_zero(conn, raw: Dict[str, np.ndarray]) -> bool:
    """After a sample, a synapse's activation buffer holds only what its source sent in the last
    (1 + largest extra delay) Lava steps: zero when the source was silent then."""
    if conn is None or conn.src not in raw:
        return False
    k = 1 + (int(conn.delays.max()) if conn.delays is not None else 0)
    return not np.any(raw[conn.src][..., -k:])


def io_models(plan: LavaPlan) -> dict:
    """The io Injector model of a "channels" plan: it carries no tag, so a tagged selection must
    name it."""
    if plan.io != "channels":
        return {}
    from lava.proc.io.injector import Injector, PyLoihiInjectorModel
    return {Injector: PyLoihiInjectorModel}


def _tag(plan: LavaPlan) -> str:
    return "fixed_pt" if plan.mode == "fixed" else "floating_pt"


def _sim_models(plan: LavaPlan) -> dict:
    """The simulation's own model choices by process class (snnc's models and faster ones)."""
    from .lava_refractory import model_map
    from .lava_fast_models import fast_model_map
    from .lava_neurons import model_map as neuron_model_map
    models = model_map(plan)        # snnc's fixed_pt LIFRefractory model, when needed
    models.update(neuron_model_map(plan))   # snnc's reset-rule LIF and leaky-integrator models
    models.update(fast_model_map(plan))     # bit-identical faster DelayDense and Conv (lava_fast_models)
    return models


def sim_config(plan: LavaPlan):
    """The CPU simulation's run configuration: ``Loihi2SimCfg`` with the plan's tag, its layers'
    models (``plan_layers``) named."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    models = _sim_models(plan)
    layers = plan_layers(plan)
    models.update(recorder_model_map(len(recorder_populations(plan, layers))))   # no tag: named here
    models.update(io_models(plan))
    models.update({layer.proc: layer.model for layer in layers.values()})
    return Loihi2SimCfg(select_tag=_tag(plan), exception_proc_model_map=models) if models \
        else Loihi2SimCfg(select_tag=_tag(plan))


def run(plan: LavaPlan, spikes: Optional[np.ndarray], bias: Optional[dict] = None, cfg=None,
        record_state: bool = False):
    """Run every sample from a zero state; returns ({population: (N, *shape, T) int8 spikes},
    timing). ``spikes``: (N, *shape, T) for a spike input, None for a bias input, whose
    per-sample biases ``bias`` are ``lava_plan.bias_drive``'s. ``cfg``: the Lava run
    configuration (default ``sim_config(plan)``; ``loihi_hw`` passes ``Loihi2HwCfg``).
    ``record_state``: also read every LIF population's ``u`` and ``v`` Vars after each sample's
    ``run_steps`` steps into ``timing["state"]`` ({population: {"u", "v": (N, *shape)}}, IR axis
    order; Lava's units: integers in fixed point)."""
    from lava.magma.core.run_conditions import RunSteps

    t0 = time.perf_counter()
    bias = bias or {}
    spiking = plan.input_kind != "bias"        # spikes, or graded integer messages
    if spiking:
        n = spikes.shape[0]
    elif bias:
        n = next(iter(bias.values()))[1].shape[0]
    else:
        raise ValueError("a bias-input plan needs the per-sample biases")
    T, L = plan.steps, plan.run_steps
    channels = plan.io == "channels"
    first = lava_input(plan, spikes[0]) if spiking else None
    procs, sinks, source, state = build(plan, None if channels else first, bias)
    root = procs[plan.root] if plan.root in procs else source.proc   # (a piped input: its layer)
    # every process named by instance: Lava's compiler then skips its model search (lava_models)
    cfg = name_models(cfg if cfg is not None else sim_config(plan), all_processes(procs, sinks))
    gated = sorted({p.offset for p in plan.pops.values() if p.gate_bias})
    # the bias each population's Var holds now (as built), and what sample i needs
    cur = {name: (np.zeros_like(bias[name][1][0] if name in bias else p.bias_mant) if p.gate_bias
                  else (bias[name][1][0] if name in bias else p.bias_mant))
           for name, p in plan.pops.items() if p.has_bias and (p.gate_bias or name in bias)}

    def want(name, i):
        return bias[name][1][i] if name in bias else plan.pops[name].bias_mant

    def set_bias(name, value):
        if not np.array_equal(cur[name], value):
            _bias_var(procs[name]).set(np.asarray(value, dtype=float))
            cur[name] = value
            timing["bias_sets"] += 1
    out = {name: np.zeros((n,) + plan.pops[name].shape + (T,),
                          dtype=np.float64 if plan.pops[name].records_values else np.int8) for name in sinks}
    lifs = [name for name, p in plan.pops.items() if p.kind == "lif"] if record_state else []
    states = {name: {k: np.zeros((n,) + plan.pops[name].shape) for k in ("u", "v")} for name in lifs}
    started = [False]
    timing = {"build": time.perf_counter() - t0, "input": 0.0, "reset": 0.0, "run": 0.0,
              "read": 0.0, "resets_skipped": 0, "resets_done": 0, "bias_sets": 0}

    def tick(key, t):
        now = time.perf_counter()
        timing[key] += now - t
        return now

    def steps(k):
        if k <= 0:
            return
        t = time.perf_counter()
        if not started[0]:
            root.run(condition=RunSteps(num_steps=k), run_cfg=cfg)
            started[0] = True
            timing["compile_and_first"] = time.perf_counter() - t0
        else:
            root.run(condition=RunSteps(num_steps=k))
        tick("run", t)

    if channels:
        root.create_runtime(run_cfg=cfg)
        started[0] = True
        timing["compile"] = time.perf_counter() - t0
    raw: Dict[str, np.ndarray] = {}
    try:
        for i in range(n):
            t = time.perf_counter()
            if spiking:
                buf = first if i == 0 else lava_input(plan, spikes[i])
                if isinstance(source, HostFeed):       # a layer's pipe: the sample at once
                    source.send(buf)
                elif channels:
                    for k in range(L):
                        source.send(buf[..., k])
                elif i > 0:
                    source.data.set(buf)
            t = tick("input", t)
            if i > 0:
                for var, conn in state:
                    if _buffer_is_zero(conn, raw):     # raw: the previous sample's spikes
                        timing["resets_skipped"] += 1
                        continue
                    var.set(np.zeros(var.shape))
                    timing["resets_done"] += 1
            if spiking:
                raw[plan.input_name] = buf             # (after the resets: they look at the last sample)
            for name in cur:           # gated: 0 until step 0; bias-driven: this sample's bias
                p = plan.pops[name]
                set_bias(name, np.zeros_like(cur[name]) if p.gate_bias else want(name, i))
            tick("reset", t)
            done = 0
            for o in gated:            # bias switched on exactly when the population's step 0 starts
                steps(o - done)
                done = o
                t = time.perf_counter()
                for name in cur:
                    if plan.pops[name].gate_bias and plan.pops[name].offset == o:
                        set_bias(name, want(name, i))
                tick("reset", t)
            steps(L - done)
            t = time.perf_counter()
            recorded = read_recorded(sinks, L)
            for name in sinks:
                p, data = plan.pops[name], recorded[name]
                raw[name] = data
                rec = from_lava(data[..., p.offset:p.offset + T], len(p.shape))
                out[name][i] = rec * p.out_scale if p.records_values else rec != 0
            for name in lifs:
                nd = len(plan.pops[name].shape)
                for k in ("u", "v"):
                    val = np.asarray(getattr(procs[name], k).get()).reshape(plan.pops[name].lshape)
                    states[name][k][i] = from_lava(val, nd)
            tick("read", t)
    finally:
        if started[0]:
            root.stop()
    timing["total"] = time.perf_counter() - t0
    if record_state:
        timing["state"] = states
    return out, timing


def _bias_var(proc):
    """The Var holding a population's bias: LIF's ``bias_mant``, SigmaDelta's ``bias``."""
    return proc.bias_mant if hasattr(proc, "bias_mant") else proc.bias


def _work(job: dict) -> dict:
    spikes, timing = run(job["plan"], job["spikes"], job.get("bias"), record_state=job.get("record_state", False))
    return {"spikes": spikes, "timing": timing}


def skip_pandas() -> None:
    """In the Lava child only: make ``import pandas`` fail at once. Lava's compiler builds its
    graphs with networkx, whose ``to_networkx_graph`` imports pandas just to test whether its
    input is a DataFrame (it is not; without pandas networkx skips the test): 0.2-0.6 s of every
    run. Neither Lava's simulation nor snnc's models use pandas."""
    import sys
    sys.modules.setdefault("pandas", None)


if __name__ == "__main__":
    from .child import child_main
    skip_pandas()
    child_main(_work)
