"""The process model Lava's CPU simulation runs for each process, named before compiling.

Lava's compiler finds a process's models by importing every module in the folder of the
process's module (``ProcGroupDiGraphs._find_proc_models``), for every process of the network,
unless the run configuration's ``exception_proc_model_map`` names the model for that process
*instance* (a class key is consulted only after the search, by ``select``). On a fresh Lava
child that search is most of the compile time of a small network (0.3-1 s: lava.proc's folders,
and snnc/backends/ for snnc's own processes). ``LAVA_PICKS`` names, per Lava process class
snnc builds and tag, the model ``Loihi2SimCfg(select_tag=tag)`` selects after its own search
(tests/test_lava_backend.py checks every entry against that search and selection), and
``name_models`` keys the run configuration by instance, so the compiler runs exactly the models
it would have found, without searching. A process of another class is searched as before.
"""
from __future__ import annotations

import importlib
from typing import Dict, Iterable, Tuple

# (process module, class) -> {tag: (model module, class)}: Loihi2SimCfg's own picks (Lava 0.10)
LAVA_PICKS: Dict[Tuple[str, str], Dict[str, Tuple[str, str]]] = {
    ("lava.proc.dense.process", "Dense"): {"fixed_pt": ("lava.proc.dense.models", "PyDenseModelBitAcc"),
                                           "floating_pt": ("lava.proc.dense.models", "PyDenseModelFloat")},
    ("lava.proc.dense.process", "DelayDense"): {
        "fixed_pt": ("lava.proc.dense.models", "PyDelayDenseModelBitAcc"),
        "floating_pt": ("lava.proc.dense.models", "PyDelayDenseModelFloat")},
    ("lava.proc.lif.process", "LIF"): {"fixed_pt": ("lava.proc.lif.models", "PyLifModelBitAcc"),
                                       "floating_pt": ("lava.proc.lif.models", "PyLifModelFloat")},
    ("lava.proc.lif.process", "LIFReset"): {"fixed_pt": ("lava.proc.lif.models", "PyLifResetModelBitAcc"),
                                            "floating_pt": ("lava.proc.lif.models", "PyLifResetModelFloat")},
    ("lava.proc.conv.process", "Conv"): {"fixed_pt": ("lava.proc.conv.models", "PyConvModelFixed"),
                                         "floating_pt": ("lava.proc.conv.models", "PyConvModelFloat")},
    ("lava.proc.io.source", "RingBuffer"): {"fixed_pt": ("lava.proc.io.source", "PySendModelFixed"),
                                            "floating_pt": ("lava.proc.io.source", "PySendModelFloat")},
    ("lava.proc.sdn.process", "Sigma"): {"fixed_pt": ("lava.proc.sdn.models", "PySigmaModelFixed"),
                                         "floating_pt": ("lava.proc.sdn.models", "PySigmaModelFloat")},
    ("lava.proc.sdn.process", "Delta"): {"fixed_pt": ("lava.proc.sdn.models", "PyDeltaModelFixed"),
                                         "floating_pt": ("lava.proc.sdn.models", "PyDeltaModelFloat")},
    ("lava.proc.sdn.process", "SigmaDelta"): {
        "fixed_pt": ("lava.proc.sdn.models", "PySigmaDeltaModelFixed"),
        "floating_pt": ("lava.proc.sdn.models", "PySigmaDeltaModelFloat")},
}


def lava_pick(proc_cls: type, tag: str):
    """The model class Loihi2SimCfg(select_tag=tag) selects for ``proc_cls``, or None when
    ``LAVA_PICKS`` does not name it."""
    where = LAVA_PICKS.get((proc_cls.__module__, proc_cls.__name__), {}).get(tag)
    if where is None:
        return None
    return getattr(importlib.import_module(where[0]), where[1])


def name_models(cfg, procs: Iterable):
    """``cfg`` (a Loihi2SimCfg) with every process of ``procs`` named by instance in its
    ``exception_proc_model_map``: the class entries it already has (snnc's models), else Lava's
    own pick (``LAVA_PICKS``). Any other configuration (Loihi 2 hardware) is returned as it is."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    if not isinstance(cfg, Loihi2SimCfg):
        return cfg
    models = cfg.exception_proc_model_map
    for proc in procs:
        model = models.get(type(proc)) or lava_pick(type(proc), cfg.select_tag)
        if model is not None:
            models[proc] = model
    return cfg
