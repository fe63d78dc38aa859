"""The Dask backend on loopback: a LocalCluster of two worker processes scans a copy of the
corpus; every track lands once in the index with the local scan's results, also when a worker is
killed mid-scan. And an unchanged library's rescan asks the index one query, not one per file."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mertag.models import MODELS_DIR
from mertag.tagger.backends import BackendError, ModelFile
from mertag.tagger.index import Index, IndexRow
from mertag.tagger.model import MoodModel
from mertag.tagger.pipeline import TrackOutcome
from mertag.tagger.scan import ScanOptions, run_scan
from mertag.tagger.tags import read_tags
from tests.conftest import CORPUS, CORPUS_FILES, need_module, need_shared

# Columns that must match between two scans of the same files (not paths or times).
RESULT_COLUMNS = ("status", "error", "quadrant", "mood", "model_id", "feature_schema", "tagged")
PROBABILITY_COLUMNS = ("p_q1", "p_q2", "p_q3", "p_q4", "valence", "arousal", "confidence")


def need_dask() -> Any:
    """dask.distributed, or a skip (a failure under CI, which installs it with the test extra)."""
    return need_module("distributed", "dask")


def local_cluster() -> Any:
    """Two single-threaded worker processes and a scheduler, all on 127.0.0.1 (a context
    manager; the scheduler reads dask's config when it starts)."""
    return need_dask().LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """The cluster the tests that keep its workers alive share."""
    with local_cluster() as local:
        yield local


def options(lib: Path, **changes: Any) -> ScanOptions:
    model = MoodModel()
    base = ScanOptions(
        roots=(lib,),
        index_path=lib.parent / f"{lib.name}.sqlite3",
        model_path=model.path,
        model_id=model.model_id,
        feature_schema=model.info.feature_schema,
        jobs=1,
    )
    return replace(base, **changes)


def rows_by_name(index_path: Path) -> dict[str, IndexRow]:
    with Index(index_path) as index:
        rows = list(index.rows())
    by_name = {Path(r.path).name: r for r in rows}
    assert len(by_name) == len(rows)
    return by_name


def assert_same_results(got: dict[str, IndexRow], want: dict[str, IndexRow]) -> None:
    assert sorted(got) == sorted(want) == sorted(CORPUS_FILES)
    for name, row in got.items():
        for column in RESULT_COLUMNS:
            assert getattr(row, column) == getattr(want[name], column), (name, column)
        for column in PROBABILITY_COLUMNS:
            assert getattr(row, column) == pytest.approx(getattr(want[name], column), abs=1e-5)


@pytest.fixture(scope="module")
def local_scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, IndexRow]]:
    """The corpus scanned in this process: the reference the cluster must match."""
    src = need_shared(CORPUS)
    lib = tmp_path_factory.mktemp("local") / "lib"
    lib.mkdir()
    for name in CORPUS_FILES:
        (lib / name).write_bytes((src / name).read_bytes())
    summary = run_scan(options(lib))
    assert summary.ok and summary.analysed == len(CORPUS_FILES)
    return lib, rows_by_name(lib.parent / "lib.sqlite3")


def test_cluster_scan_equals_local_scan(
    cluster: Any, corpus: Path, local_scan: tuple[Path, dict[str, IndexRow]]
) -> None:
    local_lib, want = local_scan
    seen: list[Path] = []
    summary = run_scan(
        options(corpus, backend="dask", scheduler=cluster.scheduler_address),
        on_outcome=lambda o: seen.append(o.path),
    )
    assert summary.ok and summary.analysed == len(CORPUS_FILES)
    assert sorted(p.name for p in seen) == sorted(CORPUS_FILES)
    assert_same_results(rows_by_name(corpus.parent / "corpus.sqlite3"), want)
    # The client wrote the same tags into the files as the local workers did.
    for name in CORPUS_FILES:
        assert read_tags(corpus / name) == read_tags(local_lib / name), name


def test_a_worker_killed_mid_scan_loses_and_duplicates_nothing(
    cluster: Any, corpus: Path, local_scan: tuple[Path, dict[str, IndexRow]]
) -> None:
    distributed = need_dask()
    killed: list[int] = []
    seen: list[Path] = []

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:

        def kill_a_busy_worker(outcome: TrackOutcome) -> None:
            seen.append(outcome.path)
            if killed:
                return
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)  # the nanny starts a new worker in its place
                killed.append(pid)

        summary = run_scan(
            options(corpus, backend="dask", scheduler=cluster.scheduler_address),
            on_outcome=kill_a_busy_worker,
        )
    assert killed, "no worker was busy after the first track came back"
    assert summary.ok and summary.analysed == len(CORPUS_FILES)
    assert sorted(p.name for p in seen) == sorted(CORPUS_FILES)  # each once
    assert_same_results(rows_by_name(corpus.parent / "corpus.sqlite3"), local_scan[1])


