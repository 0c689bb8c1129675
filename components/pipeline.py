"""Run the project's DVC stages from a scheduler, exactly as a user runs them by hand.

Plain functions (no Airflow import): the DAGs call them inside their tasks.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from components.records import EvaluationRecord, read_record

PROJECT_ENV = "BRIGHTHOUSE_PROJECT_DIR"
INBOX_ENV = "BRIGHTHOUSE_INBOX"
# the small JSON each stage leaves, returned to the scheduler (XCom) after it runs
RESULTS = {"evaluate": "artifacts/evaluate/metrics.json", "register": "artifacts/register/registered.json"}


def project_dir() -> Path:
    """The project checkout: ``BRIGHTHOUSE_PROJECT_DIR``, else the repo this package sits in."""
    return Path(os.environ.get(PROJECT_ENV, Path(__file__).resolve().parents[1])).resolve()


def inbox_dir() -> Path:
    return Path(os.environ.get(INBOX_ENV, project_dir() / "inbox")).resolve()


def enter_project() -> Path:
    """chdir into the project, where relative paths (data/, .brighthouse/) resolve. Each
    Airflow task runs in its own process, so this does not leak into other tasks."""
    project = project_dir()
    os.chdir(project)
    return project


def repro(stage: str, single: bool = True) -> dict:
    """``dvc repro [--single-item] <stage>`` in the project; the stage's small result, if any."""
    project = project_dir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--single-item"] if single else []), stage]
    subprocess.run(cmd, cwd=project, env=env, check=True)
    if stage not in RESULTS:
        return {"stage": stage}
    payload = json.loads((project / RESULTS[stage]).read_text())
    return {k: v for k, v in payload.items() if k != "per_image"}


def gate_refusal(since: float) -> dict | None:
    """The gate's "no", if an evaluate run that started at ``since`` (epoch seconds) got as far
    as a verdict and it was no: its reasons and report. None otherwise (it passed, or it
    crashed before a verdict: a fault, not an outcome)."""
    metrics = project_dir() / RESULTS["evaluate"]
    if not metrics.is_file() or metrics.stat().st_mtime < since:
        return None
    verdict = read_record(EvaluationRecord, metrics)
    if verdict.gate_passed:
        return None
    return {"outcome": "rejected, not registered", "gate_reasons": verdict.gate_reasons,
            "report": str(metrics.parent / "report.html")}


def set_param(params_path: Path, dotted: str, value: object) -> bool:
    """Set one key of params.yaml (``section.key``), keeping its comments and layout, as
    ``dvc exp run -S`` does; whether it changed. The DAG's choices go where DVC tracks them."""
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments and key order survive
    yaml.width, yaml.preserve_quotes = 4096, True
    doc = yaml.load(params_path.read_text(encoding="utf-8"))
    *parents, key = dotted.split(".")
    node = doc
    for part in parents:
        node = node[part]
    if key not in node:
        raise KeyError(f"{params_path}: no key {dotted} to set")
    if node[key] == value:
        return False
    node[key] = value
    tmp = params_path.with_suffix(".yaml.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    tmp.replace(params_path)
    return True
