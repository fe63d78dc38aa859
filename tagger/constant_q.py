"""Constant- and variable-Q transforms and their chroma in numpy (and soxr), as librosa 0.11.

`librosa.cqt` / `librosa.vqt` for the tagger's arguments (Hann wavelets normalised to unit L1
norm, sparsity 0.01, soxr_hq resampling, scaled by the filter lengths): the audio is first
decimated by soxr as far as the highest filter allows, then each octave, from the top, is the
product of an STFT (rectangular window) with the FFT of that octave's wavelets, and the audio
halved again. The filters depend on the sample rate and the tuning only and are kept per process.
Differences from librosa: the wavelets' FFT runs in numpy's complex64 where librosa calls scipy's,
and the product is a dense one with the sparsified filters (over the FFT bins they reach) where
librosa uses scipy.sparse: the values agree to float32 precision (tests/tagger/test_spectral.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mertag.tagger.spectral import HANN_BANDWIDTH, hann, normalize

C1_HZ = 440.0 * (2.0 ** ((24 - 69.0) / 12.0))
"""librosa's default lowest frequency, note_to_hz("C1")."""
SPARSITY = 0.01
FILTER_CACHE_SIZE = 512
"""Octave filter banks kept per process: one per (octave, tuning, transform), the band of FFT
bins their filters reach (at 16 kHz ~20 kB for a CQT octave, 36 x ~80 complex64, ~1 kB for a
VQT one), so the 14 banks of a tuning estimate are built once, and 512 hold ~36 tunings."""


