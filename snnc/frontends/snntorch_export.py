"""snnTorch 1.0 neurons as snnc populations (``CubaLIF`` float form, state_scale 0).

Read from snnTorch's source (``snntorch/_neurons/leaky.py``, ``synaptic.py``, ``rleaky.py``,
``rsynaptic.py``); per step, with ``reset = H(mem[t-1] - thr)`` and ``H(x) = x > 0``:

- ``Leaky``:     mem[t] = beta mem[t-1] + I[t] - reset thr  ("subtract", reset_delay=True)
  -> current_decay 1, voltage_decay 1 - beta, threshold thr.
- ``Synaptic``:  syn[t] = alpha syn[t-1] + I[t]; mem[t] = beta mem[t-1] + syn[t] (- reset ...)
  -> current_decay 1 - alpha.
- ``RLeaky`` / ``RSynaptic``: I[t] also gets ``recurrent(spk[t-1])`` (``nn.Linear`` for
  ``all_to_all=True``, ``V * spk`` otherwise) -> ``RecurrentCubaLIF`` with W_rec (and the
  recurrent Linear's bias as the neuron bias, Leaky-type only).
- ``reset_mechanism``: "subtract" | "zero" | "none"; ``reset_delay`` True (snnTorch's default:
  the threshold is subtracted at the next step) or False (immediate). The exact reading of each
  combination is the IR's (snnc/compiler/ir.py, ``CubaLIF``); "subtract" with ``reset_delay=False``
  is the IR's "subtract_snntorch": ``forward`` computes m = beta mem + I - H(mem - thr) thr
  (``_base_sub``), fires on m > thr, then stores m - (spk - reset) thr = beta mem + I - spk thr.
- spikes are ``mem > thr`` (``spike_grad`` forward is a Heaviside).

Refused by name: ``Alpha``, ``Lapicque``, ``RLeaky`` with a convolutional recurrence,
``inhibition=True``, graded spikes (``graded_spikes_factor != 1``), ``state_quant``.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ..errors import SnncError

_NEURONS = ("Leaky", "Synaptic", "RLeaky", "RSynaptic")


def is_snntorch(m) -> bool:
    return type(m).__module__.startswith("snntorch")


def is_neuron(m) -> bool:
    from snntorch._neurons.neurons import SpikingNeuron  # lazy: heavy
    return isinstance(m, SpikingNeuron)


def is_leaf(m) -> bool:
    return is_neuron(m)


def is_step_module(module) -> bool:
    """True when the network's neurons keep their own state (``init_hidden=True``)."""
    ns = [m for m in module.modules() if is_snntorch(m) and is_neuron(m)]
    return bool(ns) and all(m.init_hidden for m in ns)


def state_args(m) -> int:
    """Data args of a neuron call: ``lif(input_, mem)`` -> 1 (the rest is state)."""
    return 1 if is_neuron(m) else 0


def spike_index(m):
    """Index of the spikes in the neuron's returned tuple (None: it returns spikes alone)."""
    return None if (m.init_hidden and not m.output) else 0


def reset_all(module):
    """Zero every snnTorch neuron's hidden state (snntorch.utils.reset)."""
    from snntorch import utils  # lazy: heavy
    utils.reset(module)


def _scalar_or_array(t: torch.Tensor, shape) -> np.ndarray:
    a = t.detach().double().cpu().numpy()
    return a if a.size == 1 else np.broadcast_to(a, shape)


def neuron_spec(m, name: str, shape) -> SimpleNamespace:
    """A snnTorch neuron ``m`` on per-step shape ``shape`` (without batch) as CubaLIF fields."""
    kind = type(m).__name__
    if kind not in _NEURONS or not type(m).__module__.startswith("snntorch"):
        raise SnncError(f"layer '{name}' is snntorch.{kind}, which snnc cannot export; supported: "
                        + ", ".join(f"snntorch.{k}" for k in _NEURONS))
    if getattr(m, "inhibition", False):
        raise SnncError(f"layer '{name}' (snntorch.{kind}) has inhibition=True (winner-take-all "
                        "across the batch), which snnc cannot export")
    if m.state_quant:
        raise SnncError(f"layer '{name}' (snntorch.{kind}) has state_quant; snnc exports float "
                        "membranes (its own quantization pass maps them to Loihi)")
    if not torch.all(m.graded_spikes_factor == 1):
        raise SnncError(f"layer '{name}' (snntorch.{kind}) has graded spikes "
                        f"(graded_spikes_factor {m.graded_spikes_factor.tolist()}); snnc exports 1/0 spikes")
    beta = _scalar_or_array(m.beta.clamp(0, 1), shape)
    alpha = _scalar_or_array(m.alpha.clamp(0, 1), shape) if hasattr(m, "alpha") else np.float64(0.0)
    reset = {0: "subtract", 1: "zero", 2: "none"}[int(m.reset_mechanism_val)]
    spec = SimpleNamespace(library="snntorch", kind=kind, shape=tuple(shape),
                           current_decay=1.0 - alpha, voltage_decay=1.0 - beta,
                           threshold=_scalar_or_array(m.threshold, shape), bias=np.float64(0.0),
                           gain=1.0, reset=reset, reset_delay=bool(m.reset_delay), refractory=0,
                           w_rec=None, readout=False)
    if reset == "zero" and m.reset_delay:   # ir.CubaLIF: the same spikes as the immediate zero reset,
        spec.reset_delay = False               # for Synaptic with v held at 0 for one step
        spec.refractory = 1 if kind in ("Synaptic", "RSynaptic") else 0
    if reset == "none":
        spec.reset_delay = False
    if reset == "subtract" and not m.reset_delay:   # fires on mem - thr H(mem[t-1] - thr) (ir.CubaLIF)
        spec.reset, spec.reset_delay = "subtract_snntorch", False
    if kind in ("RLeaky", "RSynaptic"):
        spec.w_rec, rec_bias = _recurrent(m, name, shape)
        if rec_bias is not None and np.any(rec_bias):
            if kind == "RSynaptic":
                raise SnncError(f"layer '{name}' (snntorch.RSynaptic): its recurrent Linear has a bias, "
                                "which enters the synaptic current (a Loihi bias enters v); build "
                                "nn.Linear(..., bias=False) or zero it")
            spec.bias = rec_bias
    return spec


def _recurrent(m, name, shape):
    if len(shape) != 1:
        raise SnncError(f"layer '{name}' (snntorch.{type(m).__name__}) on shape {tuple(shape)}: snnc "
                        "exports recurrent neurons on 1-D layers (a Linear recurrence) only")
    rec = m.recurrent
    if isinstance(rec, torch.nn.Linear):
        w = rec.weight.detach().double().numpy()
        b = rec.bias.detach().double().numpy() if rec.bias is not None else None
        return w, b
    if isinstance(rec, torch.nn.Conv2d):
        raise SnncError(f"layer '{name}' (snntorch.{type(m).__name__}) has a convolutional "
                        "recurrence, which snnc cannot export")
    v = np.broadcast_to(m.V.detach().double().numpy(), shape)     # RecurrentOneToOne: V * spk
    return np.diag(v), None
