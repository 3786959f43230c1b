"""Deployment notes for ``snnc info``: what a compiled graph needs beyond Loihi 2's standard
CUBA neuron, and which exact rewrites the compiler made. Both read the lowered network."""
from __future__ import annotations

from typing import Dict, List, Union

import numpy as np

from .ir import CubaLI, CubaLIF, Graph
from .lower import Network, lower


def _net(model: Union[Graph, Network]) -> Network:
    return model if isinstance(model, Network) else lower(model)


def custom_neuron_programs(model: Union[Graph, Network]) -> Dict[str, str]:
    """{population: why} for every population Loihi 2's standard CUBA neuron (zero reset, one
    threshold, spikes out) cannot run: it needs a custom (microcoded) neuron program on hardware.
    ``model``: a graph or its lowered network."""
    out = {}
    for p in _net(model).populations.values():
        if p.kind == "li":
            out[p.name] = "non-spiking leaky-integrator read-out (the host reads v)"
        elif p.kind == "lif":
            why = _lif_needs(p.node)
            if why:
                out[p.name] = "; ".join(why)
    return out


def _lif_needs(node: CubaLIF) -> List[str]:
    """What a CubaLIF needs beyond the standard CUBA neuron."""
    why = []
    if node.reset == "subtract":
        why.append("reset by subtraction" + (", one step late (reset_delay)" if node.reset_delay else ""))
    elif node.reset == "subtract_snntorch":
        why.append("reset by subtraction, snnTorch's immediate rule (the spike test subtracts the "
                   "threshold again while v[t-1] > threshold)")
    elif node.reset == "none":
        why.append("no reset")
    if node.refractory:
        why.append(f"refractory period of {node.refractory} steps")
    if _per_neuron(node.current_decay) or _per_neuron(node.voltage_decay):
        why.append("per-neuron decays (the standard CUBA neuron takes du/dv from a configuration "
                   "shared by the core's neurons: a neuron program reading them per neuron, or the "
                   "population split by decay, one configuration each)")
    return why


def _per_neuron(decay) -> bool:
    a = np.asarray(decay)
    return a.size > 1 and not np.all(a == a.flat[0])


def _lava_model(node) -> str:
    if isinstance(node, CubaLI):
        return "snnc's LeakyIntegrator (fixed_pt and floating_pt, snnc.backends.lava_neurons)"
    if node.refractory:
        return ("LIFRefractory (floating_pt: Lava's model; fixed_pt: snnc's bit-exact model, "
                "snnc.backends.lava_refractory)")
    return "snnc's LIFResetRule (fixed_pt and floating_pt, snnc.backends.lava_neurons)"


def deployment_notes(graph: Graph) -> List[str]:
    net = lower(graph)
    notes = []
    for name, why in custom_neuron_programs(net).items():
        notes.append(f"population {name!r}: {why}. Lava CPU: {_lava_model(graph.nodes[name])}. Loihi 2 "
                     "hardware: the standard CUBA neuron cannot run it; this population needs a custom "
                     "(microcoded) neuron program")
    for p in net.populations.values():
        if p.kind not in ("lif", "li"):
            continue
        if p.node.state_scale == 0:
            notes.append(f"population {p.name!r}: real-valued dynamics (state_scale 0); fixed point uses "
                         f"scale {p.state_scale or '?'} and rounds as the quantization report shows (spikes "
                         "may differ from the float model)")
        if not net.into(p.name) and not p.bias_inputs:
            notes.append(f"population {p.name!r}: no input; driven by its bias alone")
    for f in graph.metadata.get("folds", []):
        notes.append(f"average pooling {f['pool']!r} folded exactly into synapse {f['into']!r} ({f['kind']})")
    return notes
