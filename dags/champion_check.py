"""Weekly: re-evaluate the current champion on the latest validation split and record drift.

``champion`` ends the run cleanly when none is registered yet; ``lmdb`` brings the split up to
date (``dvc repro lmdb``, validate included); the check scores the registered ONNX with its
recorded inference spec (``components/champion_check.py``). DVC holds a repo lock, so if a retraining
run is busy the first task waits through its retries.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import chain, dag, task


@task.short_circuit
def champion() -> bool:
    """Nothing to check before the first model is registered: end the run cleanly."""
    from components.config import load_params
    from components.pipeline import enter_project
    from components.registry.model_store import NoModelError, alias_version

    enter_project()
    try:
        registry = load_params("params.yaml").registry
        return bool(alias_version(registry.model_name, registry.champion_alias))
    except NoModelError as exc:
        print(f"skipping: {exc}")
        return False


@task(retries=4, retry_delay=timedelta(minutes=5), retry_exponential_backoff=True)
def lmdb() -> dict:
    from components.pipeline import repro

    return repro("lmdb", single=False)


@task
def champion_check() -> dict:
    from pathlib import Path

    from components.champion_check import reevaluate_champion
    from components.config import load_params
    from components.pipeline import enter_project
    from components.registry.tracking import state_dir

    enter_project()
    out = state_dir() / "monitoring" / f"{datetime.now():%Y%m%dT%H%M%S}.json"
    return reevaluate_champion(load_params("params.yaml").registry, Path("artifacts/lmdb"), Path("data.dvc"), out)


@dag(dag_id="champion_check", schedule="@weekly", start_date=datetime(2026, 1, 1), catchup=False,
     max_active_runs=1, tags=["brighthouse"])
def champion_check_dag() -> None:
    chain(champion(), lmdb(), champion_check())


champion_check_dag()
