"""Stage ``train``: NAFNet through BasicSR on the LMDBs, logged to an MLflow run.

Writes ``model.pth`` (weights + architecture), the resolved BasicSR options beside it, and
``run.json`` with the MLflow run id that evaluate and register add to.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from components import basicsr_adapter
from components.config import TrainConfig
from components.model_io import save_checkpoint
from components.lmdb import lmdb_shapes
from components.stage import StageFailed, run_stage, write_json
from components.tracking import get_or_create_experiment, use_tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPaths:
    lmdb: Path
    out: Path


def _flatten(prefix: str, value) -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else k, v))
        return out
    return {prefix: value}


def check_patches_fit(lmdb_dir: Path, patch: int) -> None:
    """BasicSR stops mid-run on an image smaller than the patch; fail before training."""
    small = [k for k, (h, w, _) in lmdb_shapes(lmdb_dir / "train" / "gt.lmdb").items() if min(h, w) < patch]
    if small:
        raise StageFailed(f"{len(small)} training images are smaller than train.patch_size={patch} "
                          f"(e.g. {', '.join(small[:3])}): raise lmdb.crop_size or lower the patch size")


def run_train(cfg: TrainConfig, paths: TrainPaths) -> dict:
    import mlflow

    check_patches_fit(paths.lmdb, cfg.patch_size)
    if cfg.perceptual_weight > 0:
        try:
            basicsr_adapter.check_vgg_weights()
        except FileNotFoundError as exc:
            raise StageFailed(str(exc)) from exc
    device = basicsr_adapter.resolve_device(cfg.device)
    opt = basicsr_adapter.build_options(cfg, paths.lmdb, paths.out, device)
    basicsr_adapter.save_options(opt, paths.out / "basicsr_options.yml")
    use_tracking()
    experiment_id = get_or_create_experiment(cfg.experiment)
    start = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(_flatten("train", cfg.model_dump(mode="json", exclude={"profiles"})))
        mlflow.set_tags({"device": device, "precision": opt["brighthouse"]["precision"]})

        def on_log(it: int, values: dict) -> None:
            log.info("iter %d/%d %s", it, cfg.iterations, {k: round(v, 5) for k, v in values.items()})
            mlflow.log_metrics({f"train/{k}": v for k, v in values.items()}, step=it)

        net = basicsr_adapter.train(opt, on_log)
        seconds = time.perf_counter() - start
        mlflow.log_metric("train/seconds", seconds)
        save_checkpoint(paths.out / "model.pth", net.state_dict(), cfg.arch.model_dump(mode="json"))
        mlflow.log_artifact(str(paths.out / "basicsr_options.yml"), artifact_path="config")
    result = {"run_id": run.info.run_id, "experiment_id": experiment_id,
              "device": device, "seconds": round(seconds, 2)}
    write_json(paths.out / "run.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_stage("train", TrainPaths, run_train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
