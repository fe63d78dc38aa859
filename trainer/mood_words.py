"""The clips' mood words (AllMusic's, in the 4Q labels CSV) as a second training target.

Each 4Q clip carries about six AllMusic mood words ("Gloomy; Weary; Somber", "Calm/Peaceful;
Soothing"); its quadrant was derived from them. Words finer than the quadrant tell sad from calm
within the low-arousal half, where the model confuses Q3 and Q4 most, so a net can learn them
beside the quadrant (multi-task learning): a multi-label head on the same pooled representation,
trained with binary cross-entropy, weighted against the quadrant loss, and dropped after training
(the exported model outputs the quadrants only).

The vocabulary comes from the training clips alone (a word counts when at least `min_clips` of
them carry it), so a cross-validation fold never learns which words its test clips have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

#: Words carried by fewer training clips than this are left out of the target.
MIN_CLIPS = 20

#: Weight of the mood-word loss beside the quadrant loss, as the shipped models were trained
#: (session 6's experiment M: fold-seed mean macro-F1 0.7725 against 0.767 without the words;
#: MODEL_CARD.md). It starts near 0.69 and falls to ~0.2, below the quadrant loss throughout.
WEIGHT = 1.0

#: Separator of the words in a labels CSV's mood column.
WORD_SEPARATOR = ";"


def parse_words(text: str) -> tuple[str, ...]:
    """'Gloomy; Weary;  Somber' -> ('Gloomy', 'Weary', 'Somber'), case kept, blanks dropped."""
    return tuple(w.strip() for w in text.split(WORD_SEPARATOR) if w.strip())


def vocabulary(words: Sequence[Sequence[str]], min_clips: int = MIN_CLIPS) -> tuple[str, ...]:
    """The words at least `min_clips` of the clips carry, most common first (ties by name)."""
    counts = Counter(w for clip in words for w in set(clip))
    kept = [w for w, n in counts.items() if n >= min_clips]
    return tuple(sorted(kept, key=lambda w: (-counts[w], w)))


def word_targets(
    words: Sequence[Sequence[str]], train: np.ndarray, min_clips: int = MIN_CLIPS
) -> np.ndarray:
    """Multi-hot targets (n_clips, K) for every clip over the vocabulary of the `train` clips;
    K is 0 when no word is common enough (the head is then not trained)."""
    vocab = vocabulary([words[int(i)] for i in train], min_clips)
    column = {w: j for j, w in enumerate(vocab)}
    targets = np.zeros((len(words), len(vocab)), dtype=np.float32)
    for i, clip in enumerate(words):
        for w in clip:
            if w in column:
                targets[i, column[w]] = 1.0
    return targets
