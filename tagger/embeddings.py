"""Pretrained musicnn embeddings: 16 kHz audio -> log-mel patches -> one 250-d vector per patch.

The network is the MSD_musicnn tagger (Pons & Serra 2019) exported to ONNX
(``models/musicnn_msd.onnx``); each 3-s patch yields its 200-d penultimate layer and its 50 tag
probabilities, concatenated. librosa and onnxruntime are imported only when needed so that
importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
PATCH_SAMPLES = PATCH_FRAMES * HOP
"""Audio samples per patch: patch i covers samples [i * PATCH_SAMPLES, (i + 1) * PATCH_SAMPLES)."""
EMBEDDING_DIM = 250
"""200 penultimate activations followed by 50 MSD tag probabilities."""

_BATCH_PATCHES = 1
"""Patches per onnxruntime call. Measured on one thread: each patch in a call adds about 40 MB of
peak memory (the front-end maps) and batching is no faster per patch, so one at a time."""


def mel_patches(y: np.ndarray) -> np.ndarray:
    """Mono 16-kHz audio -> (n_patches, 187, 96) float32 log-mel patches, as musicnn computes them.

    Patches do not overlap and a trailing partial patch is dropped, so audio too short for one
    patch gives shape (0, 187, 96). The mel stays float32 throughout: upstream's float16 cast
    overflows to inf on loud clips.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    n_frames = 1 + y.size // HOP  # librosa's frame count with centred frames
    n_patches = n_frames // PATCH_FRAMES
    if n_patches == 0:
        return np.zeros((0, PATCH_FRAMES, N_MELS), dtype=np.float32)

    import librosa

    mel = librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS
    ).T.astype(np.float32, copy=False)
    logmel = np.log10(np.float32(10000) * mel + np.float32(1))
    used = logmel[: n_patches * PATCH_FRAMES]
    return np.ascontiguousarray(used.reshape(n_patches, PATCH_FRAMES, N_MELS))


def default_frontend_path() -> Path:
    """The packaged musicnn ONNX file."""
    from models import MODELS_DIR

    return MODELS_DIR / "musicnn_msd.onnx"


class MusicnnEmbedder:
    """One onnxruntime session on the musicnn front end; create once per process and reuse."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = path if path is not None else default_frontend_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Tensors reuse the arena piece by piece instead of one block planned per run: a worker
        # peaks ~15 MB lower, as fast. (Without the arena, glibc's heap fragments and a worker
        # grows to 400-500 MB over a few tracks, differently from run to run.)
        options.enable_mem_pattern = False
        self.session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def embed_patches(self, patches: np.ndarray) -> np.ndarray:
        """(n, 187, 96) log-mel patches -> (n, 250) float32: penultimate then tags."""
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ValueError(
                f"expected patches of shape (n, {PATCH_FRAMES}, {N_MELS}), got {patches.shape}"
            )
        if len(patches) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        chunks = []
        for start in range(0, len(patches), _BATCH_PATCHES):
            batch = patches[start : start + _BATCH_PATCHES]
            penultimate, tags = self.session.run(["penultimate", "tags"], {"mel_patches": batch})
            chunks.append(np.concatenate([penultimate, tags], axis=1))
        return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)

    def embed(self, y: np.ndarray) -> np.ndarray:
        """Mono 16-kHz audio -> (n_patches, 250) embeddings; (0, 250) when shorter than a patch."""
        return self.embed_patches(mel_patches(y))
