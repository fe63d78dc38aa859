"""Extraction for training: the tagger's own features, cached, bad audio reported by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.features import FEATURE_DIM, extract_track
from mertag.trainer.augment import Noise, Shift
from mertag.trainer.cache import CLEAN
from mertag.trainer.dataset import load_dataset
from mertag.trainer.extract import extract_clips
from mertag.trainer.table import build_table

pytestmark = pytest.mark.usefixtures("need_frontend")


@pytest.fixture
def four_clips(tiny_data: Path, tmp_path: Path) -> Path:
    """One clip per quadrant plus a text file named like audio, as a folder dataset."""
    root = tmp_path / "data"
    for q in ("Q1", "Q2", "Q3", "Q4"):
        (root / q).mkdir(parents=True)
        shutil.copy(tiny_data / q / f"{q.lower()}_0.wav", root / q)
    (root / "Q2" / "notes.wav").write_text("this is not audio\n")
    return root


def test_second_extraction_decodes_nothing(four_clips: Path, tmp_path: Path):
    ds = load_dataset(four_clips)
    augs = (Noise(), Shift())
    cache = tmp_path / "cache"
    first = extract_clips(ds.clips, cache, augs, n_jobs=1)
    assert (first.cache_hits, first.computed) == (0, 12)
    assert len(list(cache.rglob("*.npz"))) == 12
    second = extract_clips(ds.clips, cache, augs, n_jobs=1)
    assert (second.cache_hits, second.computed) == (12, 0)
    for a, b in zip(first.clips, second.clips, strict=True):
        for variant in a.variants:
            assert all(
                np.array_equal(x, y)
                for x, y in zip(a.variants[variant], b.variants[variant], strict=True)
            )
    # Asking for one more variant computes only that one.
    third = extract_clips(ds.clips, cache, (Noise(), Shift(), Noise(5, 6)), n_jobs=1)
    assert (third.cache_hits, third.computed) == (12, 4)


def test_undecodable_file_is_reported_by_name_and_skipped(four_clips: Path, tmp_path: Path):
    ds = load_dataset(four_clips)
    result = extract_clips(ds.clips, tmp_path / "cache", n_jobs=1)
    assert [c.clip.name for c in result.clips] == [
        "Q1/q1_0.wav",
        "Q2/q2_0.wav",
        "Q3/q3_0.wav",
        "Q4/q4_0.wav",
    ]
    assert [p.name for p in result.problems] == ["Q2/notes.wav"]
    assert "not a readable audio file" in result.problems[0].reason


def test_clean_features_are_the_taggers_and_copies_differ(four_clips: Path, tmp_path: Path):
    ds = load_dataset(four_clips)
    result = extract_clips(ds.clips[:1], tmp_path / "cache", (Noise(),), n_jobs=1)
    item = result.clips[0]
    expected = extract_track(item.clip.path).sequences
    assert all(np.array_equal(a, b) for a, b in zip(item.variants[CLEAN], expected, strict=True))
    clean, noisy = item.variants[CLEAN][0], item.variants[Noise().spec][0]
    assert clean.shape == noisy.shape == (2, FEATURE_DIM)
    assert not np.array_equal(clean, noisy)


def test_table_keeps_clips_variants_and_sequences(four_clips: Path, tmp_path: Path):
    ds = load_dataset(four_clips)
    t = build_table(extract_clips(ds.clips, tmp_path / "cache", (Shift(),), n_jobs=1))
    assert t.n_clips == 4 and t.variants == (CLEAN, Shift().spec)
    assert list(t.labels) == [0, 1, 2, 3]
    assert len(t.rows(np.array([0, 2]), augmented=False)) == 2
    assert set(t.clip[t.rows(np.array([0, 2]), augmented=True)]) == {0, 2}
    assert t.sequence(0).shape == (2, FEATURE_DIM)
