"""A scan of an already scanned library given tag options (`--energy`, ...) writes
nothing to its unchanged tracks: its summary says so in one line (and its JSON in `retag`), and
the `mertag write` command it names applies them, read back with mutagen."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from mertag.tagger.mood import energy_level
from tests.tagger.scanned_library import Library, invoke
from tests.tagger.test_player_fields import stored


def _config(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _analysed(library: Library) -> list[tuple[Path, float]]:
    return [(Path(r.path), r.arousal) for r in library.rows() if r.status == "ok"]


def _hint(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if " unchanged track" in line]


def test_rescan_with_energy_names_the_write_that_applies_it(
    library: Library, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    tracks = _analysed(library)
    scan = ["--config", config, "scan", library.lib, "--index", library.index, "--jobs", "1"]
    result = invoke([*scan, "--energy", "--mood-field", "COMMENT"])
    assert result.exit_code == 1, result.output  # the bad file is still failing
    assert all(stored(p, "ENERGY") is None for p, _ in tracks)  # nothing written
    (line,) = _hint(result.stderr)
    command = (
        f"mertag --config {config} write --energy --mood-field COMMENT --index {library.index}"
    )
    assert line == (
        f"{len(tracks)} unchanged tracks keep the tags they have: `{command}` applies these "
        "settings (--energy, --mood-field) to them"
    )
    wrote = invoke(shlex.split(command)[1:])
    assert wrote.exit_code == 0, wrote.output
    for path, arousal in tracks:
        assert stored(path, "ENERGY") == [str(energy_level(arousal))], path
        assert stored(path, "COMMENT"), path


def test_options_are_named_in_the_json_and_config_settings_are_not(
    library: Library, tmp_path: Path
) -> None:
    """A setting in the config is standing (the tracks got it when first tagged): only what was
    typed for this scan is named."""
    config = _config(tmp_path, 'energy = true\nmood_fields = ["GROUPING"]\nuncertain_word = ""\n')
    scan = ["--config", config, "scan", library.lib, "--index", library.index, "--jobs", "1"]
    result = invoke([*scan, "--format", "json", "--no-energy"])
    retag = json.loads(result.stdout)["summary"]["retag"]
    assert retag == {
        "tracks": len(_analysed(library)),
        "settings": ["--no-energy"],
        "command": f"mertag --config {config} write --no-energy --index {library.index}",
    }
    lines = invoke([*scan, "--format", "jsonl"]).stdout.splitlines()
    assert json.loads(lines[-1])["summary"]["retag"] is None


def test_no_hint_without_tag_settings_or_without_writing(library: Library, tmp_path: Path) -> None:
    config = _config(tmp_path, 'moods = { Q1 = "Happy" }\njobs = 1\n')  # the default word
    scan = ["--config", config, "scan", library.lib, "--index", library.index]
    plain = invoke(scan)
    assert plain.exit_code == 1 and not _hint(plain.stderr), plain.output
    assert json.loads(invoke([*scan, "--json"]).stdout)["summary"]["retag"] is None
    for extra in ("--no-write", "--dry-run"):
        result = invoke([*scan, "--energy", extra])
        assert not _hint(result.stderr), (extra, result.output)


def test_one_unchanged_track_is_one_track(library: Library, tmp_path: Path) -> None:
    one = _analysed(library)[0][0]
    config = _config(tmp_path)
    result = invoke(["--config", config, "scan", one, "--index", library.index, "--energy"])
    assert result.exit_code == 0, result.output
    (line,) = _hint(result.stderr)
    assert line.startswith("1 unchanged track keeps the tags it has: `mertag --config")
    assert line.endswith("applies these settings (--energy) to it"), line
