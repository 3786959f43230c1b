"""The reference's compiled kernels (``csrc/kernels.c``, built by ``setup.py`` at install into
``_kernels*.so``), called through ctypes. ``available()`` is False when the library was not
built (no C compiler at install), was built from another version of the source, or
``SNNC_NO_CKERNELS=1`` is set: the time-batched plan then runs its numpy path, which gives the
same integers (tests/test_ckernels.py compares the two).

Arrays are C-contiguous numpy arrays; float values are Loihi integers (module doc of
``reference_batched``); spikes uint8 0/1; time is the leading axis of a chunk."""
from __future__ import annotations

import ctypes
import importlib.machinery
import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

VERSION = 9                      # csrc/kernels.c's snnc_kernels_version()
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_C = ctypes.c_int
_TYPES = {np.dtype(np.float32): 1, np.dtype(np.float64): 2}


def _load() -> Optional[ctypes.CDLL]:
    if os.environ.get("SNNC_NO_CKERNELS", "") not in ("", "0"):
        return None
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / ("_kernels" + suffix)
        if path.exists():
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:
                return None
            if lib.snnc_kernels_version() != VERSION:
                return None
            lib.snnc_lif_zero.argtypes = [_I, _I, _I, _P, _P, _P, _P, _C, _P, _C, _I, _I, _I, _D, _P, _P, _C, _P, _C, _C, _P]
            lib.snnc_lif_zero.restype = _I
            for name in ("snnc_im2col_u8_f32", "snnc_im2col_u8_f64"):
                getattr(lib, name).argtypes = [_P] + [_I] * 14 + [_P, _I, _I]
                getattr(lib, name).restype = _C
            for name in ("snnc_conv_events_f32", "snnc_conv_events_f64"):
                getattr(lib, name).argtypes = [_P] + [_I] * 18 + [_P, _P]
                getattr(lib, name).restype = _C
            lib.snnc_exact_f32.argtypes = [_P, _I]
            lib.snnc_exact_f32.restype = _C
            return lib
    return None


_LIB = _load()


def available() -> bool:
    """The compiled kernels are loaded (else callers use their numpy path)."""
    return _LIB is not None


def _ptr(x: Optional[np.ndarray], dtype) -> Optional[int]:
    if x is None:
        return None
    if x.dtype != dtype or not x.flags.c_contiguous:
        raise TypeError(f"kernel argument: {x.dtype} {x.shape}, want C-contiguous {np.dtype(dtype).name}")
    return x.ctypes.data


def _typed(x: Optional[np.ndarray], what: str):
    """(pointer, type code) of an optional float32/float64 C-contiguous array."""
    if x is None:
        return None, 0
    code = _TYPES.get(x.dtype)
    if code is None or not x.flags.c_contiguous:
        raise TypeError(f"kernel argument {what}: {x.dtype} {x.shape}, want C-contiguous float32 or float64")
    return x.ctypes.data, code


def exact_f32(x: np.ndarray) -> bool:
    """Every value of the C-contiguous float64 ``x`` is exactly a float32 (one pass, no copy)."""
    return bool(_LIB.snnc_exact_f32(_ptr(x, np.float64), x.size))


