"""Run a simulation job in a child Python process with a timeout, isolated and watched.

Lava runs each process in its own OS process, and an exception inside one (or a missing process
model, or one killed from outside) can hang the run. Every Lava run of snnc therefore happens in
a child that leads its own process group:

- isolated: ``python -I`` (no current folder, no ``PYTHON*`` variables, no user site on
  ``sys.path``), with ``sys.path`` set explicitly to the parent's snnc (the folder holding the
  ``snnc`` package this module belongs to), so a ``pickle.py`` in the user's folder is never
  imported and the child runs exactly the parent's snnc;
- watched: the parent waits on the child and looks at its Lava processes every 0.25 s; a Lava process that
  is killed or crashes while the others wait is noticed at once (one that vanishes without an
  exit status within 10 s), its process group killed, and the error
  names it (pid, exit status, command); the timeout must be positive and finite;
- cleaned up: on the timeout, an error, SIGTERM, SIGHUP or SIGINT the whole group is killed and
  the job folder removed (the signal is then re-raised as ``Terminated``/``KeyboardInterrupt``).
  The child also watches its parent: if the parent disappears it kills its group and removes its
  job folder.

Protocol: the parent pickles ``job`` to ``JOB_DIR/job.pkl``; the child's ``child_main(work)``
calls ``work(job) -> dict`` and pickles the result to ``JOB_DIR/result.pkl``.
"""
from __future__ import annotations

import contextlib
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Callable, Dict, Optional

