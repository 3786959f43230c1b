"""Fuzz suite (hypothesis, derandomized): mutated ONNX attributes and initializers, .net fields,
artifacts, input arrays and flags. Every case ends in a clear error (exit 2, one line) or in
identical output on every engine that accepts it; never a traceback, a hang, or a process left
behind. Prints the number of cases tried (issue 11)."""
import contextlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_models import net_dense, net_file, onnx_model
from snnc import api
from snnc.backends.reference import run_reference
from snnc.backends.reference_spec import run_reference_spec
from snnc.cli import main
from snnc.errors import SnncError
from snnc.backends.onnx_runtime import run_onnxruntime

TRIED = {}
ACCEPTED = {}
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck))
HOSTILE = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 0.5, 1.0, 1.5, 4096.0, 1e30, -1e30, 3, -7, 1 << 40]
ODD = ["x", b"x", [1, 2], 2.5]            # (an empty list is no ONNX attribute at all)


def _count(family):
    TRIED[family] = TRIED.get(family, 0) + 1


def _accepted(family):
    ACCEPTED[family] = ACCEPTED.get(family, 0) + 1


def run_cli(*args):
    """``snnc ARGS`` in-process: (exit code, stdout, stderr); argparse's exit is a code too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def assert_outcome(rc, err):
    """0, or 2 with one clear line; never an internal error or a traceback."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert err.strip().splitlines()[-1].startswith("snnc"), err


def binary(rng, shape):
    return (rng.random(shape) < 0.4).astype(np.float32)


def exact(graph) -> bool:
    return not any(r["rounded"] or r["clipped"] for r in graph.metadata.get("quantization", []))


@pytest.fixture(scope="module")
def work():
    with tempfile.TemporaryDirectory(prefix="snnc-fuzz-") as d:
        old = tempfile.tempdir
        os.makedirs(os.path.join(d, "tmp"))
        tempfile.tempdir = os.path.join(d, "tmp")        # job folders of Lava runs land here
        yield d
        tempfile.tempdir = old
        assert os.listdir(os.path.join(d, "tmp")) == [], "job files left behind"


# ----------------------------------------------------------------------------- ONNX
fraction = st.integers(0, 64).map(lambda v: v / 64)       # on Loihi's grids: mostly valid values
value = st.one_of(fraction, fraction, fraction, st.sampled_from(HOSTILE))
ATTRS = st.fixed_dictionaries({}, optional={
    "threshold": st.one_of(fraction.map(lambda v: 0.25 + 4 * v), st.sampled_from(HOSTILE + ODD)),
    "current_decay": value, "voltage_decay": value,
    "state_scale": st.sampled_from([4096, 4096, 4096, 0, -4096, 64, 100, 4096.0, "x"]),
    "refractory": st.sampled_from([0, 0, 0, 1, 3, -2, 1.5]), "reset": st.sampled_from(["zero", "zero", "bogus", 3])})
WEIGHTS = st.lists(st.one_of(st.integers(-128, 127).map(lambda v: v / 32), st.sampled_from(HOSTILE)),
                   min_size=12, max_size=12) | st.lists(st.integers(-128, 127).map(lambda v: v / 32),
                                                        min_size=12, max_size=12)
BIAS = st.one_of(st.none(), st.lists(st.one_of(st.integers(-64, 64).map(lambda v: v / 16), st.sampled_from(HOSTILE)),
                                     min_size=3, max_size=3))


@settings(FUZZ, max_examples=120)
@given(attrs=ATTRS, w=WEIGHTS, b=BIAS, seed=st.integers(0, 99))
def test_fuzz_onnx(work, attrs, w, b, seed):
    _count("ONNX attributes and initializers")
    path = os.path.join(work, "f.onnx")
    onnx_model(path, w=np.array(w, np.float32).reshape(3, 4), attrs=attrs,
               bias=None if b is None else np.array(b, np.float32))
    rc, out, err = run_cli("compile", path, "-o", os.path.join(work, "f.snnc"))
    assert_outcome(rc, err)
    if rc:
        return
    _accepted("ONNX attributes and initializers")
    g = api.compile(path)
    x = binary(np.random.default_rng(seed), (2, 4, 25))
    ref = run_reference(g, x, "fixed").output
    assert np.array_equal(run_reference_spec(g, x, "fixed").output, ref)
    assert np.array_equal(run_reference(g, x, "float").output, run_reference_spec(g, x, "float").output)
    lif = g.nodes["lif"]
    if exact(g) and lif.state_scale and not lif.refractory:          # the ONNX function body's own dynamics
        assert np.array_equal(run_onnxruntime(path, x).output, ref)


