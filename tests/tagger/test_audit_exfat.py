"""A library on exFAT (memory cards, USB drives, portable players): tagged, untagged, and safe
after a crash and a remount.

Found by the red-team audit, on a real exFAT file system (Debian's exfat-fuse on a loop device):
- every tag write failed with "operation not permitted": the write journal was hard-linked into
  place, and FAT file systems have no hard links;
- once that worked, a write-back killed half-way and followed by a remount lost its recovery:
  FUSE's exFAT numbers inodes anew at each mount, so the next run took the journal for an
  obsolete one and deleted the complete copy, leaving the half-written file.
Skipped with a reason where the machine cannot mount exFAT (needs root, mkfs.exfat,
mount.exfat-fuse, losetup and /dev/fuse: `apt-get install exfatprogs exfat-fuse`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import mutagen
import pytest

from mertag.tagger.index import Index
from mertag.tagger.write_journal import JOURNAL_SUFFIX, TEMP_SUFFIX, finish_interrupted_writes
from tests.conftest import CORPUS, need_shared
from tests.tagger.fault_helpers import make_track
from tests.tagger.scanned_library import invoke
from tests.tagger.test_file_identity import _killed_mid_write_back

NAMES = ("bay.mp3", "egypt.flac", "farm.ogg", "hacienda.m4a")
TOOLS = ("mkfs.exfat", "mount.exfat-fuse", "losetup", "umount")


class ExFat:
    """An exFAT file system in an image file on a loop device, mounted through FUSE."""

    def __init__(self, image: Path, mount: Path) -> None:
        self.image, self.mount = image, mount
        self.device = ""

    def _run(self, *args: str) -> str:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip()

    def create(self) -> None:
        with open(self.image, "wb") as f:
            f.truncate(48 << 20)
        self._run("mkfs.exfat", str(self.image))
        self.device = self._run("losetup", "-f", "--show", str(self.image))
        self.mount.mkdir()
        self.attach()

    def attach(self) -> None:
        self._run("mount.exfat-fuse", self.device, str(self.mount), "-o", "rw")

    def detach(self) -> None:
        self._run("umount", str(self.mount))

    def remount(self) -> None:
        """Unmount and mount again: every file gets its inode number anew."""
        self.detach()
        self.attach()

    def destroy(self) -> None:
        subprocess.run(["umount", str(self.mount)], capture_output=True)
        if self.device:
            subprocess.run(["losetup", "-d", self.device], capture_output=True)


@pytest.fixture
def exfat(tmp_path: Path) -> Iterator[ExFat]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if os.geteuid() != 0 or missing or not os.path.exists("/dev/fuse"):
        pytest.skip(f"cannot mount exFAT here (root, /dev/fuse, {', '.join(TOOLS)} needed)")
    fs = ExFat(tmp_path / "exfat.img", tmp_path / "mnt")
    try:
        try:
            fs.create()
        except RuntimeError as exc:
            pytest.skip(f"cannot mount exFAT here: {exc}")
        yield fs
    finally:
        fs.destroy()


def audio_packets(path: Path) -> str:
    """sha256 of the audio stream's packets as the demuxer reads them (tags are not in them)."""
    digest = hashlib.sha256()
    with av.open(str(path), metadata_errors="replace") as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.size:
                digest.update(bytes(packet))
    return digest.hexdigest()


def all_tags(path: Path) -> dict[str, str]:
    audio: Any = mutagen.File(path)
    return {k.upper(): repr(v) for k, v in audio.tags.items()}


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith((TEMP_SUFFIX, JOURNAL_SUFFIX))]


def test_a_library_on_exfat_is_tagged_and_untagged_losing_nothing(
    exfat: ExFat, tmp_path: Path
) -> None:
    lib, index = exfat.mount / "Music", tmp_path / "index.sqlite3"
    lib.mkdir()
    for name in NAMES:
        shutil.copyfile(need_shared(CORPUS / name), lib / name)
    audio = {n: audio_packets(lib / n) for n in NAMES}
    tags = {n: all_tags(lib / n) for n in NAMES}

    result = invoke(["scan", lib, "--index", index, "-j", "1"])
    assert result.exit_code == 0, result.output
    with Index(index, read_only=True) as idx:
        assert {Path(r.path).name: r.tagged for r in idx.rows()} == dict.fromkeys(NAMES, 1)
    exfat.remount()  # what is on the card, not what the page cache holds
    for name in NAMES:
        assert audio_packets(lib / name) == audio[name], name
        now = all_tags(lib / name)
        assert now.keys() > tags[name].keys() and "MERTAG_QUADRANT" in " ".join(now), name
    assert leftovers(lib) == []

    result = invoke(["untag", lib, "--index", index])
    assert result.exit_code == 0, result.output
    exfat.remount()
    for name in NAMES:
        assert audio_packets(lib / name) == audio[name], name
        assert all_tags(lib / name) == tags[name], name
    assert leftovers(lib) == []


def test_a_write_back_killed_before_a_remount_keeps_its_copy(exfat: ExFat, tmp_path: Path) -> None:
    lib = exfat.mount / "Music"
    lib.mkdir()
    path = make_track(lib / "t.flac")  # long enough to analyse: the scan reaches its tag write
    make_track(lib / "a.flac", index=1)
    before, tagged = _killed_mid_write_back(path)
    written = path.read_bytes()  # half old, half tagged
    ino = path.stat().st_ino
    exfat.remount()
    (lib / "a.flac").stat()  # looked up first now, so it gets the number t.flac had
    assert path.stat().st_ino != ino, "the remount should have renumbered the inodes"

    done, problems = finish_interrupted_writes(lib)
    assert done == [] and len(problems) == 1, problems
    assert "not the inode it was for" in problems[0][1]
    assert path.read_bytes() == written  # untouched, not "finished" into another file
    copy = next(p for p in lib.iterdir() if p.name.endswith(TEMP_SUFFIX))
    assert copy.read_bytes() == tagged and copy.name in problems[0][1]  # nothing lost

    index = tmp_path / "index.sqlite3"
    result = invoke(["scan", lib, "--index", index, "-j", "1"])  # it cleans up stale copies
    assert result.exit_code == 1, result.output  # the half-written file cannot be decoded
    assert copy.exists() and path.read_bytes() == written != before
    result = invoke(["untag", lib, "--index", index])
    assert result.exit_code == 1, result.output
    assert any("not the inode it was for" in x for x in result.stderr.splitlines()), result.stderr
    assert copy.exists() and path.read_bytes() == written
