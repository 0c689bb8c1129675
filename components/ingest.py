"""``brighthouse data add``: take newly delivered pairs into the DVC-tracked dataset.

Copies only pairs that pass validation, as ``<id>_src.<ext>`` / ``<id>_tar.<ext>``; never
modifies the inbox; re-adding identical files is a no-op; a pair whose id exists with other
bytes is refused (nothing is written) unless ``replace``. Files are staged outside the
dataset and moved in afterwards, so an interrupted ingest leaves ``data/`` as it was, bar
whole files already moved. Then ``dvc add`` makes the new data version (and ``dvc push``
when a default remote is configured).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from components.config import ValidateConfig
from components.pairs import Pair, find_pairs
from components.stage import write_json
from components.validate import validate_folder


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


def ingest(inbox: Path, data_dir: Path, cfg: ValidateConfig, state_dir: Path, replace: bool = False) -> dict:
    """Validate the delivery and copy its good pairs into ``data_dir``; returns the report."""
    report = validate_folder(inbox, cfg)
    bad = {f["pair_id"] for f in report["failures"]}
    plans = {p.pair_id: plan_pair(p, data_dir) for p in find_pairs(inbox) if p.pair_id not in bad}
    conflicts = sorted(i for i, (state, _) in plans.items() if state == "conflict")
    if conflicts and not replace:
        raise IngestError(f"{len(conflicts)} pairs already exist with different content: "
                          f"{', '.join(conflicts)} (nothing was added; use --replace to overwrite them)")
    data_dir.mkdir(parents=True, exist_ok=True)
    moves = [m for state, ms in plans.values() if state != "same" for m in ms]
    _install(moves, state_dir / f"ingest-staging-{uuid.uuid4().hex}", data_dir)
    summary = {"inbox": str(inbox), "added": sorted(i for i, (s, _) in plans.items() if s == "new"),
               "replaced": conflicts, "unchanged": sorted(i for i, (s, _) in plans.items() if s == "same"),
               "rejected": report["failures"]}
    write_json(state_dir / "ingest-reports" / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}.json", summary)
    return summary


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
