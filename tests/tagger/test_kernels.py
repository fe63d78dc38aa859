"""The first scan after an install: librosa's kernels are compiled once, by one process, into
mertag's own cache, while two scans with two workers each start at the same time.

Each trial starts from an empty kernel cache (a fresh XDG_CACHE_HOME) and costs a full compile
(~15 s of CPU); MERTAG_FIRST_RUN_TRIALS=N runs N trials."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mertag.tagger.kernels import NUMBA_CACHE_ENV, READY_FILE
from tests.tagger.fault_helpers import REPO, make_library, mertag_command
from tests.tagger.onnx_models import linear_model

TRIALS = int(os.environ.get("MERTAG_FIRST_RUN_TRIALS", "1"))


def _fresh_env(cache_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != NUMBA_CACHE_ENV}
    env["XDG_CACHE_HOME"] = str(cache_home)
    return env


@pytest.mark.parametrize("trial", range(TRIALS))
def test_two_first_scans_at_once_compile_once_and_never_crash(tmp_path: Path, trial: int) -> None:
    model = linear_model(tmp_path / "m.onnx")
    env = _fresh_env(tmp_path / "cache")
    scans = []
    for name in ("a", "b"):
        library = tmp_path / name
        make_library(library, [f"{name}{i}.mp3" for i in range(3)])
        args = [str(library), "--index", str(tmp_path / f"{name}.db"), "--model", str(model)]
        scans.append(
            subprocess.Popen(
                [*mertag_command(), "scan", *args, "-j", "2"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = [scan.communicate(timeout=600) for scan in scans]
    for scan, (_out, err) in zip(scans, results, strict=True):
        assert scan.returncode == 0, err
        assert "Traceback" not in err
    said = [err.count("preparing audio kernels") for _out, err in results]
    assert sorted(said) == [0, 1], "one scan compiles, the other waits for it"
    caches = list((tmp_path / "cache" / "mertag" / "kernels").iterdir())
    assert len(caches) == 1 and (caches[0] / READY_FILE).is_file()
    for name in ("a", "b"):
        with sqlite3.connect(tmp_path / f"{name}.db") as db:
            assert {s for (s,) in db.execute("SELECT status FROM tracks")} == {"ok"}


def test_a_damaged_kernel_cache_is_detected_and_rebuilt(tmp_path: Path) -> None:
    """A damaged cache (every cached kernel truncated, as a crashed writer leaves it) does not
    stop the next scan: the check before the workers start recompiles or rebuilds it."""
    model = linear_model(tmp_path / "m.onnx")
    env = _fresh_env(tmp_path / "cache")
    library = tmp_path / "lib"
    make_library(library, ["t0.mp3", "t1.mp3"])
    scan = [*mertag_command(), "scan", str(library), "--model", str(model), "-j", "2"]
    first = subprocess.run([*scan, "--index", str(tmp_path / "1.db")], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert first.returncode == 0, first.stderr
    (cache,) = (tmp_path / "cache" / "mertag" / "kernels").iterdir()
    damaged = 0
    for path in cache.rglob("*.nbc"):
        path.write_bytes(path.read_bytes()[:7])
        damaged += 1
    assert damaged, "numba cached nothing in mertag's cache"
    (cache / READY_FILE).unlink()
    again = subprocess.run([*scan, "--index", str(tmp_path / "2.db")], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr and (cache / READY_FILE).is_file()
