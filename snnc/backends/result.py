"""What every engine (reference simulator, Lava float, Lava fixed, onnxruntime) returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import numpy as np


@dataclass
class RunResult:
    """Output of one run over a batch.

    ``output``: float32 ``(N, *shape, T)``, time last, aligned step for step with the model's
    own (PyTorch) time axis. ``counts``: per population (IR node name) the spike count of
    every neuron summed over time, int64 ``(N, *shape)``. ``engine`` names what produced it.
    ``state`` (when asked for: Lava ``record_state``, reference ``state_steps``): per CUBA
    population its ``u`` and ``v`` ``(N, *shape)`` after ``state_steps[pop]`` of its own steps.
    """
    output: np.ndarray
    counts: Dict[str, np.ndarray] = field(default_factory=dict)
    engine: str = ""
    seconds: float = 0.0
    state: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    state_steps: Dict[str, int] = field(default_factory=dict)

    def layer_totals(self) -> Dict[str, int]:
        """Total spikes per population over the batch."""
        return {k: int(v.sum()) for k, v in self.counts.items()}
