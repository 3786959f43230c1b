"""Graded (analog) first layer: an Input(kind="graded") on the 2**-frac_bits grid is exact in
fixed point (integer graded spikes into a Dense with num_message_bits, weight_exp - frac_bits)."""
import numpy as np
import pytest

from snnc.backends.lava_backend import run_lava
from snnc.backends.reference import run_reference
from snnc.backends.reference_spec import run_reference_spec
from snnc.compiler.ir import CubaLIF, Dense, Graph, Input, Output
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError


def _graph(seed=0, k=8):
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((6,), kind="graded", frac_bits=k))
    g.add("fc1", Dense(rng.normal(0, 0.6, (8, 6))), "x")
    g.add("l1", CubaLIF((8,), current_decay=0.25, voltage_decay=0.1, threshold=1.0), "fc1")
    g.add("fc2", Dense(rng.normal(0, 0.8, (3, 8))), "l1")
    g.add("l2", CubaLIF((3,), current_decay=0.25, voltage_decay=0.1, threshold=1.0), "fc2")
    g.add("out", Output((3,)), "l2")
    return g


def _data(n=3, T=12, k=8, seed=1):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-0.5, 1.5, (n, 6, T)) * 2 ** k) / 2 ** k


def test_graded_fixed_view():
    q = quantize(_graph())
    fx = q.fixed["fc1"]
    assert fx.num_message_bits == 24 and fx.weight_exp < 0
    assert q.fixed["fc2"].num_message_bits == 0


def test_graded_input_is_rounded_to_its_grid():
    """The host rounds graded values to 2**-frac_bits (half to even), in every engine."""
    q = quantize(_graph())
    x = _data()
    off = x.copy()
    off[0, :, :] += 2 ** -10                    # below half a grid step: rounds back to x
    assert np.array_equal(run_reference(q, off, mode="fixed").output, run_reference(q, x, mode="fixed").output)
    assert np.array_equal(run_reference(q, off, mode="float").output, run_reference(q, x, mode="float").output)
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(SnncError, match="finite"):
        run_reference(q, bad, mode="fixed")


def test_graded_lava_fixed_equals_reference():
    q = quantize(_graph())
    x = _data()
    ref = run_reference(q, x, mode="fixed")
    spec = run_reference_spec(q, x, mode="fixed")
    lava = run_lava(q, x, mode="fixed")
    assert np.array_equal(ref.output, spec.output)
    assert np.array_equal(lava.output, ref.output)
    assert ref.counts["l1"].sum() > 0 and ref.counts["l2"].sum() > 0
    # float model vs fixed (reported, not asserted: W is rounded to 8 bits)
    flt = run_reference(_graph(), x, mode="float")
    agree = float(np.mean(flt.output == ref.output))
    print(f"graded input: fixed vs float spike agreement {agree:.3f}")


# ---------------------------------------------------------------------- snnc.nn -> ONNX -> Lava
def _nn_net(quantize=True, frac_bits=6):
    import torch
    import snnc.nn as sn
    torch.manual_seed(0)
    n1 = sn.tssl(5.0, 3.0, 1.0, quantize=quantize)
    n2 = sn.tssl(5.0, 3.0, 1.0, quantize=quantize)
    wq = (lambda n: n.weight_quant()) if quantize else (lambda n: None)
    net = torch.nn.Sequential(sn.GradedInput(frac_bits),
                              sn.Linear(16, 24, bias=False, weight_quant=wq(n1), graded_input=frac_bits), n1,
                              sn.Linear(24, 5, bias=False, weight_quant=wq(n2)), n2)
    with torch.no_grad():
        net[1].weight.mul_(8.0)
        net[3].weight.mul_(6.0)
    return net


def test_nn_graded_input_exact_on_every_engine(tmp_path):
    """A QAT network with a graded first layer: onnxruntime, the fixed reference and Lava
    fixed_pt reproduce the PyTorch spikes bit for bit (the floor of the graded synapse included)."""
    import torch
    import snnc
    import snnc.frontends.torch_export  # noqa: F401
    from snnc.backends.onnx_runtime import run_onnxruntime
    net = _nn_net()
    x = torch.from_numpy(np.random.default_rng(3).normal(0.3, 1.0, (4, 16)).astype(np.float32))
    x = x.unsqueeze(-1).expand(4, 16, 6).contiguous()        # analog values repeated over T = 6
    with torch.no_grad():
        y = net(x).numpy()
    assert y.sum() > 10 and net[2].counts.sum() > 20
    path = str(tmp_path / "g.onnx")
    snnc.export(net, x[:2], path)
    g = snnc.compile(path)
    assert g.nodes[g.inputs[0]].kind == "graded" and g.nodes[g.inputs[0]].frac_bits == 6
    assert not [r for r in g.metadata["quantization"] if r["rounded"] or r["clipped"]]
    assert np.array_equal(run_onnxruntime(path, x.numpy()).output, y)
    assert np.array_equal(snnc.run(g, x.numpy(), backend="reference").output, y)
    lava = snnc.run(g, x.numpy(), backend="lava-fixed", timeout=300)
    assert np.array_equal(lava.output, y)
    assert np.array_equal(lava.counts["2_neuron"], net[2].counts.numpy())


