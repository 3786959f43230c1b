"""Malformed or unsupported .net files: one clear SnncError naming the layer (API and CLI)."""
import h5py
import numpy as np
import pytest

from snnc.cli import main
from snnc.errors import SnncError
from snnc.frontends.netx_import import import_netx

CUBA = {"type": b"CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80}


from lava_dl_files import write_net as _write  # noqa: E402


def _dense(n_in, n_out, **kw):
    d = dict(type="dense", shape=np.array([n_out]), inFeatures=n_in, outFeatures=n_out,
             weight=np.full((n_out, n_in), 2.0, np.float32), neuron=CUBA)
    d.update(kw)
    return d


GOOD = [dict(type="input", shape=np.array([1, 1, 8])), dict(type="flatten", shape=np.array([8, 1, 1])),
        _dense(8, 4)]


def test_good_file_imports(tmp_path):
    g = import_netx(_write(tmp_path / "ok.net", GOOD))
    assert g.shapes()["output"] == (4,)


def test_missing_layer_group(tmp_path):
    p = _write(tmp_path / "m.net", GOOD)
    with h5py.File(p, "a") as h:
        del h["layer/1"]
    with pytest.raises(SnncError, match=r"missing group layer/1"):
        import_netx(p)


def test_no_layer_group(tmp_path):
    p = str(tmp_path / "empty.net")
    with h5py.File(p, "w") as h:
        h.create_dataset("simulation/Ts", data=1)
    with pytest.raises(SnncError, match=r"no group 'layer'"):
        import_netx(p)


def test_missing_neuron_group(tmp_path):
    conv = dict(type="conv", shape=np.array([2, 3, 3]), weight=np.ones((2, 1, 3, 3, 1), np.float32) * 2,
                stride=np.array([1, 1]), padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1)
    p = _write(tmp_path / "n.net", [dict(type="input", shape=np.array([1, 5, 5])), conv])
    with pytest.raises(SnncError, match=r"layer 1 \(conv\): missing group 'neuron'"):
        import_netx(p)


def test_missing_dataset(tmp_path):
    bad = _dense(8, 4)
    del bad["weight"]
    with pytest.raises(SnncError, match=r"layer 2 \(dense\): missing dataset 'weight'"):
        import_netx(_write(tmp_path / "w.net", GOOD[:2] + [bad]))


def test_unknown_layer_type(tmp_path):
    with pytest.raises(SnncError, match=r"layer 2 \(banana\): unknown layer type 'banana'"):
        import_netx(_write(tmp_path / "u.net", GOOD[:2] + [dict(type="banana", shape=np.array([4]))]))


def test_unsupported_layer_type(tmp_path):
    with pytest.raises(SnncError, match=r"layer 2 \(concat\): concatenation layers are not supported"):
        import_netx(_write(tmp_path / "c.net", GOOD[:2] + [dict(type="concat", shape=np.array([4]))]))


def test_unsupported_neuron(tmp_path):
    bad = _dense(8, 4, neuron={"type": b"ALIF", "iDecay": 1, "vDecay": 1, "vThMant": 1})
    with pytest.raises(SnncError, match=r"layer 2 \(dense\): neuron type 'ALIF' is not supported"):
        import_netx(_write(tmp_path / "a.net", GOOD[:2] + [bad]))


def test_wrong_weight_shape(tmp_path):
    bad = _dense(8, 4, weight=np.ones((4, 7), np.float32), inFeatures=7)
    with pytest.raises(SnncError, match=r"layer 2 \(dense\): weight expects 7 inputs but the previous layer has 8"):
        import_netx(_write(tmp_path / "s.net", GOOD[:2] + [bad]))


def test_wrong_declared_shape(tmp_path):
    conv = dict(type="conv", shape=np.array([2, 4, 4]), weight=np.ones((2, 1, 3, 3), np.float32) * 2,
                stride=np.array([1, 1]), padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1,
                neuron=CUBA)
    p = _write(tmp_path / "d.net", [dict(type="input", shape=np.array([1, 5, 5])), conv])
    with pytest.raises(SnncError, match=r"layer 1 \(conv\): 'shape' \[2, 4, 4\] does not match the computed output \[2, 3, 3\]"):
        import_netx(p)


def test_dense_without_flatten(tmp_path):
    p = _write(tmp_path / "f.net", [GOOD[0], _dense(8, 4)])
    with pytest.raises(SnncError, match=r"layer 1 \(dense\): .*needs a 'flatten' layer"):
        import_netx(p)


def test_conv_first_needs_input_shape(tmp_path):
    conv = dict(type="conv", shape=np.array([2, 3, 3]), weight=np.ones((2, 1, 3, 3), np.float32) * 2,
                neuron=CUBA)
    p = _write(tmp_path / "i.net", [conv])
    with pytest.raises(SnncError, match=r"layer 0 \(conv\): the file has no input layer"):
        import_netx(p)
    assert import_netx(p, input_shape=(1, 5, 5)).shapes()["output"] == (2, 3, 3)


def test_not_hdf5(tmp_path):
    p = tmp_path / "x.net"
    p.write_text("not hdf5")
    with pytest.raises(SnncError, match="not an HDF5"):
        import_netx(str(p))


def test_cli_compile_reports_layer(tmp_path, capsys):
    p = _write(tmp_path / "u.net", GOOD[:2] + [dict(type="banana", shape=np.array([4]))])
    assert main(["compile", p, "-o", str(tmp_path / "u.snnc")]) == 2
    err = capsys.readouterr().err
    assert "layer 2 (banana)" in err and "Traceback" not in err


def test_cli_compile_and_export_net(tmp_path, capsys):
    p = _write(tmp_path / "ok.net", GOOD)
    assert main(["compile", p, "-o", str(tmp_path / "ok.snnc")]) == 0
    assert main(["export-net", str(tmp_path / "ok.snnc"), "-o", str(tmp_path / "back.net")]) == 0
    with h5py.File(tmp_path / "back.net") as h:
        assert [h[f"layer/{i}/type"][0].decode() for i in range(3)] == ["input", "flatten", "dense"]
        assert np.array_equal(h["layer/2/weight"][()], GOOD[2]["weight"])


def test_export_refuses_branches(tmp_path):
    from snnc.backends.netx_export import export_netx
    from snnc.compiler.ir import CubaLIF, Dense, Delay, Graph, Input, Output
    g = Graph()
    g.add("in", Input((4,)))
    g.add("d", Delay(np.array(1)), "in")
    for k in ("a", "b"):
        g.add(f"{k}.syn", Dense(np.ones((3, 4)) / 32), "d")
        g.add(k, CubaLIF((3,), 0.25, 0.25, 1.25), f"{k}.syn")
        g.add(f"{k}.out", Output((3,)), k)
    with pytest.raises(SnncError, match="chain"):
        export_netx(g, str(tmp_path / "br.net"))
