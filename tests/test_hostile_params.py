"""Parameters that are not numbers or do not fit Loihi 2: refused by the validation pass, naming the
node; what quantization clips is called clipped; a lossy run says so (issue 11)."""
import numpy as np
import pytest

from hostile_models import assert_clear, cli, conv_model, net_file, net_good, onnx_model, spikes
from snnc import api
from snnc.compiler.ir import CubaLIF, Dense, Delay, Graph, Input, Output
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("attrs, words", [
    (dict(threshold=NAN), ["'lif'", "threshold", "finite"]),
    (dict(threshold=INF), ["threshold", "finite"]),
    (dict(threshold=-1.0), ["threshold", "> 0"]),
    (dict(threshold=0.0), ["threshold", "> 0"]),
    (dict(current_decay=1.5), ["current_decay", "<= 1"]),
    (dict(voltage_decay=-0.5), ["voltage_decay", ">= 0"]),
    (dict(current_decay=NAN), ["current_decay", "finite"]),
    (dict(state_scale=-4096), ["state_scale", ">= 0"]),
    (dict(refractory=-3), ["refractory", ">= 0"]),
    (dict(threshold="high"), ["'lif'", "threshold", "number"]),
    (dict(current_decay=[0.1, 0.2]), ["current_decay", "number"]),
    (dict(state_scale=4096.5), ["state_scale", "integer"]),
    (dict(refractory="x"), ["refractory", "integer"]),
])
def test_bad_neuron_attribute_is_refused(tmp_path, capsys, attrs, words):
    m = onnx_model(str(tmp_path / "m.onnx"), attrs=attrs)
    rc, out, err = cli(capsys, "compile", m, "-o", tmp_path / "m.snnc")
    assert_clear(rc, err, *words)
    assert not (tmp_path / "m.snnc").exists()


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_non_finite_weight_and_bias_are_refused(tmp_path, capsys, value):
    w = np.full((3, 4), 0.5, np.float32)
    w[1, 2] = value
    rc, _, err = cli(capsys, "compile", onnx_model(str(tmp_path / "w.onnx"), w=w))
    assert_clear(rc, err, "'fc'", "weight", "finite")
    b = np.array([0, value, 0], np.float32)
    rc, _, err = cli(capsys, "compile", onnx_model(str(tmp_path / "b.onnx"), bias=b))
    assert_clear(rc, err, "'lif'", "bias", "finite")


@pytest.mark.parametrize("attrs, words", [
    (dict(strides=[0, 1, 1]), ["'conv'", "strides"]), (dict(pads=[-1, -1, 0, -1, -1, 0]), ["pads"]),
    (dict(dilations=[0, 1, 1]), ["dilations"]), (dict(group=0), ["group"]),
    (dict(strides=[1.0, 1.0, 1.0]), ["strides", "integers"]), (dict(strides=[1]), ["strides", "3 integers"]),
])
def test_bad_conv_attribute_is_refused(tmp_path, capsys, attrs, words):
    rc, _, err = cli(capsys, "compile", conv_model(str(tmp_path / "c.onnx"), attrs))
    assert_clear(rc, err, *words)


@pytest.mark.parametrize("steps", [[1.5, 0, 2], [NAN, 0, 0], [-1, 0, 0]])
def test_delay_must_be_whole_non_negative_steps(tmp_path, capsys, steps):
    from onnx import helper, numpy_helper

    def delayed(nodes, inits):
        inits.append(numpy_helper.from_array(np.asarray(steps, np.float32), "steps"))
        nodes[1] = helper.make_node("CubaLIF", ["z", "b"], ["s"], name="lif", domain="snnc", current_decay=0.25,
                                    voltage_decay=0.03, threshold=1.25, state_scale=4096)
        return nodes + [helper.make_node("Delay", ["s", "steps"], ["output"], name="dly", domain="snnc")]
    rc, _, err = cli(capsys, "compile", onnx_model(str(tmp_path / "d.onnx"), extra=delayed))
    assert_clear(rc, err, "'dly'", "whole steps")


def test_ir_graph_delay_and_decay_rules():
    """The same rules on IR graphs built in Python (the pass runs in compile, not only import)."""
    def graph(**lif):
        g = Graph()
        g.add("in", Input((4,)))
        g.add("fc", Dense(np.full((3, 4), 0.5)), "in")
        kw = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25)
        kw.update(lif)
        g.add("lif", CubaLIF((3,), **kw), "fc")
        g.add("d", Delay(np.array([0.5, 1, 2])), "lif")
        g.add("out", Output((3,)), "d")
        return g
    with pytest.raises(SnncError, match=r"node 'd' \(Delay\): delay steps must be whole"):
        api.compile(graph())
    with pytest.raises(SnncError, match=r"node 'lif' \(CubaLIF\): voltage_decay must be <= 1"):
        quantize(graph(voltage_decay=1.5))