def test_every_worker_killed_at_once_loses_nothing(
    corpus: Path, local_scan: tuple[Path, dict[str, IndexRow]]
) -> None:
    """All workers die together (a node's OOM killer, a restart), and with them every copy of
    the scattered model: Dask cancels the tasks that need it; they are sent again with the model
    and every track lands once."""
    distributed = need_dask()
    killed: list[int] = []
    seen: list[Path] = []
    with (
        local_cluster() as local,
        distributed.Client(local.scheduler_address, set_as_default=False) as client,
    ):

        def kill_every_worker(outcome: TrackOutcome) -> None:
            seen.append(outcome.path)
            if not killed:
                for pid in client.run(os.getpid).values():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

        summary = run_scan(
            options(corpus, backend="dask", scheduler=local.scheduler_address),
            on_outcome=kill_every_worker,
        )
    assert len(killed) == 2
    assert summary.ok and summary.analysed == len(CORPUS_FILES), summary.failures
    assert sorted(p.name for p in seen) == sorted(CORPUS_FILES)  # each once
    assert_same_results(rows_by_name(corpus.parent / "corpus.sqlite3"), local_scan[1])


def kill_whoever_runs(scheduler: Any, target: Path) -> Any:
    """A scheduler plugin that kills (SIGKILL, as the OOM killer does) each worker the scheduler
    hands the analysis of `target` to: a track that crashes whoever analyses it. Its `killed`
    lists the pids."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class KillWhoeverRuns(SchedulerPlugin):  # type: ignore[misc]
        def __init__(self) -> None:
            self.killed: list[int] = []

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
            task = scheduler.tasks.get(key)
            if finish != "processing" or task is None or task.processing_on is None:
                return
            if target in getattr(task.run_spec, "args", ()):
                self.killed.append(task.processing_on.pid)
                os.kill(task.processing_on.pid, signal.SIGKILL)  # its nanny starts a new one

    return KillWhoeverRuns()


def test_a_track_that_kills_every_worker_costs_only_that_track(
    corpus: Path, local_scan: tuple[Path, dict[str, IndexRow]]
) -> None:
    need_dask()
    import dask

    doomed = corpus / "lava.wav"
    settings = {
        "distributed.scheduler.allowed-failures": 1,  # Dask gives up after the second death
        "distributed.scheduler.worker-saturation": 1.0,  # one task per worker: no bystanders
    }
    with (
        dask.config.set(settings),
        local_cluster() as local,
    ):
        killer = kill_whoever_runs(local.scheduler, doomed)
        local.scheduler.add_plugin(killer, name="kill-whoever-runs")
        summary = run_scan(options(corpus, backend="dask", scheduler=local.scheduler_address))
    assert len(killer.killed) == 2
    assert summary.failures == [(doomed, "every Dask worker that analysed it died")]
    assert summary.analysed == len(CORPUS_FILES) - 1 and not summary.ok
    got, want = rows_by_name(corpus.parent / "corpus.sqlite3"), local_scan[1]
    assert got["lava.wav"].status == "error" and "died" in (got["lava.wav"].error or "")
    for name in set(CORPUS_FILES) - {"lava.wav"}:
        assert got[name].status == "ok" and got[name].quadrant == want[name].quadrant, name
    assert read_tags(doomed) == {}  # nothing was written into the track that was not analysed


def test_unreachable_scheduler_is_a_clear_error(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_dask()
    monkeypatch.setattr("mertag.tagger.backends.CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(BackendError, match="cannot reach the Dask scheduler"):
        run_scan(options(corpus, backend="dask", scheduler="tcp://127.0.0.1:9", write=False))


def test_unchanged_rescan_asks_the_index_once(tmp_path: Path) -> None:
    """10,000 indexed, unchanged files: planning reads one snapshot, with no query per file."""
    lib = tmp_path / "lib"
    lib.mkdir()
    opts = options(lib)
    with Index(opts.index_path) as index:
        for i in range(10_000):
            path = lib / f"{i:05d}.mp3"
            path.write_bytes(b"")
            st = path.stat()
            index.upsert(
                IndexRow(
                    path=str(path),
                    size=st.st_size,
                    mtime_ns=st.st_mtime_ns,
                    status="ok",
                    model_id=opts.model_id,
                )
            )
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sqlite3, "connect", traced)
        summary = run_scan(opts)
    assert summary.found == summary.unchanged == 10_000 and summary.analysed == 0
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    track_queries = [s for s in statements if "FROM tracks" in s]
    assert len(track_queries) == 1, track_queries  # the snapshot
    # and a fixed handful of checks that the file is mertag's index, none per file
    assert len(reads) <= 8, reads


def test_cli_backend_options_are_checked(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mertag.tagger.cli import app

    runner = CliRunner()
    index = str(corpus.parent / "cli.sqlite3")
    for args, message in (
        (["--backend", "dask"], "go together"),
        (["--scheduler", "tcp://127.0.0.1:9"], "go together"),
        (["--backend", "spark"], "--backend must be one of local, dask"),
    ):
        result = runner.invoke(app, ["scan", str(corpus), "--index", index, *args])
        assert result.exit_code == 2, result.output
        assert message in result.output
    need_dask()
    monkeypatch.setattr("mertag.tagger.backends.CONNECT_TIMEOUT_S", 1.0)
    args = ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--no-write"]
    result = runner.invoke(app, ["scan", str(corpus), "--index", index, *args])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output


def plant(folder: Path, model: ModelFile, data: bytes) -> Path:
    """`data` where a worker whose temp folder is `folder` keeps `model` (its private folder
    made as mertag makes it)."""
    private = folder / f"mertag-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    target = private / f"{model.digest[:16]}-{model.name}"
    target.write_bytes(data)
    return target


def test_a_model_file_planted_in_the_temp_folder_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker keeps the model under the temp folder, named by its digest: a file already there
    with other bytes (another model, a torn write) is replaced before it is used."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = ModelFile.read(MoodModel().path)
    planted = plant(tmp_path, model, (MODELS_DIR / "mertag_4q_fast.onnx").read_bytes())
    assert model.local_path() == planted
    assert planted.read_bytes() == model.data
    assert MoodModel(planted).model_id == MoodModel().model_id
    assert stat.S_IMODE(planted.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("kind", ["world-writable", "a symlink", "another user's", "a file"])
def test_a_temp_folder_not_the_users_own_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = tmp_path / f"mertag-{os.getuid()}"
    if kind == "world-writable":
        folder.mkdir()
        folder.chmod(0o777)
    elif kind == "a symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    elif kind == "another user's":
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        folder.mkdir(mode=0o700)
        os.chown(folder, 65534, 65534)
    else:
        folder.write_bytes(b"")
    model = ModelFile.read(MoodModel().path)
    with pytest.raises(BackendError) as refused:
        model.local_path()
    message = str(refused.value)
    assert message.startswith(f"{folder}: not a private folder of this user")
    assert "\n" not in message
    assert [p.name for p in tmp_path.glob("**/*.onnx")] == []  # nothing written


def test_dask_workers_never_load_a_planted_model(
    corpus: Path,
    local_scan: tuple[Path, dict[str, IndexRow]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another model planted where the workers keep theirs: the scan still gives the local
    scan's results; with their folder made writable by others, the scan is refused in one line."""
    need_dask()
    from typer.testing import CliRunner

    from mertag.tagger.cli import app

    workers_tmp = tmp_path / "tmp"
    workers_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(workers_tmp))  # the worker processes' temp folder
    model = ModelFile.read(MoodModel().path)
    fast = (MODELS_DIR / "mertag_4q_fast.onnx").read_bytes()
    planted = plant(workers_tmp, model, fast)
    with local_cluster() as local:
        summary = run_scan(options(corpus, backend="dask", scheduler=local.scheduler_address))
        assert summary.ok and summary.analysed == len(CORPUS_FILES), summary.failures
        assert_same_results(rows_by_name(corpus.parent / "corpus.sqlite3"), local_scan[1])
        assert planted.read_bytes() == model.data

        planted.parent.chmod(0o777)
        args = ["scan", str(corpus), "--index", str(tmp_path / "again.sqlite3"), "--no-write"]
        args += ["--backend", "dask", "--scheduler", local.scheduler_address]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"mertag: error: {planted.parent}: not a private folder of this user (owner uid "
        f"{os.getuid()}, mode drwxrwxrwx): remove it, or give the workers another TMPDIR"
    )
