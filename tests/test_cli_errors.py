"""Bad input gives one clear line naming the file/node/op, exit code 2, and no traceback."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc_cli import run_snnc


def _model(nodes, inits, path, in_shape=("N", 4, "T"), functions=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(in_shape))],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("snnc", 1)],
                          functions=list(functions))
    m.ir_version = 10
    onnx.save(m, path)
    return path


def lif(inp, out, name="lif", **attrs):
    a = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25, state_scale=4096)
    a.update(attrs)
    a = {k: v for k, v in a.items() if v is not None}
    return helper.make_node("CubaLIF", [inp], [out], name=name, domain="snnc", **a)


def assert_clear(code, err, *words):
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("snnc: error:"), err
    for w in words:
        assert w in err, (w, err)


def test_not_an_onnx_file(tmp_path, cli):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not a protobuf \x00\xff\x13")
    code, _, err = cli("compile", str(bad), "-o", str(tmp_path / "m.snnc"))
    assert_clear(code, err, "model.onnx", "not an ONNX")


def test_missing_model_file(tmp_path, cli):
    code, _, err = cli("compile", str(tmp_path / "nope.onnx"))
    assert_clear(code, err, "nope.onnx", "no such file")


def test_unsupported_op_is_named(tmp_path, cli):
    path = _model([helper.make_node("Relu", ["input"], ["output"], name="my_relu")], {}, str(tmp_path / "relu.onnx"))
    code, _, err = cli("compile", path)
    assert_clear(code, err, "my_relu", "Relu", "not supported")


def test_missing_attribute_is_named(tmp_path, cli):
    w = np.ones((3, 4), np.float32)
    nodes = [helper.make_node("MatMul", ["W", "input"], ["z"], name="fc"), lif("z", "output", threshold=None)]
    path = _model(nodes, {"W": w}, str(tmp_path / "noattr.onnx"))
    code, _, err = cli("compile", path)
    assert_clear(code, err, "lif", "CubaLIF", "threshold")


def test_shape_mismatch_is_named(tmp_path, cli):
    w = np.ones((3, 5), np.float32)   # expects 5 inputs, the graph input has 4
    nodes = [helper.make_node("MatMul", ["W", "input"], ["z"], name="fc1"), lif("z", "output")]
    path = _model(nodes, {"W": w}, str(tmp_path / "shape.onnx"))
    code, _, err = cli("compile", path)
    assert_clear(code, err, "fc1", "MatMul")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    w = np.full((3, 4), 0.5, np.float32)
    nodes = [helper.make_node("MatMul", ["W", "input"], ["z"], name="fc"), lif("z", "output")]
    model = _model(nodes, {"W": w}, str(d / "tiny.onnx"))
    code, out, err = run_snnc("compile", model, "-o", str(d / "tiny.snnc"))
    assert code == 0, err
    return d


def test_missing_input_file(tiny, cli):
    code, _, err = cli("run", str(tiny / "tiny.snnc"), "--input", str(tiny / "nope.npy"), "-o", str(tiny / "y.npz"),
                       "--backend", "reference")
    assert_clear(code, err, "nope.npy", "no such input file")


def test_input_of_wrong_shape(tiny, cli):
    np.save(tiny / "x.npy", np.zeros((2, 5, 10), np.float32))
    code, _, err = cli("run", str(tiny / "tiny.snnc"), "--input", str(tiny / "x.npy"), "-o", str(tiny / "y.npz"),
                       "--backend", "reference")
    assert_clear(code, err, "(2, 5, 10)", "(4, T)")


def test_output_never_overwrites_input(tiny, cli):
    np.save(tiny / "x.npy", np.zeros((4, 10), np.float32))
    before = (tiny / "x.npy").read_bytes()
    code, _, err = cli("run", str(tiny / "tiny.snnc"), "--input", str(tiny / "x.npy"), "-o", str(tiny / "x.npy"),
                       "--backend", "reference")
    assert_clear(code, err, "overwrite")
    assert (tiny / "x.npy").read_bytes() == before


def test_not_an_artifact(tiny, cli):
    (tiny / "fake.snnc").write_text("hello")
    code, _, err = cli("info", str(tiny / "fake.snnc"))
    assert_clear(code, err, "fake.snnc", "not a compiled snnc artifact")


def test_run_reference_single_sample_layout(tiny, cli):
    x = (np.random.default_rng(0).random((4, 20)) < 0.5).astype(np.float32)
    np.save(tiny / "x1.npy", x)
    code, out, err = cli("run", str(tiny / "tiny.snnc"), "--input", str(tiny / "x1.npy"), "-o", str(tiny / "y1.npz"),
                         "--backend", "reference")
    assert code == 0, err
    y = np.load(tiny / "y1.npz")
    assert y["output"].shape == (3, 20)          # same layout as the input: C, T
    assert y["counts/lif"].shape == (3,)
    assert int(y["output"].sum()) == int(y["counts/lif"].sum()) > 0
