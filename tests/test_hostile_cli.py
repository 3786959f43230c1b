"""CLI and API for lava-dl users: `snnc compile network.net --input-shape C,H,W --num-layers N
--reset-interval K`, the same on snnc.compile(path, output, **netx_options); `snnc --version`;
flags checked (issue 11)."""
import numpy as np
import pytest

import snnc
from hostile_models import CUBA, assert_clear, cli, net_dense, net_file, net_good, onnx_model, spikes
from snnc import api
from snnc.compiler import artifact
from snnc.errors import SnncError


def conv_first(path):
    """What lava-dl's export_hdf5 writes for a conv-first network: no input layer."""
    return net_file(path, [dict(type="conv", shape=np.array([2, 4, 4]), inChannels=1, outChannels=2,
                                weight=np.full((2, 1, 3, 3), 40.0, np.float32), kernelSize=np.array([3, 3]),
                                stride=np.array([1, 1]), padding=np.array([0, 0]), dilation=np.array([1, 1]),
                                groups=1, neuron=dict(CUBA)),
                           dict(type="flatten", shape=np.array([32, 1, 1])), net_dense(32, 3)])


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli(capsys, "--version")
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"snnc {snnc.__version__}"


def test_compile_conv_first_net_with_input_shape(tmp_path, capsys):
    """Before: the error said 'give input_shape=(C, H, W)' but snnc compile had no such option."""
    net = conv_first(str(tmp_path / "c.net"))
    rc, _, err = cli(capsys, "compile", net, "-o", tmp_path / "c.snnc")
    assert_clear(rc, err, "input_shape", "--input-shape")
    rc, out, err = cli(capsys, "compile", net, "--input-shape", "1,6,6", "-o", tmp_path / "c.snnc")
    assert rc == 0, err
    g = artifact.load(str(tmp_path / "c.snnc"))
    assert g.shapes()[g.inputs[0]] == (1, 6, 6) and g.shapes()[g.outputs[0]] == (3,)


def test_compile_num_layers_and_reset_interval(tmp_path, capsys):
    net = conv_first(str(tmp_path / "c.net"))
    rc, _, err = cli(capsys, "compile", net, "--input-shape", "1,6,6", "--num-layers", "1", "--reset-interval", "8",
                     "-o", tmp_path / "c1.snnc")
    assert rc == 0, err
    g = artifact.load(str(tmp_path / "c1.snnc"))
    assert g.shapes()[g.outputs[0]] == (2, 4, 4)              # the conv layer only
    pops = [n for n in g.nodes.values() if type(n).__name__ == "CubaLIF"]
    assert len(pops) == 1 and pops[0].reset_interval == 8


def test_top_level_compile_takes_netx_options(tmp_path):
    """Before: snnc.compile(path, output) dropped every .net option."""
    net = conv_first(str(tmp_path / "c.net"))
    g = snnc.compile(net, str(tmp_path / "c.snnc"), input_shape=(1, 6, 6), num_layers=1)
    assert g.shapes()[g.outputs[0]] == (2, 4, 4)
    x = spikes((1, 6, 6, 20))
    assert np.array_equal(snnc.run(g, x, backend="reference").output,
                          snnc.run(str(tmp_path / "c.snnc"), x, backend="reference").output)


@pytest.mark.parametrize("flags, words", [
    (["--input-shape", "a,b"], ["--input-shape", "C,H,W"]), (["--input-shape", "1,-6,6"], ["--input-shape"]),
    (["--num-layers", "0"], ["--num-layers", ">= 1"]), (["--num-layers", "-2"], ["--num-layers"]),
    (["--reset-interval", "-3"], ["--reset-interval"]),
])
def test_bad_netx_flags(tmp_path, capsys, flags, words):
    with pytest.raises(SystemExit) as e:
        cli(capsys, "compile", conv_first(str(tmp_path / "c.net")), *flags)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err


def test_netx_flags_on_onnx_are_refused(tmp_path, capsys):
    rc, _, err = cli(capsys, "compile", onnx_model(str(tmp_path / "m.onnx")), "--input-shape", "1,6,6")
    assert_clear(rc, err, "--input-shape", ".net models only")
    with pytest.raises(SnncError, match=".net models only"):
        api.compile(str(tmp_path / "m.onnx"), num_layers=1)


@pytest.mark.parametrize("args, words", [
    (["deploy", "M", "--dry-run", "--chips", "0"], ["--chips", ">= 1"]),
    (["parity", "O", "--input", "X", "--engines", "nope"], ["--engines", "choose from"]),
    (["parity", "O", "--input", "X", "--engines", ","], ["--engines"]),
])
def test_bad_flags_are_one_clear_error(tmp_path, capsys, args, words):
    m = onnx_model(str(tmp_path / "m.onnx"))
    api.compile(m, str(tmp_path / "m.snnc"))
    np.save(tmp_path / "x.npy", spikes((4, 20)))
    sub = {"M": tmp_path / "m.snnc", "O": m, "X": tmp_path / "x.npy"}
    try:
        rc, _, err = cli(capsys, *[sub.get(a, a) for a in args])
    except SystemExit as e:
        rc, err = e.code, capsys.readouterr().err
    assert rc == 2 and all(w in err for w in words) and "Traceback" not in err, err


def test_net_still_compiles_without_options(tmp_path, capsys):
    rc, out, err = cli(capsys, "compile", net_file(str(tmp_path / "g.net"), net_good()), "-o", tmp_path / "g.snnc")
    assert rc == 0, err
