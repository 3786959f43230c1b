"""What every engine (reference simulator, torch, Lava float/fixed, onnxruntime) returns, and its
``.npz`` form (what ``snnc run -o y.npz`` writes).

``.npz`` keys: ``output`` (the first Output), ``outputs/<Output>`` (every Output by IR node name),
``counts/<population>`` (spikes per neuron), ``engine``, ``plan``, ``seconds``, ``timing/<phase>``
(the numbers of ``timing``), ``state/<population>/<u|v>`` and ``state_steps/<population>`` when recorded;
``spikes/<population>`` (whole spike trains) only when asked for (``to_npz(path, spikes=True)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from ..errors import SnncError
from ..files import save_npz


@dataclass
class RunResult:
    """Output of one run over a batch (time last, aligned step for step with the model's own
    (PyTorch) time axis).

    ``output``: the first Output, float32 ``(N, *shape, T)``. ``outputs``: every Output by IR node
    name, same layout. ``counts``: per population (IR node name) the spike count of every neuron
    summed over time, int64 ``(N, *shape)``. ``spikes``: per population its spike train
    ``(N, *shape, T)``, when the engine recorded it (Lava). ``engine``: the engine that ran it;
    ``plan``: which of its execution plans ran, when it has several (reference: ``step``,
    ``batched`` or ``spec``). ``seconds``: wall time of the run; ``timing``: seconds per phase,
    when the engine measures them (Lava: compile, run, reads; with its counters, e.g. resets done). ``state`` (when asked for: Lava
    ``record_state``, reference ``state_steps``): per CUBA population its ``u`` and ``v``
    ``(N, *shape)`` after ``state_steps[pop]`` of its own steps.
    """
    output: np.ndarray
    counts: Dict[str, np.ndarray] = field(default_factory=dict)
    engine: str = ""
    seconds: float = 0.0
    state: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    state_steps: Dict[str, int] = field(default_factory=dict)
    outputs: Dict[str, np.ndarray] = field(default_factory=dict)
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    timing: Dict[str, float] = field(default_factory=dict)
    plan: str = ""

    def layer_totals(self) -> Dict[str, int]:
        """Total spikes per population over the batch."""
        return {k: int(v.sum()) for k, v in self.counts.items()}

    def sample(self, i: int = 0) -> "RunResult":
        """The result of sample ``i`` alone: every per-sample array without its batch axis."""
        return RunResult(output=self.output[i], counts={k: v[i] for k, v in self.counts.items()},
                         engine=self.engine, seconds=self.seconds,
                         state={p: {q: a[i] for q, a in s.items()} for p, s in self.state.items()},
                         state_steps=dict(self.state_steps), outputs={k: v[i] for k, v in self.outputs.items()},
                         spikes={k: v[i] for k, v in self.spikes.items()}, timing=dict(self.timing),
                         plan=self.plan)

    def to_arrays(self, spikes: bool = False) -> Dict[str, np.ndarray]:
        """The ``.npz`` keys of the module doc."""
        arrays = {"output": np.asarray(self.output), "engine": np.array(self.engine),
                  "plan": np.array(self.plan), "seconds": np.array(float(self.seconds))}
        arrays.update({f"outputs/{k}": np.asarray(v) for k, v in self.outputs.items()})
        arrays.update({f"counts/{k}": np.asarray(v) for k, v in self.counts.items()})
        arrays.update({f"timing/{k}": np.array(float(v)) for k, v in self.timing.items() if _is_seconds(v)})
        for p, s in self.state.items():
            arrays.update({f"state/{p}/{q}": np.asarray(a) for q, a in s.items()})
        arrays.update({f"state_steps/{p}": np.array(int(n)) for p, n in self.state_steps.items()})
        if spikes:
            arrays.update({f"spikes/{k}": np.asarray(v) for k, v in self.spikes.items()})
        return arrays

    def to_npz(self, path: str, spikes: bool = False) -> None:
        """Write the result to exactly ``path`` (atomically: a temporary file renamed into place)."""
        save_npz(path, self.to_arrays(spikes))

    @classmethod
    def from_npz(cls, path: str) -> "RunResult":
        """Read what ``to_npz`` wrote (also an older ``snnc run`` file: ``output`` and ``counts/``)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise SnncError(f"{path}: not an .npz run result ({e})") from None
        return cls.from_arrays(arrays, path)

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], what: str = "run result") -> "RunResult":
        if "output" not in arrays:
            raise SnncError(f"{what}: no 'output' array; not a result written by snnc run")

        def group(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        state: Dict[str, Dict[str, np.ndarray]] = {}
        for key, a in group("state/").items():
            pop, _, q = key.rpartition("/")
            state.setdefault(pop, {})[q] = a
        return cls(output=arrays["output"], counts=group("counts/"), engine=str(arrays.get("engine", "")),
                   seconds=float(arrays.get("seconds", 0.0)), state=state,
                   state_steps={k: int(v) for k, v in group("state_steps/").items()},
                   outputs=group("outputs/"), spikes=group("spikes/"),
                   timing={k: float(v) for k, v in group("timing/").items()}, plan=str(arrays.get("plan", "")))


def load_npz(path: str) -> RunResult:
    """``RunResult.from_npz``."""
    return RunResult.from_npz(path)


def _is_seconds(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)
