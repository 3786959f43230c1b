"""Calibrated quantization: the selection logic (pure: statistics in, scales out).

A float-trained population (``CubaLIF.state_scale == 0``) has three free Loihi choices:

- its state scale ``S = 64 k`` (u, v are integers in units of 1/S; any integer ``k >= 1``);
- per incoming Dense synapse a weight exponent ``e`` in 0..7 (Conv and pooling have none):
  the 8-bit mantissa ``m = round(W k / 2**e)`` (even values in [-256, 254] for mixed signs), so
  a weight step of ``2**(e+1) / k`` threshold units and a clip level ``254 * 2**e / k``;
- its threshold mantissa ``vth`` (``v > vth << 6``), nominally ``round(threshold * k)``.

Candidates come from the weight distribution: a clip level at each of a few quantiles of
``|W|`` (1.0 = no clipping); for each, ``k`` and the exponents that put the clip level at the
top of the 8-bit range, with the largest ``k`` the state range allows (finer u, v: smaller
round-toward-zero error in the 12-bit decays). ``k`` is bounded by the calibration statistics:
the largest |u| and |v| seen in the float model must stay within 2**22 (half the 24-bit range),
the threshold mantissa within 17 bits and the bias within its 13-bit mantissa and 3-bit exponent.

Which candidate wins is decided by spikes, not by weight error: the orchestration
(``snnc/calibrate.py``) runs each candidate in fixed point on the calibration data, with the
populations before it already calibrated, and ``best`` picks the one whose spikes agree most
with the float model's. The orchestration also tries a bias correction per population (its
mean input error from weight rounding, removed through the bias) under the same score. The chosen
scales are pinned in ``graph.metadata["scales"]``, which the
quantization pass honours (``snnc/compiler/quantize.py``).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .fixed import BIAS_MANT_MAX, VTH_MAX
from .printing import table

QUANTILES = (1.0, 0.9999, 0.999, 0.995, 0.99, 0.98, 0.95, 0.9)
THRESHOLD_STEPS = (-0.03, -0.015, 0.015, 0.03)     # relative threshold-mantissa refinements
STATE_LIMIT = 1 << 22                              # |u|, |v| kept below half the 24-bit range
MAX_EXP = 7

Synapses = Dict[str, Tuple[np.ndarray, bool]]       # name -> (float weight, takes an exponent)


def _top(w: np.ndarray) -> int:
    """Largest mantissa magnitude of Lava's 8-bit rules: 255 for one sign, 254 for mixed signs."""
    return 255 if (np.all(w >= 0) or np.all(w <= 0)) else 254


def scale_limit(threshold, u_max: float, v_max: float, bias=0.0, state_limit: float = STATE_LIMIT) -> int:
    """Largest ``k = S / 64`` that keeps the threshold mantissa within 17 bits, the calibration
    data's |u| and |v| within ``state_limit`` (default: half the 24-bit range, a margin for data
    beyond the calibration set) and ``S * bias`` within a 13-bit mantissa << 7."""
    th = float(np.max(np.abs(threshold)))
    lim = [VTH_MAX / max(th, 1e-12), state_limit / (64.0 * max(u_max, v_max, th, 1e-12))]
    b = float(np.max(np.abs(bias)))
    if b > 0:
        lim.append(BIAS_MANT_MAX * (1 << MAX_EXP) / (64.0 * b))
    return max(1, int(np.floor(min(lim))))


def clip_levels(w: np.ndarray, quantiles: Sequence[float] = QUANTILES) -> List[float]:
    """Distinct positive clip levels ``quantile(|w|, q)``, largest first."""
    a = np.abs(np.asarray(w, dtype=np.float64)).ravel()
    a = a[a > 0]
    if not a.size:
        return []
    levels = sorted({float(np.quantile(a, q)) for q in quantiles}, reverse=True)
    return [c for c in levels if c > 0]


def _fit_exp(top: int, c: float, k: int) -> int:
    """Smallest exponent whose range ``top * 2**e / k`` reaches the clip level ``c``."""
    e = 0
    while e < MAX_EXP and top * (2 ** e) / k < c:
        e += 1
    return e


def scales_for_clip(synapses: Synapses, q: float, k_max: int, fixed_k: int = 0) -> Tuple[int, Dict[str, int]]:
    """``(S, {synapse: exponent})`` that puts each synapse's ``q``-quantile of |W| at the top of
    its 8-bit range, as far as one shared S allows (``fixed_k``: S/64 set by the model)."""
    levels = {s: (clip_levels(w, (q,)) or [0.0])[0] for s, (w, _) in synapses.items()}
    tops = {s: _top(w) for s, (w, _) in synapses.items()}
    live = {s: c for s, c in levels.items() if c > 0}
    if fixed_k:
        k = fixed_k
    elif not live:
        k = k_max
    else:
        no_exp = [s for s in live if not synapses[s][1]]
        if no_exp:          # Conv / pooling: S alone sets the step
            k = min(int(np.floor(tops[s] / live[s])) for s in no_exp)
        else:               # all Dense: the largest synapse sets k exactly, with its largest exponent
            main = max(live, key=lambda s: synapses[s][0].size)
            k = 0
            for e in range(MAX_EXP, -1, -1):
                k = int(np.floor(tops[main] * 2 ** e / live[main]))
                if k <= k_max:
                    break
        k = int(min(max(k, 1), k_max))
    exps = {s: (_fit_exp(tops[s], live[s], k) if (s in live and synapses[s][1]) else 0) for s in synapses}
    return 64 * k, exps


