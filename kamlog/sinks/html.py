"""`kamlog correlate --format html`: one self-contained report to open in a browser.

The file is written as the calls arrive: first the head (inline CSS and JavaScript; a Content
Security Policy forbids any fetch), then one section per call (its header, an SVG ladder with the
log lines at their time, and each message's raw SIP for the panel a click opens), so memory does
not grow with the calls. The call list and the unattributed lines are spooled to temporary files
meanwhile and copied in by `close()`; CSS shows the list first.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from html import escape
from typing import IO, Final

from .. import __version__
from ..correlate.attribution import PROCESS, Placed
from ..correlate.run import Summary
from ..correlate.skew import Skew
from ..correlate.timeline import CallTimeline
from ..levels import LEVELS
from ..sip import SipMessage
from .ladder import clock, endpoints, header, label, stamp

LANE: Final = 168  # px between two endpoints' lines
ROW: Final = 26  # px, the height of a message's arrow
UNATTRIBUTED_SHOWN: Final = 10_000  # more would make the page too slow to be read
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# `kamailio -e`'s SGR colours, as a light terminal theme shows them (GNOME's palette).
_SGR: Final = {"30": "#171421", "31": "#c01c28", "32": "#26a269", "33": "#a2734c", "34": "#12488b",
               "35": "#a347ba", "36": "#2a7bde", "37": "#5e5c64", "39": "inherit"}


def esc(text: str) -> str:
    """Text for HTML content or a quoted attribute; control characters shown as their symbols
    (U+2400...) instead of being dropped by the parser."""
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: chr(0x2421 if m[0] == "\x7f" else 0x2400 + ord(m[0])), text)
    return escape(text, quote=True)


def level_class(number: int | None) -> str:
    return "lvx" if number is None else f"lv{number}"


def level_css() -> str:
    """Each level's colour, and the rules that hide the levels below the chosen one (a
    `data-level` on #report): one style change, however many lines the report has."""
    rules = []
    for lv in LEVELS:
        codes = lv.ansi.split(";")
        colour = next((_SGR[c] for c in codes if c in _SGR), "inherit")
        weight = "bold" if "1" in codes else "normal"
        rules.append(f".{level_class(lv.number)} .lvl{{color:{colour};font-weight:{weight}}}")
    for lv in LEVELS:
        below = [level_class(other.number) for other in LEVELS if other.number > lv.number]
        hidden = ",".join(f".{name}" for name in [*below, "lvx"])
        rules.append(f'#report[data-level="{lv.number}"] .log:is({hidden}){{display:none}}')
    return "\n".join(rules)


_CSS: Final = """
:root{--tw:9.5em;font:13px/1.35 system-ui,sans-serif;color:#1e1e1e;background:#fff}
body{margin:0}
#report{display:flex;flex-direction:column}
#bar{order:-2;position:sticky;top:0;z-index:2;background:#f4f4f4;border-bottom:1px solid #ccc;
 padding:.35em 1em;display:flex;flex-wrap:wrap;gap:.3em 1.5em;align-items:center}
#bar h1{font-size:1.1em;margin:0}
#levels{border:0;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.1em .7em}
#levels label{white-space:nowrap;cursor:pointer}
#list{order:-1;padding:0 1em}
#list table{border-collapse:collapse}
#list th,#list td{text-align:left;padding:.15em .6em;border-bottom:1px solid #e4e4e4;vertical-align:top}
#list td.n{text-align:right}
main,#unattributed{padding:0 1em}
.call,#unattributed{scroll-margin-top:3em;border-top:2px solid #bbb;margin-top:1.2em}
.call h2,#unattributed h2,#list h2{font-size:1.1em;margin:.6em 0 .2em}
.facts{margin:0 0 .5em;color:#444}
code,.t,.text,.line,pre{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
.ladder{position:relative}
.lanes{position:absolute;left:var(--tw);top:0;height:100%;pointer-events:none}
.lanes line{stroke:#9a9a9a;stroke-dasharray:4 3}
.row{display:grid;grid-template-columns:var(--tw) var(--lw) minmax(24em,1fr);align-items:center}
.ends{position:relative}
.ends svg text{font:11px ui-monospace,monospace;fill:#333}
.ends svg rect{fill:#eef;stroke:#889}
.t{color:#555;white-space:nowrap}
.msg{cursor:pointer}
.msg:hover,.msg:focus{background:#f0f4ff;outline:none}
.msg.selected{background:#dde6ff}
.msg svg{display:block}
.msg svg line,.msg svg path{stroke:currentColor;stroke-width:1.4;fill:none}
.msg svg polygon{fill:currentColor}
.msg svg text{fill:currentColor;font:11px system-ui,sans-serif}
.req{color:#1a3f96}.r1{color:#7a7a7a}.r2{color:#1c7a45}.r3{color:#8a5a1c}.r4{color:#b01824}
.line{color:#777;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding-left:.5em}
.row .sip{display:none}
.log .text{white-space:pre-wrap;overflow-wrap:anywhere;padding:.05em .5em;border-left:3px solid transparent}
.log:hover{background:#fafafa}
.proc .text{border-left-color:#c8b8e8}
.mark{color:#7d5fb8;font-weight:bold}
.pid{color:#777}
.log .lvl{display:inline-block;min-width:8ch}
#raw{position:fixed;right:0;top:0;bottom:0;z-index:3;width:min(46em,44vw);overflow:auto;background:#fff;
 border-left:1px solid #999;box-shadow:-4px 0 12px #0002;padding:.5em 1em}
#raw[hidden]{display:none}
#raw-close{float:right;font-size:1.2em;cursor:pointer}
#raw .sip p{margin:.3em 0;color:#444}
#raw pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.5em;border:1px solid #ddd}
.legend{color:#555}
.notes{color:#8a5a1c}
"""

