"""Graded valence/arousal targets from the clips' AllMusic mood words, for a regression head.

A 4Q clip's quadrant was derived from its mood words, so the quadrant says only which corner of
Russell's plane a clip leans to. The words say more: "Calm/Peaceful" clips are all low-arousal,
"Bittersweet" ones split between sad and calm. Each word gets a position on the plane, the mean
corner (mertag.tagger.mood.CORNERS) of the training clips that carry it, and a clip's target is
the mean position of its words: graded, inside [-1, 1]^2, and near a corner only when all its
words agree. Positions come from the training clips of a fold alone (words on at least
`min_clips` of them), so a cross-validation fold never sees its test clips' quadrants; a clip
with no such word has no target (NaN) and is left out of the loss and of the scores.

No published valence/arousal lexicon (e.g. Warriner et al.'s norms) is on this machine, so the
positions are learnt from the 4Q labels themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from mertag.tagger.mood import CORNERS, QUADRANTS

#: A word needs this many training clips to get a position (the mean of that many corners);
#: with 5, every one of the 720 4Q clips has at least one positioned word.
MIN_CLIPS = 5

#: Weight of the valence/arousal loss (mean squared error) beside the quadrant loss; 0: no head,
#: as the shipped models are trained.
WEIGHT = 0.0

_CORNER = np.array([CORNERS[q] for q in QUADRANTS], dtype=np.float64)  # (4, 2) per label index


def word_positions(
    words: Sequence[Sequence[str]],
    labels: np.ndarray,
    train: np.ndarray,
    min_clips: int = MIN_CLIPS,
) -> dict[str, tuple[float, float]]:
    """Each word's (valence, arousal): the mean corner of the `train` clips carrying it, for the
    words at least `min_clips` of them carry."""
    corners: dict[str, list[int]] = defaultdict(list)
    for i in train:
        for w in set(words[int(i)]):
            corners[w].append(int(labels[int(i)]))
    return {
        w: (float(_CORNER[q, 0].mean()), float(_CORNER[q, 1].mean()))
        for w, q in ((w, np.array(qs)) for w, qs in corners.items())
        if len(q) >= min_clips
    }


def va_targets(
    words: Sequence[Sequence[str]],
    labels: np.ndarray,
    train: np.ndarray,
    min_clips: int = MIN_CLIPS,
) -> np.ndarray:
    """(n_clips, 2) float32: every clip's mean word position, over positions learnt from the
    `train` clips; NaN for a clip none of whose words has a position."""
    positions = word_positions(words, labels, train, min_clips)
    out = np.full((len(words), 2), np.nan, dtype=np.float32)
    for i, clip in enumerate(words):
        known = [positions[w] for w in clip if w in positions]
        if known:
            out[i] = np.mean(known, axis=0)
    return out