def candidates(synapses: Synapses, k_max: int, fixed_k: int = 0,
               quantiles: Sequence[float] = QUANTILES) -> List[Tuple[int, Dict[str, int]]]:
    """Distinct ``(S, exponents)`` candidates, one per clip quantile (no clipping first)."""
    out: List[Tuple[int, Dict[str, int]]] = []
    for q in quantiles:
        c = scales_for_clip(synapses, q, k_max, fixed_k)
        if c not in out:
            out.append(c)
    return out


def threshold_candidates(vth: np.ndarray, steps: Sequence[float] = THRESHOLD_STEPS) -> List[np.ndarray]:
    """Threshold mantissas near ``vth`` (relative steps), distinct, each at least 1."""
    vth = np.asarray(vth, dtype=np.int64)
    out: List[np.ndarray] = []
    for r in steps:
        c = np.clip(vth + np.round(vth * r).astype(np.int64), 1, VTH_MAX)
        if not np.array_equal(c, vth) and not any(np.array_equal(c, o) for o in out):
            out.append(c)
    return out


def spike_score(fixed: np.ndarray, ref: np.ndarray) -> Tuple[float, float]:
    """(fraction of (sample, neuron, step) entries that differ, relative spike-count error)."""
    fixed, ref = np.asarray(fixed, bool), np.asarray(ref, bool)
    mismatch = float(np.mean(fixed != ref)) if ref.size else 0.0
    count = abs(int(fixed.sum()) - int(ref.sum())) / max(1, int(ref.sum()))
    return mismatch, count


def readout_error(fixed: np.ndarray, ref: np.ndarray) -> float:
    """Relative RMS error of read-out values: ``rms(fixed - ref) / rms(ref)`` (0 when both are 0)."""
    fixed, ref = np.asarray(fixed, np.float64), np.asarray(ref, np.float64)
    err = float(np.sqrt(np.mean((fixed - ref) ** 2))) if ref.size else 0.0
    scale = float(np.sqrt(np.mean(ref ** 2))) if ref.size else 0.0
    return err / scale if scale > 0 else err


def best(scores: Sequence[Tuple[float, float]], state_scales: Sequence[int]) -> int:
    """Index of the best candidate: fewest differing spikes, then spike count, then the finer S."""
    keys = [(round(m, 12), round(c, 12), -s) for (m, c), s in zip(scores, state_scales)]
    return int(min(range(len(keys)), key=keys.__getitem__))


def _grid(w: np.ndarray):
    """Lava's 8-bit mantissa range and step for these weights' signs: (lo, hi, step)."""
    if np.all(w >= 0):
        return 0, 255, 1
    if np.all(w <= 0):
        return -255, 0, 1
    return -256, 254, 2


def weight_stats(w: np.ndarray, mantissa: np.ndarray, exp: int, w_scale: int) -> Dict[str, float]:
    """Clipped and rounded fractions, effective bits (log2 of the mantissa levels the weights
    span) and RMS error (threshold units) of one synapse's quantization (``w_scale = S/64``)."""
    w = np.asarray(w, dtype=np.float64)
    if not w.size:
        return dict(clipped=0.0, rounded=0.0, effective_bits=0.0, rms_error=0.0)
    m = np.asarray(mantissa, dtype=np.float64)
    x = w * w_scale / 2.0 ** exp
    lo, hi, step = _grid(w)
    q = np.round(x / step) * step
    clipped = (q < lo) | (q > hi)
    rounded = (q != x) & ~clipped
    span = (m.max() - m.min()) / step + 1
    deq = m * 2.0 ** exp / w_scale
    return dict(clipped=float(np.mean(clipped)), rounded=float(np.mean(rounded)),
                effective_bits=float(np.log2(max(span, 1))),
                rms_error=float(np.sqrt(np.mean((w - deq) ** 2))))


def calibration_table(graph) -> str:
    """The per-layer calibration report (``graph.metadata["calibration"]``) as a table."""
    cal = graph.metadata.get("calibration") or {}
    rows = []
    for r in cal.get("layers", []):
        syn = r.get("synapses", {})
        rows.append([r["population"], r["state_scale"], r["vth"],
                     ", ".join(f"{s}: e{v['weight_exp']}" for s, v in syn.items()) or "-",
                     ", ".join(f"{100 * v['clipped']:.2f}" for v in syn.values()) or "-",
                     ", ".join(f"{100 * v['rounded']:.1f}" for v in syn.values()) or "-",
                     ", ".join(f"{v['effective_bits']:.1f}" for v in syn.values()) or "-",
                     _quality(r, "_naive"), _quality(r, "")])
    head = ["population", "S", "vth", "weight exp", "clipped %", "rounded %", "eff. bits",
            "agreement naive", "agreement calibrated"]
    out = table(rows, head)
    if "samples" in cal:
        out += (f"\nagreement with the float model on {cal['samples']} calibration samples x {cal['steps']} "
                "steps: spikes, every (sample, neuron, step) entry; read-outs, relative RMS error; output: ")
        if cal.get("kept_uncalibrated"):
            out = "calibration kept the uncalibrated scales (no candidate did better on these data)\n" + out
        if "output_error" in cal:
            out += (f"naive rms err {100 * cal['output_error_naive']:.3f} %, calibrated "
                    f"{100 * cal['output_error']:.3f} %")
        else:
            out += (f"naive {100 * cal['output_agreement_naive']:.3f} %, calibrated "
                    f"{100 * cal['output_agreement']:.3f} %")
    return out


def _quality(row: Dict, suffix: str) -> str:
    if f"agreement{suffix}" in row:
        return f"{100 * row[f'agreement{suffix}']:.3f} %"
    return f"rms err {100 * row[f'readout_error{suffix}']:.3f} %"