@settings(FUZZ, max_examples=6)
@given(w=st.lists(st.integers(-128, 127).map(lambda v: v / 32), min_size=12, max_size=12), seed=st.integers(0, 99))
def test_fuzz_onnx_lava(work, w, seed):
    """A handful on Lava: lava-fused-fixed and lava-fixed equal the reference."""
    _count("ONNX on Lava")
    path = os.path.join(work, "l.onnx")
    onnx_model(path, w=np.array(w, np.float32).reshape(3, 4))
    g = api.compile(path)
    x = binary(np.random.default_rng(seed), (2, 4, 20))
    ref = run_reference(g, x, "fixed").output
    engines = ["lava-fused-fixed"] + (["lava-fixed"] if seed % 3 == 0 else [])
    for e in engines:
        assert np.array_equal(api.run(g, x, backend=e, timeout=120).output, ref), e
    _accepted("ONNX on Lava")


# ----------------------------------------------------------------------------- .net
NET_NEURON = st.fixed_dictionaries({}, optional={"iDecay": st.sampled_from([0, 1024, 4096, 5000, -1, 1024.5, np.nan]),
                                                  "vDecay": st.sampled_from([0, 128, 4095, 4097, np.inf]),
                                                  "vThMant": st.sampled_from([1, 80, 0, -80, 1 << 17, np.nan, 80.5])})
NET_FIELD = st.sampled_from([None, ("delay", [0, 1, 2, 3]), ("delay", [np.nan, 0, 0, 0]), ("delay", [1.5, 0, 0, 0]),
                             ("delay", [-1, 0, 0, 0]), ("bias", [64, -64, 0, 1e9]), ("bias", [np.nan, 0, 0, 0]),
                             ("weight", "nan"), ("weight", "big"), ("inFeatures", 9), ("shape", [-4]), ("shape", [5])])


@settings(FUZZ, max_examples=60)
@given(neuron=NET_NEURON, field=NET_FIELD, wscale=st.sampled_from([1, 8, 40, 255]), seed=st.integers(0, 99))
def test_fuzz_net(work, neuron, field, wscale, seed):
    _count(".net fields")
    rng = np.random.default_rng(seed)
    kw = {"weight": (rng.integers(-1, 2, (4, 8)) * wscale).astype(np.float32)}
    if field:
        k, v = field
        kw[k] = {"nan": np.full((4, 8), np.nan, np.float32), "big": np.full((4, 8), 1e12, np.float32)}.get(v, v) \
            if k == "weight" else np.asarray(v, np.float32 if k in ("delay", "bias") else np.int64)
    layers = [dict(type="input", shape=np.array([1, 1, 8])), dict(type="flatten", shape=np.array([8, 1, 1])),
              net_dense(8, 4, neuron=neuron, **kw)]
    path = net_file(os.path.join(work, "f.net"), layers)
    rc, out, err = run_cli("compile", path, "-o", os.path.join(work, "n.snnc"))
    assert_outcome(rc, err)
    if rc:
        return
    _accepted(".net fields")
    g = api.compile(path)
    x = binary(rng, (2, 1, 1, 8, 25))
    assert np.array_equal(run_reference(g, x, "fixed").output, run_reference_spec(g, x, "fixed").output)


