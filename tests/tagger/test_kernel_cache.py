"""numba's cache for the processes that import librosa (the trainer): mertag's own folder, named
as numba is imported, so that a process that never imports it pays nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mertag.tagger.kernels import NUMBA_CACHE_ENV, kernel_cache_dir
from tests.tagger.fault_helpers import REPO

_CHILD = """
import os, sys
import mertag.tagger
print(os.environ.get("NUMBA_CACHE_DIR"))
import numba
from numba.core import config
print(config.CACHE_DIR)
"""


def _run(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.split("\n")[:2]


def test_numba_caches_in_mertags_folder_once_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k != NUMBA_CACHE_ENV}
    assert _run(env) == ["None", str(kernel_cache_dir())]


def test_a_cache_the_user_chose_is_kept(tmp_path: Path) -> None:
    env = dict(os.environ, **{NUMBA_CACHE_ENV: str(tmp_path)})
    assert _run(env) == [str(tmp_path), str(tmp_path)]
