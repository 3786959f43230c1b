"""snnc.twin: a torch module computing a compiled graph's Loihi integer dynamics.

The twin's forward is its own torch code (float64 integers, one step at a time, node by node);
the other side of each comparison is the numpy reference engine (snnc/backends/reference.py)
or Lava's own fixed_pt process models. Spikes of every population and the output must be
identical, before and after fine-tuning; the fine-tuned twin's graph must compile to the same
spikes.
"""
import numpy as np
import pytest
import torch

import snnc
import snnc.nn as sn
from snnc.backends.reference import run_reference
from snnc.calibrate import trace
from snnc.errors import SnncError

from slayer_nets import ALL as SLAYER_NETS
from nn_nets import NETS as NN_NETS
from small_nets import reset_net as _reset_net


def _onnx(tmp_path, net, x, name="m"):
    path = str(tmp_path / f"{name}.onnx")
    snnc.export(net, x, path)
    return path


def _same_as_reference(graph, x):
    """Twin output, every population's spikes and every read-out's values == the reference
    engine's (fixed point)."""
    twin = snnc.twin(graph)
    with torch.no_grad():
        y = twin(x).numpy()
    ref = run_reference(graph, x)
    assert np.array_equal(y, ref.output)
    spikes, _, _ = trace(graph, "fixed", np.asarray(x, np.float64))
    for p, s in spikes.items():
        mine = twin.spikes[p].numpy().astype(bool) if p in twin.spikes else twin.readouts[p].detach().numpy()
        assert np.array_equal(mine, s), p
    return twin, y


@pytest.mark.parametrize("name", list(SLAYER_NETS))
def test_twin_equals_reference_slayer(name, tmp_path):
    """SLAYER nets: dense, axonal delays (per neuron), conv + pool + flatten, recurrent."""
    net, x = SLAYER_NETS[name]()
    g = snnc.compile(_onnx(tmp_path, net, x))
    _, y = _same_as_reference(g, x.numpy())
    assert y.sum() > 100


@pytest.mark.parametrize("method", ["stbp", "hm2", "st_rsbp"])
@pytest.mark.parametrize("calibrated", [False, True])
def test_twin_equals_reference_float_models(method, calibrated, tmp_path):
    """Float-trained snnc.nn nets (folded average pooling into conv, one-step delays, refractory
    neurons, lateral and trainable recurrence), compiled plain and with calibration (non-power-
    of-two state scales, weight exponents, clipped weights)."""
    torch.manual_seed(0)
    net, x = NN_NETS[method](False)
    path = _onnx(tmp_path, net, x)
    g = snnc.compile(path, calibrate=x.numpy() if calibrated else None)
    _, y = _same_as_reference(g, x.numpy())
    assert y.sum() > 20


def test_twin_equals_lava_fixed(tmp_path):
    """Lava's own bit-accurate models (LIF, Dense, Conv in fixed_pt) on a calibrated conv net."""
    torch.manual_seed(0)
    net, x = NN_NETS["stbp"](False)
    g = snnc.compile(_onnx(tmp_path, net, x), calibrate=x.numpy())
    with torch.no_grad():
        y = snnc.twin(g)(x).numpy()
    lava = snnc.run(g, x.numpy(), backend="lava-fixed", timeout=300)
    assert np.array_equal(y, lava.output) and y.sum() > 20


