"""Hostile probe: try snnc as a new (or careless, or hostile) user would, and tally the outcomes.

Every case runs the real ``snnc`` command (or ``python -c`` on the API) in a subprocess with a
time limit, from its own folder and with its own TMPDIR, and ends in exactly one class:

- ``clear error``: exit code 2 and one line ``snnc: error: ...`` (no traceback);
- ``correct``: exit 0 and the case's own check of the result passed;
- ``silently wrong``: exit 0 but the result is wrong, or an invalid input was accepted, or a
  file that must not change changed, or user code from the current folder was executed;
- ``traceback``: a Python traceback, "internal error", or death by a signal (e.g. SIGFPE);
- ``hang``: the case did not end within its limit (or a run stalled until snnc's own timeout),
  or left processes or job files behind.

Classes (as in issue 11): params, artifacts, inputs, files, processes, cli.
Usage: ``python scripts/hostile_probe.py [--only CLASS,...] [--json out.json] [--no-lava] [--root CHECKOUT]``
(``--root``: run the cases on another snnc checkout, e.g. the commit before a change).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNNC_ROOT = os.environ.get("SNNC_PROBE_ROOT", ROOT)     # the snnc checkout the cases run (--root)
PY = sys.executable
BIN = os.path.join(os.path.dirname(PY), "snnc")
SNNC = [BIN] if os.path.exists(BIN) else [PY, "-m", "snnc.cli"]
OUTCOMES = ("clear error", "correct", "silently wrong", "traceback", "hang")


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


# ----------------------------------------------------------------------------- running a case
def _tagged_procs(tag):
    """PIDs of live processes whose environment holds ``SNNC_PROBE_TAG=tag``."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if f"SNNC_PROBE_TAG={tag}".encode() in f.read():
                    with open(f"/proc/{p}/stat") as s:
                        if s.read().split(")")[-1].split()[0] != "Z":
                            out.append(int(p))
        except OSError:
            pass
    return out


