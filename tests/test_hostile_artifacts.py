"""Edited or damaged .snnc artifacts: refused at load, on every engine, naming the node (issue 11)."""
import io
import json
import zipfile

import numpy as np
import pytest

from hostile_models import assert_clear, cli, onnx_model, spikes
from snnc import api
from snnc.compiler import artifact
from snnc.errors import SnncError


@pytest.fixture
def model(tmp_path):
    m = onnx_model(str(tmp_path / "m.onnx"))
    api.compile(m, str(tmp_path / "m.snnc"))
    np.save(tmp_path / "x.npy", spikes((4, 40)))
    return tmp_path


def edit(path, fn):
    with zipfile.ZipFile(path) as z:
        doc = json.loads(z.read("graph.json"))
        arrays = dict(np.load(io.BytesIO(z.read("arrays.npz"))))
    fn(doc, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", buf.getvalue())


def _params(doc, section, name):
    return next(e["params"] for e in doc[section] if e["name"] == name)


def setter(section, name, key, value):
    def fn(doc, arrays):
        _params(doc, section, name)[key] = value
    return fn


EDITS = {
    "vth -5": (setter("fixed", "lif", "vth", -5), ["'lif'", "vth", ">= 0"]),
    "decay_u 99999": (setter("fixed", "lif", "decay_u", 99999), ["'lif'", "decay_u", "<= 4096"]),
    "bias_mant 100000": (setter("fixed", "lif", "bias_mant", 100000), ["bias_mant", "<= 4095"]),
    "weight_exp 50": (setter("fixed", "fc", "weight_exp", 50), ["'fc'", "weight_exp"]),
    "vth 'abc'": (setter("fixed", "lif", "vth", "abc"), ["vth", "number"]),
    "float threshold 2.5": (setter("nodes", "lif", "threshold", 2.5), ["'lif'", "vth", "do(es) not match"]),
    "float decay 0.75": (setter("nodes", "lif", "current_decay", 0.75), ["decay_u", "not match"]),
    "float threshold NaN": (setter("nodes", "lif", "threshold", float("nan")), ["threshold", "finite"]),
    "fixed weights 1000": (lambda d, a: a.__setitem__("fixed.fc.weight", a["fixed.fc.weight"] * 0 + 1000),
                           ["'fc'", "weight mantissa", "<= 255"]),
    "float weights doubled": (lambda d, a: a.__setitem__("node.fc.weight", a["node.fc.weight"] * 2),
                              ["'fc'", "weight", "not match"]),
    "unknown node type": (lambda d, a: d["nodes"][1].__setitem__("type", "Bogus"), ["unknown type 'Bogus'"]),
    "edge to nowhere": (lambda d, a: d["edges"].append(["fc", "nowhere"]), ["'edges'"]),
    "no fixed view for lif": (lambda d, a: d.__setitem__("fixed", [f for f in d["fixed"] if f["name"] != "lif"]),
                              ["'lif'", "no fixed-point view"]),
    "missing array": (lambda d, a: a.pop("node.fc.weight"), ["node.fc.weight", "missing"]),
    "nodes is 5": (lambda d, a: d.__setitem__("nodes", 5), ["'nodes'"]),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_edited_artifact_is_refused_at_load(model, what):
    fn, words = EDITS[what]
    edit(model / "m.snnc", fn)
    with pytest.raises(SnncError) as e:
        artifact.load(str(model / "m.snnc"))
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert "m.snnc" in str(e.value)


@pytest.mark.parametrize("backend", ["reference", "reference-float", "lava-fused-fixed"])
@pytest.mark.parametrize("what", ["vth -5", "decay_u 99999", "float threshold 2.5"])
def test_edited_artifact_runs_on_no_engine(model, capsys, backend, what):
    """Before: reference and lava-fused-fixed ran vth = -5 and decay_u = 99999 (only lava-fixed refused)."""
    edit(model / "m.snnc", EDITS[what][0])
    rc, _, err = cli(capsys, "run", model / "m.snnc", "--input", model / "x.npy", "-o", model / "y.npz",
                     "--backend", backend, "--timeout", "60")
    assert_clear(rc, err, "m.snnc", *EDITS[what][1])
    assert not (model / "y.npz").exists()


def test_edited_artifact_refused_by_info_deploy_and_export(model, capsys):
    edit(model / "m.snnc", EDITS["vth -5"][0])
    for args in (["info", model / "m.snnc"], ["deploy", model / "m.snnc", "--dry-run"],
                 ["export-net", model / "m.snnc", "-o", model / "o.net"]):
        rc, _, err = cli(capsys, *args)
        assert_clear(rc, err, "'lif'", "vth")


def test_unedited_artifact_loads_and_equals_the_compiled_graph(model):
    g = artifact.load(str(model / "m.snnc"))
    want = api.compile(str(model / "m.onnx"))
    assert set(g.fixed) == set(want.fixed)
    assert np.array_equal(g.fixed["fc"].weight, want.fixed["fc"].weight)
    assert g.fixed["lif"].vth == want.fixed["lif"].vth


@pytest.mark.parametrize("members", [{"graph.json": "[1,2", "arrays.npz": b"x"}, {"graph.json": "[]", "arrays.npz": b""},
                                     {"other.txt": "hello"}])
def test_damaged_zip_is_one_clear_line(tmp_path, capsys, members):
    with zipfile.ZipFile(tmp_path / "c.snnc", "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    rc, _, err = cli(capsys, "info", tmp_path / "c.snnc")
    assert_clear(rc, err, "c.snnc")


def test_truncated_artifact(model, capsys):
    data = (model / "m.snnc").read_bytes()
    (model / "t.snnc").write_bytes(data[: len(data) // 2])
    rc, _, err = cli(capsys, "info", model / "t.snnc")
    assert_clear(rc, err, "t.snnc", "not a compiled snnc artifact")
