"""Writing outputs safely: never onto an input, never half-written.

``check_output(path, inputs)`` refuses an output that resolves to any input (the same file
through a symlink, a hard link or ``..``: ``os.path.samefile``), a folder, or a folder that does
not exist. ``write_atomic(path, write)`` writes to a temporary file in the target folder and
renames it into place, so a failed or interrupted write leaves the old file (or nothing).
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterable, Optional

from .errors import SnncError


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str, inputs: Iterable[Optional[str]] = (), flag: str = "-o") -> str:
    """``path`` if it may be written; SnncError naming the flag otherwise."""
    if not path:
        raise SnncError(f"{flag}: give an output path")
    for given in inputs:
        if given and os.path.exists(given) and _same(path, given):
            raise SnncError(f"{flag} {path}: the output would overwrite the input {given} (the same file); "
                            f"choose another {flag}")
    if os.path.isdir(path):
        raise SnncError(f"{flag} {path}: is a folder; give a file name")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise SnncError(f"{flag} {path}: folder {d} does not exist")
    if not os.access(d, os.W_OK | os.X_OK):
        raise SnncError(f"{flag} {path}: folder {d} is not writable")
    return path


def check_output_dir(path: str, flag: str) -> str:
    """A folder output (``--bundle``): must not be an existing file."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise SnncError(f"{flag} {path}: exists and is not a folder; choose a new folder")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SnncError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SnncError(f"{flag} {path}: folder {parent} is not writable")
    return path


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp)`` to a temporary file next to ``path``, then rename it onto ``path``
    (replacing a symlink itself, never the file it points to)."""
    d = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    except OSError as e:
        raise SnncError(f"{path}: cannot write here ({e.strerror})") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise SnncError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_npz(path: str, arrays: dict) -> None:
    """``np.savez`` of ``arrays`` to exactly ``path`` (no ``.npz`` appended), atomically."""
    import numpy as np

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    write_atomic(path, write)
