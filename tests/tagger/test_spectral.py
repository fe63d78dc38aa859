"""The seed features without librosa: every function of `mertag.tagger.spectral` and
`mertag.tagger.constant_q` against librosa's own on real audio, the frame features and a track's
feature rows end to end, musicnn's mel and the BS.1770 loudness (pyloudnorm), and a scan process
that imports none of librosa, scipy.signal, scipy.stats, numba or pyloudnorm."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from mertag.tagger import constant_q, spectral
from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.embeddings import MUSICNN_HOP, MUSICNN_N_FFT, MUSICNN_N_MELS, mel_patches
from mertag.tagger.features import (
    FRAME_FEATURES,
    HOP,
    LIBROSA_SLICE,
    N_FFT,
    decode_excerpt,
    extract_track,
    frame_features,
    pool_patches,
)
from mertag.tagger.loudness import integrated_loudness, normalise_level
from tests.conftest import CORPUS, DATA_4Q, need_shared
from tests.tagger.fault_helpers import REPO, mertag_command
from tests.tagger.librosa_reference import (
    librosa_frame_features,
    librosa_mel,
    pyloudnorm_loudness,
)

FLOAT32_CLOSE = 5e-5
"""Largest difference allowed, relative to the largest value of its feature row, where the port
is not bit for bit librosa's (the constant-Q transforms and the MFCCs' DCT): float32 precision.
Measured on the 8 corpus tracks and 40 of the 4Q clips: at most 1.2e-5 (chroma_vqt, whose
per-frame normalisation magnifies the rounding of quiet frames), 1.4e-6 for every other row."""
ROW_NAMES = [name for name, rows in FRAME_FEATURES.items() for _ in range(rows)]
CLIPS = [
    CORPUS / "celtic.mp3",  # six snippets of a long track
    CORPUS / "lava.wav",  # a 12-s track, whole
    CORPUS / "egypt.flac",  # a 25-s track, whole
    DATA_4Q / "Q1" / "MT0000040632.mp3",  # 30-s training clips
    DATA_4Q / "Q3" / "MT0000044741.mp3",
]


def _row_error(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Per row: the largest difference relative to the row's largest magnitude."""
    got = np.asarray(got, dtype=np.float64).reshape(len(want), -1)
    want = np.asarray(want, dtype=np.float64).reshape(len(want), -1)
    scale = np.maximum(np.abs(want).max(axis=1), np.finfo(np.float32).tiny)
    return np.abs(got - want).max(axis=1) / scale


@pytest.fixture(scope="module", params=CLIPS, ids=lambda p: p.name)
def audio(request: pytest.FixtureRequest) -> np.ndarray:
    """A real excerpt as the scan analyses it: decoded by the policy, brought to the level."""
    y, _ = decode_excerpt(need_shared(request.param))
    return normalise_level(y)


def test_stft_based_features_are_librosas_bit_for_bit(audio: np.ndarray) -> None:
    import librosa

    sr = SAMPLE_RATE
    stft = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP))
    np.testing.assert_array_equal(np.abs(spectral.stft(audio, N_FFT, HOP)), stft)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tuning = librosa.estimate_tuning(S=stft, sr=sr, n_fft=N_FFT)
    assert spectral.estimate_tuning(stft, sr, N_FFT) == tuning
    power = stft**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=40)
    log_mel = librosa.power_to_db(mel)
    freq = librosa.fft_frequencies(sr=sr, n_fft=N_FFT).astype(np.float32)
    centroid = librosa.feature.spectral_centroid(S=stft, sr=sr, freq=freq)
    onset = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=HOP)
    pairs = {
        "melspectrogram": (spectral.melspectrogram(power, sr, 40), mel),
        "power_to_db": (spectral.power_to_db(mel), log_mel),
        "chroma_stft": (
            spectral.chroma_stft(power, sr, tuning),
            librosa.feature.chroma_stft(S=power, sr=sr, tuning=tuning),
        ),
        "centroid": (spectral.spectral_centroid(stft, freq), centroid),
        "bandwidth": (
            spectral.spectral_bandwidth(stft, freq, centroid),
            librosa.feature.spectral_bandwidth(S=stft, sr=sr, freq=freq, centroid=centroid),
        ),
        "contrast": (
            spectral.spectral_contrast(stft, sr),
            librosa.feature.spectral_contrast(S=stft, sr=sr),
        ),
        "flatness": (spectral.spectral_flatness(stft), librosa.feature.spectral_flatness(S=stft)),
        "rolloff": (
            spectral.spectral_rolloff(stft, sr),
            librosa.feature.spectral_rolloff(S=stft, sr=sr),
        ),
        "rms": (spectral.rms(stft, N_FFT), librosa.feature.rms(S=stft, frame_length=N_FFT)),
        "zcr": (
            spectral.zero_crossing_rate(audio, N_FFT, HOP),
            librosa.feature.zero_crossing_rate(audio, frame_length=N_FFT, hop_length=HOP),
        ),
        "onset_strength": (spectral.onset_strength(log_mel, N_FFT, HOP), onset),
        "tempo": (
            spectral.tempo(onset, sr, HOP),
            librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP, aggregate=None),
        ),
    }
    for name, (got, want) in pairs.items():
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=20)
    assert _row_error(spectral.mfcc(log_mel, 20), mfcc).max() < FLOAT32_CLOSE


