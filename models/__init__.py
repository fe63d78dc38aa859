"""The shipped mertag models (ONNX) and their model card."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
