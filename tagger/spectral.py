"""The STFT-based seed features in numpy alone, value for value as librosa 0.11 computes them.

`mertag.tagger.features.frame_features` needs 14 librosa features, and importing librosa costs a
scan process 1.5-2 s (it imports scipy.signal and scipy.stats, whose array-API decorators parse
docstrings at import, and numba), more than the analysis of a track. So the scan computes them
here: each function is librosa's code for the one set of arguments the tagger passes, with the
same numpy operations in the same order and on arrays of the same memory layout (a reduction's
rounding depends on it), librosa's numba stencils written as numpy expressions of the same types,
and scipy's FFT replaced by numpy's, which gives the same bits on float64 input. The STFT, mel,
chroma, spectral statistics, zero-crossing rate, tuning, onset strength and tempo are then
identical to librosa's; the DCT of the MFCCs runs in float64 where scipy's runs in float32 (1e-6
relative). tests/tagger/test_spectral.py compares every function with librosa on real audio.
The constant-Q transforms are in `mertag.tagger.constant_q`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

HANN_BANDWIDTH = 1.50018310546875
"""Equivalent noise bandwidth of the Hann window in bins (librosa's WINDOW_BANDWIDTHS["hann"])."""
A440 = 440.0


@lru_cache(maxsize=1024)
def hann(length: int, periodic: bool = True) -> np.ndarray:
    """Hann window, float64, as scipy.signal.get_window("hann", length, fftbins=periodic);
    read-only, kept per process (the constant-Q filters ask for the same few hundred lengths)."""
    if length <= 1:
        w = np.ones(length, dtype=np.float64)
    else:
        n = length + 1 if periodic else length
        fac = np.linspace(-np.pi, np.pi, n, dtype=np.float64)
        w = np.zeros(n, dtype=np.float64)
        for k, a in enumerate((0.5, 0.5)):
            w += a * np.cos(k * fac)
        w = w[:-1] if periodic else w
    w.setflags(write=False)
    return w


def frame(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """(frame_length, n_frames) strided view of `y`'s frames, as librosa.util.frame."""
    windows = np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length]
    return windows.T


STFT_BLOCK_FRAMES = 256
"""Frames transformed at a time: the float64 frames and their complex128 spectrum stay ~8 MB
for the tagger's 2048-sample frames, whatever the length of the audio (as librosa blocks)."""


def stft(
    y: np.ndarray, n_fft: int, hop_length: int, window: np.ndarray | None = None
) -> np.ndarray:
    """Centred (zero-padded) STFT, complex64 of shape (1 + n_fft // 2, frames) in Fortran order,
    as librosa.stft(y, n_fft=n_fft, hop_length=hop_length) of float32 `y` (`window` None: Hann;
    a window multiplies in float64, so the FFT runs in float64 like librosa's)."""
    win = hann(n_fft) if window is None else window
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    spectrum = np.empty((len(frames), 1 + n_fft // 2), dtype=np.complex64)
    for start in range(0, len(frames), STFT_BLOCK_FRAMES):
        block = frames[start : start + STFT_BLOCK_FRAMES]
        spectrum[start : start + len(block)] = np.fft.rfft(block * win, axis=-1)
    return spectrum.T


def normalize(s: np.ndarray, norm: float, axis: int) -> np.ndarray:
    """librosa.util.normalize(s, norm=norm, axis=axis) for norm 1, 2 or inf (threshold, fill:
    librosa's defaults)."""
    threshold = np.finfo(s.dtype).tiny
    mag = np.abs(s, dtype=np.float64) if np.isrealobj(s) else np.abs(s).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    elif norm == 1:  # mag ** 1 is mag: the same sum without its copy
        length = np.sum(mag, axis=axis, keepdims=True)
    else:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < threshold] = 1.0
    out = np.empty_like(s)
    # Divided in float64 as `s / length` is and rounded into `out`, without the float64 copy.
    np.divide(s, length, out=out, casting="unsafe")
    return out


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    mels = frequencies / f_sp
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    if mels.ndim:
        log_t = frequencies >= 1000.0
        mels[log_t] = min_log_mel + np.log(frequencies[log_t] / 1000.0) / logstep
    elif frequencies >= 1000.0:
        mels = min_log_mel + np.log(frequencies / 1000.0) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = 1000.0 * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@lru_cache(maxsize=8)
def mel_filters(sr: float, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney mel filter bank (n_mels, 1 + n_fft // 2), float32, as librosa.filters.mel."""
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = fft_frequencies(sr, n_fft)
    low = _hz_to_mel(np.asanyarray(0.0))
    high = _hz_to_mel(np.asanyarray(float(sr) / 2))
    mel_f = _mel_to_hz(np.linspace(low, high, n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    weights.setflags(write=False)
    return weights


def melspectrogram(power: np.ndarray, sr: float, n_mels: int) -> np.ndarray:
    """Mel power spectrogram of a power spectrogram, as librosa.feature.melspectrogram(S=...)."""
    basis = mel_filters(sr, 2 * (power.shape[-2] - 1), n_mels)
    return np.einsum("...ft,mf->...mt", power, basis, optimize=True)


def power_to_db(s: np.ndarray, top_db: float | None = 80.0) -> np.ndarray:
    """librosa.power_to_db(s) (ref 1, amin 1e-10, top_db 80)."""
    log_spec = 10.0 * np.log10(np.maximum(1e-10, s))
    log_spec -= 10.0 * np.log10(np.maximum(1e-10, np.abs(1.0)))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def hz_to_octs(
    frequencies: np.ndarray, tuning: float = 0.0, bins_per_octave: int = 12
) -> np.ndarray:
    a440 = A440 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(np.asanyarray(frequencies) / (float(a440) / 16))


@lru_cache(maxsize=256)
def chroma_filters(sr: float, n_fft: int, tuning: float, n_chroma: int = 12) -> np.ndarray:
    """Chroma filter bank (n_chroma, 1 + n_fft // 2), float32, as librosa.filters.chroma."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * hz_to_octs(frequencies, tuning=tuning, bins_per_octave=n_chroma)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    d = np.remainder(d + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * d / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=2, axis=0)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    out = np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)
    out.setflags(write=False)
    return out


def chroma_stft(power: np.ndarray, sr: float, tuning: float) -> np.ndarray:
    """librosa.feature.chroma_stft(S=power, sr=sr, tuning=tuning)."""
    basis = chroma_filters(sr, 2 * (power.shape[-2] - 1), float(tuning))
    raw = np.einsum("cf,...ft->...ct", basis, power, optimize=True)
    return normalize(raw, norm=np.inf, axis=-2)


@lru_cache(maxsize=8)
def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """The first n_out rows of the orthonormal DCT-II of length n_in (float64)."""
    k = np.arange(n_out)[:, np.newaxis]
    n = np.arange(n_in)[np.newaxis, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    basis.setflags(write=False)
    return basis


def mfcc(log_mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc): the orthonormal DCT-II over the bands (in
    float64, where scipy's runs in float32: equal to 1e-6 of the largest coefficient)."""
    out = dct_matrix(n_mfcc, log_mel.shape[-2]) @ log_mel.astype(np.float64)
    return out.astype(log_mel.dtype)


def spectral_weights(s: np.ndarray) -> np.ndarray:
    """Each frame of a magnitude spectrogram normalised to sum 1: what the centroid and the
    bandwidth weigh the bin frequencies by (librosa normalises for each; compute it once).

    normalize(s, norm=1, axis=-2) for s >= 0: the float64 sums without a float64 copy of s."""
    length = np.asarray(np.sum(s, axis=-2, keepdims=True, dtype=np.float64))
    length[length < np.finfo(s.dtype).tiny] = 1.0
    out = np.empty_like(s)
    np.divide(s, length, out=out, casting="unsafe")
    return out


def spectral_centroid(
    s: np.ndarray, freq: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """librosa.feature.spectral_centroid(S=s, freq=freq); `weights`: spectral_weights(s)."""
    freq = freq.reshape(-1, 1)
    weights = spectral_weights(s) if weights is None else weights
    return np.sum(freq * weights, axis=-2, keepdims=True)


def spectral_bandwidth(
    s: np.ndarray, freq: np.ndarray, centroid: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """librosa.feature.spectral_bandwidth(S=s, freq=freq, centroid=centroid) (p = 2);
    `weights`: spectral_weights(s)."""
    deviation = np.abs(np.subtract.outer(centroid[..., 0, :], freq).swapaxes(-2, -1))
    weights = spectral_weights(s) if weights is None else weights
    return np.sum(weights * deviation**2, axis=-2, keepdims=True) ** (1.0 / 2)


def spectral_contrast(
    s: np.ndarray, sr: float, fmin: float = 200.0, n_bands: int = 6, quantile: float = 0.02
) -> np.ndarray:
    """librosa.feature.spectral_contrast(S=s, sr=sr): (n_bands + 1, frames), float64."""
    freq = fft_frequencies(sr, 2 * (s.shape[-2] - 1))
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    shape = list(s.shape)
    shape[-2] = n_bands + 1
    valley = np.zeros(shape)
    peak = np.zeros_like(valley)
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:], strict=True)):
        current_band = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current_band)
        if k > 0:
            current_band[idx[0] - 1] = True
        if k == n_bands:
            current_band[idx[-1] + 1 :] = True
        # A band is a run of bins: sorted as a slice of `s` (librosa's boolean index copies it
        # row by row first, and sorts that copy slower), then averaged in the copy's C order.
        band = np.flatnonzero(current_band)
        lo, hi = int(band[0]), int(band[-1]) + 1
        sub_band = s[..., lo : hi if k == n_bands else hi - 1, :]
        count = int(np.maximum(np.rint(quantile * (hi - lo)), 1))
        sortedr = np.sort(sub_band, axis=-2)
        valley[..., k, :] = np.mean(np.ascontiguousarray(sortedr[..., :count, :]), axis=-2)
        peak[..., k, :] = np.mean(np.ascontiguousarray(sortedr[..., -count:, :]), axis=-2)
    return power_to_db(peak) - power_to_db(valley)


def spectral_flatness(s: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    """librosa.feature.spectral_flatness(S=s) (power 2)."""
    s_thresh = np.maximum(amin, s**2.0)
    gmean = np.exp(np.mean(np.log(s_thresh), axis=-2, keepdims=True))
    amean = np.mean(s_thresh, axis=-2, keepdims=True)
    return gmean / amean


def spectral_rolloff(s: np.ndarray, sr: float, roll_percent: float = 0.85) -> np.ndarray:
    """librosa.feature.spectral_rolloff(S=s, sr=sr)."""
    freq = fft_frequencies(sr, 2 * (s.shape[-2] - 1))
    total_energy = np.cumsum(s, axis=-2)
    threshold = np.expand_dims(roll_percent * total_energy[..., -1, :], axis=-2)
    # librosa: the smallest frequency whose cumulative energy reaches the threshold, as a
    # nanmin over all bins; the energy only grows with frequency, so it is the first such bin.
    reached = total_energy >= threshold
    rolloff = freq[np.argmax(reached, axis=-2)][..., np.newaxis, :]
    rolloff[~reached.any(axis=-2, keepdims=True)] = np.nan  # NaN energy: NaN, as librosa's
    return rolloff


def rms(s: np.ndarray, frame_length: int) -> np.ndarray:
    """librosa.feature.rms(S=s, frame_length=frame_length), float32."""
    x = np.square(s, dtype=np.float32)
    x[..., 0, :] *= 0.5
    if frame_length % 2 == 0:
        x[..., -1, :] *= 0.5
    return np.sqrt(2 * np.sum(x, axis=-2, keepdims=True) / frame_length**2)


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """librosa.feature.zero_crossing_rate(y, frame_length=..., hop_length=...) (centred, edge
    padding; a sample within 1e-10 of zero counts as zero, and zero as positive)."""
    threshold = 1e-10
    negative = np.signbit(np.where(np.abs(y) <= threshold, 0, y))
    negative = np.pad(negative, (frame_length // 2, frame_length // 2), mode="edge")
    # crossed[i]: crossings among the first i + 1 samples (each with the one before it).
    crossed = np.zeros(negative.shape, dtype=np.int64)
    np.cumsum(negative[1:] != negative[:-1], out=crossed[1:])
    # librosa's stencil leaves each frame's first sample without a neighbour: a frame counts
    # the crossings at its samples 1 .. frame_length - 1, and the mean divides by frame_length.
    starts = np.arange(0, negative.size - frame_length + 1, hop_length)
    counts = crossed[starts + frame_length - 1] - crossed[starts]
    return (counts / float(frame_length))[np.newaxis, :]


def tonnetz(chroma: np.ndarray) -> np.ndarray:
    """librosa.feature.tonnetz(chroma=chroma): (6, frames)."""
    dim_map = np.linspace(0, 12, num=chroma.shape[-2], endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    v = np.multiply.outer(scale, dim_map)
    v[::2] -= 0.5
    r = np.array([1, 1, 1, 1, 0.5, 0.5])
    phi = r[:, np.newaxis] * np.cos(np.pi * v)
    return np.einsum("pc,...ci->...pi", phi, normalize(chroma, norm=1, axis=-2), optimize=True)


def estimate_tuning(s: np.ndarray, sr: float, n_fft: int) -> float:
    """librosa.estimate_tuning(S=s, sr=sr, n_fft=n_fft): piptrack's peaks between 150 and 4000
    Hz above a tenth of each frame's maximum, the louder half of them, the most common deviation
    from equal temperament in hundredths of a semitone; 0.0 when nothing is pitched.

    piptrack computes its gradient and parabolic shift over the whole spectrogram and reads them
    at the peaks only; here they are computed at the peaks, with the same arithmetic: numpy's
    gradient (S[k+1] - S[k-1]) / 2.0 in float32, and numba's stencil for the shift, whose `a` and
    `b` come out float64 (float32 mixed with an integer literal) and -b / a stored in float32.
    """
    fft_freqs = fft_frequencies(sr, n_fft)
    fmin, fmax = np.maximum(150.0, 0), np.minimum(4000.0, float(sr) / 2)
    band = np.flatnonzero((fmin <= fft_freqs) & (fft_freqs < fmax))
    lo, hi = int(band[0]), int(band[-1]) + 1  # never the first or last bin: both have neighbours
    ref_value = np.expand_dims(0.1 * np.max(s, axis=-2), -2)
    near = s[lo - 1 : hi + 1]
    x = near * (near > ref_value)
    # librosa.util.localmax over the bins: above the one below, at least the one above.
    peaks = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
    rows, cols = np.nonzero(peaks)
    bins = rows + lo
    below, at, above = s[bins - 1, cols], s[bins, cols], s[bins + 1, cols]
    a = (above + below).astype(np.float64) - 2 * at.astype(np.float64)
    b = (above - below).astype(np.float64) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a).astype(np.float32)
    avg = (above - below) / 2.0
    pitches = ((bins + shift) * float(sr) / n_fft).astype(np.float32)
    mags = at + 0.5 * avg * shift

    pitch_mask = pitches > 0
    threshold = np.median(mags[pitch_mask]) if pitch_mask.any() else 0.0
    frequencies = pitches[(mags >= threshold) & pitch_mask]
    if not np.any(frequencies):
        return 0.0
    residual = np.mod(12 * hz_to_octs(frequencies), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins_edges = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / 0.01)) + 1)
    counts, tuning = np.histogram(residual, bins_edges)
    return float(tuning[np.argmax(counts)])


def onset_strength(log_mel: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """librosa.onset.onset_strength(S=log_mel, hop_length=hop_length) (lag 1, no max filter,
    centred): the mean positive difference between frames over the bands."""
    onset_env = log_mel[..., 1:] - log_mel[..., :-1]
    onset_env = np.maximum(0.0, onset_env)
    mean = np.empty((1, onset_env.shape[-1]), dtype=onset_env.dtype)
    mean[0] = np.mean(onset_env[..., :, :], axis=-2)
    pad_width = 1 + n_fft // (2 * hop_length)
    mean = np.pad(mean, [(0, 0), (int(pad_width), 0)], mode="constant")
    return mean[..., : log_mel.shape[-1]][0]


def _next_fast_len(target: int) -> int:
    """The smallest 2^a 3^b 5^c >= target (scipy.fft.next_fast_len for a real transform)."""
    best = 2 * target
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            n = p35
            while n < target:
                n *= 2
            best = min(best, n)
            p35 *= 3
        p5 *= 5
    return best


def tempo(
    onset_envelope: np.ndarray,
    sr: float,
    hop_length: int,
    start_bpm: float = 120.0,
    ac_size: float = 8.0,
    max_tempo: float = 320.0,
) -> np.ndarray:
    """librosa.feature.tempo(onset_envelope=..., sr=sr, hop_length=..., aggregate=None): the
    tempo per frame, the autocorrelation tempogram's peak under a log-normal prior around
    start_bpm."""
    win_length = int(np.floor(ac_size * sr / hop_length))
    n = onset_envelope.shape[-1]
    padded = np.pad(
        onset_envelope, [(win_length // 2, win_length // 2)], mode="linear_ramp", end_values=[0, 0]
    )
    odf_frame = frame(padded, win_length, 1)[..., :n]
    windowed = odf_frame * hann(win_length).reshape(-1, 1)
    n_pad = _next_fast_len(2 * windowed.shape[-2] - 1)
    spectrum = np.fft.rfft(windowed, n=n_pad, axis=-2)
    powspec = spectrum.real**2 + spectrum.imag**2
    autocorr = np.fft.irfft(powspec, n=n_pad, axis=-2)[: windowed.shape[-2]]
    tg = normalize(autocorr, norm=np.inf, axis=-2)

    bpms = np.zeros(int(win_length), dtype=np.float64)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, win_length))
    logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / 1.0) ** 2
    max_idx = int(np.argmax(bpms < max_tempo))
    logprior[:max_idx] = -np.inf
    best_period = np.argmax(np.log1p(1e6 * tg) + logprior.reshape(-1, 1), axis=-2)
    return np.take(bpms, best_period)
