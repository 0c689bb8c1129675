"""Stage ``register``: the gated ONNX model becomes a version in the MLflow registry.

The version carries lineage tags (data version from data.dvc, git commit, dvc.lock hash,
metrics, gate result) and the alias ``challenger``. If the registry has no ``champion`` yet,
the first model gets that alias too, so a fresh install can serve at once; after that,
people promote by moving ``champion`` (MLflow UI or ``brighthouse promote``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.config import RegisterConfig
from components.stage import StageFailed, run_stage, write_json
from components.tracking import use_tracking

log = logging.getLogger(__name__)
CHAMPION = "champion"


@dataclass(frozen=True)
class RegisterPaths:
    train: Path
    evaluate: Path
    export: Path
    out: Path


def data_version(dvc_file: Path = Path("data.dvc")) -> str:
    if not dvc_file.exists():
        return "unknown"
    out = yaml.safe_load(dvc_file.read_text())["outs"][0]
    return out.get("md5") or out.get("hash", "unknown")


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "none"


def lineage_tags(metrics: dict, run_id: str) -> dict[str, str]:
    tags = {"data_version": data_version(), "git_commit": git_commit(),
            "dvc_lock_sha256": file_sha256(Path("dvc.lock")), "params_sha256": file_sha256(Path("params.yaml")),
            "run_id": run_id, "gate": "passed" if metrics["gate_passed"] else "failed"}
    tags.update({f"val_{k}": f"{metrics[k]:.4f}" for k in ("psnr", "ssim", "identity_psnr")})
    return tags


def log_and_register(onnx_path: Path, run_id: str, name: str, metadata: dict,
                     extras: list[tuple[str, Path]]):
    """Log the ONNX as a model of the run, with ``extras`` ((artifact folder, file) pairs)
    beside it, and register it; returns the new version number."""
    import mlflow
    import onnx
    from mlflow import MlflowClient

    with mlflow.start_run(run_id=run_id):
        info = mlflow.onnx.log_model(
            onnx.load(str(onnx_path)), name="model", registered_model_name=name,
            metadata=metadata, pip_requirements=["onnxruntime", "numpy"],
        )
    for folder, path in extras:
        if path.is_file():
            MlflowClient().log_model_artifact(info.model_id, str(path), folder)
    return info.registered_model_version


def version_extras(paths: RegisterPaths, fp16_ok: bool) -> list[tuple[str, Path]]:
    """What a person or a server needs beside the weights: how it was made and how it scored,
    and the FP16 variant when evaluation found it keeps quality."""
    fp16_extra = [("fp16", paths.export / "model_fp16.onnx")] if fp16_ok else []
    return [("config", paths.train / "basicsr_options.yml"), ("config", Path("params.yaml")),
            ("evaluation", paths.evaluate / "report.html"), ("evaluation", paths.evaluate / "metrics.json"),
            ("export", paths.export / "export.json")] + fp16_extra


def _versions(client, name: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        return client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []


def run_register(cfg: RegisterConfig, paths: RegisterPaths) -> dict:
    from mlflow import MlflowClient

    metrics = json.loads((paths.evaluate / "metrics.json").read_text())
    if not metrics["gate_passed"]:
        raise StageFailed("refusing to register a model that failed the gate: " + "; ".join(metrics["gate_reasons"]))
    run_id = json.loads((paths.train / "run.json").read_text())["run_id"]
    use_tracking()
    client = MlflowClient()
    export = json.loads((paths.export / "export.json").read_text())
    metadata = {"tiling": metrics["tiling"], "input": "float32 NCHW RGB in [0,1]",
                "pooling": export["pooling"], "tlc_window": export["tlc_window"],
                "fp16": bool(metrics.get("fp16_ok")), "fp16_loss_db": metrics.get("fp16_loss_db")}
    # A retried task (registered, then failed before DVC recorded it) reuses its version.
    same_run = [mv for mv in _versions(client, cfg.model_name) if mv.run_id == run_id]
    version = str(same_run[0].version if same_run else
                  log_and_register(paths.export / "model.onnx", run_id, cfg.model_name, metadata,
                                   version_extras(paths, bool(metrics.get("fp16_ok")))))
    for key, value in lineage_tags(metrics, run_id).items():
        client.set_model_version_tag(cfg.model_name, version, key, value)
    aliases = [cfg.alias]
    if cfg.first_is_champion and CHAMPION not in client.get_registered_model(cfg.model_name).aliases:
        aliases.append(CHAMPION)
    for alias in aliases:
        client.set_registered_model_alias(cfg.model_name, alias, version)
    result = {"model_name": cfg.model_name, "version": version, "aliases": aliases, "run_id": run_id}
    write_json(paths.out / "registered.json", result)
    log.info("registered %s version %s as %s", cfg.model_name, version, ", ".join(aliases))
    return result


def main(argv: list[str] | None = None) -> int:
    return run_stage("register", RegisterPaths, run_register, argv)


if __name__ == "__main__":
    raise SystemExit(main())
