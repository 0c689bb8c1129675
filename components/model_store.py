"""Resolve a registry alias to a local ONNX file and the tiling it was evaluated with.

Shared by serving and the champion re-evaluation; light (MLflow and YAML, imported lazily)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.tracking import state_dir, use_tracking


class NoModelError(RuntimeError):
    """The alias points at nothing yet (for example, before the first ``dvc repro``)."""


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    alias: str
    onnx_path: Path
    tiling: dict
    metadata: dict = field(default_factory=dict)  # what register recorded (tiling, pooling, input)
    tags: dict = field(default_factory=dict)      # lineage: data version, git commit, metrics, gate

    @property
    def fp16_path(self) -> Path | None:
        """The FP16 ONNX, registered only when it lost under evaluate.gate.max_fp16_loss_db."""
        path = self.onnx_path.parent / "fp16" / "model_fp16.onnx"
        return path if path.is_file() else None


def alias_version(name: str, alias: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    use_tracking()
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        raise NoModelError(f"no model version has alias '{alias}' in registered model '{name}'") from exc


def fetch(name: str, alias: str, version: str) -> ModelRef:
    """Download the version's artifacts once (cached per version) and read its metadata."""
    import mlflow
    from mlflow import MlflowClient

    use_tracking()
    tags = dict(MlflowClient().get_model_version(name, version).tags)
    dest = state_dir() / "serving-cache" / name / version
    if not (dest / "MLmodel").exists():
        dest.mkdir(parents=True, exist_ok=True)
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dest))
    mlmodel = yaml.safe_load((dest / "MLmodel").read_text())
    onnx_file = mlmodel["flavors"]["onnx"]["data"]
    metadata = mlmodel.get("metadata", {})
    return ModelRef(name, version, alias, dest / onnx_file, metadata["tiling"], metadata, tags)
