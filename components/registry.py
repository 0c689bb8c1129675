"""The model registry as people use it: list versions, move ``champion`` (gate-checked)."""
from __future__ import annotations

from components.register import CHAMPION
from components.tracking import use_tracking


def promote(model_name: str, version: str) -> str:
    """Point ``champion`` at ``version``; returns the version it pointed at before ('' if none)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    use_tracking()
    client = MlflowClient()
    try:
        mv = client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise ValueError(f"{model_name} has no version {version}") from exc
    if mv.tags.get("gate") != "passed":
        raise ValueError(f"{model_name} version {version} did not pass the evaluation gate "
                         f"(gate tag: {mv.tags.get('gate', 'missing')}); refusing to promote it")
    previous = client.get_registered_model(model_name).aliases.get(CHAMPION, "")
    client.set_registered_model_alias(model_name, CHAMPION, version)
    return str(previous)


def list_versions(model_name: str) -> list[dict]:
    """Every version, newest first, with its aliases and headline metrics."""
    from mlflow import MlflowClient

    use_tracking()
    client = MlflowClient()
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(model_name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in client.search_model_versions(f"name='{model_name}'"):
        rows.append({"version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                     "gate": mv.tags.get("gate", "?"), "val_psnr": mv.tags.get("val_psnr", "?"),
                     "val_ssim": mv.tags.get("val_ssim", "?"), "data_version": mv.tags.get("data_version", "?")})
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)
