"""All extracted sequences in one ragged table, the form cross-validation and fitting work on.

Rows of `patches` are the patches of every sequence back to back; `start`/`length` locate a
sequence, `clip`/`variant` say whose it is (variant 0 is the clean audio). One big array keeps
joblib workers cheap (it is memory-mapped, not pickled, for each task).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mertag.trainer.cache import CLEAN
from mertag.trainer.extract import Extraction
from mertag.trainer.mood_words import word_targets
from mertag.trainer.valence_arousal import va_targets


@dataclass(frozen=True)
class FeatureTable:
    patches: np.ndarray  # (total patches, FEATURE_DIM) float32
    start: np.ndarray  # per sequence
    length: np.ndarray  # per sequence
    clip: np.ndarray  # per sequence: clip index
    variant: np.ndarray  # per sequence: index into `variants`
    labels: np.ndarray  # per clip: 0..3
    groups: np.ndarray  # per clip: group codes
    names: tuple[str, ...]  # per clip
    variants: tuple[str, ...]  # CLEAN first
    genre_groups: np.ndarray | None = None  # per clip: genre family codes (folds.py), if known
    moods: tuple[tuple[str, ...], ...] = ()  # per clip: its mood words (mood_words.py), if known

    @property
    def n_clips(self) -> int:
        return len(self.labels)

    def clip_indices(self) -> np.ndarray:
        return np.arange(self.n_clips)

    def sequence(self, i: int) -> np.ndarray:
        return self.patches[self.start[i] : self.start[i] + self.length[i]]

    def sequences(self, rows: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        return [self.sequence(int(i)) for i in rows]

    def rows(self, clips: np.ndarray, augmented: bool) -> np.ndarray:
        """Sequence indices of the given clips: clean only, or clean and augmented copies."""
        mask = np.isin(self.clip, clips)
        if not augmented:
            mask &= self.variant == 0
        return np.flatnonzero(mask)

    def word_targets(
        self, train: np.ndarray, rows: np.ndarray, min_clips: int
    ) -> np.ndarray | None:
        """Mood-word targets of the sequences `rows`, over the vocabulary of the `train` clips
        (None when the clips have no mood words)."""
        if len(self.moods) != self.n_clips:
            return None
        return word_targets(self.moods, train, min_clips)[self.clip[rows]]

    def va_targets(self, train: np.ndarray, min_clips: int) -> np.ndarray | None:
        """Every clip's graded (valence, arousal) target from its mood words, over word
        positions learnt from the `train` clips (NaN where none applies; None when the clips
        have no mood words)."""
        if len(self.moods) != self.n_clips:
            return None
        return va_targets(self.moods, self.labels, train, min_clips)


def build_table(extraction: Extraction) -> FeatureTable:
    """Stack an extraction's sequences; clips keep extraction order."""
    variants = extraction.variants
    assert variants[0] == CLEAN
    chunks: list[np.ndarray] = []
    start: list[int] = []
    length: list[int] = []
    clip_of: list[int] = []
    variant_of: list[int] = []
    offset = 0
    for c, item in enumerate(extraction.clips):
        for v, name in enumerate(variants):
            for seq in item.variants.get(name, []):
                chunks.append(seq)
                start.append(offset)
                length.append(len(seq))
                clip_of.append(c)
                variant_of.append(v)
                offset += len(seq)
    group_codes: dict[str, int] = {}
    groups = [
        group_codes.setdefault(item.clip.group, len(group_codes)) for item in extraction.clips
    ]
    from mertag.trainer.folds import genre_family_groups

    return FeatureTable(
        patches=np.concatenate(chunks).astype(np.float32, copy=False),
        start=np.asarray(start, dtype=np.int64),
        length=np.asarray(length, dtype=np.int64),
        clip=np.asarray(clip_of, dtype=np.int64),
        variant=np.asarray(variant_of, dtype=np.int64),
        labels=np.asarray([item.clip.label for item in extraction.clips], dtype=np.int64),
        groups=np.asarray(groups, dtype=np.int64),
        genre_groups=genre_family_groups([item.clip.genre for item in extraction.clips], groups),
        names=tuple(item.clip.name for item in extraction.clips),
        moods=tuple(item.clip.moods for item in extraction.clips),
        variants=tuple(variants),
    )
