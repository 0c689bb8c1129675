"""Retrain: the DVC pipeline's stages as Airflow tasks, in the same order.

Each task runs ``dvc repro --single-item <stage>`` in the project folder, so Airflow runs
exactly what a user runs by hand, and DVC skips stages whose inputs did not change (a retried
task does not redo finished work). Only small values (metrics, model version) go to XCom.
Heavy imports stay inside the tasks: this file parses in milliseconds.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, task

STAGES = ("validate", "lmdb", "train", "evaluate", "export", "register")
PROJECT_ENV = "BRIGHTHOUSE_PROJECT_DIR"


def project_dir() -> str:
    return os.environ.get(PROJECT_ENV, str(Path(__file__).resolve().parents[1]))


def repro(stage: str) -> dict:
    """Run one DVC stage in the project; return the small JSON result it leaves, if any."""
    import json
    import subprocess
    import sys

    project = Path(project_dir())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", stage], cwd=project, env=env, check=True)
    results = {"evaluate": "artifacts/evaluate/metrics.json", "register": "artifacts/register/registered.json"}
    if stage not in results:
        return {"stage": stage}
    payload = json.loads((project / results[stage]).read_text())
    return {k: v for k, v in payload.items() if k != "per_image"}


@dag(
    dag_id="retrain",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    tags=["brighthouse"],
)
def retrain():
    previous = None
    for stage in STAGES:
        step = task(task_id=stage)(repro)(stage)
        if previous is not None:
            previous >> step
        previous = step


retrain()
