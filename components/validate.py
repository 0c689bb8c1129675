"""Stage ``validate``: the pair suite (``components.data.pair_suite``) over the dataset.

Every failing pair is reported by id and file with a plain-words reason. With
``on_failure: quarantine`` failing pairs are left out of ``accepted`` (what the ``lmdb``
stage reads) and listed in the report, their files untouched; with ``fail`` the stage stops.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from components.config import ValidateConfig
from components.data.pair_suite import format_failures, validate_folder, write_reports
from components.errors import StageFailed
from components.stage import run_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidatePaths:
    data: Path
    report: Path


def run_validate(cfg: ValidateConfig, paths: ValidatePaths) -> dict:
    report = validate_folder(paths.data, cfg)
    html = write_reports(report, paths.report)
    summary = f"{report.failed} of {report.pairs} pairs failed validation (report: {html})"
    if report.failed and (cfg.on_failure == "fail" or not report.accepted):
        raise StageFailed(f"{summary}:\n{format_failures(report.failures)}")
    if report.failed:
        log.warning("%s; quarantined (left out of training, files kept):\n%s", summary,
                    format_failures(report.failures))
    return {"pairs": report.pairs, "accepted": len(report.accepted),
            "quarantined": report.failed, "report": str(paths.report)}


def main(argv: list[str] | None = None) -> int:
    return run_stage("validate", ValidatePaths, run_validate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
