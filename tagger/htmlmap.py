"""The library as one interactive HTML page: every track a point on the valence-arousal plane.

No extra is needed and the page needs no network: one file, its script and styles inline, the
tracks embedded as JSON (`<script type="application/json" id="mertag-data">`). It draws on a
canvas, so 10,000 points stay quick; hovering a point shows its title, artist, album and mood,
clicking copies its path; the quadrants can be switched off and a search box keeps the tracks
whose title, artist, album or path hold every word typed. Wheel to zoom, drag to pan,
double-click to reset. A link ending in `#q=WORDS` opens with WORDS searched.

Tracks are grouped as lists and playlists have them (`libmap.map_group`): an uncertain track is
a grey point with a switch of its own, counted in no quadrant; silent tracks, which have no
point, are counted beside the switches.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from mertag.tagger.export import printable
from mertag.tagger.index import IndexRow
from mertag.tagger.libmap import (
    COLOURS,
    SHADES,
    UNCERTAIN,
    UNCERTAIN_COLOUR,
    map_group,
    silent_note,
)
from mertag.tagger.mood import DEFAULT_MOODS, QUADRANTS, mood_shown
from mertag.tagger.output_files import HTML_MARK, check_replaceable
from mertag.tagger.playlist import write_text_atomic
from mertag.tagger.trackinfo import track_info

FIELDS = (
    "valence",
    "arousal",
    "quadrant",
    "confidence",
    "title",
    "artist",
    "album",
    "path",
    "mood",
    "group",
)
"""The columns of each track in the embedded JSON, in order."""


def map_data(
    rows: Iterable[IndexRow], *, moods: Mapping[str, str] | None = None, title: str | None = None
) -> dict[str, object]:
    """What the page shows: the analysed rows as lists in FIELDS order, with the mood words and
    colours of the quadrants."""
    tracks: list[list[object]] = []
    silent = 0
    for r in rows:
        group = map_group(r)
        silent += r.status == "silent"
        if group is None or r.valence is None or r.arousal is None:
            continue
        info = track_info(r)
        tracks.append(
            [
                round(r.valence, 4),
                round(r.arousal, 4),
                r.quadrant,
                None if r.confidence is None else round(r.confidence, 4),
                printable(info.title),
                None if info.artist is None else printable(info.artist),
                None if info.album is None else printable(info.album),
                printable(r.path),
                mood_shown(r.mood, r.quadrant, r.uncertain),
                group,
            ]
        )
    words = {**DEFAULT_MOODS, **(moods or {})}
    return {
        "title": title or "mertag library map",
        "fields": list(FIELDS),
        "quadrants": [
            {"id": q, "word": words[q], "colour": COLOURS[q], "shade": SHADES[q]} for q in QUADRANTS
        ],
        "uncertain": {"id": UNCERTAIN, "word": UNCERTAIN, "colour": UNCERTAIN_COLOUR},
        "silent": silent_note(silent),
        "tracks": tracks,
    }


def _script_json(data: object) -> str:
    """JSON that cannot end its <script> element early, whatever the file names hold."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(data: Mapping[str, object]) -> str:
    """The page for `map_data`'s result."""
    title = html.escape(str(data["title"]))
    return (
        _PAGE.replace("@TITLE@", title)
        .replace("@GENERATOR@", HTML_MARK)
        .replace("@STYLE@", _STYLE)
        .replace("@SCRIPT@", _SCRIPT)
        .replace("@DATA@", _script_json(data))
    )


