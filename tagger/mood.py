"""From the four probabilities to what mertag reports: quadrant, mood word, valence, arousal.

Valence and arousal are expectations over the quadrants' corners of Russell's plane:
valence = (p_Q1 + p_Q4) - (p_Q2 + p_Q3) and arousal = (p_Q1 + p_Q2) - (p_Q3 + p_Q4), both in
[-1, 1]; confidence is the largest probability. A model with a valence/arousal regression head
(mertag.tagger.model) gives its own values instead, and they are reported as computed: the
quadrant and mood word still come from the probabilities, so the point may lie in another
quadrant than the mood (a track the model thinks calm but close to sad). A prediction whose
confidence is below the model's threshold is `uncertain`: it keeps its quadrant, probabilities,
valence and arousal (for the index and the MERTAG_* fields); given an uncertain word, that is its
mood instead of the quadrant's word ("" for none, and then no MOOD is written).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

QUADRANTS: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4")
DEFAULT_MOODS: dict[str, str] = {"Q1": "Happy", "Q2": "Angry", "Q3": "Sad", "Q4": "Relaxed"}
# Each quadrant's corner on the valence-arousal plane.
CORNERS: dict[str, tuple[float, float]] = {
    "Q1": (1.0, 1.0),
    "Q2": (-1.0, 1.0),
    "Q3": (-1.0, -1.0),
    "Q4": (1.0, -1.0),
}


@dataclass(frozen=True)
class Prediction:
    """One track's mood as mertag reports, tags and indexes it."""

    quadrant: str
    mood: str
    probabilities: tuple[float, float, float, float]
    confidence: float
    valence: float
    arousal: float
    model_id: str
    uncertain: bool = False
    """Confidence below the threshold (`mood` is then the uncertain word, if one was given)."""


ROUNDING = 1e-9
"""How far below zero a probability may come out of arithmetic and still count as zero."""


def predict_mood(
    probabilities: Sequence[float] | np.ndarray[Any, Any],
    model_id: str,
    moods: Mapping[str, str] | None = None,
    uncertain_below: float | None = None,
    uncertain_word: str | None = None,
    valence_arousal: tuple[float, float] | None = None,
) -> Prediction:
    """Turn probabilities over Q1..Q4 into a Prediction (mood words default to DEFAULT_MOODS);
    a confidence below `uncertain_below` makes it uncertain, with `uncertain_word` as its mood
    when that is given (None: the quadrant's word, only the flag is set). `valence_arousal`:
    the model's own values in [-1, 1] (a regression head), used instead of the corner
    expectations."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape == (4,):
        p = np.where((p < 0) & (p > -ROUNDING), 0.0, p)  # float noise, not a negative value
    if p.shape != (4,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        # Normalising [1.5, -0.5, 0, 0] would give a confidence of 1.5: never tag that.
        raise ValueError(f"expected four finite non-negative probabilities, got {p!r}")
    p = p / p.sum()
    best = int(np.argmax(p))
    quadrant = QUADRANTS[best]
    words = {**DEFAULT_MOODS, **(moods or {})}
    if valence_arousal is None:
        valence = float(sum(p[i] * CORNERS[q][0] for i, q in enumerate(QUADRANTS)))
        arousal = float(sum(p[i] * CORNERS[q][1] for i, q in enumerate(QUADRANTS)))
    else:
        valence, arousal = plane_point(valence_arousal)
    uncertain = uncertain_below is not None and float(p[best]) < uncertain_below
    return Prediction(
        quadrant=quadrant,
        mood=uncertain_word if uncertain and uncertain_word is not None else words[quadrant],
        probabilities=(float(p[0]), float(p[1]), float(p[2]), float(p[3])),
        confidence=float(p[best]),
        valence=valence,
        arousal=arousal,
        model_id=model_id,
        uncertain=uncertain,
    )


def plane_point(valence_arousal: Sequence[float]) -> tuple[float, float]:
    """(valence, arousal) as floats in [-1, 1] (rounding beyond it by ROUNDING clipped);
    ValueError for anything else."""
    v = np.asarray(valence_arousal, dtype=np.float64)
    if v.shape != (2,) or not np.all(np.isfinite(v)) or np.any(np.abs(v) > 1.0 + ROUNDING):
        raise ValueError(f"expected valence and arousal in [-1, 1], got {valence_arousal!r}")
    v = np.clip(v, -1.0, 1.0)
    return float(v[0]), float(v[1])


ENERGY_LEVELS = 10
"""ENERGY runs 1..ENERGY_LEVELS, as DJ software shows it (Mixed In Key's 1-10 scale)."""


def energy_level(arousal: float) -> int:
    """The ENERGY that an arousal in [-1, 1] maps to: 1..10 in ten bins of equal width (-1 -> 1,
    0 -> 6, 1 -> 10), so a library's energies spread as its arousals do."""
    if not -1.0 - ROUNDING <= arousal <= 1.0 + ROUNDING:
        raise ValueError(f"arousal must lie in [-1, 1], got {arousal!r}")
    step = int((min(max(arousal, -1.0), 1.0) + 1.0) * ENERGY_LEVELS / 2)
    return 1 + min(ENERGY_LEVELS - 1, step)


def mood_shown(mood: str | None, quadrant: str | None, uncertain: object) -> str:
    """A track's mood as lists show it: 'Sad (Q3)'; an uncertain one 'uncertain (Q3?)', or its
    uncertain word with the same mark."""
    if not quadrant:
        return mood or ""
    if uncertain:
        return f"{mood or 'uncertain'} ({quadrant}?)"
    return f"{mood} ({quadrant})" if mood else quadrant
