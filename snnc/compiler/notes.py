"""Deployment notes for ``snnc info``: what a compiled graph needs beyond Loihi 2's standard
CUBA neuron, and which exact rewrites the compiler made."""
from __future__ import annotations

from typing import List

from .ir import CubaLIF, Graph


def deployment_notes(graph: Graph) -> List[str]:
    notes = []
    for name, node in graph.nodes.items():
        if isinstance(node, CubaLIF) and node.refractory:
            notes.append(f"population {name!r}: refractory period of {node.refractory} steps. Lava CPU: "
                         "LIFRefractory (floating_pt: Lava's model; fixed_pt: snnc's bit-exact model, "
                         "snnc.backends.lava_refractory). Loihi 2 hardware: the standard LIF has no "
                         "refractory period; this population needs a custom (microcoded) neuron program")
        if isinstance(node, CubaLIF) and node.state_scale == 0:
            notes.append(f"population {name!r}: real-valued dynamics (state_scale 0); fixed point uses "
                         f"scale {graph.metadata.get('state_scale', {}).get(name, '?')} and rounds as the "
                         "quantization report shows (spikes may differ from the float model)")
    for f in graph.metadata.get("folds", []):
        notes.append(f"average pooling {f['pool']!r} folded exactly into synapse {f['into']!r} ({f['kind']})")
    return notes
