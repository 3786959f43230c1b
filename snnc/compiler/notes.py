"""Deployment notes for ``snnc info``: what a compiled graph needs beyond Loihi 2's standard
CUBA neuron, and which exact rewrites the compiler made."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .ir import CubaLI, CubaLIF, Graph


def custom_neuron_programs(graph: Graph) -> Dict[str, str]:
    """{population: why} for every population Loihi 2's standard CUBA neuron (zero reset, one
    threshold, spikes out) cannot run: it needs a custom (microcoded) neuron program on hardware."""
    out = {}
    for name, node in graph.nodes.items():
        if isinstance(node, CubaLI):
            out[name] = "non-spiking leaky-integrator read-out (the host reads v)"
        elif isinstance(node, CubaLIF):
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
            if why:
                out[name] = "; ".join(why)
    return out


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
    notes = []
    for name, why in custom_neuron_programs(graph).items():
        notes.append(f"population {name!r}: {why}. Lava CPU: {_lava_model(graph.nodes[name])}. Loihi 2 "
                     "hardware: the standard CUBA neuron cannot run it; this population needs a custom "
                     "(microcoded) neuron program")
    for name, node in graph.nodes.items():
        if isinstance(node, (CubaLIF, CubaLI)) and node.state_scale == 0:
            notes.append(f"population {name!r}: real-valued dynamics (state_scale 0); fixed point uses "
                         f"scale {graph.metadata.get('state_scale', {}).get(name, '?')} and rounds as the "
                         "quantization report shows (spikes may differ from the float model)")
        if isinstance(node, (CubaLIF, CubaLI)) and not graph.predecessors(name):
            notes.append(f"population {name!r}: no input; driven by its bias alone")
    for f in graph.metadata.get("folds", []):
        notes.append(f"average pooling {f['pool']!r} folded exactly into synapse {f['into']!r} ({f['kind']})")
    return notes
