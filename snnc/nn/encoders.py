"""Input encoders: images/values -> activity ``(N, *shape, T)`` (time last).

- ``bernoulli(x, T, max_rate=1.0)``: per step, spike with probability ``max_rate * x``
  (x in [0, 1]; STBP: ``x > rand``; HM2-BP / ST-RSBP: ``max_rate = 1/5.5``).
- ``repeat(x, T)``: the analog value at every step (STBP's / TSSL-BP's "encoding layer": the
  first synapse sees graded input). Graded input runs in PyTorch, onnxruntime and the reference
  float engine; in fixed point (reference, Lava) through an IR ``Input(kind="graded",
  frac_bits=k)`` with values on the 2**-k grid (docs/methods.md). The examples deploy with
  Bernoulli input.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def bernoulli(x, T: int, max_rate: float = 1.0, seed: Optional[int] = None,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Bernoulli rate code of ``x`` (N, ...) in [0, 1] -> float32 spikes (N, ..., T)."""
    if isinstance(x, np.ndarray) or seed is not None:
        rng = np.random.default_rng(seed)
        p = np.clip(max_rate * np.asarray(x, dtype=np.float64), 0, 1)[..., None]
        return torch.from_numpy((rng.random(p.shape[:-1] + (T,)) < p).astype(np.float32))
    p = torch.clamp(max_rate * x, 0, 1).unsqueeze(-1).expand(*x.shape, T)
    return (torch.rand(p.shape, generator=generator, device=x.device) < p).float()


def repeat(x, T: int) -> torch.Tensor:
    """Analog (graded) input: ``x`` repeated at every step, (N, ..., T)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return x.unsqueeze(-1).expand(*x.shape, T).contiguous()
