"""Run a simulation job in a child Python process with a timeout.

Lava runs each process in its own OS process, and an exception inside one (or a missing process
model) can hang the run. Every Lava run of snnc therefore happens in a child
(``python -m <module> JOB_DIR``) that leads its own process group: on timeout the whole group is
killed and ``SnncError`` reports the child's stderr; stray Lava children are killed afterwards.

Protocol: the parent pickles ``job`` to ``JOB_DIR/job.pkl``; the child's ``child_main(work)``
calls ``work(job) -> dict`` and pickles the result to ``JOB_DIR/result.pkl``.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from typing import Callable

from ..errors import SnncError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)      # start_new_session: the child leads its group
    except (ProcessLookupError, PermissionError, OSError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_child(module: str, job: dict, timeout: float, what: str = "Lava run") -> dict:
    """Run ``python -m module JOB_DIR`` on ``job``; its result dict, or SnncError naming ``what``."""
    with tempfile.TemporaryDirectory(prefix="snnc-job-") as job_dir:
        with open(os.path.join(job_dir, "job.pkl"), "wb") as f:
            pickle.dump(job, f)
        err_path = os.path.join(job_dir, "stderr.txt")
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = "1"         # one Lava process per OS process already fills the cores
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", module, job_dir], stdout=subprocess.DEVNULL,
                                    stderr=err, env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise SnncError(f"{what} timed out after {timeout:.0f} s (killed the simulation); "
                                f"stderr tail:\n{_tail(err_path)}") from None
            finally:
                _kill_group(proc)               # the child on error, stray Lava children otherwise
        res_path = os.path.join(job_dir, "result.pkl")
        if rc != 0 or not os.path.exists(res_path):
            raise SnncError(f"{what} failed (exit code {rc}); stderr tail:\n{_tail(err_path)}")
        with open(res_path, "rb") as f:
            return pickle.load(f)


def child_main(work: Callable[[dict], dict]) -> None:
    """The child's entry: ``work(job)`` on ``argv[1]/job.pkl``, result to ``result.pkl``, hard exit."""
    job_dir = sys.argv[1]
    try:
        with open(os.path.join(job_dir, "job.pkl"), "rb") as f:
            job = pickle.load(f)
        result = work(job)
        with open(os.path.join(job_dir, "result.pkl.tmp"), "wb") as f:
            pickle.dump(result, f)
        os.replace(os.path.join(job_dir, "result.pkl.tmp"), os.path.join(job_dir, "result.pkl"))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)      # do not wait for stray Lava threads
