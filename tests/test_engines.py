"""Engines behind one interface (snnc.backends.registry) and what they return (RunResult): the
registry is what the API, ``snnc run --backend``, ``snnc eval --engine``, the help and the errors
list; onnxruntime is an engine; ``RunResult.to_npz`` is what ``snnc run -o`` writes and
``RunResult.from_npz`` reads it back."""
import os

import numpy as np
import pytest

import snnc
from snnc import api
from snnc.backends import registry
from snnc.backends.result import RunResult, load_npz
from snnc.errors import SnncError
from snnc.evaluate import evaluate

from hostile_models import onnx_model


@pytest.fixture
def onnx_file(tmp_path):
    """MatMul -> snnc.CubaLIF (state_scale 4096: Loihi's integer dynamics in the file itself)."""
    w = np.random.default_rng(0).normal(0.6, 0.4, (3, 4)).astype(np.float32)
    return onnx_model(str(tmp_path / "m.onnx"), w=np.round(w * 64) / 64)


def _x(shape, seed=1, rate=0.4):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


# ----------------------------------------------------------------------------- the registry
def test_registry_has_every_engine_with_a_description():
    assert registry.names() == ("lava-fixed", "lava-float", "lava-fused-fixed", "lava-fused-float", "reference",
                                "reference-float", "torch", "onnxruntime")
    assert api.ENGINES == registry.names("graph") and "onnxruntime" not in api.ENGINES
    assert registry.names("onnx") == ("onnxruntime",)
    for name, e in registry.ENGINES.items():
        assert e.name == name and e.description and "\n" not in e.description
        assert e.lava == name.startswith("lava")
    with pytest.raises(SnncError, match="already registered"):
        registry.register(registry.ENGINES["reference"])


def test_unknown_names_list_the_registry(small_chain):
    g, x = small_chain
    with pytest.raises(SnncError) as e:
        api.run(g, x, backend="gpu")
    assert "unknown backend 'gpu'" in str(e.value) and ", ".join(registry.names()) in str(e.value)
    with pytest.raises(SnncError) as e:
        evaluate(g, x, np.zeros(len(x), int), engine="onnxruntime")
    assert "engine 'onnxruntime' runs the exported .onnx file" in str(e.value)
    assert ", ".join(registry.names("graph")) in str(e.value)


def test_engine_options_are_checked_and_passed(small_chain):
    g, x = small_chain
    with pytest.raises(SnncError, match="engine 'reference' takes no option chunk \\(its options: progress, "
                                        "batch_size, plan\\)"):
        api.run(g, x, backend="reference", chunk=4)
    step = api.run(g, x, backend="reference", plan="step")
    assert step.plan == "step" and step.engine == "reference-fixed"
    e = registry.get("reference")
    assert e.accepted(dict(timeout=5, progress=False)) == {"progress": False}


def test_cli_help_and_choices_come_from_the_registry(cli):
    rc, out, err = cli("run", "--help")
    assert rc == 0, err
    for name, e in registry.ENGINES.items():
        assert name in out and e.description.split(",")[0] in out
    rc, out, err = cli("eval", "--help")
    assert rc == 0 and all(n in out for n in registry.names("graph"))
    rc, out, err = cli("run", "m.snnc", "--input", "x.npy", "-o", "y.npz", "--backend", "gpu")
    assert rc == 2 and "invalid choice: 'gpu'" in err and "onnxruntime" in err


# ----------------------------------------------------------------------------- onnxruntime is an engine
def test_onnxruntime_engine_equals_the_reference(onnx_file):
    """The file run by onnxruntime (the dialect's ONNX functions) == the compiled graph on the numpy
    reference: two independent implementations of the same integer dynamics."""
    x = _x((3, 4, 40))
    ort = api.run(onnx_file, x, backend="onnxruntime")
    ref = api.run(onnx_file, x, backend="reference")
    assert ort.engine == "onnxruntime" and ref.engine == "reference-fixed"
    np.testing.assert_array_equal(ort.output, ref.output)
    assert ort.counts.keys() == ref.counts.keys() == {"lif"}
    np.testing.assert_array_equal(ort.counts["lif"], ref.counts["lif"])
    assert ref.output.sum() > 0
    one = api.run(onnx_file, x[1], backend="onnxruntime")              # one sample, C, T: same layout back
    np.testing.assert_array_equal(one.output, ref.output[1])
    with pytest.raises(SnncError, match="runs the exported .onnx file itself; give the .onnx model"):
        api.run(snnc.compile(onnx_file), x, backend="onnxruntime")


