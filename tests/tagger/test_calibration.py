"""A model's calibration entry: parsed strictly, applied without changing any quadrant."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mertag.tagger.calibration import Calibration, CalibrationError, temperature_scale


def test_no_entry_is_the_identity():
    c = Calibration.from_metadata(None)
    p = np.array([[0.7, 0.1, 0.1, 0.1]], dtype=np.float32)
    assert c.apply(p) is p and c.uncertain_below is None


def test_temperature_softens_without_reordering():
    p = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    soft = temperature_scale(p, 2.0)
    assert soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert (soft.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (soft.max(axis=1) < p.max(axis=1)).all()
    np.testing.assert_allclose(temperature_scale(p, 1.0), p)


def test_entries_are_read_and_checked():
    entry = Calibration.from_metadata(json.dumps({"temperature": 1.5, "uncertain_below": 0.55}))
    assert entry == Calibration(1.5, 0.55)
    for bad in (
        '{"temperature": 0}',
        '{"method": "isotonic"}',
        "[1]",
        "{",
        '{"uncertain_below": -1}',
    ):
        with pytest.raises(CalibrationError):
            Calibration.from_metadata(bad)
