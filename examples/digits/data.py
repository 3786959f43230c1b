"""Digits data set (scikit-learn, 8x8 images, gray levels 0..16) as rate-coded spikes.

Spike layout is SLAYER's: float32 ``(N, C=1, H=8, W=8, T)`` with time last, values 0/1.
Each pixel of intensity ``x`` in 0..16 spikes at every step independently with
probability ``MAX_RATE * x / 16`` (Bernoulli rate code). Everything is seeded: the same call
always returns the same arrays.
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

T = 32            # time steps per sample
MAX_RATE = 1.0    # spike probability per step of a full-intensity (16) pixel
TEST_SIZE = 360   # samples in the test split (stratified)
SPLIT_SEED = 0
SPIKE_SEED = 1


def rate_code(images, T=T, max_rate=MAX_RATE, seed=SPIKE_SEED):
    """Bernoulli rate code: ``images`` (N, 8, 8) gray levels 0..16 -> spikes (N, 1, 8, 8, T)."""
    p = max_rate * np.asarray(images, dtype=np.float64)[:, None, :, :, None] / 16.0
    rng = np.random.default_rng(seed)
    return (rng.random(p.shape[:-1] + (T,)) < p).astype(np.float32)


def load(T=T, max_rate=MAX_RATE, flat=False):
    """Return ``(x_train, y_train, x_test, y_test)``.

    ``x_*``: float32 spikes (N, 1, 8, 8, T), or (N, 64, T) with ``flat=True`` (row-major
    pixels, the order of ``Flatten``). ``y_*``: int64 labels 0..9. Split: 1437 train / 360
    test, stratified, fixed seed; train and test spikes use different fixed seeds.
    """
    digits = load_digits()
    img_tr, img_te, y_tr, y_te = train_test_split(
        digits.images, digits.target, test_size=TEST_SIZE,
        stratify=digits.target, random_state=SPLIT_SEED)
    x_tr = rate_code(img_tr, T, max_rate, seed=SPIKE_SEED)
    x_te = rate_code(img_te, T, max_rate, seed=SPIKE_SEED + 1)
    if flat:
        x_tr, x_te = x_tr.reshape(len(x_tr), 64, T), x_te.reshape(len(x_te), 64, T)
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def predict(spikes_out):
    """Predicted class per sample: argmax over classes of the spike count (sum over time).

    ``spikes_out``: array-like (N, 10, T) (numpy or torch). Returns int64 numpy (N,).
    Ties go to the lowest class index (numpy argmax).
    """
    if hasattr(spikes_out, "detach"):
        spikes_out = spikes_out.detach().cpu().numpy()
    counts = np.asarray(spikes_out).reshape(len(spikes_out), -1, np.shape(spikes_out)[-1]).sum(-1)
    return counts.argmax(axis=1).astype(np.int64)
