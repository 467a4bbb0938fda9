"""The grades as one self-contained HTML page: the class summary first, then one section
per student (a table of functions with their findings, the captured output).

Inline CSS, no scripts, nothing fetched: the page can be mailed or attached.
Every text from a submission (findings quote the student's code, output is
what it printed) is escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from .findings import NOTE_KINDS
from .report import STATUSES, Graded, class_summary, tables_of

__all__ = ["render_html", "write_html", "STATUS_COLORS"]

# status -> (text colour, background): the colours the test looks for in a screenshot
STATUS_COLORS = {
    "correct": ("#0f5323", "#c9f2d3"),
    "wrong": ("#7d1410", "#ffc9c4"),
    "not-implemented": ("#5b4a00", "#fbeaa0"),
    "error": ("#5a1f7a", "#e8d1f7"),
    "timeout": ("#5a1f7a", "#e8d1f7"),
}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
  margin: 18px; max-width: 1150px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 26px 0 6px; border-bottom: 2px solid #d0d7de; padding-bottom: 3px; }
h3 { font-size: 14px; margin: 12px 0 4px; color: #57606a; font-weight: 600; }
.meta { color: #57606a; margin: 2px 0 10px; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #d0d7de; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.st { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  font-size: 12px; white-space: nowrap; }
ul.findings { margin: 0; padding-left: 18px; }
ul.findings li { margin: 1px 0; }
li.note { color: #57606a; }
code { background: #f6f8fa; padding: 0 3px; border-radius: 3px; }
.score { font-size: 15px; font-weight: 700; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; max-height: 240px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(status: str) -> str:
    if status not in STATUS_COLORS:
        return f'<span class="meta">{_e(status)}</span>'
    fg, bg = STATUS_COLORS[status]
    return (f'<span class="st st-{_e(status)}" style="color:{fg};background:{bg}">'
            f"{_e(status)}</span>")


def _summary_html(graded: list[Graded]) -> str:
    s = class_summary(graded)
    parts = [f'<h2 id="summary">Class summary</h2><p class="meta">{s["submissions"]} '
             f'submission(s), mean score {s["mean_score"]:.2f}</p>',
             "<table><tr><th>student</th><th>score</th><th>functions</th>"
             + "".join(f"<th>{_e(st)}</th>" for st in STATUSES) + "</tr>"]
    for k, g in enumerate(graded):
        fns = g.functions()
        counts = {st: sum(f["status"] == st for f in fns) for st in STATUSES}
        parts.append(f'<tr><td><a href="#s{k}">{_e(g.submission.name)}</a></td>'
                     f'<td class="num">{g.score:.2f}</td><td class="num">{len(fns)}</td>'
                     + "".join(f'<td class="num">{counts[st]}</td>' for st in STATUSES)
                     + "</tr>")
    parts.append("</table>")
    if s["functions"]:
        parts.append("<h3>Functions, most often wrong first</h3><table><tr><th>function</th>"
                     + "".join(f"<th>{_badge(st)}</th>" for st in STATUSES) + "</tr>")
        for f in s["functions"]:
            parts.append(f"<tr><td><code>{_e(f['name'])}</code></td>"
                         + "".join(f'<td class="num">{f[st]}</td>' for st in STATUSES)
                         + "</tr>")
        parts.append("</table>")
    if s["common_findings"]:
        parts.append("<h3>Most common findings</h3><table><tr><th>students</th>"
                     "<th>function</th><th>kind</th><th>example</th></tr>")
        for e in s["common_findings"]:
            parts.append(f'<tr><td class="num">{e["students"]}</td>'
                         f"<td><code>{_e(e['function'])}</code></td><td>{_e(e['kind'])}</td>"
                         f"<td>{_e(e['example'])}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts)


def _findings_html(items: list[dict], whole_file: set[str]) -> str:
    lis = []
    for item in items:
        for f in item["findings"]:
            if f["message"] in whole_file:
                continue
            cls = ' class="note"' if f["kind"] in NOTE_KINDS else ""
            lis.append(f"<li{cls}><code>{_e(item['name'])}</code> "
                       f"<b>{_e(f['kind'])}</b>: {_e(f['message'])}</li>")
    return f'<ul class="findings">{"".join(lis)}</ul>' if lis else ""


def _student_html(k: int, g: Graded) -> str:
    fns = g.functions()
    parts = [f'<h2 id="s{k}">{_e(g.submission.name)} <span class="score">'
             f"{g.score:.2f}</span></h2>",
             f'<p class="meta">{g.n_correct} of {len(fns)} functions correct &middot; '
             f"<code>{_e(g.submission.path)}</code> &middot; {g.seconds:.1f} s</p>"]
    whole_file = g.whole_file_messages()
    for p in g.problems():
        parts.append(f"<p><b>{_e(p['kind'])}</b>: {_e(p['message'])}</p>")
    for note in g.notes():
        parts.append(f'<p class="meta">note: {_e(note)}</p>')
    for file, rows in tables_of(fns):
        parts.append(f"<h3>{_e(file)}</h3><table><tr><th>function</th><th>forward</th>"
                     "<th>backward</th><th>findings</th></tr>")
        for row in rows:
            parts.append(f"<tr><td><code>{_e(row['label'])}</code></td>"
                         f"<td>{_badge(row['forward'])}</td><td>{_badge(row['backward'])}</td>"
                         f"<td>{_findings_html(row['items'], whole_file)}</td></tr>")
        parts.append("</table>")
    if g.output.strip():
        parts.append(f"<details><summary>output of the submission</summary>"
                     f"<pre>{_e(g.output)}</pre></details>")
    return "\n".join(parts)


def render_html(graded: list[Graded], title: str = "gradproof grades") -> str:
    """The whole page as a string."""
    body = [f"<h1>{_e(title)}</h1>",
            '<p class="meta">forward: compared with gradproof.nn.functional; backward: '
            "proven with gradproof's gradient checker. Statuses: correct, wrong, "
            "not-implemented, error, timeout.</p>",
            _summary_html(graded)]
    body += [_student_html(k, g) for k, g in enumerate(graded)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def write_html(graded: list[Graded], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(graded), encoding="utf-8")
    return path
