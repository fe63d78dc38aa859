"""`mertag train` and `mertag evaluate` end to end on synthetic clips, through the CLI."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mertag.tagger.cli import command_line
from mertag.tagger.model import MoodModel
from mertag.trainer.augment import AUGMENTATIONS

app = command_line()

pytestmark = pytest.mark.usefixtures("need_frontend")
runner = CliRunner()


def mertag(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*map(str, args)], catch_exceptions=False)


def test_train_export_reload_and_evaluate(tiny_data: Path, shared_cache: Path, tmp_path: Path):
    pytest.importorskip("torch")
    model = tmp_path / "model.onnx"
    report = tmp_path / "cv.md"
    result = mertag(
        "train",
        tiny_data / "labels.csv",
        "--output",
        model,
        "--folds",
        2,
        "--epochs",
        2,
        "--arch",
        "lstm",
        "--ensemble",
        2,
        "--cache",
        shared_cache,
        "--jobs",
        1,
        "--report",
        report,
        "--genre-cv",
        "--companion",
        "fast",
        "--fold-models",
        tmp_path / "folds",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "lstm-x2-lin  both     macro-F1" in result.output
    assert "genre-family folds: macro-F1" in result.output
    assert "calibration: temperature" in result.output
    loaded = MoodModel(model)
    assert loaded.info.companion == "fast"
    calibration = json.loads(loaded.info.metadata["calibration"])
    assert calibration["temperature"] == loaded.info.calibration.temperature > 0
    assert 0 <= calibration["uncertain_below"] <= 1
    assert loaded.info.training_summary["cv"]["genre_grouped"]["macro_f1_mean"] >= 0
    folds = json.loads((tmp_path / "folds" / "folds.json").read_text())
    assert sorted(i for fold in folds["test_folds"] for i in fold) == list(range(16))
    assert len(folds["oof_probabilities"]) == 16 and folds["genre_oof_probabilities"]
    assert MoodModel(tmp_path / "folds" / "fold1.onnx").info.companion is None
    # Each carries mertag's mark, so the same command run again replaces them without asking.
    from mertag.tagger.output_files import written_by_mertag
    from mertag.trainer.train import fold_model_paths

    assert all(map(written_by_mertag, fold_model_paths(tmp_path / "folds", 2)))
    assert loaded.model_id.startswith("mertag-lstm-x2-lin-")
    summary = loaded.info.training_summary
    assert summary["arch"] == "lstm" and summary["epochs"] == 2 and summary["n_clips"] == 16
    assert summary["ensemble"] == 2 and summary["linear_weight"] == 0.3
    assert summary["cv"]["folds"] == 2 and 0 <= summary["cv"]["macro_f1_mean"] <= 1
    assert summary["augment"] == [a.spec for a in AUGMENTATIONS]
    results = json.loads(report.with_suffix(".json").read_text())["results"]
    assert results[0]["model"] == "lstm-x2-lin"
    assert "| lstm-x2-lin | net | both |" in report.read_text()

    result = mertag("evaluate", tiny_data, "--model", model, "--jobs", 1, "--no-progress")
    assert result.exit_code == 0, result.output
    assert f"model {loaded.model_id} on 16 clips" in result.output
    for text in ("accuracy", "macro-F1", "confusion matrix", "Q4", "calibration: ECE"):
        assert text in result.output


def test_same_seed_same_model(tiny_data: Path, shared_cache: Path, tmp_path: Path):
    pytest.importorskip("torch")
    ids = []
    for name in ("a", "b"):
        result = mertag(
            "train",
            tiny_data,
            "-o",
            tmp_path / f"{name}.onnx",
            "--folds",
            0,
            "--epochs",
            1,
            "--arch",
            "birnn",
            "--ensemble",
            1,
            "--linear-weight",
            0,
            "--no-augment",
            "--seed",
            5,
            "--cache",
            shared_cache,
            "-j",
            1,
            "--no-progress",
        )
        assert result.exit_code == 0, result.output
        ids.append(MoodModel(tmp_path / f"{name}.onnx").model_id)
    assert ids[0] == ids[1]


def test_bad_rows_are_named_and_skipped(tiny_data: Path, shared_cache: Path, tmp_path: Path):
    pytest.importorskip("torch")
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "Q3" / "broken.wav").write_text("just text\n")
    with open(data / "labels.csv", "a", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["gone", "Q1/missing.wav", "Q1", "x"])
        writer.writerow(["five", "Q2/q2_0.wav", "Q5", "x"])
        writer.writerow(["text", "Q3/broken.wav", "Q3", "y"])
    model = tmp_path / "m.onnx"
    result = mertag(
        "train",
        data / "labels.csv",
        "-o",
        model,
        "--folds",
        2,
        "--epochs",
        1,
        "--ensemble",
        1,
        "--no-augment",
        "--cache",
        shared_cache,
        "-j",
        1,
        "--no-progress",
    )
    assert result.exit_code == 1, result.output  # finished, but some rows were skipped
    out = result.output
    assert "labels.csv line 18 (gone): file not found" in out
    assert "labels.csv line 19 (five): unknown label 'Q5'" in out
    assert "skipped text: not a readable audio file" in out
    assert "3 row(s) skipped" in out
    assert MoodModel(model).info.training_summary["n_clips"] == 16

    result = mertag("evaluate", data, "--model", model, "-j", 1, "--no-progress")
    assert result.exit_code == 1
    assert "skipped Q3/broken.wav: not a readable audio file" in result.output
    assert "on 16 clips" in result.output


def test_too_few_rows_is_a_clear_error(tiny_data: Path, tmp_path: Path):
    data = tmp_path / "few"
    for q in ("Q1", "Q2", "Q3", "Q4"):
        (data / q).mkdir(parents=True)
        shutil.copy(tiny_data / q / f"{q.lower()}_0.wav", data / q)
    result = mertag(
        "train",
        data,
        "-o",
        tmp_path / "m.onnx",
        "--folds",
        5,
        "--cache",
        tmp_path / "c",
        "--no-progress",
    )
    assert result.exit_code == 2
    assert "too few usable clips to train: 4 in all" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_bad_model_is_refused(tiny_data: Path, tmp_path: Path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"nope")
    result = mertag("evaluate", tiny_data, "--model", bogus, "--no-progress")
    assert result.exit_code == 2 and "not a valid ONNX model" in result.output


def test_help_does_not_import_torch():
    code = (
        "import sys; from mertag.tagger.cli import command_line; app = command_line();"
        "from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['train', '--help']); assert r.exit_code == 0, r.output;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_train_without_the_train_extra_is_one_line_and_exit_2(tmp_path: Path):
    """With torch absent (blocked in sys.modules, as if never installed) `mertag train` says
    what is missing and how to install it."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['mertag', 'train', 'x.csv'];"
        "from mertag.tagger.cli import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "torch" in lines[0] and "pip install torch==2.13.0 'mertag[train]'" in lines[0]
