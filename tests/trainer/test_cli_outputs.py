"""`mertag train` and `mertag evaluate` never replace a file of the user's with a model, a
report or a fold model (`train --fold-models DIR`: DIR/fold<k>.onnx, DIR/folds.json): the paths
are checked before any work, and only mertag's own files (a mertag model, a report or folds.json
it wrote) are replaced without `--overwrite`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mertag.models import MODELS_DIR
from mertag.tagger.cli import command_line
from mertag.tagger.output_files import REPORT_MARK, written_by_mertag
from mertag.trainer.compare import report_json, report_markdown
from tests.tagger.fault_helpers import FILE_SIZE_LIMIT, atomic_leftovers, cut_short

app = command_line()
pytestmark = pytest.mark.usefixtures("need_frontend")
runner = CliRunner()
REFUSED = "a file mertag did not write is there; --overwrite replaces it"


def mertag(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*map(str, args)], catch_exceptions=False)


def users_file(path: Path, text: str = "my notes, not a model\n") -> bytes:
    path.write_text(text, encoding="utf-8")
    return path.read_bytes()


@pytest.mark.parametrize(
    "which", ["output", "report", "json beside the report", "a fold model", "folds.json"]
)
def test_train_refuses_a_users_file_before_any_work(tiny_data: Path, tmp_path: Path, which):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    folds = tmp_path / "folds"
    folds.mkdir()
    (folds / "notes.txt").write_text("mine, beside the fold models\n")  # not one mertag writes
    target = {
        "output": tmp_path / "mood.onnx",
        "report": tmp_path / "cv.md",
        "json beside the report": tmp_path / "cv.json",
        "a fold model": folds / "fold1.onnx",
        "folds.json": folds / "folds.json",
    }[which]
    before = users_file(target)
    cache = tmp_path / "cache"
    args = ["train", tiny_data / "labels.csv", "--folds", 2, "--epochs", 1, "--cache", cache]
    args += ["--fold-models", folds]
    result = mertag(*args, "--output", tmp_path / "mood.onnx", "--report", tmp_path / "cv.md")
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"mertag: error: {target}: {REFUSED}"
    assert target.read_bytes() == before
    assert not cache.exists()  # refused before a clip was read
    assert not (tmp_path / "mood.onnx").exists() or which == "output"
    theirs = {"notes.txt"} | ({target.name} if target.parent == folds else set())
    assert {p.name for p in folds.iterdir()} == theirs  # no fold model written


def test_train_refuses_a_file_named_as_the_fold_models_folder(tiny_data: Path, tmp_path: Path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    folds = tmp_path / "folds"
    before = users_file(folds)
    cache = tmp_path / "cache"
    args = ["train", tiny_data / "labels.csv", "--folds", 2, "--epochs", 1, "--cache", cache]
    result = mertag(*args, "--fold-models", folds)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"mertag: error: {folds}: --fold-models must be a folder, not a file"
    )
    assert folds.read_bytes() == before and not cache.exists()


def test_evaluate_replaces_its_own_report_and_refuses_a_users(tiny_data: Path, tmp_path: Path):
    report = tmp_path / "scores.json"
    before = users_file(report, '{"mine": true}\n')
    args = ["evaluate", tiny_data, "--model", "fast", "--jobs", 1, "--no-progress"]
    refused = mertag(*args, "--report", report)
    assert refused.exit_code == 2 and refused.output.strip().endswith(REFUSED)
    assert report.read_bytes() == before

    assert mertag(*args, "--report", report, "--overwrite").exit_code == 0
    assert report.read_bytes() != before and written_by_mertag(report)
    again = mertag(*args, "--report", report)  # its own report: replaced without asking
    assert again.exit_code == 0, again.output


def test_mertag_models_and_reports_carry_the_mark(tmp_path: Path):
    assert written_by_mertag(MODELS_DIR / "mertag_4q.onnx")
    assert written_by_mertag(MODELS_DIR / "mertag_4q_fast.onnx")
    front_end = tmp_path / "musicnn.onnx"  # an ONNX file, but not a mertag mood model
    shutil.copyfile(MODELS_DIR / "musicnn_msd.onnx", front_end)
    assert not written_by_mertag(front_end)
    markdown, as_json = tmp_path / "cv.md", tmp_path / "cv.json"
    meta = {"n_clips": 0, "data": "labels.csv", "folds": 5, "seed": 0}
    markdown.write_text(report_markdown([], meta), encoding="utf-8")
    as_json.write_text(report_json([], meta) + "\n", encoding="utf-8")
    assert written_by_mertag(markdown) and written_by_mertag(as_json)
    users_file(markdown, "# My model comparison\n")
    users_file(as_json, '{\n  "written_by": "me",\n}\n')
    assert not written_by_mertag(markdown) and not written_by_mertag(as_json)
    folds = tmp_path / "folds.json"  # one line, as `train --fold-models` writes it
    users_file(folds, json.dumps({**REPORT_MARK, "clips": [], "labels": []}) + "\n")
    assert written_by_mertag(folds)
    for theirs in ({"written_by": "me", "clips": []}, {"clips": [], "written_by": "mertag"}):
        users_file(folds, json.dumps(theirs) + "\n")
        assert not written_by_mertag(folds)


def test_a_run_with_fewer_folds_removes_its_own_stale_fold_models_only(
    tiny_data: Path, shared_cache: Path, tmp_path: Path
):
    """`--fold-models DIR` run again with fewer folds: the earlier run's fold models beyond the
    new set are mertag's and stale, so they go; a file of the user's named like one stays."""
    pytest.importorskip("torch")
    folds = tmp_path / "folds"
    args = ["train", tiny_data / "labels.csv", "--epochs", 1, "--cache", shared_cache]
    args += ["--jobs", 1, "--no-progress", "--fold-models", folds]
    first = mertag(*args, "--folds", 3)
    assert first.exit_code == 0, first.output
    assert {p.name for p in folds.iterdir()} == {
        "fold0.onnx",
        "fold1.onnx",
        "fold2.onnx",
        "folds.json",
    }
    notes = users_file(folds / "fold5.onnx")  # not a model
    mine = folds / "fold4.onnx"  # a mertag model of the user's, saved under a fold's name
    shutil.copyfile(MODELS_DIR / "mertag_4q_fast.onnx", mine)
    assert written_by_mertag(mine)

    second = mertag(*args, "--folds", 2)
    assert second.exit_code == 0, second.output
    stale = folds / "fold2.onnx"
    assert f"removed {stale}: a fold model of an earlier run with more folds" in second.output
    assert {p.name for p in folds.iterdir()} == {
        "fold0.onnx",
        "fold1.onnx",
        "folds.json",
        "fold4.onnx",
        "fold5.onnx",
    }
    assert len(json.loads((folds / "folds.json").read_text())["test_folds"]) == 2
    assert (folds / "fold5.onnx").read_bytes() == notes
    assert mine.read_bytes() == (MODELS_DIR / "mertag_4q_fast.onnx").read_bytes()


def test_a_cv_report_cut_short_keeps_the_report_that_was_there(tmp_path: Path):
    """`train --report` (write_report) wrote the markdown and the JSON in place: a kill or a
    full disk mid-write tore them. Now atomic; the write cut half-way by RLIMIT_FSIZE."""
    pytest.importorskip("torch")
    from mertag.trainer.train import write_report

    report = tmp_path / "cv.md"
    meta = {"n_clips": 16, "data": "x" * (2 * FILE_SIZE_LIMIT), "folds": 2, "seed": 0}
    written = write_report([], meta, report)
    assert written == [report, report.with_suffix(".json")]
    ours = {p: p.read_bytes() for p in written}
    assert all(map(written_by_mertag, written))
    meta["data"] = "y" * (2 * FILE_SIZE_LIMIT)
    code, stderr = cut_short(
        f"""
        from pathlib import Path
        from mertag.trainer.train import write_report
        try:
            write_report([], {meta!r}, Path({str(report)!r}))
        except OSError as exc:
            print(exc.filename, exc.strerror, sep=": ", file=sys.stderr)
        """
    )
    assert code == 0, stderr
    assert stderr.strip() == f"{report.with_suffix('.json')}: File too large"  # JSON first
    assert {p: p.read_bytes() for p in written} == ours
    assert atomic_leftovers(tmp_path) == []
