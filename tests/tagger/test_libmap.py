"""`mertag map`: the library drawn on the valence-arousal plane, checked by looking at pixels."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.index import IndexRow
from mertag.tagger.libmap import COLOURS, MapError, draw_map
from tests.tagger.scanned_library import Library, grid_points, invoke, point_row

Image = pytest.importorskip("PIL.Image", reason="matplotlib (the map extra) brings Pillow")
pytest.importorskip("matplotlib", reason="the map needs the map extra (matplotlib)")


def _pixels_near(image: np.ndarray, colour: str, tol: int = 12) -> int:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(image[..., :3].astype(int) - rgb) <= tol, axis=-1)))


def test_map_of_the_scanned_library(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "map.png"
    result = invoke(["map", "--out", out, "--index", library.index])
    assert result.exit_code == 0, result.output
    ok = [r for r in library.rows() if r.status == "ok"]
    assert f"({len(ok)} tracks)" in result.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[0] == image.shape[1] > 500
    for q in {r.quadrant for r in ok}:
        assert _pixels_near(image, COLOURS[q]) > 20, q  # its points and its label are there


def test_formats_follow_the_suffix(tmp_path: Path) -> None:
    rows = [point_row(f"/nowhere/{i}.wav", v, a) for i, (v, a) in enumerate(grid_points(6))]
    svg = tmp_path / "map.svg"
    assert draw_map(rows, svg) == len(rows)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    first = svg.read_bytes()
    draw_map(rows, svg)
    assert svg.read_bytes() == first  # reproducible: no date, fixed ids
    pdf = tmp_path / "map.pdf"
    draw_map(rows, pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(MapError, match=".png, .svg, .pdf"):
        draw_map(rows, tmp_path / "map.gif")


def test_filters_and_errors_leave_points_out(tmp_path: Path) -> None:
    rows = [point_row(f"/nowhere/{i}.wav", v, a) for i, (v, a) in enumerate(grid_points(4))]
    rows.append(IndexRow(path="/m/bad.mp3", size=0, mtime_ns=0, status="error", error="x"))
    assert draw_map(rows, tmp_path / "m.png") == 16
    assert draw_map([], tmp_path / "empty.png") == 0
    assert Image.open(tmp_path / "empty.png").size[0] > 500


def test_cli_errors(library: Library, tmp_path: Path) -> None:
    bad = invoke(["map", "--out", tmp_path / "map.jpg", "--index", library.index])
    assert bad.exit_code == 2 and ".png, .svg, .pdf" in bad.stderr
    conf = invoke(
        ["map", "-o", tmp_path / "m.svg", "--min-confidence", 1, "--index", library.index]
    )
    assert conf.exit_code == 0 and "(0 tracks)" in conf.stderr


def test_without_matplotlib_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    with pytest.raises(MapError, match=r"pip install 'mertag\[map\]'"):
        draw_map([], tmp_path / "m.png")


def test_help_does_not_import_matplotlib() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom mertag.tagger.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "assert CliRunner().invoke(app, ['map', '--help']).exit_code == 0\n"
        "print('matplotlib' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