def test_constant_q_transforms_and_chromas_are_librosas_to_float32(audio: np.ndarray) -> None:
    import librosa

    sr = SAMPLE_RATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tuning = librosa.estimate_tuning(y=audio, sr=sr, n_fft=N_FFT)
    cqt = np.abs(
        librosa.cqt(audio, sr=sr, hop_length=HOP, tuning=tuning, n_bins=252, bins_per_octave=36)
    )
    vqt = np.abs(
        librosa.vqt(
            audio, sr=sr, hop_length=HOP, tuning=tuning, n_bins=84, bins_per_octave=12, gamma=None
        )
    )
    ours_cqt = np.abs(constant_q.vqt(audio, sr, HOP, 252, 36, tuning, variable=False))
    ours_vqt = np.abs(constant_q.vqt(audio, sr, HOP, 84, 12, tuning, variable=True))
    assert ours_cqt.shape == cqt.shape and ours_vqt.shape == vqt.shape
    assert _row_error(ours_cqt, cqt).max() < FLOAT32_CLOSE
    assert _row_error(ours_vqt, vqt).max() < FLOAT32_CLOSE
    # On librosa's own transforms, the chromas and the tonnetz are librosa's bit for bit.
    chroma_cqt = librosa.feature.chroma_cqt(C=cqt, sr=sr, hop_length=HOP, bins_per_octave=36)
    np.testing.assert_array_equal(constant_q.chroma(cqt, 36), chroma_cqt)
    np.testing.assert_array_equal(
        constant_q.chroma(vqt, 12),
        librosa.feature.chroma_vqt(V=vqt, sr=sr, hop_length=HOP, intervals="equal"),
    )
    np.testing.assert_array_equal(
        spectral.tonnetz(chroma_cqt), librosa.feature.tonnetz(chroma=chroma_cqt, sr=sr)
    )


def test_frame_features_are_librosas_row_by_row(audio: np.ndarray) -> None:
    got, want = frame_features(audio), librosa_frame_features(audio)
    assert got.shape == want.shape and got.dtype == want.dtype
    errors = _row_error(got, want)
    worst = int(np.argmax(errors))
    assert errors[worst] < FLOAT32_CLOSE, f"row {worst} ({ROW_NAMES[worst]}): {errors[worst]:.2e}"
    exact = {name for name, e in zip(ROW_NAMES, errors, strict=True) if e == 0.0}
    assert {"chroma_stft", "melspectrogram", "spectral_contrast", "tempo"} <= exact


@pytest.mark.parametrize("name", ["bay.mp3", "egypt.flac"])  # six snippets; a whole track
def test_a_real_tracks_features_and_moods_are_those_of_librosa(name: str) -> None:
    """The librosa columns of a track's rows equal those of librosa's features (the musicnn
    columns come from the mel, equal bit for bit above), and so do both shipped models'
    probabilities."""
    from mertag.models import PACKAGED_MODELS
    from mertag.tagger.model import MoodModel

    path = need_shared(CORPUS / name)
    (sequence,) = extract_track(path).sequences
    y, _ = decode_excerpt(path)
    reference = sequence.copy()
    reference[:, LIBROSA_SLICE] = pool_patches(
        librosa_frame_features(normalise_level(y)), len(sequence)
    )
    np.testing.assert_allclose(sequence, reference, rtol=1e-5, atol=1e-5)
    for model_name in PACKAGED_MODELS:
        model = MoodModel(model_name)
        np.testing.assert_allclose(
            model.track_probabilities([sequence]),
            model.track_probabilities([reference]),
            atol=1e-5,
        )


