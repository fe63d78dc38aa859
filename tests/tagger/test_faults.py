"""Bad input and hostile conditions: every bad file gets one line and an index row and the scan
finishes; stale results are never written; a wrong --model is refused before any work; a
read-only library is refused (or scanned with --no-write); a full disk leaves the file intact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mertag.models import MODELS_DIR
from mertag.tagger.cli import app
from mertag.tagger.display import display
from mertag.tagger.index import Index
from mertag.tagger.model import default_model_path, read_model_info
from mertag.tagger.pipeline import TrackWork, process_track
from mertag.tagger.scan import ScanOptions, ScanRefused, run_scan
from mertag.tagger.tags import read_tags
from tests.tagger.fault_helpers import (
    REPO,
    check_index,
    make_track,
    mertag_command,
    run_obeying_permissions,
    temp_files,
)
from tests.tagger.onnx_models import broken_model, linear_model, linear_scan

runner = CliRunner()
HUGE = 4 << 30  # a 4 GiB sparse file: no disk used, but a decoder scanning it would take minutes


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(folder: Path) -> dict[Path, str]:
    return {p: digest(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def error_lines(stderr: str, path: Path) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("error:") and display(path) in x]


def bad_corpus(lib: Path) -> tuple[dict[Path, str], list[Path]]:
    """Bad input made on the spot: path -> fragment its error must contain; and good tracks."""
    lib.mkdir()
    good = make_track(lib / "good.flac")
    flac = good.read_bytes()
    wav = make_track(tmp := lib.parent / "w.wav").read_bytes()
    mp3 = make_track(lib.parent / "m.mp3").read_bytes()
    tmp.unlink()
    (lib.parent / "m.mp3").unlink()
    bad: dict[Path, str] = {}

    def put(name: str | bytes, data: bytes, reason: str) -> None:
        path = lib / os.fsdecode(name)
        path.write_bytes(data)
        bad[path] = reason

    put("empty.mp3", b"", "empty file (0 bytes)")
    put("cut-at-4.flac", flac[:4], "not a readable audio file")
    put("cut-at-44.wav", wav[:44], "not a readable audio file")
    put("cut-at-1000.mp3", mp3[:1000], "too short to analyse (0.1 s")
    put("cut-at-half.flac", flac[: len(flac) // 2], "too short to analyse")
    put("text.flac", b"not music at all\n" * 200, "no audio decoded")
    put("header.wav", os.urandom(64) + wav[64:], "not a readable audio file")
    put("new\nline.mp3", b"still not music\n" * 100, "not a readable audio file")
    put(b"junk\xff\xfe.flac", os.urandom(20000), "")
    for name, reason in [("huge-sparse.flac", "no audio found in 64 MB"), ("huge-sparse.mp3", "")]:
        with open(lib / name, "wb") as f:
            f.truncate(HUGE)
        bad[lib / name] = reason
    (lib / "loop.mp3").symlink_to("loop.mp3")
    bad[lib / "loop.mp3"] = "too many levels of symbolic links"
    (lib / "dangling.flac").symlink_to("nowhere.flac")
    bad[lib / "dangling.flac"] = "not found (a broken symlink"

    goods = [good]
    goods.append(lib / "flac-named.mp3")  # wrong extension: decoded and tagged by content
    (lib / "flac-named.mp3").write_bytes(flac)
    goods.append(make_track(lib / os.fsdecode(b"caf\xe9.wav"), index=3))  # not UTF-8
    (lib / "x.mp3").mkdir()  # a folder named like a track is walked as a folder
    goods.append(make_track(lib / "x.mp3" / "inside.wav", index=4))
    (lib / "x.mp3" / "up").symlink_to("..")  # a folder symlink loop ends
    os.mkfifo(lib / "pipe.mp3")  # never opened: a FIFO would block a reader forever
    (lib / "zero.wav").symlink_to("/dev/zero")  # a device, not a file: passed over
    return bad, goods


def test_every_bad_file_gets_one_line_and_a_row_and_the_scan_finishes(tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    bad, goods = bad_corpus(lib)
    before = {p: digest(p) for p in bad if p.is_file() and p.stat().st_size < HUGE}
    result = runner.invoke(app, ["scan", str(lib), "--index", str(index), "-j", "1"])
    assert result.exit_code == 1, result.output
    assert "failed" in result.stderr  # the summary: the scan ran to its end
    with Index(index) as idx:
        for path, reason in bad.items():
            lines = error_lines(result.stderr, path)
            assert len(lines) == 1, (path, result.stderr)
            assert reason.lower() in lines[0].lower(), lines[0]
            row = idx.get(str(path))
            assert row is not None and row.status == "error" and row.error, path
        for path in goods:
            assert not error_lines(result.stderr, path), result.stderr
            row = idx.get(str(path))
            assert row is not None and row.status == "ok" and row.tagged == 1, path
            assert read_tags(path)["MOOD"] == row.mood
        assert idx.count() == len(bad) + len(goods)
    assert {p: digest(p) for p in before} == before  # bad files are never written
    assert not temp_files(lib)


def test_a_track_that_vanishes_mid_scan_is_reported(tmp_path: Path) -> None:
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    first, gone = make_track(lib / "a.wav"), make_track(lib / "b.flac")
    model = linear_model(tmp_path / "m.onnx")
    options = linear_scan(lib, index, model)
    outcomes = []

    def on_outcome(outcome):  # type: ignore[no-untyped-def]
        outcomes.append(outcome)
        if outcome.path == first:
            gone.unlink()  # planned, not yet analysed

    summary = run_scan(options, on_outcome=on_outcome)
    assert [o.path for o in outcomes] == [first, gone]
    assert outcomes[1].error == "file not found"
    assert summary.failures == [(gone, "file not found")] and summary.analysed == 1
    with Index(index) as idx:
        row = idx.get(str(gone))
    assert row is not None and row.status == "error" and row.error == "file not found"


def test_a_file_changed_after_analysis_keeps_its_bytes(tmp_path: Path) -> None:
    path = make_track(tmp_path / "t.mp3")
    model = linear_model(tmp_path / "m.onnx")
    st = path.stat()
    before = digest(path)
    # Another program saves the file after mertag planned and analysed it: mtime moves on.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    outcome = process_track(path, st.st_size, st.st_mtime_ns, TrackWork(model))
    assert outcome.prediction is not None  # analysed...
    assert outcome.tagged is False  # ...but the stale result was not written
    assert outcome.tag_error == "tag write failed: file changed during tag write"
    assert digest(path) == before and not temp_files(tmp_path)
    # A rescan sees the new state and tags it.
    st = path.stat()
    outcome = process_track(path, st.st_size, st.st_mtime_ns, TrackWork(model))
    assert outcome.tagged is True and read_tags(path)["MERTAG_MODEL"] == "test-linear-0"


@pytest.mark.parametrize(
    ("make_model", "message"),
    [
        (
            lambda d: linear_model(d / "old.onnx", feature_schema="mertag-features-0"),
            "model wants feature schema 'mertag-features-0', but this mertag computes",
        ),
        (lambda d: linear_model(d / "wide.onnx", feature_dim="12"), "expects dim 12"),
        (lambda d: MODELS_DIR / "musicnn_msd.onnx", "not a mertag model (metadata lacks"),
        (lambda d: d / "notes.onnx", "not a valid ONNX model"),
        (lambda d: d / "missing.onnx", "model file not found"),
        (lambda d: d, "is a folder, not a model file"),
        *[
            (
                lambda d, fault=fault: broken_model(d / f"{fault}.onnx", fault),
                f"{fault}.onnx: gives {reason}",
            )
            for fault, reason in [
                ("nan", "NaN or infinite probabilities"),
                ("negative", "a negative probability (-0.7"),  # then "...) on a probe input"
                ("not-a-distribution", "probabilities summing to 2, not 1"),
                ("wrong-shape", "an output of shape (2, 5), not (2, 4)"),
            ]
        ],
    ],
)
def test_a_wrong_model_is_refused_before_any_work(tmp_path: Path, make_model, message) -> None:  # type: ignore[no-untyped-def]
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    make_track(lib / "a.flac")
    (tmp_path / "notes.onnx").write_text("these are my notes, not a model\n")
    before = digests(lib)
    result = runner.invoke(
        app, ["scan", str(lib), "--index", str(index), "--model", str(make_model(tmp_path))]
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not index.exists() and not Path(f"{index}.lock").exists()
    assert digests(lib) == before


def remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


def test_full_disk_during_a_tag_write_leaves_the_file_intact(tmp_path: Path, tmpfs: Path) -> None:
    track = make_track(tmpfs / "long.wav", seconds=10.0)  # 0.9 MB
    fs = os.statvfs(tmpfs)
    # Fill the disk until a copy of the track no longer fits.
    (tmpfs / "filler").write_bytes(b"\1" * (fs.f_bavail * fs.f_frsize - track.stat().st_size // 2))
    before = digest(track)
    index = tmp_path / "index.sqlite3"
    result = runner.invoke(app, ["scan", str(track), "--index", str(index), "-j", "1"])
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result.stderr, track)
    assert "tag write failed: no space left on device" in line
    assert digest(track) == before and not temp_files(tmpfs)
    with Index(index) as idx:
        row = idx.get(str(track))
    assert row is not None and row.status == "ok" and row.tagged == 0
    assert "no space left on device" in (row.tag_error or "")


def test_a_write_cut_short_by_the_file_size_limit_leaves_the_file_intact(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the copy fail half-way with EFBIG, as a disk filling up mid-write
    would with ENOSPC: the copy is deleted and the original never opened for writing."""
    track = make_track(tmp_path / "t.flac", seconds=10.0)
    before = digest(track)
    limit = track.stat().st_size // 2
    child = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from mertag.tagger.tags import TagError, write_tags
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
        try:
            write_tags(Path({str(track)!r}), {{"MOOD": "Sad"}})
        except TagError as e:
            print(e)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "file too large", done.stderr
    assert digest(track) == before and not temp_files(tmp_path)


