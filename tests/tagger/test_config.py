"""The config file: values, where each came from, errors that name the key, and the command line
winning over the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mutagen
import pytest

from mertag.tagger import config as config_module
from mertag.tagger.config import ConfigError, config_location, load_config
from mertag.tagger.index import Index
from mertag.tagger.mood import DEFAULT_MOODS
from mertag.tagger.tags import read_tags
from tests.tagger.scanned_library import invoke, make_wav

FULL = """
moods = { Q1 = "Joyful", q2 = "Tense", Q3 = "Blue", Q4 = "Calm" }
id3_version = "2.3"
index = "data/index.sqlite3"
jobs = 3
exclude = ["Podcasts", "*.wav"]
playlist_dir = "~/Playlists"
model = "fast"
overwrite_mood = true
uncertain_below = 0.5
uncertain_word = " Unsure "
energy = true
overwrite_energy = true
mood_fields = ["comment", "GROUPING"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_file(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, FULL))
    assert cfg.exists and cfg.origin == "--config"
    assert cfg.moods == {"Q1": "Joyful", "Q2": "Tense", "Q3": "Blue", "Q4": "Calm"}
    assert cfg.id3_version == "2.3" and cfg.id3v23
    assert cfg.index == tmp_path / "data" / "index.sqlite3"  # relative to the file's folder
    assert cfg.jobs == 3 and cfg.exclude == ("Podcasts", "*.wav")
    assert cfg.playlist_dir == Path("~/Playlists").expanduser()
    assert cfg.model == "fast"  # a shipped model's name stays a name
    assert cfg.overwrite_mood is True
    assert cfg.uncertain_below == 0.5 and cfg.uncertain_word == "Unsure"
    assert cfg.energy is True and cfg.overwrite_energy is True
    assert cfg.mood_fields == ("COMMENT", "GROUPING")
    assert set(cfg.sources.values()) == {"config file"}
    own = load_config(_write(tmp_path, 'model = "mine/mood.onnx"\n'))
    assert own.model == str(tmp_path / "mine" / "mood.onnx")  # a file, from the config's folder


def test_partial_file_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, 'moods = { Q3 = "Melancholy" }\nid3_version = 4\n'))
    assert cfg.moods == {**DEFAULT_MOODS, "Q3": "Melancholy"}
    assert cfg.id3_version == "2.4" and cfg.jobs is None and cfg.exclude == ()
    assert cfg.sources["moods.Q3"] == "config file" and cfg.sources["moods.Q1"] == "default"
    assert cfg.sources["index"] == "default"
    assert cfg.model == "default" and cfg.sources["model"] == "default"
    list_form = load_config(_write(tmp_path, 'moods = ["a", "b", "c", "d"]\nexclude = "x*"\n'))
    assert list_form.moods == {"Q1": "a", "Q2": "b", "Q3": "c", "Q4": "d"}
    assert list_form.exclude == ("x*",)


def test_where_the_file_is_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MERTAG_CONFIG": str(tmp_path / "env.toml")}
    assert config_location(tmp_path / "x.toml", env) == (tmp_path / "x.toml", "--config")
    assert config_location(None, env) == (tmp_path / "env.toml", "MERTAG_CONFIG")
    path, origin = config_location(None, {"MERTAG_CONFIG": ""})
    assert origin == "default location" and path.name == "config.toml" and "mertag" in str(path)
    # The default file may be absent; a file asked for by name may not.
    monkeypatch.setattr(config_module, "default_config_path", lambda: tmp_path / "absent.toml")
    cfg = load_config(None, {})
    assert not cfg.exists and cfg.moods == DEFAULT_MOODS
    with pytest.raises(ConfigError, match="from MERTAG_CONFIG.*does not exist"):
        load_config(None, env)


