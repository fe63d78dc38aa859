"""`mertag scan` end to end on real files: tags read back with mutagen, a real SQLite index,
the shipped ONNX model, bad input reported per file, incremental re-scans."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from typer.testing import CliRunner

from mertag.tagger.cli import app
from mertag.tagger.index import Index
from mertag.tagger.tags import audio_fingerprint, read_tags
from tests.conftest import CORPUS_FILES, copy_corpus
from tests.tagger.fault_helpers import FORMATS, make_track
from tests.tagger.onnx_models import linear_model
from tests.tagger.scanned_library import neutral_config

GOOD = CORPUS_FILES
runner = CliRunner()


def make_video_only(path: Path) -> None:
    """An MP4 container holding only a video stream, named like an audio file."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            img = np.full((32, 32, 3), i * 40, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def add_bad_files(lib: Path) -> dict[str, str]:
    """Bad input beside the good tracks; returns name -> expected reason fragment."""
    bad = lib / "bad"
    bad.mkdir()
    (bad / "empty.mp3").write_bytes(b"")
    data = (lib / "bay.mp3").read_bytes()
    (bad / "truncated.mp3").write_bytes(data[:5000])
    (bad / "text.mp3").write_text("not music\n" * 100)
    (bad / "noise.flac").write_bytes(np.random.default_rng(0).bytes(30000))
    make_video_only(bad / "video.m4a")
    (bad / "notes.txt").write_text("passed over")
    return {
        "empty.mp3": "empty file",
        "truncated.mp3": "",
        "text.mp3": "",
        "noise.flac": "",
        "video.m4a": "no audio stream",
    }


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real scan (2 jobs) of the corpus plus bad files, shared by the tests below."""
    root = tmp_path_factory.mktemp("scan")
    lib = copy_corpus(root / "lib", GOOD)
    bad = add_bad_files(lib)
    before = {name: audio_fingerprint(lib / name) for name in GOOD}
    tags_before = {name: _other_tags(lib / name) for name in GOOD}
    index = root / "index.sqlite3"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MERTAG_CONFIG", str(neutral_config(root)))
        result = runner.invoke(
            app, ["scan", str(lib), "--index", str(index), "--jobs", "2", "--json"]
        )
    return {
        "lib": lib,
        "index": index,
        "result": result,
        "bad": bad,
        "fingerprints": before,
        "tags_before": tags_before,
    }


def _other_tags(path: Path) -> dict[str, str]:
    """Every tag mertag does not own, as text, for before/after comparisons."""
    f = mutagen.File(path)
    if f is None or f.tags is None:
        return {}
    out = {}
    for key, value in f.tags.items():
        if (
            "MERTAG" in key.upper()
            or key.upper() in ("TMOO", "MOOD", "TXXX:MOOD")
            or key.endswith(":MOOD")
        ):
            continue
        out[key] = repr(value)
    return out


def test_scan_exit_code_and_json(scanned: dict) -> None:
    result = scanned["result"]
    assert result.exit_code == 1, result.output  # bad files were found
    doc = json.loads(result.stdout)
    by_name = {Path(r["path"]).name: r for r in doc["results"]}
    for name in GOOD:
        r = by_name[name]
        assert r["status"] == "ok" and r["tagged"] is True, r
        assert r["quadrant"] in ("Q1", "Q2", "Q3", "Q4")
        assert r["mood"] in ("Happy", "Angry", "Sad", "Relaxed")
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert -1 <= r["valence"] <= 1 and -1 <= r["arousal"] <= 1
    assert doc["summary"]["passed_over"] == 1
    assert doc["summary"]["analysed"] == len(GOOD)


def test_every_bad_file_gets_one_line_and_a_row(scanned: dict) -> None:
    stderr = scanned["result"].stderr
    with Index(scanned["index"]) as index:
        for name, reason in scanned["bad"].items():
            path = scanned["lib"] / "bad" / name
            lines = [
                line for line in stderr.splitlines() if line.startswith("error:") and name in line
            ]
            assert len(lines) == 1, (name, stderr)
            assert reason in lines[0]
            row = index.get(str(path))
            assert row is not None and row.status == "error" and row.error
            assert reason in row.error


def test_tags_written_and_read_back(scanned: dict) -> None:
    with Index(scanned["index"]) as index:
        for name in GOOD:
            path = scanned["lib"] / name
            tags = read_tags(path)
            row = index.get(str(path))
            assert row is not None and row.status == "ok" and row.tagged == 1
            assert tags["MOOD"] == row.mood
            assert tags["MERTAG_QUADRANT"] == row.quadrant
            assert float(tags["MERTAG_CONFIDENCE"]) == pytest.approx(row.confidence, abs=1e-3)
            assert tags["MERTAG_MODEL"] == row.model_id
            # The index records the file as it is after mertag's own write.
            st = path.stat()
            assert (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_audio_and_other_tags_unchanged(scanned: dict) -> None:
    for name in GOOD:
        path = scanned["lib"] / name
        assert audio_fingerprint(path) == scanned["fingerprints"][name], name
        assert _other_tags(path) == scanned["tags_before"][name], name
    mp3 = mutagen.File(scanned["lib"] / "bay.mp3")
    assert mp3.tags.version == (2, 4, 0) and "TMOO" in mp3.tags
    flac = mutagen.File(scanned["lib"] / "egypt.flac")
    assert flac["MOOD"] and flac["MERTAG_QUADRANT"]
    m4a = mutagen.File(scanned["lib"] / "hacienda.m4a")
    assert "----:com.apple.iTunes:MOOD" in m4a.tags


def test_rescan_skips_unchanged_and_export(scanned: dict) -> None:
    index = scanned["index"]
    result = runner.invoke(app, ["scan", str(scanned["lib"]), "--index", str(index), "--json"])
    doc = json.loads(result.stdout)
    assert doc["summary"]["analysed"] == 0
    assert doc["summary"]["unchanged"] == len(GOOD) + len(scanned["bad"])
    # The bad files failed before and are unchanged: still failing, so the scan is not ok.
    still = {Path(f["path"]).name for f in doc["summary"]["still_failing"]}
    assert still == set(scanned["bad"]) and doc["summary"]["ok"] is False
    assert doc["summary"]["failed"] == [] and doc["summary"]["untagged"] == 0
    assert result.exit_code == 1
    out = runner.invoke(app, ["export", "--format", "csv", "--index", str(index)])
    assert out.exit_code == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("path,size,mtime_ns,status")
    assert len(lines) == 1 + len(GOOD) + len(scanned["bad"])


def test_changed_file_and_retry_failed(scanned: dict, tmp_path: Path) -> None:
    lib, index = scanned["lib"], tmp_path / "index.sqlite3"
    shutil.copy2(scanned["index"], index)
    target = lib / "lava.wav"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    result = runner.invoke(
        app, ["scan", str(lib), "--index", str(index), "--json", "--retry-failed"]
    )
    doc = json.loads(result.stdout)
    analysed = sorted(Path(r["path"]).name for r in doc["results"])
    assert analysed == sorted(["lava.wav", *scanned["bad"]])
    assert result.exit_code == 1


def test_no_write_and_dry_run_leave_files_alone(corpus: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("egypt.flac", "lava.wav"):
        shutil.copy2(corpus / name, lib / name)
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in lib.iterdir()}
    index = tmp_path / "i.sqlite3"
    dry = runner.invoke(app, ["scan", str(lib), "--index", str(index), "--dry-run", "-j", "1"])
    assert dry.exit_code == 0, dry.output
    assert "would tag" in dry.stderr and "MOOD: (none) -> '" in dry.stderr
    assert not index.exists()
    result = runner.invoke(app, ["scan", str(lib), "--index", str(index), "--no-write", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in lib.iterdir()} == digest
    with Index(index) as idx:
        rows = list(idx.rows())
    assert len(rows) == 2 and all(r.status == "ok" and r.tagged == 0 for r in rows)


def test_the_fast_shipped_model_by_name(corpus: Path, tmp_path: Path) -> None:
    from mertag.tagger.model import MoodModel

    target = corpus / "egypt.flac"
    index = tmp_path / "i.sqlite3"
    result = runner.invoke(app, ["scan", str(target), "--index", str(index), "--model", "fast"])
    assert result.exit_code == 0, result.output
    fast = MoodModel("fast").model_id
    assert mutagen.File(target)["MERTAG_MODEL"] == [fast] and fast != MoodModel().model_id
    with Index(index) as idx:
        row = idx.get(str(target))
    assert row is not None and row.status == "ok" and row.model_id == fast


def test_tracks_heard_as_snippets_go_to_the_snippet_model(corpus: Path, tmp_path: Path) -> None:
    from mertag.tagger.model import MoodModel

    default, fast = MoodModel(), MoodModel("fast")
    assert default.snippet_model.model_id == fast.model_id and fast.snippet_model is fast
    short, long = corpus / "egypt.flac", corpus / "bay.mp3"  # 25 s (whole), 132 s (snippets)
    index = tmp_path / "i.sqlite3"
    args = ["scan", str(short), str(long), "--index", str(index), "-j", "1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert mutagen.File(short)["MERTAG_MODEL"] == [default.model_id]
    assert read_tags(long)["MERTAG_MODEL"] == fast.model_id
    with Index(index) as idx:
        assert idx.get(str(long)).model_id == fast.model_id
    again = runner.invoke(app, args)  # both rows count as finished for the default model
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["summary"]["unchanged"] == 2
    only_fast = runner.invoke(app, [*args, "--model", "fast"])  # the short one is re-analysed
    assert only_fast.exit_code == 0 and json.loads(only_fast.stdout)["summary"]["unchanged"] == 1
    assert mutagen.File(short)["MERTAG_MODEL"] == [fast.model_id]


def test_read_only_file_is_analysed_indexed_and_reported(corpus: Path, tmp_path: Path) -> None:
    target = corpus / "egypt.flac"
    target.chmod(0o444)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    index = tmp_path / "i.sqlite3"
    result = runner.invoke(app, ["scan", str(target), "--index", str(index), "-j", "1"])
    assert result.exit_code == 1
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "egypt.flac" in line and "read-only" in line
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    with Index(index) as idx:
        row = idx.get(str(target))
    assert row is not None and row.status == "ok" and row.tagged == 0 and row.mood
    assert "read-only" in (row.tag_error or "")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["scan", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk")
    refused = runner.invoke(app, ["scan", str(tmp_path), "--model", str(junk)])
    assert refused.exit_code == 2 and "not a valid ONNX model" in refused.stderr
    bad_option = runner.invoke(app, ["scan", str(tmp_path), "--jobs", "0"])
    assert bad_option.exit_code == 2


def mertag_command() -> list[str]:
    script = Path(sys.executable).parent / "mertag"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mertag.tagger.cli import main; main()"]


def test_subprocess_scan_and_lazy_help(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "i.sqlite3"
    proc = subprocess.run(
        [*mertag_command(), "scan", str(corpus / "lava.wav"), "--index", str(index), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_tags(corpus / "lava.wav")["MERTAG_QUADRANT"] in ("Q1", "Q2", "Q3", "Q4")
    # --help must not pay for librosa, onnxruntime or torch.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom typer.testing import CliRunner\nfrom mertag.tagger.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0\n"
            "print(sorted(m for m in ('librosa', 'onnxruntime', 'torch', 'sklearn') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_jsonl_streams_one_line_per_track_then_the_summary(tmp_path: Path) -> None:
    """`--format jsonl` (a subprocess, so stdout is a real pipe): a line per track in the
    order they finish, the summary last."""
    from tests.tagger.fault_helpers import make_library, mertag_command

    lib = tmp_path / "lib"
    make_library(lib, ["a.mp3", "b.flac", "c.wav"])
    (lib / "broken.mp3").write_bytes(b"")
    model = linear_model(tmp_path / "m.onnx")
    args = ["scan", str(lib), "--index", str(tmp_path / "i.db"), "--model", str(model)]
    done = subprocess.run(
        [*mertag_command(), *args, "--format", "jsonl", "-j", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr  # the empty file failed
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(Path(r["path"]).name for r in lines[:-1]) == [
        "a.mp3",
        "b.flac",
        "broken.mp3",
        "c.wav",
    ]
    assert {Path(r["path"]).name: r["status"] for r in lines[:-1]}["broken.mp3"] == "error"
    assert lines[-1]["summary"]["analysed"] == 3


def test_files_named_without_an_audio_suffix_are_tagged_by_content(tmp_path: Path) -> None:
    named = []
    for i, suffix in enumerate(sorted(FORMATS)):
        track = make_track(tmp_path / f"t{suffix}", index=i)
        named.append(track.rename(tmp_path / ("bare" + suffix.replace(".", "-"))))
    named.append(make_track(tmp_path / "wrong.flac").rename(tmp_path / "wrong.txt"))
    (tmp_path / "notes").write_text("not audio\n")
    model = linear_model(tmp_path / "m.onnx")
    index = tmp_path / "index.sqlite3"
    args = ["scan", *map(str, named), str(tmp_path / "notes"), "--index", str(index)]
    result = runner.invoke(app, [*args, "--model", str(model), "-j", "1"])
    assert result.exit_code == 0, result.output
    with Index(index) as idx:
        assert idx.count() == len(named)
        for path in named:
            row = idx.get(str(path))
            assert row is not None and row.status == "ok" and row.tagged == 1, path
            assert read_tags(path)["MOOD"] == row.mood


def test_a_custom_models_snippet_tracks_are_finished_work_on_a_rescan(
    corpus: Path, tmp_path: Path
) -> None:
    from mertag.tagger.model import MoodModel

    model = linear_model(tmp_path / "mine.onnx", companion="fast")
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    shutil.copy2(corpus / "bay.mp3", lib / "bay.mp3")  # long: heard as snippets, by the companion
    args = ["scan", lib, "--index", index, "-j", "1", "--format", "json", "--model", model]
    first = runner.invoke(app, [str(a) for a in args])
    assert first.exit_code == 0, first.output
    with Index(index, read_only=True) as idx:
        (row,) = list(idx.rows())
    assert row.model_id == MoodModel("fast").model_id
    again = runner.invoke(app, [str(a) for a in args])
    summary = json.loads(again.stdout)["summary"]
    assert summary["analysed"] == 0 and summary["unchanged"] == 1


def test_a_folder_link_above_the_library_takes_the_scan_nowhere_else(
    corpus: Path, tmp_path: Path
) -> None:
    """A link such as `loop -> ..` inside the library must not make the scan tag the music
    around the folder the user named: it is not followed, and the summary says so."""
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(corpus / "lava.wav", lib / "lava.wav")
    (lib / "loop").symlink_to("..")
    outside = tmp_path / "elsewhere.mp3"
    shutil.copy2(corpus / "bay.mp3", outside)
    before = outside.read_bytes()
    index = tmp_path / "index.sqlite3"
    result = runner.invoke(app, ["scan", str(lib), "--index", str(index), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["outward_links"] == [str(lib / "loop")]
    assert [Path(r["path"]).name for r in doc["results"]] == ["lava.wav"]
    assert outside.read_bytes() == before
    text = runner.invoke(app, ["scan", str(lib), "--index", str(index), "--force"])
    assert f"not followed: {lib / 'loop'}: a folder link to a folder above the library" in (
        " ".join(text.stderr.split())
    )
