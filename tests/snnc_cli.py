"""The ``snnc`` command as a user runs it, for the tests (a subprocess of this interpreter,
running this checkout's snnc). Not a test file: conftest.py's ``cli`` fixture returns ``run_snnc``."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNNC = [sys.executable, "-m", "snnc.cli"]


def env(extra=None):
    """The environment of a child: this checkout first on PYTHONPATH (so the child runs the snnc
    under test, not another installed copy), plus ``extra``."""
    e = dict(os.environ, **(extra or {}))
    e["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in e.get("PYTHONPATH", "").split(os.pathsep) if p])
    return e


def run_snnc(*args, cwd=None, timeout=600, extra_env=None):
    """``snnc ARGS`` in a subprocess -> (exit code, stdout, stderr); arguments are str()-ed."""
    p = subprocess.run(SNNC + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                       timeout=timeout, env=env(extra_env))
    return p.returncode, p.stdout, p.stderr


def run_python(script, *args, cwd=None, timeout=600):
    """``python SCRIPT ARGS`` (a bundle's run.py, an example) -> (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, str(script)] + [str(a) for a in args], capture_output=True, text=True,
                       cwd=cwd, timeout=timeout, env=env())
    return p.returncode, p.stdout, p.stderr
