"""Loihi 2 hardware run: detect Intel's runtime, build the Lava processes, run on Loihi2HwCfg.

Intel's Loihi 2 compiler and runtime (``lava-loihi``, INRC members only) provide
``lava.magma.compiler.subcompilers.nc`` (the neuro-core compiler). Without it nothing is built:
``require_runtime`` raises SnncError at once, naming what is missing and what works without it.

The processes given to the hardware are the Lava backend's own: ``hardware_plan`` is
``lava_plan.plan_lava(graph, steps, "fixed")`` (the bit-accurate ``fixed_pt`` plan that
``snnc run --backend lava-fixed`` simulates) and ``lava_worker.build`` instantiates them. Only
the run configuration differs (``Loihi2HwCfg`` instead of ``Loihi2SimCfg(select_tag="fixed_pt")``).
The run happens in the same timeout-guarded child process as every Lava run (``child.py``).
"""
from __future__ import annotations

import importlib.util
from typing import Tuple

import numpy as np

from ..errors import SnncError

NC_COMPILER = "lava.magma.compiler.subcompilers.nc.ncproc_compiler"


def runtime_status() -> Tuple[bool, str]:
    """(available, explanation) for Intel's Loihi 2 runtime on this machine."""
    try:
        found = importlib.util.find_spec(NC_COMPILER) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return True, f"Loihi 2 runtime found ({NC_COMPILER})"
    try:
        import lava  # noqa: F401
        lava_ok = "lava-nc is installed"
    except ImportError:
        lava_ok = "lava-nc is not installed either"
    return False, (f"Intel's Loihi 2 runtime is not installed: the module {NC_COMPILER} (package "
                   f"lava-loihi, available to INRC members only) cannot be imported; {lava_ok}. "
                   "Without it snnc cannot run on Loihi hardware. These work without it: "
                   "'snnc deploy MODEL --target loihi2 --dry-run' (map and fit check), "
                   "'snnc deploy MODEL --target loihi2 --bundle DIR' (files to take to a Loihi host) and "
                   "'snnc run MODEL --backend lava-fixed' (the bit-accurate simulation)")


def require_runtime() -> None:
    ok, why = runtime_status()
    if not ok:
        raise SnncError(why)


def refuse_custom_neurons(graph) -> None:
    """Loihi 2 runs only its standard CUBA neuron here: refuse, by name, populations that need a
    custom (microcoded) neuron program, which snnc does not ship (``snnc info`` lists them)."""
    from ..compiler.notes import custom_neuron_programs
    custom = custom_neuron_programs(graph)
    if custom:
        who = "; ".join(f"{p!r}: {why}" for p, why in custom.items())
        raise SnncError(f"Loihi 2: populations need a custom neuron program that snnc does not ship ({who}); "
                        "run them on Lava CPU (lava-fixed is bit-exact) or change them to the standard CUBA "
                        "neuron (reset zero, spiking)")


def hardware_plan(graph, steps: int):
    """The fixed-point Lava plan sent to hardware: the same one the bit-accurate simulation runs."""
    from .lava_plan import plan_lava
    return plan_lava(graph, int(steps), "fixed")


def run_config(name: str, plan=None):
    """``"loihi2"``: Loihi2HwCfg (needs Intel's runtime); ``"sim-fixed"``: the same plan under
    Loihi2SimCfg(select_tag="fixed_pt") (to check the hardware path without hardware), with snnc's
    own fixed_pt models for the populations Lava's LIF cannot run (refractory, reset rules,
    read-outs)."""
    from .lava_recorder import model_map as recorder_models
    from .lava_worker import recorded_populations
    recorder = recorder_models(len(recorded_populations(plan))) if plan is not None else {}
    if name == "loihi2":
        from lava.magma.core.run_configs import Loihi2HwCfg
        return Loihi2HwCfg(exception_proc_model_map=recorder) if recorder else Loihi2HwCfg()
    if name == "sim-fixed":
        from lava.magma.core.run_configs import Loihi2SimCfg
        models = dict(recorder)
        if plan is not None:
            from .lava_neurons import model_map as neuron_models
            from .lava_refractory import model_map as refractory_models
            models.update({**refractory_models(plan), **neuron_models(plan)})
        if models:
            return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
        return Loihi2SimCfg(select_tag="fixed_pt")
    raise ValueError(f"unknown run configuration {name!r}")


def _work(job: dict) -> dict:
    from . import lava_worker
    spikes, timing = lava_worker.run(job["plan"], job["spikes"], job["bias"],
                                     cfg=run_config(job["config"], job["plan"]))
    return {"spikes": spikes, "timing": timing}


def run_plan(plan, spikes, config: str = "loihi2", bias=None, timeout: float = 3600.0):
    """Build ``plan``'s processes (lava_worker.build) and run them under ``run_config(config)``
    in the timeout-guarded child (backends/child.py). Returns (spikes per population, timing)."""
    from .child import run_child
    what = "Loihi 2 run" if config == "loihi2" else "Lava run (hardware path)"
    res = run_child("snnc.backends.loihi_hw", {"plan": plan, "spikes": spikes, "bias": bias,
                                                "config": config}, timeout, what)
    return res["spikes"], res["timing"]


def run_hw(graph, spikes, config: str = "loihi2", check_runtime: bool = True, timeout: float = 3600.0):
    """Run ``graph`` on Loihi 2 (or the hardware path under ``config``); a RunResult like ``snnc.run``."""
    if config == "loihi2":
        refuse_custom_neurons(graph)
    if check_runtime and config == "loihi2":
        require_runtime()
    import time
    from .host_io import prepare as check_input
    from .lava_backend import check_lava_input, host_outputs
    from .result import RunResult
    from ..compiler.validate import validate
    validate(graph)
    x, batched = check_input(graph, spikes)
    from .reference_sdn import has_sigma_delta
    if has_sigma_delta(graph):
        from .lava_sdn import run_lava_sdn      # sigma-delta: the lava.proc.sdn processes of lava-fixed
        r = run_lava_sdn(graph, x, "fixed", timeout, config=config)
        if config != "loihi2":
            r.engine = "loihi2-plan-simulated"
        if not batched:
            r.output = r.output[0]
        return r
    plan = hardware_plan(graph, x.shape[-1])
    xs, bias = check_lava_input(plan, x, graph)
    t0 = time.perf_counter()
    pops, timing = run_plan(plan, xs, config, bias, timeout)
    # host side of the outputs, exactly as the Lava backend computes them
    outs = host_outputs(plan, x, pops)
    counts = {k: v.sum(axis=-1, dtype=np.int64) for k, v in pops.items() if plan.pops[k].kind != "li"}
    r = RunResult(outs[plan.output.name], counts,
                  engine="loihi2" if config == "loihi2" else "loihi2-plan-simulated",
                  seconds=time.perf_counter() - t0)
    r.outputs, r.spikes, r.timing = outs, pops, timing
    if not batched:
        r.output = r.output[0]
        r.counts = {k: v[0] for k, v in r.counts.items()}
    return r


if __name__ == "__main__":
    from .child import child_main
    child_main(_work)
