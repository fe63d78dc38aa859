"""Fuzzing the decode-and-tag path: damaged files of every format either decode or fail with
AudioError, and a tag write either succeeds without touching the audio or fails with TagError
leaving every byte as it was. Bounded and derandomised, so the run is the same every time."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mertag.tagger.audio import AudioError, decode
from mertag.tagger.tags import TagError, audio_fingerprint, read_tags, write_tags
from tests.tagger.fault_helpers import FORMATS, make_track, temp_files

EXAMPLES = 400
VALUES = {
    "MOOD": "Relaxed",
    "MERTAG_QUADRANT": "Q4",
    "MERTAG_VALENCE": "0.400",
    "MERTAG_AROUSAL": "-0.300",
    "MERTAG_CONFIDENCE": "0.610",
    "MERTAG_MODEL": "fuzz",
}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One short valid track per format, as bytes to damage."""
    folder = tmp_path_factory.mktemp("bases")
    return {s: make_track(folder / f"base{s}", seconds=1.0).read_bytes() for s in FORMATS}


@st.composite
def damage(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with up to three changes: bytes overwritten, junk inserted, or the end cut off;
    positions favour the first 512 bytes, where the headers are."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.one_of(st.integers(0, 511), st.integers(0, max(0, len(out) - 1))))
        where = min(where, len(out))
        kind = draw(st.sampled_from(["overwrite"] * 5 + ["insert"] * 3 + ["cut"] * 2))
        if kind == "overwrite":
            out[where : where + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "insert":
            out[where:where] = draw(st.binary(min_size=1, max_size=64))
        else:
            del out[where:]
    return bytes(out)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_damaged_files_decode_or_fail_cleanly_and_tags_never_harm_them(
    bases: dict[str, bytes], data: st.DataObject
) -> None:
    suffix = data.draw(st.sampled_from(sorted(bases)))
    damaged = data.draw(damage(bases[suffix]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"track{suffix}"
        path.write_bytes(damaged)
        try:
            y = decode(path)
        except AudioError as e:
            assert str(e) and "\n" not in str(e)
            event(f"{suffix}: not decoded")
        else:
            event(f"{suffix}: decoded")
            assert y.dtype == np.float32 and y.size and np.isfinite(y).all()
        try:
            fingerprint: str | None = audio_fingerprint(path)
        except TagError:
            fingerprint = None
        try:
            write_tags(path, VALUES)
        except TagError as e:
            assert str(e) and "\n" not in str(e)
            event(f"{suffix}: not tagged")
            assert path.read_bytes() == damaged  # refused: every byte as it was
        else:
            event(f"{suffix}: tagged")
            assert read_tags(path) == {**VALUES, "MERTAG_MOOD": VALUES["MOOD"]}
            if fingerprint is not None:
                assert audio_fingerprint(path) == fingerprint  # the audio is untouched
        assert not temp_files(Path(folder))
