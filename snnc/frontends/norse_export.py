"""Norse 1.1 cells as snnc populations (``CubaLIF`` / ``CubaLI`` float form, state_scale 0).

Read from Norse's source (``norse/torch/functional/lif.py``, ``lif_box.py``, ``iaf.py``,
``leaky_integrator.py``); one forward-Euler step of size ``dt``, with ``a = dt * tau_mem_inv``:

- ``LIFBoxCell``: v' = v + a ((v_leak - v) + x); z = v' > v_th; v = v_reset where z
  -> current_decay 1, voltage_decay a, input gain a (on the synapse weights), threshold v_th.
- ``LIFCell``: i' = i + x; v' = v + a ((v_leak - v) + i'); z = v' > v_th; i = (1 - dt tau_syn_inv) i'
  -> current_decay dt * tau_syn_inv, voltage_decay a, gain a.
- ``IAFCell``: v' = v + x; z = v' > v_th -> current_decay 1, voltage_decay 0, gain 1.
- ``LICell``: LIFCell without threshold; its output is v' -> ``CubaLI`` read-out.

v_reset must be 0 (Loihi resets to zero) and v_leak 0 (Norse also starts v at v_leak).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ..errors import SnncError

_CELLS = ("LIFBoxCell", "LIFCell", "IAFCell", "LICell")


def is_norse(m) -> bool:
    return type(m).__module__.startswith("norse")


def is_neuron(m) -> bool:
    from norse.torch.module.snn import SNNCell  # lazy: heavy
    return isinstance(m, SNNCell) or (is_norse(m) and type(m).__name__ in ("LIF", "LIFBox", "LI", "IAF",
                                                                           "LIFRecurrentCell", "LIFRecurrent"))


def is_leaf(m) -> bool:
    return is_neuron(m)


def is_step_module(module) -> bool:
    from norse.torch.module.sequential import SequentialState  # lazy: heavy
    return isinstance(module, SequentialState) or is_neuron(module)


def state_args(m) -> int:
    return 1 if is_neuron(m) else 0


def spike_index(m):
    return 0


def _param(p, field, name, shape) -> np.ndarray:
    a = torch.as_tensor(getattr(p, field)).detach().double().cpu().numpy()
    return a if a.size == 1 else np.broadcast_to(a, shape)


def neuron_spec(m, name: str, shape) -> SimpleNamespace:
    kind = type(m).__name__
    if kind not in _CELLS or not is_norse(m):
        raise SnncError(f"layer '{name}' is norse {kind}, which snnc cannot export; supported: "
                        + ", ".join(f"norse.torch.{k}" for k in _CELLS)
                        + " (single-step cells, in SequentialState or looped over time)")
    p, dt = m.p, float(m.dt)
    for field in ("v_leak", "v_reset"):
        if hasattr(p, field) and np.any(_param(p, field, name, shape)):
            raise SnncError(f"layer '{name}' (norse {kind}) has {field} = "
                            f"{torch.as_tensor(getattr(p, field)).tolist()}; snnc exports {field} = 0 "
                            "(Loihi resets to 0 and starts from 0)")
    method = getattr(p, "method", "super")
    if method == "adjoint":
        raise SnncError(f"layer '{name}' (norse {kind}) uses method 'adjoint'; use a surrogate "
                        "method (super, triangle, tanh): the forward is the same Heaviside")
    if kind == "IAFCell":
        a, cd = 1.0, 1.0
        vd = 0.0
    else:
        a = dt * _param(p, "tau_mem_inv", name, shape)
        vd = a
        cd = dt * _param(p, "tau_syn_inv", name, shape) if kind in ("LIFCell", "LICell") else 1.0
    readout = kind == "LICell"
    thr = 0.0 if readout else _param(p, "v_th", name, shape)
    if np.ndim(a) and np.any(a != a.flat[0]):
        raise SnncError(f"layer '{name}' (norse {kind}): per-neuron tau_mem_inv; snnc exports one "
                        "membrane time constant per layer")
    return SimpleNamespace(library="norse", kind=kind, shape=tuple(shape), current_decay=cd,
                           voltage_decay=vd, threshold=thr, bias=np.float64(0.0),
                           gain=float(np.asarray(a).flat[0]), reset="zero", reset_delay=False,
                           refractory=0, w_rec=None, readout=readout)
