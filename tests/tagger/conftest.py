"""Fixtures of the tagger tests: no test reads the real user's config; a scanned library; a small
tmpfs to fill or make read-only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tagger.scanned_library import Library, copy_library, neutral_config, scanned_library


@pytest.fixture(autouse=True)
def no_user_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """MERTAG_CONFIG names TEST_CONFIG's file, so the user's own config never leaks into a test."""
    path = neutral_config(tmp_path_factory.mktemp("config"))
    monkeypatch.setenv("MERTAG_CONFIG", str(path))
    yield path


@pytest.fixture
def library(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Library:
    """A private, writable copy of the really scanned library (files and index)."""
    scanned, result = scanned_library(tmp_path_factory)
    assert result.exit_code == 1, result.output  # the bad file fails, everything else is ok
    return copy_library(scanned, tmp_path / "copy")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted for this test: a disk that can be filled, or made read-only."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