from ..errors import SnncError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLL = 0.25             # seconds between looks at the child
GONE_GRACE = 10.0       # seconds a run may go on after one of its Lava processes vanished
# the child's entry: only the parent's snnc on top of the interpreter's own (isolated) path
BOOT = ("import sys, runpy; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; "
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


class Terminated(BaseException):
    """snnc received SIGTERM or SIGHUP (raised in the main thread by ``terminating_signals``)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def terminating_signals():
    """While inside: SIGTERM and SIGHUP raise ``Terminated`` (so ``finally`` blocks clean up),
    as SIGINT raises KeyboardInterrupt. Only in the main thread, only over default handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            old[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def check_timeout(timeout) -> float:
    """``timeout`` as a positive, finite number of seconds; SnncError otherwise."""
    try:
        t = float(timeout)
    except (TypeError, ValueError):
        t = float("nan")
    if not (math.isfinite(t) and t > 0):
        raise SnncError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
    return t


# ----------------------------------------------------------------------------- process group
def _stat(pid: int) -> Optional[tuple]:
    """(state, pgrp, exit_code) of ``pid`` from /proc, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return rest[0], int(rest[2]), int(rest[-1]) if len(rest) >= 50 else 0


def _group(pgid: int) -> Dict[int, str]:
    """Live (non-zombie) processes of group ``pgid``: pid -> state."""
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            st = _stat(int(p))
            if st and st[1] == pgid:
                out[int(p)] = st[0]
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:120]
    except OSError:
        return "?"


def _describe_death(pid: int, cmd: str) -> str:
    st = _stat(pid)                       # a zombie still has its exit status
    how = "ended"
    if st and st[0] == "Z" and st[2]:
        code = st[2]
        how = f"was killed by {signal.Signals(code & 0x7f).name}" if code & 0x7f else f"exited with code {code >> 8}"
    return f"Lava process {pid} {how}"


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


def _abnormal(pid: int) -> bool:
    """A zombie that was killed by a signal or exited with a non-zero code."""
    st = _stat(pid)
    return bool(st and st[0] == "Z" and st[2])


def _watch(proc: subprocess.Popen, timeout: float, what: str, err_path: str) -> int:
    """Wait for ``proc``; SnncError on the timeout or when one of its Lava processes died while
    the others still run (killed or crashed: a zombie with a signal or non-zero exit status at
    once; vanished without a trace: after ``GONE_GRACE``)."""
    start = time.monotonic()
    seen: Dict[int, str] = {}
    dead_since = None
    while True:
        rc = proc.poll()
        if rc is not None:
            return rc
        now = time.monotonic()
        if now - start > timeout:
            _kill_group(proc)
            raise SnncError(f"{what} timed out after {timeout:g} s (killed the simulation); "
                            f"stderr tail:\n{_tail(err_path)}")
        group = _group(proc.pid)
        live = {p for p, state in group.items() if state != "Z"} - {proc.pid}
        for p in live - set(seen):
            seen[p] = _cmdline(p)
        crashed = [p for p, state in group.items() if state == "Z" and p != proc.pid and _abnormal(p)]
        gone = [p for p in seen if p not in live]
        if live and (crashed or gone):        # one died, the others wait for it: the run cannot finish
            dead_since = dead_since or now
            if crashed or now - dead_since > GONE_GRACE:
                who = crashed[0] if crashed else gone[0]
                why = _describe_death(who, seen.get(who, "?"))
                _kill_group(proc)
                raise SnncError(f"{what} failed: {why} during the run while {len(live)} other "
                                f"process(es) of the run waited for it; killed the simulation. stderr tail:\n"
                                f"{_tail(err_path)}")
        else:
            dead_since = None
        try:                                 # returns as soon as the child ends, or at the timeout
            proc.wait(timeout=max(0.0, min(POLL, timeout - (time.monotonic() - start))))
        except subprocess.TimeoutExpired:
            pass


def run_child(module: str, job: dict, timeout: float, what: str = "Lava run") -> dict:
    """Run ``module``'s ``__main__`` in an isolated child on ``job``; its result dict, or SnncError
    naming ``what``."""
    timeout = check_timeout(timeout)
    with terminating_signals(), tempfile.TemporaryDirectory(prefix="snnc-job-") as job_dir:
        with open(os.path.join(job_dir, "job.pkl"), "wb") as f:
            pickle.dump(job, f)
        err_path = os.path.join(job_dir, "stderr.txt")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = "1"         # one Lava process per OS process already fills the cores
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-I", "-c", BOOT, ROOT, module, job_dir, str(os.getpid())],
                                    stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                    env=env, cwd=job_dir, start_new_session=True)
            try:
                rc = _watch(proc, timeout, what, err_path)
            finally:
                _kill_group(proc)               # the child on error, stray Lava children otherwise
        res_path = os.path.join(job_dir, "result.pkl")
        if rc != 0 or not os.path.exists(res_path):
            sig = f", killed by {signal.Signals(-rc).name}" if rc < 0 else ""
            raise SnncError(f"{what} failed (exit code {rc}{sig}); stderr tail:\n{_tail(err_path)}")
        with open(res_path, "rb") as f:
            return pickle.load(f)


# ----------------------------------------------------------------------------- child side
def _orphan_watch(job_dir: str, parent: int) -> None:
    """In the child: when the parent is gone, remove the job folder and kill our group."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            shutil.rmtree(job_dir, ignore_errors=True)
            os.killpg(0, signal.SIGKILL)


def child_main(work: Callable[[dict], dict]) -> None:
    """The child's entry: ``work(job)`` on ``argv[1]/job.pkl``, result to ``result.pkl``, hard exit."""
    job_dir = sys.argv[1]
    if len(sys.argv) > 2:
        threading.Thread(target=_orphan_watch, args=(job_dir, int(sys.argv[2])), daemon=True).start()
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


def _whoami(job: dict) -> dict:
    """A diagnostic job: where the child's snnc comes from, its path, folder and flags."""
    snnc_file = sys.modules["snnc"].__file__          # the package, imported already
    return {"snnc": os.path.abspath(snnc_file), "sys_path": list(sys.path), "cwd": os.getcwd(),
            "isolated": bool(sys.flags.isolated), "modules": sorted(m for m in job.get("check", ())
                                                                   if m in sys.modules)}


if __name__ == "__main__":      # python -I -c BOOT ROOT snnc.backends.child JOB_DIR: the diagnostic job
    child_main(_whoami)
