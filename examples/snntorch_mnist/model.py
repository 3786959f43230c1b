"""The snnTorch tutorials' networks, as the tutorials write them (snnTorch 1.0.0).

- ``FCNet``: tutorial 5 ("Training Spiking Neural Networks with snnTorch"): 784-1000-10,
  ``snn.Leaky(beta=0.95)`` (default: reset by subtraction, one step late, threshold 1), 25 steps;
  a Python loop over time.
- ``conv_net``: tutorial 6's ``nn.Sequential`` with ``init_hidden=True`` blocks: 12C5-64C5-10,
  ``fast_sigmoid(slope=25)``, beta 0.5, 25 steps. One deviation, named: the tutorial max-pools the
  conv *currents* before the neuron (``Conv2d, MaxPool2d, Leaky``), a max of real-valued sums that
  no Loihi synapse computes; here the pooling comes after the neuron (``Conv2d, Leaky,
  MaxPool2d``), a max of binary spikes, which Loihi computes exactly (a sum pool into a
  threshold-0.5 population).
- Input: rate-coded spikes (``snntorch.spikegen.rate``, tutorial 1: a pixel of intensity p spikes
  with probability p at each step), or (``analog``) tutorial 5's analog image at every step, on
  the 2**-8 grid of snnc's graded input; time first ``(T, N, ...)``.
Both return (spikes, membrane) of the output layer, time first ``(T, N, 10)``, as the tutorials do.
"""
import snntorch as snn
import torch
from snntorch import surrogate, utils
from torch import nn

NUM_STEPS = 25


class FCNet(nn.Module):
    """Tutorial 5's network, verbatim but for the constructor arguments and ``x[step]``."""

    def __init__(self, num_inputs=28 * 28, num_hidden=1000, num_outputs=10, beta=0.95):
        super().__init__()
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        mem2_rec = []
        for step in range(x.shape[0]):
            cur1 = self.fc1(x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def conv_net(beta=0.5):
    """Tutorial 6's ``nn.Sequential`` (pooling after the neurons, see the module doc)."""
    spike_grad = surrogate.fast_sigmoid(slope=25)
    return nn.Sequential(nn.Conv2d(1, 12, 5),
                         snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                         nn.MaxPool2d(2),
                         nn.Conv2d(12, 64, 5),
                         snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True),
                         nn.MaxPool2d(2),
                         nn.Flatten(),
                         nn.Linear(64 * 4 * 4, 10),
                         snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=True))


def forward_pass(net, data):
    """Tutorial 6's loop for ``init_hidden`` nets on ``data`` (T, N, ...): (spikes, membrane)."""
    spk_rec, mem_rec = [], []
    utils.reset(net)
    for step in range(data.shape[0]):
        spk_out, mem_out = net(data[step])
        spk_rec.append(spk_out)
        mem_rec.append(mem_out)
    return torch.stack(spk_rec), torch.stack(mem_rec)


def build(name):
    """``"fc"`` or ``"conv"``: the network and the input shape of one step."""
    if name == "fc":
        return FCNet(), (28 * 28,)
    return conv_net(), (1, 28, 28)


def run(net, name, x):
    """(spikes, membrane) of the output layer, time first, for spikes ``x`` (T, N, ...)."""
    return net(x) if name == "fc" else forward_pass(net, x)


def analog(images, shape, steps=NUM_STEPS, frac_bits=8):
    """Tutorial 5's input: the analog image at every step, on the grid ``2**-frac_bits`` (the
    graded input snnc exports an analog input as; pixel / 255 moves by less than half a step):
    images (N, 28, 28) in [0, 1] -> (T, N, *shape)."""
    p = torch.as_tensor(images, dtype=torch.float32).reshape((len(images),) + tuple(shape))
    p = torch.round(p * 2 ** frac_bits) / 2 ** frac_bits
    return p.unsqueeze(0).expand((steps,) + tuple(p.shape)).contiguous()


def rate(images, shape, steps=NUM_STEPS, seed=0):
    """``spikegen.rate`` with a fixed generator: images (N, 28, 28) in [0, 1] -> (T, N, *shape)."""
    g = torch.Generator().manual_seed(seed)
    p = torch.as_tensor(images, dtype=torch.float32).reshape((len(images),) + tuple(shape))
    return (torch.rand((steps,) + tuple(p.shape), generator=g) < p).float()
