"""Constant- and variable-Q transforms and their chroma in numpy (and soxr), as librosa 0.11.

`librosa.cqt` / `librosa.vqt` for the tagger's arguments (Hann wavelets normalised to unit L1
norm, sparsity 0.01, soxr_hq resampling, scaled by the filter lengths): the audio is first
decimated by soxr as far as the highest filter allows, then each octave, from the top, is the
product of an STFT (rectangular window) with the FFT of that octave's wavelets, and the audio
halved again. The filters depend on the sample rate and the tuning only and are kept per process.
Differences from librosa, none beyond float32 rounding (tests/tagger/test_spectral.py): the
wavelets' FFT runs in numpy's complex64 where librosa calls scipy's; an octave's STFT and its
product with the sparsified filters are one float32 product of the frames with the filters
brought back to the time domain (`_octave_kernel`), where librosa runs a float64 FFT and a
complex64 sparse product; and the CQT and the VQT of one excerpt share its halvings
(`OctaveChain`), where librosa halves anew for each.
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
KERNEL_CACHE_SIZE = 56
"""Octave kernels (`_octave_kernel`) kept per process: 14 per tuning, ~150 kB for a CQT octave
(n_fft 512 x 72 float32), so 56 hold the last 4 tunings in ~4 MB; one more costs an FFT."""


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
    n_fft = int(2.0 ** (np.ceil(np.log2(max(lengths)))))
    # librosa's wavelets, each normalised to unit L1 norm and centred in n_fft zeros: all of
    # them one after another in one array, with librosa's operations element by element (the
    # L1 norms summed over each one's own run), then put in their rows.
    starts = np.floor_divide(-lengths, 2)  # np.arange(-ilen // 2, ilen // 2) per wavelet
    sizes = (np.floor_divide(lengths, 2) - starts).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    within = np.arange(int(sizes.sum())) - np.repeat(offsets, sizes)
    positions = np.repeat(starts, sizes) + within
    angles = positions * 2 * np.pi * np.repeat(freqs_a, sizes) / sr
    sig = np.cos(angles) + 1j * np.sin(angles)
    sig *= np.concatenate([hann(int(n)) for n in sizes])
    norms = np.add.reduceat(np.abs(sig), offsets)  # normalize(sig, norm=1) of each wavelet
    norms[norms < np.finfo(np.complex128).tiny] = 1.0
    sig /= np.repeat(norms, sizes)
    basis = np.zeros((len(freqs_a), n_fft), dtype=np.complex64)
    lpads = (n_fft - sizes) // 2
    basis[np.repeat(np.arange(len(freqs_a)), sizes), np.repeat(lpads, sizes) + within] = sig
    basis *= lengths[:, np.newaxis] / float(n_fft)
    fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : (n_fft // 2) + 1]
    fft_basis = _sparsify_rows(fft_basis, SPARSITY)
    fft_basis *= scale
    used = np.flatnonzero(np.any(fft_basis != 0, axis=0))
    band = slice(int(used[0]), int(used[-1]) + 1)
    kept = np.ascontiguousarray(fft_basis[:, band])
    kept.setflags(write=False)
    return kept, n_fft, band


@lru_cache(maxsize=KERNEL_CACHE_SIZE)
def _octave_kernel(
    sr: float, freqs: tuple[float, ...], alpha: tuple[float, ...], variable: bool, scale: float
) -> np.ndarray:
    """One octave's filters as a (n_fft, 2 x bins) float32 matrix in the time domain: a frame
    times it is the product of the frame's DFT, on the band of `_octave_filters`, with the
    filters (real parts, then imaginary). So an octave costs one real matrix product instead of
    an FFT and a complex one. Sum over the band of basis[k, f] exp(-2 pi i f n / n_fft) is the
    DFT of the filter's spectrum itself, computed in float64 and rounded once."""
    basis, n_fft, band = _octave_filters(sr, freqs, alpha, variable, scale)
    spectrum = np.zeros((basis.shape[0], n_fft), dtype=np.complex128)
    spectrum[:, band] = basis
    kernel = np.fft.fft(spectrum, axis=1).T
    out = np.ascontiguousarray(np.hstack([kernel.real, kernel.imag]), dtype=np.float32)
    out.setflags(write=False)
    return out


def _octave_response(y: np.ndarray, hop_length: int, kernel: np.ndarray) -> np.ndarray:
    """librosa's `__cqt_response`, complex64 (bins, frames): the STFT of `y` (rectangular
    window, centred, zero-padded) times the octave's filters, as one float32 product of the
    frames with `_octave_kernel` (librosa: a float64 FFT, stored complex64, times the sparse
    filters in complex64; the two agree to float32 rounding)."""
    n_fft = kernel.shape[0]
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    product = frames @ kernel
    bins = kernel.shape[1] // 2
    response = np.empty((bins, len(frames)), dtype=np.complex64)
    response.real = product[:, :bins].T
    response.imag = product[:, bins:].T
    return response


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


class OctaveChain:
    """An excerpt and its successive halvings (`_halve` by 2), each made when first asked for
    and kept: the CQT and the VQT of one excerpt read the same ones, where librosa halves anew
    for each transform (and once more after its last octave)."""

    def __init__(self, y: np.ndarray) -> None:
        self.levels = [y]

    def level(self, i: int) -> np.ndarray:
        """The audio halved `i` times."""
        while len(self.levels) <= i:
            self.levels.append(_halve(self.levels[-1], 2))
        return self.levels[i]


def vqt(
    y: np.ndarray,
    sr: float,
    hop_length: int,
    n_bins: int,
    bins_per_octave: int,
    tuning: float,
    variable: bool,
    octaves: OctaveChain | None = None,
) -> np.ndarray:
    """librosa.vqt(y, sr=sr, hop_length=..., n_bins=..., bins_per_octave=..., tuning=tuning,
    gamma=None if variable else 0), i.e. librosa.cqt when not `variable`: complex64 (n_bins,
    frames). `octaves`, an OctaveChain of this `y`, shares its halvings with other transforms
    of it."""
    n_octaves = int(np.ceil(float(n_bins) / bins_per_octave))
    n_filters = min(bins_per_octave, n_bins)
    freqs = _frequencies(n_bins, bins_per_octave, tuning)
    alpha = _relative_bandwidth(freqs)
    _, filter_cutoff = _wavelet_lengths(freqs, sr, variable, alpha)
    nyquist = sr / 2.0

    downsample_count1 = max(0, int(np.ceil(np.log2(nyquist / filter_cutoff)) - 1) - 1)
    downsample_count2 = max(0, _two_factors(hop_length) - n_octaves + 1)
    downsample_count = min(downsample_count1, downsample_count2)
    if octaves is not None and octaves.levels[0] is not y:
        raise ValueError("octaves must be the OctaveChain of this y")
    if downsample_count > 0:
        factor = 2**downsample_count
        hop_length //= factor
        octaves = OctaveChain(_halve(y, factor))
        sr = sr / float(factor)
    elif octaves is None:
        octaves = OctaveChain(y)

    responses = []
    level, my_sr, my_hop = 0, sr, hop_length
    for i in range(n_octaves):
        sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
        kernel = _octave_kernel(
            my_sr,
            tuple(freqs[sl].tolist()),
            tuple(alpha[sl].tolist()),
            variable,
            float(np.sqrt(sr / my_sr)),
        )
        responses.append(_octave_response(octaves.level(level), my_hop, kernel))
        if my_hop % 2 == 0:
            my_hop //= 2
            my_sr /= 2.0
            level += 1

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
