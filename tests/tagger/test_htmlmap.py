"""`mertag map --out FILE.html`: one self-contained page from a real index, its embedded data read
back, and the page rendered in a real headless browser (Debian's chromium) when one is
installed."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mertag.tagger.htmlmap import FIELDS, write_html_map
from mertag.tagger.libmap import COLOURS, SHADES
from mertag.tagger.mood import mood_shown
from tests.tagger.scanned_library import Library, invoke, point_row

DATA = re.compile(r'<script type="application/json" id="mertag-data">(.*?)</script>', re.S)


def embedded(page: Path) -> dict:
    """The page's JSON data, as the page's own script reads it."""
    (text,) = DATA.findall(page.read_text(encoding="utf-8"))
    return json.loads(text)


def tracks(page: Path) -> list[dict]:
    data = embedded(page)
    assert data["fields"] == list(FIELDS)
    return [dict(zip(FIELDS, t, strict=True)) for t in data["tracks"]]


def test_the_page_holds_every_track_of_a_real_index(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    result = invoke(["map", "--out", out, "--title", "My <library>", "--index", library.index])
    assert result.exit_code == 0, result.output
    ok = [r for r in library.rows() if r.status == "ok"]
    assert f"({len(ok)} tracks)" in result.stderr
    shown = {t["path"]: t for t in tracks(out)}
    assert set(shown) == {r.path for r in ok}
    for r in ok:
        t = shown[r.path]
        assert (t["valence"], t["arousal"]) == pytest.approx((r.valence, r.arousal), abs=1e-4)
        assert (t["quadrant"], t["mood"]) == (
            r.quadrant,
            mood_shown(r.mood, r.quadrant, r.uncertain),
        )
    by_name = {Path(p).name: t for p, t in shown.items()}
    assert by_name["tone [A440].wav"]["title"] == "A above middle C"  # from the file's tags
    assert by_name["tone [A440].wav"]["artist"] == "Test Tones"
    assert (by_name["bay.mp3"]["artist"], by_name["bay.mp3"]["title"]) == ("0zone0ne", "Bay")
    assert by_name["lava.wav"]["title"] == "lava" and by_name["lava.wav"]["artist"] is None
    page = out.read_text(encoding="utf-8")
    assert "<title>My &lt;library&gt;</title>" in page
    assert embedded(out)["title"] == "My <library>"


def test_the_page_is_self_contained(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    assert invoke(["map", "-o", out, "--index", library.index]).exit_code == 0
    page = out.read_text(encoding="utf-8")
    for needle in ("http://", "https://", " src=", "<link", "@import", "url("):
        assert needle not in page, needle
    assert "default-src 'none'" in page  # the browser itself refuses any fetch
    assert page.count("<script") == 2  # the data and the inline script, nothing loaded


def test_a_query_selects_the_points(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "sad.html"
    assert invoke(["map", "mood:sad", "-o", out, "--index", library.index]).exit_code == 0
    want = {r.path for r in library.rows() if r.quadrant == "Q3"}
    assert {t["path"] for t in tracks(out)} == want


def test_no_matplotlib_needed(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    out = tmp_path / "map.html"
    result = invoke(["map", "-o", out, "--index", library.index])
    assert result.exit_code == 0, result.output
    png = invoke(["map", "-o", tmp_path / "map.png", "--index", library.index])
    assert png.exit_code == 2 and "pip install 'mertag[map]'" in png.stderr


def test_names_that_could_break_the_page_round_trip(tmp_path: Path) -> None:
    odd = [
        "/m/</script><script>alert(1)</script>.mp3",
        "/m/a & b <c>.flac",
        "/m/quote \" and ' \u2028 line sep.ogg",
        os.fsdecode(b"/m/bad\xff.wav"),
    ]
    rows = [point_row(p, 0.1 * i, -0.1 * i) for i, p in enumerate(odd)]
    out = tmp_path / "odd.html"
    assert write_html_map(rows, out) == len(rows)
    got = [t["path"] for t in tracks(out)]
    assert got[:3] == odd[:3]
    assert got[3] == "/m/bad\\xff.wav"  # undecodable bytes escaped, as exports do
    assert "</script><script>alert" not in out.read_text(encoding="utf-8")


def _ten_thousand(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    points = np.clip(rng.normal(0, 0.4, (10_000, 2)), -1, 1)
    rows = [
        point_row(f"/music/Artist {i % 97}/Album {i % 13}/track {i}.mp3", float(v), float(a))
        for i, (v, a) in enumerate(points)
    ]
    out = tmp_path / "big.html"
    assert write_html_map(rows, out) == 10_000
    return out


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser installed (apt-get install chromium)")


def _chromium(page: Path, tmp_path: Path, *args: str, fragment: str = "") -> str:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    command = [
        _browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1000,800",
        *args,
        page.as_uri() + fragment,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _shown(dom: str) -> str:
    match = re.search(r'<output id="shown"[^>]*>(.*?)</output>', dom)
    assert match, dom[:2000]
    return html.unescape(match[1])


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def _colour_pixels(png: Path, colour: str, over: str | None = None, tol: int = 30) -> int:
    """Pixels of `colour`, or of it drawn half transparent over the shade `over`."""
    image_mod = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot")
    image = np.asarray(image_mod.open(png).convert("RGB")).astype(int)
    targets = [_rgb(colour)]
    if over is not None:
        targets.append((_rgb(colour) + _rgb(over)) / 2)
    near = [np.all(np.abs(image - t) <= tol, axis=-1) for t in targets]
    return int(np.sum(np.logical_or.reduce(near)))


def test_the_page_renders_in_a_headless_browser(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    assert invoke(["map", "-o", out, "--index", library.index]).exit_code == 0
    n = len(tracks(out))
    assert _shown(_chromium(out, tmp_path, "--dump-dom")) == f"{n} of {n} tracks shown"
    searched = _chromium(out, tmp_path, "--dump-dom", fragment="#q=tone%20a440")
    assert _shown(searched) == f"1 of {n} tracks shown"  # the search box, through the link
    assert "A above middle C" in searched  # the list of what was found
    shot = tmp_path / "shot.png"
    _chromium(out, tmp_path, f"--screenshot={shot}")
    image_mod = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot")
    image = np.asarray(image_mod.open(shot).convert("RGB"))
    assert image.shape[:2] == (800, 1000)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # not blank
    for q in {t["quadrant"] for t in tracks(out)}:
        assert _colour_pixels(shot, COLOURS[q]) > 30, q  # its points and its label


def test_ten_thousand_tracks_render(tmp_path: Path) -> None:
    out = _ten_thousand(tmp_path)
    assert _shown(_chromium(out, tmp_path, "--dump-dom")) == "10000 of 10000 tracks shown"
    shot = tmp_path / "big.png"
    _chromium(out, tmp_path, f"--screenshot={shot}")
    for q in ("Q1", "Q2", "Q3", "Q4"):
        # dense clouds in every quadrant, half transparent where they are thin
        assert _colour_pixels(shot, COLOURS[q], over=SHADES[q]) > 5000, q
    dom = _chromium(out, tmp_path, "--dump-dom", fragment="#q=artist%2042/")
    found = sum("Artist 42/" in t[7] for t in embedded(out)["tracks"])
    assert _shown(dom) == f"{found} of 10000 tracks shown"


PROBE = """<script>
// Test probe: hover the first track's point, then click it, as a user's pointer would.
const t0 = TRACKS[0];
const box = canvas.getBoundingClientRect();
const [px, py] = toScreen(t0[F.valence], t0[F.arousal]);
const at = {clientX: box.left + px, clientY: box.top + py, bubbles: true};
canvas.dispatchEvent(new PointerEvent("pointermove", at));
const probe = document.createElement("pre");
probe.id = "probe";
probe.textContent = JSON.stringify({hidden: tip.hidden, tip: tip.textContent});
canvas.dispatchEvent(new PointerEvent("pointerdown", at));
canvas.dispatchEvent(new PointerEvent("pointerup", at));
document.body.append(probe);
</script>
"""


def test_hover_shows_the_track_and_click_copies_its_path(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    assert invoke(["map", "-o", out, "--index", library.index]).exit_code == 0
    first = tracks(out)[0]
    probed = tmp_path / "probed.html"
    probed.write_text(
        out.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = _chromium(probed, tmp_path, "--dump-dom", "--virtual-time-budget=2000")
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, dom[-3000:]
    seen = json.loads(html.unescape(match[1]))
    assert not seen["hidden"]
    assert first["title"] in seen["tip"] and first["path"] in seen["tip"]
    assert f"{first['mood']}: valence" in seen["tip"] and f"({first['quadrant']})" in first["mood"]
    status = re.search(r'<span id="status">(.*?)</span>', dom, re.S)
    assert status and html.unescape(status[1]).endswith(first["path"])  # copied (or shown)


def test_uncertain_and_silent_tracks_are_counted_apart_in_the_browser(tmp_path: Path) -> None:
    """The quadrant switches and the labels on the plane count only the confident tracks; the
    uncertain ones are grey points behind a switch of their own; the silent ones are said."""
    from dataclasses import replace

    from mertag.tagger.index import IndexRow
    from mertag.tagger.libmap import UNCERTAIN_COLOUR

    confident = [point_row(f"/m/happy {i}.wav", 0.6, 0.5 + 0.1 * i) for i in range(3)]
    doubtful = [
        replace(point_row(f"/m/unsure {i}.wav", 0.2, 0.1 * i), uncertain=1, mood=None)
        for i in range(4)  # all four in Q1 by their best guess
    ]
    quiet = IndexRow(path="/m/quiet.wav", size=1, mtime_ns=1, status="silent", error="silent")
    out = tmp_path / "map.html"
    assert write_html_map([*confident, *doubtful, quiet], out) == 7
    dom = _chromium(out, tmp_path, "--dump-dom")
    switches = re.findall(r'data-q="([^"]+)">.*?</span>([^<]*)</label>', dom)
    assert switches == [
        ("Q1", "Q1 Happy (3)"),
        ("Q2", "Q2 Angry (0)"),
        ("Q3", "Q3 Sad (0)"),
        ("Q4", "Q4 Relaxed (0)"),
        ("uncertain", "uncertain (4)"),
    ]
    assert '<span id="silent">1 silent track (no mood) not drawn</span>' in dom
    assert _shown(dom) == "7 of 7 tracks shown"
    shot = tmp_path / "shot.png"
    _chromium(out, tmp_path, f"--screenshot={shot}")
    assert _colour_pixels(shot, UNCERTAIN_COLOUR) > 30  # the grey points and their label
