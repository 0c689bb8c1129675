"""The evaluation as a page a person reads: verdict, numbers, and the worst images as
input | output | target triptychs, so "failed the gate" comes with a reason you can see."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from components.data.data_report import STYLE, embed_jpeg
from components.inference.tiling import to_uint8

COLUMNS = ("psnr", "ssim", "ciede2000_mean", "ciede2000_p95", "lpips", "blown_highlights", "contrast_error", "cast",
           "baseline_psnr", "baseline_ciede2000_mean", "baseline_contrast_error", "baseline_cast", "identity_psnr",
           "identity_contrast_error", "seconds_per_mp")
OVERALL = ("psnr", "ssim", "ciede2000_mean", "ciede2000_p95", "lpips", "blown_highlights", "contrast_error", "cast",
           "baseline", "baseline_psnr", "baseline_ciede2000_mean", "baseline_blown_highlights",
           "baseline_contrast_error", "baseline_cast", "identity_psnr", "identity_blown_highlights",
           "identity_contrast_error", "identity_cast", "champion_psnr", "psnr_on_champion_pairs", "champion_pairs",
           "served_val_psnr", "tlc_gain_db", "fp16_loss_db", "variant_pairs", "seconds_per_mp")
CHECKS = ("<p>What a retoucher checks, against each target: <b>blown_highlights</b>, the share of pixels "
          "clipped where the target kept detail (clients ask for under 0.001); <b>contrast_error</b>, how far "
          "the luminance spread (L* p95 - p5) is from the target's; <b>cast</b>, the tint (CIELAB) on the "
          "surfaces the retoucher left near-white. <b>baseline</b> is the strongest cheap preset fitted on the "
          "train pairs; <b>identity</b> is the untouched input. <b>tlc_gain_db</b> and <b>fp16_loss_db</b> compare "
          "runtimes of the served weights (the other pooling, the FP16 ONNX) on the first <b>variant_pairs</b> "
          "val pairs (<code>evaluate.variant_pairs</code>).</p>")


def _cell(value: object) -> str:
    if isinstance(value, float):  # shares of pixels are small: keep their significant digits
        return f"{value:.3f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2e}"
    return html.escape(str(value))


def render(result: dict, worst: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> str:
    verdict = "passed" if result["gate_passed"] else "FAILED: " + "; ".join(result["gate_reasons"])
    head = "".join(f"<th>{c}</th>" for c in ("image", *COLUMNS))
    rows = "".join("<tr>" + f"<td>{html.escape(r['image'])}</td>" + "".join(
        f"<td>{_cell(r.get(c, '-'))}</td>" for c in COLUMNS) + "</tr>" for r in result["per_image"])
    overall = "".join(f"<tr><td>{k}</td><td>{_cell(result[k])}</td></tr>" for k in OVERALL if k in result)
    mode = result["inference"]["mode"]
    parts = [f"<!doctype html><meta charset='utf-8'><title>brighthouse evaluation</title><style>{STYLE}</style>",
             f"<h1>Evaluation: gate {html.escape(verdict)}</h1>",
             f"<h2>Overall ({result['images']} val images, full resolution, {html.escape(mode)} as served)</h2>",
             validation_note(result), f"<table>{overall}</table>", CHECKS,
             "<h2>Worst images (input | model output | target)</h2>"]
    for key, lq, out, gt in worst:
        cells = "".join(f"<td>{embed_jpeg(to_uint8(img), 480, f'{key} {role}')}</td>"
                        for role, img in (("input", lq), ("output", out), ("target", gt)))
        parts.append(f"<p><b>{html.escape(key)}</b></p><table><tr>{cells}</tr></table>")
    parts.append(f"<h2>Per image</h2><table><tr>{head}</tr>{rows}</table>")
    return "\n".join(parts) + "\n"


def validation_note(result: dict) -> str:
    """Where the scores come from: a held-out split, or each fold model on the fold it did not see."""
    folds = result.get("folds") or []
    if not folds:
        return "<p>Scored on the held-out val split.</p>"
    cells = "".join(f"<tr><td>fold {f['fold']}</td><td>{f['pairs']}</td><td>{f['psnr']:.2f}</td>"
                    f"<td>{html.escape(f['baseline'])} {f['baseline_psnr']:.2f}</td></tr>" for f in folds)
    return (f"<p>{len(folds)}-fold cross-validation: every pair is scored by the fold model that did not train on "
            f"it, against the preset fitted on the same folds; the {len(folds)} models ship together, averaged. "
            f"<b>served_val_psnr</b> is the shipped ensemble on pairs it trained on: for comparing runtimes, "
            f"not a quality estimate. The champion is compared only on pairs it did not train on "
            f"(<b>champion_pairs</b>).</p><table><tr><th>fold</th><th>pairs</th><th>PSNR</th><th>preset</th></tr>"
            f"{cells}</table>")


def write_report(result: dict, worst: list, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, worst), encoding="utf-8")
    return path
