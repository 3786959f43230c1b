"""Fold average (sum) pooling into the synapse that reads it: an exact compiler pass.

STBP pools spikes with ``avg_pool2d`` and feeds the result (values 0, 1/4, ...) to the next
synapse; there is no neuron in between, and Loihi cannot chain two synapses. Pooling and the
next synapse are both linear, so their composition is one synapse:

- ``SumPool2d -> Flatten -> Dense(W)`` becomes ``Flatten -> Dense(W @ P)`` with ``P`` the pooling
  matrix (the pooled neurons are spatially replicated, each weight times the pool weight);
- ``SumPool2d(k, s) -> Conv2d(W, stride 1, pad p)`` becomes one ``Conv2d`` with kernel
  ``k + s*(K-1)``, stride ``s``, padding ``s*p`` and ``W'[s*i + a, s*j + b] = w_pool * W[i, j]``.
  The pass checks that the folded conv equals the composition (as matrices, or on random
  inputs for large layers) and raises ``SnncError`` otherwise; it never approximates.

Every fold is listed in ``graph.metadata['folds']``.
"""
from __future__ import annotations

import numpy as np

from .conv import conv2d, conv_matrix
from ..errors import SnncError
from .ir import Conv2d, CubaLI, CubaLIF, Dense, Flatten, Graph, SumPool2d, _pair

MATRIX_CHECK_MAX = 4 * 1024 * 1024


def _matrix(w, in_shape, out_shape, stride, padding, dilation, groups):
    return conv_matrix(np.asarray(w, np.float64), in_shape, out_shape, _pair(stride), _pair(padding),
                       _pair(dilation), groups)


def _pool_matrix(pool: SumPool2d, in_shape, out_shape):
    c = in_shape[0]
    return _matrix(pool.as_conv_weight(c), in_shape, out_shape, pool.stride, pool.padding, (1, 1), c)


def _fold_conv(name, pool: SumPool2d, conv: Conv2d, in_shape, mid_shape, out_shape) -> Conv2d:
    (k1, k2), (s1, s2) = _pair(pool.kernel), _pair(pool.stride)
    if _pair(conv.stride) != (1, 1) or _pair(conv.dilation) != (1, 1) or _pair(pool.padding) != (0, 0):
        raise SnncError(f"cannot fold pooling into conv {name!r}: needs conv stride 1, dilation 1 and "
                        "unpadded pooling")
    w = np.asarray(conv.weight, np.float64)
    o, cg, kh, kw = w.shape
    g = conv.groups
    c_in = in_shape[0]
    # the pooling is depthwise: input channel c of the conv reads pooled channel c
    wf = np.zeros((o, cg, k1 + s1 * (kh - 1), k2 + s2 * (kw - 1)))
    for i in range(kh):
        for j in range(kw):
            wf[:, :, s1 * i:s1 * i + k1, s2 * j:s2 * j + k2] += pool.weight * w[:, :, i:i + 1, j:j + 1]
    ph, pw = _pair(conv.padding)
    folded = Conv2d(wf, (s1, s2), (s1 * ph, s2 * pw), (1, 1), g)
    try:
        got = folded.output_shape(in_shape)
    except Exception as e:
        raise SnncError(f"cannot fold pooling into conv {name!r}: {e}") from None
    if tuple(got) != tuple(out_shape):
        raise SnncError(f"cannot fold pooling into conv {name!r}: the folded conv gives {got}, not {out_shape}")
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    if n_in * n_out <= MATRIX_CHECK_MAX:
        want = _matrix(w, mid_shape, out_shape, conv.stride, conv.padding, (1, 1), g) @ _pool_matrix(pool, in_shape, mid_shape)
        have = _matrix(wf, in_shape, out_shape, folded.stride, folded.padding, (1, 1), g)
        ok = np.allclose(want, have, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))
    else:
        rng = np.random.default_rng(0)
        x = (rng.random((2,) + tuple(in_shape)) < 0.5).astype(np.float64)
        pooled = conv2d(x, pool.as_conv_weight(c_in), _pair(pool.stride), (0, 0), (1, 1), c_in)
        want = conv2d(pooled, w, (1, 1), _pair(conv.padding), (1, 1), g)
        have = conv2d(x, wf, folded.stride, folded.padding, (1, 1), g)
        ok = np.allclose(want, have, rtol=0, atol=1e-9)
    if not ok:
        raise SnncError(f"cannot fold pooling into conv {name!r} exactly (the pooled map's padding "
                        "reaches real input pixels); use a size the pool stride tiles exactly")
    return folded


def fold_pooling(graph: Graph) -> Graph:
    """Return a copy of ``graph`` where no SumPool2d feeds a synapse (see module doc)."""
    targets = [n for n, node in graph.nodes.items() if isinstance(node, SumPool2d)
               and any(not isinstance(graph.nodes[d], (CubaLIF, CubaLI)) for d in graph.successors(n))]
    if not targets:
        return graph
    g = graph.copy()
    shapes = graph.shapes()
    folds = list(g.metadata.get("folds", []))
    for p in targets:
        pool = g.nodes[p]
        srcs = g.predecessors(p)
        in_shape, mid_shape = shapes[srcs[0]], shapes[p]
        for d in list(g.successors(p)):
            node = g.nodes[d]
            if isinstance(node, (CubaLIF, CubaLI)):
                continue
            if isinstance(node, Conv2d):
                if len(g.predecessors(d)) != 1:
                    raise SnncError(f"cannot fold pooling {p!r} into conv {d!r}: it has other inputs")
                g.replace(d, _fold_conv(d, pool, node, in_shape, mid_shape, shapes[d]))
                _bypass(g, p, d, srcs)
                folds.append(dict(pool=p, into=d, kind="conv", kernel=list(g.nodes[d].weight.shape[2:])))
            elif isinstance(node, Flatten):
                dense = g.successors(d)
                if not dense or any(not isinstance(g.nodes[x], Dense) or len(g.predecessors(x)) != 1
                                    for x in dense) or len(g.predecessors(d)) != 1:
                    raise SnncError(f"cannot fold pooling {p!r}: flatten {d!r} must feed only Dense synapses")
                P = _pool_matrix(pool, in_shape, mid_shape)
                for x in dense:
                    g.replace(x, Dense(np.asarray(g.nodes[x].weight, np.float64) @ P))
                    folds.append(dict(pool=p, into=x, kind="dense", inputs=int(P.shape[1])))
                _bypass(g, p, d, srcs)
            else:
                raise SnncError(f"pooling {p!r} feeds {d!r} ({type(node).__name__}): snnc folds pooling "
                                "only into a Conv2d or Flatten->Dense, or keeps it as a synapse into neurons")
        if not g.successors(p):
            g.remove(p)
    g.metadata["folds"] = folds
    return g


def _bypass(g: Graph, pool: str, dst: str, srcs) -> None:
    """``dst`` reads the pooling's sources instead of the pooling."""
    g.disconnect(pool, dst)
    for s in srcs:
        g.connect(s, dst)
