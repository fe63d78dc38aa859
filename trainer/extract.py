"""Feature extraction for training: every clip's sequences, clean and augmented, cached, parallel.

A clip is decoded once with `mertag.tagger.features.decode_excerpt` and its clean features come from
`features_from_audio`, the two steps of `extract_track` that `mertag scan` runs; augmented copies
alter the same audio before `features_from_audio`.
Files are hashed in the main process and only cache misses go to the joblib workers, one task per
clip (its audio decoded once for all its missing variants); workers write the cache themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mertag.tagger.audio import AudioError
from mertag.tagger.features import decode_excerpt, features_from_audio
from mertag.trainer.augment import Augmentation, rng_for
from mertag.trainer.cache import CLEAN, FeatureCache, cache_key, file_digest
from mertag.trainer.dataset import Clip, Problem
from mertag.trainer.progress import track


@dataclass
class ClipFeatures:
    """One clip's feature sequences (one per excerpt) for each variant it has."""

    clip: Clip
    variants: dict[str, list[np.ndarray]]


@dataclass
class Extraction:
    """The clips whose clean features could be computed, and what went wrong with the others.

    `cache_hits` and `computed` count variants (a clip with three augmentations has four).
    """

    clips: list[ClipFeatures]
    variants: tuple[str, ...]
    problems: list[Problem] = field(default_factory=list)
    cache_hits: int = 0
    computed: int = 0


class ExtractionError(Exception):
    """An unexpected failure (a bug, not a bad file) while extracting one clip."""


def _compute(
    path: Path,
    digest: str,
    missing: Sequence[str],
    augmentations: Sequence[Augmentation],
    cache_root: Path,
) -> tuple[dict[str, list[np.ndarray]], dict[str, str]]:
    """Compute a clip's missing variants; returns (features, reason per failed variant)."""
    out: dict[str, list[np.ndarray]] = {}
    failed: dict[str, str] = {}
    wanted = [a for a in augmentations if a.spec in missing]
    try:
        # Decoded once for every variant; the clean one is exactly what `extract_track` gives.
        y, _ = decode_excerpt(path)
        if CLEAN in missing:
            out[CLEAN] = [features_from_audio(y)]
    except AudioError as exc:
        return {}, {v: str(exc) for v in missing}
    for aug in wanted:
        rng = rng_for(digest, aug.spec)
        try:
            out[aug.spec] = [features_from_audio(aug.apply(y, rng))]
        except AudioError as exc:
            failed[aug.spec] = str(exc)
    cache = FeatureCache(cache_root)
    for variant, sequences in out.items():
        cache.save(cache_key(digest, variant), sequences)
    return out, failed


def _task(
    index: int,
    clip: Clip,
    digest: str,
    missing: Sequence[str],
    augmentations: Sequence[Augmentation],
    cache_root: Path,
) -> tuple[int, dict[str, list[np.ndarray]], dict[str, str]]:
    try:
        features, failed = _compute(clip.path, digest, missing, augmentations, cache_root)
    except Exception as exc:  # re-raised with the clip's name: a bug, never a skipped file
        raise ExtractionError(f"{clip.name}: {type(exc).__name__}: {exc}") from exc
    return index, features, failed


def extract_clips(
    clips: Sequence[Clip],
    cache_dir: Path,
    augmentations: Sequence[Augmentation] = (),
    n_jobs: int = -1,
    progress: bool = False,
) -> Extraction:
    """Features of every clip (clean plus one copy per augmentation), from cache where possible.

    A clip whose clean features cannot be computed (undecodable, too short) is left out and
    reported; a failed augmented copy is reported and the clip kept without it.
    """
    from joblib import Parallel, delayed

    cache = FeatureCache(cache_dir)
    variants = (CLEAN, *(a.spec for a in augmentations))
    found: list[dict[str, list[np.ndarray]]] = [{} for _ in clips]
    digests: list[str | None] = [None] * len(clips)
    problems: list[Problem] = []
    todo: list[tuple[int, list[str]]] = []
    hits = 0
    for i, clip in enumerate(clips):
        try:
            digests[i] = digest = file_digest(clip.path)
        except OSError as exc:
            problems.append(Problem(clip.name, f"cannot read file ({exc.strerror or exc})"))
            continue
        missing = []
        for variant in variants:
            sequences = cache.load(cache_key(digest, variant))
            if sequences is None:
                missing.append(variant)
            else:
                found[i][variant] = sequences
                hits += 1
        if missing:
            todo.append((i, missing))

    computed = 0
    failures: dict[int, dict[str, str]] = {}
    if todo:
        jobs = (
            delayed(_task)(i, clips[i], digests[i], missing, augmentations, cache.root)
            for i, missing in todo
        )
        results: Iterable = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs)
        results = track(results, len(todo), "Extracting features", progress)
        for i, features, failed in results:
            found[i].update(features)
            computed += len(features)
            if failed:
                failures[i] = failed

    kept: list[ClipFeatures] = []
    for i, clip in enumerate(clips):
        failed = failures.get(i, {})
        if CLEAN in failed:
            problems.append(Problem(clip.name, failed[CLEAN]))
            continue
        for variant, reason in failed.items():
            problems.append(Problem(clip.name, f"augmented copy {variant} skipped: {reason}"))
        if CLEAN in found[i]:
            kept.append(ClipFeatures(clip=clip, variants=found[i]))
    return Extraction(
        clips=kept, variants=variants, problems=problems, cache_hits=hits, computed=computed
    )
