"""Files: outputs never overwrite inputs (through links too), are written atomically; ONNX external
data from the model's folder; every malformed file or flag is one clear line (issue 11)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import helper

from hostile_models import assert_clear, cli, net_file, net_good, onnx_model, spikes
from snnc import api

SNNC = [sys.executable, "-m", "snnc.cli"]


@pytest.fixture
def model(tmp_path):
    onnx_model(str(tmp_path / "m.onnx"))
    api.compile(str(tmp_path / "m.onnx"), str(tmp_path / "m.snnc"))
    np.save(tmp_path / "x.npy", spikes((4, 40)))
    return tmp_path


def link(kind, target, name):
    (os.symlink if kind == "symlink" else os.link)(target, name)


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
@pytest.mark.parametrize("target, command", [
    ("x.npy", ["run", "m.snnc", "--input", "x.npy", "--backend", "reference", "-o", "OUT"]),
    ("m.snnc", ["run", "m.snnc", "--input", "x.npy", "--backend", "reference", "-o", "OUT"]),
    ("m.onnx", ["compile", "m.onnx", "-o", "OUT"]),
    ("m.snnc", ["export-net", "m.snnc", "-o", "OUT"]),
    ("m.snnc", ["deploy", "m.snnc", "--dry-run", "--map", "OUT"]),
])
def test_output_through_a_link_never_overwrites_an_input(model, capsys, kind, target, command):
    """Before: a symlink or hard link as -o destroyed the input .npy and the model (exit 0)."""
    before = (model / target).read_bytes()
    link(kind, model / target, model / "out.bin")
    rc, _, err = cli(capsys, *[str(model / a) if a in ("m.snnc", "m.onnx", "x.npy") else
                               (str(model / "out.bin") if a == "OUT" else a) for a in command])
    assert_clear(rc, err, "overwrite the input")
    assert (model / target).read_bytes() == before


def test_dotdot_path_to_the_input_is_refused(model, capsys):
    os.makedirs(model / "sub")
    rc, _, err = cli(capsys, "run", model / "m.snnc", "--input", model / "x.npy", "-o", f"{model}/sub/../x.npy",
                     "--backend", "reference")
    assert_clear(rc, err, "overwrite")


def test_output_is_written_exactly_where_asked_and_atomically(model, capsys):
    """The .npz goes to the given name (np.savez would append .npz) via a temporary file renamed
    into place: a symlink at the output path is replaced, its target left alone."""
    (model / "other.txt").write_text("keep me")
    os.symlink(model / "other.txt", model / "y.out")
    rc, _, err = cli(capsys, "run", model / "m.snnc", "--input", model / "x.npy", "-o", model / "y.out",
                     "--backend", "reference")
    assert rc == 0, err
    assert (model / "other.txt").read_text() == "keep me"
    assert not os.path.islink(model / "y.out")
    assert np.load(model / "y.out")["output"].shape == (3, 40)
    assert not [f for f in os.listdir(model) if f.endswith(".tmp")]


def test_onnx_external_data_is_read_from_the_model_folder(tmp_path, monkeypatch):
    """Before: a stray ./w.bin in the current folder was used silently."""
    os.makedirs(tmp_path / "model")
    onnx_model(str(tmp_path / "model" / "m.onnx"), external="w.bin")
    onnx_model(str(tmp_path / "stray.onnx"), w=np.zeros((3, 4), np.float32), external="w.bin")
    onnx_model(str(tmp_path / "inline.onnx"))
    monkeypatch.chdir(tmp_path)
    x = spikes((4, 40))
    want = api.run(str(tmp_path / "inline.onnx"), x, backend="reference").output
    got = api.run(str(tmp_path / "model" / "m.onnx"), x, backend="reference").output
    assert want.sum() > 0 and np.array_equal(got, want)


def test_missing_external_data_is_named(tmp_path, capsys):
    onnx_model(str(tmp_path / "m.onnx"), external="w.bin")
    os.remove(tmp_path / "w.bin")
    rc, _, err = cli(capsys, "compile", tmp_path / "m.onnx")
    assert_clear(rc, err, "m.onnx", "'W'", "w.bin")


def _missing_input(nodes, inits):
    nodes[0] = helper.make_node("MatMul", ["W"], ["z"], name="fc")
    return nodes


def _reshape_without_shape(nodes, inits):
    return [helper.make_node("Reshape", ["input"], ["r"], name="rs")] + nodes


@pytest.mark.parametrize("extra, words", [(_missing_input, ["'fc'", "needs 2 input"]),
                                          (_reshape_without_shape, ["'rs'", "needs 2 input"])])
def test_node_missing_an_input_is_named(tmp_path, capsys, extra, words):
    rc, _, err = cli(capsys, "compile", onnx_model(str(tmp_path / "m.onnx"), extra=extra))
    assert_clear(rc, err, *words)


@pytest.mark.parametrize("name, data", [("m.net", b"hello"), ("m.onnx", b"\x08\x07garbage"), ("m.snnc", b"")])
def test_corrupt_files_are_one_line(tmp_path, capsys, name, data):
    (tmp_path / name).write_bytes(data)
    rc, _, err = cli(capsys, "compile" if name != "m.snnc" else "info", tmp_path / name)
    assert_clear(rc, err, name)


def test_truncated_net_file(tmp_path, capsys):
    net_file(str(tmp_path / "g.net"), net_good())
    data = (tmp_path / "g.net").read_bytes()
    (tmp_path / "m.net").write_bytes(data[: len(data) // 2])
    rc, _, err = cli(capsys, "compile", tmp_path / "m.net")
    assert_clear(rc, err, "m.net")


def test_bundle_pointing_at_a_file(model, capsys):
    before = (model / "x.npy").read_bytes()
    rc, _, err = cli(capsys, "deploy", model / "m.snnc", "--bundle", model / "x.npy")
    assert_clear(rc, err, "--bundle", "not a folder")
    assert (model / "x.npy").read_bytes() == before


@pytest.mark.parametrize("args, words", [
    (["run", "M", "--input", "DIR", "-o", "Y", "--backend", "reference"], ["not a file"]),
    (["run", "M", "--input", "X", "-o", "DIR", "--backend", "reference"], ["is a folder"]),
    (["compile", "DIR"], ["not an ONNX file", "Is a directory"]),
])
def test_folders_where_files_belong(model, capsys, args, words):
    os.makedirs(model / "d")
    sub = {"M": model / "m.snnc", "DIR": model / "d", "X": model / "x.npy", "Y": model / "y.npz"}
    rc, _, err = cli(capsys, *[sub.get(a, a) for a in args])
    assert_clear(rc, err, *words)


@pytest.mark.parametrize("args", [["info", "MODEL"], ["run", "--help"], ["--help"]])
def test_broken_pipe_is_not_an_internal_error(model, args):
    """`snnc info model.snnc | head`: before, 'internal error ... BrokenPipeError'."""
    argv = " ".join(SNNC + [str(model / "m.snnc") if a == "MODEL" else a for a in args])
    p = subprocess.run(["bash", "-c", f"{argv} | true; echo $((PIPESTATUS[0])) >&2"], capture_output=True,
                       text=True, timeout=120)
    *lines, rc = p.stderr.strip().splitlines()
    assert not lines, p.stderr
    assert int(rc) in (0, 141)