def _relative_bandwidth(freqs: np.ndarray) -> np.ndarray:
    bpo = np.empty_like(freqs)
    logf = np.log2(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    return (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)


def _wavelet_lengths(
    freqs: np.ndarray, sr: float, variable: bool, alpha: np.ndarray
) -> tuple[np.ndarray, float]:
    """librosa.filters.wavelet_lengths (Hann, filter_scale 1; gamma 0, or None when variable)."""
    gamma = alpha * 24.7 / 0.108 if variable else 0
    q = float(1) / alpha
    f_cutoff = max(freqs * (1 + 0.5 * HANN_BANDWIDTH / q) + 0.5 * gamma)
    lengths = q * sr / (freqs + gamma / alpha)
    return lengths, f_cutoff


def _frequencies(n_bins: int, bins_per_octave: int, tuning: float) -> np.ndarray:
    fmin = C1_HZ * 2.0 ** (tuning / bins_per_octave)
    ratios = 2.0 ** ((0.0 + np.arange(0, bins_per_octave, dtype=float)) / bins_per_octave)
    n_octaves = np.ceil(n_bins / bins_per_octave)
    all_ratios = np.multiply.outer(2.0 ** np.arange(n_octaves), ratios).flatten()[:n_bins]
    return np.sort(all_ratios) * fmin


def _sparsify_rows(x: np.ndarray, quantile: float) -> np.ndarray:
    """librosa.util.sparsify_rows, dense: each row keeps its largest entries that hold all but
    `quantile` of its L1 norm, the rest set to zero."""
    mags = np.abs(x)
    norms = np.sum(mags, axis=1, keepdims=True)
    mag_sort = np.sort(mags, axis=1)
    cumulative_mag = np.cumsum(mag_sort / norms, axis=1)
    threshold_idx = np.argmin(cumulative_mag < quantile, axis=1)
    keep = mags >= mag_sort[np.arange(len(x)), threshold_idx][:, np.newaxis]
    return np.where(keep, x, 0).astype(x.dtype)


@lru_cache(maxsize=FILTER_CACHE_SIZE)
def _octave_filters(
    sr: float, freqs: tuple[float, ...], alpha: tuple[float, ...], variable: bool, scale: float
) -> tuple[np.ndarray, int, slice]:
    """One octave's wavelet filters in the frequency domain, times `scale` (librosa's
    `__vqt_filter_fft`): the (bins, n) complex64 band of FFT bins where any of them is not zero,
    that band's slice of the n_fft // 2 + 1 bins, and n_fft."""
    freqs_a = np.asarray(freqs)
    lengths, _ = _wavelet_lengths(freqs_a, sr, variable, np.asarray(alpha))
    filters = []
    for ilen, freq in zip(lengths, freqs_a, strict=True):
        angles = np.arange(-ilen // 2, ilen // 2, dtype=float) * 2 * np.pi * freq / sr
        sig = np.cos(angles) + 1j * np.sin(angles)
        sig *= hann(len(sig))
        filters.append(normalize(sig, norm=1, axis=0))
    n_fft = int(2.0 ** (np.ceil(np.log2(max(lengths)))))
    padded = []
    for filt in filters:
        lpad = int((n_fft - filt.shape[0]) // 2)
        padded.append(np.pad(filt, (lpad, int(n_fft - filt.shape[0] - lpad))))
    basis = np.asarray(padded, dtype=np.complex64)
    basis *= lengths[:, np.newaxis] / float(n_fft)
    fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : (n_fft // 2) + 1]
    fft_basis = _sparsify_rows(fft_basis, SPARSITY)
    fft_basis *= scale
    used = np.flatnonzero(np.any(fft_basis != 0, axis=0))
    band = slice(int(used[0]), int(used[-1]) + 1)
    kept = np.ascontiguousarray(fft_basis[:, band])
    kept.setflags(write=False)
    return kept, n_fft, band


def _octave_response(
    y: np.ndarray, n_fft: int, hop_length: int, basis: np.ndarray, band: slice
) -> np.ndarray:
    """librosa's `__cqt_response`: the STFT of `y` (rectangular window, centred, zero-padded,
    in float64 like librosa's, stored complex64) times the octave's filters, on the FFT bins
    where the filters are not zero (librosa's sparse product skips the others too)."""
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    # The window of ones makes float64 frames, as librosa's product with its float64 window.
    spectrum = np.fft.rfft(frames * np.ones(n_fft), axis=-1)[:, band].astype(np.complex64)
    return (spectrum @ basis.T).T


def _halve(y: np.ndarray, factor: int) -> np.ndarray:
    """librosa.resample(y, orig_sr=factor, target_sr=1, res_type="soxr_hq", scale=True)."""
    import soxr

    ratio = 1.0 / factor
    n_samples = int(np.ceil(y.shape[-1] * ratio))
    y_hat = soxr.resample(y, factor, 1, quality="soxr_hq")
    if y_hat.shape[-1] > n_samples:
        y_hat = y_hat[:n_samples]
    elif y_hat.shape[-1] < n_samples:
        y_hat = np.pad(y_hat, (0, n_samples - y_hat.shape[-1]))
    y_hat /= np.sqrt(ratio)
    return np.asarray(y_hat, dtype=y.dtype)


def _two_factors(x: int) -> int:
    count = 0
    while x > 0 and x % 2 == 0:
        count += 1
        x //= 2
    return count


def vqt(
    y: np.ndarray,
    sr: float,
    hop_length: int,
    n_bins: int,
    bins_per_octave: int,
    tuning: float,
    variable: bool,
) -> np.ndarray:
    """librosa.vqt(y, sr=sr, hop_length=..., n_bins=..., bins_per_octave=..., tuning=tuning,
    gamma=None if variable else 0), i.e. librosa.cqt when not `variable`: complex64 (n_bins,
    frames)."""
    n_octaves = int(np.ceil(float(n_bins) / bins_per_octave))
    n_filters = min(bins_per_octave, n_bins)
    freqs = _frequencies(n_bins, bins_per_octave, tuning)
    alpha = _relative_bandwidth(freqs)
    _, filter_cutoff = _wavelet_lengths(freqs, sr, variable, alpha)
    nyquist = sr / 2.0

    downsample_count1 = max(0, int(np.ceil(np.log2(nyquist / filter_cutoff)) - 1) - 1)
    downsample_count2 = max(0, _two_factors(hop_length) - n_octaves + 1)
    downsample_count = min(downsample_count1, downsample_count2)
    if downsample_count > 0:
        factor = 2**downsample_count
        hop_length //= factor
        y = _halve(y, factor)
        sr = sr / float(factor)

    responses = []
    my_y, my_sr, my_hop = y, sr, hop_length
    for i in range(n_octaves):
        sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
        basis, n_fft, band = _octave_filters(
            my_sr,
            tuple(freqs[sl].tolist()),
            tuple(alpha[sl].tolist()),
            variable,
            float(np.sqrt(sr / my_sr)),
        )
        responses.append(_octave_response(my_y, n_fft, my_hop, basis, band))
        if my_hop % 2 == 0:
            my_hop //= 2
            my_sr /= 2.0
            my_y = _halve(my_y, 2)

    max_col = min(r.shape[-1] for r in responses)
    out = np.empty((n_bins, max_col), dtype=np.complex64, order="F")
    end = n_bins
    for r in responses:
        n_oct = r.shape[-2]
        if end < n_oct:
            out[:end] = r[-end:, :max_col]
        else:
            out[end - n_oct : end] = r[:, :max_col]
        end -= n_oct
    lengths, _ = _wavelet_lengths(freqs, sr, variable, alpha)
    out /= np.sqrt(lengths)[:, np.newaxis]
    return out


@lru_cache(maxsize=4)
def cq_to_chroma(n_input: int, bins_per_octave: int, n_chroma: int) -> np.ndarray:
    """librosa.filters.cq_to_chroma(n_input, bins_per_octave=..., n_chroma=...), float32."""
    n_merge = float(bins_per_octave) / n_chroma
    cq_to_ch = np.repeat(np.eye(n_chroma), int(n_merge), axis=1)
    cq_to_ch = np.roll(cq_to_ch, -int(n_merge // 2), axis=1)
    n_octaves = np.ceil(float(n_input) / bins_per_octave)
    cq_to_ch = np.tile(cq_to_ch, int(n_octaves))[:, :n_input]
    midi_0 = np.mod(12 * (np.log2(C1_HZ) - np.log2(440.0)) + 69, 12)
    roll = int(np.round(midi_0 * (n_chroma / 12.0)))
    out = np.roll(cq_to_ch, roll, axis=0).astype(np.float32)
    out.setflags(write=False)
    return out


def chroma(magnitude: np.ndarray, bins_per_octave: int) -> np.ndarray:
    """librosa.feature.chroma_cqt(C=magnitude, bins_per_octave=...) for 12 chroma, or, with 12
    bins per octave, librosa.feature.chroma_vqt(V=magnitude, intervals="equal")."""
    basis = cq_to_chroma(magnitude.shape[-2], bins_per_octave, 12)
    out = np.einsum("cf,...ft->...ct", basis, magnitude, optimize=True)
    out[out < 0.0] = 0.0
    return normalize(out, norm=np.inf, axis=-2)