_JS: Final = """
"use strict";
(function () {
  function report() { return document.getElementById("report"); }
  function applyLevel() {
    var chosen = document.querySelector('#levels input[name="level"]:checked');
    if (!chosen) return;
    if (chosen.value === "") delete report().dataset.level; else report().dataset.level = chosen.value;
  }
  function hide() {
    document.getElementById("raw").hidden = true;
    var old = document.querySelector(".msg.selected");
    if (old) old.classList.remove("selected");
  }
  function show(row) {
    var old = document.querySelector(".msg.selected");
    if (old) old.classList.remove("selected");
    row.classList.add("selected");
    document.getElementById("raw-body").replaceChildren(row.querySelector(".sip").cloneNode(true));
    document.getElementById("raw").hidden = false;
  }
  document.addEventListener("click", function (e) {
    if (!(e.target instanceof Element)) return;
    var row = e.target.closest(".msg");
    if (row) show(row);
    else if (e.target.closest("#raw-close")) hide();
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") hide();
    else if (e.key === "Enter" && e.target instanceof Element && e.target.classList.contains("msg")) show(e.target);
  });
  document.addEventListener("change", function (e) {
    if (e.target instanceof Element && e.target.closest("#levels")) applyLevel();
  });
  document.addEventListener("DOMContentLoaded", applyLevel);  // a reload keeps the radio's state
})();
"""

_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def lanes_svg(ends: list[str]) -> str:
    width = LANE * len(ends)
    lines = "".join(f'<line x1="{x}" y1="0" x2="{x}" y2="100%"/>' for x in _xs(len(ends)))
    return f'<svg class="lanes" width="{width}" aria-hidden="true">{lines}</svg>'


def ends_row(ends: list[str]) -> str:
    """The endpoints' names above their lines (IP above port, cut to the lane's width)."""
    parts = []
    for x, end in zip(_xs(len(ends)), ends):
        host, _, port = end.rpartition(":")
        shown = host if len(host) <= 22 else host[:21] + "…"
        parts.append(f'<g><title>{esc(end)}</title><rect x="{x - LANE // 2 + 6}" y="2" width="{LANE - 12}" height="32" rx="3"/>'
                     f'<text x="{x}" y="15" text-anchor="middle">{esc(shown)}</text>'
                     f'<text x="{x}" y="29" text-anchor="middle">{esc(port)}</text></g>')
    return (f'<div class="row ends"><span class="t"></span><svg width="{LANE * len(ends)}" height="38">'
            f'{"".join(parts)}</svg><span></span></div>\n')


