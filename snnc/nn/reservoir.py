"""ST-RSBP's sparse recurrent reservoir (Zhang & Li 2019; reference code ``stonezwr/ST-RSBP``,
``Reservoir::initReservoirConnection``), as a weight and a fixed connectivity mask for
``snnc.nn.LIF(recurrent=..., recurrent_mask=...)``.

Neurons sit on a ``d1 x d2 x d3`` grid (index ``(i*d2 + j)*d3 + k``); 20 % are labelled
inhibitory. A connection from neuron a to b exists with probability ``c * exp(-|a - b|^2 / 4)``
(grid distance), ``c = 1.5 x`` 0.3 (E->E), 0.2 (E->I), 0.4 (I->E), 0.1 (I->I); self-connections are
possible. A connected weight is ``init_w * U(-1, 1)`` (the label sets only the probability, as in
the reference code). The weight is ``[post, pre]`` (``W_rec @ s``), in the neuron's threshold
units before ``input_scale``. Training keeps the mask: absent synapses stay absent, so the
network Loihi receives has only the reservoir's synapses.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

# connection probability scale per (pre excitatory, post excitatory), times 1.5 (reference code)
_C = {(True, True): 0.3, (True, False): 0.2, (False, True): 0.4, (False, False): 0.1}
_FACTOR = 1.5


def reservoir(dims: Tuple[int, int, int] = (5, 5, 8), init_w: float = 1.0, inhibitory: float = 0.2,
              seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(weight [N, N] float32, mask [N, N] bool)`` of an ST-RSBP reservoir with ``N = prod(dims)``
    neurons (see module doc); ``weight`` is zero where ``mask`` is False."""
    d1, d2, d3 = (int(d) for d in dims)
    n = d1 * d2 * d3
    rng = np.random.default_rng(seed)
    excit = rng.random(n) >= inhibitory
    coords = np.stack(np.meshgrid(np.arange(d1), np.arange(d2), np.arange(d3), indexing="ij"), -1).reshape(n, 3)
    dist2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)        # [post, pre]
    c = np.empty((n, n))
    for (pre_e, post_e), v in _C.items():
        c[np.ix_(excit == post_e, excit == pre_e)] = v * _FACTOR
    mask = rng.random((n, n)) < c * np.exp(-dist2 / 4.0)
    w = np.where(mask, init_w * rng.uniform(-1, 1, (n, n)), 0.0)
    return torch.from_numpy(w.astype(np.float32)), torch.from_numpy(mask)