def _fine_tune(twin, x, target, steps=3, lr=0.02):
    opt = torch.optim.Adam(twin.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        y = twin(x)
        loss = torch.nn.functional.cross_entropy(y.sum(-1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("method", ["tssl", "stbp"])
def test_fine_tune_then_compile(method, tmp_path):
    """A few steps of the user's own loss change the weight mantissas; ``to_graph()`` compiles
    (also through a saved .snnc) to exactly the twin's spikes on the reference and on Lava."""
    torch.manual_seed(0)
    net, x = NN_NETS[method](False)
    g = snnc.compile(_onnx(tmp_path, net, x), calibrate=x.numpy())
    twin = snnc.twin(g, surrogate=sn.SigmoidDerivative(0.25))
    before = {k: twin.mantissas(k).detach().numpy().copy() for k in twin._key}
    target = torch.arange(x.shape[0]) % 10
    losses = _fine_tune(twin, x, target)
    changed = sum(int(np.sum(twin.mantissas(k).detach().numpy() != before[k])) for k in before)
    assert changed > 0 and all(np.isfinite(losses))
    with torch.no_grad():
        y = twin(x).numpy()
    tuned = twin.to_graph()
    assert sum(int(np.sum(tuned.fixed[k].weight != g.fixed[k].weight)) for k in before) == changed
    assert np.array_equal(run_reference(tuned, x.numpy()).output, y)
    path = str(tmp_path / "tuned.snnc")
    snnc.compile(tuned, path)
    assert np.array_equal(run_reference(snnc.compile(path), x.numpy()).output, y)
    _same_as_reference(snnc.compile(path), x.numpy())
    if method == "tssl":
        lava = snnc.run(tuned, x.numpy(), backend="lava-fixed", timeout=300)
        assert np.array_equal(lava.output, y)


def test_gradients_reach_every_weight(tmp_path):
    net, x = SLAYER_NETS["conv"](T=8)
    twin = snnc.twin(snnc.compile(_onnx(tmp_path, net, x)))
    twin(x).sum().backward()
    for name, p in twin.named_parameters():
        assert p.grad is not None and torch.all(torch.isfinite(p.grad)) and p.grad.abs().sum() > 0, name


def test_twin_refuses_clearly(tmp_path):
    net, x = SLAYER_NETS["dense"]()
    g = snnc.compile(_onnx(tmp_path, net, x))
    twin = snnc.twin(g)
    with pytest.raises(SnncError, match="input shape"):
        twin(x[:, :3])
    with pytest.raises(SnncError, match="binary spikes"):
        twin(x * 0.5)
    syn = next(k for k in twin._key)
    bad = g.copy()
    bad.fixed = dict(g.fixed)
    fx = g.fixed[syn]
    bad.fixed[syn] = type(fx)(weight=np.asarray(fx.weight) + 2, weight_exp=fx.weight_exp)
    with pytest.raises(SnncError, match="not the quantization of its float weights"):
        snnc.twin(bad)


@pytest.mark.parametrize("reset,delay", [("zero", False), ("subtract", False), ("subtract", True), ("none", False),
                                         ("subtract_snntorch", False)])
@pytest.mark.parametrize("readout", [False, True])
def test_twin_reset_modes_and_readout(reset, delay, readout):
    """Reset by subtraction (immediate, one step late), no reset, bias-driven populations and the
    CubaLI read-out (value v / S): twin == reference, plain and calibrated; a fine-tuning step
    then compiles to the twin's output."""
    g, x = _reset_net(reset, delay, readout=readout)
    for graph in (snnc.compile(g), snnc.compile(g, calibrate=x)):
        twin, y = _same_as_reference(graph, x)
        assert y.sum() != 0
        if readout:
            ref = run_reference(graph, x)
            assert np.array_equal(twin.readouts["o"].detach().numpy(), ref.output)
    opt = torch.optim.SGD(twin.parameters(), lr=0.05)
    twin(x).pow(2).mean().backward()
    opt.step()
    with torch.no_grad():
        y = twin(x).numpy()
    assert np.array_equal(run_reference(twin.to_graph(), x).output, y)


@pytest.mark.parametrize("readout", [False, True])
def test_twin_equals_lava_fixed_subtract_reset(readout):
    """snnc's own Lava processes for the delayed subtraction and the read-out (fixed_pt)."""
    g, x = _reset_net("subtract", True, readout=readout)
    graph = snnc.compile(g, calibrate=x)
    with torch.no_grad():
        y = snnc.twin(graph)(x).numpy()
    lava = snnc.run(graph, x, backend="lava-fixed", timeout=300)
    assert np.array_equal(y, lava.output) and np.abs(y).sum() > 0


def _snntorch_mlp(sizes, beta, bias=True):
    """snnTorch's two-layer Leaky net (tutorial 5's loop), input (T, N, C) time first;
    ``forward(x, mems)`` also appends each step's (mem1, mem2) to the list ``mems``."""
    import snntorch as snn
    n_in, n_hidden, n_out = sizes

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = torch.nn.Linear(n_in, n_hidden, bias=bias), snn.Leaky(beta=beta)
            self.fc2, self.lif2 = torch.nn.Linear(n_hidden, n_out, bias=bias), snn.Leaky(beta=beta)

        def forward(self, x, mems=None):
            m1, m2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            out = []
            for t in range(x.shape[0]):
                s1, m1 = self.lif1(self.fc1(x[t]), m1)
                s2, m2 = self.lif2(self.fc2(s1), m2)
                out.append(s2)
                if mems is not None:
                    mems.append((m1, m2))
            return torch.stack(out, 0)
    return Net()


def test_twin_of_an_snntorch_model(tmp_path):
    """snnTorch Leaky (default subtract reset, one step late) exported, calibrated, twinned,
    fine-tuned and recompiled: twin == reference at every stage."""
    from snnc.frontends.step_export import time_last

    torch.manual_seed(0)
    net = _snntorch_mlp((20, 30, 5), beta=0.9)
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
    x = (torch.rand(30, 8, 20, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    path = str(tmp_path / "snn.onnx")
    snnc.export(net, x, path)
    xt = time_last(x).numpy()
    g = snnc.compile(path, calibrate=xt)
    assert g.nodes["lif1_neuron"].reset == "subtract" and g.nodes["lif1_neuron"].reset_delay
    twin, y = _same_as_reference(g, xt)
    assert y.sum() > 20
    _fine_tune(twin, torch.as_tensor(xt), torch.arange(8) % 5, steps=2)
    with torch.no_grad():
        y = twin(xt).numpy()
    assert np.array_equal(run_reference(twin.to_graph(), xt).output, y)


def test_twin_membranes_equal_snntorch_mem(tmp_path):
    """``twin.membranes``: each population's membrane as tested against the threshold, in
    threshold units, equals snnTorch's own ``mem`` entry for entry where Loihi's integers are
    exact (beta = 1: no decay rounding; weights on a 1/16 grid: exact mantissas)."""
    from snnc.frontends.step_export import time_last

    net = _snntorch_mlp((12, 16, 5), beta=1.0, bias=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.fc1.weight.copy_(torch.randint(-8, 16, (16, 12), generator=g) / 16)
        net.fc2.weight.copy_(torch.randint(-12, 16, (5, 16), generator=g) / 16)
    x = (torch.rand(20, 6, 12, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    path = str(tmp_path / "snn.onnx")
    snnc.export(net, x, path)
    mems = []
    with torch.no_grad():
        net(x, mems)
    twin = snnc.twin(snnc.compile(path))
    with torch.no_grad():
        twin(time_last(x).numpy())
    for i, p in enumerate(("lif1_neuron", "lif2_neuron")):
        ref = torch.stack([m[i] for m in mems], -1).double().numpy()
        assert np.array_equal(twin.membranes[p].numpy(), ref), p
        assert twin.spikes[p].sum() > 5, p


# ---------------------------------------------------------------------- graded (analog) inputs
def _graded_net(seed=0, k=8, reset="subtract", reset_delay=True):
    """Input(kind="graded") -> Dense -> CubaLIF -> Dense -> CubaLIF, float weights (as an analog
    snnTorch input exports), and analog data off the 2**-k grid (the host rounds it)."""
    from snnc.compiler.ir import CubaLIF, Dense, Graph, Input, Output
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((12,), kind="graded", frac_bits=k))
    g.add("fc1", Dense(rng.normal(0.05, 0.4, (16, 12))), "x")
    g.add("l1", CubaLIF((16,), 1.0, 0.1, 1.0, bias=rng.normal(0, 0.05, 16), reset=reset,
                        reset_delay=reset_delay, state_scale=0), "fc1")
    g.add("fc2", Dense(rng.normal(0.1, 0.6, (5, 16))), "l1")
    g.add("l2", CubaLIF((5,), 1.0, 0.05, 1.0, reset=reset, reset_delay=reset_delay, state_scale=0), "fc2")
    g.add("y", Output((5,)), "l2")
    x = rng.uniform(-0.3, 1.2, (4, 12, 30))
    return g, x


@pytest.mark.parametrize("calibrated", [False, True])
def test_twin_graded_input_equals_reference(calibrated):
    """Analog input (integer graded spikes into the first Dense, floored by the exponent shift):
    the twin's output and every population == the reference engine's, plain and calibrated."""
    g, x = _graded_net()
    graph = snnc.compile(g, calibrate=x if calibrated else None)
    fx = graph.fixed["fc1"]
    assert fx.num_message_bits and fx.weight_exp < 0
    twin, y = _same_as_reference(graph, x)
    assert y.sum() > 20 and twin.spikes["l1"].sum() > 50
    if calibrated:
        assert graph.metadata["calibration"]["layers"][0]["synapses"]["fc1"]["weight_exp"] == \
            fx.weight_exp + 8


def test_twin_graded_input_of_integers():
    """frac_bits 0 (integer analog values, ``weight_exp`` >= 0, nothing floored): still graded
    spikes into the first Dense; twin == reference."""
    g, x = _graded_net(k=0)
    graph = snnc.compile(g)
    fx = graph.fixed["fc1"]
    assert fx.num_message_bits and fx.input_frac_bits == 0
    twin, y = _same_as_reference(graph, np.round(x * 3))
    assert y.sum() > 20


def test_twin_graded_input_equals_lava_fixed():
    """Lava's fixed_pt Dense with num_message_bits (graded spikes from the host)."""
    g, x = _graded_net()
    graph = snnc.compile(g, calibrate=x)
    with torch.no_grad():
        y = snnc.twin(graph)(x).numpy()
    lava = snnc.run(graph, x, backend="lava-fixed", timeout=300)
    assert np.array_equal(y, lava.output) and y.sum() > 20


def test_twin_graded_input_fine_tune_then_compile(tmp_path):
    """Fine-tuning steps change the graded synapse's mantissas; ``to_graph()`` (also saved and
    reloaded) computes exactly the twin's spikes on the reference and on Lava."""
    g, x = _graded_net(seed=3)
    graph = snnc.compile(g)
    twin = snnc.twin(graph, surrogate=sn.SigmoidDerivative(0.25))
    before = {k: twin.mantissas(k).detach().numpy().copy() for k in twin._key}
    losses = _fine_tune(twin, torch.as_tensor(x), torch.arange(x.shape[0]) % 5, steps=3, lr=0.05)
    changed = {k: int(np.sum(twin.mantissas(k).detach().numpy() != before[k])) for k in before}
    assert changed["fc1"] > 0 and all(np.isfinite(losses))
    with torch.no_grad():
        y = twin(x).numpy()
    tuned = twin.to_graph()
    assert tuned.fixed["fc1"].weight_exp == graph.fixed["fc1"].weight_exp
    assert int(np.sum(tuned.fixed["fc1"].weight != graph.fixed["fc1"].weight)) == changed["fc1"]
    path = str(tmp_path / "tuned.snnc")
    snnc.compile(tuned, path)
    _same_as_reference(snnc.compile(path), x)
    assert np.array_equal(run_reference(snnc.compile(path), x).output, y)
    lava = snnc.run(tuned, x, backend="lava-fixed", timeout=300)
    assert np.array_equal(lava.output, y)


def test_twin_graded_input_refuses_clearly():
    g, x = _graded_net()
    twin = snnc.twin(snnc.compile(g))
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(SnncError, match="finite"):
        twin(bad)
    with pytest.raises(SnncError, match="below 2"):
        twin(x * 1e6)


def test_twin_of_an_snntorch_analog_input_model(tmp_path):
    """snnTorch tutorial 5's way: the analog image at every step -> a graded Input on 2**-8;
    snnTorch's forward == reference float on grid inputs, and twin == reference fixed."""
    from snnc.frontends.step_export import time_last

    torch.manual_seed(0)
    net = _snntorch_mlp((20, 30, 5), beta=0.95)
    img = torch.round(torch.rand(6, 20, generator=torch.Generator().manual_seed(1)) * 256) / 256
    x = img.unsqueeze(0).repeat(25, 1, 1)                     # (T, N, 20): the same image every step
    path = str(tmp_path / "analog.onnx")
    snnc.export(net, x, path)
    xt = time_last(x).numpy().astype(np.float64)
    with torch.no_grad():
        want = time_last(net(x)).numpy()
    assert np.array_equal(snnc.run(path, xt, backend="reference-float").output, want)
    g = snnc.compile(path, calibrate=xt)
    assert g.nodes[g.inputs[0]].kind == "graded"
    twin, y = _same_as_reference(g, xt)
    assert y.sum() > 10
