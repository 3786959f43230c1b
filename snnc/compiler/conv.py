"""Convolution kernels the compiler needs (folding, estimates) and the engines reuse.

Cross-correlation with PyTorch semantics, exact for integer arrays (numpy only).
"""
from __future__ import annotations

import numpy as np

def conv2d(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Cross-correlation of ``x`` (N, C, H, W) with ``w`` (O, C/groups, kh, kw), exact for ints."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, ho, wo), dtype=np.result_type(x, w))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    return out


def conv_matrix(w: np.ndarray, in_shape, out_shape, stride, padding, dilation, groups) -> np.ndarray:
    """The IR convolution (cross-correlation, PyTorch semantics) as a matrix M[out, in] over the
    C-order flat IR neurons: y.ravel() = M @ x.ravel()."""
    c_in, h_in, w_in = in_shape
    c_out, h_out, w_out = out_shape
    o_n, cpg, kh, kw = w.shape
    opg = o_n // groups
    o, ho, wo, c, i, j = np.meshgrid(np.arange(o_n), np.arange(h_out), np.arange(w_out),
                                     np.arange(cpg), np.arange(kh), np.arange(kw), indexing="ij")
    hi = ho * stride[0] - padding[0] + i * dilation[0]
    wi = wo * stride[1] - padding[1] + j * dilation[1]
    ci = (o // opg) * cpg + c
    ok = (hi >= 0) & (hi < h_in) & (wi >= 0) & (wi < w_in)
    rows = ((o * h_out + ho) * w_out + wo)[ok]
    cols = ((ci * h_in + hi) * w_in + wi)[ok]
    m = np.zeros((c_out * h_out * w_out, c_in * h_in * w_in), dtype=w.dtype)
    m[rows, cols] = np.broadcast_to(w[:, None, None], o.shape)[ok]   # each (row, col) at most once
    return m