def test_snnc_run_with_onnxruntime(onnx_file, tmp_path, cli):
    x = _x((2, 4, 30))
    np.save(tmp_path / "x.npy", x)
    rc, out, err = cli("run", onnx_file, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
                       "--backend", "onnxruntime")
    assert rc == 0, err
    assert out.startswith("onnxruntime:")
    y = load_npz(str(tmp_path / "y.npz"))
    assert y.engine == "onnxruntime"
    np.testing.assert_array_equal(y.output, api.run(onnx_file, x, backend="reference").output)
    rc, _, err = cli("compile", onnx_file, "-o", tmp_path / "m.snnc")
    assert rc == 0, err
    rc, _, err = cli("run", tmp_path / "m.snnc", "--input", tmp_path / "x.npy", "-o", tmp_path / "z.npz",
                     "--backend", "onnxruntime")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "give the .onnx model" in err, err


# ----------------------------------------------------------------------------- RunResult and its .npz
def test_run_result_round_trips_through_npz(tmp_path, small_branchy):
    g, x = small_branchy                                           # three outputs
    r = api.run(g, x, backend="reference")
    assert set(r.outputs) == {"out", "out5", "out_avg"} and r.output is r.outputs[g.outputs[0]]
    r.timing = {"build": 0.25, "run": 1.5, "note": "not a number"}
    path = str(tmp_path / "result")                                # no .npz appended
    r.to_npz(path)
    assert os.listdir(tmp_path) == ["result"]                      # written through a temporary file, renamed
    back = RunResult.from_npz(path)
    assert (back.engine, back.plan, back.seconds) == (r.engine, r.plan, r.seconds)
    assert back.timing == {"build": 0.25, "run": 1.5}
    np.testing.assert_array_equal(back.output, r.output)
    assert back.outputs.keys() == r.outputs.keys() and back.counts.keys() == r.counts.keys()
    for k in r.outputs:
        np.testing.assert_array_equal(back.outputs[k], r.outputs[k])
    for k in r.counts:
        np.testing.assert_array_equal(back.counts[k], r.counts[k])
    assert back.layer_totals() == r.layer_totals()


def test_state_and_spike_trains_in_npz(tmp_path):
    r = RunResult(output=np.zeros((1, 2, 3), np.float32), counts={"p": np.array([[1, 2]])}, engine="x",
                  state={"p": {"u": np.array([[5, 6]]), "v": np.array([[7, 8]])}}, state_steps={"p": 3},
                  spikes={"p": np.ones((1, 2, 3), np.int8)})
    r.to_npz(str(tmp_path / "a.npz"))
    a = load_npz(str(tmp_path / "a.npz"))
    assert a.spikes == {} and a.state_steps == {"p": 3}
    np.testing.assert_array_equal(a.state["p"]["v"], [[7, 8]])
    r.to_npz(str(tmp_path / "b.npz"), spikes=True)
    np.testing.assert_array_equal(load_npz(str(tmp_path / "b.npz")).spikes["p"], r.spikes["p"])
    one = r.sample(0)
    assert one.output.shape == (2, 3) and one.state["p"]["u"].tolist() == [5, 6] and one.spikes["p"].shape == (2, 3)


def test_one_sample_is_the_batch_without_its_axis(small_conv):
    g, x = small_conv
    batch = api.run(g, x, backend="reference")
    one = api.run(g, x[1], backend="reference")
    assert one.output.shape == batch.output.shape[1:]
    np.testing.assert_array_equal(one.output, batch.output[1])
    assert one.outputs.keys() == batch.outputs.keys() and one.counts.keys() == batch.counts.keys()
    for k in batch.counts:
        np.testing.assert_array_equal(one.counts[k], batch.counts[k][1])


def test_older_and_foreign_npz_files(tmp_path):
    np.savez(tmp_path / "old.npz", **{"output": np.ones((3, 5)), "counts/lif": np.array([5, 5, 5])})
    old = load_npz(str(tmp_path / "old.npz"))
    assert old.engine == "" and old.layer_totals() == {"lif": 15}
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(SnncError, match="no 'output' array"):
        load_npz(str(tmp_path / "other.npz"))
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(SnncError, match="junk.npz: not an .npz run result"):
        load_npz(str(tmp_path / "junk.npz"))


def test_snnc_run_writes_through_to_npz(tmp_path, cli, small_chain):
    g, x = small_chain
    from snnc.compiler import artifact
    artifact.save(g, str(tmp_path / "m.snnc"))
    np.save(tmp_path / "x.npy", x)
    rc, out, err = cli("run", tmp_path / "m.snnc", "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
                       "--backend", "reference")
    assert rc == 0, err
    y = load_npz(str(tmp_path / "y.npz"))
    want = api.run(g, x, backend="reference")
    assert y.engine == "reference-fixed" and y.plan == want.plan and y.seconds > 0
    np.testing.assert_array_equal(y.output, want.output)
    np.testing.assert_array_equal(y.outputs["out"], want.output)
    assert y.layer_totals() == want.layer_totals()
    with np.load(tmp_path / "y.npz") as z:
        assert {"output", "engine", "seconds", "outputs/out", "counts/lif0", "counts/lif1"} <= set(z.files)
