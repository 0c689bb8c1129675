"""The great-expectations suite over one row per pair (``components.data.pair_table`` measures
the rows): which pairs pass, why the others fail, and the reports. Used by the ``validate``
stage, ``brighthouse data validate`` and ``data add``."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from components.config import ValidateConfig
from components.data.data_report import write_html_report
from components.data.pair_table import measure_pairs
from components.data.pairs import ManifestError, find_pairs
from components.errors import StageFailed
from components.records import PairFailure, ValidationPolicy, ValidationReport, write_record

if TYPE_CHECKING:
    import great_expectations as gx

# expectation column -> the reason shown to the user when a row fails it
CHECKS = {
    "safe": "refused unread: an unsafe pair id, or a file that is not a regular file inside the delivery",
    "partner_present": "partner file missing",
    "input_decodes": "input does not decode",
    "target_decodes": "target does not decode",
    "modes_ok": "not plain 8-bit RGB, and the policy is to reject (modes: reject)",
    "orientation_ok": "EXIF orientation differs between input and target",
    "same_size": "input and target differ in size",
    "aspect_ok": "absurd aspect ratio",
    "aligned": "target does not line up with the input (swapped files, a crop or another shot)",
    "unique": "near-duplicate of another pair",
}


def _suite(cfg: ValidateConfig) -> gx.ExpectationSuite:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="pairs")
    for column in CHECKS:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=[True]))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="min_side", min_value=cfg.min_side))
    return suite


def run_suite(df: pd.DataFrame, cfg: ValidateConfig) -> dict[str, list[str]]:
    """Validate the table with great-expectations; return {pair_id: [reasons]} for failures."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("pairs").add_dataframe_asset("pairs")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(_suite(cfg), result_format="COMPLETE")
    failures: dict[str, list[str]] = {}
    for res in result.results:
        if res.expectation_config is None:
            raise RuntimeError("great-expectations returned a result without its expectation")
        column = res.expectation_config.kwargs["column"]
        reason = CHECKS.get(column, f"smaller than {cfg.min_side} px on its short side")
        for idx in res.result.get("unexpected_index_list") or []:
            failures.setdefault(df.loc[idx, "pair_id"], []).append(reason)
    return failures


def validate_folder(folder: Path, cfg: ValidateConfig, known: dict[str, int] | None = None,
                    confined: bool = False) -> ValidationReport:
    """The validation report for every pair in ``folder``; ``known`` are target hashes of
    pairs already in the dataset, so a re-delivered photo under a new id is caught.
    ``confined`` for a delivery from outside: see ``components.data.confine``."""
    try:
        pairs = find_pairs(folder, confined)
    except (ManifestError, FileNotFoundError) as exc:
        raise StageFailed(str(exc)) from exc
    if not pairs:
        raise StageFailed(f"{folder}: no image pairs found (expected <id>_src/<id>_tar or input/ + target/)")
    df, hashes = measure_pairs(pairs, cfg, known)
    failures = run_suite(df, cfg)
    bad = [PairFailure(pair_id=str(row.pair_id), input=_text(row.input), target=_text(row.target),
                       unread=not bool(row.safe), reasons=failures[row.pair_id], detail="; ".join(row.detail))
           for row in df[df.pair_id.isin(failures)].itertuples()]
    policy = ValidationPolicy(modes=cfg.modes, on_failure=cfg.on_failure, max_megapixels=cfg.max_megapixels)
    return ValidationReport(folder=str(folder), policy=policy, pairs=len(df), failed=len(bad), failures=bad,
                            accepted=sorted(set(df.pair_id) - set(failures)),
                            notes={str(row.pair_id): list(row.notes) for row in df.itertuples() if row.notes},
                            hashes={k: f"{h:016x}" for k, h in sorted(hashes.items())})


def _text(cell: object) -> str | None:
    """A table cell that holds a path, or None where the pair has no such file (pandas: NaN)."""
    return cell if isinstance(cell, str) else None


def format_failures(failures: list[PairFailure]) -> str:
    lines = [f"{f.pair_id}: {', '.join(f.reasons)} ({f.input or 'no input'} | {f.target or 'no target'})"
             + (f" - {f.detail}" if f.detail else "") for f in failures]
    return "\n".join(lines)


def write_reports(report: ValidationReport, json_path: Path) -> Path:
    """The JSON report and, beside it, the same as HTML with thumbnails of failing pairs."""
    write_record(json_path, report)
    return write_html_report(report, json_path.with_suffix(".html"))
