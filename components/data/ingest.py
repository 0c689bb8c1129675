"""``brighthouse data add``: take newly delivered pairs into the DVC-tracked dataset.

Copies only pairs that pass validation (including "not a near-duplicate of a stored pair"),
as ``<id>_src.<ext>`` / ``<id>_tar.<ext>``; never
modifies the inbox; re-adding identical files is a no-op; a pair whose id exists with other
bytes is refused (nothing is written) unless ``replace``. Files are staged outside the
dataset and moved in afterwards, so an interrupted ingest leaves ``data/`` as it was, bar
whole files already moved. Then ``dvc add`` makes the new data version (and ``dvc push``
when a default remote is configured): ``components.data.data_version``, which also serialises
runs and pays a version a killed run still owes.

The inbox is read as a delivery from outside (``components.data.confine``): a pair with an
unsafe id or a file that is not a regular file inside the inbox is refused without reading
it, and only files that passed that check are copied beside the report.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from components.config import ValidateConfig
from components.data.confine import outside, unsafe_id
from components.data.data_version import ingest_lock, owe_version, remove_stale_staging, staging_folder
from components.data.imageio import ImageError, load_rgb
from components.data.pair_checks import dhash
from components.data.pair_suite import format_failures, validate_folder, write_reports
from components.data.pairs import ManifestError, Pair, find_pairs
from components.records import VALIDATION_RECORD, ValidationReport, write_json

log = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """The delivery conflicts with the dataset; the message names the pairs."""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ext(path: Path) -> str:
    ext = path.suffix.lower()
    return ".jpg" if ext == ".jpeg" else ext


def _existing(data_dir: Path, stem: str) -> list[Path]:
    return sorted(p for p in data_dir.glob(f"{stem}.*") if p.is_file())


def plan_pair(pair: Pair, data_dir: Path) -> tuple[str, list[tuple[Path, Path]]]:
    """('new' | 'same' | 'conflict', [(source, destination)]) for one good pair."""
    if unsafe_id(pair.pair_id):  # validation refuses these; this guards the writes themselves
        raise IngestError(unsafe_id(pair.pair_id))
    moves, states = [], set()
    for role, src in zip(("src", "tar"), pair.files(), strict=True):
        dest = data_dir / f"{pair.pair_id}_{role}{_ext(src)}"
        old = _existing(data_dir, dest.stem)
        if not old:
            states.add("new")
        elif old == [dest] and _sha(dest) == _sha(src):
            states.add("same")
        else:
            states.add("conflict")
        moves.append((src, dest))
    state = "conflict" if "conflict" in states else ("same" if states == {"same"} else "new")
    return state, moves


def _install(moves: list[tuple[Path, Path]], staging: Path, data_dir: Path) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    staged = []
    for src, dest in moves:  # copy everything first: the slow, interruptible part
        tmp = staging / dest.name
        shutil.copy2(src, tmp)
        staged.append((tmp, dest))
    for tmp, dest in staged:
        for old in _existing(data_dir, dest.stem):
            if old != dest:
                old.unlink()  # replaced with another extension
        tmp.replace(dest)
    shutil.rmtree(staging, ignore_errors=True)


def _known_hashes(data_dir: Path, cfg: ValidateConfig, skip: set[str], cache: Path) -> dict[str, int]:
    """Target hashes of the pairs already stored, cached by file content: decoding every
    stored photo on each delivery would take minutes at full resolution."""
    known: dict[str, str] = json.loads(cache.read_text()) if cache.is_file() else {}
    hashes = {}
    for pair in find_pairs(data_dir) if data_dir.is_dir() else []:
        if pair.pair_id in skip or not pair.complete:
            continue
        target = pair.files()[1]
        sha = _sha(target)
        if sha not in known:
            try:
                known[sha] = f"{dhash(load_rgb(target, flatten_alpha=True)):016x}"
            except ImageError:
                continue  # a broken stored file is the validate stage's finding, not this one's
        hashes[pair.pair_id] = int(known[sha], 16)
    write_json(cache, known)
    return hashes


def _keep_rejected(report: ValidationReport, inbox: Path, folder: Path) -> None:
    """Copies of the rejected files beside the report, so they survive a cleaned-up inbox:
    only regular files from inside the inbox, never a pair refused unread."""
    for failure in report.failures:
        if failure.unread:
            continue
        for name in (failure.input, failure.target):
            if name and Path(name).is_file() and not outside(inbox, Path(name)):
                (folder / failure.pair_id).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(name, folder / failure.pair_id / Path(name).name)


def ingest(inbox: Path, data_dir: Path, cfg: ValidateConfig, state_dir: Path, replace: bool = False,
           say: Callable[[str], None] = log.warning) -> dict:
    """Validate the delivery and copy its good pairs into ``data_dir``; returns the summary.

    Under ``on_failure: fail`` one bad pair refuses the whole delivery; under ``quarantine``
    the bad pairs are left out, listed in the report and copied beside it. Runs under the
    project's ingest lock, after removing what killed runs left in staging."""
    with ingest_lock(state_dir, say):
        stale = remove_stale_staging(state_dir)
        if stale:
            say(f"removed {len(stale)} staging folders left by an interrupted earlier run: {[p.name for p in stale]}")
        return _ingest(inbox, data_dir, cfg, state_dir, replace)


