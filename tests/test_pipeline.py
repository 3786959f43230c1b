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


# ----------------------------------------------------------------------------- the pass pipeline
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402

import onnx  # noqa: E402

from snnc.compiler import pipeline  # noqa: E402
from snnc.compiler.fixed import (FixedCubaLI, FixedCubaLIF, FixedSynapse, input_frac_bits, message_scale,  # noqa: E402
                                 state_scale)
from snnc.compiler.fold import fold_pooling  # noqa: E402
from snnc.compiler.ir import CubaLI, Flatten, Graph, Input, Output  # noqa: E402
from snnc.compiler.mapping import map_graph  # noqa: E402
from snnc.compiler.quantize import legalize, quantize  # noqa: E402
from snnc.errors import SnncError  # noqa: E402
from snnc.frontends.onnx_import import import_onnx  # noqa: E402

OLD = os.path.join(os.path.dirname(__file__), "data", "artifact_v1")


def _pooled_graph() -> Graph:
    """Input 2x8x8 -> average pool 2x2 -> flatten -> Dense -> CubaLIF (real-valued) -> Output."""
    rng = np.random.default_rng(3)
    g = Graph()
    g.add("in", Input((2, 8, 8)))
    g.add("pool", SumPool2d((2, 2), (2, 2), weight=0.25), "in")
    g.add("flat", Flatten(), "pool")
    g.add("fc", Dense(rng.normal(0, 0.3, (4, 32))), "flat")
    g.add("lif", CubaLIF((4,), 0.2, 0.1, 0.5, state_scale=0), "fc")
    g.add("out", Output((4,)), "lif")
    return g


def test_pipeline_runs_and_prints_each_pass():
    g = _pooled_graph()
    steps = list(pipeline.run_passes(g))
    assert [n for n, _ in steps] == ["lint", "fold", "legalize", "quantize"]
    after = dict(steps)
    assert "pool" in after["lint"].nodes and "pool" not in after["fold"].nodes    # folded into fc
    assert after["fold"].nodes["fc"].weight.shape == (4, 128)
    assert not after["legalize"].fixed and set(after["quantize"].fixed) == {"fc", "lif"}
    assert "pool" in g.nodes and not g.fixed                                       # input untouched
    text = pipeline.describe(g)
    heads = [line for line in text.splitlines() if line.startswith("== after")]
    assert heads == ["== after lint ==", "== after fold ==", "== after legalize == (unchanged)", "== after quantize =="]
    assert text.split("== after fold ==")[0].count("SumPool2d") == 1
    assert "SumPool2d" not in text.split("== after fold ==")[1]
    q = pipeline.compile_graph(g)
    x = (np.random.default_rng(0).random((3, 2, 8, 8, 12)) < 0.4).astype(np.float64)
    # the pipeline's graph runs as the hand-composed passes do (folding then quantizing)
    assert np.array_equal(run_reference(q, x).output, run_reference(quantize(fold_pooling(g)), x).output)
    assert q.fixed["lif"].state_scale == state_scale(q, "lif") > 0 and "state_scale" not in q.metadata


