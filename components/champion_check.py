"""The ``champion_check`` DAG's step: re-evaluate the current champion on the latest
validation split (the pairs of it the champion did not train on), and record the drift.

Data grows and the val split grows with it; the number a champion was registered with goes
stale. This scores the served artifact (the registered ONNX, through onnxruntime, with the
tiling recorded beside it) on today's split, logs it to the ``champion-monitoring``
experiment and tags the model version, so drift shows in the registry where people promote.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from components.config import RegistryConfig
from components.data.data_version import data_version
from components.data.splits import SPLITS_FILE, comparable_pairs, read_splits
from components.evaluation.scoring import Runner, score_split, val_pairs
from components.inference.onnx_session import ort_runner
from components.records import write_json
from components.registry.model_store import alias_version, fetch
from components.registry.tracking import client as tracking_client
from components.registry.tracking import get_or_create_experiment, use_tracking

log = logging.getLogger(__name__)
EXPERIMENT = "champion-monitoring"


def _record(model_name: str, result: dict) -> None:
    import mlflow

    run_name = f"champion-v{result['version']}"
    with mlflow.start_run(experiment_id=get_or_create_experiment(EXPERIMENT), run_name=run_name):
        mlflow.log_params({"version": result["version"], "data_version": result["data_version"]})
        mlflow.log_metrics({k: result[k] for k in ("psnr", "ssim", "drift_db") if result[k] is not None})
    client = tracking_client()
    for key in ("psnr", "ssim", "drift_db", "data_version", "checked_at"):
        value = "unknown: no val PSNR recorded at registration" if result[key] is None else str(result[key])
        client.set_model_version_tag(model_name, result["version"], f"last_check_{key}", value)


def reevaluate_champion(registry: RegistryConfig, lmdb_dir: Path, dvc_file: Path, out: Path) -> dict:
    """Score the champion on ``lmdb_dir``'s val split; returns (and writes) the small result."""
    use_tracking()

    model_name, alias = registry.model_name, registry.champion_alias
    version = alias_version(model_name, alias)
    ref = fetch(model_name, alias, version)
    unseen = set(comparable_pairs(read_splits(lmdb_dir / SPLITS_FILE), ref.metadata.train_pairs))
    if not unseen:  # nothing measured, so no drift is recorded; the result says why
        why = (f"champion v{version} trained on every val pair of {lmdb_dir} (or does not record which it trained "
               "on): no pair is left to re-evaluate it on")
        log.warning(why)
        result = {"version": version, "images": 0, "skipped": why}
        write_json(out, result)
        return result
    pairs = (pair for pair in val_pairs(lmdb_dir) if pair[0] in unseen)
    rows, _ = score_split(pairs, Runner("champion", ort_runner(ref.onnx_path), ref.metadata.inference))
    psnr_now = float(np.mean([r["psnr"] for r in rows]))
    tag = tracking_client().get_model_version(model_name, version).tags.get("val_psnr")
    registered = float(tag) if tag else None  # a version registered without one: no drift, said so
    result = {"version": version, "images": len(rows), "psnr": psnr_now,
              "ssim": float(np.mean([r["ssim"] for r in rows])), "registered_psnr": registered,
              "drift_db": None if registered is None else psnr_now - registered,
              "data_version": data_version(dvc_file), "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _record(model_name, result)
    write_json(out, result)
    if registered is None:
        log.warning("champion v%s: %.2f dB now; it records no val PSNR from registration, so no drift",
                    version, psnr_now)
    else:
        log.info("champion v%s: %.2f dB now vs %.2f dB at registration (drift %+.2f dB)",
                 version, psnr_now, registered, result["drift_db"])
    return result
