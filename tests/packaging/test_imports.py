"""The structure holds: no import circle anywhere in the package (imports inside functions
count), the runtime never imports the trainer or torch (nor beets, but for the beets plugin), and
data flows down the pipeline."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {"tagger": "mertag.tagger", "trainer": "mertag.trainer", "models": "mertag.models"}


def modules() -> dict[str, Path]:
    """Every module of the package by its import name, read from the repository's folders."""
    found = {"mertag": REPO / "tagger" / "_root" / "__init__.py"}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports, at any depth of the code."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        out.update(name for name in names if name in known)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def test_no_import_circle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in sorted(edges[name]):
            # A package's __init__ importing its own module is not a circle of modules.
            if dep == name.rpartition(".")[0]:
                continue
            if state.get(dep) == 1:
                circles.append([*trail[trail.index(dep) :], dep] if dep in trail else [name, dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not circles, circles


def imported(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each import statement of `path`, at any depth: its line and the modules it names."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, [node.module]


BEETS_PLUGIN = "mertag.tagger.beets_plugin"
"""The one runtime module that imports beets, which only the `beets` extra installs."""


def test_the_runtime_never_imports_the_trainer_or_torch() -> None:
    for name, path in modules().items():
        if not name.startswith("mertag.tagger"):
            continue
        forbidden = ("mertag.trainer", "torch") + (() if name == BEETS_PLUGIN else ("beets",))
        for _, targets in imported(path):
            for target in targets:
                assert not target.startswith(forbidden), (name, target)


def test_no_stage_imports_a_later_one() -> None:
    """walk -> decode -> features -> model -> tags -> index: each stage imports only earlier
    ones (pipeline, backends, scan and the CLI sit above them all)."""
    order = ["library", "audio", "embeddings", "features", "mood", "model", "tags", "index"]
    edges = graph()
    for i, stage in enumerate(order):
        later = {f"mertag.tagger.{s}" for s in order[i + 1 :]}
        assert not edges[f"mertag.tagger.{stage}"] & later, stage


ONNXRUNTIME_IMPORTERS = {
    "mertag.tagger.embeddings": "onnx_runtime(), its owner: telemetry off before the import",
    "mertag.tagger.model": "its error classes, in a method run only on a session made already",
}
"""The modules that may import onnxruntime themselves. Its telemetry switch counts only before
the first import, so every other module, the trainer's included, goes through
mertag.tagger.embeddings.onnx_runtime()."""


def test_onnxruntime_is_imported_only_through_its_owner() -> None:
    for name, path in modules().items():
        if name in ONNXRUNTIME_IMPORTERS:
            continue
        for line, targets in imported(path):
            assert not any(t.split(".")[0] == "onnxruntime" for t in targets), (name, line)
