"""Shared fixtures: the real files in ../shared, copied before anything writes to them."""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MERTAG_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
DATA_4Q = SHARED / "data" / "4q"
MUSICNN_DIR = SHARED / "models" / "musicnn"
# The eight tracks of ../shared/corpus (CREDITS.md there says where they come from).
CORPUS_FILES = (
    "bay.mp3",
    "celtic.mp3",
    "egypt.flac",
    "farm.ogg",
    "garden.opus",
    "hacienda.m4a",
    "lava.wav",
    "Kart Grand Prix — Weirwood.mp3",
)


def need_shared(path: Path) -> Path:
    """Return `path`, or skip the test when ../shared is absent (a failure under CI)."""
    if path.exists():
        return path
    reason = f"{path} is absent: the real audio in ../shared is needed for this test"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"under CI ../shared must be present: {reason}")
    pytest.skip(reason)


def need_module(name: str, extra: str) -> Any:
    """The module `name`, or a skip naming the extra that installs it (a failure under CI, which
    installs the test extra, and so every optional module)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        reason = f"{name} is not installed: pip install 'mertag[{extra}]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"under CI the test extra installs it: {reason}")
        pytest.skip(reason)


def copy_corpus(dst: Path, names: Iterable[str] | None = None) -> Path:
    """A new folder `dst` holding writable copies (mtimes kept) of the ../shared/corpus tracks
    `names` (default: every track there), for a test that writes to them."""
    src = need_shared(CORPUS)
    if names is None:
        names = [f.name for f in src.iterdir() if f.is_file() and f.suffix != ".md"]
    dst.mkdir()
    for name in names:
        shutil.copy2(src / name, dst / name)
        (dst / name).chmod(0o644)
    return dst


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of ../shared/corpus, writable, in a temp dir."""
    return copy_corpus(tmp_path / "corpus")
