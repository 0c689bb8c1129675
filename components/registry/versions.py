"""The model registry as people use it: list versions, move ``champion`` (gate-checked)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

from components.config import RegistryConfig
from components.registry.model_store import NOT_FOUND, ModelUnusable, check_version
from components.registry.tracking import client as tracking_client
from components.registry.tracking import flatten, registry_calls


def promote(registry: RegistryConfig, version: str) -> str:
    """Point ``champion`` at ``version`` once it passed the gate and its artifacts download and
    load; returns the version it pointed at before ('' if none). A registry that fails to
    answer raises ``RegistryUnavailable``, never "no such version"."""
    with registry_calls(f"promoting {registry.model_name} version {version}"):
        client, model_name = tracking_client(), registry.model_name
        mv = _version_or_refuse(client, model_name, version)
        if mv.tags.get("gate") != "passed":
            raise ValueError(f"{model_name} version {version} did not pass the evaluation gate "
                             f"(gate tag: {mv.tags.get('gate', 'missing')}); refusing to promote it")
        try:
            check_version(model_name, version)
        except ModelUnusable as exc:
            raise ValueError(f"{exc}; refusing to promote it") from exc
        previous = client.get_registered_model(model_name).aliases.get(registry.champion_alias, "")
        client.set_registered_model_alias(model_name, registry.champion_alias, version)
    return str(previous)


def _version_or_refuse(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(model_name, version)
    except MlflowException as exc:
        if exc.error_code not in NOT_FOUND:
            raise
        raise ValueError(f"{model_name} has no version {version}") from exc


def list_versions(model_name: str) -> list[dict]:
    """Every version, newest first, with its aliases and headline metrics."""

    client = tracking_client()
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(model_name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in client.search_model_versions(f"name='{model_name}'"):
        rows.append({"version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                     "gate": mv.tags.get("gate", "?"), "val_psnr": mv.tags.get("val_psnr", "?"),
                     "val_ssim": mv.tags.get("val_ssim", "?"), "data_version": mv.tags.get("data_version", "?"),
                     "started_from": _parent(mv.tags.get("started_from", "?"))})
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def _parent(started_from: str) -> str:
    """``version N`` or ``scratch`` from the version's ``started_from`` tag (lineage.version_tags)."""
    return "scratch" if started_from.startswith("scratch") else " ".join(started_from.split()[:2])


def run_link(experiment_id: str, run_id: str) -> str:
    """Where a person opens the run: the server itself, or ``make mlflow-ui`` for the local store."""
    from components.registry.tracking import tracking_uri

    uri = tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def challenger_summary(registry: RegistryConfig, version: str) -> dict:
    """The new version against the champion (as registered), also stored as tags on both the
    version and its training run, so the UI shows it where people decide the promotion."""

    client, model_name = tracking_client(), registry.model_name
    mv = client.get_model_version(model_name, version)
    champion = str(client.get_registered_model(model_name).aliases.get(registry.champion_alias, ""))
    run = client.get_run(run_of(mv))
    val_psnr = _recorded(mv.tags, "val_psnr")
    summary: dict[str, object] = {"version": version, "champion": champion or "none", "val_psnr": val_psnr,
                                  "val_ssim": _recorded(mv.tags, "val_ssim"),
                                  "run": run_link(run.info.experiment_id, run.info.run_id)}
    champ_psnr = _recorded(client.get_model_version(model_name, champion).tags, "val_psnr") \
        if champion and champion != version else None
    if champ_psnr is not None and val_psnr is not None:  # a comparison only of two measured scores
        summary["psnr_vs_champion_db"] = round(val_psnr - champ_psnr, 4)
    elif champion and champion != version:
        summary["psnr_vs_champion_db"] = "unknown: a version records no val PSNR"
    for key, value in summary.items():
        client.set_model_version_tag(model_name, version, f"summary_{key}", str(value))
        client.set_tag(run.info.run_id, f"summary_{key}", str(value))
    return summary


def run_of(mv: ModelVersion) -> str:
    """The training run behind a version; every version brighthouse registers has one."""
    if not mv.run_id:
        raise ValueError(f"version {mv.version} of {mv.name} has no training run: not registered by brighthouse")
    return mv.run_id


def _recorded(tags: dict, key: str) -> float | None:
    """A score tag as a number, or None where the version was registered without it (not NaN)."""
    return float(tags[key]) if tags.get(key) else None


def version_info(model_name: str, version: str) -> dict:
    """What the review page shows of a version: lineage tags, when it was made, its mode and
    its params.yaml (flattened ``section.key`` -> value), from its registered artifacts."""
    import datetime

    import yaml

    from components.registry.model_store import fetch

    ref = fetch(model_name, "", version)
    mv = tracking_client().get_model_version(model_name, version)
    params_file = ref.onnx_path.parent / "config" / "params.yaml"
    params = yaml.safe_load(params_file.read_text()) if params_file.is_file() else {}
    created = datetime.datetime.fromtimestamp(mv.creation_timestamp / 1000, datetime.UTC)
    return {"version": str(version), "created": created.strftime("%Y-%m-%d %H:%M UTC"), "tags": dict(mv.tags),
            "mode": ref.metadata.inference.mode, "params": flatten(params or {})}
