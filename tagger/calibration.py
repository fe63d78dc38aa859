"""Calibration: a model's probabilities rescaled so that its confidence means what it says.

A mertag model may carry a `calibration` entry in its ONNX metadata (JSON), fitted by the trainer
on out-of-fold probabilities (`mertag.trainer.calibrate`):

    {"method": "temperature", "temperature": T, "uncertain_below": t, ...}

Temperature scaling divides the log-probabilities by T and renormalises: it keeps every
prediction's quadrant (the order of the probabilities does not change) and only makes them less
(T > 1) or more (T < 1) sure. `uncertain_below` is the confidence, after scaling, below which a
prediction is marked uncertain by default. A model without the entry is used as it was trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np


class CalibrationError(ValueError):
    """A calibration entry that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling and the default confidence below which a prediction is uncertain."""

    temperature: float = 1.0
    uncertain_below: float | None = None

    @classmethod
    def from_metadata(cls, text: str | None) -> Calibration:
        """Parse a model's `calibration` metadata; no entry gives the identity."""
        if not text:
            return cls()
        try:
            entry = json.loads(text)
            if entry.get("method", "temperature") != "temperature":
                raise CalibrationError(f"unknown calibration method {entry['method']!r}")
            temperature = float(entry.get("temperature", 1.0))
            below = entry.get("uncertain_below")
            below = None if below is None else float(below)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CalibrationError(f"malformed calibration ({exc})") from exc
        if not (np.isfinite(temperature) and temperature > 0):
            raise CalibrationError(f"temperature must be positive, not {temperature}")
        if below is not None and not 0.0 <= below <= 1.0:
            raise CalibrationError(f"uncertain_below must be in [0, 1], not {below}")
        return cls(temperature, below)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Rescale probabilities (..., 4); the identity when the temperature is 1."""
        return temperature_scale(probabilities, self.temperature)


def temperature_scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) along the last axis, in the input's dtype."""
    p = np.asarray(probabilities)
    if temperature == 1.0:
        return p
    logits = np.log(np.clip(p.astype(np.float64), 1e-12, None)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=-1, keepdims=True)).astype(p.dtype)
