"""The demo network: SLAYER CUBA-LIF blocks with convolution and pooling.

Input: spikes (N, 1, 8, 8, T); output: spikes (N, 10, T) (time last). Blocks:
    Conv(1 -> 16, 3x3, padding 1)   -> (N, 16, 8, 8, T)
    Pool(2x2, fixed weight)         -> (N, 16, 4, 4, T)
    Flatten                         -> (N, 256, T)
    Dense(256 -> 10)                -> (N, 10, T)
Every block uses lava-dl's default 8-bit weight quantization and ``delay_shift`` (one step of
delay per block), no bias and no weight norm.
"""
import torch

from lava.lib.dl import slayer

# Neuron parameters in the style of the lava-dl tutorials (threshold in units of the weights).
# tau_grad/scale_grad shape the surrogate gradient only (training); tau_grad=0.1 (wider than
# the tutorials' 0.03) trains much faster here.
NEURON = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03,
              tau_grad=0.1, scale_grad=3, requires_grad=False)

CHANNELS = 16
POOL_WEIGHT = 1.0


class Network(torch.nn.Module):
    """Conv -> Pool -> Flatten -> Dense of CUBA-LIF blocks (see the module docstring)."""

    def __init__(self, channels=CHANNELS, pool_weight=POOL_WEIGHT, neuron=NEURON):
        super().__init__()
        cuba = slayer.block.cuba
        self.blocks = torch.nn.ModuleList([
            cuba.Conv(dict(neuron), 1, channels, 3, padding=1, weight_scale=2),
            cuba.Pool(dict(neuron), 2, weight_scale=pool_weight),
            cuba.Flatten(),
            cuba.Dense(dict(neuron), channels * 4 * 4, 10, weight_scale=2),
        ])

    def forward(self, x):
        """``x``: spikes (N, 1, 8, 8, T) -> output spikes (N, 10, T)."""
        for block in self.blocks:
            x = block(x)
        return x

    def layer_spikes(self, x):
        """Spikes after each spiking block (Conv, Pool, Dense), a list of tensors."""
        out = []
        for block in self.blocks:
            x = block(x)
            if not isinstance(block, slayer.block.cuba.Flatten):
                out.append(x)
        return out


def load(path):
    """The trained ``Network`` (eval mode) from a file written by train.py."""
    ckpt = torch.load(path)
    net = Network(channels=ckpt["meta"]["channels"], pool_weight=ckpt["meta"]["pool_weight"],
                  neuron=ckpt["meta"]["neuron"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()
