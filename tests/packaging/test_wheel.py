"""The wheel holds one import package, `mertag`, and everything a scan needs at run time (and
the beets plugin's module in beets' namespace `beetsplug`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__")


def test_the_wheel_installs_only_the_mertag_package_and_the_beets_plugin(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=SKIP)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mertag-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    tops = {name.split("/")[0] for name in names}
    assert tops == {"mertag", "beetsplug", wheel.name.split("-py")[0] + ".dist-info"}, tops
    # beets finds plugins in its namespace package by name: only the plugin's module goes there,
    # no __init__.py that would hide beets' own plugins.
    assert [n for n in names if n.startswith("beetsplug/")] == ["beetsplug/mertag.py"]
    for needed in (
        "mertag/__init__.py",
        "mertag/__main__.py",
        "mertag/py.typed",
        "mertag/tagger/cli.py",
        "mertag/tagger/pipeline.py",
        "mertag/trainer/train.py",
        "mertag/models/__init__.py",
        "mertag/models/mertag_4q.onnx",
        "mertag/models/mertag_4q_fast.onnx",
        "mertag/models/musicnn_msd.onnx",
        "mertag/models/musicnn_mtt.onnx",
        "mertag/models/MODEL_CARD.md",
    ):
        assert needed in names, needed
    assert not [n for n in names if "/tests/" in n or n.startswith("mertag/_root")]
    text = entry_points.decode()
    assert "mertag = mertag.tagger.cli:main" in text
    assert "[mertag.commands]" in text and "mertag.trainer.cli:register" in text


def test_python_m_mertag_and_version() -> None:
    from mertag import __version__

    done = subprocess.run(
        [sys.executable, "-m", "mertag", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"mertag {__version__}"
