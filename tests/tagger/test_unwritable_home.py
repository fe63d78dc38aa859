"""A scan where HOME cannot be written (a NAS box, a service user, a container) prints only
mertag's own output: onnxruntime's telemetry, which would store a device id under ~/.cache and
say 'Failed to persist telemetry device ID' on stderr in the scan and in every worker, is not
started (mertag.tagger.embeddings.onnx_runtime).

Run as real `mertag scan` subprocesses on a real corpus track and a generated one, in this
process and in worker processes, with HOME below a regular file: no user, root included, can
make a folder there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mertag.tagger.embeddings import TELEMETRY_SWITCH, onnx_runtime
from tests.conftest import CORPUS
from tests.tagger.fault_helpers import REPO, make_track, mertag_command
from tests.tagger.scanned_library import neutral_config

CI_MARKERS = (
    "CI",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "JENKINS_URL",
    "TF_BUILD",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "TRAVIS",
    "CIRCLECI",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "CODEBUILD_BUILD_ID",
    "ORT_RUNNING_UNIT_TESTS",
)
"""Variables onnxruntime takes for a CI machine or its own tests, where it starts no telemetry
(the names are in its library's strings): the scans run without them, as on a user's machine."""


def _scan(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home_file = tmp_path / "not-a-folder"
    home_file.write_text("HOME lies below a file, so nothing can be created in it\n")
    dropped = {"XDG_CACHE_HOME", TELEMETRY_SWITCH, *CI_MARKERS}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        HOME=str(home_file / "home"),
        MERTAG_CONFIG=str(neutral_config(tmp_path / "config")),
    )
    return subprocess.run(
        [*mertag_command(), "scan", *args, "--no-write", "--index", str(tmp_path / "idx.db")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    from tests.conftest import need_shared

    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(need_shared(CORPUS / "lava.wav"), lib / "lava.wav")
    make_track(lib / "tone.flac")
    return lib


def test_a_quiet_scan_with_an_unwritable_home_prints_nothing(tmp_path: Path, lib: Path) -> None:
    # Two tracks and two jobs: the tracks are analysed in worker processes.
    done = _scan(tmp_path, str(lib), "--quiet", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""


def test_a_scan_with_an_unwritable_home_prints_only_its_summary(tmp_path: Path, lib: Path) -> None:
    done = _scan(tmp_path, str(lib / "lava.wav"))  # one track: analysed in the scan's process
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].strip() == "mertag scan", done.stderr  # the summary table comes first
    assert "onnxruntime" not in done.stderr and "telemetry" not in done.stderr
    assert "\x1b[" not in done.stderr  # onnxruntime's coloured log lines


def test_a_users_own_telemetry_choice_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TELEMETRY_SWITCH, "0")
    onnx_runtime()
    assert os.environ[TELEMETRY_SWITCH] == "0"
