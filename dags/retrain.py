"""Retrain when editors deliver pairs: ingest -> version -> choose_start -> the DVC stages -> summary.

Event-driven through an Airflow 3 asset watcher: ``FileDeleteTrigger`` on ``INBOX/READY``
fires once the marker exists and deletes it, so every delivery's marker starts one run. A
watcher rather than a sensor: the triggerer polls for every DAG in one async loop, no worker
slot sits waiting, and a marker written last means half-copied folders are never read (each
delivery also carries its own ``DELIVERY_COMPLETE``: see ``components/data/deliveries.py``).

Tasks call the same component functions and ``dvc repro <stage>`` users run; the DAG holds no
pipeline logic. ``max_active_runs=1`` queues deliveries; DVC skips finished stages and the
ingest ledger skips finished deliveries, so retries redo nothing. Imports stay inside tasks:
parsing this file touches no heavy module and no file.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.triggers.file import FileDeleteTrigger
from airflow.sdk import Asset, AssetWatcher, Param, chain, dag, task

STAGES = ("validate", "lmdb", "train", "export", "evaluate", "register")
READY = "READY"            # = components.data.deliveries.READY (not imported: parse stays light)
TRAIN_POOL = "gpu"         # one training at a time on the GPU, whichever DAG asks
TRAIN_QUEUE = "gpu"        # Celery queue served by the GPU box's worker (`make stack` starts one)
BRANCH_ENV = "BRIGHTHOUSE_GIT_BRANCH"
log = logging.getLogger(__name__)


def _inbox() -> Path:
    default = Path(os.environ.get("BRIGHTHOUSE_PROJECT_DIR", Path(__file__).resolve().parents[1])) / "inbox"
    return Path(os.environ.get("BRIGHTHOUSE_INBOX", default)).resolve()


def report_failure(context: Context) -> None:
    """Say which step failed and why, in the task log (and any alerting attached to it)."""
    ti = context["task_instance"]
    log.error("retrain failed at step '%s' (try %s): %s", ti.task_id, ti.try_number, context.get("exception"))


DELIVERY = Asset(
    name="brighthouse_delivery",
    uri=(_inbox() / READY).as_uri(),
    watchers=[AssetWatcher(name="delivery_ready", trigger=FileDeleteTrigger(filepath=str(_inbox() / READY),
                                                                           poke_interval=5.0))],
)
BACKOFF: dict[str, Any] = {"retries": 3, "retry_delay": timedelta(seconds=20), "retry_exponential_backoff": True}
# A preempted or killed worker's training continues from its last resumable state
# (train.checkpoint_every) on the retry, so retrying costs the iterations since that state.
TRAIN_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=15)}


@task.short_circuit(**BACKOFF)
def ingest() -> bool:
    """Take in every complete delivery; False (skip the rest, run ends green) when none
    brought a usable pair. The per-delivery reports are named in the log."""
    from components.config import load_params
    from components.data.data_version import version_owed
    from components.data.deliveries import ingest_deliveries
    from components.pipeline import enter_project, inbox_dir
    from components.registry.tracking import state_dir

    enter_project()
    result = ingest_deliveries(inbox_dir(), Path("data"), load_params("params.yaml").validate_, state_dir())
    for d in result["deliveries"]:
        log.info("delivery %s: %d added, %d replaced, %d rejected %s; report %s", d["delivery"], len(d["added"]),
                 len(d["replaced"]), len(d["rejected"]), d["rejected"], d.get("report") or d.get("refused"))
    if version_owed(state_dir()):  # this run's changes, or an interrupted earlier run's
        return True
    log.warning("no new or changed pairs in %d deliveries: nothing to train on", len(result["deliveries"]))
    return False


@task(**BACKOFF)
def version() -> str:
    """``dvc add data`` (+ ``dvc push`` to the default remote): the new data version."""
    from components.data.data_version import version_data
    from components.pipeline import enter_project
    from components.registry.tracking import state_dir

    return version_data(Path("data"), enter_project(), state_dir())


@task(**BACKOFF)
def choose_start() -> str:
    """Which version this delivery's training starts from (``train.start_from`` in params.yaml,
    where DVC tracks it): the champion, fine-tuned, unless the run's ``full_retrain`` param asks
    for a full retrain or the line is due one (``train.warm_start``)."""
    from airflow.sdk import get_current_context

    from components.pipeline import enter_project, set_param
    from components.warm_start import choose_start as choose

    params = enter_project() / "params.yaml"
    choice = choose(params, bool(get_current_context()["params"].get("full_retrain")))
    set_param(params, "train.start_from", choice.start_from)
    log.info("training starts from %s: %s", f"version {choice.start_from}" if choice.start_from else "scratch",
             choice.reason)
    return choice.start_from


def stage(name: str) -> dict:
    from components.pipeline import repro

    return repro(name)


@task.short_circuit(ignore_downstream_trigger_rules=False)
def evaluate() -> dict | bool:
    """The gate. A model it refuses is an outcome, not a fault: False skips ``register`` (not
    retried, not red) and ``summary`` says why. A crash before the verdict still fails."""
    import subprocess
    import time

    from components.pipeline import gate_refusal, repro

    started = time.time()
    try:
        return repro("evaluate")
    except subprocess.CalledProcessError:
        refusal = gate_refusal(started)
        if refusal is None:
            raise
        log.warning("rejected, not registered: %s; report %s", "; ".join(refusal["gate_reasons"]), refusal["report"])
        return False


@task(trigger_rule="none_failed", **BACKOFF)
def summary(registered: dict | None) -> dict:
    """Challenger vs champion, logged and tagged in MLflow; the run's DVC outputs pushed to the
    default remote (another clone pulls them); optionally committed to a branch. After a gate
    refusal (``register`` skipped): the reasons and the evaluation report."""
    from components.config import load_params
    from components.data.data_version import push_outputs
    from components.pipeline import enter_project, gate_refusal
    from components.registry.versions import challenger_summary

    project = enter_project()
    if registered is None:
        refusal = gate_refusal(0.0) or {"outcome": "register was skipped"}
        log.warning("retrain summary: %s", refusal)
        return refusal
    result = challenger_summary(load_params("params.yaml").registry, registered["version"])
    result["pushed_to"] = push_outputs(project)
    branch = os.environ.get(BRANCH_ENV)
    if branch:
        from components.registry.git_branch import commit_to_branch, is_git_checkout

        if is_git_checkout(project):
            message = f"retrain: {registered['model_name']} version {registered['version']}"
            result["commit"] = commit_to_branch(project, branch, ["data.dvc", "dvc.lock", "params.yaml"], message)
    log.info("retrain summary: %s", result)
    return result


@dag(
    dag_id="retrain",
    schedule=[DELIVERY],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={"full_retrain": Param(False, type="boolean",
                                  description="train from scratch instead of fine-tuning the champion")},
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": report_failure},
    tags=["brighthouse"],
)
def retrain() -> None:
    extra = {"train": {"pool": TRAIN_POOL, "queue": TRAIN_QUEUE, **TRAIN_RETRIES}, "register": BACKOFF}
    stages = [evaluate() if name == "evaluate" else task(task_id=name, **extra.get(name, {}))(stage)(name)
              for name in STAGES]
    chain(ingest(), version(), choose_start(), *stages)
    summary(stages[-1])  # type: ignore[arg-type]  # TaskFlow hands it the upstream's XCom at run time


retrain()
