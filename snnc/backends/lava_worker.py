"""Child-process entry of the Lava backend: ``python -m snnc.backends.lava_worker JOB_DIR``.

Reads ``JOB_DIR/job.pkl`` (``{"plan": LavaPlan, "spikes": (N, *shape, T)}``), builds the Lava
network once, runs every sample from a zero state (state Vars are reset between samples) and
writes ``JOB_DIR/result.pkl`` (``{"spikes": {pop: (N, *shape, T) int8}, "timing": {...}}``).
Any failure: traceback on stderr, exit code 1.
"""
from __future__ import annotations

import os
import pickle
import sys
import time
import traceback

import numpy as np

from .lava_plan import LavaPlan, from_lava, to_lava


def build(plan: LavaPlan, first_input: np.ndarray):
    """Instantiate the Lava processes of ``plan``; returns (procs, sinks, source, state_vars)."""
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    fixed = plan.mode == "fixed"
    L = plan.run_steps
    procs, sinks, state = {}, {}, []
    source = None
    for name, p in plan.pops.items():
        if p.kind == "input":
            source = Source(data=first_input)
            procs[name] = source
            continue
        bias = np.zeros_like(p.bias_mant) if p.gate_bias else p.bias_mant
        lif = LIF(shape=p.lshape, du=p.du, dv=p.dv, vth=p.vth, bias_mant=bias,
                  bias_exp=p.bias_exp, name=name)
        procs[name] = lif
        sink = Sink(shape=p.lshape, buffer=L)
        lif.s_out.connect(sink.a_in)
        sinks[name] = sink
        state += [lif.u, lif.v]
    for c in plan.conns:
        src, dst = procs[c.src], procs[c.dst]
        kw = {}
        if fixed:
            kw = dict(weight_exp=c.weight_exp, num_weight_bits=c.num_weight_bits)
        if c.kind == "dense":
            w = c.weight if fixed else c.weight.astype(float)
            if c.delays is None:
                syn = Dense(weights=w, name=c.name, **kw)
            else:
                syn = DelayDense(weights=w, delays=c.delays.astype(int), name=c.name, **kw)
            out_port = src.s_out.flatten() if c.src_flatten else src.s_out
            out_port.connect(syn.s_in)
            syn.a_out.connect(dst.a_in)
            state.append(syn.a_buff)
        else:
            syn = Conv(weight=c.weight, input_shape=plan.pops[c.src].lshape, padding=c.padding,
                       stride=c.stride, dilation=c.dilation, groups=c.groups, name=c.name,
                       **({"num_weight_bits": c.num_weight_bits} if fixed else {}))
            src.s_out.connect(syn.s_in)
            syn.a_out.connect(dst.a_in)
            state.append(syn.a_buf)
        procs[c.name] = syn
    return procs, sinks, source, state


def lava_input(plan: LavaPlan, sample: np.ndarray) -> np.ndarray:
    """One sample (*shape, T) -> the source buffer (*lava_shape, L), zero-padded."""
    inp = plan.pops[plan.input_name]
    buf = np.zeros(inp.lshape + (plan.run_steps,), dtype=np.int32 if plan.mode == "fixed" else float)
    buf[..., :plan.steps] = to_lava(np.asarray(sample), len(inp.shape))
    return buf


def run(plan: LavaPlan, spikes: np.ndarray):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    t0 = time.perf_counter()
    n, T, L = spikes.shape[0], plan.steps, plan.run_steps
    procs, sinks, source, state = build(plan, lava_input(plan, spikes[0]))
    cfg = Loihi2SimCfg(select_tag="fixed_pt" if plan.mode == "fixed" else "floating_pt")
    gated = sorted({p.offset for p in plan.pops.values() if p.gate_bias})
    out = {name: np.zeros((n,) + plan.pops[name].shape + (T,), dtype=np.int8) for name in sinks}
    started = [False]
    timing = {"build": time.perf_counter() - t0}

    def steps(k):
        if k <= 0:
            return
        if not started[0]:
            source.run(condition=RunSteps(num_steps=k), run_cfg=cfg)
            started[0] = True
            timing["compile_and_first"] = time.perf_counter() - t0
        else:
            source.run(condition=RunSteps(num_steps=k))

    try:
        for i in range(n):
            if i > 0:
                source.data.set(lava_input(plan, spikes[i]))
                for var in state:
                    var.set(np.zeros(var.shape))
                for p in plan.pops.values():
                    if p.gate_bias:
                        procs[p.name].bias_mant.set(np.zeros(p.lshape))
            done = 0
            for o in gated:            # bias switched on exactly when the population's step 0 starts
                steps(o - done)
                done = o
                for p in plan.pops.values():
                    if p.gate_bias and p.offset == o:
                        procs[p.name].bias_mant.set(np.asarray(p.bias_mant, dtype=float))
            steps(L - done)
            for name, sink in sinks.items():
                p = plan.pops[name]
                data = np.asarray(sink.data.get())[..., p.offset:p.offset + T]
                out[name][i] = from_lava(data, len(p.shape)) != 0
    finally:
        if started[0]:
            source.stop()
    timing["total"] = time.perf_counter() - t0
    return out, timing


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = argv[0]
    try:
        with open(os.path.join(job_dir, "job.pkl"), "rb") as f:
            job = pickle.load(f)
        spikes, timing = run(job["plan"], job["spikes"])
        with open(os.path.join(job_dir, "result.pkl.tmp"), "wb") as f:
            pickle.dump({"spikes": spikes, "timing": timing}, f)
        os.replace(os.path.join(job_dir, "result.pkl.tmp"), os.path.join(job_dir, "result.pkl"))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)      # do not wait for stray Lava threads


if __name__ == "__main__":
    main()
