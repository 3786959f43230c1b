"""Offline data for the method examples, all made from scikit-learn's digits (8x8, 0..16).

Same stratified split as examples/digits (1437 train / 360 test, seed 0). Every generator is
seeded, so a call always returns the same arrays. Activity layout: float32 (N, C[, H, W], T).

- ``static(T, max_rate)``: Bernoulli rate code, p = max_rate * pixel/16 per step, (N, 64, T)
  (or (N, 1, 8, 8, T) with ``image=True``).
- ``saccade(T)``: N-MNIST-like event digits. The digit (on a 10x10 canvas) moves along three
  straight saccades (a triangle, 1 pixel amplitude, as the N-MNIST camera does); a simulated
  event camera emits an ON (OFF) event where the intensity rose (fell) by more than a contrast
  threshold since that pixel's last event, plus sparse background noise. (N, 2*10*10, T)
  (or (N, 2, 10, 10, T) with ``image=True``).
- ``rows(steps_per_row, max_rate)``: sequential digits, one row per ``steps_per_row`` steps:
  8 input channels (the row's pixels, Bernoulli), T = 8 * steps_per_row, (N, 8, T).

Validation: ``holdout(y_tr)`` -> (fit, val) indices into the training split: a stratified,
seeded hold-out of ``VAL_SIZE`` = 287 samples (20 % of 1437); ``validation(x_tr, y_tr)`` applies
it to any generator's training arrays (``x_tr[fit], y_tr[fit], x_tr[val], y_tr[val]``). The
generators themselves are unchanged: the train/test arrays are the same with or without it, and
settings chosen on the hold-out never see the test split.
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_SIZE, SPLIT_SEED = 360, 0
VAL_SIZE, VAL_SEED = 287, 0


def split():
    d = load_digits()
    img_tr, img_te, y_tr, y_te = train_test_split(d.images / 16.0, d.target, test_size=TEST_SIZE,
                                                  stratify=d.target, random_state=SPLIT_SEED)
    return img_tr, y_tr.astype(np.int64), img_te, y_te.astype(np.int64)


def holdout(y_tr, size=VAL_SIZE, seed=VAL_SEED):
    """Stratified hold-out of the training split: (fit, val) sorted index arrays, disjoint,
    together ``range(len(y_tr))``; the same for the same labels, size and seed."""
    idx = np.arange(len(y_tr))
    fit, val = train_test_split(idx, test_size=size, stratify=y_tr, random_state=seed)
    return np.sort(fit), np.sort(val)


def validation(x_tr, y_tr, size=VAL_SIZE, seed=VAL_SEED):
    """(x_fit, y_fit, x_val, y_val): the training arrays of any generator split by ``holdout``."""
    fit, val = holdout(y_tr, size, seed)
    return x_tr[fit], y_tr[fit], x_tr[val], y_tr[val]


def _bern(p, T, seed):
    rng = np.random.default_rng(seed)
    return (rng.random(p.shape + (T,)) < p[..., None]).astype(np.float32)


def static(T=8, max_rate=1.0, image=False):
    img_tr, y_tr, img_te, y_te = split()
    x_tr, x_te = _bern(max_rate * img_tr, T, 1), _bern(max_rate * img_te, T, 2)
    if image:
        return x_tr[:, None], y_tr, x_te[:, None], y_te
    return x_tr.reshape(len(x_tr), 64, T), y_tr, x_te.reshape(len(x_te), 64, T), y_te


def _shift(img, dy, dx):
    """Bilinear shift of (N, H, W) images by (dy, dx) pixels (zero outside)."""
    n, h, w = img.shape
    y0, x0 = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - y0, dx - x0
    out = np.zeros_like(img)
    for oy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
        for ox, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            if wy * wx == 0:
                continue
            src = img[:, max(0, -oy):h - max(0, oy), max(0, -ox):w - max(0, ox)]
            out[:, max(0, oy):max(0, oy) + src.shape[1], max(0, ox):max(0, ox) + src.shape[2]] += wy * wx * src
    return out


def _events(images, T, seed, contrast=0.12, noise=0.002):
    rng = np.random.default_rng(seed)
    canvas = np.zeros((len(images), 10, 10))
    canvas[:, 1:9, 1:9] = images
    corners = [(0.0, 0.0), (1.0, 0.5), (0.0, 1.0), (0.0, 0.0)]        # three saccades
    ref = canvas.copy()
    out = np.zeros((len(images), 2, 10, 10, T), np.float32)
    for t in range(T):
        seg = min(int(3 * t / T), 2)
        a = (3 * t / T) - seg
        (y0, x0), (y1, x1) = corners[seg], corners[seg + 1]
        cur = _shift(canvas, y0 + a * (y1 - y0), x0 + a * (x1 - x0))
        diff = cur - ref
        on, off = diff > contrast, diff < -contrast
        ref = ref + contrast * on - contrast * off
        out[:, 0, :, :, t] = on | (rng.random(on.shape) < noise)
        out[:, 1, :, :, t] = off | (rng.random(off.shape) < noise)
    return out


def saccade(T=60, image=False):
    img_tr, y_tr, img_te, y_te = split()
    x_tr, x_te = _events(img_tr, T, 3), _events(img_te, T, 4)
    if not image:
        x_tr, x_te = x_tr.reshape(len(x_tr), 200, T), x_te.reshape(len(x_te), 200, T)
    return x_tr, y_tr, x_te, y_te


def rows(steps_per_row=6, max_rate=1.0):
    img_tr, y_tr, img_te, y_te = split()

    def seq(img, seed):
        p = np.repeat(img.transpose(0, 2, 1), steps_per_row, axis=2) * max_rate     # (N, 8 cols, 8*R)
        rng = np.random.default_rng(seed)
        return (rng.random(p.shape) < p).astype(np.float32)
    return seq(img_tr, 5), y_tr, seq(img_te, 6), y_te


DATASETS = {"static": static, "saccade": saccade, "rows": rows}
