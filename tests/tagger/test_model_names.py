"""The shipped models' ids read from the ONNX files without a session, against what
onnxruntime itself reads from them."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from mertag.models import MODELS_DIR, PACKAGED_MODELS
from mertag.tagger.model_names import onnx_metadata, packaged_model_id


@pytest.mark.parametrize("name", sorted(PACKAGED_MODELS))
def test_metadata_is_what_onnxruntime_reads(name: str) -> None:
    path = MODELS_DIR / PACKAGED_MODELS[name]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert onnx_metadata(path) == session.get_modelmeta().custom_metadata_map
    assert packaged_model_id(name) == packaged_model_id(name.upper())
    assert packaged_model_id(name) == session.get_modelmeta().custom_metadata_map["model_id"]


def test_names_that_are_not_shipped_models_and_broken_files(tmp_path: Path) -> None:
    assert packaged_model_id("mertag-lstm") is None
    broken = tmp_path / "broken.onnx"
    broken.write_bytes((MODELS_DIR / PACKAGED_MODELS["fast"]).read_bytes()[:1000])
    with pytest.raises(ValueError):
        onnx_metadata(broken)
