"""One definition of a valid input on every engine (backends/host_io.py): finite numbers, binary
spikes, T >= 1, N >= 1; shapes differing only by size-1 axes accepted (issue 11)."""
import subprocess
import sys

import numpy as np
import pytest

from hostile_models import assert_clear, cli, net_dense, net_file, onnx_model, spikes
from snnc import api
from snnc.errors import SnncError
from snnc.backends.onnx_runtime import run_onnxruntime

ENGINES = ["reference", "reference-float", "lava-fixed", "lava-float", "lava-fused-fixed", "lava-fused-float"]
X = spikes((4, 30))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    path = onnx_model(str(d / "m.onnx"))
    return api.compile(path), path


BAD = {
    "NaN": (np.where(X > 0, np.nan, 0).astype(np.float32), "finite, found NaN"),
    "inf": (np.where(X > 0, np.inf, 0).astype(np.float32), "finite, found inf"),
    "0.5": (X * 0.5, "binary spikes (0 or 1) on every engine; found 0.5"),
    "2": (X * 2, "binary spikes (0 or 1) on every engine; found 2.0"),
    "-1": (-X, "binary spikes (0 or 1) on every engine; found -1.0"),
    "T=0": (np.zeros((4, 0), np.float32), "no time steps (T = 0)"),
    "N=0": (np.zeros((0, 4, 30), np.float32), "empty batch (N = 0)"),
    "complex": (X.astype(np.complex64), "not real numbers"),
    "text": (np.array([["a"] * 3] * 4), "not real numbers"),
    "no time axis": (np.ones(4, np.float32), "no time axis"),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("what", list(BAD))
def test_invalid_input_is_refused_the_same_way_on_every_engine(graph, engine, what):
    """Before: NaN and 0.5 ran on reference-float and lava-fused-float, T = 0 hung the fused
    engines until the timeout, N = 0 was an internal error."""
    x, msg = BAD[what]
    with pytest.raises(SnncError) as e:
        api.run(graph[0], x, backend=engine, timeout=60)
    assert msg in str(e.value)


@pytest.mark.parametrize("what", ["NaN", "N=0", "T=0"])
def test_invalid_batch_is_refused_by_engine_entry_points(graph, what):
    """Engines called directly (not through api.run) check the same way."""
    from snnc.backends.lava_fused import run_lava_fused
    from snnc.backends.reference import run_reference
    x, msg = BAD[what]
    xb = x if x.ndim == 3 else x[None]
    for run in (lambda: run_reference(graph[0], xb, "float"), lambda: run_lava_fused(graph[0], xb, "float")):
        with pytest.raises(SnncError, match=msg.split(",")[0].replace("(", r"\(").replace(")", r"\)")):
            run()
    if what == "NaN":
        with pytest.raises(SnncError, match="onnxruntime"):
            run_onnxruntime(graph[1], xb)


def test_parity_with_no_time_steps_is_a_clear_error(graph, tmp_path):
    """Before: SIGFPE (exit 136, no message)."""
    np.save(tmp_path / "x.npy", np.zeros((4, 0), np.float32))
    p = subprocess.run([sys.executable, "-m", "snnc.cli", "parity", graph[1], "--input", str(tmp_path / "x.npy"),
                        "--engines", "reference"], capture_output=True, text=True, timeout=120)
    assert_clear(p.returncode, p.stderr, "T = 0")


@pytest.mark.parametrize("x", [X.astype(bool), X.astype(np.int8), X.astype(np.float64), np.asfortranarray(X)],
                         ids=["bool", "int8", "float64", "fortran"])
def test_other_number_types_give_the_same_spikes(graph, x):
    want = api.run(graph[0], X, backend="reference").output
    assert np.array_equal(api.run(graph[0], x, backend="reference").output, want)


def test_size_one_axes_are_accepted(graph):
    want = api.run(graph[0], X, backend="reference").output
    for x in (X[:, None, :], X[None, :, None, :]):
        got = api.run(graph[0], x, backend="reference").output
        assert np.array_equal(got.reshape(want.shape), want)
    batch = api.run(graph[0], np.stack([X, X])[:, :, None, :], backend="reference").output
    assert batch.shape == (2, 3, 30) and np.array_equal(batch[1], want)


def test_ntidigits_layout_is_accepted_on_every_fast_engine(tmp_path, capsys):
    """lava-dl's N-TIDIGITS input (64, T) for its input layer (1, 1, 64): refused before."""
    net = net_file(str(tmp_path / "m.net"), [dict(type="input", shape=np.array([1, 1, 64])),
                                            dict(type="flatten", shape=np.array([64, 1, 1])), net_dense(64, 5)])
    x = spikes((64, 40), seed=3)
    g = api.compile(net)
    want = api.run(g, x.reshape(1, 1, 64, 40), backend="reference").output
    assert want.sum() > 0
    for engine in ("reference", "lava-fused-fixed"):
        assert np.array_equal(api.run(g, x, backend=engine, timeout=120).output, want), engine
    np.save(tmp_path / "x.npy", x)
    rc, out, err = cli(capsys, "run", net, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz", "--backend",
                       "reference")
    assert rc == 0, err
    assert np.array_equal(np.load(tmp_path / "y.npz")["output"], want)


def test_graded_range_is_checked_on_float_engines_too():
    from snnc.compiler.ir import CubaLIF, Dense, Graph, Input, Output
    g = Graph()
    g.add("in", Input((3,), kind="graded", frac_bits=8))
    g.add("fc", Dense(np.full((2, 3), 0.25)), "in")
    g.add("lif", CubaLIF((2,), 0.25, 0.125, 1.0), "fc")
    g.add("out", Output((2,)), "lif")
    g = api.compile(g)
    x = np.full((3, 10), 0.3)
    assert api.run(g, x, backend="reference-float").output.shape == (2, 10)
    with pytest.raises(SnncError, match=r"graded values must satisfy \|x\| \* 2\*\*8 < 2\*\*23"):
        api.run(g, x * 1e6, backend="reference-float")
