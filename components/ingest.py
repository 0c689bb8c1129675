"""``brighthouse data add``: take newly delivered pairs into the DVC-tracked dataset.

Copies only pairs that pass validation (including "not a near-duplicate of a stored pair"), as ``<id>_src.<ext>`` / ``<id>_tar.<ext>``; never
modifies the inbox; re-adding identical files is a no-op; a pair whose id exists with other
bytes is refused (nothing is written) unless ``replace``. Files are staged outside the
dataset and moved in afterwards, so an interrupted ingest leaves ``data/`` as it was, bar
whole files already moved. Then ``dvc add`` makes the new data version (and ``dvc push``
when a default remote is configured).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from components.config import ValidateConfig
from components.imageio import ImageError, load_rgb
from components.pair_checks import dhash
from components.pairs import Pair, find_pairs
from components.stage import write_json
from components.validate import format_failures, validate_folder, write_reports


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
    moves, states = [], set()
    for role, src in (("src", pair.input), ("tar", pair.target)):
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
        sha = _sha(pair.target)
        if sha not in known:
            try:
                known[sha] = f"{dhash(load_rgb(pair.target, flatten_alpha=True)):016x}"
            except ImageError:
                continue  # a broken stored file is the validate stage's finding, not this one's
        hashes[pair.pair_id] = int(known[sha], 16)
    write_json(cache, known)
    return hashes


def _keep_rejected(report: dict, folder: Path) -> None:
    """Copies of the rejected files beside the report, so they survive a cleaned-up inbox."""
    for failure in report["failures"]:
        for name in (failure["input"], failure["target"]):
            if name and name != "None" and Path(name).is_file():
                (folder / failure["pair_id"]).mkdir(parents=True, exist_ok=True)
                shutil.copy2(name, folder / failure["pair_id"] / Path(name).name)


def ingest(inbox: Path, data_dir: Path, cfg: ValidateConfig, state_dir: Path, replace: bool = False) -> dict:
    """Validate the delivery and copy its good pairs into ``data_dir``; returns the summary.

    Under ``on_failure: fail`` one bad pair refuses the whole delivery; under ``quarantine``
    the bad pairs are left out, listed in the report and copied beside it."""
    incoming = {p.pair_id for p in find_pairs(inbox)}
    known = _known_hashes(data_dir, cfg, incoming, state_dir / "hash-cache.json")
    report = validate_folder(inbox, cfg, known)
    report_dir = state_dir / "ingest-reports" / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    html = write_reports(report, report_dir / "report.json")
    _keep_rejected(report, report_dir / "quarantine")
    if report["failed"] and cfg.on_failure == "fail":
        raise IngestError(f"{report['failed']} pairs failed validation and on_failure is 'fail': nothing was "
                          f"added (report: {html}):\n{format_failures(report)}")
    accepted = set(report["accepted"])
    plans = {p.pair_id: plan_pair(p, data_dir) for p in find_pairs(inbox) if p.pair_id in accepted}
    conflicts = sorted(i for i, (state, _) in plans.items() if state == "conflict")
    if conflicts and not replace:
        raise IngestError(f"{len(conflicts)} pairs already exist with different content: "
                          f"{', '.join(conflicts)} (nothing was added; use --replace to overwrite them)")
    data_dir.mkdir(parents=True, exist_ok=True)
    moves = [m for state, ms in plans.values() if state != "same" for m in ms]
    _install(moves, state_dir / f"ingest-staging-{uuid.uuid4().hex}", data_dir)
    summary = {"inbox": str(inbox), "report": str(html),
               "added": sorted(i for i, (s, _) in plans.items() if s == "new"), "replaced": conflicts,
               "unchanged": sorted(i for i, (s, _) in plans.items() if s == "same"),
               "rejected": report["failures"], "notes": report["notes"]}
    write_json(report_dir / "summary.json", summary)
    return summary


def remove_ingested(inbox: Path, data_dir: Path, summary: dict) -> list[Path]:
    """Delete the inbox files of pairs that are now in the dataset (asked for with --move),
    each only after checking the stored copy has the same bytes; rejected pairs stay."""
    stored = set(summary["added"]) | set(summary["replaced"]) | set(summary["unchanged"])
    removed = []
    for pair in find_pairs(inbox):
        if pair.pair_id not in stored:
            continue
        _, moves = plan_pair(pair, data_dir)
        if all(dest.is_file() and _sha(dest) == _sha(src) for src, dest in moves):
            for src, _ in moves:
                src.unlink()
                removed.append(src)
    return removed


def version_data(data_dir: Path, repo: Path) -> str:
    """``dvc add`` the dataset (and push when a default remote exists); returns its md5."""
    import yaml

    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(dvc + ["add", "-q", str(data_dir)], cwd=repo, check=True)
    remote = subprocess.run(dvc + ["remote", "default"], cwd=repo, capture_output=True, text=True)
    if remote.returncode == 0 and remote.stdout.strip():
        subprocess.run(dvc + ["push", "-q", f"{data_dir}.dvc"], cwd=repo, check=True)
    out = yaml.safe_load((repo / f"{data_dir}.dvc").read_text())["outs"][0]
    return out["md5"]