# ----------------------------------------------------------------------------- artifacts
@pytest.fixture(scope="module")
def artifact_case(work):
    path = onnx_model(os.path.join(work, "a.onnx"), attrs=dict(voltage_decay=0.125))
    api.compile(path, os.path.join(work, "a.snnc"))
    x = binary(np.random.default_rng(5), (4, 30))
    np.save(os.path.join(work, "ax.npy"), x)
    with zipfile.ZipFile(os.path.join(work, "a.snnc")) as z:
        doc, arrays = json.loads(z.read("graph.json")), z.read("arrays.npz")
    return doc, arrays, run_reference(api.compile(path), x[None], "fixed").output[0]


@settings(FUZZ, max_examples=60)
@given(section=st.sampled_from(["nodes", "fixed"]), pick=st.integers(0, 99), key=st.integers(0, 99),
       v=st.one_of(st.sampled_from(HOSTILE + [o for o in ODD if not isinstance(o, bytes)]
                                   + [None, {}, {"array": "nope"}, True]), st.integers(-5, 5)))
def test_fuzz_artifact(work, artifact_case, section, pick, key, v):
    _count("artifacts")
    doc, arrays, want = artifact_case
    doc = json.loads(json.dumps(doc))
    entry = doc[section][pick % len(doc[section])]
    params = sorted(entry["params"])
    if params:
        entry["params"][params[key % len(params)]] = v
    path = os.path.join(work, "m.snnc")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", arrays)
    out = os.path.join(work, "ay.npz")
    rc, _, err = run_cli("run", path, "--input", os.path.join(work, "ax.npy"), "-o", out, "--backend", "reference")
    assert_outcome(rc, err)
    if rc == 0:              # accepted: the edit changed nothing the fixed-point network computes
        _accepted("artifacts")
        assert np.array_equal(np.load(out)["output"], want)


# ----------------------------------------------------------------------------- input arrays
@pytest.fixture(scope="module")
def input_model(work):
    path = onnx_model(os.path.join(work, "i.onnx"), attrs=dict(voltage_decay=0.125))
    return path, api.compile(path)


@settings(FUZZ, max_examples=80)
@given(batch=st.sampled_from([None, 0, 1, 2, 3]), extra=st.sampled_from([(), (1,), (1, 1)]),
       T=st.sampled_from([0, 1, 7, 7, 7]),
       dtype=st.sampled_from(["float32", "float32", "float64", "int8", "bool", "complex64", "float16"]),
       poison=st.sampled_from([None, None, None, None, np.nan, np.inf, 0.5, 2.0, -1.0]), c=st.sampled_from([4, 4, 4, 5]),
       seed=st.integers(0, 99))
def test_fuzz_inputs(input_model, batch, extra, T, dtype, poison, c, seed):
    _count("input arrays")
    path, g = input_model
    rng = np.random.default_rng(seed)
    shape = (c,) + extra + (T,)
    x = binary(rng, ((batch,) if batch is not None else ()) + shape)
    if poison is not None and x.size:
        x.flat[int(rng.integers(x.size))] = poison
    x = x.astype(dtype) if not (dtype in ("int8", "bool") and poison is not None and not float(poison).is_integer()) \
        else x
    results = {}
    for engine in ("reference", "reference-float"):
        try:
            results[engine] = api.run(g, x, backend=engine).output
        except SnncError as e:
            results[engine] = str(e)
    a, b = results.values()
    assert isinstance(a, str) == isinstance(b, str), results          # accepted by both or by neither
    if isinstance(a, str):
        return
    _accepted("input arrays")
    xb = np.asarray(x, np.float32).reshape((-1, 4, T))
    assert np.array_equal(run_onnxruntime(path, xb).output.reshape(a.shape), a)   # exact model: onnxruntime = reference


