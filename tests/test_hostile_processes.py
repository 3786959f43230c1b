"""Processes: the Lava worker is isolated from the user's folder and environment and runs the
parent's snnc; signals end the whole worker group and remove its job files; a dead Lava process
is noticed within seconds and named; --timeout is positive and finite (issue 11)."""
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

import snnc
from hostile_models import assert_clear, cli, onnx_model, spikes
from snnc import api
from snnc.backends.child import run_child
from snnc.errors import SnncError

PLANT = "open(__import__('os').path.join(__import__('os').getcwd(), 'EXECUTED-' + __name__), 'w')\n"


def plant(folder):
    """Modules a careless folder may hold: each writes a marker file when imported."""
    for mod in ("pickle.py", "numpy.py", "lava.py", "runpy.py"):
        (folder / mod).write_text(PLANT)
    os.makedirs(folder / "snnc", exist_ok=True)
    (folder / "snnc" / "__init__.py").write_text(PLANT)


def test_child_is_isolated_and_imports_the_parents_snnc(tmp_path, monkeypatch):
    plant(tmp_path)
    other = tmp_path / "elsewhere"
    os.makedirs(other)
    plant(other)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{other}{os.pathsep}{tmp_path}")
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "pickle.py"))
    res = run_child("snnc.backends.child", {"check": ["lava"]}, timeout=60, what="diagnostic")
    assert res["snnc"] == os.path.abspath(snnc.__file__)
    assert res["isolated"]
    assert str(tmp_path) not in res["sys_path"] and "" not in res["sys_path"] and "." not in res["sys_path"]
    assert not [f for f in os.listdir(tmp_path) + os.listdir(other) if f.startswith("EXECUTED")]


def test_lava_run_from_a_folder_with_pickle_py(tmp_path, capsys, monkeypatch):
    """Before: the worker was started with python -m, so ./pickle.py ran (and the run failed)."""
    plant(tmp_path)
    onnx_model(str(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", spikes((4, 20)))
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, "run", "m.onnx", "--input", "x.npy", "-o", "y.npz", "--backend", "lava-fused-fixed",
                       "--timeout", "120")
    assert rc == 0, err
    assert not [f for f in os.listdir(tmp_path) if f.startswith("EXECUTED")]
    want = api.run(str(tmp_path / "m.onnx"), spikes((4, 20)), backend="reference").output
    assert np.array_equal(np.load(tmp_path / "y.npz")["output"], want)


# ----------------------------------------------------------------------------- signals
def _tagged(tag):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/environ", "rb") as f:
                    if f"SNNC_TEST_TAG={tag}".encode() in f.read():
                        with open(f"/proc/{p}/stat") as s:
                            if s.read().rsplit(")", 1)[1].split()[0] != "Z":
                                out.append(int(p))
            except OSError:
                pass
    return out


def _lava_processes(tag):
    """The tagged processes whose parent is the worker (started with ``python -I``): Lava's."""
    procs = _tagged(tag)
    worker = [p for p in procs if b"-I" in open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")]
    parent = {p: int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]) for p in procs}
    return sorted(p for p in procs if worker and parent[p] == worker[0])


@pytest.fixture
def long_run(tmp_path):
    """A `snnc run --backend lava-fixed` long enough to be interrupted, with its own TMPDIR and a tag
    in its environment (inherited by the worker and every Lava process)."""
    onnx_model(str(tmp_path / "m.onnx"), n_in=16, n_out=16, w=np.full((16, 16), 0.3, np.float32))
    np.save(tmp_path / "x.npy", spikes((16, 200000)))
    os.makedirs(tmp_path / "tmp")
    tag = uuid.uuid4().hex
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), SNNC_TEST_TAG=tag)
    p = subprocess.Popen([sys.executable, "-m", "snnc.cli", "run", "m.onnx", "--input", "x.npy", "-o", "y.npz",
                          "--backend", "lava-fixed", "--timeout", "300"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_default_signals)   # (a background job
    t0 = time.time()                                                                      # ignores SIGINT)
    while len(_tagged(tag)) < 5 and time.time() - t0 < 90:     # snnc, the worker and its Lava processes
        time.sleep(0.5)
    time.sleep(2.0)
    yield p, tag, tmp_path / "tmp"
    for pid in _tagged(tag):
        os.kill(pid, signal.SIGKILL)
    p.kill()


def _default_signals():
    """A background job (or nohup) ignores SIGINT (SIGHUP); snnc rightly keeps an ignored signal
    ignored, so the child under test starts with the defaults."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_ends_the_whole_worker_group_and_removes_job_files(long_run, sig):
    """Before: SIGTERM or SIGHUP left the worker and ~10 Lava processes running, with their job files."""
    p, tag, tmp = long_run
    assert len(_tagged(tag)) >= 5, "the Lava run did not start"
    assert [f for f in os.listdir(tmp) if f.startswith("snnc-job-")]
    t0 = time.time()
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    deadline = time.time() + 10
    while _tagged(tag) and time.time() < deadline:
        time.sleep(0.2)
    assert time.time() - t0 < 15
    assert _tagged(tag) == []
    assert [f for f in os.listdir(tmp) if f.startswith("snnc-job-")] == []
    assert p.returncode == 128 + sig
    assert err.strip().splitlines()[-1] in ("snnc: interrupted", f"snnc: stopped by {signal.Signals(sig).name}")


def test_a_killed_lava_process_is_noticed_and_named(long_run):
    """Before: the run stalled for the whole timeout, then said only 'timed out'."""
    p, tag, tmp = long_run
    lava = _lava_processes(tag)
    assert len(lava) >= 3, "the Lava run did not start"
    victim = lava[-1]                        # the youngest Lava process (a process model)
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    _, err = p.communicate(timeout=60)
    assert time.time() - t0 < 15
    assert_clear(p.returncode, err.strip().splitlines()[0] + "\n", "Lava process", str(victim), "SIGKILL")
    time.sleep(1)
    assert _tagged(tag) == [] and [f for f in os.listdir(tmp) if f.startswith("snnc-job-")] == []


@pytest.mark.parametrize("value", ["-5", "nan", "0", "inf", "soon"])
def test_timeout_must_be_positive_and_finite(tmp_path, capsys, value):
    m = onnx_model(str(tmp_path / "m.onnx"))
    np.save(tmp_path / "x.npy", spikes((4, 20)))
    with pytest.raises(SystemExit) as e:
        cli(capsys, "run", m, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz", "--timeout", value)
    assert e.value.code == 2
    assert "--timeout: must be a positive, finite number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("value", [-5, float("nan"), 0, float("inf")])
def test_api_timeout_must_be_positive_and_finite(tmp_path, value):
    g = api.compile(onnx_model(str(tmp_path / "m.onnx")))
    with pytest.raises(SnncError, match="timeout must be a positive, finite number"):
        api.run(g, spikes((4, 20)), backend="lava-fused-fixed", timeout=value)


def test_worker_group_ends_when_snnc_itself_is_killed(long_run):
    """SIGKILL cannot be caught: the worker notices its parent is gone, removes its job folder and
    kills its own group."""
    p, tag, tmp = long_run
    assert len(_tagged(tag)) >= 5, "the Lava run did not start"
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    deadline = time.time() + 15
    while (_tagged(tag) or [f for f in os.listdir(tmp) if f.startswith("snnc-job-")]) and time.time() < deadline:
        time.sleep(0.2)
    assert _tagged(tag) == []
    assert [f for f in os.listdir(tmp) if f.startswith("snnc-job-")] == []
