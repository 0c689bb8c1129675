"""Resolve a registry alias to a local ONNX file and the tiling it was evaluated with.

Shared by serving and the champion re-evaluation; light (MLflow and YAML, imported lazily)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.records import VersionMetadata
from components.registry.tracking import RegistryUnavailable, state_dir, store_uri
from components.registry.tracking import client as tracking_client


class NoModelError(RuntimeError):
    """The alias points at nothing yet (for example, before the first ``dvc repro``)."""


NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")  # no such model / alias


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    alias: str
    onnx_path: Path
    metadata: VersionMetadata                     # what register recorded: how to run it, what it learned from
    tags: dict = field(default_factory=dict)      # lineage: data version, git commit, metrics, gate

    @property
    def fp16_path(self) -> Path | None:
        """The FP16 ONNX, registered only when it lost under evaluate.gate.max_fp16_loss_db."""
        path = self.onnx_path.parent / "fp16" / "model_fp16.onnx"
        return path if path.is_file() else None


def alias_version(name: str, alias: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return str(tracking_client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            raise NoModelError(f"no model version has alias '{alias}' in registered model '{name}'") from exc
        raise RegistryUnavailable(f"model registry unavailable: {_first_line(exc)}") from exc
    except Exception as exc:  # sqlite/SQLAlchemy and network errors reach here unwrapped
        raise RegistryUnavailable(f"model registry unavailable: {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


class ModelUnusable(RuntimeError):
    """The version is registered but cannot be loaded (artifacts deleted, broken metadata)."""


def fetch(name: str, alias: str, version: str, cache_root: Path | None = None) -> ModelRef:
    """Download the version's artifacts once (cached per version, under ``cache_root`` or the
    serving cache) and read its metadata; ``ModelUnusable`` says what is missing. The store is
    named in every call: serving's poll thread changes no process-wide MLflow setting."""
    tags = dict(tracking_client().get_model_version(name, version).tags)
    dest = (cache_root or state_dir() / "serving-cache") / name / version
    try:
        if not (dest / "MLmodel").exists():
            _download(name, version, dest)
        mlmodel = yaml.safe_load((dest / "MLmodel").read_text())
        onnx_path = dest / mlmodel["flavors"]["onnx"]["data"]
        ref = ModelRef(name, version, alias, onnx_path, version_metadata(mlmodel, name, version), tags)
    except ModelUnusable:
        raise
    except Exception as exc:  # whatever is missing or malformed, say it in one line
        raise ModelUnusable(f"{name} version {version} cannot be loaded: {type(exc).__name__}: "
                            f"{_first_line(exc)}") from exc
    if not onnx_path.is_file():
        raise ModelUnusable(f"{name} version {version} cannot be loaded: its ONNX file {onnx_path.name} is missing")
    return ref


def registered_version(name: str, version: str) -> tuple[VersionMetadata, str]:
    """A version's recorded metadata and its training run, reading only its MLmodel file:
    ``NoModelError`` where the registry has no such version."""
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mv = tracking_client().get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            raise NoModelError(f"registered model '{name}' has no version {version}") from exc
        raise RegistryUnavailable(f"model registry unavailable: {_first_line(exc)}") from exc
    source = tracking_client().get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="brighthouse-mlmodel-") as tmp:
        try:
            got = mlflow.artifacts.download_artifacts(artifact_uri=f"{source.rstrip('/')}/MLmodel", dst_path=tmp,
                                                      tracking_uri=store_uri())
            mlmodel = yaml.safe_load(Path(got).read_text())
        except Exception as exc:  # whatever is missing or malformed, say it in one line
            raise ModelUnusable(f"{name} version {version} has no readable MLmodel: {type(exc).__name__}: "
                                f"{_first_line(exc)}") from exc
    if not mv.run_id:
        raise ModelUnusable(f"{name} version {version} has no training run: not registered by brighthouse")
    return version_metadata(mlmodel, name, version), mv.run_id


def version_metadata(mlmodel: dict, name: str, version: str) -> VersionMetadata:
    """The version's recorded metadata; one from an older or foreign writer is refused by name."""
    from pydantic import ValidationError

    try:
        return VersionMetadata.model_validate(mlmodel.get("metadata") or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ModelUnusable(f"{name} version {version} records metadata this brighthouse does not read (registered "
                            f"by an older or foreign writer): register it again from its pipeline run; "
                            f"{exc.error_count()} problem(s), first: {first['loc']} {first['msg']}") from None


def _download(name: str, version: str, dest: Path) -> None:
    """Into a sibling folder first, renamed when complete: a half download is never used."""
    import shutil
    import tempfile

    import mlflow

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=dest.parent))
    try:
        # resolved by a client bound to the store: ``models:/`` URIs are resolved by MLflow with
        # its process-wide URIs whatever is passed here (MLflow 3.x)
        source = tracking_client().get_model_version_download_uri(name, version)
        got = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp), tracking_uri=store_uri())
        shutil.rmtree(dest, ignore_errors=True)
        Path(got).rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_version(name: str, version: str) -> ModelRef:
    """Download the version afresh (not from any cache) and open its ONNX with onnxruntime,
    as serving will: ``ModelUnusable`` says why it could not be served."""
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="brighthouse-check-") as tmp:
        ref = fetch(name, "", version, cache_root=Path(tmp))
        try:
            ort.InferenceSession(str(ref.onnx_path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelUnusable(f"{name} version {version} cannot be loaded: its ONNX does not open in "
                                f"onnxruntime ({_first_line(exc)})") from exc
    return ref
