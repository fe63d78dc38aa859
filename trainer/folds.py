"""Cross-validation folds over clips: stratified by quadrant, grouped by artist.

Grouping matters on 4Q: some artists have a dozen clips, nearly all in one quadrant, so folds that
split an artist would let a model recognise the artist instead of the mood.
"""

from __future__ import annotations

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
