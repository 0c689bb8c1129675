"""The review page: one self-contained HTML file (images inline, no network) that puts a
challenger version's edit beside the champion's on every val photo, for the person who moves
the ``champion`` alias. Data from ``components/evaluation/review.py``; versions from the registry."""
from __future__ import annotations

import html
from pathlib import Path

from components.data.data_report import STYLE

PAGE_STYLE = STYLE + """
.cmp{position:relative;display:inline-block;user-select:none}.cmp img{display:block;max-width:100%}
.cmp img.top{position:absolute;top:0;left:0;width:100%;height:100%}
.cmp .tag{position:absolute;top:4px;background:rgba(0,0,0,.6);color:#fff;font-size:12px;padding:0 5px}
.viewer{display:inline-block;max-width:100%}.slider{width:100%}.grid img{max-width:240px}.photo{border-top:1px solid #ccc;margin-top:1.5em}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.row>div{max-width:min(100%,720px)}
.heat{max-width:100%}
.better{color:#070}.worse{color:#b00}td.num{text-align:right}
"""
SLIDER_JS = """
document.querySelectorAll('input.slider').forEach(function (s) {
  var top = document.getElementById(s.dataset.top);
  function show() { top.style.clipPath = 'inset(0 ' + (100 - s.value) + '% 0 0)'; }
  s.addEventListener('input', show); show();
});
"""
LINEAGE = ("started_from", "data_version", "git_commit", "code_modified", "run_id", "stage_train", "stage_evaluate", "gate", "val_psnr",
           "val_ssim")


def _e(value: object) -> str:
    return html.escape(str(value))


def _signed(value: float, higher_is_better: bool, digits: int = 2) -> str:
    good = value > 0 if higher_is_better else value < 0
    cls = "better" if good else "worse" if value else ""
    return f"<td class='num {cls}'>{value:+.{digits}f}</td>"


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def aggregate_table(rows: list[dict]) -> str:
    lines = [("PSNR (dB)", "psnr", True), ("CIEDE2000 mean", "ciede2000", False),
             ("contrast error (L*, vs target)", "contrast_error", False), ("cast on near-white (CIELAB)", "cast", False),
             ("blown highlights (share of pixels)", "blown_highlights", False), ("seconds per photo", "seconds", False)]
    body = "".join(f"<tr><td>{label}</td><td class=num>{_mean(rows, 'challenger_' + k):.3f}</td>"
                   f"<td class=num>{_mean(rows, 'champion_' + k):.3f}</td>"
                   f"{_signed(_mean(rows, 'challenger_' + k) - _mean(rows, 'champion_' + k), up, 3)}</tr>"
                   for label, k, up in lines)
    better = sum(r["challenger_psnr"] > r["champion_psnr"] for r in rows)
    seen = sum(bool(r.get("champion_trained_on")) for r in rows)
    note = (f" The champion trained on {seen} of them (marked *): its scores there flatter it, and the gate "
            "compared the two on the others only." if seen else "")
    return (f"<table><tr><th></th><th>challenger</th><th>champion</th><th>change</th></tr>{body}</table>"
            f"<p>{len(rows)} val photos at full resolution; PSNR better on {better}, worse on {len(rows) - better}."
            f"{note}</p>")


def lineage_table(challenger: dict, champion: dict) -> str:
    rows = [("version", challenger["version"], champion["version"]), ("created", challenger["created"], champion["created"]),
            ("mode", challenger["mode"], champion["mode"])]
    rows += [(k, challenger["tags"].get(k, "-"), champion["tags"].get(k, "-")) for k in LINEAGE]
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(a)}</td><td>{_e(b)}</td></tr>" for k, a, b in rows)
    return f"<table><tr><th></th><th>challenger</th><th>champion</th></tr>{body}</table>"


def params_diff(challenger: dict, champion: dict) -> str:
    a, b = challenger["params"], champion["params"]
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if not keys:
        return "<p>Same params.yaml.</p>"
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(a.get(k, '(absent)'))}</td><td>{_e(b.get(k, '(absent)'))}</td></tr>"
                   for k in keys)
    return f"<table><tr><th>params.yaml key</th><th>challenger</th><th>champion</th></tr>{body}</table>"