@pytest.mark.parametrize(
    "text, key",
    [
        ("jobs = 0", "jobs:"),
        ('jobs = "2"', "jobs:"),
        ("jobs = true", "jobs:"),
        ('id3_version = "2.5"', "id3_version:"),
        ("id3_version = true", "id3_version:"),
        ('moods = { Q5 = "Odd" }', "moods.Q5:"),
        ('moods = { Q1 = "" }', "moods.Q1:"),
        ("moods = { Q1 = 3 }", "moods.Q1:"),
        ('moods = { Q1 = "Sad" }', "moods: Q1 and Q3 both have the word 'Sad'"),
        ('moods = ["a", "b", "c"]', "moods:"),
        ('moods = "Happy"', "moods:"),
        ("exclude = [1, 2]", "exclude:"),
        ("index = 3", "index:"),
        ('playlist_dir = ""', "playlist_dir:"),
        ("model = 1", "model:"),
        ('energy = "yes"', "energy: must be true or false"),
        ('mood_fields = ["COMMENT", "TITLE"]', "mood_fields: 'TITLE' is not one of COMMENT"),
        ("mood_fields = 1", "mood_fields:"),
        ("jbos = 2", "jbos: unknown key"),
        ("jobs = = 2", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"config file {path}: ")
    assert key in str(err.value)


def test_cli_config_shows_values_and_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, 'jobs = 2\nmoods = { Q4 = "Calm" }\n')
    monkeypatch.setenv("MERTAG_CONFIG", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke(["config"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"config file: {path} [MERTAG_CONFIG]" in out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert " 2 " in lines["jobs"] and "config file" in lines["jobs"]
    assert "Calm" in lines["moods.Q4"] and "config file" in lines["moods.Q4"]
    assert "Happy" in lines["moods.Q1"] and "default" in lines["moods.Q1"]
    doc = json.loads(invoke(["config", "--format", "json"]).stdout)
    assert doc["values"]["jobs"] == 2 and doc["sources"]["jobs"] == "config file"
    assert doc["sources"]["index"] == "default" and doc["file_from"] == "MERTAG_CONFIG"


def test_toml_output_is_a_config_file_with_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MERTAG_CONFIG", str(_write(tmp_path, FULL)))
    text = invoke(["config", "--format", "toml"]).stdout
    config_module.tomllib.loads(text)
    copy = tmp_path / "copy"
    copy.mkdir()
    again = load_config(_write(copy, text))
    original = load_config(tmp_path / "config.toml")
    assert again.as_dict() == original.as_dict()


def test_global_config_option_beats_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "jobs = 5\n")
    doc = json.loads(invoke(["--config", path, "config", "-f", "json"]).stdout)
    assert doc["values"]["jobs"] == 5 and doc["file_from"] == "--config"


@pytest.mark.parametrize("command", [["config"], ["list"], ["stats"], ["playlist", "-o", "x"]])
def test_a_bad_file_is_a_usage_error_for_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("MERTAG_CONFIG", str(_write(tmp_path, "jobs = -1\n")))
    result = invoke(command)
    assert result.exit_code == 2
    assert "jobs: must be a whole number of at least 1, not -1" in result.stderr


def test_missing_named_file(tmp_path: Path) -> None:
    result = invoke(["--config", tmp_path / "nope.toml", "config"])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_scan_follows_the_file_and_the_command_line_wins(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(corpus / "lava.wav", lib / "lava.wav")
    make_wav(lib / "skip-me.wav")
    words = 'moods = { Q1 = "Joy", Q2 = "Rage", Q3 = "Gloom", Q4 = "Ease" }\n'
    conf = _write(
        tmp_path,
        words + 'id3_version = "2.3"\nindex = "idx.sqlite3"\nexclude = ["skip*"]\n'
        "uncertain_below = 0\n",  # every track gets a word, however unsure
    )
    monkeypatch.setenv("MERTAG_CONFIG", str(conf))
    result = invoke(["scan", lib, "-j", "1", "-q"])
    assert result.exit_code == 0, result.output
    with Index(tmp_path / "idx.sqlite3") as idx:  # the index the file names
        rows = list(idx.rows())
    assert [Path(r.path).name for r in rows] == ["lava.wav"]  # skip-me.wav excluded
    tags = mutagen.File(lib / "lava.wav").tags
    assert tags.version[:2] == (2, 3) and "TXXX:MOOD" in tags and "TMOO" not in tags
    assert read_tags(lib / "lava.wav")["MOOD"] in ("Joy", "Rage", "Gloom", "Ease")

    other = tmp_path / "other.sqlite3"
    args = ["scan", lib, "-j", "1", "-q", "--force", "--index", other, "--id3v24"]
    result = invoke([*args, "--exclude", "nothing*", "--moods", "A,B,C,D"])
    assert result.exit_code == 0, result.output
    with Index(other) as idx:
        rows = list(idx.rows())
    assert sorted(Path(r.path).name for r in rows) == ["lava.wav", "skip-me.wav"]
    assert {r.mood for r in rows} <= {"A", "B", "C", "D"}
    tags = mutagen.File(lib / "lava.wav").tags
    assert tags.version[:2] == (2, 4) and "TMOO" in tags


def test_scan_uses_the_configured_model_unless_told_otherwise(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mertag.tagger.model import MoodModel

    track = corpus / "lava.wav"
    monkeypatch.setenv("MERTAG_CONFIG", str(_write(tmp_path, 'model = "fast"\n')))
    index = tmp_path / "i.sqlite3"
    result = invoke(["scan", track, "-j", "1", "-q", "--index", index])
    assert result.exit_code == 0, result.output
    assert read_tags(track)["MERTAG_MODEL"] == MoodModel("fast").model_id
    other = tmp_path / "j.sqlite3"
    result = invoke(["scan", track, "-j", "1", "-q", "--index", other, "--model", "default"])
    assert result.exit_code == 0, result.output
    assert read_tags(track)["MERTAG_MODEL"] == MoodModel("default").model_id  # a 12-s track
    monkeypatch.setenv("MERTAG_CONFIG", str(_write(tmp_path, 'model = "gone.onnx"\n')))
    result = invoke(["scan", track, "--index", index])
    assert result.exit_code == 2 and "gone.onnx: model file not found" in result.stderr
    assert "the shipped models: default or fast" in " ".join(result.stderr.split())


def test_moods_option_rejects_a_repeated_word(tmp_path: Path) -> None:
    result = invoke(["scan", tmp_path, "--moods", "Up,Down,up,Flat"])
    assert result.exit_code == 2 and "Q1 and Q3 both have the word 'up'" in result.stderr
