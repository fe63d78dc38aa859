"""Level: every analysed excerpt is brought to one loudness before any feature sees it.

A library mixes masters from about -4 to -20 LUFS, and playback gain is the user's business, not
the music's mood; a model fed raw levels learns that loud means angry (issue 13: 12 dB quieter
changed 27 % of the moods). So `normalise_level` measures the integrated loudness of what is
analysed (ITU-R BS.1770-4: K-weighting, 400-ms blocks, absolute gate at -70 LUFS and relative gate
10 LU below, as pyloudnorm, the field's maintained implementation, measures it; the K-weighting
filters run in numpy, `mertag.tagger.k_weighting`, so a scan need not import scipy.signal) and
scales the excerpt to TARGET_LUFS. One gain per excerpt, so the dynamics inside it (quiet verse,
loud chorus) are kept. A global gain then changes no feature, except through clipping or the
absolute gate.

Audio quieter than SILENCE_LUFS (digital silence measures -inf) has no mood to hear: it raises
SilentAudio, which the pipeline turns into a "silent" result rather than a guess.
"""

from __future__ import annotations

import warnings

import numpy as np

from mertag.tagger.audio import SAMPLE_RATE, AudioError
from mertag.tagger.k_weighting import k_weighted

TARGET_LUFS = -14.0
"""Loudness every excerpt is scaled to: the median of the 4Q training clips (-13.9 LUFS over a
random 48; their range is about -27 to -8) and the level streaming services play at, so typical
commercial audio is barely changed and musicnn sees the levels it was trained on."""
SILENCE_LUFS = -60.0
"""Below this integrated loudness an excerpt counts as silent. Digital silence measures -inf;
16-bit dither alone is about -90 LUFS; the quietest real masters (solo classical, ambient) are
around -35 to -40 LUFS integrated, well above. Between -70 (BS.1770's absolute gate, below which
no block counts) and -60 LUFS lies only hiss and room noise."""


class SilentAudio(AudioError):
    """What is analysed of a track is (near) silent: no mood, a "silent" result instead."""


BLOCK_SECONDS = 0.4
BLOCK_OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0


def integrated_loudness(y: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """BS.1770-4 integrated loudness of mono audio in LUFS; -inf when no block passes the gate.

    pyloudnorm's `Meter(sr).integrated_loudness` for one channel, step for step (its block
    bounds, its gates), on the K-weighted signal of `mertag.tagger.k_weighting`."""
    if y.size < int(BLOCK_SECONDS * sr):
        raise AudioError(f"too short to measure loudness ({y.size / sr:.2f} s)")
    weighted = k_weighted(y.astype(np.float64, copy=False), sr)
    step = 1.0 - BLOCK_OVERLAP
    length = y.size / sr
    blocks = int(np.round((length - BLOCK_SECONDS) / (BLOCK_SECONDS * step))) + 1
    j = np.arange(blocks, dtype=np.float64)
    # pyloudnorm's bounds (int() of the same products), as its slices clip them.
    lo = np.minimum((BLOCK_SECONDS * (j * step) * sr).astype(np.int64), y.size)
    hi = np.minimum((BLOCK_SECONDS * (j * step + 1) * sr).astype(np.int64), y.size)
    # A block's energy: the sums of the pieces between consecutive bounds (blocks overlap by
    # three quarters), added up; the same sums as block by block, to float64 rounding.
    bounds = np.unique(np.concatenate([lo, hi]))
    energy = np.square(weighted)
    pieces = np.add.reduceat(energy, bounds[:-1]) if bounds.size > 1 else np.zeros(0)
    if pieces.size:  # reduceat's last piece runs to the end of the signal, not to bounds[-1]
        pieces[-1] = np.sum(energy[bounds[-2] : bounds[-1]])
    before = np.concatenate([[0.0], np.cumsum(pieces)])
    z = (1.0 / (BLOCK_SECONDS * sr)) * (
        before[np.searchsorted(bounds, hi)] - before[np.searchsorted(bounds, lo)]
    )
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # All blocks gated out (silence): the mean of nothing, and log10 of 0, give -inf.
        warnings.simplefilter("ignore", RuntimeWarning)
        block_lufs = -0.691 + 10.0 * np.log10(z)
        above = block_lufs >= ABSOLUTE_GATE_LUFS
        relative_gate = -0.691 + 10.0 * np.log10(np.mean(z[above])) - 10.0
        gated = (block_lufs > relative_gate) & (block_lufs > ABSOLUTE_GATE_LUFS)
        value = -0.691 + 10.0 * np.log10(np.nan_to_num(np.mean(z[gated])))
    return float(value) if np.isfinite(value) else float("-inf")


def normalise_level(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """`y` scaled to TARGET_LUFS (float32); SilentAudio below SILENCE_LUFS."""
    loudness = integrated_loudness(y, sr)
    if loudness < SILENCE_LUFS:
        shown = "-inf" if loudness == float("-inf") else f"{loudness:.1f}"
        raise SilentAudio(f"silent ({shown} LUFS, below {SILENCE_LUFS:g} LUFS): no mood")
    gain = 10.0 ** ((TARGET_LUFS - loudness) / 20.0)
    return (y * np.float32(gain)).astype(np.float32, copy=False)