def test_a_read_only_library_is_refused_or_scanned_without_writing(
    tmp_path: Path, tmpfs: Path
) -> None:
    track = make_track(tmpfs / "a.flac")
    remount(tmpfs, "ro")
    before = digest(track)
    index = tmp_path / "index.sqlite3"
    shipped = read_model_info(default_model_path())
    options = ScanOptions(
        roots=(tmpfs,),
        index_path=index,
        model_path=shipped.path,
        model_id=shipped.model_id,
        feature_schema=shipped.feature_schema,
    )
    with pytest.raises(ScanRefused, match="read-only file system.*--no-write"):
        run_scan(options)
    assert not index.exists()
    result = runner.invoke(app, ["scan", str(tmpfs), "--index", str(index), "--no-write"])
    assert result.exit_code == 0, result.output
    rows = check_index(index)
    assert rows[str(track)]["status"] == "ok" and rows[str(track)]["tagged"] == 0
    assert digest(track) == before


def test_the_cli_refuses_a_read_only_library_with_exit_2(tmp_path: Path, tmpfs: Path) -> None:
    make_track(tmpfs / "a.flac")
    remount(tmpfs, "ro")
    index = tmp_path / "index.sqlite3"
    result = runner.invoke(app, ["scan", str(tmpfs), "--index", str(index)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "read-only file system" in result.stderr and "--no-write" in result.stderr
    assert not index.exists()


def scan_obeying_permissions(
    lib: Path, index: Path, folder: Path, mode: int
) -> subprocess.CompletedProcess[str]:
    """`mertag scan LIB` while `folder` has `mode`, in a subprocess that obeys permission bits
    (`run_obeying_permissions`)."""
    folder.chmod(mode)
    try:
        return run_obeying_permissions(
            [*mertag_command(), "scan", str(lib), "--index", str(index), "-j", "1"], timeout=120
        )
    finally:
        folder.chmod(0o755)


def test_unreadable_files_and_folders_are_reported(tmp_path: Path) -> None:
    """Permission bits do not stop root, so the scan runs without root's permission override
    (a capability root can drop; the Python here may sit where a 'nobody' user cannot run it)."""
    if os.geteuid() != 0:
        pytest.skip("runs the scan as root without its permission override: needs root")
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    good = make_track(lib / "good.wav")
    secret = make_track(lib / "secret.flac", index=1)
    (lib / "locked").mkdir()
    make_track(lib / "locked" / "hidden.mp3", index=2)
    secret.chmod(0o000)
    done = scan_obeying_permissions(lib, index, lib / "locked", 0o000)
    assert done.returncode == 1, done.stderr
    (line,) = error_lines(done.stderr, secret)
    assert "permission denied" in line
    (line,) = error_lines(done.stderr, lib / "locked")
    assert "cannot list folder: Permission denied" in line
    rows = check_index(index)
    assert rows[str(secret)]["status"] == "error"
    assert rows[str(lib / "locked")]["status"] == "error"
    assert rows[str(good)]["tagged"] == 1


def test_a_writable_file_in_a_read_only_folder_says_the_folder_is_why(tmp_path: Path) -> None:
    """Files 644 and their folder 555: the file could be written, but mertag's temporary copy
    beside it cannot, and the line says so; the file stays as it was and the batch goes on.
    As root the scan runs without root's permission override, which would let it write anyway."""
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    (lib / "shut").mkdir(parents=True)
    good = make_track(lib / "good.wav")
    shut = make_track(lib / "shut" / "kept.flac", index=1)
    before = digest(shut)
    done = scan_obeying_permissions(lib, index, lib / "shut", 0o555)
    assert done.returncode == 1, done.stderr
    reason = (
        "tag write failed: the folder is not writable (mertag writes a temporary copy beside "
        "the file): permission denied"
    )
    assert error_lines(done.stderr, shut) == [f"error: {display(shut)}: {reason}"]
    assert digest(shut) == before and temp_files(lib / "shut") == []
    rows = check_index(index)
    assert rows[str(shut)]["tagged"] == 0 and rows[str(shut)]["tag_error"] == reason
    assert rows[str(good)]["tagged"] == 1


def test_a_missing_path_is_one_failure_and_the_other_paths_are_scanned(
    corpus: Path, tmp_path: Path
) -> None:
    """`mertag scan bay.mp3 /nope empty.mp3`: the missing path is one line and a failure (exit 1),
    never an index row; the other two are scanned as ever (it was: exit 2, nothing scanned)."""
    model = linear_model(tmp_path / "m.onnx")
    index = tmp_path / "index.sqlite3"
    bay, empty, nope = corpus / "bay.mp3", corpus / "empty.mp3", tmp_path / "nope_dir"
    empty.write_bytes(b"")
    link = tmp_path / "link.mp3"
    link.symlink_to(tmp_path / "moved-away.mp3")
    args = ["scan", bay, nope, link, empty, "--index", index, "--model", model, "-j", "1"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    said = [f"error: {nope}: no such file or folder", f"error: {link}: a broken symlink"]
    assert lines[:2] == said
    assert f"error: {empty}: empty file (0 bytes)" in lines
    assert f"  failed: {nope}: no such file or folder" in lines
    rows = check_index(index)
    assert set(rows) == {str(bay), str(empty)}  # no row for a path that is not there
    assert rows[str(bay)]["status"] == "ok" and rows[str(bay)]["tagged"] == 1
    doc = json.loads(runner.invoke(app, [*map(str, args), "--json"]).stdout)
    failed = {f["path"]: f["reason"] for f in doc["summary"]["failed"]}
    assert failed == {str(nope): "no such file or folder", str(link): "a broken symlink"}
    assert doc["summary"]["unchanged"] == 2 and not doc["summary"]["ok"]  # a second scan
    assert set(check_index(index)) == {str(bay), str(empty)}


def test_every_path_missing_is_one_usage_error(tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    for command in ("scan", "untag"):
        result = runner.invoke(
            app, [command, str(tmp_path / "a"), str(tmp_path / "b"), "--index", str(index)]
        )
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"mertag: error: {tmp_path / 'a'}: no such file or folder; "
            f"{tmp_path / 'b'}: no such file or folder"
        ]
    assert list(tmp_path.iterdir()) == []  # no index, no lock file


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("nan", "NaN or infinite probabilities"),
        ("negative", "a negative probability"),
        ("not-a-distribution", "probabilities summing to 2, not 1"),
    ],
)
def test_a_model_that_goes_wrong_on_real_tracks_tags_nothing(
    corpus: Path, tmp_path: Path, fault: str, reason: str
) -> None:
    """A model that passes the probe when loaded but gives no distribution on real music: each
    track gets one error line and an error row, no file gets a tag, and the scan finishes."""
    lib, index = tmp_path / "lib", tmp_path / "index.sqlite3"
    lib.mkdir()
    tracks = [(corpus / name).rename(lib / name) for name in ("lava.wav", "egypt.flac")]
    before = digests(lib)
    model = broken_model(tmp_path / f"{fault}.onnx", fault, when="tracks")
    result = runner.invoke(
        app, ["scan", str(lib), "--index", str(index), "--model", str(model), "-j", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "failed" in result.stderr  # the summary: the scan ran to its end
    rows = check_index(index)
    for track in tracks:
        (line,) = error_lines(result.stderr, track)
        assert f"model {fault}.onnx gave {reason}" in line
        assert rows[str(track)]["status"] == "error" and reason in rows[str(track)]["error"]
        assert read_tags(track) == {}
    assert digests(lib) == before