def _ingest(inbox: Path, data_dir: Path, cfg: ValidateConfig, state_dir: Path, replace: bool) -> dict:
    try:
        incoming = {p.pair_id for p in find_pairs(inbox, confined=True)}
    except (ManifestError, FileNotFoundError) as exc:
        raise IngestError(f"{exc} (nothing was added)") from exc
    known = _known_hashes(data_dir, cfg, incoming, state_dir / "hash-cache.json")
    report = validate_folder(inbox, cfg, known, confined=True)
    report_dir = state_dir / "ingest-reports" / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    html = write_reports(report, report_dir / VALIDATION_RECORD)
    _keep_rejected(report, inbox, report_dir / "quarantine")
    if report.failed and cfg.on_failure == "fail":
        raise IngestError(f"{report.failed} pairs failed validation and on_failure is 'fail': nothing was "
                          f"added (report: {html}):\n{format_failures(report.failures)}")
    accepted = set(report.accepted)
    plans = {p.pair_id: plan_pair(p, data_dir) for p in find_pairs(inbox, confined=True) if p.pair_id in accepted}
    conflicts = sorted(i for i, (state, _) in plans.items() if state == "conflict")
    if conflicts and not replace:
        raise IngestError(f"{len(conflicts)} pairs already exist with different content: "
                          f"{', '.join(conflicts)} (nothing was added; use --replace to overwrite them)")
    moves = [m for state, ms in plans.values() if state != "same" for m in ms]
    if moves:
        data_dir.mkdir(parents=True, exist_ok=True)
        owe_version(state_dir, data_dir)  # from here until dvc add + push finish
        _install(moves, staging_folder(state_dir, uuid.uuid4().hex), data_dir)
    summary = {"inbox": str(inbox), "report": str(html),
               "added": sorted(i for i, (s, _) in plans.items() if s == "new"), "replaced": conflicts,
               "unchanged": sorted(i for i, (s, _) in plans.items() if s == "same"),
               "rejected": [f.model_dump() for f in report.failures], "notes": report.notes}
    write_json(report_dir / "summary.json", summary)
    return summary


def remove_ingested(inbox: Path, data_dir: Path, summary: dict) -> list[Path]:
    """Delete the inbox files of pairs that are now in the dataset (asked for with --move),
    each only after checking the stored copy has the same bytes; rejected pairs stay."""
    stored = set(summary["added"]) | set(summary["replaced"]) | set(summary["unchanged"])
    removed = []
    for pair in find_pairs(inbox, confined=True):
        if pair.pair_id not in stored or pair.refused:
            continue
        _, moves = plan_pair(pair, data_dir)
        if all(dest.is_file() and _sha(dest) == _sha(src) for src, dest in moves):
            for src, _ in moves:
                src.unlink()
                removed.append(src)
    return removed
