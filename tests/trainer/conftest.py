"""Fixtures for the trainer tests: a tiny labelled dataset of synthetic audio, made on the fly.

Four quadrants, four clips each, 6.5 s (two musicnn patches) at 22.05 kHz, each quadrant a
different kind of sound (bright fast pulses, loud noise bursts, low slow tones, soft swells) so a
model can tell them apart after an epoch or two. Built once per session, with one shared feature
cache, so only the first test that extracts pays for it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

SR = 22050
SECONDS = 6.5
PER_QUADRANT = 4


def synth(quadrant: str, k: int) -> np.ndarray:
    """A clip whose character depends on its quadrant; `k` varies pitch and randomness."""
    rng = np.random.default_rng(100 * int(quadrant[1]) + k)
    t = np.arange(int(SR * SECONDS)) / SR
    if quadrant == "Q1":  # bright major triad, fast pulses
        f = 440.0 * 2 ** (k / 12)
        tone = sum(np.sin(2 * np.pi * f * r * t) for r in (1.0, 1.26, 1.5))
        y = 0.25 * tone * (np.sin(2 * np.pi * 5.0 * t) > 0)
    elif quadrant == "Q2":  # loud noise bursts over a harsh square wave
        square = np.sign(np.sin(2 * np.pi * (110.0 + 10 * k) * t))
        y = 0.4 * square + 0.5 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 3.0 * t) > 0.3)
    elif quadrant == "Q3":  # low slow minor tones, quiet
        f = 110.0 * 2 ** (k / 12)
        y = 0.2 * (np.sin(2 * np.pi * f * t) + np.sin(2 * np.pi * f * 1.19 * t))
        y *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t)
    else:  # soft mid tone with slow swells and a little air
        f = 330.0 * 2 ** (k / 12)
        y = 0.15 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
        y += 0.01 * rng.standard_normal(t.size)
    return np.clip(y, -1, 1).astype(np.float32)


def write_dataset(root: Path) -> Path:
    """Q1..Q4 folders of WAV clips under `root`, plus root/labels.csv with an artist column."""
    import soundfile as sf

    rows = []
    for q in ("Q1", "Q2", "Q3", "Q4"):
        (root / q).mkdir(parents=True)
        for k in range(PER_QUADRANT):
            rel = f"{q}/{q.lower()}_{k}.wav"
            sf.write(root / rel, synth(q, k), SR, subtype="PCM_16")
            # Two artists per quadrant, two clips each: groups for the folds; each artist's
            # genre family is one of two, so genre-grouped folds can be made too.
            rows.append(
                {
                    "clip": f"{q}-{k}",
                    "file": rel,
                    "quadrant": q,
                    "artist": f"artist-{q}-{k // 2}",
                    "genres": f"Genre{k // 2}; Other",
                }
            )
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["clip", "file", "quadrant", "artist", "genres"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def need_frontend() -> None:
    """Skip when a musicnn front end (models/musicnn_*.onnx) is absent."""
    from mertag.tagger.embeddings import frontend_paths

    missing = [p.name for p in frontend_paths() if not p.is_file()]
    if missing:
        pytest.skip(f"models/{missing[0]} is absent: features cannot be computed")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic dataset (do not modify; copy it first)."""
    return write_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A feature cache shared by the tests that train on `tiny_data`."""
    return tmp_path_factory.mktemp("cache")
