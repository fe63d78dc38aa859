"""The seed features as librosa computes them: the reference that `mertag.tagger.spectral` and
`mertag.tagger.constant_q` reproduce (the tagger's code before it stopped importing librosa)."""

from __future__ import annotations

import warnings

import numpy as np

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.embeddings import MUSICNN_HOP, MUSICNN_N_FFT, MUSICNN_N_MELS
from mertag.tagger.features import HOP, N_FFT, N_MELS, N_MFCC


def librosa_frame_features(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """`mertag.tagger.features.frame_features` with librosa's own calls."""
    import librosa

    stft = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    power = stft**2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tuning = librosa.estimate_tuning(S=stft, sr=sr, n_fft=N_FFT)
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS)
    log_mel = librosa.power_to_db(mel)
    cqt = np.abs(
        librosa.cqt(y, sr=sr, hop_length=HOP, tuning=tuning, n_bins=84 * 3, bins_per_octave=36)
    )
    vqt = np.abs(
        librosa.vqt(
            y, sr=sr, hop_length=HOP, tuning=tuning, n_bins=84, bins_per_octave=12, gamma=None
        )
    )
    chroma_cqt = librosa.feature.chroma_cqt(C=cqt, sr=sr, hop_length=HOP, bins_per_octave=36)
    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT).astype(np.float32)
    centroid = librosa.feature.spectral_centroid(S=stft, sr=sr, freq=freq)
    onset = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=HOP)
    parts = [
        librosa.feature.chroma_stft(S=power, sr=sr, tuning=tuning),
        chroma_cqt,
        librosa.feature.chroma_vqt(V=vqt, sr=sr, hop_length=HOP, intervals="equal"),
        log_mel,
        librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC),
        librosa.feature.rms(S=stft, frame_length=N_FFT),
        centroid / 1000.0,
        librosa.feature.spectral_bandwidth(S=stft, sr=sr, freq=freq, centroid=centroid) / 1000.0,
        librosa.feature.spectral_contrast(S=stft, sr=sr),
        np.log10(librosa.feature.spectral_flatness(S=stft) + 1e-10),
        librosa.feature.spectral_rolloff(S=stft, sr=sr) / 1000.0,
        librosa.feature.tonnetz(chroma=chroma_cqt, sr=sr),
        librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP),
        librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP, aggregate=None)[
            np.newaxis
        ]
        / 100.0,
    ]
    frames = min(p.shape[1] for p in parts)
    return np.vstack([p[:, :frames] for p in parts]).astype(np.float32)


def librosa_mel(y: np.ndarray) -> np.ndarray:
    """musicnn's mel spectrogram (frames, bands) as librosa computes it."""
    import librosa

    return librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=MUSICNN_N_FFT, hop_length=MUSICNN_HOP, n_mels=MUSICNN_N_MELS
    ).T.astype(np.float32, copy=False)


def pyloudnorm_loudness(y: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """pyloudnorm's BS.1770-4 integrated loudness of mono audio."""
    import pyloudnorm

    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)))
