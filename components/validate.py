"""Stage ``validate``: a great-expectations suite over one row per pair.

Each row holds measured properties (decodes, partner present, sizes); the suite decides,
and every failing pair is reported by id and file with a plain-words reason.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from components.config import ValidateConfig
from components.imageio import ImageError, load_rgb
from components.pair_checks import alignment_score, dhash, near_duplicates
from components.pairs import Pair, find_pairs
from components.stage import StageFailed, run_stage, write_json

log = logging.getLogger(__name__)

# expectation column -> the reason shown to the user when a row fails it
CHECKS = {
    "partner_present": "partner file missing",
    "input_decodes": "input does not decode",
    "target_decodes": "target does not decode",
    "same_size": "input and target differ in size",
    "aspect_ok": "absurd aspect ratio",
    "aligned": "target does not line up with the input (swapped files, a crop or another shot)",
    "unique": "near-duplicate of another pair",
}


@dataclass(frozen=True)
class ValidatePaths:
    data: Path
    report: Path


def _decode(pair: Pair, row: dict, cfg: ValidateConfig) -> dict:
    images = {}
    for role, path in (("input", pair.input), ("target", pair.target)):
        if path is None:
            continue
        try:
            images[role] = load_rgb(path, int(cfg.max_megapixels * 1_000_000))
            row[f"{role}_decodes"] = True
        except ImageError as exc:
            row[f"{role}_decodes"] = False
            row["detail"] += f"{exc}; "
    return images


def _measure(pair: Pair, cfg: ValidateConfig) -> tuple[dict, int | None]:
    """Measured properties of one pair, and its target's hash. A check that cannot be
    measured (no file, no pixels) is None, which the suite skips, so each pair fails only
    on its root cause."""
    row = {"pair_id": pair.pair_id, "input": str(pair.input), "target": str(pair.target),
           "partner_present": pair.input is not None and pair.target is not None,
           "input_decodes": None, "target_decodes": None, "same_size": None, "min_side": None,
           "aspect_ok": None, "aligned": None, "unique": None, "detail": ""}
    images = _decode(pair, row, cfg)
    if len(images) < 2:
        return row, None
    (ih, iw), (th, tw) = images["input"].shape[:2], images["target"].shape[:2]
    row["same_size"] = (ih, iw) == (th, tw)
    row["min_side"] = int(min(ih, iw, th, tw))
    row["aspect_ok"] = max(ih, iw) / min(ih, iw) <= cfg.max_aspect_ratio
    if not row["same_size"]:
        row["detail"] += f"input {(ih, iw)} vs target {(th, tw)}; "
        return row, None
    score = alignment_score(images["input"], images["target"])
    row["aligned"] = None if score is None else score >= cfg.min_alignment
    if row["aligned"] is False:
        row["detail"] += f"alignment {score:.2f} < {cfg.min_alignment}; "
    return row, dhash(images["target"])


def measure_pairs(folder: Path, cfg: ValidateConfig) -> pd.DataFrame:
    measured = {p.pair_id: _measure(p, cfg) for p in find_pairs(folder)}
    if not measured:
        raise StageFailed(f"{folder}: no image pairs found (expected <id>_src/<id>_tar or input/ + target/)")
    hashes = {k: h for k, (_, h) in measured.items() if h is not None}
    dupes = near_duplicates(hashes, cfg.max_hash_distance)
    rows = []
    for pair_id, (row, h) in measured.items():
        if h is not None:
            row["unique"] = pair_id not in dupes
            if pair_id in dupes:
                row["detail"] += f"looks like {dupes[pair_id]}; "
        rows.append(row)
    return pd.DataFrame(rows)


def _suite(cfg: ValidateConfig):
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="pairs")
    for column in CHECKS:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=[True]))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="min_side", min_value=cfg.min_side))
    return suite


def run_suite(df: pd.DataFrame, cfg: ValidateConfig) -> dict[str, list[str]]:
    """Validate the table with great-expectations; return {pair_id: [reasons]} for failures."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("pairs").add_dataframe_asset("pairs")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(_suite(cfg), result_format="COMPLETE")
    failures: dict[str, list[str]] = {}
    for res in result.results:
        column = res.expectation_config.kwargs["column"]
        reason = CHECKS.get(column, f"smaller than {cfg.min_side} px on its short side")
        for idx in res.result.get("unexpected_index_list") or []:
            failures.setdefault(df.loc[idx, "pair_id"], []).append(reason)
    return failures


def validate_folder(folder: Path, cfg: ValidateConfig) -> dict:
    df = measure_pairs(folder, cfg)
    failures = run_suite(df, cfg)
    bad = []
    for _, row in df[df.pair_id.isin(failures)].iterrows():
        bad.append({"pair_id": row.pair_id, "input": row.input, "target": row.target,
                    "reasons": failures[row.pair_id], "detail": row.detail.strip("; ")})
    return {"folder": str(folder), "pairs": len(df), "failed": len(bad), "failures": bad}


def format_failures(report: dict) -> str:
    lines = [f"{f['pair_id']}: {', '.join(f['reasons'])} ({f['input']} | {f['target']})"
             + (f" - {f['detail']}" if f["detail"] else "") for f in report["failures"]]
    return "\n".join(lines)


def run_validate(cfg: ValidateConfig, paths: ValidatePaths) -> dict:
    report = validate_folder(paths.data, cfg)
    write_json(paths.report, report)
    if report["failed"]:
        raise StageFailed(f"{report['failed']} of {report['pairs']} pairs failed validation:\n"
                          + format_failures(report))
    return {"pairs": report["pairs"], "report": str(paths.report)}


def main(argv: list[str] | None = None) -> int:
    return run_stage("validate", ValidatePaths, run_validate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
