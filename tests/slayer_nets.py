"""Small SLAYER (lava-dl) networks and inputs shared by the parity tests.

Each builder returns ``(module, example_input)``: a ``torch.nn.Module`` made of
``lava.lib.dl.slayer.block.cuba`` blocks (eval mode, fixed seed) and a binary spike tensor
``(N, C[, H, W], T)`` (time last).
"""
import numpy as np
import torch

from lava.lib.dl import slayer

NEURON = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03,
              tau_grad=0.03, scale_grad=3, requires_grad=False)


def spikes(shape, rate=0.3, seed=0):
    """Bernoulli spikes of ``shape`` (float32 tensor of 0/1)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random(shape) < rate).astype(np.float32))


class Chain(torch.nn.Module):
    """A plain chain of blocks (what most SLAYER examples build)."""

    def __init__(self, *blocks):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def _scaled(module, gain):
    """Scale all synaptic weights (so that networks are neither silent nor saturated)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "weight" in name:
                p.mul_(gain)
    return module


def dense_net(seed=0, T=64, N=2):
    torch.manual_seed(seed)
    net = Chain(slayer.block.cuba.Dense(dict(NEURON), 40, 30, weight_scale=2),
                slayer.block.cuba.Dense(dict(NEURON), 30, 10, weight_scale=2))
    return _scaled(net, 2.0).eval(), spikes((N, 40, T), seed=seed)


def delay_net(seed=0, T=64, N=2):
    """Dense with learnable axonal delays (set to integers 0..4) into a plain Dense."""
    torch.manual_seed(seed)
    first = slayer.block.cuba.Dense(dict(NEURON), 20, 16, weight_scale=2, delay=True)
    net = Chain(first, slayer.block.cuba.Dense(dict(NEURON), 16, 8, weight_scale=2))
    _scaled(net, 2.0)
    # lava-dl's Delay initializes lazily on the first forward: run once, then set integer delays.
    with torch.no_grad():
        net(spikes((N, 20, T), seed=seed))
        first.delay.delay.data = torch.from_numpy(
            np.random.default_rng(seed).integers(0, 5, size=first.delay.delay.shape)
        ).float()
    return net.eval(), spikes((N, 20, T), seed=seed)


def conv_net(seed=0, T=32, N=2):
    """Conv + Pool + Conv + Flatten + Dense on 2x12x12 inputs."""
    torch.manual_seed(seed)
    net = Chain(
        slayer.block.cuba.Conv(dict(NEURON), 2, 8, 3, padding=1, weight_scale=2),
        slayer.block.cuba.Pool(dict(NEURON), 2, stride=2, weight_scale=2),
        slayer.block.cuba.Conv(dict(NEURON), 8, 8, 3, stride=2, weight_scale=2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(dict(NEURON), 8 * 2 * 2, 10, weight_scale=2),
    )
    return _scaled(net, 2.0).eval(), spikes((N, 2, 12, 12, T), rate=0.3, seed=seed)


def recurrent_net(seed=0, T=64, N=2):
    torch.manual_seed(seed)
    net = Chain(slayer.block.cuba.Recurrent(dict(NEURON), 20, 16, weight_scale=2),
                slayer.block.cuba.Dense(dict(NEURON), 16, 8, weight_scale=2))
    return _scaled(net, 2.0).eval(), spikes((N, 20, T), seed=seed)


ALL = {"dense": dense_net, "delay": delay_net, "conv": conv_net, "recurrent": recurrent_net}