def test_info_passes_and_module_main_print_each_pass(tmp_path):
    path = str(tmp_path / "pooled.snnc")
    snnc.compile(_pooled_graph(), path)
    for cmd in (["-m", "snnc.cli", "info", "--passes", path], ["-m", "snnc.compiler.pipeline", path]):
        p = subprocess.run([sys.executable] + cmd, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert [line.split(" (")[0] for line in p.stdout.splitlines() if line.startswith("== after")] == \
            [f"== after {n} ==" for n in ("lint", "fold", "legalize", "quantize")]
        assert "w [" in p.stdout.split("== after quantize ==")[1]      # the fixed view printed


def test_lint_after_each_pass_names_the_pass_and_node(monkeypatch):
    def breaks_fc(graph):                      # a pass that leaves a Dense of the wrong width
        g = graph.copy()
        g.replace("fc", Dense(np.ones((4, 7))))
        return g

    def unknown_edge(graph):
        g = graph.copy()
        g.edges.append(("lif", "nowhere"))
        return g

    for bad, want in ((breaks_fc, r"after pass 'broken'.*'fc'"), (unknown_edge, r"after pass 'broken'.*'nowhere'")):
        monkeypatch.setattr(pipeline, "PASSES", pipeline.PASSES[:2] + [("broken", bad)] + pipeline.PASSES[2:])
        with pytest.raises(SnncError, match=want):
            pipeline.compile_graph(_pooled_graph())
    monkeypatch.setattr(pipeline, "PASSES", [("nothing", lambda g: None)])
    with pytest.raises(SnncError, match="pass 'nothing' returned NoneType"):
        pipeline.compile_graph(_pooled_graph())


def test_lint_checks_structure_params_and_fixed_view():
    g = _pooled_graph()
    assert g.lint() is g
    g.replace("lif", CubaLIF((4,), 1.5, 0.1, 0.5))                  # decay outside [0, 1]
    with pytest.raises(SnncError, match="here: node 'lif'.*current_decay"):
        g.lint("here")
    q = pipeline.compile_graph(_pooled_graph())
    q.fixed["lif"] = FixedCubaLIF(decay_u=819, decay_v=410, vth=1 << 20, state_scale=q.fixed["lif"].state_scale)
    with pytest.raises(SnncError, match="'lif'.*vth"):
        q.lint()
    q.fixed["lif"] = FixedCubaLIF(decay_u=819, decay_v=410, vth=3, state_scale=100)
    with pytest.raises(SnncError, match="'lif'.*state_scale must be a multiple of 64"):
        q.lint()


def test_legalize_refuses_before_quantization():
    with pytest.raises(SnncError, match="node 'pool' \\(SumPool2d\\): feeds 'fc' directly.*run the fold pass"):
        legalize(_pooled_graph())                      # unfolded: the pooling feeds a Flatten
    g = fold_pooling(_pooled_graph())
    assert legalize(g) is g
    d = Graph()
    d.add("in", Input((4,)))
    d.add("d", Delay(np.array(2)), "in")
    d.add("lif", CubaLIF((4,), 0.2, 0.1, 0.5), "d")    # a delay straight into neurons
    d.add("out", Output((4,)), "lif")
    d.lint()
    with pytest.raises(SnncError, match="'lif' receives input from 'd' \\(Delay\\), not from a synapse"):
        legalize(d)
    li = Graph()
    li.add("in", Input((3,)))
    li.add("v", CubaLI((3,), 1.0, 0.5), "in")
    li.add("out", Output((3,)), "v")
    with pytest.raises(SnncError, match="'v' receives input from 'in'"):
        pipeline.compile_graph(li)


def test_connect_remove_replace():
    g = _pooled_graph()
    g.connect("fc", "lif")                             # already there: added once
    assert g.edges.count(("fc", "lif")) == 1
    with pytest.raises(SnncError, match="no node 'nope'"):
        g.connect("fc", "nope")
    q = pipeline.compile_graph(g)
    assert "fc" in q.fixed
    removed = q.remove("fc")
    assert isinstance(removed, Dense) and "fc" not in q.nodes and "fc" not in q.fixed
    assert all("fc" not in e for e in q.edges)
    q.remove("out")
    assert q.outputs == []
    with pytest.raises(SnncError, match="no such node"):
        q.remove("fc")
    g.replace("fc", Dense(np.zeros((4, 32))))
    assert np.all(g.nodes["fc"].weight == 0) and ("flat", "fc") in g.edges
    with pytest.raises(SnncError, match="inputs and outputs keep their kind"):
        g.replace("in", Dense(np.zeros((4, 32))))


def test_ensure_compiled_folds_for_the_mapper():
    """The mapper compiles a raw graph through the pipeline (pooling folded), as compile does."""
    g = _pooled_graph()
    raw, compiled = map_graph(g), map_graph(pipeline.compile_graph(g))
    assert raw.layers == compiled.layers and len(raw.cores) == len(compiled.cores)
    assert raw.layers["lif"].inputs[0].in_features == 128                 # the folded Dense
    q = pipeline.compile_graph(g)
    assert pipeline.ensure_compiled(q) is q


# ----------------------------------------------------------------------------- old artifacts
def _old_doc(name):
    with zipfile.ZipFile(os.path.join(OLD, name)) as z:
        return json.loads(z.read("graph.json"))


@pytest.mark.parametrize("name", ["cuba_graded_li.snnc", "sigma_delta.snnc"])
def test_artifacts_written_before_the_typed_view_load(name):
    """tests/data/artifact_v1 was written by snnc before the fixed view held S (make_fixtures.py):
    its metadata["state_scale"] moves into the views, equal to a fresh compile of its float view."""
    doc = _old_doc(name)
    assert all("state_scale" not in f["params"] and "input_frac_bits" not in f["params"] for f in doc["fixed"])
    old = artifact.load(os.path.join(OLD, name))
    assert "state_scale" not in old.metadata
    bare = old.copy()
    bare.fixed = {}
    fresh = pipeline.compile_graph(bare)
    for p, S in doc["metadata"].get("state_scale", {}).items():
        assert old.fixed[p].state_scale == state_scale(old, p) == S == fresh.fixed[p].state_scale
    x = np.random.default_rng(1).random((2,) + tuple(old.nodes[old.inputs[0]].shape) + (10,))
    if name.startswith("sigma"):
        x = np.round(x * 64) / 64                     # the Delta encoder's input unit 1/64
    a, b = run_reference(old, x).output, run_reference(fresh, x).output
    assert np.array_equal(a, b) and np.any(a != 0)
    if name.startswith("sigma"):
        assert [message_scale(old, k) for k in ("enc", "sd", "sig", "fc1")] == [1 << 12, 1 << 12, 1 << 18, 0]


def test_old_artifact_graded_bits_and_a_wrong_scale(tmp_path):
    old = artifact.load(os.path.join(OLD, "cuba_graded_li.snnc"))
    assert input_frac_bits(old, "fc1") == 6 and old.fixed["fc1"].own_weight_exp == old.fixed["fc1"].weight_exp + 6
    assert isinstance(old.fixed["li"], FixedCubaLI) and isinstance(old.fixed["fc2"], FixedSynapse)
    doc = _old_doc("cuba_graded_li.snnc")
    doc["metadata"]["state_scale"]["li"] *= 2                     # an edited old file
    with zipfile.ZipFile(os.path.join(OLD, "cuba_graded_li.snnc")) as z:
        arrays = z.read("arrays.npz")
    bad = str(tmp_path / "edited.snnc")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", arrays)
    with pytest.raises(SnncError, match="edited.snnc: node 'li': the fixed-point state_scale"):
        artifact.load(bad)


# ----------------------------------------------------------------------------- graded CUBA spikes
def test_graded_cuba_refused_at_construction_import_and_load(tmp_path):
    with pytest.raises(SnncError, match="graded=True.*not supported"):
        CubaLIF((3,), 0.1, 0.1, 1.0, graded=True)
    assert not CubaLIF((3,), 0.1, 0.1, 1.0, graded=False).graded
    net, x = slayer_nets.ALL["dense"]()
    path = str(tmp_path / "dense.onnx")
    snnc.export(net, x, path)
    model = onnx.load(path)
    pops = [n for n in model.graph.node if any(a.name == "graded" for a in n.attribute)]
    assert pops
    next(a for a in pops[0].attribute if a.name == "graded").i = 1
    onnx.save(model, str(tmp_path / "graded.onnx"))
    with pytest.raises(SnncError, match="graded=1.*not supported") as e:
        import_onnx(str(tmp_path / "graded.onnx"))
    assert pops[0].name in str(e.value)
    good = str(tmp_path / "ok.snnc")
    snnc.compile(path, good)
    with zipfile.ZipFile(good) as z:
        doc, arrays = json.loads(z.read("graph.json")), z.read("arrays.npz")
    next(n for n in doc["nodes"] if n["type"] == "CubaLIF")["params"]["graded"] = True
    bad = str(tmp_path / "graded.snnc")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", arrays)
    with pytest.raises(SnncError, match="graded.snnc: .*graded=True"):
        artifact.load(bad)


def test_graded_cuba_refused_in_nir_metadata(tmp_path):
    """A NIR file whose snnc metadata marks a population graded is refused, naming the node."""
    import nir  # lazy: heavy (h5py)
    from snnc.backends.nir_export import to_nir
    from snnc.frontends.nir_import import import_nir
    g = Graph()
    g.add("in", Input((3,)))
    g.add("fc", Dense(np.full((2, 3), 0.5)), "in")
    g.add("lif", CubaLIF((2,), 0.5, 0.25, 1.0), "fc")
    g.add("out", Output((2,)), "lif")
    ng = to_nir(g, dt=1e-3)[0]
    path = str(tmp_path / "ok.nir")
    nir.write(path, ng)
    assert any(isinstance(n, CubaLIF) for n in import_nir(path).nodes.values())
    lif = next(k for k, n in ng.nodes.items() if "snnc.voltage_decay" in (getattr(n, "metadata", None) or {}))
    ng.nodes[lif].metadata["snnc.graded"] = 1
    nir.write(str(tmp_path / "graded.nir"), ng)
    with pytest.raises(SnncError, match=f"NIR node {lif!r}: snnc.graded"):
        import_nir(str(tmp_path / "graded.nir"))