def write_html_map(
    rows: Iterable[IndexRow],
    out: Path,
    *,
    moods: Mapping[str, str] | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> int:
    """Write the page to `out` (atomically) and return how many tracks it shows. A file at
    `out` that mertag did not write raises OutputExists, unless `overwrite`."""
    check_replaceable(out, overwrite)
    data = map_data(rows, moods=moods, title=title)
    write_text_atomic(out, render_html(data))
    return len(data["tracks"])  # type: ignore[arg-type]


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
@GENERATOR@
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>@TITLE@</title>
<style>@STYLE@</style>
</head>
<body>
<header>
<h1>@TITLE@</h1>
<div id="controls">
<input id="search" type="search" placeholder="search title, artist, album, path"
 aria-label="search" autocomplete="off">
<span id="quadrants"></span>
<span id="silent"></span>
<output id="shown" aria-live="polite"></output>
</div>
</header>
<main>
<canvas id="plane" aria-label="tracks on the valence-arousal plane"></canvas>
<aside id="found"></aside>
</main>
<div id="tip" hidden></div>
<footer><span id="status">hover a point for its track, click to copy its path;
 wheel to zoom, drag to pan, double-click to reset</span></footer>
<script type="application/json" id="mertag-data">@DATA@</script>
<script>@SCRIPT@</script>
</body>
</html>
"""

_STYLE = """
:root { color-scheme: light; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; display: flex; flex-direction: column; height: 100vh; color: #222; }
header { padding: 8px 14px; border-bottom: 1px solid #ddd; }
h1 { font-size: 17px; margin: 0 0 6px; }
#controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
#search { flex: 1 1 260px; max-width: 420px; padding: 4px 8px; font: inherit; }
#quadrants label { margin-right: 8px; white-space: nowrap; cursor: pointer; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  margin: 0 4px 0 2px; vertical-align: baseline; }
#shown, #silent { color: #555; }
main { flex: 1; display: flex; min-height: 0; }
canvas { flex: 1; min-width: 0; cursor: crosshair; touch-action: none; }
#found { width: 0; overflow: auto; font-size: 12px; border-left: 1px solid #ddd; }
#found.open { width: 300px; }
#found div { padding: 3px 8px; cursor: pointer; border-bottom: 1px solid #f0f0f0; }
#found div:hover { background: #f3f3f3; }
#tip { position: fixed; pointer-events: none; background: #fff; border: 1px solid #bbb;
  border-radius: 4px; padding: 6px 8px; max-width: 420px; font-size: 12px;
  box-shadow: 0 2px 6px rgba(0,0,0,.15); }
#tip b { font-size: 13px; }
#tip .path { color: #666; word-break: break-all; }
footer { padding: 4px 14px; font-size: 12px; color: #666; border-top: 1px solid #ddd; }
"""

_SCRIPT = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("mertag-data").textContent);
const F = Object.fromEntries(DATA.fields.map((f, i) => [f, i]));
const TRACKS = DATA.tracks;
const QS = DATA.quadrants;
// The switches: the four quadrants, then the uncertain tracks (in no quadrant) if there are any.
const GROUPS = [...QS, DATA.uncertain].filter(
  g => g !== DATA.uncertain || TRACKS.some(t => t[F.group] === g.id));
const COLOUR = Object.fromEntries(GROUPS.map(g => [g.id, g.colour]));
const fold = s => (s || "").normalize("NFC").toLowerCase();
const HAY = TRACKS.map(t => fold([t[F.title], t[F.artist], t[F.album], t[F.path]].join("\n")));
const canvas = document.getElementById("plane");
const ctx = canvas.getContext("2d");
const tip = document.getElementById("tip");
const shownOut = document.getElementById("shown");
const found = document.getElementById("found");
const status = document.getElementById("status");
const on = Object.fromEntries(GROUPS.map(g => [g.id, true]));
let words = [];
let visible = [];   // indices of the tracks drawn
let matches = null; // indices matching the search, or null when there is none
let view = {zoom: 1, cx: 0, cy: 0};
let hover = -1;
let size = {w: 0, h: 0, dpr: 1};
const LIM = 1.12;
const LABELS_UP_TO = 40;

for (const g of GROUPS) {
  const n = TRACKS.filter(t => t[F.group] === g.id).length;
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox"; box.checked = true; box.dataset.q = g.id;
  box.addEventListener("change", () => { on[g.id] = box.checked; update(); });
  const sw = document.createElement("span");
  sw.className = "swatch"; sw.style.background = g.colour;
  const name = g.id === g.word ? g.word : `${g.id} ${g.word}`;
  label.append(box, sw, document.createTextNode(`${name} (${n})`));
  document.getElementById("quadrants").append(label);
}
document.getElementById("silent").textContent = DATA.silent;

function scale() { return Math.min(size.w, size.h) / (2 * LIM) * view.zoom; }
function toScreen(v, a) {
  const s = scale();
  return [size.w / 2 + (v - view.cx) * s, size.h / 2 - (a - view.cy) * s];
}
function toPlane(x, y) {
  const s = scale();
  return [(x - size.w / 2) / s + view.cx, -(y - size.h / 2) / s + view.cy];
}

function update() {
  const text = fold(document.getElementById("search").value.trim());
  words = text ? text.split(/\s+/) : [];
  visible = [];
  matches = words.length ? [] : null;
  for (let i = 0; i < TRACKS.length; i++) {
    if (!on[TRACKS[i][F.group]]) continue;
    visible.push(i);
    if (matches && words.every(w => HAY[i].includes(w))) matches.push(i);
  }
  const n = matches ? matches.length : visible.length;
  shownOut.textContent = `${n} of ${TRACKS.length} track${TRACKS.length === 1 ? "" : "s"} shown`;
  shownOut.dataset.shown = String(n);
  listMatches();
  draw();
}

function listMatches() {
  found.replaceChildren();
  found.classList.toggle("open", matches !== null);
  if (!matches) return;
  for (const i of matches.slice(0, 300)) {
    const row = document.createElement("div");
    row.textContent = label(TRACKS[i]);
    row.title = TRACKS[i][F.path];
    row.addEventListener("mouseenter", () => { hover = i; draw(); });
    row.addEventListener("click", () => copy(i));
    found.append(row);
  }
  if (matches.length > 300) {
    const more = document.createElement("div");
    more.textContent = `... and ${matches.length - 300} more`;
    found.append(more);
  }
}

function label(t) {
  return t[F.artist] ? `${t[F.artist]} - ${t[F.title]}` : t[F.title];
}

function resize() {
  const r = canvas.getBoundingClientRect();
  size = {w: r.width, h: r.height, dpr: window.devicePixelRatio || 1};
  canvas.width = Math.round(r.width * size.dpr);
  canvas.height = Math.round(r.height * size.dpr);
  draw();
}

function draw() {
  ctx.setTransform(size.dpr, 0, 0, size.dpr, 0, 0);
  ctx.clearRect(0, 0, size.w, size.h);
  const [x0, y0] = toScreen(0, 0);
  for (const q of QS) {
    const sx = q.id === "Q1" || q.id === "Q4" ? 1 : -1;
    const sy = q.id === "Q1" || q.id === "Q2" ? 1 : -1;
    const [x1, y1] = toScreen(sx * LIM * 4, sy * LIM * 4);
    ctx.fillStyle = q.shade;
    ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
  }
  ctx.strokeStyle = "#888"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(0, y0); ctx.lineTo(size.w, y0);
  ctx.moveTo(x0, 0); ctx.lineTo(x0, size.h); ctx.stroke();
  const [bx0, by0] = toScreen(-1, 1), [bx1, by1] = toScreen(1, -1);
  ctx.setLineDash([4, 3]); ctx.strokeStyle = "#aaa";
  ctx.strokeRect(bx0, by0, bx1 - bx0, by1 - by0); ctx.setLineDash([]);
  ctx.fillStyle = "#555"; ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "right"; ctx.fillText("valence \u2192", size.w - 8, y0 - 6);
  ctx.textAlign = "left"; ctx.fillText("\u2191 arousal", x0 + 6, 14);
  const many = TRACKS.length > 2000;
  const base = many ? 2 : TRACKS.length > 200 ? 3.5 : 5;
  const r = base * Math.max(1, Math.sqrt(view.zoom) * 0.8);
  const dim = matches !== null;
  const drawSet = (idx, colourOf, alpha, radius) => {
    ctx.globalAlpha = alpha;
    const byColour = new Map();
    for (const i of idx) {
      const c = colourOf(TRACKS[i]);
      if (!byColour.has(c)) byColour.set(c, []);
      byColour.get(c).push(i);
    }
    for (const [c, list] of byColour) {
      ctx.fillStyle = c;
      ctx.beginPath();
      for (const i of list) {
        const [x, y] = toScreen(TRACKS[i][F.valence], TRACKS[i][F.arousal]);
        ctx.moveTo(x + radius, y);
        ctx.arc(x, y, radius, 0, 2 * Math.PI);
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  };
  if (dim) {
    drawSet(visible, () => "#9a9a9a", many ? 0.15 : 0.3, r);
    drawSet(matches, t => COLOUR[t[F.group]], 0.95, r * 1.4);
  } else {
    drawSet(visible, t => COLOUR[t[F.group]], many ? 0.5 : 0.85, r);
  }
  ctx.font = "bold 13px system-ui, sans-serif";
  for (const q of QS) {
    const sx = q.id === "Q1" || q.id === "Q4" ? 1 : -1;
    const sy = q.id === "Q1" || q.id === "Q2" ? 1 : -1;
    const [lx, ly] = toScreen(sx * (LIM - 0.03), sy * (LIM - 0.03));
    const n = visible.filter(i => TRACKS[i][F.group] === q.id).length;
    ctx.fillStyle = q.colour;
    ctx.textAlign = sx > 0 ? "right" : "left";
    ctx.textBaseline = sy > 0 ? "top" : "bottom";
    ctx.fillText(`${q.id} ${q.word} \u00b7 ${n}`, lx, ly);
  }
  if (DATA.uncertain.id in COLOUR) {  // below the plane, between Q3's and Q4's labels
    const u = DATA.uncertain;
    const [lx, ly] = toScreen(0, -(LIM - 0.03));
    const n = visible.filter(i => TRACKS[i][F.group] === u.id).length;
    ctx.fillStyle = u.colour; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(`${u.word} \u00b7 ${n}`, lx, ly);
  }
  ctx.textBaseline = "alphabetic";
  // Names beside the points once few are in sight: a small library, or zoomed in on a big one.
  const inView = (matches || visible).filter(i => {
    const [x, y] = toScreen(TRACKS[i][F.valence], TRACKS[i][F.arousal]);
    return x >= 0 && y >= 0 && x <= size.w && y <= size.h;
  });
  if (inView.length <= LABELS_UP_TO) {
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#333"; ctx.textAlign = "left";
    for (const i of inView) {
      const [x, y] = toScreen(TRACKS[i][F.valence], TRACKS[i][F.arousal]);
      ctx.fillText(TRACKS[i][F.title], x + r + 3, y + 4);
    }
  }
  if (hover >= 0) {
    const [x, y] = toScreen(TRACKS[hover][F.valence], TRACKS[hover][F.arousal]);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(x, y, r * 2 + 2, 0, 2 * Math.PI); ctx.stroke();
  }
}

function nearest(mx, my) {
  let best = -1, bestD = 64;  // within 8 CSS pixels
  for (const i of (matches || visible)) {
    const [x, y] = toScreen(TRACKS[i][F.valence], TRACKS[i][F.arousal]);
    const d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}

function showTip(i, cx, cy) {
  if (i < 0) { tip.hidden = true; return; }
  const t = TRACKS[i];
  tip.replaceChildren();
  const b = document.createElement("b"); b.textContent = t[F.title];
  tip.append(b);
  const who = [t[F.artist], t[F.album]].filter(Boolean).join(" \u2014 ");
  if (who) { tip.append(document.createElement("br"), document.createTextNode(who)); }
  const sign = x => (x >= 0 ? "+" : "") + x.toFixed(2);
  const conf = t[F.confidence] === null ? "" : `, confidence ${t[F.confidence].toFixed(2)}`;
  tip.append(document.createElement("br"), document.createTextNode(
    `${t[F.mood]}: valence ${sign(t[F.valence])}, ` +
    `arousal ${sign(t[F.arousal])}${conf}`));
  const p = document.createElement("div"); p.className = "path"; p.textContent = t[F.path];
  tip.append(p);
  tip.hidden = false;
  const w = tip.offsetWidth, h = tip.offsetHeight;
  tip.style.left = Math.min(cx + 14, window.innerWidth - w - 4) + "px";
  tip.style.top = Math.min(cy + 14, window.innerHeight - h - 4) + "px";
}

function legacyCopy(text) {
  const area = document.createElement("textarea");
  area.value = text; document.body.append(area); area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  area.remove();
  return ok;
}

function copy(i) {
  // The path is shown at once (to select by hand if no clipboard is allowed), then copied.
  const path = TRACKS[i][F.path];
  status.textContent = `path: ${path}`;
  const done = () => { status.textContent = `copied: ${path}`; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(path).then(done, () => { if (legacyCopy(path)) done(); });
  } else if (legacyCopy(path)) {
    done();
  }
}

let drag = null;
canvas.addEventListener("pointerdown", e => {
  drag = {x: e.offsetX, y: e.offsetY, cx: view.cx, cy: view.cy, moved: false};
});
canvas.addEventListener("pointermove", e => {
  if (drag && (Math.abs(e.offsetX - drag.x) + Math.abs(e.offsetY - drag.y) > 3)) {
    drag.moved = true;
    const s = scale();
    view.cx = drag.cx - (e.offsetX - drag.x) / s;
    view.cy = drag.cy + (e.offsetY - drag.y) / s;
    tip.hidden = true; draw(); return;
  }
  const i = nearest(e.offsetX, e.offsetY);
  if (i !== hover) { hover = i; draw(); }
  showTip(i, e.clientX, e.clientY);
  canvas.style.cursor = i >= 0 ? "pointer" : "crosshair";
});
canvas.addEventListener("pointerup", e => {
  const click = drag && !drag.moved;
  drag = null;
  if (click) { const i = nearest(e.offsetX, e.offsetY); if (i >= 0) copy(i); }
});
canvas.addEventListener("pointerleave", () => { drag = null; tip.hidden = true; });
canvas.addEventListener("wheel", e => {
  e.preventDefault();
  const [v, a] = toPlane(e.offsetX, e.offsetY);
  view.zoom = Math.min(60, Math.max(1, view.zoom * Math.exp(-e.deltaY * 0.0015)));
  const [v2, a2] = toPlane(e.offsetX, e.offsetY);
  view.cx += v - v2; view.cy += a - a2;
  if (view.zoom === 1) { view.cx = 0; view.cy = 0; }
  draw();
}, {passive: false});
canvas.addEventListener("dblclick", () => { view = {zoom: 1, cx: 0, cy: 0}; draw(); });
const search = document.getElementById("search");
if (location.hash.startsWith("#q=")) search.value = decodeURIComponent(location.hash.slice(3));
search.addEventListener("input", update);
window.addEventListener("resize", resize);
update();
resize();
"""