def arrow_svg(ends: list[str], msg: SipMessage) -> str:
    """The message as an arrow between its endpoints' lines, its label above it."""
    p = msg.payload
    src_end, dst_end = f"{p.src_ip}:{p.src_port}", f"{p.dst_ip}:{p.dst_port}"
    xs = _xs(len(ends))
    x1, x2 = xs[ends.index(src_end)], xs[ends.index(dst_end)]
    text = label(msg)
    code = msg.status_code
    kind = "req" if code is None else f"r{min(max(code // 100, 1), 4)}"
    y = ROW - 7
    if x1 == x2:
        shape = (f'<path d="M{x1} {y - 8}h26v8h-20"/><polygon points="{x1},{y} {x1 + 7},{y - 4} {x1 + 7},{y + 4}"/>')
        tx, room, anchor = x1 + 30, LANE - 34, "start"
    else:
        head = x2 - 7 if x2 > x1 else x2 + 7
        shape = (f'<line x1="{x1}" y1="{y}" x2="{head}" y2="{y}"/>'
                 f'<polygon points="{x2},{y} {head},{y - 4} {head},{y + 4}"/>')
        tx, room, anchor = (x1 + x2) // 2, abs(x2 - x1) - 16, "middle"
    chars = max(room // 6, 3)
    shown = text if len(text) <= chars else text[: chars - 1] + "…"
    return (f'<svg class="{kind}" width="{LANE * len(ends)}" height="{ROW}"><title>{esc(text)}: {esc(src_end)} → '
            f'{esc(dst_end)}</title>{shape}<text x="{tx}" y="{y - 5}" text-anchor="{anchor}">{esc(shown)}</text></svg>')


def message_row(ends: list[str], msg: SipMessage, at: int) -> str:
    """A message's row; its hidden `.sip` holds what the panel shows when it is clicked."""
    p = msg.payload
    raw = msg.raw.decode("utf-8", "replace")
    start_line = raw.split("\n", 1)[0].rstrip("\r")
    where = (f"{label(msg)} · {stamp(p.ts_ns)} · {p.src_ip}:{p.src_port} → {p.dst_ip}:{p.dst_port} "
             f"{p.transport.upper()} · {p.file} frame {p.frame}")
    return (f'<div class="row msg" tabindex="0"><span class="t">{clock(at)}</span>{arrow_svg(ends, msg)}'
            f'<span class="line">{esc(start_line)}</span>'
            f'<div class="sip"><p>{esc(where)}</p><pre>{esc(raw)}</pre></div></div>\n')


def log_row(placed: Placed, at: int | None) -> str:
    """A log line at its time: the level in its `kamailio -e` colour, marked `~` when it was
    placed by the process that wrote it rather than by a Call-ID it carries."""
    event = placed.event
    number = event.level_no
    level = event.level
    shown = (level or "CRIT") if level is not None else "-"
    pid = event.pid if event.pid is not None else event.process_no
    where = f"{event.module}: " if event.module else ""
    if event.function:
        where += f"{event.function}(): "
    by_process = placed.how == PROCESS
    mark = ('<span class="mark" title="placed by process: the line names no Call-ID; its process wrote it '
            'while handling a message of this call">~</span> ' if by_process else "")
    origin = f"{event.path} byte {event.offset}"
    return (f'<div class="row log {level_class(number)}{" proc" if by_process else ""}">'
            f'<span class="t" title="{esc(origin)}">{clock(at) if at is not None else ""}</span><span></span>'
            f'<span class="text">{mark}<span class="lvl">{esc(shown)}</span> '
            f'<span class="pid">[{pid if pid is not None else "-"}]</span> {esc(where + event.message)}</span></div>\n')


def _xs(count: int) -> list[int]:
    return [i * LANE + LANE // 2 for i in range(count)]


class HtmlWriter:
    """`kamlog correlate --format html` (see the module's docstring); `min_level` leaves out the
    log lines below that level, as the other formats do; the first `shown` unattributed lines are
    listed, the others counted."""

    def __init__(self, stream: IO[bytes], min_level: int | None = None, shown: int = UNATTRIBUTED_SHOWN) -> None:
        self.stream = stream
        self.min_level = min_level
        self.shown = shown
        self.started = False
        self.calls = 0
        self.loose = 0
        self._list: IO[bytes] = tempfile.SpooledTemporaryFile(1 << 20)
        self._loose: IO[bytes] = tempfile.SpooledTemporaryFile(1 << 20)

    def _write(self, text: str, to: IO[bytes] | None = None) -> None:
        (to or self.stream).write(text.encode("utf-8", "replace"))

    def _keep(self, number: int | None) -> bool:
        return self.min_level is None or (number is not None and number <= self.min_level)

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        shown = [lv for lv in LEVELS if self._keep(lv.number)]
        level = "" if self.min_level is None else f' data-level="{self.min_level}"'
        radios = [] if self.min_level is not None else ['<label><input type="radio" name="level" value="" checked> all</label>']
        for lv in reversed(shown):
            checked = " checked" if lv.number == self.min_level else ""
            name = lv.name or "CRIT"
            radios.append(f'<label class="{level_class(lv.number)}"><input type="radio" name="level" value="{lv.number}"'
                          f'{checked}> <span class="lvl">{name}</span></label>')
        self._write(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="kamlog {__version__}">\n'
            '<title>kamlog correlate</title>\n<link rel="icon" href="data:,">\n'
            f"<style>{_CSS}{level_css()}\n</style>\n<script>{_JS}</script>\n</head>\n<body>\n"
            f"<div id=\"report\"{level}>\n"
            '<header id="bar"><h1>kamlog correlate</h1>'
            f'<fieldset id="levels"><legend hidden>Log levels</legend>Log lines: {"".join(radios)}</fieldset>'
            '<span class="legend">click a message for its raw SIP · <span class="mark">~</span> placed by process'
            "</span></header>\n"
            '<aside id="raw" hidden><button id="raw-close" type="button" title="close (Esc)">×</button>'
            '<div id="raw-body"></div></aside>\n<main id="calls">\n'
        )

    def call(self, timeline: CallTimeline) -> None:
        self._start()
        self.calls += 1
        anchor = f"c{self.calls}"
        ends = endpoints(timeline)
        facts = "<br>".join(esc(line.strip()) for line in header(timeline)[1:])
        out = [f'<section class="call" id="{anchor}">\n<h2>Call <code>{esc(timeline.call_id)}</code></h2>\n'
               f'<p class="facts">{facts}</p>\n<div class="ladder" style="--lw:{LANE * len(ends)}px">\n']
        if ends:
            out.append(lanes_svg(ends))
            out.append(ends_row(ends))
        errors = 0
        events = timeline.events()
        for at, _, event in events:
            if isinstance(event, SipMessage):
                out.append(message_row(ends, event, at))
                continue
            number = event.event.level_no
            if not self._keep(number):
                continue
            if number is not None and number < 0:
                errors += 1
            out.append(log_row(event, at if event.ts_ns is not None else None))
        out.append("</div>\n</section>\n")
        self._write("".join(out))
        self._list_row(timeline, anchor, errors, events[0][0] if events else None)

    def _list_row(self, timeline: CallTimeline, anchor: str, errors: int, first_ns: int | None) -> None:
        dialog = timeline.dialog
        if timeline.messages:
            begin = min(d.start_ns for d in timeline.dialogs.values())
            end = max(d.end_ns for d in timeline.dialogs.values())
            when, span, state = stamp(begin), f"{(end - begin) / 1e9:.3f} s", dialog.state_text
        else:
            when, span, state = stamp(first_ns) if first_ns else "", "", "not in the capture"
        legs = f" <small>+{len(timeline.call_ids) - 1} linked</small>" if len(timeline.call_ids) > 1 else ""
        cells = [f'<a href="#{anchor}"><code>{esc(timeline.call_id)}</code></a>{legs}',
                 esc(dialog.from_uri or ""), esc(dialog.to_uri or ""), esc(when), esc(span), esc(state)]
        counts = [len(timeline.messages), len(timeline.logs), errors]
        self._write("<tr>" + "".join(f"<td>{c}</td>" for c in cells)
                    + "".join(f'<td class="n">{n}</td>' for n in counts[:2])
                    + f'<td class="n lv-1"><span class="lvl">{errors or ""}</span></td></tr>\n', self._list)

    def unattributed(self, placed: Placed, skew: Skew) -> None:
        if not self._keep(placed.event.level_no):
            return
        self.loose += 1
        if self.loose <= self.shown:
            at = None if placed.ts_ns is None else placed.ts_ns - skew.offset_ns
            self._write(log_row(placed, at), self._loose)

    def close(self, summary: Summary) -> None:
        self._start()
        self._write("</main>\n")
        if self.loose:
            more = self.loose - self.shown
            self._write('<section id="unattributed">\n'
                        f"<h2>Not placed on any call: {self.loose} log lines</h2>\n"
                        + (f"<p>The first {self.shown} are shown; {more} more are not.</p>\n" if more > 0 else "")
                        + '<div class="ladder" style="--lw:0px">\n')
            self._copy(self._loose)
            self._write("</div>\n</section>\n")
        a = summary.attribution
        text = (f"{summary.shown} of {summary.calls} calls shown; {summary.messages} SIP messages; "
                f"{summary.log_events} log lines: {a.get('call_id', 0)} by Call-ID, {a.get('process', 0)} by process "
                f"(marked ~), {a.get('unattributed', 0)} unattributed; clock skew {summary.skew.text()}")
        notes = "".join(f"<li>{esc(note)}</li>" for note in summary.notes)
        self._write(f'<section id="list">\n<h2>{self.calls} calls</h2>\n<p>{esc(text)}</p>\n'
                    + (f'<ul class="notes">{notes}</ul>\n' if notes else "")
                    + "<table>\n<thead><tr><th>Call-ID</th><th>From</th><th>To</th><th>Start</th><th>Duration</th>"
                    "<th>State</th><th>SIP messages</th><th>Log lines</th><th>Errors</th></tr></thead>\n<tbody>\n")
        self._copy(self._list)
        self._write("</tbody>\n</table>\n</section>\n</div>\n</body>\n</html>\n")
        self.stream.flush()

    def _copy(self, spool: IO[bytes]) -> None:
        spool.seek(0)
        shutil.copyfileobj(spool, self.stream)
        spool.close()