def test_bias_beyond_13_bits_is_clipped_and_called_clipped(tmp_path, capsys):
    """bias -200 at S = 4096 needs a mantissa of -6400 at exponent 7: beyond Loihi's 13 bits."""
    m = onnx_model(str(tmp_path / "m.onnx"), bias=np.array([-200, 0, 0], np.float32))
    rc, out, err = cli(capsys, "compile", m, "-o", tmp_path / "m.snnc")
    assert rc == 0, err
    assert "quantization exact" not in out and "clipped" in out
    g = api.compile(m)
    row = next(r for r in g.metadata["quantization"] if r["node"] == "lif" and r["param"] == "bias")
    assert row["clipped"] == 1 and row["rounded"] == 0
    assert abs(int(np.ravel(g.fixed["lif"].bias_mant)[0])) <= 4095


def test_clipped_weight_is_not_counted_as_rounded(tmp_path):
    w = np.full((3, 4), 0.5, np.float32)
    w[0, 0] = 5000.0                         # 5000 * 64 / 2**7 = 2500: beyond the 8-bit mantissa
    g = api.compile(onnx_model(str(tmp_path / "m.onnx"), w=w))
    row = next(r for r in g.metadata["quantization"] if r["node"] == "fc")
    assert row["clipped"] == 1 and row["rounded"] == 11 and row["max_error"] > 4000


@pytest.mark.parametrize("command", ["run", "parity", "deploy"])
def test_lossy_quantization_is_said_on_stderr(tmp_path, capsys, command):
    w = np.full((3, 4), 0.5, np.float32)
    w[0, 0] = 500.0
    m = onnx_model(str(tmp_path / "m.onnx"), w=w)
    np.save(tmp_path / "x.npy", spikes((4, 30)))
    args = {"run": ["run", m, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz", "--backend", "reference"],
            "parity": ["parity", m, "--input", tmp_path / "x.npy", "--engines", "reference"],
            "deploy": ["deploy", m, "--dry-run", "--map", tmp_path / "map.json"]}[command]
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    # the outlier raises the weight exponent to 7: the other 11 weights (0.5 * 64 = 32) round to 0;
    # with the rounded voltage decay (0.03 * 4096) that is 12 values
    assert "lossy" in err and "12 value(s) rounded in fc weight" in err, err


def test_exact_model_prints_no_lossy_note(tmp_path, capsys):
    m = onnx_model(str(tmp_path / "m.onnx"), attrs=dict(voltage_decay=0.125))
    np.save(tmp_path / "x.npy", spikes((4, 30)))
    rc, _, err = cli(capsys, "run", m, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz", "--backend", "reference")
    assert rc == 0 and err == "", err


@pytest.mark.parametrize("neuron, words", [
    ({"vThMant": np.nan}, ["layer 2", "vThMant", "finite"]), ({"vThMant": -80}, ["vThMant"]),
    ({"iDecay": 5000}, ["iDecay"]), ({"iDecay": 1024.5}, ["integers"]),
])
def test_bad_net_neuron_fields_are_refused(tmp_path, capsys, neuron, words):
    rc, _, err = cli(capsys, "compile", net_file(str(tmp_path / "m.net"), net_good(neuron=neuron)))
    assert_clear(rc, err, "m.net", *words)


@pytest.mark.parametrize("field, value, words", [
    ("delay", np.array([np.nan, 0, 0, 0], np.float32), ["'delay'", "whole steps"]),
    ("delay", np.array([1.5, 0, 0, 0], np.float32), ["'delay'", "whole steps"]),
    ("weight", np.full((4, 8), np.nan, np.float32), ["weight", "finite"]),
    ("bias", np.array([np.inf, 0, 0, 0], np.float32), ["bias", "finite"]),
    ("weight", np.array([b"a"] * 32).reshape(4, 8), ["'weight'", "numbers"]),
])
def test_bad_net_layer_fields_are_refused(tmp_path, capsys, field, value, words):
    rc, _, err = cli(capsys, "compile", net_file(str(tmp_path / "m.net"), net_good(**{field: value})))
    assert_clear(rc, err, *words)


def test_real_net_delays_still_import(tmp_path):
    """Integer-valued float delays (as lava-dl writes them) are whole steps: accepted."""
    g = api.compile(net_file(str(tmp_path / "ok.net"), net_good(delay=np.array([3, 0, 1, 2], np.float32))))
    assert any(type(n).__name__ == "Delay" for n in g.nodes.values())