def test_musicnn_mel_is_librosas_bit_for_bit(audio: np.ndarray) -> None:
    power = np.abs(spectral.stft(audio, MUSICNN_N_FFT, MUSICNN_HOP)) ** 2.0
    mel = spectral.melspectrogram(power, SAMPLE_RATE, MUSICNN_N_MELS).T.astype(np.float32)
    np.testing.assert_array_equal(mel, librosa_mel(audio))
    patches = mel_patches(audio)
    used = np.log10(np.float32(10000) * librosa_mel(audio) + np.float32(1))[: patches.size // 96]
    np.testing.assert_array_equal(patches.reshape(-1, MUSICNN_N_MELS), used)


def test_filter_banks_are_librosas() -> None:
    import librosa

    for sr, n_fft, n_mels in ((SAMPLE_RATE, N_FFT, 40), (SAMPLE_RATE, MUSICNN_N_FFT, 96)):
        np.testing.assert_array_equal(
            spectral.mel_filters(sr, n_fft, n_mels),
            librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels),
        )
    for tuning in (0.0, -0.5, 0.04, 0.49):
        np.testing.assert_array_equal(
            spectral.chroma_filters(SAMPLE_RATE, N_FFT, tuning),
            librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT, tuning=tuning),
        )
    for bins in (36, 12):
        np.testing.assert_array_equal(
            constant_q.cq_to_chroma(7 * bins, bins, 12),
            librosa.filters.cq_to_chroma(7 * bins, bins_per_octave=bins, n_chroma=12),
        )
    np.testing.assert_array_equal(spectral.hann(N_FFT), librosa.filters.get_window("hann", N_FFT))
    np.testing.assert_array_equal(spectral.hann(250), librosa.filters.get_window("hann", 250))
    assert spectral.HANN_BANDWIDTH == librosa.filters.window_bandwidth("hann")
    assert constant_q.C1_HZ == librosa.note_to_hz("C1")


def test_kept_filter_banks_change_no_value(audio: np.ndarray) -> None:
    constant_q._octave_filters.cache_clear()
    constant_q._octave_kernel.cache_clear()
    first = frame_features(audio)
    np.testing.assert_array_equal(frame_features(audio), first)
    constant_q._octave_kernel.cache_clear()  # kernels made again from the kept filter banks
    np.testing.assert_array_equal(frame_features(audio), first)


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_loudness_is_pyloudnorms(clip: Path) -> None:
    y, _ = decode_excerpt(need_shared(clip))
    for gain in (1.0, 0.01):
        quieter = (y * np.float32(gain)).astype(np.float32)
        assert integrated_loudness(quieter) == pytest.approx(pyloudnorm_loudness(quieter), abs=1e-9)


def test_loudness_of_silence_and_of_a_single_block_is_pyloudnorms() -> None:
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    assert integrated_loudness(silence) == pyloudnorm_loudness(silence) == float("-inf")
    rng = np.random.default_rng(0)
    for size in (int(0.4 * SAMPLE_RATE), int(0.4 * SAMPLE_RATE) + 1, 5 * SAMPLE_RATE + 77):
        noise = (0.1 * rng.standard_normal(size)).astype(np.float32)
        assert integrated_loudness(noise) == pytest.approx(pyloudnorm_loudness(noise), abs=1e-9)


@pytest.mark.parametrize("clip", CLIPS[:3], ids=lambda p: p.name)
def test_k_weighting_is_lfilters(clip: Path) -> None:
    """Both K-weighting stages against scipy.signal.lfilter, whole and at lengths around the
    block: within 1e-11 of the output's peak."""
    from scipy.signal import lfilter

    from mertag.tagger.k_weighting import BLOCK, biquad, k_weighting_coefficients

    y, _ = decode_excerpt(need_shared(clip))
    x = y.astype(np.float64)
    for b, a in k_weighting_coefficients(float(SAMPLE_RATE)):
        for n in (x.size, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 3):
            want = lfilter(b, a, x[:n])
            got = biquad(b, a, x[:n])
            assert got.shape == want.shape
            assert np.abs(got - want).max() <= 1e-11 * max(np.abs(want).max(), 1e-300), n


_WATCH = """
import atexit, sys
heavy = ("librosa", "numba", "pyloudnorm", "scipy.signal", "scipy.stats")
def said():
    found = sorted({m for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")})
    sys.stderr.write("IMPORTED " + " ".join(found) + "\\n")
atexit.register(said)
from mertag.tagger.cli import main
main()
"""


def test_a_scan_imports_no_librosa_scipy_signal_or_numba(corpus: Path, tmp_path: Path) -> None:
    """A one-track scan analyses in this process: what it imports is what a worker imports."""
    library = tmp_path / "lib"
    library.mkdir()
    (corpus / "celtic.mp3").rename(library / "celtic.mp3")
    assert mertag_command()[1] == "-c"
    done = subprocess.run(
        [mertag_command()[0], "-c", _WATCH, "scan", str(library), "--no-write",
         "--index", str(tmp_path / "i.db")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED")]
    assert line == "IMPORTED ", line