# ----------------------------------------------------------------------------- flags
FLAGS = {
    "run": [["--backend", st.sampled_from(["reference", "nope", "", "lava"])],
            ["--timeout", st.sampled_from(["5", "-5", "nan", "inf", "0", "x", "1e309"])],
            ["-o", st.sampled_from(["OUT", "X", "M", "DIR", "", "nodir/y.npz"])],
            ["--input", st.sampled_from(["X", "M", "DIR", "missing.npy"])]],
    "compile": [["-o", st.sampled_from(["OUT", "X", "M", "DIR"])], ["--input-shape", st.sampled_from(["1,6,6", "x", "0"])],
                ["--num-layers", st.sampled_from(["1", "0", "-1", "a"])], ["--reset-interval", st.sampled_from(["4", "-1"])]],
    "deploy": [["--dry-run"], ["--chips", st.sampled_from(["1", "0", "-3", "z"])], ["--map", st.sampled_from(["OUT", "M", "DIR"])],
               ["--system", st.sampled_from(["single-chip", "nope"])], ["--bundle", st.sampled_from(["BUNDLE", "X", "M"])],
               ["--target", st.sampled_from(["loihi2", "loihi1"])]],
    "info": [],
    "parity": [["--engines", st.sampled_from(["reference", "nope", ",", "reference,reference-float"])],
               ["--input", st.sampled_from(["X", "M"])], ["--timeout", st.sampled_from(["3", "-1"])]],
}


@st.composite
def argv(draw):
    cmd = draw(st.sampled_from(sorted(FLAGS)))
    args = [cmd, draw(st.sampled_from(["M", "O", "X", "DIR", "missing.onnx"]))]
    for flag in FLAGS[cmd]:
        if draw(st.booleans()):
            args += [flag[0]] + ([draw(flag[1])] if len(flag) > 1 else [])
    if cmd == "run" and "--input" not in args:
        args += ["--input", "X"]
    return args


@settings(FUZZ, max_examples=60)
@given(args=argv())
def test_fuzz_flags(work, input_model, args):
    _count("flags")
    d = os.path.join(work, "flags")
    os.makedirs(os.path.join(d, "dir"), exist_ok=True)
    if not os.path.exists(os.path.join(d, "m.snnc")):
        api.compile(input_model[0], os.path.join(d, "m.snnc"))
        np.save(os.path.join(d, "x.npy"), binary(np.random.default_rng(0), (4, 10)))
    saved = {p: open(os.path.join(d, p), "rb").read() for p in ("m.snnc", "x.npy")}
    sub = {"M": os.path.join(d, "m.snnc"), "O": input_model[0], "X": os.path.join(d, "x.npy"),
           "DIR": os.path.join(d, "dir"), "OUT": os.path.join(d, "out.bin"),
           "BUNDLE": os.path.join(d, f"bundle{TRIED['flags']}")}
    inputs = {a for i, a in enumerate(args) if a in ("M", "X") and (i == 0 or args[i - 1] not in ("-o", "--map", "--bundle"))}
    rc, _, err = run_cli(*[sub.get(a, a) for a in args])
    assert_outcome(rc, err)
    if rc == 0:
        _accepted("flags")
    for key in inputs:                         # an input is never changed, whatever the flags
        name = os.path.basename(sub[key])
        assert open(sub[key], "rb").read() == saved[name], f"{name} changed by {args}"
    for name, data in saved.items():           # an output the user asked for may replace a file: restore it
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def _children() -> set:
    """Live (non-zombie) child processes of this test process."""
    out = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                if int(rest[1]) == os.getpid() and rest[0] != "Z":
                    out.add(int(p))
            except OSError:
                pass
    return out


BEFORE: set = set()     # children of earlier test files (e.g. multiprocessing's resource tracker)


@pytest.fixture(scope="module", autouse=True)
def _children_before():
    BEFORE.update(_children())
    yield


def test_fuzz_summary(capsys, work):
    """Runs last in this file: no process left behind by the cases above; the number tried."""
    left = sorted(_children() - BEFORE)
    assert left == [], f"processes left behind: {left}"
    with capsys.disabled():
        print(f"\nhostile fuzz: {sum(TRIED.values())} cases tried ("
              + ", ".join(f"{k} {v}" for k, v in TRIED.items()) + f"); {sum(ACCEPTED.values())} accepted and "
              "identical on every engine that ran them (" + ", ".join(f"{k} {v}" for k, v in ACCEPTED.items())
              + "), the others refused with one clear line")
