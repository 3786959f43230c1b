"""Loihi 2 hardware run: detect Intel's runtime, build the Lava processes, run on Loihi2HwCfg.

Intel's Loihi 2 compiler and runtime (``lava-loihi``, INRC members only) provide
``lava.magma.compiler.subcompilers.nc`` (the neuro-core compiler). Without it nothing is built:
``require_runtime`` raises SnncError at once, naming what is missing and what works without it.

The processes given to the hardware are the Lava backend's own: ``hardware_plan`` is
``lava_backend.prepare(graph, spikes, "fixed")`` (the bit-accurate ``fixed_pt`` plan that
``snnc run --backend lava-fixed`` simulates, same ``conv_as``/``io`` defaults; CUBA and
sigma-delta populations alike) and ``lava_worker.build`` instantiates them. Only the run
configuration differs (``Loihi2HwCfg`` instead of ``lava_worker.sim_config``).
The run happens in the same timeout-guarded child process as every Lava run (``child.py``).
"""
from __future__ import annotations

import importlib.util
import time
from typing import Tuple

from ..errors import SnncError
from .lava_plan import CONV_AS_DEFAULT, IO_DEFAULT

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


def hardware_plan(graph, spikes, conv_as: str = CONV_AS_DEFAULT, io: str = IO_DEFAULT):
    """``(plan, x, lava input, per-sample biases)`` sent to hardware for ``spikes`` (N, *shape, T):
    ``lava_backend.prepare(graph, spikes, "fixed", conv_as, io)``, the plan that ``lava-fixed``
    simulates, with the same defaults, each synapse its own process (``layers=False``: Loihi's
    synapse and neuron programs; the simulation runs them in one process, ``lava_layers``)."""
    from .lava_backend import prepare
    return prepare(graph, spikes, "fixed", conv_as, io, layers=False)


def run_config(name: str, plan):
    """``"loihi2"``: Loihi2HwCfg (needs Intel's runtime); ``"sim-fixed"``: the same plan under the
    CPU simulation's configuration (``lava_worker.sim_config``: Loihi2SimCfg(select_tag="fixed_pt")
    with snnc's fixed_pt models where Lava's cannot run a population), to check the hardware path
    without hardware. Both name the io Injector model (untagged) of a "channels" plan and snnc's Recorder."""
    from .lava_recorder import model_map as recorder_models
    from .lava_worker import io_models, recorded_populations, sim_config
    if name == "loihi2":
        from lava.magma.core.run_configs import Loihi2HwCfg
        models = {**io_models(plan), **recorder_models(len(recorded_populations(plan)))}
        return Loihi2HwCfg(select_tag="fixed_pt", exception_proc_model_map=models) if models else Loihi2HwCfg()
    if name == "sim-fixed":
        return sim_config(plan)
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


def run_hw(graph, spikes, config: str = "loihi2", check_runtime: bool = True, timeout: float = 3600.0,
           conv_as: str = CONV_AS_DEFAULT, io: str = IO_DEFAULT):
    """Run ``graph`` on Loihi 2 (or the hardware path under ``config``); a RunResult like ``snnc.run``."""
    if config == "loihi2":
        refuse_custom_neurons(graph)
    if check_runtime and config == "loihi2":
        require_runtime()
    from .host_io import prepare as check_input
    from .lava_backend import result_of
    x, batched = check_input(graph, spikes)
    t0 = time.perf_counter()
    plan, x, xs, bias = hardware_plan(graph, x, conv_as, io)
    pops, timing = run_plan(plan, xs, config, bias, timeout)
    r = result_of(plan, x, pops, timing, "loihi2" if config == "loihi2" else "loihi2-plan-simulated", t0)
    if not batched:
        r.output = r.output[0]
        r.counts = {k: v[0] for k, v in r.counts.items()}
    return r


if __name__ == "__main__":
    from .child import child_main
    child_main(_work)
