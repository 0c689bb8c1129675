"""Lineage a person can act on: which code ran, on which data, with which stage inputs.

- ``git_commit``: HEAD of the checkout that registered; ``code_modified``: the tracked files
  that differed from it, leaving out DVC's own files (``dvc.lock``, ``*.dvc``, which every
  ``dvc repro`` rewrites) and ``params.yaml`` (recorded per stage below). "none" means
  ``git checkout <commit>`` has the code that ran.
- ``data_version``: the md5 of ``data/`` that ``data.dvc`` records (``dvc checkout`` gets it).
- ``stage_<name>``: a digest of each upstream stage's inputs (deps' hashes and params) exactly
  as DVC recorded them in ``dvc.lock``; the entries themselves are logged in its training run
  (``lineage/stages.json``), to compare with ``dvc.lock`` at any commit.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import yaml

from components.data.data_version import data_version
from components.records import EvaluationRecord, StartRecord

UPSTREAM = ("validate", "lmdb", "train", "export", "evaluate")  # the stages a registered model came from
DVC_OWN = (":(exclude)dvc.lock", ":(exclude)*.dvc", ":(exclude)params.yaml")
SHOWN = 5  # modified files named in the tag; the count says if there are more


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def code_state(repo: Path) -> tuple[str, str]:
    """(HEAD, what of the tracked code differs from it: "none" or "N files: a, b"); "unknown"
    outside a git checkout."""
    try:
        head = _git(repo, "rev-parse", "HEAD")
        changed = _git(repo, "diff", "--name-only", "HEAD", "--", ".", *DVC_OWN).splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown: not a git checkout"
    if not changed:
        return head, "none"
    more = f" (+{len(changed) - SHOWN} more)" if len(changed) > SHOWN else ""
    return head, f"{len(changed)} files: {', '.join(changed[:SHOWN])}{more}"


def stage_inputs(lock: Path) -> dict[str, dict]:
    """Each upstream stage's deps (path -> hash) and params as ``dvc.lock`` records them (DVC
    writes a stage's entry when it finishes, so register sees those before it)."""
    stages = yaml.safe_load(lock.read_text())["stages"] if lock.is_file() else {}
    return {name: {"deps": {d["path"]: d.get("md5") or d.get("hash") for d in stages[name].get("deps", [])},
                   "params": stages[name].get("params", {})}
            for name in UPSTREAM if name in stages}


def inputs_digest(entry: dict) -> str:
    """16 hex digits of a stage's inputs; the same for the same deps and params, in any order."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()[:16]


def lineage_tags(repo: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """The version's lineage tags, and the stage entries to log beside it."""
    commit, modified = code_state(repo)
    stages = stage_inputs(repo / "dvc.lock")
    tags = {"git_commit": commit, "code_modified": modified, "data_version": data_version(repo / "data.dvc"),
            **{f"stage_{name}": inputs_digest(entry) for name, entry in stages.items()}}
    return tags, stages


def version_tags(metrics: EvaluationRecord, run_id: str, lineage: dict[str, str],
                 start: StartRecord) -> dict[str, str]:
    """What a person reads on the version: where it came from, how it scored, how it was held out."""
    tags = {"started_from": (f"version {start.version} ({start.fine_tunes} fine-tune(s) since a training from "
                             f"scratch): {start.reason}" if start.version else f"scratch: {start.reason}"),
            **lineage, "run_id": run_id, "gate": "passed" if metrics.gate_passed else "failed"}
    tags.update({"val_psnr": f"{metrics.psnr:.4f}", "val_ssim": f"{metrics.ssim:.4f}",
                 "val_identity_psnr": f"{metrics.identity_psnr:.4f}"})
    folds = metrics.folds
    tags["validation"] = (f"{len(folds)}-fold cross-validation over {metrics.images} pairs: every pair trained "
                          f"{len(folds) - 1} of the {len(folds)} fold models and was scored by the other"
                          if folds else f"held-out val split of {metrics.images} pairs")
    if (metrics.model_extra or {}).get("networks") == 0:
        tags["ships"] = ("the preset fitted on every pair, no network: networks trained on these pairs did not beat "
                         "their presets on the pairs they did not see (the training run's brighthouse.ships tag)")
    return tags
