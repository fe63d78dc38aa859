"""Cross-validation folds over clips: stratified by quadrant, grouped by artist.

Grouping matters on 4Q: some artists have a dozen clips, nearly all in one quadrant, so folds that
split an artist would let a model recognise the artist instead of the mood. Folds grouped by
genre family (`genre_family_groups`) measure the genre shortcut: each family is then held out
whole, so a model cannot lean on "this genre is mostly Q2" for the clips it is scored on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def make_folds(
    labels: np.ndarray, groups: np.ndarray, n_folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train clip indices, test clip indices) per fold; the same seed gives the same folds."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    dummy = np.zeros((len(labels), 1))
    with warnings.catch_warnings():
        # Small classes only warn; check_usable has already refused data too small to split.
        warnings.filterwarnings("ignore", message="The least populated class")
        return [
            (np.sort(train), np.sort(test)) for train, test in splitter.split(dummy, labels, groups)
        ]


def genre_family_groups(genres: Sequence[str], groups: Sequence[int]) -> np.ndarray:
    """Per clip, a code for its genre family, made the same for every clip of one group
    (artist): the group's most common family (ties: the first seen), so genre-grouped folds
    stay artist-grouped too. Clips without a genre form one family ("")."""
    by_group: dict[int, Counter[str]] = {}
    for genre, group in zip(genres, groups, strict=True):
        by_group.setdefault(int(group), Counter())[genre] += 1
    family = {g: c.most_common(1)[0][0] for g, c in by_group.items()}
    codes: dict[str, int] = {}
    return np.asarray(
        [codes.setdefault(family[int(g)], len(codes)) for g in groups], dtype=np.int64
    )
