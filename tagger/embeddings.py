"""Pretrained musicnn embeddings: 16 kHz audio -> log-mel patches -> one vector per patch.

Each 3-s patch goes through two pretrained musicnn taggers (Pons & Serra 2019) exported to ONNX
(`FRONTENDS`): MSD_musicnn, trained on the Million Song Dataset's 50 most common tags (moods among
them: sad, happy, mellow, chill), and MTT_musicnn, trained on MagnaTagATune's 50 (instruments,
loud, quiet, soft, fast, slow). Both take the same log-mel input; each yields its 200-d
penultimate layer and its 50 tag probabilities, concatenated in that order. onnxruntime is
imported only when needed so that importing this module stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from mertag.tagger.audio import SAMPLE_RATE
from mertag.tagger.spectral import melspectrogram, stft

if TYPE_CHECKING:
    import onnxruntime

# musicnn's input recipe (its mel spectrogram, at the decoder's SAMPLE_RATE, which is musicnn's).
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_N_MELS = 96
PATCH_FRAMES = 187
PATCH_SAMPLES = PATCH_FRAMES * MUSICNN_HOP
"""Audio samples per patch: patch i covers samples [i * PATCH_SAMPLES, (i + 1) * PATCH_SAMPLES)."""
FRONTENDS = ("musicnn_msd.onnx", "musicnn_mtt.onnx")
"""The packaged networks, in the order their outputs sit in a row."""
NETWORK_DIM = 250
"""Per network: 200 penultimate activations followed by 50 tag probabilities."""
EMBEDDING_DIM = NETWORK_DIM * len(FRONTENDS)

_BATCH_PATCHES = 1
"""Patches per onnxruntime call. Measured on one thread: each patch in a call adds about 40 MB of
peak memory (the front-end maps) and batching is no faster per patch, so one at a time."""


def patch_count(n_samples: int) -> int:
    """Whole patches in `n_samples` of 16-kHz audio (librosa's centred frame count, cut in 187s)."""
    return (1 + n_samples // MUSICNN_HOP) // PATCH_FRAMES


def mel_patches(y: np.ndarray) -> np.ndarray:
    """Mono 16-kHz audio -> (n_patches, 187, 96) float32 log-mel patches, as musicnn computes them.

    Patches do not overlap and a trailing partial patch is dropped, so audio too short for one
    patch gives shape (0, 187, 96). The mel stays float32 throughout: upstream's float16 cast
    overflows to inf on loud clips.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
    n_patches = patch_count(y.size)
    if n_patches == 0:
        return np.zeros((0, PATCH_FRAMES, MUSICNN_N_MELS), dtype=np.float32)

    # librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=..., hop_length=..., n_mels=...),
    # value for value (mertag.tagger.spectral).
    power = np.abs(stft(y, MUSICNN_N_FFT, MUSICNN_HOP)) ** 2.0
    mel = melspectrogram(power, SAMPLE_RATE, MUSICNN_N_MELS).T.astype(np.float32, copy=False)
    logmel = np.log10(np.float32(10000) * mel + np.float32(1))
    used = logmel[: n_patches * PATCH_FRAMES]
    return np.ascontiguousarray(used.reshape(n_patches, PATCH_FRAMES, MUSICNN_N_MELS))


def frontend_path(frontend: str) -> Path:
    """The packaged ONNX file of one musicnn network (a name in `FRONTENDS`)."""
    from mertag.models import MODELS_DIR

    return MODELS_DIR / frontend


def frontend_paths() -> list[Path]:
    """The packaged musicnn ONNX files, in `FRONTENDS` order."""
    return [frontend_path(name) for name in FRONTENDS]


TELEMETRY_SWITCH = "ORT_DISABLE_TELEMETRY"
"""onnxruntime's own opt-out of its telemetry, read once when it is first imported."""


def onnx_runtime() -> ModuleType:
    """onnxruntime, imported with its telemetry off unless the user set TELEMETRY_SWITCH.

    Since 1.29 `import onnxruntime` starts a telemetry client that stores a device id under
    ~/.cache (or $XDG_CACHE_HOME) and uploads a ProcessInfo event; where HOME is not writable (a
    NAS box, a service user, a container) it prints 'Failed to persist telemetry device ID' to
    stderr in every scan and worker. A tagger should not write outside its own folders or reach
    the network unasked, so the client is not started; onnxruntime's log level is left as it
    is, so its real warnings and errors still show. The variable counts only before the first
    import, so every import of onnxruntime in the tagger goes through here; workers inherit it.
    """
    os.environ.setdefault(TELEMETRY_SWITCH, "1")
    import onnxruntime

    return onnxruntime


_SHARED_ARENA = False


def _share_one_arena() -> None:
    """Give every onnxruntime session of this process one memory arena instead of one each.

    The networks run one after another, so one arena serves them all: two musicnn sessions then
    hold ~4 MB more than one alone instead of ~33 MB (each session's arena otherwise keeps its
    own copy of the ~30 MB of convolution buffers).
    """
    global _SHARED_ARENA
    if _SHARED_ARENA:
        return
    ort = onnx_runtime()

    arena, default = ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, ort.OrtMemType.DEFAULT
    info = ort.OrtMemoryInfo("Cpu", arena, 0, default)
    # No cap (0), extend by powers of two (0), default dead bytes (-1); a first chunk of 32 MB
    # holds one patch's run of either network, so the arena does not grow in doubling steps
    # (a Dask worker peaked ~8 MB lower, bench/dask_bench.py).
    ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 0, 32 << 20, -1))
    _SHARED_ARENA = True


def session_options(threads: int = 1) -> onnxruntime.SessionOptions:
    """Options for every onnxruntime session of the tagger: `threads` threads, the shared arena."""
    ort = onnx_runtime()

    _share_one_arena()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.use_env_allocators", "1")
    # Tensors reuse the arena piece by piece instead of one block planned per run: a worker
    # peaks ~15 MB lower, as fast. (Without the arena, glibc's heap fragments and a worker
    # grows to 400-500 MB over a few tracks, differently from run to run.)
    options.enable_mem_pattern = False
    return options


class MusicnnEmbedder:
    """An onnxruntime session on one musicnn network; create once per process and reuse.
    (`mertag.tagger.features` keeps one per network and places each one's columns in a row.)"""

    def __init__(self, path: Path, threads: int = 1) -> None:
        ort = onnx_runtime()
        self.path = path
        self.session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )

    def embed_patches(self, patches: np.ndarray) -> np.ndarray:
        """(n, 187, 96) log-mel patches -> (n, 250) float32: penultimate then tags."""
        patches = np.asarray(patches, dtype=np.float32)
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, MUSICNN_N_MELS):
            raise ValueError(
                f"expected patches of shape (n, {PATCH_FRAMES}, {MUSICNN_N_MELS}), "
                f"got {patches.shape}"
            )
        if len(patches) == 0:
            return np.zeros((0, NETWORK_DIM), dtype=np.float32)
        chunks = []
        for start in range(0, len(patches), _BATCH_PATCHES):
            batch = {"mel_patches": patches[start : start + _BATCH_PATCHES]}
            penultimate, tags = self.session.run(["penultimate", "tags"], batch)
            chunks.append(np.concatenate([penultimate, tags], axis=1))
        return np.concatenate(chunks, axis=0).astype(np.float32, copy=False)

    def embed(self, y: np.ndarray) -> np.ndarray:
        """Mono 16-kHz audio -> (n_patches, 250) embeddings; no rows when shorter than a patch."""
        return self.embed_patches(mel_patches(y))
