"""PyTorch (SLAYER) -> ONNX -> IR -> quantized -> reference simulator, bit for bit; artifact round trip."""

import numpy as np
import pytest
import torch

import slayer_nets
import snnc
from snnc.backends.reference import run_reference
from snnc.compiler import artifact
from snnc.compiler.ir import CubaLIF, Delay, Dense, SumPool2d


@pytest.fixture(scope="module", params=sorted(slayer_nets.ALL))
def exported(request, tmp_path_factory):
    net, x = slayer_nets.ALL[request.param]()
    with torch.no_grad():
        y = net(x).numpy()
    path = str(tmp_path_factory.mktemp(request.param) / f"{request.param}.onnx")
    snnc.export(net, x, path)
    return request.param, path, x.numpy(), y


def test_quantization_is_exact_for_slayer_models(exported):
    name, path, x, y = exported
    graph = snnc.compile(path)
    lossy = [r for r in graph.metadata["quantization"] if r["rounded"] or r["clipped"]]
    assert lossy == [], lossy


def test_reference_fixed_equals_pytorch(exported):
    name, path, x, y = exported
    r = run_reference(snnc.compile(path), x, "fixed")
    print(f"{name}: pytorch {int(y.sum())} output spikes, reference {int(r.output.sum())}; per layer {r.layer_totals()}")
    assert r.output.shape == y.shape
    assert np.array_equal(r.output, y)
    assert y.sum() > 0


def test_graph_structure(exported):
    name, path, x, y = exported
    g = snnc.compile(path)
    kinds = [type(n).__name__ for n in g.nodes.values()]
    assert kinds.count("CubaLIF") == {"dense": 2, "delay": 2, "conv": 4, "recurrent": 2}[name]
    if name == "conv":
        assert any(isinstance(n, SumPool2d) for n in g.nodes.values())
    if name == "delay":
        steps = [n.steps for n in g.nodes.values() if isinstance(n, Delay) and np.size(n.steps) > 1]
        assert steps and np.max(steps[0]) > 1          # axonal delays survive as per-neuron steps
    if name == "recurrent":
        pop = next(k for k, n in g.nodes.items() if isinstance(n, CubaLIF))
        assert any(isinstance(g.nodes[s], Dense) and s != pop for s in g.predecessors(pop))
        assert len(g.predecessors(pop)) == 2             # input synapse + recurrent synapse


def test_artifact_round_trip(exported, tmp_path):
    name, path, x, y = exported
    out = str(tmp_path / "m.snnc")
    g = snnc.compile(path, out)
    g2 = artifact.load(out)
    assert list(g2.nodes) == list(g.nodes) and g2.edges == g.edges
    assert np.array_equal(run_reference(g2, x).output, y)


def test_batch_and_single_sample_layouts(exported):
    name, path, x, y = exported
    one = snnc.run(path, x[1], backend="reference")
    assert one.output.shape == y[1].shape
    assert np.array_equal(one.output, y[1])


def test_info_prints_graph_and_report(exported, tmp_path, cli):
    name, path, x, y = exported
    rc, out, err = cli("info", path)
    assert rc == 0, err
    assert "CubaLIF" in out and "quantization report" in out and "Loihi fixed point" in out