def photo_table(rows: list[dict], shown: set[str]) -> str:
    head = ("<tr><th>photo</th><th>difference (CIEDE2000 between the two)</th><th>PSNR challenger</th><th>champion</th>"
            "<th>change</th><th>CIEDE2000 challenger</th><th>champion</th><th>change</th>"
            "<th>contrast error challenger</th><th>champion</th><th>cast challenger</th><th>champion</th></tr>")
    body = "".join(
        "<tr><td>" + (f"<a href='#p-{_e(r['image'])}'>{_e(r['image'])}</a>" if r["image"] in shown else _e(r["image"]))
        + f"</td><td class=num>{r['difference']:.2f}</td><td class=num>{r['challenger_psnr']:.2f}</td>"
        f"<td class=num>{r['champion_psnr']:.2f}{' *' if r.get('champion_trained_on') else ''}</td>{_signed(r['challenger_psnr'] - r['champion_psnr'], True)}"
        f"<td class=num>{r['challenger_ciede2000']:.2f}</td><td class=num>{r['champion_ciede2000']:.2f}</td>"
        f"{_signed(r['challenger_ciede2000'] - r['champion_ciede2000'], False)}"
        + "".join(f"<td class=num>{r[f'{who}_{k}']:.2f}</td>" for k in ("contrast_error", "cast")
                  for who in ("challenger", "champion")) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _compare(uid: str, under: str, over: str, label: str) -> str:
    """The champion underneath, the challenger on top, revealed from the left by the slider."""
    return (f"<div class=viewer><div class=cmp><img src='{under}' alt='champion {label}'>"
            f"<img class=top id='{uid}' src='{over}' alt='challenger {label}'>"
            "<span class=tag style='left:4px'>challenger</span><span class=tag style='right:4px'>champion</span></div>"
            f"<br><input type=range class=slider min=0 max=100 value=50 data-top='{uid}' "
            f"aria-label='challenger / champion {label}'></div>")


def photo_card(i: int, p: dict, heat_max: float) -> str:
    pre, crop = p["previews"], p["crops"]
    top, left, h, w = p["crop_box"]
    grid = "".join(f"<td><b>{role}</b><br><img src='{pre[role]}' alt='{role}'></td>"
                   for role in ("input", "champion", "challenger", "target"))
    crops = "".join(f"<td><b>{role}</b><br><img src='{crop[role]}' alt='{role} crop'></td>" for role in ("input", "target"))
    return (f"<div class=photo id='p-{_e(p['image'])}'><h3>{_e(p['image'])} ({p['width']}x{p['height']}): "
            f"PSNR {p['challenger_psnr']:.2f} vs {p['champion_psnr']:.2f} dB, CIEDE2000 "
            f"{p['challenger_ciede2000']:.2f} vs {p['champion_ciede2000']:.2f}</h3>"
            f"<table class=grid><tr>{grid}</tr></table><div class=row>"
            f"<div><h4>Challenger vs champion (drag)</h4>{_compare(f'prev{i}', pre['champion'], pre['challenger'], 'preview')}</div>"
            f"<div><h4>Where they differ (CIEDE2000 between them; black 0, white {heat_max:g} or more)</h4>"
            f"<img class=heat src='{p['heatmap']}' alt='difference heatmap'></div></div><div class=row>"
            f"<div><h4>Full resolution, {w}x{h} px at ({left}, {top}), where they differ most</h4>"
            f"{_compare(f'crop{i}', crop['champion'], crop['challenger'], 'crop')}</div>"
            f"<div><table class=grid><tr>{crops}</tr></table></div></div></div>")


def render_review(data: dict, challenger: dict, champion: dict, name: str) -> str:
    """The page for ``challenger`` vs ``champion`` (dicts from ``registry.version_info``)."""
    rows, photos = data["rows"], data["photos"]
    gate = challenger["tags"].get("gate", "unknown")
    title = f"{name}: version {challenger['version']} (challenger) vs version {champion['version']} (champion)"
    parts = [f"<!doctype html><html lang=en><meta charset='utf-8'><title>{_e(title)}</title><style>{PAGE_STYLE}</style>",
             f"<h1>{_e(title)}</h1>",
             f"<p>Evaluation gate for version {_e(challenger['version'])}: <b>{_e(gate)}</b>. "
             "Promote by moving the <code>champion</code> alias (MLflow UI, or <code>brighthouse promote</code>).</p>",
             "<h2>Over the val split</h2>", aggregate_table(rows),
             "<h2>Lineage</h2>", lineage_table(challenger, champion), "<h2>Params that differ</h2>",
             params_diff(challenger, champion),
             "<h2>Every val photo, most changed first</h2>", photo_table(rows, {p["image"] for p in photos}),
             f"<h2>The {len(photos)} photos the challenger changed most</h2>"]
    parts += [photo_card(i, p, data["heat_max_de"]) for i, p in enumerate(photos)]
    parts.append(f"<script>{SLIDER_JS}</script></html>")
    return "\n".join(parts) + "\n"


def write_review_page(data: dict, challenger: dict, champion: dict, name: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_review(data, challenger, champion, name), encoding="utf-8")
    return path