def _drive(d: Optional[np.ndarray]):
    """(pointer, type code, element strides) of ``lif_zero``'s drive: C-contiguous float32 or
    float64 (codes 1, 2), or float64 with any strides along its last axis (code 3)."""
    if d is None:
        return None, 0, (0, 0, 0)
    if d.dtype == np.float64 and not d.flags.c_contiguous and all(s % 8 == 0 for s in d.strides):
        return d.ctypes.data, 3, tuple(s // 8 for s in d.strides)
    p, code = _typed(d, "drive")
    k, n, m = d.shape
    return p, code, (n * m, m, 1)


def _per_neuron(x, m: int, what: str) -> Tuple[np.ndarray, int]:
    """(array, 1) for (m,) float64 values, (array of one, 0) for one number."""
    if np.ndim(x) == 0:
        return np.array([float(x)]), 0
    if x.shape != (m,):
        raise ValueError(f"lif_zero: {what} of shape {x.shape}, want ({m},) or one number")
    return x, 1


def lif_zero(v: np.ndarray, a: Optional[np.ndarray], drive: Optional[np.ndarray], scale: float,
             bias: np.ndarray, cv, vth, ge: bool, out: np.ndarray, u: Optional[np.ndarray] = None,
             cu: Optional[np.ndarray] = None) -> int:
    """k steps of a CUBA LIF population reset to zero, no bound reachable
    (``reference_batched._no_bound_reached``): per step ``u = trunc(u * cu) + a * 64`` (``u`` and
    ``cu`` given; else u is the step's input ``a * 64``), ``v = trunc(v * cv) + (bias + u + drive
    * scale)``, ``s = v > vth`` (``>=``: ge), ``v = 0`` where s. ``v``, ``u`` (n, m) float64, in
    place; ``cu`` (m,) float64; ``a`` (k, n, m) synapse sums, ``drive`` (k, n, m) bias-input
    values (each float32 or float64, or None; a float64 ``drive`` may be any strided view, e.g.
    of a time-last input, read in place); ``bias`` (m,) float64; ``cv``, ``vth``: (m,)
    float64 or one number; ``out`` (k, n, m) uint8. Returns how many ``drive * scale`` are not
    whole numbers (the caller's error)."""
    k, n, m = out.shape
    if v.shape != (n, m) or any(x is not None and x.shape != out.shape for x in (a, drive)):
        raise ValueError(f"lif_zero: shapes v {v.shape}, a {None if a is None else a.shape}, out {out.shape}")
    if bias.shape != (m,):
        raise ValueError(f"lif_zero: bias of shape {bias.shape}, want ({m},)")
    if (u is None) != (cu is None) or (u is not None and (u.shape != (n, m) or cu.shape != (m,))):
        raise ValueError(f"lif_zero: u {None if u is None else u.shape} and cu {None if cu is None else cu.shape}, "
                         f"want both ({n}, {m}) and ({m},) or neither")
    (cv, cva), (vth, vta) = _per_neuron(cv, m, "cv"), _per_neuron(vth, m, "vth")
    (pa, ta), (pd, td, strides) = _typed(a, "a"), _drive(drive)
    return int(_LIB.snnc_lif_zero(k, n, m, _ptr(v, np.float64), _ptr(u, np.float64), _ptr(cu, np.float64),
                                  pa, ta, pd, td, *strides, float(scale), _ptr(bias, np.float64), _ptr(cv, np.float64), cva,
                                  _ptr(vth, np.float64), vta, int(bool(ge)), _ptr(out, np.uint8)))


def im2col(x: np.ndarray, kernel_hw, stride, padding, dilation, out_hw, out: np.ndarray, out_r: int,
           out_q: int) -> None:
    """Patches of uint8 spikes ``x`` (R, C, H, W) into ``out`` (float32 or float64):
    ``out.flat[r * out_r + q * out_q + oy * Wo + ox] = x[r, c, oy * sh + i * dh - ph, ox * sw +
    j * dw - pw]`` (0 outside the image), ``q = (c * kh + i) * kw + j``: with ``out_r = K * Ho * Wo,
    out_q = Ho * Wo`` the patches are (R, K, Ho*Wo); with ``out_r = Ho * Wo, out_q = R * Ho * Wo``
    they are (K, R, Ho*Wo), K = C * kh * kw."""
    r, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (ho, wo) = kernel_hw, stride, padding, dilation, out_hw
    need = (r - 1) * out_r + (c * kh * kw - 1) * out_q + ho * wo
    if out.size < need or min(out_r, out_q) < ho * wo:
        raise ValueError(f"im2col: output of {out.size} entries, strides ({out_r}, {out_q}): too small")
    po, code = _typed(out, "out")
    fn = _LIB.snnc_im2col_u8_f32 if code == 1 else _LIB.snnc_im2col_u8_f64
    if fn(_ptr(x, np.uint8), r, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, po, out_r, out_q):
        raise MemoryError("im2col: no memory for a column plane")


def conv_events(x: np.ndarray, w_cio: np.ndarray, stride, padding, dilation, groups: int, out: np.ndarray) -> None:
    """Event-driven convolution of uint8 spike counts ``x`` (R, C, H, W) into ``out`` (R, O, Ho,
    Wo), float32 or float64 (overwritten): each output sums the weights of the non-zero inputs
    it reads (per input pixel, the list of its spiking channels). ``w_cio`` (C, kh, kw, P) in ``out``'s dtype: input channel c's weights to the O /
    groups outputs of its group (``w[g * opg + o, c % cpg, i, j]``), zero-padded to P outputs, a
    whole number of vectors (``events_weights``). The values must be integers whose every partial
    sum is exact in the dtype (the caller's kernel choice)."""
    r, c, h, w = x.shape
    _, kh, kw, opp = w_cio.shape
    ro, o_n, ho, wo = out.shape
    opg = o_n // max(1, groups)
    lanes = 32 // out.dtype.itemsize                       # the kernel adds whole 32-byte vectors
    if (ro != r or w_cio.shape[0] != c or o_n != groups * opg or c % groups or opp < opg or opp % lanes
            or h * w >= 1 << 31):
        raise ValueError(f"conv_events: x {x.shape}, weights {w_cio.shape}, out {out.shape}, groups {groups}")
    po, code = _typed(out, "out")
    if w_cio.dtype != out.dtype:
        raise TypeError(f"conv_events: weights {w_cio.dtype}, out {out.dtype}")
    fn = _LIB.snnc_conv_events_f32 if code == 1 else _LIB.snnc_conv_events_f64
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if fn(_ptr(x, np.uint8), r, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, c // groups, opg, opp, o_n,
          _ptr(w_cio, out.dtype.type), po):
        raise MemoryError("conv_events: no memory for the kernel's spike lists")


def events_weights(w: np.ndarray, groups: int, dtype) -> np.ndarray:
    """A conv kernel ``w`` (O, C/groups, kh, kw) as ``conv_events``' (C, kh, kw, P) in ``dtype``:
    input channel c = g * cpg + c' holds ``w[g * opg + o, c', i, j]`` for o < opg = O / groups,
    then zeros up to P, the next multiple of a 32-byte vector."""
    o_n, cpg, kh, kw = w.shape
    opg = o_n // groups
    lanes = 32 // np.dtype(dtype).itemsize
    opp = -(-opg // lanes) * lanes
    out = np.zeros((groups * cpg, kh, kw, opp), dtype)
    out[..., :opg] = w.reshape(groups, opg, cpg, kh, kw).transpose(0, 2, 3, 4, 1).reshape(groups * cpg, kh, kw, opg)
    return out
