"""Small SLAYER (lava-dl) networks and inputs shared by the parity tests (not a test file).

Each builder returns ``(module, example_input)``: a ``torch.nn.Module`` made of
``lava.lib.dl.slayer.block.cuba`` blocks (eval mode, fixed seed) and a binary spike tensor
``(N, C[, H, W], T)`` (time last). ``Branchy`` and ``ConvReshape`` are forwards netx cannot
express; ``reset_state`` zeroes slayer's persistent state; ``slayer_to_ir`` builds the IR of a
``Chain`` by hand with netx's mapping (independent of snnc's exporter and importer).
"""
import numpy as np
import torch

from lava.lib.dl import slayer

from snnc.compiler.fixed import FixedCubaLIF, FixedSynapse
from snnc.compiler.ir import Conv2d, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d

cuba = slayer.block.cuba
B = slayer.block.cuba

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


def reset_state(net):
    """Zero slayer's persistent state (neuron u, v and the block's one-step delay buffer).

    Recurrent blocks always keep their neuron state across forward calls, and they set
    ``persistent_state`` in the neuron-parameter dict they are given (slayer_nets.NEURON is
    shared, so blocks built afterwards from it are persistent too). The ONNX file starts from
    zero state, like a fresh slayer module.
    """
    for m in net.modules():
        if hasattr(m, "current_state"):
            m.current_state = torch.zeros(1)
            m.voltage_state = torch.zeros(1)
        if getattr(m, "delay_buffer", None) is not None:
            m.delay_buffer = None


def neuron(**extra):
    """A fresh copy of the shared test neuron parameters (slayer blocks mutate the dict)."""
    params = {k: v for k, v in NEURON.items() if k != "persistent_state"}
    return dict(params, **extra)


class Branchy(torch.nn.Module):
    """Non-sequential forward: fan-in (+), concatenation along channels, shared input."""

    def __init__(self):
        super().__init__()
        self.a = cuba.Dense(neuron(), 20, 12, weight_scale=4)
        self.b = cuba.Dense(neuron(), 20, 12, weight_scale=4)
        self.c = cuba.Dense(neuron(), 20, 8, weight_scale=4, delay=True)
        self.out = cuba.Dense(neuron(), 20, 10, weight_scale=4)

    def forward(self, x):
        s = self.a(x) + self.b(x)
        y = torch.cat([s, self.c(x)], dim=1)
        return self.out(y)


class ConvReshape(torch.nn.Module):
    """Conv -> Pool -> a reshape written in forward() -> Dense, with weight norm and a
    MeanOnlyBatchNorm bias on the first block, no delay_shift on the pool."""

    def __init__(self):
        super().__init__()
        params = neuron(norm=slayer.neuron.norm.MeanOnlyBatchNorm)
        self.conv = cuba.Conv(params, 2, 6, 3, padding=1, weight_scale=4, weight_norm=True)
        self.pool = cuba.Pool(neuron(), 2, weight_scale=2, delay_shift=False)
        self.fc = cuba.Dense(neuron(), 6 * 5 * 5, 10, weight_scale=4)

    def forward(self, x):
        x = self.pool(self.conv(x))
        return self.fc(x.reshape(x.shape[0], -1, x.shape[-1]))


def _q(syn):
    return syn.pre_hook_fx(syn.weight).detach().cpu().numpy().astype(np.float64)


def _add_lif(g, name, neuron, shape, src):
    cd, vd = int(neuron.cx_current_decay), int(neuron.cx_voltage_decay)
    vth = int(neuron.v_th_mant)
    g.add(name, CubaLIF(tuple(shape), current_decay=cd / 4096, voltage_decay=vd / 4096,
                        threshold=vth / 64, spike_compare=">"), src)
    g.fixed[name] = FixedCubaLIF(decay_u=cd, decay_v=vd, vth=vth)
    return name


def _add_dense(g, name, w, *srcs):
    g.add(name, Dense(w), *srcs)
    g.fixed[name] = FixedSynapse(np.round(w * 64).astype(np.int64))
    return name


def slayer_to_ir(net, in_shape) -> Graph:
    g = Graph()
    prev = g.add("in", Input(tuple(in_shape)))
    shape = tuple(in_shape)
    for i, b in enumerate(net.blocks):
        if isinstance(b, B.Flatten):
            prev = g.add(f"flat{i}", Flatten(), prev)
            shape = (int(np.prod(shape)),)
            continue
        if isinstance(b, B.Recurrent):
            w = _q(b.input_synapse).reshape(b.input_synapse.weight.shape[:2])
            syn = _add_dense(g, f"fc{i}", w, prev)
            shape = (w.shape[0],)
            lif = _add_lif(g, f"lif{i}", b.neuron, shape, syn)
            r = _q(b.recurrent_synapse).reshape(b.recurrent_synapse.weight.shape[:2])
            g.add(f"rdelay{i}", Delay(np.array(1)), lif)
            _add_dense(g, f"rec{i}", r, f"rdelay{i}")
            g.edges.append((f"rec{i}", lif))
        elif isinstance(b, B.Dense):
            w = _q(b.synapse).reshape(b.synapse.weight.shape[:2])
            syn = _add_dense(g, f"fc{i}", w, prev)
            shape = (w.shape[0],)
            lif = _add_lif(g, f"lif{i}", b.neuron, shape, syn)
        elif isinstance(b, B.Conv):
            s = b.synapse
            w = _q(s)[..., 0]
            node = Conv2d(w, stride=tuple(s.stride[:2]), padding=tuple(s.padding[:2]),
                          dilation=tuple(s.dilation[:2]), groups=s.groups)
            g.add(f"conv{i}", node, prev)
            g.fixed[f"conv{i}"] = FixedSynapse(np.round(w * 64).astype(np.int64))
            shape = node.output_shape(shape)
            lif = _add_lif(g, f"lif{i}", b.neuron, shape, f"conv{i}")
        elif isinstance(b, B.Pool):
            s = b.synapse
            wq = float(_q(s).ravel()[0])
            node = SumPool2d(kernel=tuple(s.kernel_size[:2]), stride=tuple(s.stride[:2]),
                             padding=tuple(s.padding[:2]), weight=wq)
            g.add(f"pool{i}", node, prev)
            g.fixed[f"pool{i}"] = FixedSynapse(np.array(int(round(wq * 64))))
            shape = node.output_shape(shape)
            lif = _add_lif(g, f"lif{i}", b.neuron, shape, f"pool{i}")
        else:
            raise TypeError(type(b))
        prev = lif
        if b.delay_shift:
            prev = g.add(f"shift{i}", Delay(np.array(1)), prev)
        if getattr(b, "delay", None) is not None:
            d = torch.floor(b.delay.delay).detach().numpy().astype(np.int64).reshape(-1)
            d = d.reshape((-1,) + (1,) * (len(shape) - 1))
            prev = g.add(f"axon{i}", Delay(d), prev)
    g.add("out", Output(shape), prev)
    return g
