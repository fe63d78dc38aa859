"""README.md stays true to the code: its test command is CI's, its commands and config keys exist.

Cheap checks on text and on the objects the CLI and the config are built from; nothing is run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from mertag.tagger import config as config_module
from mertag.tagger.cli import command_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CI_RUN = REPO / ".ci" / "run"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?<![\w.-])mertag(?:\s+--config\s+\S+)?\s+([a-z][a-z-]*)")
CONFIG_HEADING = "## The config file"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(text: str, *languages: str) -> list[str]:
    """The bodies of the fenced blocks whose language is one of `languages`."""
    return [body for lang, body in FENCE.findall(text) if lang in languages]


def shell_code(text: str) -> list[str]:
    """Every shell line of the README (comments cut off) and every inline code span."""
    lines = [line.split(" #")[0] for body in code_blocks(text, "sh") for line in body.splitlines()]
    return lines + INLINE_CODE.findall(FENCE.sub("", text))


def section(text: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same level."""
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def cli_commands() -> set[str]:
    """Every command of the whole `mertag` command line, the trainer's included."""
    return set(typer.main.get_command(command_line()).commands)  # type: ignore[attr-defined]


def config_keys() -> set[str]:
    """The keys the config file accepts: the names in its one table of settings."""
    return {setting.name for setting in config_module.SETTINGS}


def test_the_readme_test_command_is_the_one_ci_runs() -> None:
    ci = [line for line in CI_RUN.read_text().splitlines() if "pytest" in line]
    ci = [line for line in ci if not line.startswith("#")]
    documented = [line for body in code_blocks(readme(), "sh") for line in body.splitlines()]
    documented = [line for line in documented if "pytest" in line]
    assert len(ci) == 1, f".ci/run should run pytest on one line, not {ci}"
    assert documented == ci, "README.md's test command differs from .ci/run's"


def test_every_command_the_readme_names_exists() -> None:
    named = {m for line in shell_code(readme()) for m in COMMAND.findall(line)}
    assert named, "no `mertag COMMAND` found in README.md"
    unknown = named - cli_commands()
    assert not unknown, f"README.md names commands the CLI lacks: {sorted(unknown)}"


def test_every_command_has_an_example_in_the_readme() -> None:
    examples = {m for body in code_blocks(readme(), "sh") for m in COMMAND.findall(body)}
    missing = cli_commands() - examples
    assert not missing, f"commands without an example in README.md: {sorted(missing)}"


def test_the_documented_config_keys_are_the_accepted_ones() -> None:
    table = section(readme(), CONFIG_HEADING)
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", table, re.MULTILINE))
    assert documented == config_keys()


def test_the_readme_example_config_file_loads_and_sets_every_key(tmp_path: Path) -> None:
    (example,) = code_blocks(section(readme(), CONFIG_HEADING), "toml")
    path = tmp_path / "config.toml"
    path.write_text(example, encoding="utf-8")
    config_module.load_config(path)  # a bad key or value raises ConfigError
    assert set(tomllib.loads(example)) == config_keys()
