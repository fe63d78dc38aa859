"""BS.1770 K-weighting in numpy: pyloudnorm's two biquads without scipy.signal.

pyloudnorm (the field's maintained BS.1770 meter) filters with scipy.signal.lfilter, and importing
scipy.signal costs a scan process about a second. The same filters are applied here: the
coefficients are pyloudnorm's (RBJ cookbook high shelf, +4 dB at 1500 Hz, Q 1/sqrt 2; high pass
at 38 Hz, Q 0.5), and the recursion runs in blocks: within a block of BLOCK samples the output
is a matrix product with the filter's impulse response, and the two samples of state carried
from block to block add their free response. That is the same linear recursion in float64, to
rounding (1e-15 of the signal; tests/tagger/test_loudness.py compares the loudness with
pyloudnorm's on real audio).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BLOCK = 128
"""Samples per block of the recursion: the matrix product costs BLOCK multiply-adds a sample."""
_NEGLIGIBLE = 1e-20
"""Carried state whose transfer over so many blocks is below this is dropped (it has decayed
far under float64 rounding)."""


@lru_cache(maxsize=8)
def k_weighting_coefficients(rate: float) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(b, a) of pyloudnorm's "K-weighting" stages, in order: high shelf, then high pass."""
    stages = []
    for gain, q, fc, kind in ((4.0, 1 / np.sqrt(2), 1500.0, "shelf"), (0.0, 0.5, 38.0, "pass")):
        big_a = 10 ** (gain / 40.0)
        w0 = 2.0 * np.pi * (fc / rate)
        alpha = np.sin(w0) / (2.0 * q)
        if kind == "shelf":
            b0 = big_a * ((big_a + 1) + (big_a - 1) * np.cos(w0) + 2 * np.sqrt(big_a) * alpha)
            b1 = -2 * big_a * ((big_a - 1) + (big_a + 1) * np.cos(w0))
            b2 = big_a * ((big_a + 1) + (big_a - 1) * np.cos(w0) - 2 * np.sqrt(big_a) * alpha)
            a0 = (big_a + 1) - (big_a - 1) * np.cos(w0) + 2 * np.sqrt(big_a) * alpha
            a1 = 2 * ((big_a - 1) - (big_a + 1) * np.cos(w0))
            a2 = (big_a + 1) - (big_a - 1) * np.cos(w0) - 2 * np.sqrt(big_a) * alpha
        else:
            b0 = (1 + np.cos(w0)) / 2
            b1 = -(1 + np.cos(w0))
            b2 = (1 + np.cos(w0)) / 2
            a0 = 1 + alpha
            a1 = -2 * np.cos(w0)
            a2 = 1 - alpha
        stages.append((np.array([b0, b1, b2]) / a0, np.array([a0, a1, a2]) / a0))
    return tuple(stages)


@lru_cache(maxsize=8)
def _recursion_blocks(a1: float, a2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For y[n] = v[n] - a1 y[n-1] - a2 y[n-2]: the (BLOCK, BLOCK) zero-state matrix, the
    (BLOCK, 2) free responses to the state (y[-1], y[-2]), and the (2, 2) map of the state from
    one block to the next."""
    impulse = np.zeros(BLOCK)
    free = np.zeros((BLOCK, 2))
    for n in range(BLOCK):
        impulse[n] = (1.0 if n == 0 else 0.0) - a1 * (impulse[n - 1] if n >= 1 else 0.0)
        impulse[n] -= a2 * (impulse[n - 2] if n >= 2 else 0.0)
        for k, state in enumerate(((1.0, 0.0), (0.0, 1.0))):
            prev1 = free[n - 1, k] if n >= 1 else state[0]
            prev2 = free[n - 2, k] if n >= 2 else (state[1] if n == 0 else state[0])
            free[n, k] = -a1 * prev1 - a2 * prev2
    lags = np.arange(BLOCK)[:, np.newaxis] - np.arange(BLOCK)[np.newaxis, :]
    zero_state = np.where(lags >= 0, impulse[np.clip(lags, 0, None)], 0.0)
    transfer = free[[-1, -2]]
    return zero_state, free, transfer


def biquad(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """scipy.signal.lfilter(b, a, x) of a second-order filter (a[0] == 1) from rest, float64."""
    x = np.asarray(x, dtype=np.float64)
    v = b[0] * x
    v[1:] += b[1] * x[:-1]
    v[2:] += b[2] * x[:-2]
    zero_state, free, transfer = _recursion_blocks(float(a[1]), float(a[2]))
    blocks = -(-x.size // BLOCK)
    padded = np.zeros(blocks * BLOCK)
    padded[: x.size] = v
    forced = padded.reshape(blocks, BLOCK) @ zero_state.T
    # State entering block k+1: sum over m of transfer^m applied to block (k - m)'s last two.
    ends = forced[:, [-1, -2]]
    state_after = np.zeros((blocks, 2))
    power = np.eye(2)
    for m in range(blocks):
        state_after[m:] += ends[: blocks - m] @ power.T
        power = transfer @ power
        if np.abs(power).max() < _NEGLIGIBLE:
            break
    entering = np.zeros((blocks, 2))
    entering[1:] = state_after[:-1]
    forced += entering[:, :1] * free[:, 0]
    forced += entering[:, 1:] * free[:, 1]
    return forced.reshape(-1)[: x.size]


def k_weighted(y: np.ndarray, rate: float) -> np.ndarray:
    """Mono audio through both K-weighting stages (float64), as pyloudnorm's Meter filters it."""
    out = np.asarray(y, dtype=np.float64)
    for b, a in k_weighting_coefficients(float(rate)):
        out = biquad(b, a, out)
    return out
