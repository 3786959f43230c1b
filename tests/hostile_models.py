"""Small hostile-test models written directly (ONNX in snnc's dialect, lava-dl .net HDF5), shared by
tests/test_hostile_*.py (the same writers as scripts/hostile_probe.py)."""

import numpy as np

from snnc.cli import main


def cli(capsys, *args):
    """``snnc ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clear(rc, err, *words):
    """Exit 2, one line ``snnc: error: ...`` naming every word, no traceback."""
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnc: error:"), err
    for w in words:
        assert w in err, (w, err)


# ----------------------------------------------------------------------------- model writers
def onnx_model(path, w=None, attrs=None, bias=None, n_in=4, n_out=3, extra=None, in_dims=None,
               external=None):
    """MatMul(W) -> snnc.CubaLIF, with the dialect's functions (so onnxruntime runs it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from snnc.frontends import onnx_ops as ops
    w = np.full((n_out, n_in), 0.5, np.float32) if w is None else np.asarray(w, np.float32)
    a = dict(current_decay=0.25, voltage_decay=0.03, threshold=1.25, state_scale=4096, reset="zero",
             refractory=0, spike_compare=">", graded=0)
    a.update(attrs or {})
    a = {k: v for k, v in a.items() if v is not None}
    inits = [numpy_helper.from_array(w, "W"),
             numpy_helper.from_array(np.zeros((), np.float32) if bias is None else np.asarray(bias, np.float32), "b")]
    ins = ["z", "b"]
    nodes = [helper.make_node("MatMul", ["W", "input"], ["z"], name="fc"),
             helper.make_node("CubaLIF", ins, ["output"], name="lif", domain="snnc", **a)]
    if extra:
        nodes = extra(nodes, inits)
    dims = in_dims or ["N", n_in, "T"]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("snnc", 1)],
                          functions=[ops.FUNCTIONS["CubaLIF"](), ops.FUNCTIONS["Delay"]()])
    m.ir_version = 10
    if external:
        onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=external,
                  size_threshold=0)
    else:
        onnx.save(m, path)
    return path


def conv_model(path, conv_attrs=None, w=None):
    """Conv (per step) -> CubaLIF on a 2x6x6 input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from snnc.frontends import onnx_ops as ops
    w = np.full((3, 2, 3, 3, 1), 0.25, np.float32) if w is None else w
    a = dict(strides=[1, 1, 1], pads=[0, 0, 0, 0, 0, 0], dilations=[1, 1, 1], group=1)
    a.update(conv_attrs or {})
    a = {k: v for k, v in a.items() if v is not None}
    nodes = [helper.make_node("Conv", ["input", "W"], ["z"], name="conv", **a),
             helper.make_node("CubaLIF", ["z"], ["output"], name="lif", domain="snnc", current_decay=0.25,
                              voltage_decay=0.03, threshold=1.25, state_scale=4096)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 2, 6, 6, "T"])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(w, np.float32), "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("snnc", 1)],
                          functions=[ops.FUNCTIONS["CubaLIF"]()])
    m.ir_version = 10
    onnx.save(m, path)
    return path


CUBA = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80}


def net_file(path, layers):
    import h5py
    with h5py.File(path, "w") as h:
        for i, L in enumerate(layers):
            g = h.create_group(f"layer/{i}")
            for k, v in L.items():
                if k == "type":
                    g.create_dataset("type", (1,), "S10", [v.encode()])
                elif k == "neuron":
                    for nk, nv in v.items():
                        if nk == "type":
                            g.create_dataset("neuron/type", (1,), "S10", [nv.encode()])
                        else:
                            g.create_dataset(f"neuron/{nk}", data=nv)
                else:
                    g.create_dataset(k, data=v)
    return path


def net_dense(n_in=8, n_out=4, neuron=None, **kw):
    d = dict(type="dense", shape=np.array([n_out]), inFeatures=n_in, outFeatures=n_out,
             weight=np.full((n_out, n_in), 40.0, np.float32), neuron=dict(CUBA, **(neuron or {})))
    d.update(kw)
    return d


def net_good(dense=None, **kw):
    return [dict(type="input", shape=np.array([1, 1, 8])), dict(type="flatten", shape=np.array([8, 1, 1])),
            dense or net_dense(**kw)]


def net_conv_first():
    return [dict(type="conv", shape=np.array([2, 4, 4]), inChannels=1, outChannels=2,
                 weight=np.full((2, 1, 3, 3), 40.0, np.float32), kernelSize=np.array([3, 3]),
                 stride=np.array([1, 1]), padding=np.array([0, 0]), dilation=np.array([1, 1]),
                 groups=1, neuron=dict(CUBA)),
            dict(type="flatten", shape=np.array([32, 1, 1])), net_dense(32, 3)]


def spikes(shape, seed=0, rate=0.4):
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)