def test_nn_graded_floor_matters():
    """The graded synapse delivers floor(W x) in whole activation units 64/S (Loihi), not the
    rounded value; over many samples that changes spikes, so it is modelled, not ignored."""
    import torch
    net = _nn_net()
    x = torch.from_numpy(np.random.default_rng(4).normal(0.3, 1.0, (300, 16)).astype(np.float32))
    x = x.unsqueeze(-1).expand(300, 16, 6).contiguous()
    unit = 64.0 / (4096 / 3.0)                        # activation unit in weight units (S 4096, 1/tau_s)
    with torch.no_grad():
        xg = net[0](x)
        a = net[1](xg).double() / unit
        exact = torch.einsum("oi,nit->not", net[1].effective_weight().double(), xg.double()) / unit
        assert torch.allclose(a, torch.floor(exact + 1e-9), atol=1e-6)
        assert (a - exact).abs().max() > 0.25          # the floor moves values by up to one unit
        y = net(x)
        net[1].graded_input = None                    # plain W x, rounded by the neuron instead
        y_round = net(x)
    assert not torch.equal(y, y_round)


@pytest.mark.parametrize("case", ["not_on_input", "conv_reads", "mismatch", "input_twice", "no_graded"])
def test_nn_graded_export_errors(case, tmp_path):
    import torch
    import snnc
    import snnc.nn as sn
    import snnc.frontends.torch_export  # noqa: F401
    n = sn.tssl(5.0, 3.0, 1.0, quantize=True)
    x = torch.zeros(2, 4, 3)
    if case == "not_on_input":
        net = torch.nn.Sequential(sn.Linear(4, 4, bias=False), sn.LIF(), sn.GradedInput(4),
                                  sn.Linear(4, 4, bias=False, graded_input=4), n)
        msg = "applied to the network input"
    elif case == "conv_reads":
        net = torch.nn.Sequential(sn.GradedInput(4), sn.Conv2d(1, 2, 3, bias=False), n)
        x = torch.zeros(2, 1, 5, 5, 3)
        msg = "feed only"
    elif case == "mismatch":
        net = torch.nn.Sequential(sn.GradedInput(4), sn.Linear(4, 4, bias=False, graded_input=6), n)
        msg = "feed only"
    elif case == "input_twice":
        class Two(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.g, self.a = sn.GradedInput(4), sn.Linear(4, 4, bias=False, graded_input=4)
                self.b, self.n = sn.Linear(4, 4, bias=False), n

            def forward(self, x):
                return self.n(self.a(self.g(x)) + self.b(x))
        net = Two()
        msg = "read only through"
    else:
        net = torch.nn.Sequential(sn.Linear(4, 4, bias=False, graded_input=4), n)
        msg = "not a snnc.nn.GradedInput"
    with pytest.raises(SnncError, match=msg):
        snnc.export(net, x, str(tmp_path / "e.onnx"))


def test_graded_deploy_estimate_and_bundle(tmp_path):
    """Deploy of a graded-input network: the estimate counts graded messages (nonzero values),
    and the bundle's own script reproduces the expected spikes in Lava fixed_pt."""
    import subprocess
    import sys
    from snnc.compiler.artifact import save
    from snnc.deploy import dry_run, input_messages, write_bundle
    from snnc.deploy import test_input as make_test_input
    q = quantize(_graph())
    x = _data(n=1)[0]
    assert np.array_equal(input_messages(q, x), (x != 0).sum(-1))
    _, est, _ = dry_run(q, spikes=x)
    # every input message is processed by all 8 synapses of fc1 it reaches (dense)
    assert est.totals["synops_per_step"] >= 8 * (x != 0).sum() / x.shape[-1] > 0
    xt = make_test_input(q, steps=12)
    assert np.all(xt * 2 ** 8 == np.round(xt * 2 ** 8)) and np.any(xt < 0)
    path = str(tmp_path / "g.snnc")
    save(q, path)
    b = tmp_path / "bundle"
    write_bundle(path, str(b))
    p = subprocess.run([sys.executable, str(b / "run.py")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and "MATCH" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("order", [0, 1])
def test_onnx_graded_input_must_be_the_only_reader(order, tmp_path):
    """An ONNX graph input read by snnc.GradedInput and by another node is refused (either order)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from snnc.frontends import onnx_ops as ops
    from snnc.frontends.onnx_import import import_onnx
    nodes = [helper.make_node("GradedInput", ["input"], ["g"], name="gi", domain="snnc", frac_bits=4),
             helper.make_node("MatMul", ["W", "input"], ["y"], name="mm")]
    g = helper.make_graph(nodes[::-1] if order else nodes, "t",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4, "T"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "T"])],
                          [numpy_helper.from_array(np.ones((3, 4), np.float32), "W")])
    m = helper.make_model(g, ir_version=10, functions=[ops.graded_input_function()],
                          opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("snnc", 1)])
    path = str(tmp_path / "m.onnx")
    onnx.save(m, path)
    with pytest.raises(SnncError, match="read only through its GradedInput"):
        import_onnx(path)


def test_output_reading_the_graded_input_is_its_grid_value_on_every_engine():
    """An Output that reads a graded Input directly gets the values the host sent, rounded to the
    input's 2**-frac_bits grid, on reference fixed/float and Lava fixed alike (fixed point carries
    integer messages round(x * 2**frac_bits): the read-out divides them back)."""
    from snnc.compiler import ir
    g = ir.Graph()
    g.add("in", ir.Input((3,), kind="graded", frac_bits=4))
    g.add("w", ir.Dense(np.full((2, 3), 0.5)), "in")
    g.add("p", ir.CubaLIF((2,), 0.5, 0.25, 1.0), "w")
    g.add("o", ir.Output((2,)), "p")
    g.add("oin", ir.Output((3,)), "in")
    q = quantize(g)
    x = np.random.default_rng(0).random((2, 3, 6))
    want = np.round(x * 16) / 16
    runs = [run_reference(q, x, "fixed"), run_reference(q, x, "float"), run_lava(q, x, "fixed", timeout=300)]
    for r in runs:
        assert np.array_equal(r.outputs["oin"], want)
        assert np.array_equal(r.outputs["o"], runs[0].outputs["o"]) and runs[0].outputs["o"].sum() > 0
