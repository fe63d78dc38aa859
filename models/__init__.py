"""The shipped mertag models (ONNX) and their model card."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent

PACKAGED_MODELS = {"default": "mertag_4q.onnx", "fast": "mertag_4q_fast.onnx"}
"""The shipped mood models by the name `--model` and the config's `model` accept (MODEL_CARD.md)."""
