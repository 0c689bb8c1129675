"""A validation report a person can read: one self-contained HTML file.

Failing pairs are shown as input/target thumbnails with their reasons, converted pairs with
their notes. Thumbnails are embedded (base64 JPEG), so the file can be mailed, attached to
an MLflow run or opened from a DVC cache without the images beside it.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PIL import Image

from components.data.imageio import ImageError, jpeg_data_uri, read_image
from components.records import ValidationReport

THUMB = 192  # px, long side

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:6px;vertical-align:top;text-align:left}
img{display:block}.missing{color:#a00;font-style:italic}"""


def embed_jpeg(rgb: np.ndarray, max_side: int = THUMB, alt: str = "") -> str:
    """An <img> tag holding ``rgb`` (uint8 HxWx3) scaled to ``max_side``, inline as base64 JPEG."""
    img = Image.fromarray(rgb)
    img.thumbnail((max_side, max_side))
    return f'<img alt="{html.escape(alt)}" src="{jpeg_data_uri(np.asarray(img))}">'


def thumbnail(path: str | None) -> str:
    """An <img> tag for the file, or a plain-words placeholder when it has no pixels."""
    if not path or not Path(path).is_file():
        return '<span class="missing">missing</span>'
    try:
        rgb = read_image(path, flatten_alpha=True).rgb
    except ImageError as exc:
        return f'<span class="missing">{html.escape(str(exc).split(": ", 1)[-1])}</span>'
    return embed_jpeg(rgb, THUMB, Path(path).name)


def _failure_rows(report: ValidationReport) -> str:
    rows = []
    for f in report.failures:
        reasons = "<br>".join(html.escape(r) for r in f.reasons)
        files = f"{html.escape(f.input or 'no input')}<br>{html.escape(f.target or 'no target')}"
        pictures = ('<td colspan="2"><span class="missing">refused unread</span></td>' if f.unread
                    else f"<td>{thumbnail(f.input)}</td><td>{thumbnail(f.target)}</td>")
        rows.append(f"<tr><td><b>{html.escape(f.pair_id)}</b><br><small>{files}</small></td>{pictures}"
                    f"<td>{reasons}<br><small>{html.escape(f.detail)}</small></td></tr>")
    return "".join(rows)


def render_html(report: ValidationReport) -> str:
    policy = report.policy
    action = {"quarantine": "left out of this data version (files kept)",
              "fail": "stop the pipeline"}.get(policy.on_failure, "")
    parts = [f"<!doctype html><meta charset='utf-8'><title>brighthouse validation</title><style>{STYLE}</style>",
             f"<h1>Validation of {html.escape(report.folder)}</h1>",
             f"<p>{report.pairs} pairs, {report.failed} failed"
             + (f": {action}" if report.failed and action else "") + ". "
             + f"Policy: modes <code>{policy.modes}</code>, "
             f"on failure <code>{policy.on_failure}</code>.</p>"]
    if report.failures:
        parts.append("<h2>Failing pairs</h2><table><tr><th>pair</th><th>input</th><th>target</th><th>why</th></tr>"
                     + _failure_rows(report) + "</table>")
    if report.notes:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{'<br>'.join(html.escape(n) for n in v)}</td></tr>"
                       for k, v in sorted(report.notes.items()))
        parts.append(f"<h2>Converted or noted</h2><table><tr><th>pair</th><th>note</th></tr>{rows}</table>")
    return "\n".join(parts) + "\n"


def write_html_report(report: ValidationReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(path)
    return path
