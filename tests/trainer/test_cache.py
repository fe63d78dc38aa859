"""The feature cache: keyed by content, schema and variant; torn entries are misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mertag.tagger.features import FEATURE_DIM
from mertag.trainer.cache import FeatureCache, cache_key, file_digest


def test_round_trip(tmp_path: Path):
    cache = FeatureCache(tmp_path)
    seqs = [
        np.random.default_rng(0).normal(size=(n, FEATURE_DIM)).astype(np.float32) for n in (3, 10)
    ]
    key = cache_key("abc", "clean")
    assert cache.load(key) is None
    cache.save(key, seqs)
    got = cache.load(key)
    assert got is not None and len(got) == 2
    assert all(np.array_equal(a, b) for a, b in zip(got, seqs, strict=True))
    assert not list(tmp_path.rglob("*.tmp"))


def test_key_depends_on_content_and_variant(tmp_path: Path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert file_digest(a) == file_digest(b)
    b.write_bytes(b"other")
    assert file_digest(a) != file_digest(b)
    assert cache_key("d", "clean") != cache_key("d", "noise(snr_db=10..30)")


def test_torn_or_foreign_entries_are_misses(tmp_path: Path):
    cache = FeatureCache(tmp_path)
    key = cache_key("d")
    cache.path_for(key).parent.mkdir(parents=True)
    cache.path_for(key).write_bytes(b"not a zip")
    assert cache.load(key) is None
    cache.save(key, [np.zeros((2, 5), np.float32)])  # wrong width: from another schema
    assert cache.load(key) is None