def _kill_tagged(tag):
    for pid in _tagged_procs(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Case:
    def __init__(self, cls, name, argv, expect="error", check=None, setup=None, timeout=90,
                 lava=False, action=None, protect=()):
        self.cls, self.name, self.argv, self.expect = cls, name, argv, expect
        self.check, self.setup, self.timeout, self.lava = check, setup, timeout, lava
        self.action, self.protect = action, protect


def classify(rc, out, err, case, d):
    text = out + err
    if rc is None:
        return "hang"
    last = (err.strip().splitlines() or [""])[-1]
    if case.argv[0] == PY and rc == 1 and last.startswith("snnc.errors.SnncError: "):
        return "clear error"      # the Python API raises SnncError: its message is the clear error
    if "Traceback (most recent call last)" in text or "internal error" in text or rc < 0 or rc not in (0, 2):
        return "traceback"
    if "timed out after" in err:
        return "hang"
    if rc == 2:       # snnc's one line, or argparse's usage line + "snnc ...: error: ..."
        lines = [x for x in err.strip().splitlines() if x.strip()]
        return "clear error" if lines and ": error: " in lines[-1] and lines[-1].startswith("snnc") else "traceback"
    if case.expect == "error":
        return "silently wrong"
    try:
        ok = case.check(d, out, err) if case.check else True
    except Exception as e:       # the check itself failed to read the result: wrong
        ok = False
        err += f"\n[check failed: {type(e).__name__}: {e}]"
    return "correct" if ok else "silently wrong"


def run_case(case, base):
    d = os.path.join(base, f"{case.cls}-{case.name}".replace("/", "_"))
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    tag = uuid.uuid4().hex
    env = dict(os.environ, TMPDIR=os.path.join(d, "tmp"), SNNC_PROBE_TAG=tag, PYTHONPATH=SNNC_ROOT)
    env.pop("SNNC_DEBUG", None)
    try:
        if case.setup:
            case.setup(d)
    except Exception as e:
        return dict(cls=case.cls, name=case.name, outcome="probe setup failed", detail=repr(e))
    before = {p: open(os.path.join(d, p), "rb").read() for p in case.protect if os.path.exists(os.path.join(d, p))}
    argv = [a.replace("{d}", d) for a in case.argv]
    start = time.time()
    try:
        if case.action:
            rc, out, err = case.action(argv, d, env, tag)
        else:
            p = subprocess.run(argv, cwd=d, env=env, capture_output=True, text=True, timeout=case.timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, (e.stdout or b"").decode("utf-8", "replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), ""
    seconds = time.time() - start
    outcome = classify(rc, out, err, case, d)
    changed = [p for p, b in before.items() if not os.path.exists(os.path.join(d, p))
               or open(os.path.join(d, p), "rb").read() != b]
    if changed:
        outcome = "silently wrong"
    left = _tagged_procs(tag)
    jobs = [f for f in os.listdir(os.path.join(d, "tmp")) if f.startswith("snnc-job-")]
    if left or jobs:
        outcome = "hang"
        _kill_tagged(tag)
    if os.path.exists(os.path.join(d, "EXECUTED")):
        outcome = "silently wrong"
    detail = (err.strip().splitlines() or [""])[-1][:200] if outcome != "correct" else ""
    if changed:
        detail = f"changed {changed}; " + detail
    if left or jobs:
        detail = f"left {len(left)} processes, {len(jobs)} job folders; " + detail
    return dict(cls=case.cls, name=case.name, outcome=outcome, rc=rc, seconds=round(seconds, 1),
                expect=case.expect, detail=detail)


# ----------------------------------------------------------------------------- checks
def _npz(d, name="y.npz"):
    return np.load(os.path.join(d, name))


def same_as(ref_name):
    """The run's output equals the output of the canonical run saved as ``ref_name``."""
    def check(d, out, err):
        y, r = _npz(d)["output"], np.load(os.path.join(d, ref_name))
        return y.reshape(-1).tolist() == r.reshape(-1).tolist() and y.sum() > 0
    return check


def parity_identical(d, out, err):
    rows = [ln for ln in out.splitlines() if " % " in ln]
    return bool(rows) and all(" yes " in ln for ln in rows)


def says(*words, stream="out"):
    def check(d, out, err):
        text = out if stream == "out" else err
        return all(w in text for w in words)
    return check


# ----------------------------------------------------------------------------- cases
def cases(lava=True):
    C = []
    run_ref = lambda model, x="x.npy", be="reference": SNNC + ["run", model, "--input", x, "-o", "y.npz",
                                                             "--backend", be, "--timeout", "60"]

    # ---- params: ONNX attributes / initializers that are not numbers or do not fit Loihi 2
    bad_attrs = {
        "threshold_nan": dict(threshold=float("nan")), "threshold_inf": dict(threshold=float("inf")),
        "threshold_neg": dict(threshold=-1.0), "threshold_zero": dict(threshold=0.0),
        "cdecay_nan": dict(current_decay=float("nan")), "cdecay_1.5": dict(current_decay=1.5),
        "cdecay_neg": dict(current_decay=-0.5), "vdecay_nan": dict(voltage_decay=float("nan")),
        "vdecay_1.5": dict(voltage_decay=1.5), "vdecay_neg": dict(voltage_decay=-0.5),
        "state_scale_neg": dict(state_scale=-4096), "state_scale_100": dict(state_scale=100),
        "refractory_neg": dict(refractory=-3), "reset_bogus": dict(reset="bogus"),
        "threshold_str": dict(threshold="high"), "cdecay_list": dict(current_decay=[0.1, 0.2]),
        "state_scale_float": dict(state_scale=4096.5), "refractory_str": dict(refractory="x"),
        "spike_compare_int": dict(spike_compare=3), "graded_1": dict(graded=1),
    }
    for k, a in bad_attrs.items():
        C.append(Case("params", "onnx-" + k, SNNC + ["compile", "m.onnx", "-o", "m.snnc"],
                      setup=lambda d, a=a: onnx_model(os.path.join(d, "m.onnx"), attrs=a)))
    bad_w = {"weight_nan": np.float32("nan"), "weight_inf": np.float32("inf"), "weight_-inf": -np.float32("inf")}
    for k, v in bad_w.items():
        def s(d, v=v):
            w = np.full((3, 4), 0.5, np.float32)
            w[1, 2] = v
            onnx_model(os.path.join(d, "m.onnx"), w=w)
        C.append(Case("params", "onnx-" + k, SNNC + ["compile", "m.onnx", "-o", "m.snnc"], setup=s))
    for k, b in {"bias_nan": [0, np.nan, 0], "bias_inf": [np.inf, 0, 0]}.items():
        C.append(Case("params", "onnx-" + k, SNNC + ["compile", "m.onnx", "-o", "m.snnc"],
                      setup=lambda d, b=b: onnx_model(os.path.join(d, "m.onnx"), bias=np.array(b, np.float32))))
    # lossy but legal: the report must say clipped (13-bit bias), and run must say so on stderr
    C.append(Case("params", "onnx-bias_-200_clipped", SNNC + ["compile", "m.onnx", "-o", "m.snnc"],
                  expect="ok", check=lambda d, o, e: "clipped" in o and "quantization exact" not in o,
                  setup=lambda d: onnx_model(os.path.join(d, "m.onnx"), bias=np.array([-200, 0, 0], np.float32))))

    def outlier(d):
        w = np.full((3, 4), 0.5, np.float32)
        w[0, 0] = 500.0
        onnx_model(os.path.join(d, "m.onnx"), w=w)
        np.save(os.path.join(d, "x.npy"), spikes((4, 30)))
    C.append(Case("params", "run-onnx-lossy-says-so", run_ref("m.onnx"), expect="ok", setup=outlier,
                  check=lambda d, o, e: "quantiz" in e and ("clip" in e or "round" in e)))
    C.append(Case("params", "parity-onnx-lossy-says-so", SNNC + ["parity", "m.onnx", "--input", "x.npy",
                  "--engines", "reference"], expect="ok", setup=outlier,
                  check=lambda d, o, e: "quantiz" in e and ("clip" in e or "round" in e)))
    C.append(Case("params", "deploy-onnx-lossy-says-so", SNNC + ["deploy", "m.onnx", "--dry-run"], expect="ok",
                  setup=outlier, check=lambda d, o, e: "quantiz" in e and ("clip" in e or "round" in e)))
    # Conv attributes
    bad_conv = {"stride_0": dict(strides=[0, 1, 1]), "stride_neg": dict(strides=[-1, 1, 1]),
                "pads_neg": dict(pads=[-1, -1, 0, -1, -1, 0]), "dilation_0": dict(dilations=[0, 1, 1]),
                "group_0": dict(group=0), "group_3": dict(group=3), "strides_float": dict(strides=[1.0, 1.0, 1.0]),
                "strides_short": dict(strides=[1]), "pads_str": dict(pads="same"), "auto_pad_same": dict(auto_pad="SAME_UPPER"),
                "kernel_too_big": dict(pads=None), "weight_nan": None}
    for k, a in bad_conv.items():
        def s(d, k=k, a=a):
            w = None
            if k == "kernel_too_big":
                w = np.full((3, 2, 7, 7, 1), 0.25, np.float32)
            if k == "weight_nan":
                w = np.full((3, 2, 3, 3, 1), np.nan, np.float32)
            conv_model(os.path.join(d, "m.onnx"), a, w)
        C.append(Case("params", "conv-" + k, SNNC + ["compile", "m.onnx", "-o", "m.snnc"], setup=s))
    # structural ONNX damage
    from onnx import helper

    def drop_input(nodes, inits):
        nodes[0] = helper.make_node("MatMul", ["W"], ["z"], name="fc")
        return nodes

    def lif_no_input(nodes, inits):
        nodes[1] = helper.make_node("CubaLIF", [], ["output"], name="lif", domain="snnc", current_decay=0.25,
                                    voltage_decay=0.03, threshold=1.25, state_scale=4096)
        return nodes

    def delay(steps):
        from onnx import numpy_helper

        def f(nodes, inits):
            inits.append(numpy_helper.from_array(np.asarray(steps, np.float32), "steps"))
            nodes[1] = helper.make_node("CubaLIF", ["z", "b"], ["s"], name="lif", domain="snnc", current_decay=0.25,
                                        voltage_decay=0.03, threshold=1.25, state_scale=4096)
            return nodes + [helper.make_node("Delay", ["s", "steps"], ["output"], name="dly", domain="snnc")]
        return f

    def reshape_bad(nodes, inits):
        return [helper.make_node("Reshape", ["input"], ["r"], name="rs")] + nodes

    def matmul_3d(nodes, inits):
        from onnx import numpy_helper
        inits[0] = numpy_helper.from_array(np.ones((2, 3, 4), np.float32), "W")
        return nodes
    struct = {"matmul_missing_input": drop_input, "lif_missing_input": lif_no_input,
              "delay_fractional": delay([1.5, 0.0, 2.0]), "delay_nan": delay([np.nan, 0, 0]),
              "delay_neg": delay([-1, 0, 0]), "delay_huge": delay([1e12, 0, 0]),
              "reshape_missing_shape": reshape_bad, "matmul_3d_weight": matmul_3d}
    for k, f in struct.items():
        C.append(Case("params", "onnx-" + k, SNNC + ["compile", "m.onnx", "-o", "m.snnc"],
                      setup=lambda d, f=f: onnx_model(os.path.join(d, "m.onnx"), extra=f)))
    C.append(Case("params", "onnx-input-dim-0", SNNC + ["compile", "m.onnx", "-o", "m.snnc"],
                  setup=lambda d: onnx_model(os.path.join(d, "m.onnx"), in_dims=["N", 0, "T"])))
    C.append(Case("params", "onnx-input-dim-neg", SNNC + ["compile", "m.onnx", "-o", "m.snnc"],
                  setup=lambda d: onnx_model(os.path.join(d, "m.onnx"), in_dims=["N", -4, "T"])))
    # .net fields
    bad_net = {
        "vth_nan": dict(neuron={"vThMant": np.nan}), "vth_neg": dict(neuron={"vThMant": -80}),
        "vth_zero": dict(neuron={"vThMant": 0}), "vth_huge": dict(neuron={"vThMant": 1 << 20}),
        "idecay_nan": dict(neuron={"iDecay": np.nan}), "idecay_5000": dict(neuron={"iDecay": 5000}),
        "vdecay_neg": dict(neuron={"vDecay": -1}), "idecay_frac": dict(neuron={"iDecay": 1024.5}),
        "weight_nan": dict(weight=np.full((4, 8), np.nan, np.float32)),
        "weight_inf": dict(weight=np.full((4, 8), np.inf, np.float32)),
        "delay_nan": dict(delay=np.array([np.nan, 0, 0, 0], np.float32)),
        "delay_frac": dict(delay=np.array([1.5, 0, 0, 0], np.float32)),
        "delay_neg": dict(delay=np.array([-2, 0, 0, 0], np.float32)),
        "bias_nan": dict(bias=np.array([np.nan, 0, 0, 0], np.float32)),
        "bias_inf": dict(bias=np.array([np.inf, 0, 0, 0], np.float32)),
        "weight_str": dict(weight=np.array([b"a"] * 32).reshape(4, 8)),
        "shape_neg": dict(shape=np.array([-4])), "infeatures_wrong": dict(inFeatures=9),
        "neuron_type_bogus": dict(neuron={"type": "ALIF"}),
    }
    for k, kw in bad_net.items():
        C.append(Case("params", "net-" + k, SNNC + ["compile", "m.net", "-o", "m.snnc"],
                      setup=lambda d, kw=kw: net_file(os.path.join(d, "m.net"), net_good(**kw))))

    def conv_net_bad(field, value):
        def s(d):
            layers = net_conv_first()
            layers.insert(0, dict(type="input", shape=np.array([6, 6, 1])))
            layers[1][field] = value
            net_file(os.path.join(d, "m.net"), layers)
        return s
    for k, (f, v) in {"stride_0": ("stride", np.array([0, 0])), "padding_neg": ("padding", np.array([-1, -1])),
                      "dilation_0": ("dilation", np.array([0, 0])), "groups_0": ("groups", 0),
                      "kernel_nan": ("weight", np.full((2, 1, 3, 3), np.nan, np.float32))}.items():
        C.append(Case("params", "net-conv-" + k, SNNC + ["compile", "m.net", "-o", "m.snnc"], setup=conv_net_bad(f, v)))

    # ---- artifacts: a good .snnc, edited
    def good_artifact(d, name="m.snnc"):
        onnx_model(os.path.join(d, "m.onnx"))
        subprocess.run(SNNC + ["compile", "m.onnx", "-o", name], cwd=d, check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=SNNC_ROOT))
        np.save(os.path.join(d, "x.npy"), spikes((4, 40)))

    def edit(fn):
        def s(d):
            good_artifact(d)
            p = os.path.join(d, "m.snnc")
            with zipfile.ZipFile(p) as z:
                doc = json.loads(z.read("graph.json"))
                arrays = dict(np.load(io.BytesIO(z.read("arrays.npz"))))
            fn(doc, arrays)
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            with zipfile.ZipFile(p, "w") as z:
                z.writestr("graph.json", json.dumps(doc))
                z.writestr("arrays.npz", buf.getvalue())
        return s

    def fixed(doc, name):
        return next(f["params"] for f in doc["fixed"] if f["name"] == name)

    def node(doc, name):
        return next(n["params"] for n in doc["nodes"] if n["name"] == name)

    def setk(getter, name, key, value):
        def f(doc, arrays):
            getter(doc, name)[key] = value
        return f

    def set_array(key, fn):
        def f(doc, arrays):
            arrays[key] = fn(arrays[key])
        return f
    edits = {
        "vth_-5": setk(fixed, "lif", "vth", -5), "decay_u_99999": setk(fixed, "lif", "decay_u", 99999),
        "decay_v_-1": setk(fixed, "lif", "decay_v", -1), "vth_huge": setk(fixed, "lif", "vth", 1 << 30),
        "bias_mant_huge": setk(fixed, "lif", "bias_mant", 100000), "bias_exp_40": setk(fixed, "lif", "bias_exp", 40),
        "refractory_-2": setk(fixed, "lif", "refractory", -2), "weight_exp_50": setk(fixed, "fc", "weight_exp", 50),
        "vth_str": setk(fixed, "lif", "vth", "abc"), "vth_float": setk(fixed, "lif", "vth", 12.5),
        "fixed_weight_1000": set_array("fixed.fc.weight", lambda a: a * 0 + 1000),
        "fixed_weight_shape": set_array("fixed.fc.weight", lambda a: a[:, :2]),
        "float_weight_nan": set_array("node.fc.weight", lambda a: a * np.nan),
        "float_threshold_differs": setk(node, "lif", "threshold", 2.5),
        "float_decay_differs": setk(node, "lif", "current_decay", 0.75),
        "float_weight_differs": set_array("node.fc.weight", lambda a: a * 2),
        "node_threshold_nan": setk(node, "lif", "threshold", float("nan")),
        "node_threshold_neg": setk(node, "lif", "threshold", -1.0),
        "node_decay_2": setk(node, "lif", "voltage_decay", 2.0),
        "node_unknown_type": lambda doc, a: doc["nodes"][1].__setitem__("type", "Bogus"),
        "edge_unknown_node": lambda doc, a: doc["edges"].append(["fc", "nowhere"]),
        "fixed_unknown_node": lambda doc, a: doc["fixed"].append({"name": "ghost", "type": "FixedCubaLIF",
                                                                    "params": {"decay_u": 0, "decay_v": 0, "vth": 1}}),
        "fixed_missing": lambda doc, a: doc.__setitem__("fixed", [f for f in doc["fixed"] if f["name"] != "lif"]),
        "nodes_not_list": lambda doc, a: doc.__setitem__("nodes", 5),
        "params_unknown_field": setk(node, "lif", "colour", "red"),
        "missing_array": lambda doc, a: a.pop("node.fc.weight"),
        "input_shape_neg": setk(node, "input", "shape", [-4]),
        "unknown_fixed_type": lambda doc, a: doc["fixed"][0].__setitem__("type", "Bogus"),
    }
    for k, fn in edits.items():
        C.append(Case("artifacts", "ref-" + k, run_ref("m.snnc"), setup=edit(fn)))
    for k in ("vth_-5", "decay_u_99999", "float_threshold_differs", "bias_mant_huge"):
        C.append(Case("artifacts", "ref-float-" + k, run_ref("m.snnc", be="reference-float"), setup=edit(edits[k])))
    if lava:
        for k in ("vth_-5", "decay_u_99999"):
            C.append(Case("artifacts", "lava-fused-fixed-" + k, run_ref("m.snnc", be="lava-fused-fixed"),
                          setup=edit(edits[k]), lava=True))
    C.append(Case("artifacts", "info-vth_-5", SNNC + ["info", "m.snnc"], setup=edit(edits["vth_-5"])))
    C.append(Case("artifacts", "deploy-decay_u_99999", SNNC + ["deploy", "m.snnc", "--dry-run"],
                  setup=edit(edits["decay_u_99999"])))
    C.append(Case("artifacts", "export-net-vth_-5", SNNC + ["export-net", "m.snnc", "-o", "o.net"],
                  setup=edit(edits["vth_-5"])))
    C.append(Case("artifacts", "unedited-runs", run_ref("m.snnc"), expect="ok", setup=good_artifact,
                  check=lambda d, o, e: _npz(d)["output"].shape == (3, 40)))

    # ---- inputs
    def model_and(x, name="x.npy"):
        def s(d):
            onnx_model(os.path.join(d, "m.onnx"))
            np.save(os.path.join(d, name), x)
        return s
    base = spikes((4, 30))
    bad_inputs = {
        "nan": np.where(base > 0, np.nan, 0).astype(np.float32), "inf": np.where(base > 0, np.inf, 0).astype(np.float32),
        "half": base * 0.5, "two": base * 2, "minus_one": -base, "T0": np.zeros((4, 0), np.float32),
        "N0": np.zeros((0, 4, 30), np.float32), "complex": base.astype(np.complex64), "string": np.array(["a"] * 4),
        "scalar": np.float32(1.0), "1d": np.ones(4, np.float32), "wrong_C": spikes((5, 30)),
        "batch_wrong_C": spikes((2, 5, 30)), "float_noise": base + 1e-7,
    }
    engines = ["reference", "reference-float"]
    for k, x in bad_inputs.items():
        for be in engines:
            C.append(Case("inputs", f"{be}-{k}", run_ref("m.onnx", be=be), setup=model_and(x)))
        C.append(Case("inputs", f"parity-{k}", SNNC + ["parity", "m.onnx", "--input", "x.npy", "--engines",
                                                        "reference,reference-float"], setup=model_and(x)))
    if lava:
        for be, k in (("lava-float", "half"), ("lava-fused-float", "half"), ("lava-fused-fixed", "T0"),
                      ("lava-fused-float", "nan"), ("lava-fixed", "two")):
            C.append(Case("inputs", f"{be}-{k}", run_ref("m.onnx", be=be), setup=model_and(bad_inputs[k]), lava=True))
    # accepted inputs: must give the canonical result
    def canon(x, xc):
        def s(d):
            model_and(x)(d)
            np.save(os.path.join(d, "xc.npy"), xc)
            subprocess.run(SNNC + ["run", "m.onnx", "--input", "xc.npy", "-o", "yc.npz", "--backend", "reference"],
                           cwd=d, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=SNNC_ROOT))
            np.save(os.path.join(d, "ref.npy"), np.load(os.path.join(d, "yc.npz"))["output"])
        return s
    good_inputs = {"bool": (base.astype(bool), base), "int8": (base.astype(np.int8), base),
                   "float64": (base.astype(np.float64), base), "fortran": (np.asfortranarray(base), base),
                   "batch1": (base[None], base[None]), "extra_size1_axis": (base[:, None, :], base)}
    for k, (x, xc) in good_inputs.items():
        C.append(Case("inputs", "ok-" + k, run_ref("m.onnx"), expect="ok", setup=canon(x, xc), check=same_as("ref.npy")))

    def ntidigits(d):
        net_file(os.path.join(d, "m.net"), [dict(type="input", shape=np.array([1, 1, 64])),
                                           dict(type="flatten", shape=np.array([64, 1, 1])), net_dense(64, 5)])
        x = spikes((64, 30))
        np.save(os.path.join(d, "x.npy"), x)
        np.save(os.path.join(d, "xc.npy"), x.reshape(1, 1, 64, 30))
        subprocess.run(SNNC + ["run", "m.net", "--input", "xc.npy", "-o", "yc.npz", "--backend", "reference"],
                       cwd=d, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=SNNC_ROOT))
        np.save(os.path.join(d, "ref.npy"), np.load(os.path.join(d, "yc.npz"))["output"])
    C.append(Case("inputs", "ok-ntidigits-64xT", run_ref("m.net"), expect="ok", setup=ntidigits, check=same_as("ref.npy")))
    C.append(Case("inputs", "parity-ok", SNNC + ["parity", "m.onnx", "--input", "x.npy", "--engines", "reference"],
                  expect="ok", setup=model_and(base), check=parity_identical))
    C.append(Case("inputs", "npz-two-keys", run_ref("m.onnx", x="x.npz"),
                  setup=lambda d: (onnx_model(os.path.join(d, "m.onnx")),
                                   np.savez(os.path.join(d, "x.npz"), a=base, b=base))))
    C.append(Case("inputs", "pickled-object", run_ref("m.onnx"),
                  setup=model_and(np.array([{"a": 1}] * 4, dtype=object))))

    # ---- files
    def linked(kind, target, link):
        def s(d):
            good_artifact(d)
            t, L = os.path.join(d, target), os.path.join(d, link)
            (os.symlink if kind == "sym" else os.link)(t, L)
        return s
    for kind in ("sym", "hard"):
        C.append(Case("files", f"run-o-{kind}link-to-input", run_ref("m.snnc") [:-6] + ["-o", "y.npy", "--backend", "reference"],
                      setup=linked(kind, "x.npy", "y.npy"), protect=("x.npy",)))
        C.append(Case("files", f"run-o-{kind}link-to-model", SNNC + ["run", "m.snnc", "--input", "x.npy", "-o", "y.npz",
                                                                     "--backend", "reference"],
                      setup=linked(kind, "m.snnc", "y.npz"), protect=("m.snnc",)))
        C.append(Case("files", f"compile-o-{kind}link-to-onnx", SNNC + ["compile", "m.onnx", "-o", "o.snnc"],
                      setup=linked(kind, "m.onnx", "o.snnc"), protect=("m.onnx",)))
        C.append(Case("files", f"export-net-o-{kind}link-to-model", SNNC + ["export-net", "m.snnc", "-o", "o.net"],
                      setup=linked(kind, "m.snnc", "o.net"), protect=("m.snnc",)))
        C.append(Case("files", f"deploy-map-{kind}link-to-model", SNNC + ["deploy", "m.snnc", "--dry-run", "--map", "o.json"],
                      setup=linked(kind, "m.snnc", "o.json"), protect=("m.snnc",)))
    C.append(Case("files", "run-o-dotdot-same-input", SNNC + ["run", "m.snnc", "--input", "x.npy", "-o", "tmp/../x.npy",
                                                              "--backend", "reference"], setup=good_artifact, protect=("x.npy",)))

    def readonly(d):
        good_artifact(d)
        os.makedirs(os.path.join(d, "ro"))
        os.chmod(os.path.join(d, "ro"), 0o500)
    root = os.geteuid() == 0          # root may write into a read-only folder: then it must work
    C.append(Case("files", "run-o-readonly-folder", SNNC + ["run", "m.snnc", "--input", "x.npy", "-o", "ro/y.npz",
                                                            "--backend", "reference"], setup=readonly,
                  expect="ok" if root else "error", check=lambda d, o, e: os.path.exists(os.path.join(d, "ro/y.npz"))))
    C.append(Case("files", "compile-o-readonly-folder", SNNC + ["compile", "m.onnx", "-o", "ro/m.snnc"], setup=readonly,
                  expect="ok" if root else "error", check=lambda d, o, e: os.path.exists(os.path.join(d, "ro/m.snnc"))))
    C.append(Case("files", "run-o-is-a-folder", SNNC + ["run", "m.snnc", "--input", "x.npy", "-o", "tmp",
                                                        "--backend", "reference"], setup=good_artifact))
    C.append(Case("files", "bundle-is-a-file", SNNC + ["deploy", "m.snnc", "--bundle", "x.npy"], setup=good_artifact,
                  protect=("x.npy",)))
    C.append(Case("files", "input-is-a-folder", SNNC + ["run", "m.snnc", "--input", "tmp", "-o", "y.npz",
                                                        "--backend", "reference"], setup=good_artifact))
    C.append(Case("files", "model-is-a-folder", SNNC + ["compile", "tmp", "-o", "y.snnc"], setup=good_artifact))
    C.append(Case("files", "model-onnx-is-a-folder", SNNC + ["info", "f.onnx"], setup=lambda d: os.makedirs(os.path.join(d, "f.onnx"))))

    def corrupt(name, data):
        def s(d):
            good_artifact(d)
            with open(os.path.join(d, name), "wb") as f:
                f.write(data(open(os.path.join(d, "m.snnc"), "rb").read()))
        return s
    C.append(Case("files", "snnc-truncated", SNNC + ["info", "c.snnc"], setup=corrupt("c.snnc", lambda b: b[: len(b) // 2])))
    C.append(Case("files", "snnc-empty", SNNC + ["info", "c.snnc"], setup=corrupt("c.snnc", lambda b: b"")))

    def zip_with(members):
        def s(d):
            with zipfile.ZipFile(os.path.join(d, "c.snnc"), "w") as z:
                for k, v in members.items():
                    z.writestr(k, v)
        return s
    C.append(Case("files", "snnc-zip-garbage-json", SNNC + ["info", "c.snnc"], setup=zip_with({"graph.json": "[1,2", "arrays.npz": b"x"})))
    C.append(Case("files", "snnc-zip-bad-npz", SNNC + ["info", "c.snnc"], setup=zip_with({"graph.json": json.dumps(
        {"format": "snnc", "version": 1, "nodes": [], "edges": [], "inputs": [], "outputs": [], "fixed": []}), "arrays.npz": b"garbage"})))
    C.append(Case("files", "snnc-zip-empty-graph", SNNC + ["info", "c.snnc"], setup=lambda d: (
        zip_with({"graph.json": json.dumps({"format": "snnc", "version": 1, "nodes": [], "edges": [], "inputs": [],
                                            "outputs": [], "fixed": []}), "arrays.npz": _empty_npz()})(d))))
    C.append(Case("files", "snnc-json-is-list", SNNC + ["info", "c.snnc"], setup=zip_with({"graph.json": "[]", "arrays.npz": _empty_npz()})))

    def net_truncated(d):
        net_file(os.path.join(d, "g.net"), net_good())
        b = open(os.path.join(d, "g.net"), "rb").read()
        open(os.path.join(d, "m.net"), "wb").write(b[: len(b) // 2])
    C.append(Case("files", "net-truncated", SNNC + ["compile", "m.net", "-o", "m.snnc"], setup=net_truncated))
    C.append(Case("files", "net-not-hdf5", SNNC + ["compile", "m.net", "-o", "m.snnc"],
                  setup=lambda d: open(os.path.join(d, "m.net"), "w").write("hello")))
    C.append(Case("files", "onnx-truncated", SNNC + ["compile", "c.onnx", "-o", "m.snnc"], setup=lambda d: (
        onnx_model(os.path.join(d, "m.onnx")),
        open(os.path.join(d, "c.onnx"), "wb").write(open(os.path.join(d, "m.onnx"), "rb").read()[:100]))))
    C.append(Case("files", "npy-truncated", SNNC + ["run", "m.snnc", "--input", "t.npy", "-o", "y.npz", "--backend", "reference"],
                  setup=lambda d: (good_artifact(d), open(os.path.join(d, "t.npy"), "wb").write(
                      open(os.path.join(d, "x.npy"), "rb").read()[:90]))))

    def ext_data(stray):
        def s(d):
            os.makedirs(os.path.join(d, "model"))
            onnx_model(os.path.join(d, "model", "m.onnx"), external="w.bin")
            onnx_model(os.path.join(d, "inline.onnx"))
            if stray:
                onnx_model(os.path.join(d, "stray.onnx"), w=np.zeros((3, 4), np.float32), external="w.bin")
            else:
                os.remove(os.path.join(d, "model", "w.bin"))
            np.save(os.path.join(d, "x.npy"), spikes((4, 30)))
            subprocess.run(SNNC + ["run", "inline.onnx", "--input", "x.npy", "-o", "yc.npz", "--backend", "reference"],
                           cwd=d, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=SNNC_ROOT))
            np.save(os.path.join(d, "ref.npy"), np.load(os.path.join(d, "yc.npz"))["output"])
        return s
    C.append(Case("files", "onnx-external-data-from-model-folder", run_ref("model/m.onnx"), expect="ok",
                  setup=ext_data(True), check=same_as("ref.npy")))
    C.append(Case("files", "onnx-external-data-missing", run_ref("model/m.onnx"), setup=ext_data(False)))

    def pipe(argv, d, env, tag):
        p = subprocess.run(["bash", "-c", " ".join(f"'{a}'" for a in argv) + " | true; echo ${PIPESTATUS[0]} >&2"],
                           cwd=d, env=env, capture_output=True, text=True, timeout=60)
        rc = int(p.stderr.strip().splitlines()[-1])
        err = "\n".join(p.stderr.strip().splitlines()[:-1])
        return (0 if rc in (0, 141) and not err else rc or 1), "", err
    C.append(Case("files", "info-broken-pipe", SNNC + ["info", "m.snnc"], expect="ok", setup=good_artifact, action=pipe))
    C.append(Case("files", "help-broken-pipe", SNNC + ["run", "--help"], expect="ok", action=pipe))
    C.append(Case("files", "x-npy-is-a-zip-artifact", run_ref("m.snnc", x="m.snnc"), setup=good_artifact))

    # ---- flags and CLI for lava-dl users
    for k, v in (("neg", "-5"), ("nan", "nan"), ("zero", "0"), ("inf", "inf")):
        C.append(Case("cli", f"timeout-{k}", run_ref("m.snnc", be="lava-fused-fixed")[:-2] + ["--timeout", v],
                      setup=good_artifact, lava=(k == "inf")))
    C.append(Case("cli", "version", SNNC + ["--version"], expect="ok", check=lambda d, o, e: "0." in o + e))
    C.append(Case("cli", "compile-net-input-shape", SNNC + ["compile", "m.net", "--input-shape", "1,6,6", "-o", "m.snnc"],
                  expect="ok", setup=lambda d: net_file(os.path.join(d, "m.net"), net_conv_first()),
                  check=lambda d, o, e: os.path.exists(os.path.join(d, "m.snnc"))))
    C.append(Case("cli", "compile-net-num-layers", SNNC + ["compile", "m.net", "--num-layers", "1", "-o", "m.snnc",
                                                         "--input-shape", "1,6,6"],
                  expect="ok", setup=lambda d: net_file(os.path.join(d, "m.net"), net_conv_first()),
                  check=lambda d, o, e: "2 nodes" not in o and os.path.exists(os.path.join(d, "m.snnc"))))
    C.append(Case("cli", "compile-net-reset-interval", SNNC + ["compile", "m.net", "--reset-interval", "5", "-o", "m.snnc"],
                  expect="ok", setup=lambda d: net_file(os.path.join(d, "m.net"), net_good())))
    for k, args in {"input-shape-garbage": ["--input-shape", "a,b"], "input-shape-neg": ["--input-shape", "1,-6,6"],
                    "num-layers-0": ["--num-layers", "0"], "num-layers-neg": ["--num-layers", "-2"],
                    "reset-interval-neg": ["--reset-interval", "-3"]}.items():
        C.append(Case("cli", "compile-net-" + k, SNNC + ["compile", "m.net", "-o", "m.snnc"] + args,
                      setup=lambda d: net_file(os.path.join(d, "m.net"), net_conv_first())))
    C.append(Case("cli", "compile-onnx-input-shape", SNNC + ["compile", "m.onnx", "--input-shape", "1,6,6"],
                  setup=lambda d: onnx_model(os.path.join(d, "m.onnx"))))
    C.append(Case("cli", "api-compile-net-options", [PY, "-c", "import snnc; g = snnc.compile('m.net', 'm.snnc', "
                                                     "input_shape=(1, 6, 6)); print(len(g.nodes))"],
                  expect="ok", setup=lambda d: net_file(os.path.join(d, "m.net"), net_conv_first())))
    C.append(Case("cli", "deploy-chips-0", SNNC + ["deploy", "m.snnc", "--dry-run", "--chips", "0"], setup=good_artifact))
    C.append(Case("cli", "deploy-chips-neg", SNNC + ["deploy", "m.snnc", "--dry-run", "--chips", "-1"], setup=good_artifact))
    C.append(Case("cli", "parity-engines-bogus", SNNC + ["parity", "m.onnx", "--input", "x.npy", "--engines", "nope"],
                  setup=model_and(base)))
    C.append(Case("cli", "parity-engines-empty", SNNC + ["parity", "m.onnx", "--input", "x.npy", "--engines", ","],
                  setup=model_and(base)))
    C.append(Case("cli", "run-unknown-suffix", SNNC + ["run", "m.txt", "--input", "x.npy", "-o", "y.npz"],
                  setup=lambda d: open(os.path.join(d, "m.txt"), "w").write("x")))

    # ---- processes (Lava)
    if lava:
        def planted(d):
            good_artifact(d)
            for mod in ("pickle.py", "numpy.py", "lava.py"):
                with open(os.path.join(d, mod), "w") as f:
                    f.write("open(__import__('os').path.join(__import__('os').getcwd(), 'EXECUTED'), 'w')\n")
        C.append(Case("processes", "cwd-pickle-py-not-executed", run_ref("m.snnc", be="lava-fused-fixed"),
                      expect="ok", setup=planted, lava=True))
        for sig in ("SIGTERM", "SIGHUP", "SIGINT"):
            C.append(Case("processes", f"{sig}-cleans-up", long_run("lava-fixed"), expect="ok", setup=long_setup,
                          action=send_signal(getattr(signal, sig)), lava=True))
        C.append(Case("processes", "dead-lava-process-noticed", long_run("lava-fixed"), setup=long_setup,
                      action=kill_one_lava, lava=True))
    return C


def _empty_npz():
    buf = io.BytesIO()
    np.savez(buf)
    return buf.getvalue()


def long_setup(d):
    onnx_model(os.path.join(d, "m.onnx"), n_in=16, n_out=16, w=np.full((16, 16), 0.3, np.float32))
    np.save(os.path.join(d, "x.npy"), spikes((16, 200000)))


def long_run(backend):
    return SNNC + ["run", "m.onnx", "--input", "x.npy", "-o", "y.npz", "--backend", backend, "--timeout", "120"]


def _wait_lava(tag, n=4, limit=60):
    t0 = time.time()
    while time.time() - t0 < limit:
        if len(_tagged_procs(tag)) >= n:
            time.sleep(2)
            return True
        time.sleep(0.5)
    return False


def _default_sigint():
    """In the child: SIGINT as a terminal would deliver it (a background job inherits SIG_IGN)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def send_signal(sig):
    def action(argv, d, env, tag):
        p = subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_default_sigint)
        if not _wait_lava(tag):
            p.kill()
            return None, "", "Lava never started"
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            return None, "", "did not end within 20 s of the signal"
        time.sleep(3)          # let a group kill land
        return 0, out, err     # the leftover check decides: nothing left = correct
    return action


def kill_one_lava(argv, d, env, tag):
    p = subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not _wait_lava(tag, n=5):
        p.kill()
        return None, "", "Lava never started"
    procs = _tagged_procs(tag)
    parent = {}
    for q in procs:
        try:
            parent[q] = int(open(f"/proc/{q}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            pass
    workers = [q for q in procs if parent.get(q) == p.pid]
    lava = sorted(q for q in procs if workers and parent.get(q) in workers)
    if not lava:
        p.kill()
        return None, "", "no Lava process found"
    os.kill(lava[-1], signal.SIGKILL)             # the youngest child of the worker: a Lava process
    t0 = time.time()
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        return None, "", "run did not notice the dead Lava process within 30 s"
    if time.time() - t0 > 20:
        return None, out, err
    return p.returncode, out, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated classes")
    ap.add_argument("--json", help="write every case's outcome here")
    ap.add_argument("--no-lava", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--root", help="run the cases on the snnc checkout in this folder (default: this one)")
    a = ap.parse_args()
    if a.root:
        global SNNC_ROOT
        SNNC_ROOT = os.path.abspath(a.root)
    sys.path.insert(0, ROOT)
    todo = cases(lava=not a.no_lava)
    if a.only:
        todo = [c for c in todo if c.cls in a.only.split(",")]
    base = tempfile.mkdtemp(prefix="snnc-hostile-")
    fast = [c for c in todo if not c.lava and not c.action]
    slow = [c for c in todo if c.lava or c.action]
    with ThreadPoolExecutor(a.jobs) as ex:
        results = list(ex.map(lambda c: run_case(c, base), fast))
    results += [run_case(c, base) for c in slow]
    for r in results:
        if r["outcome"] not in ("clear error", "correct") or (r.get("expect") == "ok" and r["outcome"] != "correct"):
            print(f"{r['outcome']:15s} {r['cls']:10s} {r['name']:42s} {r.get('detail', '')}")
    print()
    classes = sorted({r["cls"] for r in results})
    print(f"{'class':12s}" + "".join(f"{o:>16s}" for o in OUTCOMES) + f"{'cases':>8s}")
    for cl in classes + ["all"]:
        rs = [r for r in results if cl in ("all", r["cls"])]
        print(f"{cl:12s}" + "".join(f"{sum(r['outcome'] == o for r in rs):16d}" for o in OUTCOMES) + f"{len(rs):8d}")
    refused = [r for r in results if r.get("expect") == "ok" and r["outcome"] == "clear error"]
    print(f"\n{len(refused)} valid cases refused with a clear error: {[r['name'] for r in refused]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    for root, dirs, files in os.walk(base):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o700)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
